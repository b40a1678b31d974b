// Unit tests of tcpstated::DestinationCounts (the mirror's per-destination
// socket counts): against a std::map oracle under random churn over few
// keys (so that probe runs collide, backward shifts and the dense vector's
// hole filling happen all the time), growth, and what readers see.

#include "tcpstated/destination_counts.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <random>

namespace {

using tcpstated::DestinationCounts;
using tcpstated::DestinationKey;

DestinationKey V4(uint32_t netns, uint32_t saddr, uint32_t daddr,
                  uint16_t dport) {
  DestinationKey k;
  k.netns = netns;
  k.dport = dport;
  std::memcpy(k.saddr.data(), &saddr, 4);
  std::memcpy(k.daddr.data(), &daddr, 4);
  return k;
}

// Every key of the oracle with its count, nothing else, each once.
void ExpectMatches(const DestinationCounts& counts,
                   const std::map<DestinationKey, uint64_t>& oracle) {
  ASSERT_EQ(counts.size(), oracle.size());
  ASSERT_EQ(counts.empty(), oracle.empty());
  std::map<DestinationKey, uint64_t> seen;
  for (const auto& [key, n] : counts) {
    EXPECT_TRUE(seen.emplace(key, n).second) << "a key listed twice";
  }
  EXPECT_EQ(seen, oracle);
  for (const auto& [key, n] : oracle) {
    auto it = counts.find(key);
    ASSERT_NE(it, counts.end());
    EXPECT_EQ(it->second, n);
  }
}

TEST(DestinationCountsTest, EmptyFindsNothing) {
  DestinationCounts counts;
  EXPECT_TRUE(counts.empty());
  EXPECT_EQ(counts.find(V4(1, 1, 2, 80)), counts.end());
  counts.Remove(V4(1, 1, 2, 80));  // not held: ignored
  EXPECT_TRUE(counts.empty());
}

TEST(DestinationCountsTest, CountsUpAndGoesWithTheLastSocket) {
  DestinationCounts counts;
  const DestinationKey a = V4(1, 1, 2, 80), b = V4(1, 1, 2, 443);
  counts.Add(a);
  counts.Add(a);
  counts.Add(b);
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts.find(a)->second, 2u);
  EXPECT_EQ(counts.find(b)->second, 1u);
  counts.Remove(a);
  EXPECT_EQ(counts.find(a)->second, 1u);
  counts.Remove(a);
  EXPECT_EQ(counts.find(a), counts.end());  // emptied keys are erased
  EXPECT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts.begin()->first, b);
  counts.Remove(b);
  EXPECT_TRUE(counts.empty());
}

TEST(DestinationCountsTest, KeysDifferingInOneFieldAreDistinct) {
  DestinationCounts counts;
  const DestinationKey base = V4(7, 0x0100007f, 0x0200007f, 8080);
  DestinationKey v6 = base;
  v6.daddr[15] = 1;
  for (const DestinationKey& k : {base, V4(8, 0x0100007f, 0x0200007f, 8080),
                                  V4(7, 0x0300007f, 0x0200007f, 8080),
                                  V4(7, 0x0100007f, 0x0300007f, 8080),
                                  V4(7, 0x0100007f, 0x0200007f, 8081), v6}) {
    counts.Add(k);
  }
  EXPECT_EQ(counts.size(), 6u);
  for (const auto& [key, n] : counts) EXPECT_EQ(n, 1u);
}

TEST(DestinationCountsTest, ChurnMatchesAnOracle) {
  DestinationCounts counts;
  std::map<DestinationKey, uint64_t> oracle;
  std::mt19937_64 rng(15);
  // 3,000 keys: the index grows to 8,192 slots and shrinks never; at most
  // half full, so runs are short but collide (the hash's low bits).
  for (int op = 0; op < 300000; ++op) {
    const uint32_t r = static_cast<uint32_t>(rng() % 3000);
    const DestinationKey k = V4(1 + r % 3, 0x0100007f, 0x0000007f | (r << 8),
                                static_cast<uint16_t>(8000 + r % 7));
    // Adds slightly outnumber removes while keys are few, so that every key
    // comes and goes many times.
    if (rng() % 100 < 52) {
      counts.Add(k);
      oracle[k]++;
    } else {
      counts.Remove(k);
      auto it = oracle.find(k);
      if (it != oracle.end() && --it->second == 0) oracle.erase(it);
    }
    if (op % 25000 == 0) ExpectMatches(counts, oracle);
  }
  ExpectMatches(counts, oracle);
  // And all the way down.
  while (!oracle.empty()) {
    auto it = oracle.begin();
    counts.Remove(it->first);
    if (--it->second == 0) oracle.erase(it);
  }
  ExpectMatches(counts, oracle);
}

TEST(DestinationCountsTest, ShrinkGivesBackThePeakAndKeepsEveryKey) {
  DestinationCounts counts;
  std::map<DestinationKey, uint64_t> oracle;
  // A scan of 20,000 destinations, then all but 100 of them gone.
  for (uint32_t i = 0; i < 20000; ++i) counts.Add(V4(1, 1, i + 1, 443));
  EXPECT_FALSE(counts.Shrink());  // at its peak: nothing to give back
  for (uint32_t i = 0; i < 20000; ++i) {
    if (i % 200 == 0) {
      oracle[V4(1, 1, i + 1, 443)] = 1;
    } else {
      counts.Remove(V4(1, 1, i + 1, 443));
    }
  }
  EXPECT_TRUE(counts.Shrink());
  EXPECT_FALSE(counts.Shrink());  // already as small as it gets
  ExpectMatches(counts, oracle);
  // It grows again as before.
  for (uint32_t i = 0; i < 5000; ++i) {
    counts.Add(V4(2, 1, i + 1, 80));
    oracle[V4(2, 1, i + 1, 80)]++;
  }
  ExpectMatches(counts, oracle);
}

}  // namespace
