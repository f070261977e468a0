// Issue 4 acceptance, end to end: two real `kms-plugin serve` processes sharing one local keyring
// (two control-plane nodes on one backend), polling the backend only once a minute, and
// `kms-plugin rotate` run as a real process.
//   - `rotate --kek` returns with both plugins on the same new key_id, long before any poll.
//   - Through 3 rotations with rolling restarts in between, every ciphertext ever produced still
//     decrypts through both plugins, new Encrypts carry the new key_id, and checkers calling
//     Status and Encrypt concurrently never see them disagree.
//   - A plugin that is down makes rotate fail with a clear message and change nothing.
// Each test runs once per backend: the local keyring (a new keyring version) and, when the AWS
// backend is built, AWS KMS through tests/aws/fake_aws_server.py (RotateKeyOnDemand: new key
// material), and PKCS#11 on a SoftHSM2 token (tests/pkcs11/softhsm_fixture.h: a new key object),
// and Vault Transit through tests/vault/fake_vault_server.py (transit rotate: a new key version),
// and Azure Key Vault through tests/azure/fake_azure_server.py (key rotate: a new key version);
// each when its backend is built.
#include <signal.h>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/plugin_test_base.h"
#include "tests/rotate/rotate_checkers.h"
#if KMSP_ROTATE_WITH_AWS
#include "tests/aws/fake_aws_server.h"
#endif
#if KMSP_ROTATE_WITH_PKCS11
#include "tests/pkcs11/softhsm_fixture.h"
#endif
#if KMSP_ROTATE_WITH_VAULT
#include "tests/vault/fake_vault_server.h"
#endif
#if KMSP_ROTATE_WITH_GCP
#include "tests/gcp/fake_gcp_server.h"
#endif
#if KMSP_ROTATE_WITH_AZURE
#include "tests/azure/fake_azure_server.h"
#endif

namespace kmsplugin::testing {
namespace {

using ::testing::HasSubstr;

struct RotateRun {
  ExitInfo exit;
  std::string out;  // stdout
  std::string err;  // stderr
  absl::Duration wall;
  nlohmann::json json;  // The last stdout line, parsed (null if it is not JSON).
};

enum class Backend { kLocal, kAws, kPkcs11, kVault, kGcp, kAzure };

const char* BackendLabel(Backend b) {
  switch (b) {
    case Backend::kLocal:
      return "local";
    case Backend::kAws:
      return "aws";
    case Backend::kPkcs11:
      return "pkcs11";
    case Backend::kVault:
      return "vault";
    case Backend::kGcp:
      return "gcp";
    case Backend::kAzure:
      return "azure";
  }
  return "?";
}

void PrintTo(Backend b, std::ostream* os) { *os << BackendLabel(b); }

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  std::string name = BackendLabel(info.param);
  name[0] = static_cast<char>(name[0] - 'a' + 'A');
  return name;
}

// On the integration base: its test dir and keyring path (the plugins are started directly, so
// the base's log scan has no log to read).
class RotateIntegrationTest : public PluginTestBase, public ::testing::WithParamInterface<Backend> {
 protected:
  void SetUp() override {
    PluginTestBase::SetUp();
    if (HasFatalFailure()) return;
    if (GetParam() == Backend::kAws) {
#if KMSP_ROTATE_WITH_AWS
      auto server = FakeAwsServer::Start();
      ASSERT_TRUE(server.ok()) << server.status();
      aws_ = std::move(*server);
      auto key = aws_->Admin("/admin/keys", {{ "alias", "k8s" }});
      ASSERT_TRUE(key.ok()) << key.status();
#else
      GTEST_SKIP() << "the AWS backend is not built";
#endif
    }
    if (GetParam() == Backend::kPkcs11) {
#if KMSP_ROTATE_WITH_PKCS11
      auto token = SoftHsmToken::Create(dir_->path());
      ASSERT_TRUE(token.ok()) << token.status();
      softhsm_.emplace(std::move(*token));
      auto pin_file = softhsm_->WritePinFile("pin", softhsm_->pin());
      ASSERT_TRUE(pin_file.ok()) << pin_file.status();
      pin_file_ = *pin_file;
#else
      GTEST_SKIP() << "the PKCS#11 backend is not built";
#endif
    }
    if (GetParam() == Backend::kVault) {
#if KMSP_ROTATE_WITH_VAULT
      auto server = FakeVaultServer::Start();
      ASSERT_TRUE(server.ok()) << server.status();
      vault_ = std::move(*server);
      ASSERT_TRUE(vault_->Admin("/admin/keys", {{ "name", "k8s" }}).ok());
      auto token = vault_->NewToken("k8s", 0, /*rotate=*/true);  // Shared by every node.
      ASSERT_TRUE(token.ok()) << token.status();
      ASSERT_THAT(WriteFile(dir_->File("vault-token"), *token), IsOk());
#else
      GTEST_SKIP() << "the Vault backend is not built";
#endif
    }
    if (GetParam() == Backend::kGcp) {
#if KMSP_ROTATE_WITH_GCP
      auto server = FakeGcpServer::Start();
      ASSERT_TRUE(server.ok()) << server.status();
      gcp_ = std::move(*server);
      ASSERT_THAT(gcp_->CreateKey(kGcpKey), IsOk());
#else
      GTEST_SKIP() << "the GCP backend is not built";
#endif
    }
    if (GetParam() == Backend::kAzure) {
#if KMSP_ROTATE_WITH_AZURE
      auto server = FakeAzureServer::Start();
      ASSERT_TRUE(server.ok()) << server.status();
      azure_ = std::move(*server);
      ASSERT_TRUE(azure_->CreateKey("kek").ok());
      ASSERT_TRUE(
          azure_->Admin("/admin/entra", {{"client_id", "app-1"},
                                         { "secret",
                                           "rotate-secret" }})
              .ok());
#else
      GTEST_SKIP() << "the Azure backend is not built";
#endif
    }
  }

