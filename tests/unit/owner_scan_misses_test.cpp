// Unit tests of tcpstated::OwnerScanMisses: which inodes the kernel view's
// next /proc scan looks for after a scan that did not find some.

#include "tcpstated/owner_scan_misses.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <unordered_set>

namespace {

using tcpstated::OwnerScanMisses;
using Inodes = std::unordered_set<uint32_t>;

constexpr uint64_t kRetry = 600;

TEST(OwnerScanMisses, EverythingIsScannedAtFirst) {
  OwnerScanMisses misses(kRetry);
  EXPECT_EQ(misses.ToScan({1, 2, 3}, 0), (Inodes{1, 2, 3}));
}

TEST(OwnerScanMisses, AMissIsNotScannedAgainBeforeTheRetry) {
  OwnerScanMisses misses(kRetry);
  Inodes scan = misses.ToScan({1, 2}, 100);
  misses.Record(scan, /*found=*/{2}, /*complete=*/true, 100);
  EXPECT_EQ(misses.size(), 1u);
  // The next reconcile wants 1 again (still unattributed) and a new 3.
  EXPECT_EQ(misses.ToScan({1, 3}, 100 + kRetry - 1), (Inodes{3}));
  // After the retry interval it is looked for again, and forgotten.
  EXPECT_EQ(misses.ToScan({1, 3}, 100 + kRetry), (Inodes{1, 3}));
  EXPECT_EQ(misses.size(), 0u);
}

TEST(OwnerScanMisses, AnIncompleteScanIsRetriedSooner) {
  OwnerScanMisses misses(kRetry);
  misses.Record({1, 2}, /*found=*/{}, /*complete=*/false, 0);
  EXPECT_EQ(misses.size(), 2u);
  EXPECT_EQ(misses.ToScan({1, 2}, kRetry / 5 - 1), (Inodes{}));
  EXPECT_EQ(misses.ToScan({1, 2}, kRetry / 5), (Inodes{1, 2}));
}

TEST(OwnerScanMisses, FoundInodesAreNotMisses) {
  OwnerScanMisses misses(kRetry);
  misses.Record({1, 2}, /*found=*/{1, 2}, /*complete=*/true, 0);
  EXPECT_EQ(misses.size(), 0u);
  EXPECT_EQ(misses.ToScan({1, 2}, 1), (Inodes{1, 2}));
}

TEST(OwnerScanMisses, TheSetIsBounded) {
  OwnerScanMisses misses(kRetry);
  Inodes many;
  for (uint32_t i = 1; i <= OwnerScanMisses::kMaxMisses + 10; ++i) {
    many.insert(i);
  }
  misses.Record(many, /*found=*/{}, /*complete=*/true, 0);
  EXPECT_EQ(misses.size(), OwnerScanMisses::kMaxMisses);
  // The ones not remembered are simply scanned for again.
  EXPECT_EQ(misses.ToScan(many, 1).size(), 10u);
}

}  // namespace
