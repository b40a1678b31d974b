// Unit tests of tcpstated::SocketTable: against a std::unordered_map oracle,
// and with keys chosen to collide so that growth, wrap-around and
// backward-shift deletion are exercised on purpose.

#include "tcpstated/socket_table.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <unordered_map>
#include <vector>

#include "tcpstated/bit_mix.h"

namespace {

using tcpstated::MixBits;
using tcpstated::SocketTable;

struct TestEntry {
  uint64_t id = 0;
  uint64_t value = 0;
};

constexpr size_t kInitialCapacity = 1024;

// The table's home slot (its hash, MixBits), to pick colliding keys. If the
// table changes its hash these keys merely stop colliding: every assertion
// below still holds.
size_t HomeIn(uint64_t id, size_t capacity) {
  return MixBits(id) & (capacity - 1);
}

// `count` distinct non-zero keys whose home slot is `home`, skipping `used`.
std::vector<uint64_t> KeysWithHome(size_t home, size_t count,
                                   std::set<uint64_t>* used) {
  std::vector<uint64_t> keys;
  for (uint64_t k = 1; keys.size() < count; ++k) {
    if (HomeIn(k, kInitialCapacity) == home && used->insert(k).second) {
      keys.push_back(k);
    }
  }
  return keys;
}

void ExpectMatches(SocketTable<TestEntry>& table,
                   const std::unordered_map<uint64_t, uint64_t>& oracle) {
  ASSERT_EQ(table.size(), oracle.size());
  size_t visited = 0;
  table.ForEach([&](const TestEntry& e) {
    ++visited;
    auto it = oracle.find(e.id);
    ASSERT_NE(it, oracle.end()) << "stray id " << e.id;
    EXPECT_EQ(e.value, it->second) << "id " << e.id;
  });
  EXPECT_EQ(visited, oracle.size());
  for (const auto& [id, value] : oracle) {
    TestEntry* e = table.Find(id);
    ASSERT_NE(e, nullptr) << "lost id " << id;
    EXPECT_EQ(e->value, value);
  }
}

TEST(SocketTableTest, StartsEmpty) {
  SocketTable<TestEntry> table(10);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.capacity(), kInitialCapacity);
  EXPECT_EQ(table.max_entries(), 10u);
  EXPECT_FALSE(table.full());
  EXPECT_GE(table.memory_bytes(), kInitialCapacity * sizeof(TestEntry));
  EXPECT_EQ(table.Find(1), nullptr);
  // 0 marks an empty slot: it is never found.
  EXPECT_EQ(table.Find(0), nullptr);
  size_t visited = 0;
  table.ForEach([&](const TestEntry&) { ++visited; });
  table.ForEachNear(1, 16, [&](TestEntry&) { ++visited; });
  EXPECT_EQ(visited, 0u);
}

TEST(SocketTableTest, InsertFindEraseAndFull) {
  SocketTable<TestEntry> table(3);
  TestEntry* a = table.Insert(7);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->id, 7u);
  EXPECT_EQ(a->value, 0u);  // value-initialised
  a->value = 70;
  table.Insert(8)->value = 80;
  EXPECT_FALSE(table.full());
  table.Insert(9)->value = 90;
  EXPECT_TRUE(table.full());
  ASSERT_NE(table.Find(8), nullptr);
  EXPECT_EQ(table.Find(8)->value, 80u);
  const SocketTable<TestEntry>& const_table = table;
  ASSERT_NE(const_table.Find(9), nullptr);
  EXPECT_EQ(const_table.Find(9)->value, 90u);

  table.Erase(table.Find(8));
  EXPECT_EQ(table.size(), 2u);
  EXPECT_FALSE(table.full());
  EXPECT_EQ(table.Find(8), nullptr);
  EXPECT_EQ(table.Find(7)->value, 70u);
  EXPECT_EQ(table.Find(9)->value, 90u);
  // A re-inserted id starts from a value-initialised entry.
  EXPECT_EQ(table.Insert(8)->value, 0u);
}

