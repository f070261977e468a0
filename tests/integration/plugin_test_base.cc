#include "tests/integration/plugin_test_base.h"

#include <dirent.h>

#include <exception>

#include "crypto/encoding.h"
#include "crypto/random.h"
#include "nlohmann/json.hpp"

namespace kmsplugin::testing {

absl::StatusOr<std::vector<std::string>> PluginTestBase::KeyringMaterialTexts(
    const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError("keyring: not JSON");
  // kms/local/local_kms.h: {"keys": [{"version": N, "material": "<base64 of 32 bytes>"}, ...]}.
  auto keys = j.find("keys");
  if (keys == j.end() || !keys->is_array()) return absl::InvalidArgumentError("keyring: no keys");
  std::vector<std::string> out;
  for (const auto& k : *keys) {
    if (!k.is_object()) continue;
    auto m = k.find("material");
    if (m != k.end() && m->is_string()) out.push_back(m->get<std::string>());
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> PluginTestBase::KeyringMaterials(const std::string& path) {
  auto texts = KeyringMaterialTexts(path);
  if (!texts.ok()) return texts.status();
  std::vector<std::string> out;
  for (const std::string& t : *texts) {
    auto raw = Base64Decode(t);
    if (!raw.ok()) return absl::InvalidArgumentError("keyring: material is not base64");
    out.push_back(std::move(*raw));
  }
  return out;
}

std::map<std::string, PluginTestBase::Entry> PluginTestBase::DirEntries() const {
  std::map<std::string, Entry> out;
  DIR* d = opendir(dir_->path().c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir_->File(name);
    out[name] = Entry{ModeOf(path), IsSocket(path)};
  }
  closedir(d);
  return out;
}

std::string PluginTestBase::RandomSeedBytes() {
  auto bytes = RandomBytes(32);
  if (!bytes.ok()) std::terminate();
  return *bytes;
}

}  // namespace kmsplugin::testing