  // The serve flags of the backend under test (every node shares it).
  std::vector<std::string> BackendArgs() const {
#if KMSP_ROTATE_WITH_AWS
    if (GetParam() == Backend::kAws) {
      return {"--kms",         "aws",          "--aws-key-id",   "alias/k8s",
              "--aws-region",  aws_->region(), "--aws-endpoint", aws_->kms_endpoint(),
              "--aws-ca-file", aws_->ca_file()};
    }
#endif
#if KMSP_ROTATE_WITH_PKCS11
    if (GetParam() == Backend::kPkcs11) {
      return {"--kms",
              "pkcs11",
              "--pkcs11-module",
              kSoftHsmModule,
              "--pkcs11-token-label",
              softhsm_->label(),
              "--pkcs11-pin-file",
              pin_file_,
              "--pkcs11-key-label",
              "kek"};
    }
#endif
#if KMSP_ROTATE_WITH_VAULT
    if (GetParam() == Backend::kVault) {
      return {"--kms",
              "vault",
              "--vault-addr",
              vault_->addr(),
              "--vault-key",
              "k8s",
              "--vault-ca-file",
              vault_->ca_file(),
              "--vault-token-file",
              dir_->File("vault-token")};
    }
#endif
#if KMSP_ROTATE_WITH_GCP
    if (GetParam() == Backend::kGcp) {
      return {"--kms",          "gcp",           "--gcp-key",    kGcpKey, "--gcp-endpoint",
              gcp_->endpoint(), "--gcp-ca-file", gcp_->ca_file()};
    }
#endif
#if KMSP_ROTATE_WITH_AZURE
    if (GetParam() == Backend::kAzure) {
      return {
          "--kms", "azure",           "--azure-vault-url", azure_->vault_url(), "--azure-key-name",
          "kek",   "--azure-ca-file", azure_->ca_file()};
    }
#endif
    return LocalKmsArgs(keyring_path_);
  }
  std::vector<std::string> BackendEnv() const {
#if KMSP_ROTATE_WITH_AZURE
    if (GetParam() == Backend::kAzure) {  // A client secret; the fake is also the authority.
      return {"AZURE_TENANT_ID=" + azure_->tenant(), "AZURE_CLIENT_ID=app-1",
              "AZURE_CLIENT_SECRET=rotate-secret",   "AZURE_AUTHORITY_HOST=" + azure_->vault_url(),
              "NO_PROXY=127.0.0.1,localhost",        "no_proxy=127.0.0.1,localhost"};
    }
#endif
#if KMSP_ROTATE_WITH_PKCS11
    if (GetParam() == Backend::kPkcs11) return softhsm_->Env();
#endif
#if KMSP_ROTATE_WITH_GCP
    if (GetParam() == Backend::kGcp) {  // The service-account key file; no real metadata server.
      return {"GOOGLE_APPLICATION_CREDENTIALS=" + gcp_->sa_key_file(),
              "GCE_METADATA_HOST=" + gcp_->metadata_host(), "NO_PROXY=127.0.0.1"};
    }
#endif
    if (GetParam() != Backend::kAws) return {};
#if KMSP_ROTATE_WITH_AWS
    std::vector<std::string> env;
    for (const auto& [k, v] : FakeAwsServer::StaticCredentialsEnv())
      env.push_back(absl::StrCat(k, "=", v));
    return env;
#else
    return {};
#endif
  }
  // How many KEK rotations the backend has performed, by its own account.
  int BackendRotations() {
#if KMSP_ROTATE_WITH_AWS
    if (GetParam() == Backend::kAws) {
      auto log = aws_->Requests();
      EXPECT_TRUE(log.ok()) << log.status();
      int n = 0;
      if (log.ok()) {
        for (const auto& r : *log) n += r.value("op", "") == "RotateKeyOnDemand";
      }
      return n;
    }
#endif
#if KMSP_ROTATE_WITH_PKCS11
    if (GetParam() == Backend::kPkcs11) {  // One key object per version, all labelled "kek".
      auto ids = softhsm_->KeyIds("kek");
      EXPECT_TRUE(ids.ok()) << ids.status();
      return ids.ok() ? static_cast<int>(ids->size()) - 1 : -1;
    }
#endif
#if KMSP_ROTATE_WITH_VAULT
    if (GetParam() == Backend::kVault) return vault_->Count("rotate");  // Transit rotations.
#endif
#if KMSP_ROTATE_WITH_GCP
    if (GetParam() == Backend::kGcp) return gcp_->Count("versions.create");  // New versions.
#endif
#if KMSP_ROTATE_WITH_AZURE
    if (GetParam() == Backend::kAzure) return azure_->Count("rotate");  // Key Vault rotations.
#endif
    auto text = ReadFile(keyring_path_);
    EXPECT_TRUE(text.ok()) << text.status();
    nlohmann::json j = nlohmann::json::parse(text.value_or(""), nullptr, false);
    return j.is_object() ? static_cast<int>(j["keys"].size()) - 1 : -1;
  }

