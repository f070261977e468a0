// The gRPC PluginClient: v2.KeyManagementService on the KMS socket (plugin/kms_v2_client.h,
// without WaitForReady: UNAVAILABLE at once when nothing listens), kmsplugin.admin.v1.Admin on
// the admin socket, both dialled as kube-apiserver dials (plugin/channel.h).
#include <chrono>
#include <string>
#include <utility>

#include "base/status.h"
#include "fmt/format.h"
#include "grpcpp/grpcpp.h"
#include "plugin/channel.h"
#include "plugin/grpc_status.h"
#include "plugin/kms_v2_client.h"
#include "plugin/listen_address.h"
#include "proto/admin/admin.grpc.pb.h"
#include "tools/rotate/plugin_client.h"

namespace kmsplugin::rotate {
namespace {

namespace admin = ::kmsplugin::admin::v1;

void SetDeadline(grpc::ClientContext& ctx, absl::Duration timeout) {
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

// Every call passes its own timeout.
KmsV2ClientOptions NoWaitForReady() {
  KmsV2ClientOptions options;
  options.wait_for_ready = false;
  return options;
}

PluginState FromReport(const admin::ReportResponse& r) {
  PluginState s;
  s.healthz = r.healthz();
  s.key_id = r.key_id();
  s.backend = r.backend();
  s.data_key_created = r.data_key_created();
  s.data_key_uses = r.data_key_uses();
  s.kek_ids_seen.assign(r.kek_ids_seen().begin(), r.kek_ids_seen().end());
  s.last_probe_result = r.last_probe_result();
  s.kek_description = r.kek_description();
  return s;
}

class GrpcPluginClient final : public PluginClient {
 public:
  GrpcPluginClient(PluginAddress address, std::shared_ptr<grpc::Channel> kms,
                   std::shared_ptr<grpc::Channel> admin)
      : address_(std::move(address)),
        kms_(std::move(kms), NoWaitForReady()),
        admin_(admin::Admin::NewStub(admin)) {}

  absl::StatusOr<PluginState> Report(absl::Duration timeout) override {
    return CallAdmin(&admin::Admin::Stub::Report, admin::ReportRequest(), "admin Report", timeout);
  }
  absl::StatusOr<PluginState> Refresh(absl::Duration timeout) override {
    return CallAdmin(&admin::Admin::Stub::Refresh, admin::RefreshRequest(), "admin Refresh",
                     timeout);
  }
  absl::StatusOr<PluginState> RotateDataKey(absl::Duration timeout) override {
    return CallAdmin(&admin::Admin::Stub::RotateDataKey, admin::RotateDataKeyRequest(),
                     "admin RotateDataKey", timeout);
  }
  absl::StatusOr<PluginState> RotateKek(absl::Duration timeout) override {
    return CallAdmin(&admin::Admin::Stub::RotateKek, admin::RotateKekRequest(), "admin RotateKek",
                     timeout);
  }

  absl::StatusOr<KmsStatus> Status(absl::Duration timeout) override {
    absl::StatusOr<v2::StatusResponse> response = kms_.Status(timeout);
    KMSP_RETURN_IF_ERROR(AnnotateKms(response.status(), "Status"));
    return KmsStatus{response->version(), response->healthz(), response->key_id()};
  }

  absl::StatusOr<Ciphertext> Encrypt(std::string_view plaintext, std::string_view uid,
                                     absl::Duration timeout) override {
    v2::EncryptRequest request;
    request.set_plaintext(std::string(plaintext));
    request.set_uid(std::string(uid));
    absl::StatusOr<v2::EncryptResponse> response = kms_.Encrypt(std::move(request), timeout);
    KMSP_RETURN_IF_ERROR(AnnotateKms(response.status(), "Encrypt"));
    Ciphertext out;
    out.ciphertext = response->ciphertext();
    out.key_id = response->key_id();
    for (const auto& [k, v] : response->annotations()) out.annotations.emplace(k, v);
    return out;
  }

  absl::StatusOr<SecretBytes> Decrypt(const Ciphertext& ciphertext, std::string_view uid,
                                      absl::Duration timeout) override {
    v2::DecryptRequest request;
    request.set_ciphertext(ciphertext.ciphertext);
    request.set_key_id(ciphertext.key_id);
    request.set_uid(std::string(uid));
    for (const auto& [k, v] : ciphertext.annotations) (*request.mutable_annotations())[k] = v;
    absl::StatusOr<v2::DecryptResponse> response = kms_.Decrypt(std::move(request), timeout);
    KMSP_RETURN_IF_ERROR(AnnotateKms(response.status(), "Decrypt"));
    // protobuf keeps its own copy we cannot wipe (docs/style.md); we add none beyond this one.
    return SecretBytes::TakeFrom(*response->mutable_plaintext());
  }

 private:
  template <typename Method, typename Request>
  absl::StatusOr<PluginState> CallAdmin(Method method, const Request& request,
                                        std::string_view what, absl::Duration timeout) {
    grpc::ClientContext ctx;
    SetDeadline(ctx, timeout);
    admin::ReportResponse response;
    KMSP_RETURN_IF_ERROR(
        AnnotatePeerError(FromGrpcStatus((admin_.get()->*method)(&ctx, request, &response)),
                          fmt::format("{} on {}", what, address_.admin_socket)));
    return FromReport(response);
  }

  absl::Status AnnotateKms(const absl::Status& status, std::string_view what) const {
    return AnnotatePeerError(status, fmt::format("{} on {}", what, address_.socket));
  }

  const PluginAddress address_;
  const KmsV2Client kms_;
  std::unique_ptr<admin::Admin::Stub> admin_;
};

}  // namespace

absl::StatusOr<PluginAddress> ResolvePluginAddress(std::string_view socket,
                                                   std::string_view admin_socket) {
  KMSP_ASSIGN_OR_RETURN(ListenAddress kms, ParseListenAddress(socket));
  PluginAddress out;
  out.socket = std::string(socket);
  out.admin_socket = admin_socket.empty() ? DefaultAdminAddress(kms) : std::string(admin_socket);
  if (out.admin_socket.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "--socket {} is an abstract socket, which has no default admin socket; pass the plugin's "
        "--admin-socket path with --admin-socket",
        socket));
  }
  KMSP_ASSIGN_OR_RETURN(ListenAddress admin, ParseListenAddress(out.admin_socket));
  KMSP_RETURN_IF_ERROR(ValidateAdminAddress(admin));
  return out;
}

absl::StatusOr<std::unique_ptr<PluginClient>> DialPlugin(const PluginAddress& address) {
  KMSP_ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> kms, DialUnixSocket(address.socket));
  KMSP_ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> admin, DialUnixSocket(address.admin_socket));
  return std::unique_ptr<PluginClient>(
      new GrpcPluginClient(address, std::move(kms), std::move(admin)));
}

}  // namespace kmsplugin::rotate
