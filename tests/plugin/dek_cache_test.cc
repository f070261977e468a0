#include "plugin/dek_cache.h"

#include "crypto/random.h"
#include "gtest/gtest.h"
#include "tests/matchers.h"

namespace kmsplugin {
namespace {

std::shared_ptr<const AesGcm> NewKey() {
  return std::shared_ptr<const AesGcm>(*AesGcm::Create(*RandomSecret(32)));
}

TEST(DekCacheTest, SecondLookupIsServedFromCacheWithoutCallingTheLoader) {
  DekCache cache(4);
  int loads = 0;
  auto loader = [&]() -> absl::StatusOr<std::shared_ptr<const AesGcm>> {
    ++loads;
    return NewKey();
  };
  auto a = cache.GetOrLoad("k", loader);
  auto b = cache.GetOrLoad("k", loader);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->get(), b->get());
  EXPECT_EQ(loads, 1);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.misses(), 1u);
}

TEST(DekCacheTest, LeastRecentlyUsedEntryIsEvictedAtCapacity) {
  DekCache cache(2);
  int loads = 0;
  auto loader = [&]() -> absl::StatusOr<std::shared_ptr<const AesGcm>> {
    ++loads;
    return NewKey();
  };
  ASSERT_TRUE(cache.GetOrLoad("a", loader).ok());
  ASSERT_TRUE(cache.GetOrLoad("b", loader).ok());
  ASSERT_TRUE(cache.GetOrLoad("a", loader).ok());  // a is now most recent.
  ASSERT_TRUE(cache.GetOrLoad("c", loader).ok());  // evicts b.
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(loads, 3);
  ASSERT_TRUE(cache.GetOrLoad("a", loader).ok());
  EXPECT_EQ(loads, 3);
  ASSERT_TRUE(cache.GetOrLoad("b", loader).ok());
  EXPECT_EQ(loads, 4);
}

TEST(DekCacheTest, EvictedKeyIsReleasedWhenTheCacheHeldTheLastReference) {
  DekCache cache(1);
  std::weak_ptr<const AesGcm> weak;
  ASSERT_TRUE(cache.GetOrLoad("a", [&]() -> absl::StatusOr<std::shared_ptr<const AesGcm>> {
                     auto k = NewKey();
                     weak = k;
                     return k;
                   }).ok());
  EXPECT_FALSE(weak.expired());
  cache.Put("b", NewKey());
  EXPECT_TRUE(weak.expired());  // Destroyed, so its SecretBytes were wiped.
}

TEST(DekCacheTest, ErrorsAreReturnedAndNotCached) {
  DekCache cache(2);
  int loads = 0;
  auto failing = [&]() -> absl::StatusOr<std::shared_ptr<const AesGcm>> {
    ++loads;
    return absl::UnavailableError("down");
  };
  EXPECT_FALSE(cache.GetOrLoad("a", failing).ok());
  EXPECT_FALSE(cache.GetOrLoad("a", failing).ok());
  EXPECT_EQ(loads, 2);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(DekCacheTest, PurgeDropsEveryEntry) {
  DekCache cache(8);
  cache.Put("a", NewKey());
  cache.Put("b", NewKey());
  cache.Purge();
  EXPECT_EQ(cache.size(), 0u);
}

TEST(DekCacheTest, KeyForSeparatesKeyIdAndBlob) {
  EXPECT_NE(DekCache::KeyFor("ab", "c"), DekCache::KeyFor("a", "bc"));
  EXPECT_EQ(DekCache::KeyFor("a", "b"), DekCache::KeyFor("a", "b"));
}

}  // namespace
}  // namespace kmsplugin
