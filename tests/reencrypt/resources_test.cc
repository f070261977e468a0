// resources: where kube-apiserver keeps each resource in etcd.
#include "tools/reencrypt/resources.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/matchers.h"
#include "tests/reencrypt/in_memory_etcd.h"

namespace kmsplugin::reencrypt {
namespace {

using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::StatusIs;

class ResourcesTest : public ::testing::Test {};

TEST_F(ResourcesTest, BuiltInResourcesUseTheApiserversHistoricalPaths) {
  EXPECT_EQ(EtcdPathFor(GroupResource::Parse("secrets")), "secrets");
  EXPECT_EQ(EtcdPathFor(GroupResource::Parse("nodes")), "minions");
  EXPECT_EQ(EtcdPathFor(GroupResource::Parse("services")), "services/specs");
  EXPECT_EQ(EtcdPathFor(GroupResource::Parse("endpoints")), "services/endpoints");
  EXPECT_EQ(EtcdPathFor(GroupResource::Parse("replicationcontrollers")), "controllers");
  EXPECT_EQ(EtcdPathFor(GroupResource::Parse("ingresses.networking.k8s.io")), "ingress");
  EXPECT_EQ(EtcdPathFor(GroupResource::Parse("deployments.apps")), "deployments");
  EXPECT_EQ(EtcdPathFor(GroupResource::Parse("events.events.k8s.io")), "events");
  EXPECT_EQ(EtcdPathFor(GroupResource::Parse("customresourcedefinitions.apiextensions.k8s.io")),
            "apiextensions.k8s.io/customresourcedefinitions");
}

TEST_F(ResourcesTest, NewerBuiltInsInDottedGroupsUseThePlainPlural) {
  // The apiserver's default etcd prefix of a built-in is its plural, whatever its group; only
  // custom (and aggregated) resources live under "<group>/<plural>".
  EXPECT_EQ(EtcdPathFor(GroupResource::Parse("ipaddresses.networking.k8s.io")), "ipaddresses");
  EXPECT_EQ(EtcdPathFor(GroupResource::Parse("servicecidrs.networking.k8s.io")), "servicecidrs");
  EXPECT_EQ(EtcdPathFor(GroupResource::Parse("resourceclaims.resource.k8s.io")), "resourceclaims");
  EXPECT_EQ(EtcdPathFor(GroupResource::Parse("volumeattributesclasses.storage.k8s.io")),
            "volumeattributesclasses");
}

TEST_F(ResourcesTest, DiscoveryKeepsTheGroupOfNewerBuiltIns) {
  // Discovered under the wrong (core) group, /registry/ipaddresses would be matched by a '*.'
  // rule and encrypted, while the apiserver reads it as ipaddresses.networking.k8s.io.
  testing::InMemoryEtcd etcd;
  ASSERT_THAT(etcd.Put("/registry/ipaddresses/10.96.0.1", "v", 0), IsOk());
  ASSERT_THAT(etcd.Put("/registry/secrets/ns/a", "v", 0), IsOk());
  auto found = DiscoverResources(&etcd, "/registry");
  ASSERT_THAT(found, IsOk());
  ASSERT_EQ(found->size(), 2u);
  EXPECT_EQ((*found)[0].resource.ToString(), "ipaddresses.networking.k8s.io");
  EXPECT_EQ((*found)[0].key_prefix, "/registry/ipaddresses/");
  EXPECT_EQ((*found)[1].resource.ToString(), "secrets");
}

TEST_F(ResourcesTest, CustomResourcesLiveUnderGroupSlashPlural) {
  EXPECT_EQ(EtcdPathFor(GroupResource::Parse("widgets.example.com")), "example.com/widgets");
}

TEST_F(ResourcesTest, ParseBuildsTheFullKeyPrefix) {
  auto t = ParseResourceTarget("secrets", "/registry/");
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ(t->key_prefix, "/registry/secrets/");
  t = ParseResourceTarget("widgets.example.com=custom/path/", "/other/registry");
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ(t->resource.group, "example.com");
  EXPECT_EQ(t->key_prefix, "/other/registry/custom/path/");
}

TEST_F(ResourcesTest, ParseRejectsWildcardsAndBadPaths) {
  EXPECT_THAT(ParseResourceTarget("*.apps", "/registry"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseResourceTarget("", "/registry"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseResourceTarget("secrets=/abs", "/registry"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ResourcesTest, PrefixRangeEndIsThePrefixPlusOne) {
  EXPECT_EQ(PrefixRangeEnd("/registry/secrets/"), "/registry/secrets0");
  EXPECT_EQ(PrefixRangeEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixRangeEnd(std::string("\xff", 1)), std::string(1, '\0'));
}

}  // namespace
}  // namespace kmsplugin::reencrypt
