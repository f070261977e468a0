// Small JSON helpers shared by the HTTP backends (Vault, AWS, GCP, Azure) for bodies that carry
// secrets (tokens, secret ids, jwts, plaintext keys): request bodies are assembled by hand into one
// pre-sized buffer so that no library copy of the secret is left behind, and parsed answers are
// wiped after use.
#ifndef KMSP_KMS_SECRET_JSON_H_
#define KMSP_KMS_SECRET_JSON_H_

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"
#include "nlohmann/json.hpp"

namespace kmsplugin {

// {"k1":"v1","k2":"v2"} with each value JSON-escaped, in a buffer reserved once.
SecretBytes JsonObjectOfStrings(
    std::initializer_list<std::pair<std::string_view, std::string_view>> fields);

// Parses an answer; UNAVAILABLE naming `what` ("Vault transit encrypt") when it is not a JSON
// object.
absl::StatusOr<nlohmann::json> ParseAnswer(const SecretBytes& body, std::string_view what);

// Wipes every string in `doc`, recursively (answers that held tokens or plaintext).
void WipeJson(nlohmann::json& doc);

// doc[a][b] as an integer (also from a numeric string, as some Vault fields are); nullopt when
// absent or not a number.
std::optional<int64_t> IntField(const nlohmann::json& doc, const char* a, const char* b);

}  // namespace kmsplugin

#endif  // KMSP_KMS_SECRET_JSON_H_
