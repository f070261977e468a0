#include "kms/pkcs11/pkcs11_kms.h"

#include <utility>

#include "base/printable.h"
#include "base/status.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "fmt/format.h"
#include "kms/secret_file.h"
#include "spdlog/spdlog.h"

namespace kmsplugin::pkcs11 {
namespace {

bool IsAuthenticationFailure(ck_rv_t rv) {
  return rv == CKR_GENERAL_ERROR || rv == CKR_ENCRYPTED_DATA_INVALID ||
         rv == CKR_ENCRYPTED_DATA_LEN_RANGE || rv == CKR_WRAPPED_KEY_INVALID ||
         rv == CKR_WRAPPED_KEY_LEN_RANGE;
}

absl::StatusOr<SecretBytes> ReadPin(const Pkcs11KmsOptions& options) {
  if (options.pin_file.empty()) return options.pin.Clone();
  absl::StatusOr<std::string> text = ReadSecretFile(options.pin_file);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        fmt::format("--pkcs11-pin-file: {}", std::string(text.status().message())));
  }
  while (!text->empty() && (text->back() == '\n' || text->back() == '\r')) text->pop_back();
  return SecretBytes::TakeFrom(*text);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Pkcs11Kms>> Pkcs11Kms::Create(Pkcs11KmsOptions options) {
  if (options.token_label.empty()) {
    return absl::InvalidArgumentError("--kms pkcs11 needs --pkcs11-token-label");
  }
  if (options.key_label.empty()) {
    return absl::InvalidArgumentError("--kms pkcs11 needs --pkcs11-key-label");
  }
  if (options.module == nullptr && options.module_path.empty()) {
    return absl::InvalidArgumentError("--kms pkcs11 needs --pkcs11-module (the module's .so)");
  }
  if (options.pin_file.empty() && options.pin.empty()) {
    return absl::InvalidArgumentError("--kms pkcs11 needs --pkcs11-pin-file");
  }
  KMSP_ASSIGN_OR_RETURN(SecretBytes pin, ReadPin(options));
  if (pin.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("--pkcs11-pin-file {} holds an empty PIN", options.pin_file));
  }
  std::unique_ptr<Pkcs11Module> module = std::move(options.module);
  if (module == nullptr) {
    KMSP_ASSIGN_OR_RETURN(module, Pkcs11Module::Load(options.module_path));
  }
  auto pool = std::make_unique<SessionPool>(
      module.get(), options.token_label, std::move(pin), options.max_sessions,
      options.clock != nullptr ? options.clock : RealClock::Get());
  std::unique_ptr<Pkcs11Kms> kms(
      new Pkcs11Kms(std::move(options), std::move(module), std::move(pool)));
  KMSP_RETURN_IF_ERROR(kms->Start());
  return kms;
}

Pkcs11Kms::Pkcs11Kms(Pkcs11KmsOptions options, std::unique_ptr<Pkcs11Module> module,
                     std::unique_ptr<SessionPool> pool)
    : key_label_(std::move(options.key_label)),
      audit_key_(
          fmt::format("token={} key={}", Printable(options.token_label), Printable(key_label_))),
      observer_(options.observer),
      create_key_if_absent_(options.create_key_if_absent),
      startup_timeout_(options.startup_timeout),
      module_(std::move(module)),
      pool_(std::move(pool)),
      choice_(options.mechanism) {}

Pkcs11Kms::~Pkcs11Kms() { pool_.reset(); }

std::string Pkcs11Kms::Describe(uint32_t version) const {
  return fmt::format("key object '{}' version {} (CKA_ID {}) in PKCS#11 token '{}'",
                     Printable(key_label_), version, HexEncode(EncodeVersionId(version)),
                     Printable(token_label_));
}

