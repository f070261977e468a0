// `kms-plugin serve`: builds the object graph (backend -> envelope service -> gRPC servers,
// refresher, health server), then waits for SIGTERM/SIGINT/SIGHUP on a sigwait thread and drains.
#include <signal.h>

#include <memory>
#include <string>

#include "base/logging.h"
#include "base/status.h"
#include "cmd/backend_flags.h"
#include "cmd/commands.h"
#include "cmd/flags.h"
#include "cmd/shutdown_signals.h"
#include "crypto/fips.h"
#include "crypto/rsa_oaep.h"
#include "fmt/format.h"
#include "kms/secret_file.h"
#include "plugin/admin_service.h"
#include "plugin/audit_log.h"
#include "plugin/blocking_pool.h"
#include "plugin/envelope_service.h"
#include "plugin/grpc_service.h"
#include "plugin/health_server.h"
#include "plugin/instrumented_kes.h"
#include "plugin/key_refresher.h"
#include "plugin/metrics.h"
#include "plugin/server.h"
#include "spdlog/spdlog.h"

namespace kmsplugin {
namespace {

struct ServeFlags {
  std::string listen = "unix:///var/run/kmsplugin/kms.sock";
  std::string admin_socket;  // Default derived from --listen.
  std::string health_addr;
  std::string log_level = "info";
  std::string log_format = "text";
  BackendFlags backend;
  EnvelopeOptions envelope;
  absl::Duration key_poll_interval = absl::Minutes(1);
  absl::Duration kms_timeout = absl::Seconds(10);
  absl::Duration shutdown_grace = absl::Seconds(5);
  int max_threads = 16;
  int serving_threads = 0;  // 0: DefaultServingThreads().
  std::string allowed_uids = "0";
  std::string recovery_public_key;  // Issue 12: PEM RSA-3072/4096 public key file, or empty.
  std::string audit_log;            // Issue 13: a file path, "stderr", or empty (off).
};

// Reads --recovery-public-key (a public key: read like other config files, no secret).
absl::StatusOr<std::shared_ptr<const RsaPublicKey>> LoadRecoveryKey(const std::string& path) {
  SecretFileOptions options;
  options.max_size = size_t{64} * 1024;
  KMSP_ASSIGN_OR_RETURN(std::string pem, ReadSecretFile(path, options));
  KMSP_ASSIGN_OR_RETURN(RsaPublicKey key, RsaPublicKey::FromPem(pem));
  spdlog::info("recovery key {} (RSA-{}) from {}: every new data key is also wrapped under it",
               key.FingerprintText(), key.bits(), path);
  return std::make_shared<const RsaPublicKey>(std::move(key));
}

int RunServe(const ServeFlags& flags) {
  // Declared before `signals`, so that it outlives the signal thread that reopens it.
  std::unique_ptr<AuditLog> audit;
  // Before any other thread exists: SIGTERM/SIGINT are blocked everywhere and taken by one sigwait
  // thread, which ends a start-up that hangs and, once serving, hands the signal to Wait().
  ShutdownSignals signals;
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<LogFormat> log_format = ParseLogFormat(flags.log_format);
  absl::Status logging =
      log_format.ok() ? InitLogging(flags.log_level, *log_format) : log_format.status();
  if (!logging.ok()) {
    fprintf(stderr, "kms-plugin serve: %s\n", std::string(logging.message()).c_str());
    return 2;
  }
  auto fail = [](std::string_view what, const absl::Status& s) {
    spdlog::critical("{}: {}", what, s.ToString());
    return 1;
  };
  // Before any key, socket or backend: with --fips nothing may run on another provider.
  if (flags.backend.fips) {
    if (absl::Status s = EnableFips(); !s.ok()) return fail("cannot start in FIPS mode", s);
    spdlog::info("FIPS mode: OpenSSL's FIPS provider for every primitive{}",
                 flags.backend.kms == "aws" ? ", AWS KMS FIPS endpoints" : "");
  }
  absl::StatusOr<ListenAddress> listen = ParseListenAddress(flags.listen);
  if (!listen.ok()) return fail("bad --listen", listen.status());
  absl::StatusOr<std::vector<uid_t>> allowed_uids = ParseAllowedUids(flags.allowed_uids);
  if (!allowed_uids.ok()) return fail("bad --allowed-uids", allowed_uids.status());
  std::string admin_address =
      flags.admin_socket.empty() ? DefaultAdminAddress(*listen) : flags.admin_socket;
  absl::StatusOr<ListenAddress> admin = absl::NotFoundError("admin API off");
  if (admin_address.empty()) {
    spdlog::warn(
        "admin API off: --listen is an abstract socket, which has no permissions; pass "
        "--admin-socket unix:///ABS/PATH to enable rotate and refresh");
  } else {
    admin = ParseListenAddress(admin_address);
    if (!admin.ok()) return fail("bad --admin-socket", admin.status());
    if (absl::Status s = ValidateAdminAddress(*admin); !s.ok()) return fail("bad --admin-socket", s);
  }

  EnvelopeOptions envelope_options = flags.envelope;
  if (!flags.recovery_public_key.empty()) {
    auto key = LoadRecoveryKey(flags.recovery_public_key);
    if (!key.ok()) return fail("bad --recovery-public-key", key.status());
    envelope_options.recovery_key = *std::move(key);
  }

  const Clock* clock = RealClock::Get();
  // Everyone told about each KMS request attempt (the audit log; retry metrics later).
  AttemptFanOut attempt_observers;
  if (!flags.audit_log.empty()) {
    auto opened = AuditLog::Open(flags.audit_log, clock);
    if (!opened.ok()) return fail("bad --audit-log", opened.status());
    audit = std::move(*opened);
    attempt_observers.Add(audit.get());
    signals.OnSigusr1([log = audit.get()] { (void)log->Reopen(); });
    spdlog::info("audit log: {} (SIGUSR1 reopens it)", audit->target());
  }
  PluginMetrics metrics;
  // kms_plugin_kms_retries_total: counts the attempts the backend will retry.
  RetryMetrics retry_metrics(&metrics);
  attempt_observers.Add(&retry_metrics);
  auto backend = CreateBackend(flags.backend, clock, &attempt_observers);
  if (!backend.ok()) return fail("cannot start the KMS backend", backend.status());
  metrics.InitBackend((*backend)->Name());
  auto envelope = EnvelopeService::Create(
      envelope_options, std::make_unique<InstrumentedKes>(std::move(*backend), &metrics), clock);
  if (!envelope.ok()) return fail("bad options", envelope.status());

  // First data key before we accept calls; on failure we still serve (unhealthy) and retry.
  absl::Status first = (*envelope)->Refresh(CallContext::WithTimeout(flags.kms_timeout, "startup"));
  if (!first.ok()) spdlog::error("no data key yet, will retry: {}", first.ToString());

  KeyRefresher refresher(envelope->get(), flags.key_poll_interval, absl::Seconds(10),
                         flags.kms_timeout);
  refresher.Start();

  // Backend calls made for requests (a cache-miss unwrap, a new data key, admin calls) run here,
  // never on the serving threads.
  BlockingPool pool(flags.max_threads);
  KmsV2GrpcService kms_service(envelope->get(), &metrics, &pool);
  AdminGrpcService admin_service(envelope->get(), &pool, flags.kms_timeout, audit.get(), &metrics);
  ServerOptions server_options;
  server_options.serving_threads = flags.serving_threads;
  server_options.allowed_uids = *allowed_uids;
  EnvelopeService* env = envelope->get();
  auto server = GrpcServer::Start(*listen, &kms_service, admin.ok() ? &*admin : nullptr,
                                  admin.ok() ? &admin_service : nullptr, &pool,
                                  [env] { return env->Status().healthz == "ok"; }, server_options);
  if (!server.ok()) return fail("cannot serve KMS v2", server.status());

  std::unique_ptr<HealthServer> health;
  if (!flags.health_addr.empty()) {
    auto h = HealthServer::Start(flags.health_addr, envelope->get(), &metrics);
    if (!h.ok()) return fail("cannot serve health checks", h.status());
    health = std::move(*h);
  }
  PluginStatus st = (*envelope)->Status();
  {
    // The health address with the port the kernel picked for HOST:0.
    std::string health_display;
    if (health != nullptr) {
      health_display = fmt::format(", health http://{}:{}",
                                   flags.health_addr.substr(0, flags.health_addr.rfind(':')),
                                   health->port());
    }
    ScopedLogContext log_context("", st.key_id);
    spdlog::info("serving KMS v2 on {} (admin {}{}); backend {}, key_id {}, healthz {}",
                 listen->display, admin.ok() ? admin->display : "off", health_display,
                 flags.backend.kms, st.key_id, st.healthz);
  }

  signals.Serving();
  int sig = signals.Wait();
  spdlog::info("received signal {}; draining for up to {}", sig,
               absl::FormatDuration(flags.shutdown_grace));
  health.reset();
  (*server)->SetNotServing();
  if (!kms_service.WaitIdle(absl::Now() + flags.shutdown_grace)) {
    spdlog::warn("calls still in flight after {}; cancelling them",
                 absl::FormatDuration(flags.shutdown_grace));
  }
  (*server)->Shutdown(absl::ZeroDuration());
  refresher.Stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

void AddServeCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand("serve", "Run the KMS v2 plugin (gRPC on a unix socket)");
  cmd->add_option("--listen", flags->listen,
                  "Socket to serve KMS v2 on: unix:///ABS/PATH, /ABS/PATH or unix:///@abstract")
      ->capture_default_str();
  cmd->add_option("--admin-socket", flags->admin_socket,
                  "Admin API socket (rotate, refresh, report); default: the --listen path + .admin")
      ->capture_default_str();
  cmd->add_option("--allowed-uids", flags->allowed_uids,
                  "Comma-separated uids that may connect to an abstract --listen socket, which has "
                  "no file permissions, and (with the plugin's own uid) to the admin socket "
                  "(checked with SO_PEERCRED)")
      ->capture_default_str();
  cmd->add_option("--health-addr", flags->health_addr,
                  "HOST:PORT for /healthz, /readyz, /livez and /metrics (empty: off)")
      ->capture_default_str();
  cmd->add_option("--log-level", flags->log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  cmd->add_option("--log-format", flags->log_format,
                  "text (one line per record) or json (one JSON object per line: time, level, "
                  "msg, and uid and key_id within a request)")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  AddBackendFlags(cmd, &flags->backend);
  AddDurationFlag(cmd, "--key-poll-interval", &flags->key_poll_interval, absl::Milliseconds(100),
                  "How often the KMS is probed for the current KEK version");
  AddDurationFlag(cmd, "--kms-timeout", &flags->kms_timeout, absl::Milliseconds(100),
                  "Deadline of each background KMS call (probe, wrap)");
  AddDurationFlag(cmd, "--kms-outage-window", &flags->envelope.outage_window, absl::ZeroDuration(),
                  "How long to keep serving from cached keys while the KMS is unreachable");
  AddDurationFlag(cmd, "--dek-max-age", &flags->envelope.dek_max_age, absl::Minutes(1),
                  "Replace the data key after this age");
  cmd->add_option("--dek-max-uses", flags->envelope.dek_max_uses,
                  "Replace the data key after this many Encrypts")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 32));
  cmd->add_option("--dek-cache-size", flags->envelope.dek_cache_size,
                  "Unwrapped data keys kept in memory (LRU)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 20));
  cmd->add_option("--key-change-confirmations", flags->envelope.key_change_confirmations,
                  "Consecutive probes that must report a new KEK version before key_id changes")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  cmd->add_option("--max-threads", flags->max_threads,
                  "Cap on the threads that wait on the KMS backend (cache-miss unwraps, new data "
                  "keys, admin calls); calls beyond it queue, none is refused")
      ->capture_default_str()
      ->check(CLI::Range(2, 1024));
  cmd->add_option("--serving-threads", flags->serving_threads,
                  "Threads that poll the socket and answer calls from memory (0: the default, 1)")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  cmd->add_option("--recovery-public-key", flags->recovery_public_key,
                  "PEM RSA-3072/4096 public key (openssl pkey -pubout): each new data key is also "
                  "wrapped under it (annotation recovery.kms-plugin.io) for a KMS-less recovery "
                  "with the offline private key (empty: off)");
  cmd->add_option("--audit-log", flags->audit_log,
                  "Write one JSON line per KMS request attempt and per admin call to this file "
                  "(absolute path, mode 0600, reopened on SIGUSR1) or to stderr (empty: off)");
  AddDurationFlag(cmd, "--shutdown-grace", &flags->shutdown_grace, absl::ZeroDuration(),
                  "On SIGTERM, how long calls in flight may finish");
  cmd->callback([flags, exit_code] { *exit_code = RunServe(*flags); });
}

}  // namespace kmsplugin
