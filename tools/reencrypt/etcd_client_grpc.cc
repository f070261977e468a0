// EtcdClient over etcd's v3 gRPC API (proto/etcd/rpc.proto, etcd's own field numbers).
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>

#include "base/printable.h"
#include "base/status.h"
#include "crypto/secret_bytes.h"
#include "fmt/format.h"
#include "kms/secret_file.h"
#include "plugin/grpc_status.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "tools/reencrypt/etcd_client.h"
#include "tools/reencrypt/etcd_response.h"

namespace kmsplugin::reencrypt {
namespace {

absl::Status FromGrpc(const grpc::Status& s, std::string_view endpoint, std::string_view method) {
  return AnnotatePeerError(FromGrpcStatus(s),
                           fmt::format("etcd {} {}", Printable(endpoint), method));
}

// TLS files through the one secret-file reader (the client key is a secret; one reader for all).
absl::StatusOr<std::string> ReadTlsFile(const std::string& path, std::string_view what) {
  absl::StatusOr<std::string> text = ReadSecretFile(path);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        ToAbsl(fmt::format("{} file: {}", what, ToStd(text.status().message()))));
  }
  return text;
}

struct Endpoint {
  std::string name;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
};

class GrpcEtcdClient final : public EtcdClient {
 public:
  GrpcEtcdClient(std::vector<Endpoint> endpoints, absl::Duration timeout)
      : endpoints_(std::move(endpoints)), timeout_(timeout) {}

  absl::StatusOr<EtcdRangePage> Range(std::string_view key, std::string_view range_end,
                                      const EtcdRangeOptions& options) override {
    etcdserverpb::RangeRequest req;
    req.set_key(std::string(key));
    req.set_range_end(std::string(range_end));
    req.set_limit(options.limit);
    req.set_keys_only(options.keys_only);
    req.set_count_only(options.count_only);
    etcdserverpb::RangeResponse resp;
    KMSP_RETURN_IF_ERROR(Call("Range", [&](size_t idx, grpc::ClientContext* ctx) {
      etcdserverpb::KV::Stub* stub = endpoints_[idx].kv.get();
      resp.Clear();
      return stub->Range(ctx, req, &resp);
    }));
    EtcdRangePage page = PageFromRangeResponse(&resp);
    return page;
  }

  absl::StatusOr<int64_t> Put(std::string_view key, std::string_view value,
                              int64_t lease) override {
    etcdserverpb::PutRequest req;
    req.set_key(std::string(key));
    req.set_value(std::string(value));
    req.set_lease(lease);
    etcdserverpb::PutResponse resp;
    KMSP_RETURN_IF_ERROR(Call("Put", [&](size_t idx, grpc::ClientContext* ctx) {
      etcdserverpb::KV::Stub* stub = endpoints_[idx].kv.get();
      return stub->Put(ctx, req, &resp);
    }));
    return resp.header().revision();
  }

  absl::StatusOr<int64_t> GrantLease(absl::Duration ttl) override {
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(absl::ToInt64Seconds(ttl));
    etcdserverpb::LeaseGrantResponse resp;
    KMSP_RETURN_IF_ERROR(Call("LeaseGrant", [&](size_t idx, grpc::ClientContext* ctx) {
      return endpoints_[idx].lease->LeaseGrant(ctx, req, &resp);
    }));
    if (!resp.error().empty()) return absl::FailedPreconditionError("LeaseGrant: " + Printable(resp.error()));
    return resp.id();
  }

  absl::StatusOr<EtcdCasResult> CompareAndSwap(std::string_view key, int64_t expected_mod_revision,
                                               std::string_view value, int64_t lease) override {
    etcdserverpb::TxnRequest req;
    etcdserverpb::Compare* cmp = req.add_compare();
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_target(etcdserverpb::Compare::MOD);
    cmp->set_key(std::string(key));
    cmp->set_mod_revision(expected_mod_revision);
    etcdserverpb::PutRequest* put = req.add_success()->mutable_request_put();
    put->set_key(std::string(key));
    put->set_value(std::string(value));
    put->set_lease(lease);
    req.add_failure()->mutable_request_range()->set_key(std::string(key));
    etcdserverpb::TxnResponse resp;
    // A Txn is not idempotent in general, but this one is safe to resend: if a first attempt was
    // applied, the compare fails on the retry and we report the key's current state.
    KMSP_RETURN_IF_ERROR(Call("Txn", [&](size_t idx, grpc::ClientContext* ctx) {
      etcdserverpb::KV::Stub* stub = endpoints_[idx].kv.get();
      resp.Clear();
      return stub->Txn(ctx, req, &resp);
    }));
    return CasResultFromTxnResponse(resp, key);
  }

