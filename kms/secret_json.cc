#include "kms/secret_json.h"

#include "absl/strings/numbers.h"
#include "fmt/format.h"

namespace kmsplugin {
namespace {

void AppendEscaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20) {
      out.append("\\u00");
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    } else {
      out.push_back(c);
    }
  }
}

}  // namespace

SecretBytes JsonObjectOfStrings(
    std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  size_t size = 2;
  for (const auto& [k, v] : fields) size += 6 * (k.size() + v.size()) + 6;
  std::string text;
  text.reserve(size);  // Escaping grows each byte at most sixfold: no reallocation.
  text.push_back('{');
  bool first = true;
  for (const auto& [k, v] : fields) {
    if (!first) text.push_back(',');
    first = false;
    text.push_back('"');
    AppendEscaped(text, k);
    text.append("\":\"");
    AppendEscaped(text, v);
    text.push_back('"');
  }
  text.push_back('}');
  return SecretBytes::TakeFrom(text);
}

absl::StatusOr<nlohmann::json> ParseAnswer(const SecretBytes& body, std::string_view what) {
  nlohmann::json doc = nlohmann::json::parse(body.Reveal(), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    WipeJson(doc);
    return absl::UnavailableError(fmt::format("{}: the answer is not a JSON object", what));
  }
  return doc;
}

void WipeJson(nlohmann::json& doc) {
  if (doc.is_string()) {
    WipeString(doc.get_ref<std::string&>());
  } else if (doc.is_object() || doc.is_array()) {
    for (auto& v : doc) WipeJson(v);
  }
}

std::optional<int64_t> IntField(const nlohmann::json& doc, const char* a, const char* b) {
  auto it = doc.find(a);
  if (it == doc.end() || !it->is_object()) return std::nullopt;
  auto jt = it->find(b);
  if (jt == it->end()) return std::nullopt;
  if (jt->is_number_integer()) return jt->get<int64_t>();
  if (jt->is_number_unsigned()) {
    const auto u = jt->get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (jt->is_string()) {
    int64_t v = 0;
    if (absl::SimpleAtoi(jt->get_ref<const std::string&>(), &v)) return v;
  }
  return std::nullopt;
}

}  // namespace kmsplugin
