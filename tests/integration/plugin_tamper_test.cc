// Tamper resistance of `kms-plugin serve` (issue 2, acceptance item 2): for a sample of Encrypt
// replies, every single-bit flip of the ciphertext and of each annotation value, annotations
// swapped in from other replies (another process on the same keyring, another keyring), and
// changed key_ids all make Decrypt fail with a gRPC error, never return a plaintext, never echo
// the input; the process keeps serving afterwards.
#include <atomic>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/integration/plugin_test_base.h"

namespace kmsplugin::testing {
namespace {

using ::testing::AnyOf;

class PluginTamperTest : public PluginTestBase {
 protected:
  struct Case {
    std::string what;
    v2::DecryptRequest request;
    std::string tampered_bytes;  // The modified field, for the no-echo check.
  };

  // Sends every case (4 threads on one connection). Each must fail with INVALID_ARGUMENT or
  // FAILED_PRECONDITION (the codes docs/style.md assigns to a bad tag, a bad annotation and an
  // unknown key_id) and must not echo the tampered bytes. Reports at most 10 failures.
  void ExpectAllRejected(ApiserverKmsClient& client, const std::vector<Case>& cases) {
    std::mutex mu;
    std::vector<std::string> failures;
    std::atomic<size_t> next{0};
    auto worker = [&] {
      for (size_t i = next++; i < cases.size(); i = next++) {
        const Case& c = cases[i];
        auto dec = client.Decrypt(c.request);
        std::string failure;
        if (dec.ok()) {
          failure = "decrypted (" + std::to_string(dec->plaintext().size()) + " bytes returned)";
        } else if (dec.status().code() != absl::StatusCode::kInvalidArgument &&
                   dec.status().code() != absl::StatusCode::kFailedPrecondition) {
          failure = "wrong code: " + dec.status().ToString();
        } else if (std::string echo = FindEcho(ToStd(dec.status().message()), c.tampered_bytes);
                   !echo.empty()) {
          failure = "error message echoes input: " + echo;
        }
        if (!failure.empty()) {
          std::lock_guard<std::mutex> lock(mu);
          failures.push_back(c.what + ": " + failure);
        }
      }
    };
    std::vector<std::thread> pool;
    pool.reserve(4);
    for (int t = 0; t < 4; ++t) pool.emplace_back(worker);
    for (auto& th : pool) th.join();
    for (size_t i = 0; i < failures.size() && i < 10; ++i) ADD_FAILURE() << failures[i];
    EXPECT_EQ(failures.size(), 0u) << "of " << cases.size() << " tampered requests";
  }

  template <typename M>
  static AnnotationMap AsMap(const M& m) {
    return AnnotationMap(m.begin(), m.end());
  }

  static std::string FlipBit(std::string s, size_t bit) {
    s[bit / 8] = static_cast<char>(s[bit / 8] ^ (1 << (bit % 8)));
    return s;
  }

  // The process still answers Status ok and round-trips a new seed.
  void ExpectStillServing(PluginProcess& plugin) {
    EXPECT_TRUE(plugin.Running());
    ApiserverKmsClient fresh(plugin.grpc_target());
    auto status = fresh.Status();
    ASSERT_THAT(status, IsOk());
    EXPECT_THAT(ValidateStatusResponse(*status, "v2"), IsOk());
    std::string seed = NewSeed();
    EXPECT_THAT(fresh.RoundTrip(seed), IsOkAndHolds(seed));
  }
};

TEST_F(PluginTamperTest, EveryBitFlipOfCiphertextOrAnnotationValueIsRejected) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Options()));
  ApiserverKmsClient client(plugin->grpc_target());
  constexpr int kSamples = 5;
  std::vector<Case> cases;
  size_t annotation_bits = 0;
  for (int s = 0; s < kSamples; ++s) {
    std::string seed = NewSeed();
    ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(seed));
    v2::DecryptRequest base = ApiserverKmsClient::DecryptRequestFor(enc);
    ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse ok, client.Decrypt(base));
    ASSERT_EQ(ok.plaintext(), seed) << "untampered sample " << s << " must decrypt";

    const std::string& ct = enc.ciphertext();
    for (size_t bit = 0; bit < ct.size() * 8; ++bit) {
      Case c{"sample " + std::to_string(s) + " ciphertext bit " + std::to_string(bit), base, {}};
      c.tampered_bytes = FlipBit(ct, bit);
      c.request.set_ciphertext(c.tampered_bytes);
      cases.push_back(std::move(c));
    }
    for (const auto& [key, value] : enc.annotations()) {
      for (size_t bit = 0; bit < value.size() * 8; ++bit) {
        Case c{"sample " + std::to_string(s) + " annotation " + key + " bit " + std::to_string(bit),
               base,
               {}};
        c.tampered_bytes = FlipBit(value, bit);
        (*c.request.mutable_annotations())[key] = c.tampered_bytes;
        cases.push_back(std::move(c));
        ++annotation_bits;
      }
    }
    // Truncated and extended ciphertexts.
    Case shorter{"sample " + std::to_string(s) + " ciphertext minus last byte", base,
                 ct.substr(0, ct.size() - 1)};
    shorter.request.set_ciphertext(shorter.tampered_bytes);
    cases.push_back(shorter);
    Case longer{"sample " + std::to_string(s) + " ciphertext plus a byte", base, ct + '\0'};
    longer.request.set_ciphertext(longer.tampered_bytes);
    cases.push_back(longer);
  }
  EXPECT_GT(annotation_bits, 0u) << "the replies carry no annotation values to tamper with";
  ExpectAllRejected(client, cases);
  ExpectStillServing(*plugin);
}