  absl::StatusOr<int64_t> DeleteRange(std::string_view key, std::string_view range_end) override {
    etcdserverpb::DeleteRangeRequest req;
    req.set_key(std::string(key));
    req.set_range_end(std::string(range_end));
    etcdserverpb::DeleteRangeResponse resp;
    KMSP_RETURN_IF_ERROR(Call("DeleteRange", [&](size_t idx, grpc::ClientContext* ctx) {
      etcdserverpb::KV::Stub* stub = endpoints_[idx].kv.get();
      return stub->DeleteRange(ctx, req, &resp);
    }));
    return resp.deleted();
  }

 private:
  // Calls `fn` on the preferred endpoint, failing over to the others on UNAVAILABLE.
  template <typename Fn>
  absl::Status Call(std::string_view method, Fn fn) {
    const size_t n = endpoints_.size();
    size_t start = preferred_.load(std::memory_order_relaxed);
    absl::Status last;
    for (size_t i = 0; i < n; ++i) {
      size_t idx = (start + i) % n;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout_));
      grpc::Status s = fn(idx, &ctx);
      if (s.error_code() != grpc::StatusCode::UNAVAILABLE || n == 1) {
        if (s.ok() && idx != start) preferred_.store(idx, std::memory_order_relaxed);
        return FromGrpc(s, endpoints_[idx].name, method);
      }
      last = FromGrpc(s, endpoints_[idx].name, method);
    }
    return last;
  }

  std::vector<Endpoint> endpoints_;
  const absl::Duration timeout_;
  std::atomic<size_t> preferred_{0};
};

}  // namespace

std::string PrefixRangeEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key: etcd reads "\0" as "no upper bound"
}

absl::StatusOr<std::unique_ptr<EtcdClient>> CreateGrpcEtcdClient(const EtcdClientOptions& options) {
  if (options.endpoints.empty()) return absl::InvalidArgumentError("no etcd endpoints given");
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError("etcd client cert and key must be given together");
  }
  bool any_tls_file = !options.ca_file.empty() || !options.cert_file.empty();
  std::shared_ptr<grpc::ChannelCredentials> tls_creds;
  {
    grpc::SslCredentialsOptions ssl;
    if (!options.ca_file.empty()) {
      KMSP_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadTlsFile(options.ca_file, "etcd CA"));
    }
    if (!options.cert_file.empty()) {
      KMSP_ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadTlsFile(options.cert_file, "etcd client cert"));
      auto key = ReadTlsFile(options.key_file, "etcd client key");
      if (!key.ok()) return key.status();
      ssl.pem_private_key = std::move(*key);  // a move: no second copy of the key
    }
    // One credentials object for every endpoint. gRPC copies the key into its own TLS context for
    // the channels' life (an unavoidable copy); ours is wiped right away.
    tls_creds = grpc::SslCredentials(ssl);
    WipeString(ssl.pem_private_key);
  }
  std::vector<Endpoint> endpoints;
  for (const std::string& url : options.endpoints) {
    std::string_view hostport = url;
    bool tls = any_tls_file;
    if (hostport.substr(0, 8) == "https://") {
      hostport.remove_prefix(8);
      tls = true;
    } else if (hostport.substr(0, 7) == "http://") {
      hostport.remove_prefix(7);
    } else if (hostport.find("://") != std::string_view::npos) {
      return absl::InvalidArgumentError(
          fmt::format("etcd endpoint \"{}\": unsupported scheme", url));
    }
    while (!hostport.empty() && hostport.back() == '/') hostport.remove_suffix(1);
    if (hostport.empty() || hostport.find('/') != std::string_view::npos) {
      return absl::InvalidArgumentError(fmt::format("etcd endpoint \"{}\" is not host:port", url));
    }
    std::shared_ptr<grpc::ChannelCredentials> creds =
        tls ? tls_creds : grpc::InsecureChannelCredentials();
    grpc::ChannelArguments args;
    // etcd's default request cap is 1.5 MiB, but a Range page can be far larger.
    args.SetMaxReceiveMessageSize(-1);
    auto channel = grpc::CreateCustomChannel(std::string(hostport), creds, args);
    endpoints.push_back(
        Endpoint{url, etcdserverpb::KV::NewStub(channel), etcdserverpb::Lease::NewStub(channel)});
  }
  return std::unique_ptr<EtcdClient>(
      new GrpcEtcdClient(std::move(endpoints), options.request_timeout));
}

}  // namespace kmsplugin::reencrypt