absl::Status Pkcs11Kms::Start() {
  KMSP_RETURN_IF_ERROR(pool_->Connect());
  const TokenIdentity token = pool_->token();
  serial_ = token.serial;
  token_label_ = token.label;
  if (KekId(UINT32_MAX).size() > kMaxKekIdSize) {
    return absl::InvalidArgumentError(fmt::format(
        "--pkcs11-key-label is too long: the key_id would exceed {} bytes", kMaxKekIdSize));
  }
  const bool gcm = SlotSupports(module_->f(), token.slot, Mechanism::kAesGcm);
  const bool kwp = SlotSupports(module_->f(), token.slot, Mechanism::kAesKeyWrapPad);
  using Choice = Pkcs11KmsOptions::MechanismChoice;
  if (choice_ == Choice::kGcm || (choice_ == Choice::kAuto && gcm)) {
    if (!gcm) return absl::FailedPreconditionError("the PKCS#11 token does not offer CKM_AES_GCM");
    mechanism_ = Mechanism::kAesGcm;
  } else {
    if (!kwp) {
      return absl::FailedPreconditionError(
          "the PKCS#11 token offers neither CKM_AES_GCM nor CKM_AES_KEY_WRAP_PAD");
    }
    mechanism_ = Mechanism::kAesKeyWrapPad;
  }

  const absl::Time start = absl::Now();
  const absl::Time deadline = start + startup_timeout_;
  absl::Status problem;
  bool created = false;
  auto run = pool_->Run(deadline, [&](ck_session_handle_t session, uint64_t epoch) {
    problem = absl::OkStatus();
    CallResult r = LoadKeys(session, epoch, /*refresh=*/true, &problem);
    if (!r.ok() || !problem.ok() || Current() != 0 || !create_key_if_absent_) return r;
    ck_object_handle_t key = 0;
    r = GenerateKey(module_->f(), session, key_label_, 1, mechanism_, &key);
    created = r.ok();
    return r;
  });
  KMSP_RETURN_IF_ERROR(Outcome(run, problem, "start", false));
  if (created) {
    // Creating the KEK is an audited token operation like a rotation's.
    Report("C_GenerateKey", KekId(1), absl::OkStatus(), start,
           CallContext{absl::InfiniteFuture(), "startup"});
    spdlog::info(
        "PKCS#11: no key labelled '{}' in token '{}' (serial {}): created {}, AES-256, "
        "sensitive and not extractable",
        Printable(key_label_), Printable(token_label_), Printable(serial_), Describe(1));
    run = pool_->Run(deadline, [&](ck_session_handle_t session, uint64_t epoch) {
      problem = absl::OkStatus();
      return LoadKeys(session, epoch, /*refresh=*/true, &problem);
    });
    KMSP_RETURN_IF_ERROR(Outcome(run, problem, "start", false));
  }
  if (Current() == 0) {
    return absl::FailedPreconditionError(
        fmt::format("no AES key object labelled '{}' in PKCS#11 token '{}' (key creation is off)",
                    Printable(key_label_), Printable(token_label_)));
  }
  // Self-test: a module that wants another CK_GCM_PARAMS layout fails here, not on first use.
  KMSP_ASSIGN_OR_RETURN(SecretBytes probe_key, RandomSecret(32));
  CallContext ctx{deadline, "pkcs11-self-test"};
  absl::StatusOr<WrappedKey> wrapped = Wrap(probe_key, ctx);
  absl::StatusOr<SecretBytes> unwrapped =
      wrapped.ok() ? Unwrap(*wrapped, ctx) : absl::StatusOr<SecretBytes>(wrapped.status());
  if (!unwrapped.ok()) {
    return absl::Status(
        unwrapped.status().code(),
        fmt::format("PKCS#11 self-test (wrap and unwrap a random key with {}) "
                    "failed: {}",
                    MechanismName(mechanism_), std::string(unwrapped.status().message())));
  }
  if (!unwrapped->ConstantTimeEquals(probe_key)) {
    return absl::InternalError("PKCS#11 self-test: the unwrapped key differs from the wrapped one");
  }
  spdlog::info("PKCS#11: token '{}' (serial {}) of module {}, {}, {}; key_id {}",
               Printable(token_label_), Printable(serial_), module_->path(), Describe(Current()),
               MechanismName(mechanism_), KekId(Current()));
  return absl::OkStatus();
}

CallResult Pkcs11Kms::LoadKeys(ck_session_handle_t session, uint64_t epoch, bool refresh,
                               absl::Status* problem) {
  {
    absl::MutexLock l(&mu_);
    if (!refresh && keys_epoch_ == epoch) return CallResult{};
  }
  FoundKeys found;
  CallResult r = FindKeys(module_->f(), session, key_label_, &found);
  if (!r.ok()) return r;
  if (!found.duplicates.empty()) {
    *problem = absl::FailedPreconditionError(
        fmt::format("{} objects share version {} (CKA_ID): a version must name one key object",
                    Describe(found.duplicates[0]), found.duplicates[0]));
    return r;
  }
  for (const auto& [version, handle] : found.versions) {
    {
      absl::MutexLock l(&mu_);
      if (checked_.count(version) != 0) continue;
    }
    KeyAttributes attributes;
    r = ReadKeyAttributes(module_->f(), session, handle, &attributes);
    if (!r.ok()) return r;
    *problem = CheckKeyAttributes(attributes, mechanism_, Describe(version));
    if (!problem->ok()) return r;
    if (!attributes.is_private) {
      spdlog::warn("{} is a public object (CKA_PRIVATE false): usable without the PIN",
                   Describe(version));
    }
    absl::MutexLock l(&mu_);
    checked_.insert(version);
  }
  absl::MutexLock l(&mu_);
  keys_ = std::move(found.versions);
  keys_epoch_ = epoch;
  if (!keys_.empty() && keys_.rbegin()->first > highest_seen_) {
    highest_seen_ = keys_.rbegin()->first;
  }
  return r;
}