TEST(SocketTableTest, RandomOperationsMatchUnorderedMapOracle) {
  constexpr size_t kOps = 100000;
  constexpr uint64_t kKeySpace = 20000;  // small enough for frequent hits
  SocketTable<TestEntry> table(1 << 20);
  std::unordered_map<uint64_t, uint64_t> oracle;
  std::mt19937_64 rng(20240611);
  std::uniform_int_distribution<uint64_t> key_dist(1, kKeySpace);
  std::uniform_int_distribution<int> op_dist(0, 99);
  size_t max_size = 0;
  size_t erased = 0;

  for (size_t op = 0; op < kOps; ++op) {
    // Insert-heavy first half (growth), erase-heavy second half (shrinking
    // runs through backward shifts).
    const int insert_pct = op < kOps / 2 ? 60 : 30;
    const uint64_t key = key_dist(rng);
    const int roll = op_dist(rng);
    TestEntry* found = table.Find(key);
    auto it = oracle.find(key);
    ASSERT_EQ(found != nullptr, it != oracle.end()) << "op " << op;
    if (found != nullptr) {
      ASSERT_EQ(found->value, it->second) << "op " << op;
    }

    if (roll < insert_pct) {
      if (found == nullptr) {
        TestEntry* e = table.Insert(key);
        e->value = rng();
        oracle[key] = e->value;
      } else {
        found->value = rng();
        it->second = found->value;
      }
    } else if (roll < insert_pct + 30) {
      if (found != nullptr) {
        table.Erase(found);
        oracle.erase(it);
        ++erased;
      }
    }
    ASSERT_EQ(table.size(), oracle.size()) << "op " << op;
    max_size = std::max(max_size, oracle.size());
    if (op % 10000 == 0) ExpectMatches(table, oracle);
  }
  ExpectMatches(table, oracle);

  // The run did grow the table past its initial capacity, kept the load
  // factor at or below 3/4, and erased a lot.
  EXPECT_GT(max_size, kInitialCapacity);
  EXPECT_GT(table.capacity(), kInitialCapacity);
  EXPECT_EQ(table.capacity() & (table.capacity() - 1), 0u);
  EXPECT_LE(max_size * 4, table.capacity() * 3);
  EXPECT_GT(erased, 10000u);
  // Never-inserted keys are not found.
  for (uint64_t k = kKeySpace + 1; k < kKeySpace + 1000; ++k) {
    EXPECT_EQ(table.Find(k), nullptr);
  }
}

TEST(SocketTableTest, GrowthKeepsEveryEntry) {
  SocketTable<TestEntry> table(100000);
  std::unordered_map<uint64_t, uint64_t> oracle;
  size_t last_capacity = table.capacity();
  size_t growths = 0;
  for (uint64_t id = 1; id <= 5000; ++id) {
    // Sequential ids, like socket cookies.
    table.Insert(id)->value = id * 3;
    oracle[id] = id * 3;
    if (table.capacity() != last_capacity) {
      EXPECT_EQ(table.capacity(), last_capacity * 2);
      last_capacity = table.capacity();
      ++growths;
      ExpectMatches(table, oracle);
    }
  }
  EXPECT_EQ(growths, 3u);  // 1024 -> 2048 -> 4096 -> 8192
  ExpectMatches(table, oracle);
}

TEST(SocketTableTest, ShrinkGivesBackThePeakAndKeepsEveryEntry) {
  SocketTable<TestEntry> table(1000000);
  std::unordered_map<uint64_t, uint64_t> oracle;
  for (uint64_t id = 1; id <= 90000; ++id) table.Insert(id)->value = id;
  EXPECT_EQ(table.capacity(), 131072u);
  EXPECT_FALSE(table.Shrink());  // full enough: nothing to give back

  // The peak is over: 1,000 remain, scattered over the table.
  for (uint64_t id = 1; id <= 90000; ++id) {
    if (id % 100 == 0) {
      oracle[id] = id;
    } else {
      table.Erase(table.Find(id));
    }
  }
  EXPECT_TRUE(table.Shrink());
  // 900 entries at no more than 3/8 load: 4096 slots.
  EXPECT_EQ(table.capacity(), 4096u);
  EXPECT_EQ(table.memory_bytes(), 4096u * sizeof(TestEntry));
  ExpectMatches(table, oracle);
  EXPECT_FALSE(table.Shrink());  // already as small as it gets

  // It grows again as before.
  for (uint64_t id = 200001; id <= 210000; ++id) {
    table.Insert(id)->value = id;
    oracle[id] = id;
  }
  ExpectMatches(table, oracle);
}

TEST(SocketTableTest, ShrinkNeverGoesBelowTheInitialCapacity) {
  SocketTable<TestEntry> table(100000);
  for (uint64_t id = 1; id <= 3000; ++id) table.Insert(id);
  for (uint64_t id = 1; id <= 3000; ++id) table.Erase(table.Find(id));
  EXPECT_TRUE(table.Shrink());
  EXPECT_EQ(table.capacity(), kInitialCapacity);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_FALSE(table.Shrink());
}

