// Local credential providers (environment, shared files), the provider chain, and the caching,
// refreshing wrapper that every AWS call goes through.
//
// The default chain (MakeDefaultCredentialsChain) follows botocore's create_credential_resolver:
//   1. environment variables (skipped when AWS_PROFILE is set, as botocore does);
//   2. web identity (IRSA): AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, or the profile's
//      role_arn + web_identity_token_file in the config file;
//   3. shared credentials file (~/.aws/credentials or AWS_SHARED_CREDENTIALS_FILE), profile
//      AWS_PROFILE or "default";
//   4. config file (~/.aws/config or AWS_CONFIG_FILE) static keys in [profile NAME]/[default];
//   5. container credentials (ECS task role, EKS Pod Identity);
//   6. EC2 instance metadata, IMDSv2 only (no IMDSv1 fallback).
// The first provider that is configured decides: a configured provider that fails stops the
// chain with its error (a broken IRSA set-up does not fall through to the node's IMDS role). Once
// one provider has produced credentials, the chain keeps using it.
#ifndef KMSP_KMS_AWS_CREDENTIALS_PROVIDER_H_
#define KMSP_KMS_AWS_CREDENTIALS_PROVIDER_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "kms/aws/credentials.h"
#include "kms/http_client.h"

namespace kmsplugin::aws {

// AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY [+ AWS_SESSION_TOKEN or AWS_SECURITY_TOKEN]
// [+ AWS_CREDENTIAL_EXPIRATION]. NOT_FOUND when neither key variable is set; INVALID_ARGUMENT
// when only one is, or the expiration does not parse.
class EnvCredentialsProvider final : public CredentialsProvider {
 public:
  explicit EnvCredentialsProvider(EnvLookup env) : env_(std::move(env)) {}
  std::string_view Name() const override { return "environment"; }
  absl::StatusOr<AwsCredentials> Fetch(const CallContext& ctx) override;

 private:
  EnvLookup env_;
};

// One parsed INI file: section name -> key -> value. Config-file sections are stored under the
// profile name ("[profile prod]" -> "prod"; "[default]" -> "default").
using IniSections = std::map<std::string, std::map<std::string, std::string>>;

// ReadSecretFile (kms/secret_file.h) for a credentials, config or token file: NOT_FOUND when it
// cannot be opened or read (the source has nothing); INVALID_ARGUMENT when larger than 1 MiB.
absl::StatusOr<std::string> ReadCredentialsFile(const std::string& path);

// Wipes every value of `sections` (they may hold secret keys and session tokens).
void WipeSections(IniSections& sections);
// Parses AWS's INI dialect. `config_style` strips the "profile " prefix of section names.
IniSections ParseAwsIni(std::string_view text, bool config_style);

// Where the shared files are, and which profile: from AWS_SHARED_CREDENTIALS_FILE,
// AWS_CONFIG_FILE, AWS_PROFILE and HOME.
struct SharedFilesConfig {
  std::string credentials_file;
  std::string config_file;
  std::string profile = "default";
  bool profile_explicit = false;
  static SharedFilesConfig FromEnv(const EnvLookup& env);
};

// Static keys of one profile in the shared credentials file (`config_file` false) or the config
// file (true). Files are read on each Fetch(). NOT_FOUND when the file or profile is missing or
// has no keys; INVALID_ARGUMENT when the profile has only one of the two keys.
class ProfileCredentialsProvider final : public CredentialsProvider {
 public:
  ProfileCredentialsProvider(SharedFilesConfig files, bool config_file)
      : files_(std::move(files)), config_file_(config_file) {}
  std::string_view Name() const override {
    return config_file_ ? "config-file" : "shared-credentials-file";
  }
  absl::StatusOr<AwsCredentials> Fetch(const CallContext& ctx) override;

 private:
  SharedFilesConfig files_;
  bool config_file_;
};

// Tries providers in order (see the file comment; kms/credential_source.h). When every provider is
// NOT_FOUND, returns UNAVAILABLE naming what was tried.
using ChainCredentialsProvider = ChainSource<AwsCredentials>;

// Caches the inner provider's credentials and refreshes them before they expire, the botocore
// way (remote-kms-apis.md §2.6; kms/credential_source.h). Invalidate() after ExpiredTokenException.
using RefreshingCredentialsProvider = RefreshingSource<AwsCredentials>;

// Inputs of the default chain's remote providers.
struct DefaultChainOptions {
  std::string region;  // For the regional STS endpoint.
  bool fips = false;   // Use sts-fips where it exists.
  // Accept an http:// STS endpoint (AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL). Tests only: the
  // web identity token and the issued credentials would cross the network in clear.
  bool allow_insecure_http = false;
};

// The default chain described in the file comment, wrapped in RefreshingCredentialsProvider.
// `http` and `clock` must outlive the result.
std::unique_ptr<CredentialsProvider> MakeDefaultCredentialsChain(EnvLookup env, HttpClient* http,
                                                                 const Clock* clock,
                                                                 DefaultChainOptions options);

}  // namespace kmsplugin::aws

#endif  // KMSP_KMS_AWS_CREDENTIALS_PROVIDER_H_