ck_object_handle_t Pkcs11Kms::Handle(uint32_t version) {
  absl::MutexLock l(&mu_);
  auto it = keys_.find(version);
  return it == keys_.end() ? 0 : it->second;
}

uint32_t Pkcs11Kms::Current() {
  absl::MutexLock l(&mu_);
  return keys_.empty() ? 0 : keys_.rbegin()->first;
}

absl::Status Pkcs11Kms::Outcome(const absl::StatusOr<CallResult>& run, const absl::Status& problem,
                                std::string_view op, bool ciphertext_in) {
  if (!run.ok()) {
    return absl::Status(run.status().code(),
                        fmt::format("PKCS#11 {}: {}", op, std::string(run.status().message())));
  }
  if (!problem.ok()) return problem;
  const ck_rv_t rv = run->rv;
  if (rv == CKR_OK) return absl::OkStatus();
  const std::string msg = fmt::format("PKCS#11 {} on token '{}': {} failed: {}", op,
                                      Printable(token_label_), run->call, CkrName(rv));
  if (ciphertext_in && (run->call == "C_Decrypt" || run->call == "C_UnwrapKey") &&
      IsAuthenticationFailure(rv)) {
    return absl::InvalidArgumentError(msg + " (the wrapped key does not authenticate)");
  }
  if (IsSessionLost(rv) || IsTokenLost(rv) || IsTransient(rv) || rv == CKR_GENERAL_ERROR) {
    return absl::UnavailableError(msg);
  }
  switch (rv) {
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_KEY_SIZE_RANGE:
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
      return absl::FailedPreconditionError(msg);
    default:
      return absl::InternalError(msg);
  }
}

void Pkcs11Kms::Report(std::string_view operation, std::string_view kek_id,
                       const absl::Status& status, absl::Time start, const CallContext& ctx) const {
  RemoteAttempt report{"pkcs11", operation, audit_key_, kek_id, ""};
  report.code = status.code();
  report.error_class = ErrorClassOf(status);
  report.latency = absl::Now() - start;
  report.uid = ctx.uid;
  ReportAttempt(observer_, report, status);
}

absl::StatusOr<WrappedKey> Pkcs11Kms::Wrap(const SecretBytes& key, const CallContext& ctx) {
  const absl::Time start = absl::Now();
  absl::Status problem;
  uint32_t version = 0;
  std::string blob;
  auto run = pool_->Run(ctx.deadline, [&](ck_session_handle_t session, uint64_t epoch) {
    problem = absl::OkStatus();
    CallResult r = LoadKeys(session, epoch, /*refresh=*/false, &problem);
    if (!r.ok() || !problem.ok()) return r;
    version = Current();
    const ck_object_handle_t handle = Handle(version);
    if (handle == 0) {
      problem = absl::FailedPreconditionError(
          fmt::format("no AES key object labelled '{}' in PKCS#11 token '{}'",
                      Printable(key_label_), Printable(token_label_)));
      return r;
    }
    std::string body;
    if (mechanism_ == Mechanism::kAesKeyWrapPad) {
      r = KwpWrap(module_->f(), session, handle, key, &body);
      if (r.ok()) blob = EncodeBlob(mechanism_, "", body);
      return r;
    }
    absl::StatusOr<std::string> iv = RandomBytes(kGcmIvSize);
    if (!iv.ok()) {
      problem = iv.status();
      return r;
    }
    const std::string header = BlobHeader(mechanism_);
    r = GcmEncrypt(module_->f(), session, handle, *iv, GcmAad(header, key_label_, version), key,
                   &body);
    if (r.ok()) blob = EncodeBlob(mechanism_, *iv, body);
    return r;
  });
  const absl::Status status = Outcome(run, problem, "wrap", false);
  const std::string kek_id = version == 0 ? "" : KekId(version);
  Report(mechanism_ == Mechanism::kAesKeyWrapPad ? "C_WrapKey" : "C_Encrypt", kek_id, status, start,
         ctx);
  KMSP_RETURN_IF_ERROR(status);
  return WrappedKey{kek_id, std::move(blob)};
}

