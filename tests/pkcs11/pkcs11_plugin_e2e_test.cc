// End-to-end: the built `kms-plugin serve --kms pkcs11` as a separate process on a real SoftHSM2
// token made per test, driven like kube-apiserver drives a KMS v2 plugin: the apiserver's
// conformance checks, key creation and an operator's pkcs11-tool key, `rotate --kek` to a new key
// object, a restart on the same token, a wrong PIN, a missing token and an extractable key at
// start-up, a token removed while serving and put back, and the number of HSM crypto calls counted
// in opensc's pkcs11-spy log. The fixture's
// tear-down scans every plugin log for the PIN and every plaintext the test sent.
#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "tests/integration/audit_lines.h"
#include "tests/integration/plugin_test_base.h"
#include "tests/pkcs11/softhsm_fixture.h"

namespace kmsplugin::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class Pkcs11PluginE2eTest : public PluginTestBase {
 protected:
  void SetUp() override {
    PluginTestBase::SetUp();
    if (HasFatalFailure()) return;
    pin_ = "pin-" + NewUuid();  // Long enough for the leak scan.
    RecordSecret(pin_);
    auto token = SoftHsmToken::Create(dir_->path(), "kms-test", pin_);
    ASSERT_TRUE(token.ok()) << token.status();
    token_.emplace(std::move(*token));
    auto pin_file = token_->WritePinFile("pin", pin_);
    ASSERT_TRUE(pin_file.ok()) << pin_file.status();
    pin_file_ = *pin_file;
    auto serial = token_->Serial();
    ASSERT_TRUE(serial.ok()) << serial.status();
    serial_ = *serial;
  }

  PluginOptions Pkcs11Options(const std::string& name = "kms",
                              const std::string& module = kSoftHsmModule) {
    PluginOptions o = Options(name);
    o.args = {"--kms",
              "pkcs11",
              "--pkcs11-module",
              module,
              "--pkcs11-token-label",
              "kms-test",
              "--pkcs11-pin-file",
              pin_file_,
              "--pkcs11-key-label",
              "kek",
              "--key-poll-interval",
              "1s",
              "--kms-timeout",
              "5s",
              "--log-level",
              "debug"};
    o.env = token_->Env();
    return o;
  }

  std::string KeyId(int version) const {
    return "pkcs11:" + serial_ + "/kek/v" + std::to_string(version);
  }
  std::vector<std::string> Ids() const {
    return token_->KeyIds("kek").value_or(std::vector<std::string>{"error"});
  }

  // Starts a plugin expected to stop at start-up; its exit and log.
  void ExpectStartupFailure(const PluginOptions& options, const std::string& message) {
    ITEST_ASSIGN_OR_FAIL(auto plugin, StartNoWait(options));
    auto exit = plugin->process().Wait(absl::Seconds(30));
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_TRUE(exit->exited);
    EXPECT_NE(exit->code, 0);
    EXPECT_THAT(plugin->Log(), HasSubstr(message));
  }

  std::string pin_;
  std::string pin_file_;
  std::string serial_;
  std::optional<SoftHsmToken> token_;
};

// HSM crypto calls in a pkcs11-spy log.
int CryptoCalls(const std::string& spy_log) {
  static const std::regex kCall(
      R"(^\d+: C_(Encrypt|EncryptInit|Decrypt|DecryptInit|WrapKey|UnwrapKey)$)",
      std::regex::multiline);
  return static_cast<int>(std::distance(std::sregex_iterator(spy_log.begin(), spy_log.end(), kCall),
                                        std::sregex_iterator()));
}