  std::string Listen(const std::string& node) const {
    return "unix://" + dir_->File(node + ".sock");
  }

  // A plugin for `node`, on the shared keyring, polling the backend once a minute.
  absl::StatusOr<std::unique_ptr<PluginProcess>> StartPlugin(const std::string& node) {
    PluginOptions o;
    o.listen = Listen(node);
    o.args = BackendArgs();
    o.args.insert(o.args.end(), {"--key-poll-interval", "1m"});
    o.env = BackendEnv();
    o.log_path = dir_->File(node + ".log");
    return PluginProcess::Start(o);
  }

  // Runs `kms-plugin rotate ARGS` to completion (60 s at most).
  RotateRun Rotate(std::vector<std::string> args) {
    static int n = 0;
    ++n;
    ProcessOptions p;
    p.binary = PluginBinary();
    p.args = {"rotate"};
    p.args.insert(p.args.end(), args.begin(), args.end());
    p.stdout_path = dir_->File("rotate-" + std::to_string(n) + ".out");
    p.stderr_path = dir_->File("rotate-" + std::to_string(n) + ".err");
    RotateRun run;
    const absl::Time start = absl::Now();
    auto exit = Subprocess::Run(p, absl::Seconds(60));
    run.wall = absl::Now() - start;
    EXPECT_TRUE(exit.ok()) << exit.status();
    if (exit.ok()) run.exit = *exit;
    run.out = ReadFile(p.stdout_path).value_or("");
    run.err = ReadFile(p.stderr_path).value_or("");
    std::string last = run.out;
    while (!last.empty() && last.back() == '\n') last.pop_back();
    if (size_t nl = last.rfind('\n'); nl != std::string::npos) last = last.substr(nl + 1);
    run.json = nlohmann::json::parse(last, nullptr, /*allow_exceptions=*/false);
    return run;
  }

