#include "tcpstated/owner_pool.h"

#include <gtest/gtest.h>

namespace tcpstated {
namespace {

TEST(OwnerPool, UnknownIsNeverAnOwner) {
  OwnerPool pool;
  EXPECT_EQ(pool.Get(OwnerPool::kUnknown), nullptr);
  EXPECT_EQ(pool.Get(12345), nullptr);  // out of range
  pool.AddRef(OwnerPool::kUnknown);     // ignored, not a crash
  pool.Release(OwnerPool::kUnknown);
  uint32_t a = pool.Acquire(10, 20, "nginx");
  EXPECT_NE(a, OwnerPool::kUnknown);
}

TEST(OwnerPool, AnOwnerLivesWhileReferenced) {
  OwnerPool pool;
  uint32_t a = pool.Acquire(10, 20, "nginx");
  ASSERT_NE(pool.Get(a), nullptr);
  EXPECT_EQ(pool.Get(a)->tgid, 10u);
  EXPECT_EQ(pool.Get(a)->cgroup_id, 20u);
  EXPECT_EQ(pool.Get(a)->comm, "nginx");
  pool.AddRef(a);  // an accepted child shares its listener's owner
  pool.Release(a);
  EXPECT_EQ(pool.Get(a)->comm, "nginx");
  pool.Release(a);
  // Freed: the slot is cleared, then reused by the next owner.
  EXPECT_EQ(pool.Get(a)->comm, "");
  uint32_t b = pool.Acquire(11, 21, "curl");
  EXPECT_EQ(b, a);
  EXPECT_EQ(pool.Get(b)->comm, "curl");
  EXPECT_EQ(pool.Get(b)->tgid, 11u);
}

TEST(OwnerPool, DistinctOwnersGetDistinctSlots) {
  OwnerPool pool;
  uint32_t a = pool.Acquire(1, 0, "a");
  uint32_t b = pool.Acquire(2, 0, "b");
  EXPECT_NE(a, b);
  pool.Release(a);
  EXPECT_EQ(pool.Get(b)->comm, "b");
}

}  // namespace
}  // namespace tcpstated
