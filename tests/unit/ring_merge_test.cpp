// The merge of several rings by timestamp (tcpstated/ring_merge.h): the
// order it releases, what it holds back, and a simulation of producers on
// several CPUs that checks every socket's order and the flush guarantee.
#include "tcpstated/ring_merge.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "tcpstated/ring_watermark.h"

namespace tcpstated {
namespace {

Event Stamped(uint64_t ts_ns, uint64_t id) {
  Event e;
  e.ts_ns = ts_ns;
  e.id = id;
  return e;
}

std::vector<uint64_t> Ids(const std::vector<Event>& events) {
  std::vector<uint64_t> ids;
  for (const auto& e : events) ids.push_back(e.id);
  return ids;
}

TEST(RingMergeTest, InterleavesRingsInStampOrder) {
  RingMerge merge(2);
  // Ring 1 is drained after ring 0 but holds the earliest record.
  merge.Add(0, Stamped(20, 2));
  merge.Add(0, Stamped(40, 4));
  merge.Add(1, Stamped(10, 1));
  merge.Add(1, Stamped(30, 3));
  std::vector<Event> out;
  merge.Release(100, &out);
  EXPECT_EQ(Ids(out), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(merge.held(), 0u);
}

TEST(RingMergeTest, HoldsRecordsStampedAtOrAfterTheWatermark) {
  RingMerge merge(2);
  merge.Add(0, Stamped(10, 1));
  merge.Add(0, Stamped(25, 3));
  merge.Add(1, Stamped(20, 2));
  merge.Add(1, Stamped(30, 4));
  std::vector<Event> out;
  merge.Release(25, &out);
  EXPECT_EQ(Ids(out), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(merge.held(), 2u);
  // Next turn: a record committed late (stamped below the last watermark)
  // and one stamped after the held ones.
  merge.Add(1, Stamped(22, 5));
  merge.Add(0, Stamped(35, 6));
  out.clear();
  merge.Release(40, &out);
  EXPECT_EQ(Ids(out), (std::vector<uint64_t>{5, 3, 4, 6}));
  EXPECT_EQ(merge.held(), 0u);
}

TEST(RingMergeTest, NothingIsReleasedBeforeItsStamp) {
  RingMerge merge(3);
  merge.Add(2, Stamped(50, 1));
  std::vector<Event> out;
  merge.Release(50, &out);
  EXPECT_TRUE(out.empty());
  merge.Release(51, &out);
  EXPECT_EQ(Ids(out), (std::vector<uint64_t>{1}));
}

TEST(RingMergeTest, EqualStampsKeepHeldThenRingOrder) {
  RingMerge merge(2);
  merge.Add(1, Stamped(5, 1));  // held from the first turn
  std::vector<Event> out;
  merge.Release(5, &out);
  ASSERT_TRUE(out.empty());
  merge.Add(1, Stamped(5, 4));
  merge.Add(0, Stamped(5, 2));
  merge.Add(0, Stamped(5, 3));
  merge.Release(6, &out);
  EXPECT_EQ(Ids(out), (std::vector<uint64_t>{1, 2, 3, 4}));
}

TEST(RingMergeTest, SortsARingSharedByCpusStably) {
  // Two CPUs on one ring, or a program nested in another's interrupt:
  // the ring's order is not the stamps'.
  RingMerge merge(2);
  merge.Add(0, Stamped(30, 1));
  merge.Add(0, Stamped(10, 2));
  merge.Add(0, Stamped(30, 3));
  merge.Add(0, Stamped(20, 4));
  std::vector<Event> out;
  merge.Release(100, &out);
  EXPECT_EQ(Ids(out), (std::vector<uint64_t>{2, 4, 1, 3}));
}

TEST(RingMergeTest, AppendsAfterWhatIsAlreadyPending) {
  RingMerge merge(2);
  std::vector<Event> out = {Stamped(90, 9)};  // not yet applied (busy mirror)
  merge.Add(0, Stamped(10, 1));
  merge.Release(100, &out);
  EXPECT_EQ(Ids(out), (std::vector<uint64_t>{9, 1}));
}

TEST(RingMergeTest, ReleasingEverythingEmptiesIt) {
  RingMerge merge(2);
  merge.Add(0, Stamped(UINT64_MAX - 1, 1));
  merge.Add(1, Stamped(7, 2));
  std::vector<Event> out;
  merge.Release(UINT64_MAX, &out);
  EXPECT_EQ(Ids(out), (std::vector<uint64_t>{2, 1}));
  EXPECT_EQ(merge.held(), 0u);
}

// Producers as the kernel runs them: each socket's records are made one
// after another (the next reserved after the previous committed), on a
// random CPU; a record is stamped after its reservation and committed a
// random while later, sometimes much later (an interrupt, a preempted
// vCPU), and the consumer cannot read past it in its ring meanwhile. Each
// turn the consumer reads T and every ring's producer position, drains the
// rings one after another, later and later, and releases below
// RingWatermark's watermark. Checked: every socket's records come out in
// order, each once; when no ring was blocked the watermark is T and every
// record committed before T is out after that turn (Flush's guarantee).
struct Record {
  uint64_t reserved, stamped, committed, socket, seq;
  size_t ring;
};

struct Simulation {
  std::vector<Record> records;
  std::vector<std::vector<Record>> ring;  // each in reservation order
};

Simulation Produce(size_t rings, std::mt19937_64* rng) {
  auto jitter = [&](uint64_t max) { return (*rng)() % (max + 1); };
  constexpr size_t kSockets = 40;
  constexpr size_t kCpus = 6;
  Simulation sim;
  for (uint64_t s = 0; s < kSockets; ++s) {
    uint64_t t = jitter(200);
    for (uint64_t k = 0; k < 12; ++k) {
      Record r;
      r.socket = s;
      r.seq = k;
      r.ring = ((*rng)() % kCpus) % rings;
      r.reserved = t + 1 + jitter(30);
      r.stamped = r.reserved + 1 + jitter(3);
      r.committed = r.stamped + 1 + (jitter(9) == 0 ? jitter(150) : jitter(4));
      t = r.committed;
      sim.records.push_back(r);
    }
  }
  sim.ring.resize(rings);
  for (const auto& r : sim.records) sim.ring[r.ring].push_back(r);
  for (auto& q : sim.ring) {
    std::sort(q.begin(), q.end(), [](const Record& a, const Record& b) {
      return a.reserved < b.reserved;
    });
  }
  return sim;
}

TEST(RingMergeTest, SimulatedProducersKeepEverySocketsOrder) {
  size_t blocked_turns = 0;
  for (size_t rings : {2u, 3u, 4u}) {
    for (uint32_t seed = 1; seed <= 30; ++seed) {
      std::mt19937_64 rng(seed * 7919 + rings);
      auto jitter = [&](uint64_t max) { return rng() % (max + 1); };
      const Simulation sim = Produce(rings, &rng);
      std::vector<size_t> read(rings, 0);
      RingMerge merge(rings);
      RingWatermark watermark(rings);
      std::vector<Event> out;
      std::map<uint64_t, uint64_t> next_seq;  // socket -> expected seq
      size_t checked = 0;
      for (uint64_t now = 0; now < 3000; now += 1 + jitter(25)) {
        for (size_t q = 0; q < rings; ++q) {
          // Position: records reserved by now.
          uint64_t pos = 0;
          while (pos < sim.ring[q].size() && sim.ring[q][pos].reserved <= now) {
            ++pos;
          }
          watermark.Observe(q, now, pos);
        }
        uint64_t drain_at = now;
        for (size_t q = 0; q < rings; ++q) {
          drain_at += jitter(5);
          while (read[q] < sim.ring[q].size() &&
                 sim.ring[q][read[q]].committed <= drain_at) {
            const Record& r = sim.ring[q][read[q]++];
            merge.Add(q, Stamped(r.stamped, r.socket * 100 + r.seq));
          }
          watermark.Drained(q, read[q]);
        }
        const uint64_t w = watermark.watermark_ns();
        ASSERT_LE(w, now);
        merge.Release(w, &out);
        for (; checked < out.size(); ++checked) {
          const uint64_t socket = out[checked].id / 100;
          const uint64_t seq = out[checked].id % 100;
          ASSERT_EQ(seq, next_seq[socket])
              << "socket " << socket << ", rings " << rings << ", seed " << seed
              << ", turn at " << now;
          next_seq[socket] = seq + 1;
        }
        if (w < now) {
          ++blocked_turns;
          continue;
        }
        for (const auto& r : sim.records) {
          if (r.committed < now) {
            ASSERT_GT(next_seq[r.socket], r.seq)
                << "socket " << r.socket << " seq " << r.seq << " committed at "
                << r.committed << ", not out at " << now;
          }
        }
      }
      EXPECT_EQ(out.size(), sim.records.size());
      EXPECT_EQ(merge.held(), 0u);
    }
  }
  // The simulation did exercise rings blocked by a record being written.
  EXPECT_GT(blocked_turns, 0u);
}

// Without the watermark (releasing below T), a blocked ring breaks a
// socket's order in the same simulation: the check above is not vacuous.
TEST(RingMergeTest, SimulationCatchesAMergeThatIgnoresBlockedRings) {
  size_t broken = 0;
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    std::mt19937_64 rng(seed * 7919 + 2);
    auto jitter = [&](uint64_t max) { return rng() % (max + 1); };
    const Simulation sim = Produce(2, &rng);
    std::vector<size_t> read(2, 0);
    RingMerge merge(2);
    std::vector<Event> out;
    for (uint64_t now = 0; now < 3000; now += 1 + jitter(25)) {
      uint64_t drain_at = now;
      for (size_t q = 0; q < 2; ++q) {
        drain_at += jitter(5);
        while (read[q] < sim.ring[q].size() &&
               sim.ring[q][read[q]].committed <= drain_at) {
          const Record& r = sim.ring[q][read[q]++];
          merge.Add(q, Stamped(r.stamped, r.socket * 100 + r.seq));
        }
      }
      merge.Release(now, &out);
    }
    std::map<uint64_t, uint64_t> last;
    for (const auto& e : out) {
      auto it = last.find(e.id / 100);
      if (it != last.end() && it->second > e.id % 100) ++broken;
      last[e.id / 100] = e.id % 100;
    }
  }
  EXPECT_GT(broken, 0u);
}

}  // namespace
}  // namespace tcpstated
