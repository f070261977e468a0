// Issue 13: one local keyring per cluster, through the built kms-plugin. `serve --kms local`
// creates a missing keyring only with --local-keyring-create, --local-keyring-id pins the
// keyring_id, start-up logs the path and keyring_id, and a Decrypt of another keyring's key_id
// names both keyring_ids.
#include <algorithm>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/kms_client.h"
#include "tests/integration/plugin_test_base.h"

namespace kmsplugin::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class PluginKeyringIdTest : public PluginTestBase {
 protected:
  // Options() without --local-keyring-create (the production default).
  PluginOptions NoCreate(const std::string& name) {
    PluginOptions o = Options(name);
    o.args.erase(std::remove(o.args.begin(), o.args.end(), "--local-keyring-create"), o.args.end());
    return o;
  }

  // Starts a plugin expected to exit at once; returns its log after checking the exit code.
  std::string ExpectRefused(const PluginOptions& o) {
    auto plugin = StartNoWait(o);
    if (!plugin.ok()) {
      ADD_FAILURE() << plugin.status();
      return "";
    }
    auto exit = (*plugin)->process().Wait(absl::Seconds(30));
    EXPECT_TRUE(exit.ok()) << "not refused; log:\n" << (*plugin)->Log();
    if (exit.ok()) {
      EXPECT_TRUE(exit->exited && exit->code != 0) << exit->ToString();
    }
    return (*plugin)->Log();
  }

  std::string KeyringId() {
    auto j = nlohmann::json::parse(ReadFile(keyring_path_).value_or(""), nullptr, false);
    return j.is_discarded() ? "" : j.value("keyring_id", "");
  }
};

TEST_F(PluginKeyringIdTest, AMissingKeyringIsNotCreatedWithoutLocalKeyringCreate) {
  const std::string log = ExpectRefused(NoCreate("nocreate"));
  EXPECT_THAT(log, HasSubstr("local keyring " + keyring_path_ + " does not exist"));
  EXPECT_THAT(log, HasSubstr("--local-keyring-create"));
  EXPECT_FALSE(ReadFile(keyring_path_).ok()) << "a keyring was created";
}

TEST_F(PluginKeyringIdTest, CreationLogsTheNewKeyringIdAndThatEveryNodeNeedsACopy) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Options("create")));
  const std::string id = KeyringId();
  ASSERT_EQ(id.size(), 32u);
  const std::string log = plugin->Log();
  EXPECT_THAT(log, HasSubstr("created a NEW local keyring " + keyring_path_ + " with keyring_id " +
                             id));
  EXPECT_THAT(log, HasSubstr("every node of this cluster must use a copy of this file"));
  EXPECT_THAT(log, HasSubstr("local keyring " + keyring_path_ + ": keyring_id " + id));
  EXPECT_THAT(plugin->Terminate(), IsOkAndHolds(::testing::Field(&ExitInfo::code, 0)));

  // A second start opens the same file: the start-up line, no creation line.
  ITEST_ASSIGN_OR_FAIL(auto again, Start(NoCreate("again")));
  EXPECT_THAT(again->Log(), HasSubstr("local keyring " + keyring_path_ + ": keyring_id " + id));
  EXPECT_THAT(again->Log(), Not(HasSubstr("created a NEW local keyring")));
}

TEST_F(PluginKeyringIdTest, LocalKeyringIdMustMatchTheFileAndForbidsCreation) {
  ITEST_ASSIGN_OR_FAIL(auto first, Start(Options("first")));
  ASSERT_THAT(first->Terminate(), IsOk());
  const std::string id = KeyringId();
  ASSERT_EQ(id.size(), 32u);

  PluginOptions wrong = NoCreate("wrong");
  wrong.args.push_back("--local-keyring-id=ffffffffffffffffffffffffffffffff");
  const std::string log = ExpectRefused(wrong);
  EXPECT_THAT(log, HasSubstr("has keyring_id " + id + ", not ffffffffffffffffffffffffffffffff"));

  PluginOptions with_create = Options("withcreate");
  with_create.args.push_back("--local-keyring-id=" + id);
  EXPECT_THAT(ExpectRefused(with_create),
              HasSubstr("--local-keyring-id cannot be combined with --local-keyring-create"));

  PluginOptions right = NoCreate("right");
  right.args.push_back("--local-keyring-id=" + id);
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(right));
  EXPECT_THAT(plugin->Terminate(), IsOkAndHolds(::testing::Field(&ExitInfo::code, 0)));
}

TEST_F(PluginKeyringIdTest, DecryptOfAnotherKeyringsKeyIdNamesBothKeyringIds) {
  ITEST_ASSIGN_OR_FAIL(auto node1, Start(Options("node1")));
  const std::string id1 = KeyringId();
  PluginOptions o2 = Options("node2");
  const std::string other = dir_->File("node2-keyring.json");
  o2.args = LocalKmsArgs(other);
  ITEST_ASSIGN_OR_FAIL(auto node2, Start(o2));
  auto j = nlohmann::json::parse(ReadFile(other).value_or(""), nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  const std::string id2 = j.value("keyring_id", "");
  ASSERT_NE(id1, id2);

  ApiserverKmsClient c1(node1->grpc_target()), c2(node2->grpc_target());
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, c1.Encrypt(NewSeed()));
  ASSERT_THAT(enc.key_id(), HasSubstr(id1));
  auto dec = c2.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc));
  ASSERT_FALSE(dec.ok());
  const std::string both = "key_id is from local keyring " + id1 + ", but this plugin's keyring " +
                           other + " is " + id2;
  // kube-apiserver logs the reply's message ("failed to decrypt DEK, error: ..."): it names both.
  const std::string message(dec.status().message());
  EXPECT_EQ(dec.status().code(), absl::StatusCode::kFailedPrecondition) << message;
  EXPECT_THAT(message, HasSubstr(both));
  EXPECT_THAT(message, HasSubstr("all nodes must share one keyring"));
}

}  // namespace
}  // namespace kmsplugin::testing