TEST_F(Pkcs11PluginE2eTest, ConformsToTheApiserverContractOnAKeyItCreatesAndLogs) {
  PluginOptions options = Pkcs11Options();
  // Issue 13: the audit log (scanned for the PIN and plaintexts at tear-down like every log).
  const std::string audit = dir_->File("audit.log");
  options.args.insert(options.args.end(), {"--audit-log", audit});
  log_paths_.push_back(audit);
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(options));
  EXPECT_THAT(plugin->Log(), HasSubstr("no key labelled 'kek' in token 'kms-test' (serial " +
                                       serial_ + "): created key object 'kek' version 1"));
  EXPECT_THAT(Ids(), ::testing::ElementsAre("01"));
  ApiserverKmsClient client(plugin->grpc_target());
  ApiserverView view;
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
  ASSERT_THAT(view.ObserveStatus(status), IsOk());
  EXPECT_EQ(status.version(), "v2");
  EXPECT_EQ(status.healthz(), "ok");
  EXPECT_EQ(status.key_id(), KeyId(1));
  for (int i = 0; i < 20; ++i) {
    const std::string plaintext = Secret(std::to_string(i));
    ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(plaintext));
    EXPECT_THAT(ValidateEncryptResponse(enc, status.key_id()), IsOk());
    ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                         client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)));
    EXPECT_EQ(dec.plaintext(), plaintext);
  }
  // Every token operation has its audit line, naming the token and key labels; the key was
  // created (C_GenerateKey, version 1) and wrapped the data key under version 1.
  const std::vector<nlohmann::json> lines = OfType(AuditLines(audit), "kms_request");
  std::map<std::string, int> ops;
  for (const nlohmann::json& j : lines) {
    EXPECT_EQ(j["backend"], "pkcs11");
    EXPECT_EQ(j["key"], "token=kms-test key=kek");
    EXPECT_EQ(j["result"], "OK") << j;
    EXPECT_EQ(j["request_id"], "");
    ++ops[j["operation"].get<std::string>()];
    if (j["operation"] == "C_Encrypt" || j["operation"] == "C_GenerateKey") {
      EXPECT_EQ(j["key_id"], KeyId(1)) << j;
    }
  }
  EXPECT_EQ(ops["C_GenerateKey"], 1);
  EXPECT_GE(ops["C_Encrypt"], 1);
}

TEST_F(Pkcs11PluginE2eTest, UsesAKeyCreatedWithPkcs11ToolAsIsAndKeepsItsKeyIdAcrossARestart) {
  ASSERT_THAT(token_->KeyGen("kek", "01"), IsOk());
  const std::string plaintext = Secret("before-restart");
  v2::EncryptResponse enc;
  {
    ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Pkcs11Options("first")));
    EXPECT_THAT(plugin->Log(), Not(HasSubstr("created key object")));
    ApiserverKmsClient client(plugin->grpc_target());
    ITEST_ASSIGN_OR_FAIL(enc, client.Encrypt(plaintext));
    EXPECT_EQ(enc.key_id(), KeyId(1));
  }
  ITEST_ASSIGN_OR_FAIL(auto restarted, Start(Pkcs11Options("second")));
  ApiserverKmsClient client(restarted->grpc_target());
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
  EXPECT_EQ(status.key_id(), KeyId(1));
  ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                       client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)));
  EXPECT_EQ(dec.plaintext(), plaintext);
  EXPECT_THAT(Ids(), ::testing::ElementsAre("01"));
}

TEST_F(Pkcs11PluginE2eTest, RotateKekCreatesANewKeyObjectAndOldCiphertextsStillDecrypt) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Pkcs11Options()));
  const std::string old_plaintext = Secret("before-rotation");
  v2::EncryptResponse old_enc;
  {
    ApiserverKmsClient client(plugin->grpc_target());
    ITEST_ASSIGN_OR_FAIL(old_enc, client.Encrypt(old_plaintext));
    EXPECT_EQ(old_enc.key_id(), KeyId(1));
  }
  RunRotateKek(*plugin);
  EXPECT_THAT(Ids(), ::testing::UnorderedElementsAre("01", "02"));
  const std::string new_plaintext = Secret("after-rotation");
  v2::EncryptResponse new_enc;
  {
    ApiserverKmsClient client(plugin->grpc_target());
    ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
    EXPECT_EQ(status.key_id(), KeyId(2));
    EXPECT_EQ(status.healthz(), "ok");
    ITEST_ASSIGN_OR_FAIL(new_enc, client.Encrypt(new_plaintext));
    EXPECT_EQ(new_enc.key_id(), KeyId(2));
    EXPECT_THAT(ValidateEncryptResponse(new_enc, status.key_id()), IsOk());
  }
  // A fresh process has no cached data key: the old ciphertext needs key object v1.
  EXPECT_THAT(plugin->Terminate(), IsOk());
  ITEST_ASSIGN_OR_FAIL(auto restarted, Start(Pkcs11Options("restarted")));
  ApiserverKmsClient again(restarted->grpc_target());
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, again.Status());
  EXPECT_EQ(status.key_id(), KeyId(2));
  ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse old_dec,
                       again.Decrypt(ApiserverKmsClient::DecryptRequestFor(old_enc)));
  EXPECT_EQ(old_dec.plaintext(), old_plaintext);
  ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse new_dec,
                       again.Decrypt(ApiserverKmsClient::DecryptRequestFor(new_enc)));
  EXPECT_EQ(new_dec.plaintext(), new_plaintext);
}

