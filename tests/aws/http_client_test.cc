// CurlHttpClient against the python fake AWS server's plain-HTTP and HTTPS ports: responses and
// headers, deadlines turned into timeouts, the response-size cap, TLS verification with a CA
// file, and refusal of header injection.
#include "kms/http_client.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/aws/fake_aws_server.h"
#include "tests/aws/fake_aws_server_fixture.h"
#include "tests/integration/plugin_process.h"
#include "tests/matchers.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::ExitInfo;
using ::kmsplugin::testing::FakeAwsServer;
using ::kmsplugin::testing::FakeAwsServerTest;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::ProcessOptions;
using ::kmsplugin::testing::StatusIs;
using ::kmsplugin::testing::Subprocess;
using ::kmsplugin::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Optional;

class CurlHttpClientTest : public FakeAwsServerTest {
 protected:
  static std::unique_ptr<CurlHttpClient> Client(HttpClientOptions options = {}) {
    auto client = CurlHttpClient::Create(std::move(options));
    EXPECT_THAT(client, IsOk());
    return client.ok() ? std::move(*client) : nullptr;
  }
  static HttpRequest Get(const std::string& url, absl::Duration timeout = absl::Seconds(10)) {
    HttpRequest req;
    req.url = url;
    req.deadline = absl::Now() + timeout;
    return req;
  }
};

TEST_F(CurlHttpClientTest, ReturnsStatusLowerCasedHeadersAndBody) {
  absl::StatusOr<HttpResponse> resp = Client()->Send(Get(server_->http_base() + "/admin/requests"));
  ASSERT_THAT(resp, IsOk());
  EXPECT_EQ(resp->status, 200);
  EXPECT_THAT(resp->Header("content-type"), Optional(std::string_view("application/json")));
  EXPECT_TRUE(resp->Header("x-amzn-requestid").has_value());
  EXPECT_EQ(resp->body.Reveal(), R"({"requests": []})");
}

TEST_F(CurlHttpClientTest, HttpErrorStatusIsAnAnswerNotAFailure) {
  absl::StatusOr<HttpResponse> resp = Client()->Send(Get(server_->http_base() + "/no/such/path"));
  ASSERT_THAT(resp, IsOk());
  EXPECT_EQ(resp->status, 404);
}

TEST_F(CurlHttpClientTest, PutSendsTheBodyAndHeaders) {
  ASSERT_THAT(server_->Admin("/admin/imds", {{"role", "r"}}), IsOk());
  HttpRequest req = Get(server_->http_base() + "/latest/api/token");
  req.method = "PUT";
  req.headers.push_back({"X-aws-ec2-metadata-token-ttl-seconds", "60"});
  absl::StatusOr<HttpResponse> resp = Client()->Send(req);
  ASSERT_THAT(resp, IsOk());
  EXPECT_EQ(resp->status, 200);
  EXPECT_FALSE(resp->body.empty());
  EXPECT_THAT(resp->Header("x-aws-ec2-metadata-token-ttl-seconds"),
              Optional(std::string_view("60")));
}

