#include "tcpstated/expiry_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

namespace tcpstated {
namespace {

std::vector<uint64_t> Drain(ExpiryQueue* q) {
  std::vector<uint64_t> out;
  while (!q->empty()) {
    out.push_back(q->Top().at_ns);
    q->Pop();
  }
  return out;
}

TEST(ExpiryQueue, SortedDeadlinesComeOutInOrder) {
  ExpiryQueue q;
  EXPECT_TRUE(q.empty());
  // More than one ring's worth, so the ring grows while holding items.
  for (uint64_t t = 1; t <= 5000; ++t) q.Push(t, t + 100);
  EXPECT_EQ(q.size(), 5000u);
  EXPECT_EQ(q.Top().id, 101u);
  std::vector<uint64_t> out = Drain(&q);
  ASSERT_EQ(out.size(), 5000u);
  EXPECT_TRUE(std::is_sorted(out.begin(), out.end()));
}

TEST(ExpiryQueue, LateAndEarlyDeadlinesMerge) {
  ExpiryQueue q;
  q.Push(100, 1);
  q.Push(200, 2);
  q.Push(150, 3);  // out of order: earlier than the last one
  q.Push(50, 4);
  q.Push(300, 5);
  std::vector<uint64_t> ids;
  while (!q.empty()) {
    ids.push_back(q.Top().id);
    q.Pop();
  }
  EXPECT_EQ(ids, (std::vector<uint64_t>{4, 1, 3, 2, 5}));
}

TEST(ExpiryQueue, AnyOrderInterleavedWithPopsIsEarliestFirst) {
  // Deadlines mostly rising with jitter (events from CPUs slightly apart),
  // popped while pushing, against a sorted reference.
  std::mt19937_64 rng(7);
  ExpiryQueue q;
  std::multiset<uint64_t> reference;
  uint64_t clock = 1000;
  for (int round = 0; round < 20000; ++round) {
    clock += rng() % 10;
    const uint64_t at = clock + 60 - rng() % 40;
    q.Push(at, static_cast<uint64_t>(round) + 1);
    reference.insert(at);
    if (rng() % 3 == 0) {
      ASSERT_EQ(q.Top().at_ns, *reference.begin());
      q.Pop();
      reference.erase(reference.begin());
    }
  }
  EXPECT_EQ(q.size(), reference.size());
  EXPECT_EQ(Drain(&q),
            std::vector<uint64_t>(reference.begin(), reference.end()));
}

}  // namespace
}  // namespace tcpstated