  static std::string KeyIdOf(PluginProcess& p) {
    ApiserverKmsClient client(p.grpc_target());
    auto st = client.Status();
    return st.ok() ? st->key_id() : "error: " + st.status().ToString();
  }

  std::string Name() const { return BackendLabel(GetParam()); }

#if KMSP_ROTATE_WITH_AWS
  std::unique_ptr<FakeAwsServer> aws_;
#endif
#if KMSP_ROTATE_WITH_PKCS11
  std::optional<SoftHsmToken> softhsm_;
  std::string pin_file_;
#endif
#if KMSP_ROTATE_WITH_VAULT
  std::unique_ptr<FakeVaultServer> vault_;
#endif
#if KMSP_ROTATE_WITH_GCP
  static constexpr char kGcpKey[] = "projects/p/locations/global/keyRings/r/cryptoKeys/k8s";
  std::unique_ptr<FakeGcpServer> gcp_;
#endif
#if KMSP_ROTATE_WITH_AZURE
  std::unique_ptr<FakeAzureServer> azure_;
#endif
};

TEST_P(RotateIntegrationTest, RotateKekConvergesBothPluginsLongBeforeTheirOneMinutePoll) {
  ITEST_ASSIGN_OR_FAIL(auto a, StartPlugin("a"));
  ITEST_ASSIGN_OR_FAIL(auto b, StartPlugin("b"));
  const std::string old_id = KeyIdOf(*a);
  ASSERT_EQ(KeyIdOf(*b), old_id);

  RotateRun run = Rotate({"--socket", Listen("a"), "--socket", Listen("b"), "--kek"});
  ASSERT_TRUE(run.exit.exited && run.exit.code == 0)
      << run.exit.ToString() << "\nstdout: " << run.out << "\nstderr: " << run.err;
  ASSERT_TRUE(run.json.is_object()) << run.out;
  const std::string new_id = run.json.value("new_key_id", "");
  EXPECT_EQ(run.json.value("old_key_id", ""), old_id);
  EXPECT_NE(new_id, old_id);
  EXPECT_FALSE(new_id.empty());
  EXPECT_EQ(BackendRotations(), 1);  // Once at the shared backend, not once per plugin.
  ASSERT_EQ(run.json["plugins"].size(), 2u);
  for (const auto& p : run.json["plugins"]) {
    EXPECT_EQ(p.value("key_id", ""), new_id);
    EXPECT_EQ(p.value("canary", ""), "ok");
  }
  // Both plugins say so themselves, to an apiserver-like client, and encrypt under it.
  for (PluginProcess* p : {a.get(), b.get()}) {
    ApiserverKmsClient client(p->grpc_target());
    ITEST_ASSIGN_OR_FAIL(v2::StatusResponse st, client.Status());
    EXPECT_EQ(st.key_id(), new_id);
    EXPECT_EQ(st.healthz(), "ok");
    ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(*RandomBytes(32)));
    EXPECT_THAT(ValidateEncryptResponse(enc, new_id), IsOk());
  }
  EXPECT_THAT(run.err, HasSubstr("kms-plugin reencrypt"));
  EXPECT_THAT(run.err, HasSubstr("no earlier than"));
  // The figure for the report (the acceptance bound is 5 s; not asserted: no timing assertions).
  std::cout << "[ figure ] " << Name() << ": rotate --kek: 2 plugins on " << new_id << " after "
            << absl::FormatDuration(run.wall) << " wall (rotator's own elapsed_ms "
            << run.json.value("elapsed_ms", -1) << "), poll interval 1m\n";
  RecordProperty("rotate_wall_ms", std::to_string(absl::ToInt64Milliseconds(run.wall)));
  EXPECT_THAT(a->Terminate(), IsOkAndHolds(::testing::Field(&ExitInfo::code, 0)));
  EXPECT_THAT(b->Terminate(), IsOkAndHolds(::testing::Field(&ExitInfo::code, 0)));
}

