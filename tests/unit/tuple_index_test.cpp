// Unit tests of tcpstated::TupleIndex (the mirror's TIME_WAIT index):
// against a std::unordered_map oracle, with keys chosen to share a home
// slot so that wrap-around and backward-shift deletion are exercised on
// purpose, at its bound, and under churn (no tombstones to pile up).

#include "tcpstated/tuple_index.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <unordered_map>
#include <vector>

namespace {

using tcpstated::TupleIndex;
using tcpstated::TupleKey;
using tcpstated::TupleKeyHash;

constexpr size_t kInitialCapacity = 64;

TupleKey V4(uint32_t netns, uint32_t saddr, uint16_t sport, uint32_t daddr,
            uint16_t dport) {
  TupleKey k;
  k.netns = netns;
  k.sport = sport;
  k.dport = dport;
  std::memcpy(k.saddr.data(), &saddr, 4);
  std::memcpy(k.daddr.data(), &daddr, 4);
  return k;
}

// The index's hash (tuple_index.h), to pick keys with the same home slot.
// If the index changes its hash these keys merely stop colliding: every
// assertion below still holds.
uint32_t HashOf(const TupleKey& key) {
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ULL;
  uint64_t s[2], d[2];
  std::memcpy(s, key.saddr.data(), 16);
  std::memcpy(d, key.daddr.data(), 16);
  uint64_t h = (static_cast<uint64_t>(key.netns) << 32) ^
               (static_cast<uint64_t>(key.sport) << 16) ^ key.dport;
  h = (h ^ s[0]) * kMul;
  h = (h ^ d[0]) * kMul;
  h = (h ^ s[1]) * kMul;
  h = (h ^ d[1]) * kMul;
  const uint32_t out = static_cast<uint32_t>(h >> 32);
  return out != 0 ? out : 1;
}

// `count` keys (differing in the source port) whose home slot in a table
// of kInitialCapacity is `home`.
std::vector<TupleKey> KeysWithHome(size_t home, size_t count,
                                   uint16_t first_port = 1) {
  std::vector<TupleKey> keys;
  for (uint32_t port = first_port; keys.size() < count; ++port) {
    TupleKey k = V4(7, 0x0100007f, static_cast<uint16_t>(port), 0x0200007f,
                    static_cast<uint16_t>(port >> 16 | 80));
    if ((HashOf(k) & (kInitialCapacity - 1)) == home) keys.push_back(k);
  }
  return keys;
}

void ExpectMatches(
    const TupleIndex& index,
    const std::unordered_map<TupleKey, uint64_t, TupleKeyHash>& oracle) {
  ASSERT_EQ(index.size(), oracle.size());
  for (const auto& [key, id] : oracle) EXPECT_EQ(index.Find(key), id);
  size_t visited = 0;
  index.ForEach([&](const TupleKey& key, uint64_t id) {
    ++visited;
    auto it = oracle.find(key);
    ASSERT_NE(it, oracle.end());
    EXPECT_EQ(it->second, id);
  });
  EXPECT_EQ(visited, oracle.size());
}

TEST(TupleIndexTest, SetFindReplaceErase) {
  TupleIndex index(100);
  const TupleKey a = V4(1, 0x0100007f, 40000, 0x0100007f, 8080);
  TupleKey b = a;
  std::swap(b.sport, b.dport);  // the other end of the same connection
  EXPECT_TRUE(index.empty());
  EXPECT_EQ(index.Find(a), 0u);
  EXPECT_TRUE(index.Set(a, 11));
  EXPECT_EQ(index.Find(a), 11u);
  EXPECT_EQ(index.Find(b), 0u);
  // One socket per 4-tuple: a new id replaces the old one.
  EXPECT_TRUE(index.Set(a, 12));
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.Find(a), 12u);
  // Only the socket that holds the tuple releases it.
  EXPECT_FALSE(index.Erase(a, 11));
  EXPECT_EQ(index.Find(a), 12u);
  EXPECT_FALSE(index.Erase(b, 12));
  EXPECT_TRUE(index.Erase(a, 12));
  EXPECT_FALSE(index.Erase(a, 12));
  EXPECT_TRUE(index.empty());
  EXPECT_EQ(index.Find(a), 0u);
}