TEST_F(PluginTamperTest, AnnotationsFromOtherRepliesKeyIdChangesAndAnnotationEditsAreRejected) {
  // P1 and P2 share one keyring (each has its own data key); P3 has another keyring.
  ITEST_ASSIGN_OR_FAIL(auto p1, Start(Options("p1")));
  ITEST_ASSIGN_OR_FAIL(auto p2, Start(Options("p2")));
  PluginOptions o3 = Options("p3");
  o3.args = LocalKmsArgs(dir_->File("other-keyring.json"));
  o3.args.push_back("--log-level");
  o3.args.push_back("debug");
  ITEST_ASSIGN_OR_FAIL(auto p3, Start(o3));
  ApiserverKmsClient c1(p1->grpc_target()), c2(p2->grpc_target()), c3(p3->grpc_target());

  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse from_p2, c2.Encrypt(NewSeed()));
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse from_p3, c3.Encrypt(NewSeed()));

  std::vector<Case> cases;
  std::vector<v2::EncryptResponse> samples;
  for (int s = 0; s < 5; ++s) {
    std::string seed = NewSeed();
    ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, c1.Encrypt(seed));
    samples.push_back(enc);
    const v2::DecryptRequest base = ApiserverKmsClient::DecryptRequestFor(enc);
    const std::string tag = "sample " + std::to_string(s) + " ";
    ASSERT_FALSE(enc.annotations().empty());
    ASSERT_EQ(enc.key_id(), from_p2.key_id()) << "same keyring, same key_id";
    ASSERT_NE(enc.key_id(), from_p3.key_id()) << "another keyring, another key_id";

    // Whole annotation maps and single values from the other replies.
    for (const auto* other : {&from_p2, &from_p3}) {
      const std::string who = other == &from_p2 ? "P2 (same keyring)" : "P3 (other keyring)";
      ASSERT_NE(AsMap(other->annotations()), AsMap(enc.annotations()))
          << "the swap would be a no-op";
      Case all{absl::StrCat(tag, "annotations of ", who), base, {}};
      *all.request.mutable_annotations() = other->annotations();
      cases.push_back(all);
      for (const auto& [key, value] : other->annotations()) {
        if (enc.annotations().count(key) == 0) continue;
        Case one{absl::StrCat(tag, "annotation ", key, " of ", who), base, value};
        (*one.request.mutable_annotations())[key] = value;
        cases.push_back(one);
      }
    }
    // The other keyring's reply with this key_id, and this reply with the other's key_id.
    Case theirs_with_our_id{tag + "P3's ciphertext+annotations under P1's key_id",
                            ApiserverKmsClient::DecryptRequestFor(from_p3),
                            {}};
    theirs_with_our_id.request.set_key_id(enc.key_id());
    cases.push_back(theirs_with_our_id);
    Case ours_with_their_id{tag + "key_id of P3", base, {}};
    ours_with_their_id.request.set_key_id(from_p3.key_id());
    cases.push_back(ours_with_their_id);

    // Edited key_ids.
    const std::string& id = enc.key_id();
    std::vector<std::pair<std::string, std::string>> ids = {
        {"key_id + '0'", id + "0"},
        {"key_id + 'x'", id + "x"},
        {"key_id minus last char", id.substr(0, id.size() - 1)},
        {"'x' + key_id", "x" + id},
        {"key_id with last char changed",
         id.substr(0, id.size() - 1) + (id.back() == '2' ? std::string("3") : "2")},
        {"key_id with first char changed", (id[0] == 'x' ? std::string("y") : "x") + id.substr(1)},
        {"key_id upper-cased",
         [&] {
           std::string u = id;
           for (char& ch : u) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
           return u == id ? id + "X" : u;
         }()},
    };
    for (const auto& [what, changed] : ids) {
      Case c{tag + what, base, {}};
      c.request.set_key_id(changed);
      cases.push_back(c);
    }

    // Annotation removed, annotation added.
    Case removed{tag + "annotations removed", base, {}};
    removed.request.clear_annotations();
    cases.push_back(removed);
    Case added{tag + "extra annotation added", base, {}};
    (*added.request.mutable_annotations())["extra.example.com"] = "x";
    cases.push_back(added);
  }
  // Swaps among P1's own replies, where they differ (one data key usually serves them all).
  for (size_t a = 0; a < samples.size(); ++a) {
    for (size_t b = 0; b < samples.size(); ++b) {
      if (a == b || AsMap(samples[a].annotations()) == AsMap(samples[b].annotations())) continue;
      Case c{"P1 sample " + std::to_string(a) + " with annotations of sample " + std::to_string(b),
             ApiserverKmsClient::DecryptRequestFor(samples[a]),
             {}};
      *c.request.mutable_annotations() = samples[b].annotations();
      cases.push_back(c);
    }
  }
  ExpectAllRejected(c1, cases);
  ExpectStillServing(*p1);
  ExpectStillServing(*p2);
  ExpectStillServing(*p3);
}

}  // namespace
}  // namespace kmsplugin::testing