TEST_P(RotateIntegrationTest, ThreeRotationsWithRestartsKeepEveryCiphertextReadableOnBothNodes) {
  constexpr int kRotations = 3;
  constexpr int kChecksBetweenSteps = 50;
  ITEST_ASSIGN_OR_FAIL(auto a, StartPlugin("a"));
  ITEST_ASSIGN_OR_FAIL(auto b, StartPlugin("b"));
  std::vector<std::string> key_ids = {KeyIdOf(*a)};
  ASSERT_EQ(KeyIdOf(*b), key_ids[0]);

  struct Written {
    v2::EncryptResponse enc;
    std::string plaintext;
    std::string node;
  };
  std::vector<Written> written;
  auto write_through_both = [&](const std::string& expected_key_id) {
    for (const std::string node : {"a", "b"}) {
      ApiserverKmsClient client(ListenToGrpcTarget(Listen(node)));
      std::string plaintext = *RandomBytes(32);
      auto enc = client.Encrypt(plaintext);
      ASSERT_TRUE(enc.ok()) << enc.status();
      EXPECT_EQ(enc->key_id(), expected_key_id) << "node " << node;
      written.push_back({*enc, plaintext, node});
    }
  };
  ASSERT_NO_FATAL_FAILURE(write_through_both(key_ids[0]));

  Checkers checkers({ListenToGrpcTarget(Listen("a")), ListenToGrpcTarget(Listen("b"))});
  checkers.WaitForChecks(kChecksBetweenSteps);
  for (int r = 1; r <= kRotations; ++r) {
    RotateRun run = Rotate({"--socket", Listen("a"), "--socket", Listen("b"), "--kek"});
    ASSERT_TRUE(run.exit.exited && run.exit.code == 0)
        << "rotation " << r << ": " << run.exit.ToString() << "\n"
        << run.out << run.err;
    const std::string new_id = run.json.value("new_key_id", "");
    EXPECT_EQ(run.json.value("old_key_id", ""), key_ids.back());
    for (const std::string& old : key_ids) ASSERT_NE(new_id, old) << "key_id reused";
    key_ids.push_back(new_id);
    std::cout << "[ figure ] " << Name() << ": rotation " << r << ": converged in "
              << absl::FormatDuration(run.wall) << " wall\n";
    ASSERT_NO_FATAL_FAILURE(write_through_both(new_id));
    checkers.WaitForChecks(kChecksBetweenSteps);

    // Rolling restart, as a control plane upgrades node by node; the checkers keep calling.
    for (auto* p : {&a, &b}) {
      const std::string node = p == &a ? "a" : "b";
      auto exit = (*p)->Terminate();
      ASSERT_TRUE(exit.ok() && exit->exited && exit->code == 0)
          << node << ": " << (exit.ok() ? exit->ToString() : exit.status().ToString());
      p->reset();
      ITEST_ASSIGN_OR_FAIL(*p, StartPlugin(node));
      EXPECT_EQ(KeyIdOf(**p), new_id) << node << " after its restart";
      checkers.WaitForChecks(kChecksBetweenSteps);
    }
    ASSERT_NO_FATAL_FAILURE(write_through_both(new_id));
  }
  checkers.WaitForChecks(kChecksBetweenSteps);
  checkers.Stop();

  const Checkers::Verdict verdict = checkers.Judge(key_ids);
  EXPECT_EQ(verdict.disagreements, 0) << ::testing::PrintToString(verdict.notes);
  EXPECT_EQ(verdict.regressions, 0) << ::testing::PrintToString(verdict.notes);
  EXPECT_EQ(verdict.unknown, 0) << ::testing::PrintToString(verdict.notes);
  EXPECT_EQ(checkers.invalid(), 0);
  // The checkers ran through every key_id.
  EXPECT_EQ(checkers.key_ids(), std::set<std::string>(key_ids.begin(), key_ids.end()));

  // Every ciphertext ever produced decrypts through both plugins (fresh connections).
  size_t failures = 0, total = 0;
  for (const std::string node : {"a", "b"}) {
    ApiserverKmsClient client(ListenToGrpcTarget(Listen(node)));
    auto check = [&](const v2::EncryptResponse& enc, const std::string& plaintext,
                     const std::string& what) {
      ++total;
      auto dec = client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc));
      if (!dec.ok() || dec->plaintext() != plaintext) {
        if (++failures <= 5) {
          ADD_FAILURE() << what << " (key_id " << enc.key_id() << ") through " << node << ": "
                        << (dec.ok() ? std::string("wrong plaintext") : dec.status().ToString());
        }
      }
    };
    for (const Written& w : written) check(w.enc, w.plaintext, "written through " + w.node);
    for (const auto& s : checkers.samples()) check(s.enc, s.plaintext, "checker sample");
  }
  EXPECT_EQ(failures, 0u) << "of " << total;
  std::cout << "[ figure ] " << Name() << ": " << kRotations << " rotations, " << 2 * kRotations
            << " restarts: " << checkers.checks() << " Status/Encrypt/Status checks ("
            << checkers.errors() << " calls failed during restarts), " << total << " decrypts of "
            << written.size() + checkers.samples().size() << " ciphertexts over " << key_ids.size()
            << " key_ids, " << verdict.disagreements << " disagreements\n";
}

