// `kms-plugin reencrypt`: flags -> EncryptionConfig, EtcdClient, TransformerSet -> Reencryptor.
// Progress goes to stderr (a bar on a terminal, plain lines otherwise); the scan table and the
// final one-line JSON summary go to stdout.
#include "cmd/reencrypt_command.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/logging.h"
#include "base/printable.h"
#include "base/status.h"
#include "cmd/flags.h"
#include "tools/reencrypt/encryption_config.h"
#include "tools/reencrypt/etcd_client.h"
#include "tools/reencrypt/progress.h"
#include "tools/reencrypt/recovery_kms_client.h"
#include "tools/reencrypt/reencryptor.h"
#include "tools/reencrypt/resources.h"
#include "tools/reencrypt/value_transformer.h"

namespace kmsplugin {
namespace {

using reencrypt::ResourceTarget;

struct ReencryptFlags {
  std::string encryption_config;
  std::vector<std::string> etcd_endpoints;
  std::string etcd_cacert;
  std::string etcd_cert;
  std::string etcd_key;
  std::string etcd_prefix = "/registry";
  std::vector<std::string> resources;
  bool dry_run = false;
  bool scan = false;
  int concurrency = 4;
  double rate = 0;
  int64_t page_size = 500;
  absl::Duration etcd_timeout = absl::Seconds(30);
  absl::Duration progress_interval = absl::Seconds(5);
  std::vector<std::string> recovery_private_keys;
  std::string log_format = "text";
};

int Fatal(std::string_view what, const absl::Status& status) {
  // The message may quote etcd, plugin or stored bytes.
  std::cerr << "kms-plugin reencrypt: " << what << ": "
            << Printable(ToStd(status.message()), 1024) << "\n";
  return 2;
}

int RunReencrypt(const ReencryptFlags& flags) {
  absl::StatusOr<LogFormat> log_format = ParseLogFormat(flags.log_format);
  if (!log_format.ok()) return Fatal("--log-format", log_format.status());
  if (absl::Status s = InitLogging("info", *log_format); !s.ok()) return Fatal("logging", s);
  auto config = reencrypt::LoadEncryptionConfigFile(flags.encryption_config);
  if (!config.ok()) return Fatal("encryption config", config.status());

  reencrypt::EtcdClientOptions etcd_options;
  etcd_options.endpoints = flags.etcd_endpoints;
  etcd_options.ca_file = flags.etcd_cacert;
  etcd_options.cert_file = flags.etcd_cert;
  etcd_options.key_file = flags.etcd_key;
  etcd_options.request_timeout = flags.etcd_timeout;
  auto etcd = reencrypt::CreateGrpcEtcdClient(etcd_options);
  if (!etcd.ok()) return Fatal("etcd client", etcd.status());

  // KMS v2 providers kept only to read old data: a dead plugin is asked once, not once per
  // object, and with offline recovery keys (issue 12) values it cannot decrypt are opened with
  // them instead (tools/reencrypt/recovery_kms_client.h).
  std::shared_ptr<const reencrypt::RecoveryKeySet> recovery_keys =
      reencrypt::RecoveryKeySet::FromKeys({});
  if (!flags.recovery_private_keys.empty()) {
    auto keys = reencrypt::RecoveryKeySet::Load(flags.recovery_private_keys);
    if (!keys.ok()) return Fatal("--recovery-private-key", keys.status());
    recovery_keys = *keys;
    for (const std::string& fp : recovery_keys->FingerprintTexts()) {
      std::cerr << "kms-plugin reencrypt: recovery key " << fp << "\n";
    }
  }
  reencrypt::KmsClientFactory factory;
  int read_only_kms_v2 = 0;
  factory.wrap_read_only_v2 = [&recovery_keys, &read_only_kms_v2](
                                  std::string_view name,
                                  std::unique_ptr<reencrypt::KmsV2Client> client) {
    ++read_only_kms_v2;
    return reencrypt::NewRecoveryKmsV2Client(std::string(name), std::move(client),
                                             recovery_keys);
  };
  auto transformers = reencrypt::TransformerSet::Create(*config, factory);
  if (!transformers.ok()) return Fatal("providers", transformers.status());
  if (!flags.recovery_private_keys.empty() && read_only_kms_v2 == 0) {
    return Fatal("--recovery-private-key",
                 absl::InvalidArgumentError("the config has no KMS v2 provider that only reads "
                                            "(list the old kms provider after the new first one)"));
  }

  std::vector<ResourceTarget> targets;
  if (!flags.resources.empty()) {
    for (const std::string& spec : flags.resources) {
      auto t = reencrypt::ParseResourceTarget(spec, flags.etcd_prefix);
      if (!t.ok()) return Fatal("--resources", t.status());
      targets.push_back(*t);
    }
  } else {
    // Every resource present in etcd that some rule of the config covers.
    auto found = reencrypt::DiscoverResources(etcd->get(), flags.etcd_prefix);
    if (!found.ok()) return Fatal("discovering resources in etcd", found.status());
    for (ResourceTarget& t : *found) {
      if (config->FindRule(t.resource) != nullptr) targets.push_back(std::move(t));
    }
  }

  reencrypt::ReencryptOptions options;
  options.dry_run = flags.dry_run;
  options.scan_only = flags.scan;
  options.concurrency = flags.concurrency;
  options.rate = flags.rate;
  options.page_size = flags.page_size;

  const bool terminal = isatty(fileno(stderr)) == 1;
  absl::Duration interval = terminal ? absl::Milliseconds(200) : flags.progress_interval;
  reencrypt::ProgressReporter progress(stderr, terminal, interval, RealClock::Get());
  reencrypt::Reencryptor reencryptor(etcd->get(), transformers->get(), options, &progress,
                                     RealClock::Get());
  auto summary = reencryptor.Run(targets);
  if (!summary.ok()) return Fatal("run stopped", summary.status());

  if (!recovery_keys->empty()) summary->recovery_opens = recovery_keys->opens();
  if (flags.scan) std::cout << summary->InventoryTable();
  std::cout << summary->ToJson() << std::endl;
  return summary->failed > 0 ? 1 : 0;
}

}  // namespace

void AddReencryptCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<ReencryptFlags>();
  CLI::App* cmd = app.add_subcommand(
      "reencrypt",
      "Rewrite stored objects in etcd under the first provider of the EncryptionConfiguration "
      "(or, with --scan, count them by provider and key_id)");
  cmd->add_option("--encryption-config", flags->encryption_config,
                  "The EncryptionConfiguration file kube-apiserver uses")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--etcd-endpoints", flags->etcd_endpoints,
                  "etcd client URLs, comma-separated (http://host:port or https://host:port)")
      ->required()
      ->delimiter(',');
  cmd->add_option("--etcd-cacert", flags->etcd_cacert,
                  "CA bundle that verifies etcd's certificate");
  cmd->add_option("--etcd-cert", flags->etcd_cert, "Client certificate for mutual TLS");
  cmd->add_option("--etcd-key", flags->etcd_key, "Client key for mutual TLS");
  cmd->add_option("--etcd-prefix", flags->etcd_prefix, "kube-apiserver's --etcd-prefix")
      ->capture_default_str();
  cmd->add_option("--resources", flags->resources,
                  "Resources to process, comma-separated (secrets,configmaps,deployments.apps,"
                  "widgets.example.com[=etcd/path]); default: every resource in etcd that the "
                  "config covers")
      ->delimiter(',');
  cmd->add_flag("--dry-run", flags->dry_run, "Decrypt, re-encrypt and verify, but write nothing");
  cmd->add_flag("--scan", flags->scan,
                "Only inventory objects by resource, provider and key_id (table and JSON)");
  cmd->add_option("--concurrency", flags->concurrency, "Worker threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  cmd->add_option("--rate", flags->rate, "Max objects per second (0: unlimited)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--page-size", flags->page_size, "Keys per etcd Range page")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{100000}));
  AddDurationFlag(cmd, "--etcd-timeout", &flags->etcd_timeout, absl::Milliseconds(100),
                  "Deadline of each etcd request");
  AddDurationFlag(
      cmd, "--progress-interval", &flags->progress_interval, absl::ZeroDuration(),
      "Interval of plain progress lines when stderr is not a terminal (0: every object)");
  cmd->add_option("--recovery-private-key", flags->recovery_private_keys,
                  "Offline recovery RSA private key (PEM; repeatable): KMS v2 values the old "
                  "plugin cannot decrypt are opened with it (serve --recovery-public-key)")
      ->allow_extra_args(false)
      ->check(CLI::ExistingFile);
  cmd->add_option("--log-format", flags->log_format,
                  "Format of the log records on stderr: text or json (serve's format; the progress "
                  "lines and the stdout summary are unchanged)")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  cmd->callback([flags, exit_code] { *exit_code = RunReencrypt(*flags); });
}

}  // namespace kmsplugin