absl::StatusOr<SecretBytes> Pkcs11Kms::Unwrap(const WrappedKey& wrapped, const CallContext& ctx) {
  const std::optional<uint32_t> version = ParseKekId(wrapped.kek_id, serial_, key_label_);
  if (!version.has_value()) {
    return absl::FailedPreconditionError(fmt::format(
        "kek_id {} is not a key of this plugin (PKCS#11 token serial {}, key label '{}')",
        Printable(wrapped.kek_id), Printable(serial_), Printable(key_label_)));
  }
  absl::StatusOr<ParsedBlob> parsed = ParseBlob(wrapped.blob);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(fmt::format("kek_id {}: {}", Printable(wrapped.kek_id),
                                                  std::string(parsed.status().message())));
  }
  const absl::Time start = absl::Now();
  absl::Status problem;
  SecretBytes key;
  auto run = pool_->Run(ctx.deadline, [&](ck_session_handle_t session, uint64_t epoch) {
    problem = absl::OkStatus();
    CallResult r = LoadKeys(session, epoch, /*refresh=*/false, &problem);
    if (!r.ok() || !problem.ok()) return r;
    ck_object_handle_t handle = Handle(*version);
    if (handle == 0) {  // A version another node created since we last looked?
      r = LoadKeys(session, epoch, /*refresh=*/true, &problem);
      if (!r.ok() || !problem.ok()) return r;
      handle = Handle(*version);
    }
    if (handle == 0) {
      problem = absl::FailedPreconditionError(fmt::format(
          "{} is not in the token (kek_id {})", Describe(*version), Printable(wrapped.kek_id)));
      return r;
    }
    if (parsed->mechanism == Mechanism::kAesKeyWrapPad) {
      return KwpUnwrap(module_->f(), session, handle, parsed->body, &key);
    }
    return GcmDecrypt(module_->f(), session, handle, parsed->iv,
                      GcmAad(parsed->header, key_label_, *version), parsed->body, &key);
  });
  const absl::Status status = Outcome(run, problem, "unwrap", true);
  Report(parsed->mechanism == Mechanism::kAesKeyWrapPad ? "C_UnwrapKey" : "C_Decrypt",
         wrapped.kek_id, status, start, ctx);
  KMSP_RETURN_IF_ERROR(status);
  return key;
}

absl::StatusOr<KeyStatus> Pkcs11Kms::Probe(const CallContext& ctx) {
  const absl::Time start = absl::Now();
  absl::Status problem;
  auto run = pool_->Run(ctx.deadline, [&](ck_session_handle_t session, uint64_t epoch) {
    problem = absl::OkStatus();
    return LoadKeys(session, epoch, /*refresh=*/true, &problem);
  });
  const absl::Status status = Outcome(run, problem, "probe", false);
  Report("C_FindObjects", "", status, start, ctx);
  KMSP_RETURN_IF_ERROR(status);
  size_t count = 0;
  uint32_t current = 0;
  uint32_t highest = 0;
  {
    absl::MutexLock l(&mu_);
    count = keys_.size();
    current = keys_.empty() ? 0 : keys_.rbegin()->first;
    highest = highest_seen_;
  }
  if (current == 0) {
    return absl::FailedPreconditionError(
        fmt::format("no AES key object labelled '{}' is left in PKCS#11 token '{}'",
                    Printable(key_label_), Printable(token_label_)));
  }
  if (current < highest) {
    return absl::FailedPreconditionError(
        fmt::format("{} (the current KEK) is gone from the token", Describe(highest)));
  }
  return KeyStatus{KekId(current),
                   fmt::format("PKCS#11 token '{}' serial {}, key '{}' version {} ({} versions)",
                               Printable(token_label_), Printable(serial_), Printable(key_label_),
                               current, count)};
}

absl::Status Pkcs11Kms::RotateKek(const CallContext& ctx) {
  absl::MutexLock rotate_lock(&rotate_mu_);
  const absl::Time start = absl::Now();
  absl::Status problem;
  uint32_t next = 0;
  auto run = pool_->Run(ctx.deadline, [&](ck_session_handle_t session, uint64_t epoch) {
    problem = absl::OkStatus();
    CallResult r = LoadKeys(session, epoch, /*refresh=*/true, &problem);
    if (!r.ok() || !problem.ok()) return r;
    uint32_t highest = 0;
    {
      absl::MutexLock l(&mu_);
      highest = highest_seen_;
    }
    if (highest == UINT32_MAX) {
      problem = absl::FailedPreconditionError("the PKCS#11 key version is at its maximum");
      return r;
    }
    next = highest + 1;
    ck_object_handle_t key = 0;
    return GenerateKey(module_->f(), session, key_label_, next, mechanism_, &key);
  });
  const absl::Status generated = Outcome(run, problem, "rotate", false);
  Report("C_GenerateKey", next == 0 || !generated.ok() ? "" : KekId(next), generated, start, ctx);
  KMSP_RETURN_IF_ERROR(generated);
  spdlog::info("PKCS#11 rotation: created {}, AES-256, sensitive and not extractable; key_id {}",
               Describe(next), KekId(next));
  run = pool_->Run(ctx.deadline, [&](ck_session_handle_t session, uint64_t epoch) {
    problem = absl::OkStatus();
    return LoadKeys(session, epoch, /*refresh=*/true, &problem);
  });
  return Outcome(run, problem, "rotate", false);
}

}  // namespace kmsplugin::pkcs11
