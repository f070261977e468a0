// The reencrypt tool against a real etcd-server over TLS, as kube-apiserver's --etcd-cafile /
// --etcd-certfile / --etcd-keyfile: mutual TLS, and server TLS with the CA alone.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/reencrypt/corpus.h"
#include "tests/reencrypt/reencrypt_etcd_fixture.h"

namespace kmsplugin::testing {
namespace {

// --- Mutual TLS to etcd, as kube-apiserver's --etcd-cafile/--etcd-certfile/--etcd-keyfile. ---

TEST_F(ReencryptEtcdTest, MutualTlsEtcdIsReachedWithTheClientCertificate) {
  ITEST_ASSIGN_OR_FAIL(TestPki pki, MakeTestPki(dir_->path()));
  StartTlsEtcd(pki, /*client_cert_auth=*/true);
  ASSERT_EQ(etcd_->endpoint().rfind("https://", 0), 0u);
  for (int i = 0; i < 20; ++i) {
    std::string key = fmt::format("/registry/secrets/ns/s-{}", i);
    Put(key, MakePlaintext(key, 100));
  }
  const std::string config = WriteConfig(ConfigYaml(kms_->endpoint()));
  std::vector<std::string> args = BaseArgs(config);
  args.insert(args.end(), {"--resources", "secrets", "--etcd-timeout", "10s"});

  std::vector<std::string> no_cert = args;
  no_cert.insert(no_cert.end(), {"--etcd-cacert", pki.ca_cert});
  ToolResult refused = RunTool(no_cert);
  EXPECT_EQ(refused.exit.code, 2) << "etcd requires a client certificate: " << refused.err;

  std::vector<std::string> mtls = args;
  mtls.insert(mtls.end(), {"--etcd-cacert", pki.ca_cert, "--etcd-cert", pki.client_cert,
                           "--etcd-key", pki.client_key});
  ToolResult r = RunTool(mtls);
  ASSERT_EQ(r.exit.code, 0) << r.err;
  EXPECT_EQ(Count(r.summary, "rewritten"), 20);
  for (const auto& [key, kv] : Snapshot("/registry/secrets/")) {
    EXPECT_TRUE(DecodeKmsV2(kv.value, key).ok()) << key;
  }
}

TEST_F(ReencryptEtcdTest, ServerTlsEtcdIsReachedWithTheCaAlone) {
  ITEST_ASSIGN_OR_FAIL(TestPki pki, MakeTestPki(dir_->path()));
  StartTlsEtcd(pki, /*client_cert_auth=*/false);
  Put("/registry/secrets/ns/s", "plain");
  const std::string config = WriteConfig(ConfigYaml(kms_->endpoint()));
  std::vector<std::string> args = BaseArgs(config);
  args.insert(args.end(), {"--resources", "secrets", "--etcd-timeout", "10s"});

  ToolResult untrusted = RunTool(args);  // https:// without our CA: the handshake fails
  EXPECT_EQ(untrusted.exit.code, 2) << untrusted.err;

  args.insert(args.end(), {"--etcd-cacert", pki.ca_cert});
  ToolResult r = RunTool(args);
  ASSERT_EQ(r.exit.code, 0) << r.err;
  EXPECT_EQ(Count(r.summary, "rewritten"), 1);
}

}  // namespace
}  // namespace kmsplugin::testing