TEST_F(Pkcs11PluginE2eTest, DeletingTheCurrentKeyObjectMakesStatusUnhealthyAndRefusesDecrypt) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Pkcs11Options()));
  ApiserverKmsClient client(plugin->grpc_target());
  const std::string plaintext = Secret("before-delete");
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(plaintext));
  ASSERT_THAT(token_->DeleteKey("01"), IsOk());
  ASSERT_TRUE(PollUntil(
      [&] {
        auto s = client.Status();
        return s.ok() && s->healthz() != "ok";
      },
      absl::Seconds(20)))
      << "Status stayed ok with the key object deleted";
  // Revocation purges the cached data keys: the ciphertext no longer decrypts.
  EXPECT_FALSE(client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)).ok());
  EXPECT_THAT(plugin->Log(), HasSubstr("no AES key object labelled 'kek' is left"));
}

// The token is removed under a serving plugin and comes back. SoftHSM2 (file backend) keeps one
// directory per token under directories.tokendir; renaming it away is a removed token. Observed
// (2.6.1): SoftHSM does not keep the token in memory; the next call that needs the token fails
// with a code the pool takes as a lost token (remote-kms-apis.md §4b.6: CKR_OBJECT_HANDLE_INVALID
// on key use), the pool reconnects (C_Finalize + C_Initialize) and the slot list then has no
// token at all ("tokens found: none"): UNAVAILABLE. Renaming the directory back makes the next
// reconnection find the token by its label, with the same serial and key objects. A must coast
// (Encrypt on its cached data key, Status ok within the outage window), fail a Decrypt that needs
// the HSM as unavailable without revoking, and decrypt again once the token is back, without a
// restart (polled: the reconnect backoff, session_pool.h, fails calls fast for up to a few
// seconds after the failed reconnections).
TEST_F(Pkcs11PluginE2eTest, ARemovedTokenIsAnOutageNotARevocationAndItsReturnIsSeenWithoutRestart) {
  PluginOptions a_options = Pkcs11Options("a");
  a_options.args.insert(a_options.args.end(), {"--kms-outage-window", "1h"});
  ITEST_ASSIGN_OR_FAIL(auto a, Start(a_options));
  ApiserverKmsClient client_a(a->grpc_target());
  const std::string b_plaintext = Secret("from-b");
  v2::EncryptResponse b_enc;
  {
    // B's data key is its own: A has never seen it, so decrypting B's ciphertext needs the HSM.
    ITEST_ASSIGN_OR_FAIL(auto b, Start(Pkcs11Options("b")));
    ApiserverKmsClient client_b(b->grpc_target());
    ITEST_ASSIGN_OR_FAIL(b_enc, client_b.Encrypt(b_plaintext));
    EXPECT_THAT(b->Terminate(), IsOk());
  }
  const std::string a_plaintext = Secret("from-a");
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse a_enc, client_a.Encrypt(a_plaintext));

  std::string token_dir;
  for (const auto& entry : std::filesystem::directory_iterator(dir_->path() + "/tokens")) {
    if (entry.is_directory()) token_dir = entry.path().string();
  }
  ASSERT_FALSE(token_dir.empty());
  const std::string removed = dir_->path() + "/removed-token";
  std::filesystem::rename(token_dir, removed);

  auto b_dec = client_a.Decrypt(ApiserverKmsClient::DecryptRequestFor(b_enc));
  ASSERT_FALSE(b_dec.ok()) << "B's ciphertext decrypted with the token removed";
  EXPECT_EQ(b_dec.status().code(), absl::StatusCode::kUnavailable) << b_dec.status();
  EXPECT_THAT(std::string(b_dec.status().message()),
              HasSubstr("no PKCS#11 token labelled 'kms-test'"));
  // A key poll (every 1 s) that ran while the token was away.
  ASSERT_TRUE(PollUntil(
      [&] {
        const std::string log = a->Log();
        return log.find("KMS probe failed") != std::string::npos ||
               log.find("refused the KEK") != std::string::npos;
      },
      absl::Seconds(20)))
      << "no key poll failed with the token removed";
  EXPECT_THAT(a->Log(), Not(HasSubstr("refused the KEK")));
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse during, client_a.Status());
  EXPECT_EQ(during.healthz(), "ok");
  EXPECT_EQ(during.key_id(), KeyId(1));
  for (int i = 0; i < 10; ++i) {
    ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client_a.Encrypt(Secret("during")));
    EXPECT_EQ(enc.key_id(), KeyId(1));
  }
  ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse a_dec,
                       client_a.Decrypt(ApiserverKmsClient::DecryptRequestFor(a_enc)));
  EXPECT_EQ(a_dec.plaintext(), a_plaintext);

  std::filesystem::rename(removed, token_dir);
  std::string last_error;
  ASSERT_TRUE(PollUntil(
      [&] {
        auto dec = client_a.Decrypt(ApiserverKmsClient::DecryptRequestFor(b_enc));
        if (!dec.ok()) last_error = dec.status().ToString();
        return dec.ok() && dec->plaintext() == b_plaintext;
      },
      absl::Seconds(40)))
      << "B's ciphertext never decrypted after the token came back: " << last_error;
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse after, client_a.Status());
  EXPECT_EQ(after.healthz(), "ok");
  EXPECT_EQ(after.key_id(), KeyId(1));
  EXPECT_THAT(a->Log(), HasSubstr("reconnecting"));
  EXPECT_THAT(a->Log(), Not(HasSubstr("refused the KEK")));
}