TEST_F(CurlHttpClientTest, DeadlineAlreadyPassedFailsWithoutSending) {
  HttpRequest req = Get(server_->http_base() + "/admin/requests");
  req.deadline = absl::Now() - absl::Milliseconds(1);
  EXPECT_THAT(Client()->Send(req), StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(CurlHttpClientTest, SlowServerPastTheDeadlineIsDeadlineExceeded) {
  ASSERT_THAT(server_->Admin("/admin/imds", {{"role", "r"}}), IsOk());
  ASSERT_THAT(server_->Admin("/admin/faults", {{"service", "imds"},
                                               {"op", "PUT"},
                                               {"kind", "latency"},
                                               {"count", 1},
                                               {"delay_ms", 3000}}),
              IsOk());
  HttpRequest req = Get(server_->http_base() + "/latest/api/token", absl::Milliseconds(200));
  req.method = "PUT";
  req.headers.push_back({"X-aws-ec2-metadata-token-ttl-seconds", "60"});
  EXPECT_THAT(Client()->Send(req), StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(CurlHttpClientTest, ResponseLargerThanTheCapIsUnavailable) {
  HttpClientOptions options;
  options.max_response_bytes = 8;
  EXPECT_THAT(Client(options)->Send(Get(server_->http_base() + "/admin/requests")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("larger than 8 bytes")));
}

TEST_F(CurlHttpClientTest, TlsNeedsTheServersCaAndWorksWithIt) {
  HttpRequest req = Get(server_->kms_endpoint() + "/");
  req.method = "POST";
  EXPECT_THAT(Client()->Send(req),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("certificate")));
  HttpClientOptions options;
  options.ca_file = server_->ca_file();
  absl::StatusOr<HttpResponse> resp = Client(options)->Send(req);
  ASSERT_THAT(resp, IsOk());
  EXPECT_EQ(resp->status, 400);  // An empty STS request: InvalidAction, over verified TLS.
}

// system_ca_dir: the CA file adds to the directory's roots instead of replacing them (the GCP and
// Azure --…-ca-file flags over the system's /etc/ssl/certs). Here the "system" directory holds the
// server's CA, hashed the c_rehash way, and the CA file an unrelated CA: the request verifies
// only when the directory is used as well.
TEST_F(CurlHttpClientTest, ACaFileAddsToTheSystemCaDirectoryInsteadOfReplacingIt) {
  absl::StatusOr<TempDir> dir = TempDir::Create("kmsp-cadir");
  ASSERT_THAT(dir, IsOk());
  const std::string other_ca = dir->File("other-ca.pem");
  ProcessOptions sh;
  sh.binary = "/bin/sh";
  sh.args = {"-c",
             absl::StrCat("set -e; cd '", dir->path(), "'; h=$(openssl x509 -hash -noout -in '",
                          server_->ca_file(), "'); mkdir hashed; cp '", server_->ca_file(),
                          "' hashed/$h.0; openssl req -x509 -newkey ec -pkeyopt "
                          "ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=unrelated-test-ca "
                          "-keyout other-key.pem -out other-ca.pem")};
  absl::StatusOr<ExitInfo> made = Subprocess::Run(sh, absl::Seconds(30));
  ASSERT_THAT(made, IsOk());
  ASSERT_TRUE(made->exited && made->code == 0) << "openssl failed";
  HttpRequest req = Get(server_->kms_endpoint() + "/");
  req.method = "POST";
  HttpClientOptions file_only;
  file_only.ca_file = other_ca;
  EXPECT_THAT(Client(file_only)->Send(req),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("certificate")));
  HttpClientOptions both = file_only;
  both.system_ca_dir = dir->File("hashed");
  absl::StatusOr<HttpResponse> resp = Client(both)->Send(req);
  ASSERT_THAT(resp, IsOk());
  EXPECT_EQ(resp->status, 400);
}

TEST_F(CurlHttpClientTest, ConnectionRefusedIsUnavailable) {
  EXPECT_THAT(Client()->Send(Get("http://127.0.0.1:1/")), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(CurlHttpClientTest, HeaderInjectionAndBadInputsAreRefused) {
  HttpRequest req = Get(server_->http_base() + "/admin/requests");
  req.headers.push_back({"X-Test", "a\r\nX-Injected: 1"});
  EXPECT_THAT(Client()->Send(req), StatusIs(absl::StatusCode::kInvalidArgument));
  HttpRequest del = Get(server_->http_base() + "/admin/requests");
  del.method = "DELETE";
  EXPECT_THAT(Client()->Send(del), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Client()->Send(Get("ftp://127.0.0.1/")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  HttpClientOptions missing_ca;
  missing_ca.ca_file = "/nonexistent/ca.pem";
  EXPECT_THAT(CurlHttpClient::Create(missing_ca), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kmsplugin
