// Helpers for the Google Cloud KMS unit tests: a static token source, a Cloud KMS stand-in for
// FakeHttpClient (ciphertext = "CT:" + plaintext, with correct CRC32C fields unless told
// otherwise), and form / base64url decoding to read what the backend sent.
#ifndef KMSP_TESTS_GCP_GCP_TEST_UTIL_H_
#define KMSP_TESTS_GCP_GCP_TEST_UTIL_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "crypto/crc32c.h"
#include "crypto/encoding.h"
#include "kms/bearer/access_token.h"
#include "nlohmann/json.hpp"
#include "tests/fakes/fake_http_client.h"

namespace kmsplugin::testing {

inline constexpr char kTestKey[] = "projects/p/locations/global/keyRings/r/cryptoKeys/k";

class StaticTokenSource final : public TokenSource {
 public:
  std::string_view Name() const override { return "static"; }
  absl::StatusOr<AccessToken> Fetch(const CallContext&) override {
    ++fetches;
    return AccessToken{SecretBytes::CopyFrom("ya29.static-" + std::to_string(invalidations.load())),
                       absl::InfiniteFuture(), "static", "tester"};
  }
  void Invalidate() override { ++invalidations; }
  std::atomic<int> fetches{0};
  std::atomic<int> invalidations{0};
};

inline std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

// An application/x-www-form-urlencoded body as a map.
inline std::map<std::string, std::string> ParseForm(std::string_view body) {
  std::map<std::string, std::string> form;
  while (!body.empty()) {
    const size_t amp = body.find('&');
    const std::string_view pair = body.substr(0, amp);
    const size_t eq = pair.find('=');
    form[PercentDecode(pair.substr(0, eq))] =
        eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    body.remove_prefix(amp + 1);
  }
  return form;
}

// base64url (padded or not) -> bytes ("" on error).
inline std::string Base64UrlDecode(std::string s) {
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (s.size() % 4 != 0) s.push_back('=');
  absl::StatusOr<std::string> out = Base64Decode(s);
  return out.ok() ? *out : "";
}

// Answers Cloud KMS encrypt/decrypt/get like the service, for version `version` of kTestKey.
struct FakeCloudKms {
  int version = 1;
  std::string state = "ENABLED";

  HttpResponse Answer(const RecordedRequest& r) const {
    const std::string base = std::string("/v1/") + kTestKey;
    const std::string version_name =
        std::string(kTestKey) + "/cryptoKeyVersions/" + std::to_string(version);
    if (r.method == "GET") {
      return MakeResponse(
          200,
          nlohmann::json{
              {"name", kTestKey},
              {"purpose", "ENCRYPT_DECRYPT"},
              {"primary",
               {{"name", version_name}, {"state", state}, {"protectionLevel", "SOFTWARE"}}}}
              .dump());
    }
    const nlohmann::json req = nlohmann::json::parse(r.body, nullptr, false);
    if (r.url.size() >= 8 && r.url.substr(r.url.size() - 8) == ":encrypt") {
      const std::string pt = *Base64Decode(req["plaintext"].get<std::string>());
      const std::string ct = "CT:" + pt;
      return MakeResponse(200, nlohmann::json{{"name", version_name},
                                              {"ciphertext", Base64Encode(ct)},
                                              {"ciphertextCrc32c", std::to_string(Crc32c(ct))},
                                              {"verifiedPlaintextCrc32c", true},
                                              {"verifiedAdditionalAuthenticatedDataCrc32c", true},
                                              {"protectionLevel", "SOFTWARE"}}
                                   .dump());
    }
    const std::string ct = *Base64Decode(req["ciphertext"].get<std::string>());
    const std::string pt = ct.substr(3);
    return MakeResponse(200, nlohmann::json{{"plaintext", Base64Encode(pt)},
                                            {"plaintextCrc32c", std::to_string(Crc32c(pt))}}
                                 .dump());
  }
};

// A google.rpc error answer.
inline HttpResponse GoogleError(int http, const std::string& status, const std::string& message) {
  return MakeResponse(
      http,
      nlohmann::json{{"error", {{"code", http}, {"message", message}, {"status", status}}}}.dump());
}

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_GCP_GCP_TEST_UTIL_H_