TEST_F(Pkcs11PluginE2eTest, AWrongPinStopsTheProcessWithAClearMessageAndNoPinInTheLog) {
  const std::string wrong = "wrong-pin-" + NewUuid();
  RecordSecret(wrong);
  auto wrong_file = token_->WritePinFile("wrong-pin", wrong);
  ASSERT_TRUE(wrong_file.ok()) << wrong_file.status();
  PluginOptions o = Pkcs11Options();
  for (size_t i = 0; i + 1 < o.args.size(); ++i) {
    if (o.args[i] == "--pkcs11-pin-file") o.args[i + 1] = *wrong_file;
  }
  ExpectStartupFailure(o, "UNAUTHENTICATED: the PIN of PKCS#11 token 'kms-test' is wrong");
}

TEST_F(Pkcs11PluginE2eTest, AMissingTokenStopsTheProcessListingTheTokensFound) {
  PluginOptions o = Pkcs11Options();
  for (size_t i = 0; i + 1 < o.args.size(); ++i) {
    if (o.args[i] == "--pkcs11-token-label") o.args[i + 1] = "prod-hsm";
  }
  ExpectStartupFailure(o, "no PKCS#11 token labelled 'prod-hsm' in module " +
                              std::string(kSoftHsmModule) + " (tokens found: 'kms-test')");
}

TEST_F(Pkcs11PluginE2eTest, AnExtractableKeyStopsTheProcessNamingTheAttribute) {
  ASSERT_THAT(token_->KeyGen("kek", "01", {"--extractable"}), IsOk());
  ExpectStartupFailure(Pkcs11Options(), "CKA_EXTRACTABLE true");
}

TEST_F(Pkcs11PluginE2eTest, AThousandEncryptsAndAHundredStatusCallsMakeAtMostTwoHsmCryptoCalls) {
  const std::string spy_log = dir_->File("spy.log");
  PluginOptions o = Pkcs11Options("kms", kPkcs11SpyModule);
  o.env.push_back(std::string("PKCS11SPY=") + kSoftHsmModule);
  o.env.push_back("PKCS11SPY_OUTPUT=" + spy_log);
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(o));
  ApiserverKmsClient client(plugin->grpc_target());
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
  ASSERT_EQ(status.key_id(), KeyId(1));
  const int at_start = CryptoCalls(ReadFile(spy_log).value_or(""));
  EXPECT_GE(at_start, 2);  // The self-test and the first data key went through the spy.
  for (int i = 0; i < 1000; ++i) {
    ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt("object-" + std::to_string(i)));
    ASSERT_EQ(enc.key_id(), KeyId(1));
  }
  const int after_encrypts = CryptoCalls(ReadFile(spy_log).value_or(""));
  EXPECT_LE(after_encrypts - at_start, 2);
  for (int i = 0; i < 100; ++i) {
    ITEST_ASSIGN_OR_FAIL(v2::StatusResponse s, client.Status());
    ASSERT_EQ(s.healthz(), "ok");
  }
  EXPECT_EQ(CryptoCalls(ReadFile(spy_log).value_or("")) - after_encrypts, 0);
  std::cout << "[ figure ] HSM crypto calls: " << at_start << " at start-up, "
            << after_encrypts - at_start << " during 1000 Encrypts, 0 expected during 100 Status\n";
}

}  // namespace
}  // namespace kmsplugin::testing