TEST_P(RotateIntegrationTest, DataKeyRotationKeepsTheKeyIdAndSaysThereIsNothingToReencrypt) {
  ITEST_ASSIGN_OR_FAIL(auto a, StartPlugin("a"));
  ITEST_ASSIGN_OR_FAIL(auto b, StartPlugin("b"));
  const std::string id = KeyIdOf(*a);
  RotateRun run = Rotate({"--socket", Listen("a"), "--socket", Listen("b")});
  ASSERT_TRUE(run.exit.exited && run.exit.code == 0) << run.out << run.err;
  EXPECT_EQ(run.json.value("old_key_id", ""), id);
  EXPECT_EQ(run.json.value("new_key_id", ""), id);
  EXPECT_EQ(run.json.value("kek_rotated", true), false);
  EXPECT_THAT(run.err, HasSubstr("nothing to re-encrypt"));
  EXPECT_EQ(KeyIdOf(*b), id);
}

TEST_P(RotateIntegrationTest, APluginThatIsDownMakesRotateFailClearlyAndChangeNothing) {
  ITEST_ASSIGN_OR_FAIL(auto a, StartPlugin("a"));
  const std::string id = KeyIdOf(*a);
  ASSERT_EQ(BackendRotations(), 0);
  RotateRun run =
      Rotate({"--socket", Listen("a"), "--socket", Listen("down"), "--kek", "--timeout", "5s"});
  EXPECT_TRUE(run.exit.exited);
  EXPECT_EQ(run.exit.code, 1);
  EXPECT_THAT(run.err, HasSubstr(Listen("down")));
  EXPECT_THAT(run.err, HasSubstr("nothing was rotated"));
  EXPECT_EQ(run.json.value("ok", true), false);
  EXPECT_EQ(KeyIdOf(*a), id);
  EXPECT_EQ(BackendRotations(), 0);
}

TEST(RotateCommandTest, MismatchedAdminSocketFlagsAreAUsageError) {
  auto dir = TempDir::Create("kmsp-rotate");
  ASSERT_TRUE(dir.ok()) << dir.status();
  ProcessOptions p;
  p.binary = PluginBinary();
  p.args = {"rotate",
            "--socket",
            "unix://" + dir->File("a.sock"),
            "--socket",
            "unix://" + dir->File("b.sock"),
            "--admin-socket",
            "unix://" + dir->File("a.admin")};
  p.stderr_path = dir->File("err");
  auto exit = Subprocess::Run(p, absl::Seconds(30));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->exited);
  EXPECT_EQ(exit->code, 2);
  EXPECT_THAT(ReadFile(p.stderr_path).value_or(""), HasSubstr("one --admin-socket per --socket"));
}

INSTANTIATE_TEST_SUITE_P(Backends, RotateIntegrationTest,
                         ::testing::Values(Backend::kLocal, Backend::kAws, Backend::kPkcs11,
                                           Backend::kVault, Backend::kGcp, Backend::kAzure),
                         BackendName);

}  // namespace
}  // namespace kmsplugin::testing
