// Reconciles that "correct" a mirror that was right: the stray removals
// of a quiet, loss-free host (issue 13).
//
// A reconcile in slices lets events in between (the lock is released): an
// event that removes a socket shifts later entries of its probe run back,
// and one that adds a socket may put it anywhere. An entry that lands in
// the slots the paused walk has already passed must still be indexed by
// its 4-tuple (classic-tracepoint ids are not cookies) and swept.
//
// A TIME_WAIT socket whose time is up when the dump is taken is gone from
// the kernel (its timer fired) before the daemon's next tick expires it
// from the mirror: not a correction.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <vector>

#include "mirror_test_events.h"
#include "tcpstated/mirror.h"

namespace {

using tcpstated::DiagSocket;
using tcpstated::Mirror;
using tcpstated::test::Diag;
using tcpstated::test::Ip;
using tcpstated::test::kNetns;
using tcpstated::test::kSec;
using tcpstated::test::kT0;
using tcpstated::test::Walk;
using S = tcpstated::TcpState;

constexpr uint64_t kDumpStart = kT0 + 100 * kSec;
constexpr uint64_t kNow = kDumpStart + kSec;
// Classic-tracepoint incarnation ids: CPU number + 1 in bits 48 and up.
constexpr uint64_t kIncarnations = 2ULL << 48;

struct Sock : tcpstated::test::Sock {
  Sock(uint64_t id_in, uint16_t sport_in)
      : tcpstated::test::Sock(id_in, sport_in, 443) {
    saddr = Ip(AF_INET, "192.0.2.1");
    daddr = Ip(AF_INET, "198.51.100.1");
  }
};

// 850 connections in a table of 1024 slots (long probe runs), all in the
// dump under their cookies; the mirror knows them under incarnation ids.
// Between every few one-unit slices an event closes one of them, and one
// new connection opens: each close shifts entries back, possibly over the
// walk's position, and each open may land behind it.
TEST(MirrorReconcileStrayTest, EntriesThatJumpBehindAPausedWalkAreKept) {
  constexpr int kSockets = 850;
  constexpr int kClosed = 250;
  Mirror m(100000);
  std::vector<Sock> socks;
  std::vector<DiagSocket> dump;
  for (int i = 0; i < kSockets; ++i) {
    socks.emplace_back(kIncarnations | static_cast<uint64_t>(i + 1),
                       static_cast<uint16_t>(10000 + i));
    Walk(m, socks.back(), {S::kClose, S::kSynSent, S::kEstablished}, kT0);
    dump.push_back(
        Diag(socks.back(), 100000 + static_cast<uint64_t>(i), S::kEstablished));
  }
  m.BeginReconcile();
  Mirror::NamespaceDump d;
  d.netns = kNetns;
  d.sockets = &dump;
  m.StartReconcile({d}, kDumpStart, kNow, /*seeding=*/false);
  int closed = 0, opened = 0;
  uint64_t slices = 0;
  uint64_t ts = kNow;
  while (!m.ContinueReconcile(1)) {
    // From the 4-tuple index on (the first pass looks at the dump only).
    if (++slices <= kSockets || slices % 4 != 0 || closed == kClosed) {
      continue;
    }
    // Every seventh socket, so that the closes spread over the table.
    const Sock& s = socks[static_cast<size_t>(closed * 7 % kSockets)];
    Walk(m, s, {S::kEstablished, S::kFinWait1, S::kClose}, ts += 1000);
    ++closed;
    Sock fresh(kIncarnations | static_cast<uint64_t>(5000 + opened),
               static_cast<uint16_t>(30000 + opened));
    Walk(m, fresh, {S::kClose, S::kSynSent}, ts += 1000);
    ++opened;
  }
  Mirror::ReconcileStats stats = m.FinishReconcile();

  ASSERT_EQ(closed, kClosed);
  EXPECT_EQ(stats.added, 0u);
  EXPECT_EQ(stats.changed, 0u);
  EXPECT_EQ(stats.removed, 0u);
  EXPECT_EQ(m.stats().tracked,
            static_cast<uint64_t>(kSockets - closed + opened));
}

DiagSocket Timewait(const Sock& s, uint64_t cookie, uint32_t expires_ms) {
  DiagSocket d = Diag(s, cookie, S::kTimeWait);
  d.timewait = true;
  d.timer = 3;
  d.inode = 0;
  d.expires_ms = expires_ms;
  return d;
}

TEST(MirrorReconcileStrayTest, TimewaitWhoseTimeIsUpIsExpiredNotCorrected) {
  Mirror m(1000);
  Sock due(1, 40001), young(2, 40002);
  // Seeded with 1 s and 30 s left on their timers.
  std::vector<DiagSocket> seed = {Timewait(due, 11, 1000),
                                  Timewait(young, 12, 30000)};
  Mirror::NamespaceDump d;
  d.netns = kNetns;
  d.sockets = &seed;
  m.Reconcile({d}, kDumpStart - kSec, kDumpStart, /*seeding=*/true);
  ASSERT_EQ(m.stats().tracked, 2u);

  // 1.5 s later neither is in the dump; no tick expired the first yet.
  std::vector<DiagSocket> none;
  d.sockets = &none;
  m.BeginReconcile();
  Mirror::ReconcileStats stats =
      m.Reconcile({d}, kDumpStart + kSec, kDumpStart + 1500 * kSec / 1000,
                  /*seeding=*/false);
  EXPECT_EQ(stats.removed, 1u);  // only the one with 28.5 s to go
  EXPECT_EQ(stats.corrections[static_cast<size_t>(S::kTimeWait)], 1u);
  EXPECT_EQ(m.Find(11), nullptr);
  EXPECT_EQ(m.Find(12), nullptr);
  EXPECT_EQ(m.stats().tracked, 0u);
}

}  // namespace
