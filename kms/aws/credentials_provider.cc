#include "kms/aws/credentials_provider.h"

#include "absl/strings/ascii.h"
#include "base/printable.h"
#include "base/status.h"
#include "fmt/format.h"
#include "kms/aws/remote_credentials_provider.h"
#include "kms/secret_file.h"
#include "spdlog/spdlog.h"

namespace kmsplugin::aws {
namespace {

// Surrounding ASCII whitespace dropped.
std::string_view Trim(std::string_view s) { return ToStd(absl::StripAsciiWhitespace(ToAbsl(s))); }

}  // namespace

absl::StatusOr<std::string> ReadCredentialsFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadSecretFile(path);
  // For the chain, a file that cannot be opened means "this source has nothing".
  if (!text.ok() && text.status().code() != absl::StatusCode::kInvalidArgument) {
    return absl::NotFoundError(std::string(ToStd(text.status().message())));
  }
  return text;
}

void WipeSections(IniSections& sections) {
  for (auto& [name, kv] : sections) {
    for (auto& [k, v] : kv) WipeString(v);
  }
}

absl::StatusOr<AwsCredentials> EnvCredentialsProvider::Fetch(const CallContext& ctx) {
  std::optional<std::string> akid = NonEmptyEnv(env_, "AWS_ACCESS_KEY_ID");
  std::optional<std::string> secret = NonEmptyEnv(env_, "AWS_SECRET_ACCESS_KEY");
  if (!akid && !secret) return absl::NotFoundError("AWS_ACCESS_KEY_ID is not set");
  if (!akid || !secret) {
    if (secret) WipeString(*secret);
    return absl::InvalidArgumentError(
        "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set");
  }
  AwsCredentials c;
  c.access_key_id = *akid;
  c.secret_access_key = SecretBytes::TakeFrom(*secret);
  std::optional<std::string> token = NonEmptyEnv(env_, "AWS_SESSION_TOKEN");
  if (!token) token = NonEmptyEnv(env_, "AWS_SECURITY_TOKEN");
  if (token) c.session_token = SecretBytes::TakeFrom(*token);
  if (std::optional<std::string> exp = NonEmptyEnv(env_, "AWS_CREDENTIAL_EXPIRATION")) {
    KMSP_ASSIGN_OR_RETURN(c.expiration, ParseAwsTime(*exp));
  }
  c.source = std::string(Name());
  return c;
}

IniSections ParseAwsIni(std::string_view text, bool config_style) {
  IniSections out;
  std::string section;
  bool in_section = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view raw = text.substr(pos, eol - pos);
    pos = eol + 1;
    const bool indented = !raw.empty() && (raw.front() == ' ' || raw.front() == '\t');
    std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      const size_t close = line.find(']');
      if (close == std::string_view::npos) {
        in_section = false;
        continue;
      }
      std::string_view name = Trim(line.substr(1, close - 1));
      if (config_style) {
        if (name.rfind("profile ", 0) == 0) {
          name = Trim(name.substr(8));
        } else if (name != "default") {
          in_section = false;  // [sso-session x], [services x]: not profiles.
          continue;
        }
      }
      section = std::string(name);
      in_section = true;
      out[section];
      continue;
    }
    if (!in_section || indented) continue;  // Indented lines belong to nested (s3 = …) blocks.
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string key(Trim(line.substr(0, eq)));
    std::string_view value = Trim(line.substr(eq + 1));
    // Inline comments need whitespace before '#' or ';'.
    for (size_t i = 1; i < value.size(); ++i) {
      if ((value[i] == '#' || value[i] == ';') && (value[i - 1] == ' ' || value[i - 1] == '\t')) {
        value = Trim(value.substr(0, i));
        break;
      }
    }
    out[section][key] = std::string(value);
  }
  return out;
}

SharedFilesConfig SharedFilesConfig::FromEnv(const EnvLookup& env) {
  SharedFilesConfig c;
  const std::string home = env("HOME").value_or("");
  c.credentials_file =
      NonEmptyEnv(env, "AWS_SHARED_CREDENTIALS_FILE").value_or(home + "/.aws/credentials");
  c.config_file = NonEmptyEnv(env, "AWS_CONFIG_FILE").value_or(home + "/.aws/config");
  if (std::optional<std::string> p = NonEmptyEnv(env, "AWS_PROFILE")) {
    c.profile = *p;
    c.profile_explicit = true;
  }
  return c;
}

absl::StatusOr<AwsCredentials> ProfileCredentialsProvider::Fetch(const CallContext& ctx) {
  const std::string& path = config_file_ ? files_.config_file : files_.credentials_file;
  absl::StatusOr<std::string> text = ReadCredentialsFile(path);
  if (!text.ok()) return text.status();
  IniSections sections = ParseAwsIni(*text, config_file_);
  WipeString(*text);
  auto wipe_all = [&sections] {
    for (auto& [name, kv] : sections) {
      for (auto& [k, v] : kv) WipeString(v);
    }
  };
  auto it = sections.find(files_.profile);
  if (it == sections.end()) {
    wipe_all();
    return absl::NotFoundError(fmt::format("profile {} is not in {}", files_.profile, path));
  }
  auto& kv = it->second;
  const bool has_id = kv.count("aws_access_key_id") > 0 && !kv["aws_access_key_id"].empty();
  const bool has_secret =
      kv.count("aws_secret_access_key") > 0 && !kv["aws_secret_access_key"].empty();
  if (!has_id && !has_secret) {
    wipe_all();
    return absl::NotFoundError(fmt::format("profile {} in {} has no keys", files_.profile, path));
  }
  if (!has_id || !has_secret) {
    wipe_all();
    return absl::InvalidArgumentError(
        fmt::format("profile {} in {} has only one of aws_access_key_id and aws_secret_access_key",
                    files_.profile, path));
  }
  AwsCredentials c;
  c.access_key_id = kv["aws_access_key_id"];
  c.secret_access_key = SecretBytes::TakeFrom(kv["aws_secret_access_key"]);
  if (kv.count("aws_session_token") > 0 && !kv["aws_session_token"].empty()) {
    c.session_token = SecretBytes::TakeFrom(kv["aws_session_token"]);
  }
  c.source = fmt::format("{}:{}", Name(), files_.profile);
  wipe_all();
  return c;
}

std::unique_ptr<CredentialsProvider> MakeDefaultCredentialsChain(EnvLookup env, HttpClient* http,
                                                                 const Clock* clock,
                                                                 DefaultChainOptions options) {
  SharedFilesConfig files = SharedFilesConfig::FromEnv(env);
  std::vector<std::unique_ptr<CredentialsProvider>> providers;
  if (!files.profile_explicit) providers.push_back(std::make_unique<EnvCredentialsProvider>(env));
  providers.push_back(std::make_unique<WebIdentityCredentialsProvider>(env, http, clock, options));
  providers.push_back(std::make_unique<ProfileCredentialsProvider>(files, /*config_file=*/false));
  providers.push_back(std::make_unique<ProfileCredentialsProvider>(files, /*config_file=*/true));
  providers.push_back(std::make_unique<ContainerCredentialsProvider>(env, http));
  providers.push_back(std::make_unique<ImdsCredentialsProvider>(env, http, clock));
  return std::make_unique<RefreshingCredentialsProvider>(
      std::make_unique<ChainCredentialsProvider>(std::move(providers)), clock);
}

}  // namespace kmsplugin::aws
