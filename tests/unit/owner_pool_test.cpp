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

TEST(OwnerPool, TheSameOwnerInARowSharesItsSlot) {
  OwnerPool pool;
  uint32_t a = pool.Acquire(10, 20, "nginx");
  uint32_t b = pool.Acquire(10, 20, "nginx");
  EXPECT_EQ(a, b);
  // Any field that differs is another owner.
  EXPECT_NE(pool.Acquire(11, 20, "nginx"), a);
  uint32_t c = pool.Acquire(11, 20, "nginx");
  EXPECT_NE(pool.Acquire(11, 21, "nginx"), c);
  uint32_t d = pool.Acquire(11, 21, "nginx");
  EXPECT_NE(pool.Acquire(11, 21, "nginx2"), d);
  // Two references: the owner outlives the first release.
  pool.Release(a);
  ASSERT_NE(pool.Get(a), nullptr);
  EXPECT_EQ(pool.Get(a)->comm, "nginx");
  pool.Release(b);
  EXPECT_EQ(pool.Get(a)->comm, "");
}

TEST(OwnerPool, AFreedSlotIsNotSharedAgain) {
  OwnerPool pool;
  uint32_t a = pool.Acquire(10, 20, "nginx");
  pool.Release(a);
  // The last slot filled was freed: a new owner (even the same one) gets
  // its own reference count from 1.
  uint32_t b = pool.Acquire(10, 20, "nginx");
  pool.Release(b);
  EXPECT_EQ(pool.Get(b)->comm, "");
}

}  // namespace
}  // namespace tcpstated