TEST(TupleIndexTest, EveryFieldIsPartOfTheKey) {
  TupleIndex index(100);
  TupleKey base;
  base.netns = 4026531840u;
  base.sport = 1;
  base.dport = 2;
  for (size_t i = 0; i < 16; ++i) {
    base.saddr[i] = static_cast<uint8_t>(i + 1);
    base.daddr[i] = static_cast<uint8_t>(i + 101);
  }
  ASSERT_TRUE(index.Set(base, 1));
  std::vector<TupleKey> others;
  for (size_t i = 0; i < 16; ++i) {
    TupleKey k = base;
    k.saddr[i] ^= 0x80;  // the last IPv6 byte counts as much as the first
    others.push_back(k);
    k = base;
    k.daddr[i] ^= 0x01;
    others.push_back(k);
  }
  TupleKey k = base;
  k.netns++;
  others.push_back(k);
  k = base;
  k.sport++;
  others.push_back(k);
  k = base;
  k.dport++;
  others.push_back(k);
  for (const TupleKey& o : others) EXPECT_EQ(index.Find(o), 0u);
  // The all-zero tuple is a key like any other (empty slots are marked
  // apart from the keys).
  EXPECT_EQ(index.Find(TupleKey{}), 0u);
  EXPECT_TRUE(index.Set(TupleKey{}, 5));
  EXPECT_EQ(index.Find(TupleKey{}), 5u);
  EXPECT_EQ(index.Find(base), 1u);
}

TEST(TupleIndexTest, BackwardShiftKeepsARunReachable) {
  TupleIndex index(1000);
  std::unordered_map<TupleKey, uint64_t, TupleKeyHash> oracle;
  // One long run from home slot 3, then erase from its front, middle and
  // end: every remaining member must still be found.
  std::vector<TupleKey> run = KeysWithHome(3, 8);
  for (size_t i = 0; i < run.size(); ++i) {
    ASSERT_TRUE(index.Set(run[i], 100 + i));
    oracle[run[i]] = 100 + i;
  }
  ASSERT_EQ(index.capacity(), kInitialCapacity);
  for (size_t victim : {0u, 4u, 7u, 1u}) {
    ASSERT_TRUE(index.Erase(run[victim], 100 + victim));
    oracle.erase(run[victim]);
    ExpectMatches(index, oracle);
  }
}

TEST(TupleIndexTest, RunsWrapAroundTheEnd) {
  TupleIndex index(1000);
  std::unordered_map<TupleKey, uint64_t, TupleKeyHash> oracle;
  // Keys homed at the last two slots spill into slots 0, 1, ...; keys
  // homed at slot 0 then sit behind them.
  std::vector<TupleKey> keys = KeysWithHome(kInitialCapacity - 1, 4);
  for (const TupleKey& k : KeysWithHome(kInitialCapacity - 2, 3))
    keys.push_back(k);
  for (const TupleKey& k : KeysWithHome(0, 3)) keys.push_back(k);
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_TRUE(index.Set(keys[i], i + 1));
    oracle[keys[i]] = i + 1;
  }
  ASSERT_EQ(index.capacity(), kInitialCapacity);
  ExpectMatches(index, oracle);
  for (size_t i = 0; i < keys.size(); i += 2) {
    ASSERT_TRUE(index.Erase(keys[i], i + 1));
    oracle.erase(keys[i]);
    ExpectMatches(index, oracle);
  }
}

TEST(TupleIndexTest, RandomOperationsMatchAnOracle) {
  TupleIndex index(20000);  // above the 12,000 distinct tuples below
  std::unordered_map<TupleKey, uint64_t, TupleKeyHash> oracle;
  std::mt19937_64 rng(7);
  // Few distinct tuples, so that sets, replacements and erases all hit.
  auto random_key = [&] {
    return V4(static_cast<uint32_t>(rng() % 3), 0x0100007f,
              static_cast<uint16_t>(rng() % 2000), 0x0200007f,
              static_cast<uint16_t>(443 + rng() % 2));
  };
  for (int step = 0; step < 60000; ++step) {
    const TupleKey k = random_key();
    const uint64_t id = 1 + rng() % 50000;
    switch (rng() % 3) {
      case 0:
        ASSERT_TRUE(index.Set(k, id));
        oracle[k] = id;
        break;
      case 1: {
        auto it = oracle.find(k);
        const uint64_t held = it == oracle.end() ? 0 : it->second;
        // Half the erases name the holder, half some other socket.
        const uint64_t who = rng() % 2 ? held : id;
        const bool erased = index.Erase(k, who);
        EXPECT_EQ(erased, held != 0 && who == held);
        if (erased) oracle.erase(it);
        break;
      }
      default:
        EXPECT_EQ(index.Find(k), oracle.count(k) ? oracle[k] : 0u);
    }
  }
  ExpectMatches(index, oracle);
}