TEST(SocketTableTest, BackwardShiftKeepsCollidingRunsReachable) {
  std::set<uint64_t> used;
  // A run starting at slot 100 with members homed at 100 and 101, and an
  // unrelated key homed right after it.
  std::vector<uint64_t> at100 = KeysWithHome(100, 4, &used);
  std::vector<uint64_t> at101 = KeysWithHome(101, 3, &used);
  std::vector<uint64_t> at104 = KeysWithHome(104, 2, &used);
  std::vector<uint64_t> insert_order = {at100[0], at101[0], at100[1],
                                        at104[0], at101[1], at100[2],
                                        at100[3], at101[2], at104[1]};

  // Erase every member in turn, from a freshly built run each time.
  for (size_t victim = 0; victim < insert_order.size(); ++victim) {
    SocketTable<TestEntry> table(100);
    std::unordered_map<uint64_t, uint64_t> oracle;
    for (uint64_t k : insert_order) {
      table.Insert(k)->value = k + 1;
      oracle[k] = k + 1;
    }
    ASSERT_EQ(table.capacity(), kInitialCapacity);
    const uint64_t k = insert_order[victim];
    table.Erase(table.Find(k));
    oracle.erase(k);
    SCOPED_TRACE(::testing::Message() << "erased member " << victim);
    ExpectMatches(table, oracle);
    // And then the rest, in insertion order.
    for (uint64_t rest : insert_order) {
      if (oracle.erase(rest) == 0) continue;
      TestEntry* e = table.Find(rest);
      ASSERT_NE(e, nullptr);
      table.Erase(e);
      ExpectMatches(table, oracle);
    }
    EXPECT_EQ(table.size(), 0u);
  }
}

TEST(SocketTableTest, BackwardShiftAcrossTheWrapAround) {
  std::set<uint64_t> used;
  const size_t last = kInitialCapacity - 1;
  std::vector<uint64_t> at_last = KeysWithHome(last, 3, &used);
  std::vector<uint64_t> at_zero = KeysWithHome(0, 2, &used);
  std::vector<uint64_t> at_one = KeysWithHome(1, 2, &used);
  // The run occupies slots 1023, 0, 1, 2, ... mixing homes on both sides.
  std::vector<uint64_t> insert_order = {at_last[0], at_zero[0], at_last[1],
                                        at_one[0],  at_last[2], at_zero[1],
                                        at_one[1]};
  for (size_t victim = 0; victim < insert_order.size(); ++victim) {
    SocketTable<TestEntry> table(100);
    std::unordered_map<uint64_t, uint64_t> oracle;
    for (uint64_t k : insert_order) {
      table.Insert(k)->value = k * 7;
      oracle[k] = k * 7;
    }
    const uint64_t k = insert_order[victim];
    table.Erase(table.Find(k));
    oracle.erase(k);
    SCOPED_TRACE(::testing::Message() << "erased member " << victim);
    ExpectMatches(table, oracle);
    // Reinserting the erased key finds a slot and everything stays reachable.
    table.Insert(k)->value = 1;
    oracle[k] = 1;
    ExpectMatches(table, oracle);
  }
}

TEST(SocketTableTest, ForEachNearVisitsTheProbeRunFromTheHomeSlot) {
  std::set<uint64_t> used;
  std::vector<uint64_t> run = KeysWithHome(500, 5, &used);
  std::vector<uint64_t> far = KeysWithHome(900, 3, &used);
  SocketTable<TestEntry> table(100);
  for (uint64_t k : run) table.Insert(k);
  for (uint64_t k : far) table.Insert(k);

  // Starting at the run's home, the first entries visited are the run's,
  // in probe order (insertion order here).
  std::vector<uint64_t> seen;
  table.ForEachNear(run[0], 3, [&](TestEntry& e) { seen.push_back(e.id); });
  EXPECT_EQ(seen, std::vector<uint64_t>(run.begin(), run.begin() + 3));

  seen.clear();
  table.ForEachNear(run[0], 0, [&](TestEntry& e) { seen.push_back(e.id); });
  EXPECT_TRUE(seen.empty());

  // A window larger than the table visits every entry exactly once
  // (wrapping around), run first.
  seen.clear();
  table.ForEachNear(run[0], 100, [&](TestEntry& e) { seen.push_back(e.id); });
  ASSERT_EQ(seen.size(), run.size() + far.size());
  EXPECT_EQ(std::set<uint64_t>(seen.begin(), seen.end()).size(), seen.size());
  EXPECT_EQ(std::vector<uint64_t>(seen.begin(), seen.begin() + run.size()),
            run);

  // An id that is not in the table still names a neighbourhood: its home.
  seen.clear();
  uint64_t absent = KeysWithHome(899, 1, &used)[0];
  table.ForEachNear(absent, 2, [&](TestEntry& e) { seen.push_back(e.id); });
  EXPECT_EQ(seen, std::vector<uint64_t>(far.begin(), far.begin() + 2));

  // The visitor may modify entries.
  table.ForEachNear(run[0], 1, [](TestEntry& e) { e.value = 42; });
  EXPECT_EQ(table.Find(run[0])->value, 42u);
}

TEST(SocketTableTest, ForEachMutableVisitsAll) {
  SocketTable<TestEntry> table(100);
  for (uint64_t id = 1; id <= 50; ++id) table.Insert(id);
  table.ForEachMutable([](TestEntry& e) { e.value = e.id * 2; });
  for (uint64_t id = 1; id <= 50; ++id)
    EXPECT_EQ(table.Find(id)->value, id * 2);
}

}  // namespace
