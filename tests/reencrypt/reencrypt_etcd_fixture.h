// ReencryptEtcdTest: the fixture of the reencrypt tests against a real etcd-server (3.4) that
// each test starts on loopback, in the test's dir of the integration base (PluginTestBase), with a
// fake KMS v2 and a fake KMS v1 plugin on unix sockets beside it; the reencrypt tool is run as the
// built `kms-plugin reencrypt` process (RunTool). KMS v2 values the tool writes are checked with
// the independent decoder of corpus.h.
#ifndef KMSP_TESTS_REENCRYPT_REENCRYPT_ETCD_FIXTURE_H_
#define KMSP_TESTS_REENCRYPT_REENCRYPT_ETCD_FIXTURE_H_

#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "crypto/encoding.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/plugin_test_base.h"
#include "tests/reencrypt/etcd_process.h"
#include "tests/reencrypt/fake_kms_server.h"
#include "tools/reencrypt/etcd_client.h"

namespace kmsplugin::testing {

using reencrypt::EtcdClient;
using reencrypt::EtcdKeyValue;

inline const std::string kCbcKey(32, 'c');
inline const std::string kCbcOldKey(32, 'o');
inline const std::string kGcmKey(32, 'g');
inline const std::string kBoxKey(32, 'b');
inline const std::string kSeedOld(32, 's');
inline const std::string kDekOld(32, 'd');

// nlohmann::json's move constructor is noexcept; clang-tidy follows it into an unreachable throw
// in json's internals and blames the implicit move constructor of this struct.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct ToolResult {
  ExitInfo exit;
  std::string out;
  std::string err;
  nlohmann::json summary;  // the last stdout line
};

class ReencryptEtcdTest : public PluginTestBase {
 protected:
  void SetUp() override {
    PluginTestBase::SetUp();
    if (HasFatalFailure()) return;
    EtcdOptions eo;
    eo.data_dir = dir_->File("etcd-data");
    eo.log_path = dir_->File("etcd.log");
    StartEtcd(eo);
    ITEST_ASSIGN_OR_FAIL(kms_, FakeKmsV2Server::Start(dir_->File("kms.sock"), "1"));
    ITEST_ASSIGN_OR_FAIL(kms_v1_, FakeKmsV1Server::Start(dir_->File("kmsv1.sock")));
  }

  void StartEtcd(const EtcdOptions& eo) {
    ITEST_ASSIGN_OR_FAIL(etcd_, EtcdProcess::Start(eo));
    ITEST_ASSIGN_OR_FAIL(client_, etcd_->NewClient());
  }

  // Replaces etcd with one serving https with `pki`, requiring a client certificate if asked.
  void StartTlsEtcd(const TestPki& pki, bool client_cert_auth) {
    EtcdOptions eo;
    eo.data_dir = dir_->File("etcd-tls-data");
    eo.log_path = dir_->File("etcd-tls.log");
    eo.tls = &pki;
    eo.client_cert_auth = client_cert_auth;
    StartEtcd(eo);
  }

  // secrets: kms v2 first, then every legacy provider; configmaps: aescbc.
  std::string ConfigYaml(const std::string& kms_endpoint) {
    return fmt::format(R"(apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms: {{apiVersion: v2, name: kms-provider, endpoint: "{}", timeout: 5s}}
      - kms: {{name: legacy-v1, endpoint: "{}"}}
      - aescbc: {{keys: [{{name: cbc1, secret: {}}}, {{name: cbc0, secret: {}}}]}}
      - aesgcm: {{keys: [{{name: gcm1, secret: {}}}]}}
      - secretbox: {{keys: [{{name: box1, secret: {}}}]}}
      - identity: {{}}
  - resources: [configmaps]
    providers:
      - aescbc: {{keys: [{{name: cbc1, secret: {}}}]}}
      - identity: {{}}
)",
                       kms_endpoint, kms_v1_->endpoint(), Base64Encode(kCbcKey),
                       Base64Encode(kCbcOldKey), Base64Encode(kGcmKey), Base64Encode(kBoxKey),
                       Base64Encode(kCbcKey));
  }

  std::string WriteConfig(const std::string& yaml) {
    std::string path = dir_->File("encryption-config.yaml");
    EXPECT_TRUE(WriteFile(path, yaml).ok());
    return path;
  }

  std::vector<std::string> BaseArgs(const std::string& config_path) {
    return {"reencrypt",       "--encryption-config", config_path, "--etcd-endpoints",
            etcd_->endpoint(), "--progress-interval", "0s"};
  }

  ToolResult RunTool(std::vector<std::string> args) {
    ToolResult r;
    ProcessOptions p;
    p.binary = KMSP_REENCRYPT_TOOL;
    p.args = std::move(args);
    const std::string out = dir_->File(fmt::format("tool-{}.out", runs_));
    const std::string err = dir_->File(fmt::format("tool-{}.err", runs_++));
    p.stdout_path = out;
    p.stderr_path = err;
    auto exit = Subprocess::Run(p, absl::Seconds(120));
    EXPECT_TRUE(exit.ok()) << exit.status();
    if (exit.ok()) r.exit = *exit;
    r.out = ReadFile(out).value_or("");
    r.err = ReadFile(err).value_or("");
    std::string last;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty()) last = line;
    }
    r.summary = nlohmann::json::parse(last, nullptr, /*allow_exceptions=*/false);
    return r;
  }

  void Put(const std::string& key, const std::string& value) {
    ASSERT_TRUE(client_->Put(key, value).ok());
  }

  // Every key under `prefix` (default: all of etcd).
  std::map<std::string, EtcdKeyValue> Snapshot(const std::string& prefix = "/") {
    std::map<std::string, EtcdKeyValue> out;
    auto page = client_->Range(prefix, reencrypt::PrefixRangeEnd(prefix), {});
    EXPECT_TRUE(page.ok()) << page.status();
    if (page.ok()) {
      for (auto& kv : page->kvs) out[kv.key] = kv;
    }
    return out;
  }

  int64_t StoreRevision() {
    auto page = client_->Range("/", reencrypt::PrefixRangeEnd("/"), {0, false, true});
    return page.ok() ? page->revision : -1;
  }

  static int64_t Count(const nlohmann::json& s, const char* field) {
    return s.is_object() && s.contains(field) ? s[field].get<int64_t>() : -1;
  }

  // {"provider|key_id|type|current" -> count} from a scan summary, for one resource.
  static std::map<std::string, int64_t> Inventory(const nlohmann::json& s,
                                                  const std::string& resource) {
    std::map<std::string, int64_t> out;
    if (!s.is_object() || !s.contains("inventory")) return out;
    for (const auto& row : s["inventory"]) {
      if (row["resource"] != resource) continue;
      std::string type = row.contains("type") ? std::to_string(row["type"].get<int>()) : "-";
      out[fmt::format("{}|{}|{}|{}", row["provider"].get<std::string>(),
                      row["key_id"].get<std::string>(), type, row["current"].get<bool>())] +=
          row["count"].get<int64_t>();
    }
    return out;
  }

  std::unique_ptr<EtcdProcess> etcd_;
  std::unique_ptr<EtcdClient> client_;
  std::unique_ptr<FakeKmsV2Server> kms_;
  std::unique_ptr<FakeKmsV1Server> kms_v1_;
  int runs_ = 0;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_REENCRYPT_REENCRYPT_ETCD_FIXTURE_H_
