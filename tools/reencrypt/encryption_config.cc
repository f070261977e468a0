#include "tools/reencrypt/encryption_config.h"

#include <yaml-cpp/yaml.h>

#include <set>
#include <streambuf>

#include "base/printable.h"
#include "base/status.h"
#include "crypto/encoding.h"
#include "fmt/format.h"
#include "kms/secret_file.h"

namespace kmsplugin::reencrypt {
namespace {

absl::Status Invalid(std::string_view msg) {
  return absl::InvalidArgumentError(ToAbsl(fmt::format("encryption config: {}", msg)));
}

// An istream source over the caller's bytes, without copying them.
class ViewStreamBuf final : public std::streambuf {
 public:
  explicit ViewStreamBuf(std::string_view bytes) {
    char* p = const_cast<char*>(bytes.data());  // read-only: no put area, no putback writes
    setg(p, p, p + bytes.size());
  }
};

// Every YAML access below may throw YAML::Exception; ParseEncryptionConfig catches it.
absl::StatusOr<std::string> ScalarString(const YAML::Node& node, std::string_view what) {
  if (!node || node.IsNull()) return std::string();
  if (!node.IsScalar()) return Invalid(fmt::format("{} must be a string", what));
  return node.as<std::string>();
}

absl::Status ParseKeys(const YAML::Node& node, ProviderKind kind, std::string_view where,
                       ProviderConfig* out) {
  const YAML::Node keys = node["keys"];
  if (!keys || !keys.IsSequence() || keys.size() == 0) {
    return Invalid(fmt::format("{}: {} needs at least one key", where, ProviderKindName(kind)));
  }
  std::set<std::string> names;
  for (size_t i = 0; i < keys.size(); ++i) {
    std::string key_where = fmt::format("{}.keys[{}]", where, i);
    KMSP_ASSIGN_OR_RETURN(std::string name, ScalarString(keys[i]["name"], key_where + ".name"));
    if (name.empty()) return Invalid(key_where + ": name is required");
    if (!names.insert(name).second)
      return Invalid(fmt::format("{}: duplicate key name", key_where));
    const YAML::Node secret_node = keys[i]["secret"];
    if (secret_node && !secret_node.IsNull() && !secret_node.IsScalar()) {
      return Invalid(key_where + ".secret must be a string");
    }
    // Decoded straight from the node's own scalar (no std::string copy of ours): from here on
    // the key lives only in SecretBytes. The YAML parser's buffers and node tree hold the base64
    // text until the tree is destroyed; that copy is unavoidable with yaml-cpp.
    static const std::string kEmpty;
    const std::string& b64 = secret_node && secret_node.IsScalar() ? secret_node.Scalar() : kEmpty;
    auto secret = Base64DecodeSecret(b64);
    if (!secret.ok()) return Invalid(fmt::format("{}: secret is not valid base64", key_where));
    size_t n = secret->size();
    bool ok = kind == ProviderKind::kSecretbox ? n == 32 : (n == 16 || n == 24 || n == 32);
    if (!ok) {
      return Invalid(fmt::format("{}: {} key must be {} bytes, got {}", key_where,
                                 ProviderKindName(kind),
                                 kind == ProviderKind::kSecretbox ? "32" : "16, 24 or 32", n));
    }
    out->keys.push_back(ProviderKey{std::move(name), std::move(*secret)});
  }
  return absl::OkStatus();
}

absl::StatusOr<ProviderConfig> ParseProvider(const YAML::Node& node, std::string_view where) {
  if (!node.IsMap()) return Invalid(fmt::format("{} must be a map", where));
  if (node.size() != 1)
    return Invalid(fmt::format("{} must have exactly one provider type", where));
  ProviderConfig p;
  int types = 0;
  for (const auto& it : node) {
    std::string type = it.first.as<std::string>();
    const YAML::Node body = it.second;
    std::string sub = fmt::format("{}.{}", where, type);
    ++types;
    if (type == "identity") {
      p.kind = ProviderKind::kIdentity;
    } else if (type == "aescbc" || type == "aesgcm" || type == "secretbox") {
      p.kind = type == "aescbc"   ? ProviderKind::kAesCbc
               : type == "aesgcm" ? ProviderKind::kAesGcm
                                  : ProviderKind::kSecretbox;
      KMSP_RETURN_IF_ERROR(ParseKeys(body, p.kind, sub, &p));
    } else if (type == "kms") {
      if (!body.IsMap()) return Invalid(sub + " must be a map");
      KMSP_ASSIGN_OR_RETURN(std::string api_version,
                            ScalarString(body["apiVersion"], sub + ".apiVersion"));
      if (api_version.empty() || api_version == "v1") {
        p.kind = ProviderKind::kKmsV1;
      } else if (api_version == "v2") {
        p.kind = ProviderKind::kKmsV2;
      } else {
        return Invalid(fmt::format("{}: unsupported apiVersion \"{}\"", sub, api_version));
      }
      KMSP_ASSIGN_OR_RETURN(p.name, ScalarString(body["name"], sub + ".name"));
      if (p.name.empty()) return Invalid(sub + ": name is required");
      if (p.kind == ProviderKind::kKmsV2 && p.name.find(':') != std::string::npos) {
        return Invalid(fmt::format("{}: kms v2 name \"{}\" must not contain ':'", sub, p.name));
      }
      KMSP_ASSIGN_OR_RETURN(p.endpoint, ScalarString(body["endpoint"], sub + ".endpoint"));
      if (p.endpoint.empty()) return Invalid(sub + ": endpoint is required");
      if (p.kind == ProviderKind::kKmsV2 && body["cachesize"]) {
        return Invalid(sub + ": cachesize is not allowed for kms v2");
      }
      KMSP_ASSIGN_OR_RETURN(std::string timeout, ScalarString(body["timeout"], sub + ".timeout"));
      if (!timeout.empty()) {
        absl::Duration d;
        if (!absl::ParseDuration(timeout, &d) || d <= absl::ZeroDuration()) {
          return Invalid(
              fmt::format("{}: timeout \"{}\" must be a positive duration", sub, timeout));
        }
        p.timeout = d;
      }
    } else {
      return Invalid(fmt::format("{}: unknown provider type \"{}\"", where, type));
    }
  }
  if (types != 1) return Invalid(fmt::format("{} must have exactly one provider type", where));
  return p;
}

bool IsWildcard(const GroupResource& gr) { return gr.resource == "*"; }

absl::Status ValidateResourceName(std::string_view name, std::string_view where) {
  if (name.empty()) return Invalid(fmt::format("{}: empty resource name", where));
  if (name == "*") return Invalid(fmt::format("{}: use '*.' or '*.*' instead of '*'", where));
  for (char c : name) {
    if (c >= 'A' && c <= 'Z') {
      return Invalid(fmt::format("{}: resource \"{}\" must be lower case", where, name));
    }
  }
  GroupResource gr = GroupResource::Parse(name);
  if (gr.group == "extensions") {
    return Invalid(fmt::format("{}: the extensions group is not allowed (\"{}\")", where, name));
  }
  if (gr.resource == "*" && gr.group == "events.k8s.io") {
    return Invalid(fmt::format("{}: use 'events' instead of '*.events.k8s.io'", where));
  }
  if (gr.resource != "*" && gr.group.find('*') != std::string::npos) {
    return Invalid(fmt::format("{}: \"{}\": only '*.group' wildcards are allowed", where, name));
  }
  static const char* const kForbidden[] = {"apiserveripinfo", "serviceipallocations",
                                           "servicenodeportallocations"};
  for (const char* f : kForbidden) {
    if (gr.group.empty() && gr.resource == f) {
      return Invalid(fmt::format("{}: resource \"{}\" cannot be encrypted", where, name));
    }
  }
  return absl::OkStatus();
}

// True when an earlier rule's wildcard already covers `gr` (kube-apiserver rejects such configs).
bool MaskedBy(const GroupResource& wildcard, const GroupResource& gr) {
  if (wildcard.group == "*") return true;
  return wildcard.group == gr.group;
}

}  // namespace

std::string_view ProviderKindName(ProviderKind kind) {
  switch (kind) {
    case ProviderKind::kIdentity:
      return "identity";
    case ProviderKind::kAesCbc:
      return "aescbc";
    case ProviderKind::kAesGcm:
      return "aesgcm";
    case ProviderKind::kSecretbox:
      return "secretbox";
    case ProviderKind::kKmsV1:
      return "kms-v1";
    case ProviderKind::kKmsV2:
      return "kms-v2";
  }
  return "unknown";
}

GroupResource GroupResource::Parse(std::string_view s) {
  size_t dot = s.find('.');
  if (dot == std::string_view::npos) return GroupResource{std::string(s), ""};
  return GroupResource{std::string(s.substr(0, dot)), std::string(s.substr(dot + 1))};
}

const ResourceRule* EncryptionConfig::FindRule(const GroupResource& gr) const {
  const std::string exact = gr.ToString();
  const std::string group_wildcard = "*." + gr.group;
  for (const std::string& candidate : {exact, group_wildcard, std::string("*.*")}) {
    for (const ResourceRule& rule : rules) {
      for (const std::string& name : rule.resources) {
        if (name == candidate) return &rule;
      }
    }
  }
  return nullptr;
}

std::vector<GroupResource> EncryptionConfig::ExplicitResources() const {
  std::vector<GroupResource> out;
  for (const ResourceRule& rule : rules) {
    for (const std::string& name : rule.resources) {
      GroupResource gr = GroupResource::Parse(name);
      if (!IsWildcard(gr)) out.push_back(gr);
    }
  }
  return out;
}

bool EncryptionConfig::HasWildcards() const {
  for (const ResourceRule& rule : rules) {
    for (const std::string& name : rule.resources) {
      if (IsWildcard(GroupResource::Parse(name))) return true;
    }
  }
  return false;
}

absl::StatusOr<EncryptionConfig> ParseEncryptionConfig(std::string_view yaml) {
  try {
    // Parsed from the caller's buffer through a non-copying streambuf (the text holds secrets).
    ViewStreamBuf buf(yaml);
    std::istream in(&buf);
    YAML::Node root = YAML::Load(in);
    if (!root.IsMap()) return Invalid("the document must be a map");
    KMSP_ASSIGN_OR_RETURN(std::string kind, ScalarString(root["kind"], "kind"));
    KMSP_ASSIGN_OR_RETURN(std::string api_version, ScalarString(root["apiVersion"], "apiVersion"));
    bool current = kind == "EncryptionConfiguration" && api_version == "apiserver.config.k8s.io/v1";
    bool legacy = kind == "EncryptionConfig" && api_version == "v1";
    if (!current && !legacy) {
      return Invalid(fmt::format("unsupported kind \"{}\" / apiVersion \"{}\"", kind, api_version));
    }
    const YAML::Node resources = root["resources"];
    if (!resources || !resources.IsSequence() || resources.size() == 0) {
      return Invalid("resources must be a non-empty list");
    }
    EncryptionConfig config;
    std::set<std::string> kms_names;
    std::set<std::string> seen_resources;
    std::vector<GroupResource> seen_wildcards;
    for (size_t i = 0; i < resources.size(); ++i) {
      std::string where = fmt::format("resources[{}]", i);
      const YAML::Node entry = resources[i];
      ResourceRule rule;
      const YAML::Node names = entry["resources"];
      if (!names || !names.IsSequence() || names.size() == 0) {
        return Invalid(where + ".resources must be a non-empty list");
      }
      for (size_t j = 0; j < names.size(); ++j) {
        std::string rwhere = fmt::format("{}.resources[{}]", where, j);
        KMSP_ASSIGN_OR_RETURN(std::string name, ScalarString(names[j], rwhere));
        KMSP_RETURN_IF_ERROR(ValidateResourceName(name, rwhere));
        if (!seen_resources.insert(name).second) {
          return Invalid(fmt::format("{}: resource \"{}\" is listed twice", rwhere, name));
        }
        GroupResource gr = GroupResource::Parse(name);
        for (const GroupResource& w : seen_wildcards) {
          if (MaskedBy(w, gr)) {
            return Invalid(fmt::format("{}: resource \"{}\" is masked by the earlier \"{}\"",
                                       rwhere, name, w.ToString()));
          }
        }
        if (IsWildcard(gr)) seen_wildcards.push_back(gr);
        rule.resources.push_back(std::move(name));
      }
      const YAML::Node providers = entry["providers"];
      if (!providers || !providers.IsSequence() || providers.size() == 0) {
        return Invalid(where + ".providers must be a non-empty list");
      }
      for (size_t j = 0; j < providers.size(); ++j) {
        KMSP_ASSIGN_OR_RETURN(
            ProviderConfig p,
            ParseProvider(providers[j], fmt::format("{}.providers[{}]", where, j)));
        if (p.kind == ProviderKind::kKmsV1 || p.kind == ProviderKind::kKmsV2) {
          // The same KMS provider may appear in several rules, but names must not be reused
          // for a different provider.
          std::string identity_key = fmt::format("{}|{}", ProviderKindName(p.kind), p.endpoint);
          for (const std::string& k : kms_names) {
            size_t bar = k.find('\n');
            if (k.substr(0, bar) == p.name && k.substr(bar + 1) != identity_key) {
              return Invalid(
                  fmt::format("kms provider name \"{}\" is used for two providers", p.name));
            }
          }
          kms_names.insert(p.name + "\n" + identity_key);
        }
        rule.providers.push_back(std::move(p));
      }
      config.rules.push_back(std::move(rule));
    }
    return config;
  } catch (const YAML::Exception& e) {
    return Invalid(fmt::format("invalid YAML at line {}: {}", e.mark.line + 1, e.msg));
  }
}

absl::StatusOr<EncryptionConfig> LoadEncryptionConfigFile(const std::string& path) {
  // The file holds key secrets: one wipeable buffer, no stream buffers (kms/secret_file.h).
  absl::StatusOr<std::string> text = ReadSecretFile(path);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        ToAbsl(fmt::format("cannot read encryption config: {}",
                                           ToStd(text.status().message()))));
  }
  auto config = ParseEncryptionConfig(*text);
  WipeString(*text);
  return config;
}

}  // namespace kmsplugin::reencrypt