TEST(TupleIndexTest, RefusesNewKeysAtItsBoundAndStaysSmall) {
  const size_t max = 1000;
  TupleIndex index(max);
  for (uint32_t i = 0; i < max; ++i) {
    ASSERT_TRUE(index.Set(V4(1, i, 1, 2, 3), i + 1));
  }
  EXPECT_EQ(index.size(), max);
  // Full: a new key is refused and nothing changes; a known key may still
  // change hands.
  EXPECT_FALSE(index.Set(V4(1, max, 1, 2, 3), 99999));
  EXPECT_EQ(index.Find(V4(1, max, 1, 2, 3)), 0u);
  EXPECT_EQ(index.size(), max);
  EXPECT_TRUE(index.Set(V4(1, 0, 1, 2, 3), 77));
  EXPECT_EQ(index.Find(V4(1, 0, 1, 2, 3)), 77u);
  // The smallest power of two that holds the bound at 3/4 load.
  EXPECT_EQ(index.capacity(), 2048u);
  EXPECT_LE(index.memory_bytes(), 2048u * (48 + 4));
  // After an erase there is room for one new key again.
  EXPECT_TRUE(index.Erase(V4(1, 5, 1, 2, 3), 6));
  EXPECT_TRUE(index.Set(V4(1, max, 1, 2, 3), 99999));
  EXPECT_FALSE(index.Set(V4(1, max + 1, 1, 2, 3), 1));
}

TEST(TupleIndexTest, ChurnDoesNotGrowIt) {
  // Keys that come and go (timewait sockets expiring while new ones are
  // made) must not grow the index or slow misses down: without tombstones
  // the slots of erased keys are empty again.
  TupleIndex index(100000);
  size_t capacity_at_steady_state = 0;
  for (uint32_t i = 0; i < 200000; ++i) {
    ASSERT_TRUE(index.Set(V4(1, i, 1, 2, 3), i + 1));
    if (i >= 40) {
      ASSERT_TRUE(index.Erase(V4(1, i - 40, 1, 2, 3), i - 40 + 1));
    }
    if (i == 1000) capacity_at_steady_state = index.capacity();
  }
  EXPECT_EQ(index.size(), 40u);
  EXPECT_EQ(index.capacity(), capacity_at_steady_state);
  EXPECT_EQ(index.capacity(), kInitialCapacity);
  for (uint32_t i = 0; i < 1000; ++i) {
    EXPECT_EQ(index.Find(V4(2, i, 1, 2, 3)), 0u);
  }
}

TEST(TupleIndexTest, ShrinksAfterAPeak) {
  TupleIndex index(100000);
  for (uint32_t i = 0; i < 50000; ++i) {
    ASSERT_TRUE(index.Set(V4(1, i, 1, 2, 3), i + 1));
  }
  const size_t peak = index.capacity();
  EXPECT_GE(peak, 65536u);
  // Not yet: most keys are still there.
  for (uint32_t i = 0; i < 30000; ++i) {
    ASSERT_TRUE(index.Erase(V4(1, i, 1, 2, 3), i + 1));
  }
  EXPECT_FALSE(index.Shrink());
  for (uint32_t i = 30000; i < 49990; ++i) {
    ASSERT_TRUE(index.Erase(V4(1, i, 1, 2, 3), i + 1));
  }
  EXPECT_TRUE(index.Shrink());
  EXPECT_LT(index.capacity(), peak);
  EXPECT_EQ(index.size(), 10u);
  for (uint32_t i = 49990; i < 50000; ++i) {
    EXPECT_EQ(index.Find(V4(1, i, 1, 2, 3)), i + 1);
  }
  EXPECT_EQ(index.Find(V4(1, 0, 1, 2, 3)), 0u);
}

}  // namespace
