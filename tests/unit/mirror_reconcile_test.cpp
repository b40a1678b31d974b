// Unit tests of tcpstated::Mirror's dump side: seeding from a sock_diag dump,
// periodic reconciliation (corrections, races with the event stream, 4-tuple
// matching of classic-tracepoint ids), namespace purges and drops, and the
// aggregates the detectors read (per-destination port books, the CLOSE_WAIT
// index, SYN-ACK retransmits, owners, timewait sockets per namespace).
// Kernel facts: shared/reference/linux-tcp-state-transitions.md.

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "mirror_test_events.h"
#include "tcpstated/event.h"
#include "tcpstated/mirror.h"
#include "tcpstated/sock_diag.h"
#include "tcpstated/tcp_state.h"

namespace {

using tcpstated::Address;
using tcpstated::DiagSocket;
using tcpstated::Event;
using tcpstated::Mirror;
using tcpstated::Owner;
using tcpstated::Role;
using tcpstated::SocketEntry;
using tcpstated::Source;
using tcpstated::StateName;
using tcpstated::test::CountOf;
using tcpstated::test::CountsIn;
using tcpstated::test::Diag;
using tcpstated::test::ExpectCounts;
using tcpstated::test::InFinWait2Substate;
using tcpstated::test::InProcess;
using tcpstated::test::Ip;
using tcpstated::test::IsTimewaitSock;
using tcpstated::test::kBigTable;
using tcpstated::test::kNetns;
using tcpstated::test::kOtherNetns;
using tcpstated::test::kSec;
using tcpstated::test::kT0;
using tcpstated::test::Reset;
using tcpstated::test::StateChange;
using tcpstated::test::Walk;
using tcpstated::test::WithPeerFin;
using S = tcpstated::TcpState;

constexpr uint64_t kMs = 1000000ULL;
// A reconcile cycle: the dumps begin at kDumpStart and are applied at kNow.
constexpr uint64_t kDumpStart = kT0 + 100 * kSec;
constexpr uint64_t kNow = kDumpStart + 500 * kMs;
constexpr uint32_t kThirdNetns = 4026532700;
// Classic-tracepoint incarnation ids carry the CPU number + 1 in bits 48+;
// socket cookies are small sequential numbers.
constexpr uint64_t kIncarnation = (3ULL << 48) | 17;

// This file's sockets are 10.0.0.1 -> 10.0.0.2 unless a test says otherwise.
struct Sock : tcpstated::test::Sock {
  explicit Sock(uint64_t id_in, uint16_t sport_in = 0, uint16_t dport_in = 0,
                uint32_t netns_in = kNetns)
      : tcpstated::test::Sock(id_in, sport_in, dport_in, netns_in) {
    saddr = Ip(AF_INET, "10.0.0.1");
    daddr = Ip(AF_INET, "10.0.0.2");
  }
};

// tcp_retransmit_synack: sport is the listener's port.
Event SynackRetrans(const Sock& listener, uint16_t client_port, uint64_t ts) {
  Event e = StateChange(listener, S::kListen, S::kListen, ts);
  e.source = Source::kSynackRetrans;
  e.dport = client_port;
  return e;
}

// A timewait socket in `substate` (kTimeWait or kFinWait2).
DiagSocket Timewait(const Sock& s, uint64_t cookie, S substate,
                    uint32_t expires_ms) {
  DiagSocket d = Diag(s, cookie, substate);
  d.timewait = true;
  d.timer = 3;
  d.inode = 0;
  d.expires_ms = expires_ms;
  return d;
}

// A half-open request socket on listener port `port`.
DiagSocket Request(uint64_t cookie, uint16_t port, uint16_t client_port) {
  Sock s(cookie, port, client_port);
  DiagSocket d = Diag(s, cookie, S::kNewSynRecv);
  d.inode = 0;
  return d;
}

Mirror::ReconcileStats ReconcileOne(Mirror& m, uint32_t netns,
                                    const std::vector<DiagSocket>& sockets,
                                    bool seeding, uint64_t netns_cookie = 0,
                                    uint32_t fin_timeout_s = 60,
                                    uint64_t dump_start = kDumpStart,
                                    uint64_t now = kNow) {
  Mirror::NamespaceDump dump;
  dump.netns = netns;
  dump.netns_cookie = netns_cookie;
  dump.sockets = &sockets;
  dump.fin_timeout_s = fin_timeout_s;
  return m.Reconcile({dump}, dump_start, now, seeding);
}

void ExpectCorrections(const Mirror::ReconcileStats& stats,
                       const std::map<S, uint64_t>& expected) {
  for (size_t i = 0; i < stats.corrections.size(); ++i) {
    S state = static_cast<S>(i);
    auto it = expected.find(state);
    uint64_t want = it == expected.end() ? 0 : it->second;
    EXPECT_EQ(stats.corrections[i], want)
        << "corrections for " << StateName(state);
  }
}

std::set<uint64_t> CloseWaitIds(const Mirror& m) {
  std::set<uint64_t> ids;
  m.ForEachCloseWait([&](const SocketEntry& s) {
    EXPECT_EQ(s.state, S::kCloseWait) << s.id;
    EXPECT_TRUE(ids.insert(s.id).second) << "visited twice: " << s.id;
  });
  return ids;
}

// Every id tracked, with its netns, from a full walk of the table.
std::map<uint64_t, uint32_t> Tracked(const Mirror& m) {
  std::map<uint64_t, uint32_t> ids;
  m.ForEach([&](const SocketEntry& s) { ids[s.id] = s.netns; });
  return ids;
}

uint64_t DestinationCount(const Mirror& m, uint32_t netns, const Sock& s) {
  auto it = m.destinations().find(
      Mirror::DestinationKey{netns, s.dport, s.saddr, s.daddr});
  return it == m.destinations().end() ? 0 : it->second;
}

uint64_t TimewaitIn(const Mirror& m, uint32_t netns) {
  auto tw = m.TimewaitSockets();
  auto it = tw.find(netns);
  return it == tw.end() ? 0 : it->second;
}

uint64_t SynacksOf(const Mirror& m, uint32_t netns, uint16_t port) {
  auto it = m.synack_retransmits().find(Mirror::ListenerKeyOf(netns, port));
  return it == m.synack_retransmits().end() ? 0 : it->second;
}

// --- Seeding at start-up -----------------------------------------------------

// One namespace as a first dump finds it: a listener on 8080 with two
// accepted children (one in CLOSE_WAIT) and three half-open requests, a
// client connection, and two timewait sockets, one per substate.
struct SeedFixture {
  Sock listener{1, 8080, 0};
  Sock child{2, 8080, 50000};
  Sock client{3, 40000, 443};
  Sock close_wait{4, 8080, 50001};
  Sock time_wait{5, 40001, 80};
  Sock fin_wait2{6, 40002, 80};
  std::vector<DiagSocket> dump;

  SeedFixture() {
    listener.saddr = Address{};
    listener.daddr = Address{};
    dump = {
        Diag(listener, 1, S::kListen),
        Diag(child, 2, S::kEstablished),
        Diag(client, 3, S::kEstablished),
        Diag(close_wait, 4, S::kCloseWait),
        Timewait(time_wait, 5, S::kTimeWait, 30000),
        Timewait(fin_wait2, 6, S::kFinWait2, 25000),
        Request(7, 8080, 50002),
        Request(8, 8080, 50003),
        Request(9, 8080, 50004),
    };
  }
};

constexpr uint64_t kSeedCookie = 1001;
constexpr uint32_t kSeedFinTimeoutS = 40;

Mirror::ReconcileStats SeedFrom(Mirror& m, const SeedFixture& f) {
  m.BeginReconcile();
  return ReconcileOne(m, kNetns, f.dump, /*seeding=*/true, kSeedCookie,
                      kSeedFinTimeoutS);
}

TEST(MirrorSeedTest, CountsEveryStateExactlyAndCountsNoCorrections) {
  Mirror m(kBigTable);
  SeedFixture f;
  Mirror::ReconcileStats stats = SeedFrom(m, f);

  ExpectCounts(m, kNetns,
               {{S::kListen, 1},
                {S::kEstablished, 2},
                {S::kCloseWait, 1},
                {S::kTimeWait, 1},
                {S::kFinWait2, 1},
                {S::kNewSynRecv, 3}});
  ExpectCorrections(stats, {});
  EXPECT_EQ(stats.added, 6u);
  EXPECT_EQ(stats.changed, 0u);
  EXPECT_EQ(stats.removed, 0u);
  EXPECT_EQ(m.stats().tracked, 6u);  // request sockets are only counted
  for (uint64_t id : {7, 8, 9}) EXPECT_EQ(m.Find(id), nullptr) << id;
  EXPECT_EQ(m.stats().resyncs, 0u);
  EXPECT_EQ(m.stats().netns_purges, 0u);
  EXPECT_EQ(TimewaitIn(m, kNetns), 2u);
}

TEST(MirrorSeedTest, RolesComeFromTheDumpedListeners) {
  Mirror m(kBigTable);
  SeedFixture f;
  SeedFrom(m, f);

  const std::map<uint64_t, Role> want = {
      {1, Role::kListener}, {2, Role::kServer}, {3, Role::kClient},
      {4, Role::kServer},   {5, Role::kClient}, {6, Role::kClient},
  };
  for (const auto& [id, role] : want) {
    const SocketEntry* entry = m.Find(id);
    ASSERT_NE(entry, nullptr) << id;
    EXPECT_EQ(entry->role, role) << id;
    EXPECT_EQ(entry->netns, kNetns) << id;
  }
  // Seeded from the dump: tuple copied, age unknown for full sockets.
  const SocketEntry* client = m.Find(3);
  EXPECT_EQ(client->sport, 40000);
  EXPECT_EQ(client->dport, 443);
  EXPECT_EQ(client->saddr, f.client.saddr);
  EXPECT_EQ(client->daddr, f.client.daddr);
  EXPECT_NE(client->flags & tcpstated::kEntryAgeUnknown, 0);
  EXPECT_EQ(client->entered_ns, kNow);
  EXPECT_EQ(client->state, S::kEstablished);
}

TEST(MirrorSeedTest, TimeWaitSocketExpiresWhenItsDumpedTimerSays) {
  Mirror m(kBigTable);
  SeedFixture f;
  SeedFrom(m, f);
  const SocketEntry* tw = m.Find(5);
  ASSERT_NE(tw, nullptr);
  EXPECT_EQ(tw->state, S::kTimeWait);
  EXPECT_TRUE(IsTimewaitSock(*tw));
  EXPECT_FALSE(InFinWait2Substate(*tw));
  // 60 s of TCP_TIMEWAIT_LEN, 30 s left: it entered TIME_WAIT 30 s ago.
  EXPECT_EQ(tw->entered_ns, kNow - 30 * kSec);

  m.Expire(kNow + 30 * kSec - 1);
  ASSERT_NE(m.Find(5), nullptr);
  EXPECT_EQ(CountOf(m, kNetns, S::kTimeWait), 1);
  m.Expire(kNow + 30 * kSec);
  EXPECT_EQ(m.Find(5), nullptr);
  EXPECT_EQ(CountOf(m, kNetns, S::kTimeWait), 0);
}

TEST(MirrorSeedTest, FinWait2SubstateExpiresAfterFinTimeoutMinusElapsed) {
  Mirror m(kBigTable);
  SeedFixture f;
  SeedFrom(m, f);
  const SocketEntry* orphan = m.Find(6);
  ASSERT_NE(orphan, nullptr);
  EXPECT_EQ(orphan->state, S::kFinWait2);
  EXPECT_TRUE(IsTimewaitSock(*orphan));
  EXPECT_TRUE(InFinWait2Substate(*orphan));
  // tcp_fin_timeout 40 s, 25 s left: handed off 15 s ago.
  EXPECT_EQ(orphan->entered_ns, kNow - 15 * kSec);

  m.Expire(kNow + 25 * kSec - 1);
  ASSERT_NE(m.Find(6), nullptr);
  EXPECT_EQ(CountOf(m, kNetns, S::kFinWait2), 1);
  m.Expire(kNow + 25 * kSec);
  EXPECT_EQ(m.Find(6), nullptr);
  EXPECT_EQ(CountOf(m, kNetns, S::kFinWait2), 0);
  EXPECT_EQ(TimewaitIn(m, kNetns), 1u);  // the TIME_WAIT one is left
  ASSERT_NE(m.Find(5), nullptr);
}

TEST(MirrorSeedTest, EventsWithTheCookieContinueSeededSockets) {
  Mirror m(kBigTable);
  SeedFixture f;
  SeedFrom(m, f);
  for (Sock* s : {&f.listener, &f.child, &f.client, &f.close_wait}) {
    s->netns_cookie = kSeedCookie;  // the same namespace: no purge
  }

  // The CLOSE_WAIT child closes: no TIME_WAIT for the passive closer.
  const uint64_t t = kNow + kSec;
  Walk(m, f.close_wait, {S::kCloseWait, S::kLastAck, S::kClose}, t);
  EXPECT_EQ(m.Find(4), nullptr);
  // The client closes actively and hands off to a timewait socket.
  Walk(m, f.client, {S::kEstablished, S::kFinWait1, S::kFinWait2}, t);
  m.Apply(WithPeerFin(
      StateChange(f.client, S::kFinWait2, S::kClose, t + 3 * kSec)));
  ASSERT_NE(m.Find(3), nullptr);
  EXPECT_EQ(m.Find(3)->state, S::kTimeWait);
  EXPECT_EQ(m.Find(3)->role, Role::kClient);

  EXPECT_EQ(m.stats().resyncs, 0u);
  EXPECT_EQ(m.stats().netns_purges, 0u);
  EXPECT_EQ(m.stats().tracked, 5u);
  ExpectCounts(m, kNetns,
               {{S::kListen, 1},
                {S::kEstablished, 1},
                {S::kTimeWait, 2},
                {S::kFinWait2, 1},
                {S::kNewSynRecv, 3}});
}

TEST(MirrorSeedTest, SeededListenerHandsItsResolvedOwnerToNewChildren) {
  Mirror m(kBigTable);
  SeedFixture f;
  SeedFrom(m, f);
  Owner nginx;
  nginx.tgid = 880;
  nginx.comm = "nginx";
  m.SetOwner(1, nginx);

  Sock fresh(20, 8080, 50099);
  m.Apply(StateChange(fresh, S::kListen, S::kSynRecv, kNow + kSec));
  const SocketEntry* child = m.Find(20);
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->role, Role::kServer);
  const Owner* owner = m.OwnerOf(*child);
  ASSERT_NE(owner, nullptr);
  EXPECT_EQ(owner->tgid, 880u);
  EXPECT_EQ(owner->comm, "nginx");
}

// --- Periodic reconciliation -------------------------------------------------

TEST(MirrorReconcileTest, SocketMissingFromTheMirrorIsAddedAsACorrection) {
  Mirror m(kBigTable);
  Sock known(10, 40010, 443);
  Walk(m, known, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  Sock lost(0, 40011, 443);  // its events were lost
  std::vector<DiagSocket> dump = {Diag(known, 10, S::kEstablished),
                                  Diag(lost, 11, S::kCloseWait)};

  m.BeginReconcile();
  Mirror::ReconcileStats stats = ReconcileOne(m, kNetns, dump, false);

  ExpectCorrections(stats, {{S::kCloseWait, 1}});
  EXPECT_EQ(stats.added, 1u);
  EXPECT_EQ(stats.changed, 0u);
  EXPECT_EQ(stats.removed, 0u);
  ASSERT_NE(m.Find(11), nullptr);
  EXPECT_EQ(m.Find(11)->state, S::kCloseWait);
  ExpectCounts(m, kNetns, {{S::kEstablished, 1}, {S::kCloseWait, 1}});
  EXPECT_EQ(m.stats().tracked, 2u);
}

TEST(MirrorReconcileTest, SocketTheKernelNoLongerHasIsRemovedAsACorrection) {
  Mirror m(kBigTable);
  Sock gone(10, 40010, 443);
  Walk(m, gone, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  Sock kept(12, 40012, 443);
  Walk(m, kept, {S::kClose, S::kSynSent, S::kEstablished, S::kCloseWait}, kT0);
  std::vector<DiagSocket> dump = {Diag(kept, 12, S::kCloseWait)};

  m.BeginReconcile();
  Mirror::ReconcileStats stats = ReconcileOne(m, kNetns, dump, false);

  ExpectCorrections(stats, {{S::kEstablished, 1}});
  EXPECT_EQ(stats.removed, 1u);
  EXPECT_EQ(stats.added, 0u);
  EXPECT_EQ(stats.changed, 0u);
  EXPECT_EQ(m.Find(10), nullptr);
  ASSERT_NE(m.Find(12), nullptr);
  ExpectCounts(m, kNetns, {{S::kCloseWait, 1}});
  EXPECT_EQ(DestinationCount(m, kNetns, gone), 1u);  // the CLOSE_WAIT one
}

TEST(MirrorReconcileTest, SocketThatChangedSinceTheDumpBeganIsNotRemoved) {
  Mirror m(kBigTable);
  Sock old(10, 40010, 443);
  Walk(m, old, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  m.BeginReconcile();
  // Connected while the dump was running (or exactly when it began): the
  // dump missed them, the mirror knows better.
  Sock fresh(13, 40013, 443);
  Walk(m, fresh, {S::kClose, S::kSynSent, S::kEstablished},
       kDumpStart + 100 * kMs);
  Sock at_start(14, 40014, 443);
  Walk(m, at_start, {S::kClose, S::kSynSent}, kDumpStart);
  // An old socket that moved after the dump began.
  m.Apply(StateChange(old, S::kEstablished, S::kFinWait1, kDumpStart + 1));
  std::vector<DiagSocket> dump;

  Mirror::ReconcileStats stats = ReconcileOne(m, kNetns, dump, false);

  ExpectCorrections(stats, {});
  EXPECT_EQ(stats.removed, 0u);
  EXPECT_NE(m.Find(10), nullptr);
  EXPECT_NE(m.Find(13), nullptr);
  EXPECT_NE(m.Find(14), nullptr);
  ExpectCounts(m, kNetns,
               {{S::kFinWait1, 1}, {S::kEstablished, 1}, {S::kSynSent, 1}});
}

TEST(MirrorReconcileTest, DifferingStateIsCorrectedToTheKernels) {
  Mirror m(kBigTable);
  Sock s(10, 40010, 443);
  Walk(m, s, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  // The peer's FIN was lost in a ring-buffer overflow.
  std::vector<DiagSocket> dump = {Diag(s, 10, S::kCloseWait)};

  m.BeginReconcile();
  Mirror::ReconcileStats stats = ReconcileOne(m, kNetns, dump, false);

  ExpectCorrections(stats, {{S::kCloseWait, 1}});
  EXPECT_EQ(stats.changed, 1u);
  EXPECT_EQ(stats.added, 0u);
  EXPECT_EQ(stats.removed, 0u);
  const SocketEntry* entry = m.Find(10);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->state, S::kCloseWait);
  EXPECT_EQ(entry->role, Role::kClient);
  EXPECT_NE(entry->flags & tcpstated::kEntryAgeUnknown, 0);
  ExpectCounts(m, kNetns, {{S::kCloseWait, 1}});
  EXPECT_EQ(m.stats().tracked, 1u);
  // Events go on from the corrected state without a resync.
  m.Apply(StateChange(s, S::kCloseWait, S::kLastAck, kNow + kSec));
  EXPECT_EQ(m.stats().resyncs, 0u);
  ExpectCounts(m, kNetns, {{S::kLastAck, 1}});
}

TEST(MirrorReconcileTest, StateChangedSinceTheDumpBeganIsNotCorrected) {
  Mirror m(kBigTable);
  Sock s(10, 40010, 443);
  Walk(m, s, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  Sock edge(11, 40011, 443);
  Walk(m, edge, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  m.BeginReconcile();
  m.Apply(StateChange(s, S::kEstablished, S::kFinWait1, kDumpStart + 1));
  m.Apply(StateChange(edge, S::kEstablished, S::kCloseWait, kDumpStart));
  // The dump saw both before they moved.
  std::vector<DiagSocket> dump = {Diag(s, 10, S::kEstablished),
                                  Diag(edge, 11, S::kEstablished)};

  Mirror::ReconcileStats stats = ReconcileOne(m, kNetns, dump, false);

  ExpectCorrections(stats, {});
  EXPECT_EQ(stats.changed, 0u);
  EXPECT_EQ(m.Find(10)->state, S::kFinWait1);
  EXPECT_EQ(m.Find(11)->state, S::kCloseWait);
  ExpectCounts(m, kNetns, {{S::kFinWait1, 1}, {S::kCloseWait, 1}});
}

TEST(MirrorReconcileTest, SocketClosedAfterBeginReconcileIsNotResurrected) {
  Mirror m(kBigTable);
  Sock s(10, 40010, 443);
  Walk(m, s, {S::kClose, S::kSynSent, S::kEstablished, S::kCloseWait}, kT0);
  m.BeginReconcile();
  // The dump walked past it, then it closed.
  std::vector<DiagSocket> dump = {Diag(s, 10, S::kCloseWait)};
  Walk(m, s, {S::kCloseWait, S::kLastAck, S::kClose}, kDumpStart + 100 * kMs);
  ASSERT_EQ(m.Find(10), nullptr);

  Mirror::ReconcileStats stats = ReconcileOne(m, kNetns, dump, false);

  EXPECT_EQ(m.Find(10), nullptr);
  ExpectCorrections(stats, {});
  EXPECT_EQ(stats.added, 0u);
  ExpectCounts(m, kNetns, {});
  EXPECT_EQ(m.stats().tracked, 0u);
  EXPECT_TRUE(CloseWaitIds(m).empty());
}

TEST(MirrorReconcileTest, RemovalsBeforeBeginReconcileAreNotRemembered) {
  // The guard only covers the reconcile window: a later dump that still
  // (genuinely) reports the socket brings it back.
  Mirror m(kBigTable);
  Sock s(10, 40010, 443);
  Walk(m, s, {S::kClose, S::kSynSent, S::kEstablished, S::kClose}, kT0);
  m.BeginReconcile();
  std::vector<DiagSocket> dump = {Diag(s, 10, S::kEstablished)};
  Mirror::ReconcileStats stats = ReconcileOne(m, kNetns, dump, false);
  EXPECT_NE(m.Find(10), nullptr);
  EXPECT_EQ(stats.added, 1u);
}

TEST(MirrorReconcileTest, NamespacesNotDumpedAreLeftUntouched) {
  Mirror m(kBigTable);
  Sock here(10, 40010, 443, kNetns);
  Walk(m, here, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  Sock there(20, 40020, 443, kOtherNetns);
  Walk(m, there, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  m.SetRequestSockets(kOtherNetns, 5);

  m.BeginReconcile();
  std::vector<DiagSocket> dump = {Diag(here, 10, S::kCloseWait)};
  Mirror::NamespaceDump dumped;
  dumped.netns = kNetns;
  dumped.sockets = &dump;
  // A namespace whose dump failed is passed without sockets.
  Mirror::NamespaceDump failed;
  failed.netns = kOtherNetns;
  failed.sockets = nullptr;
  Mirror::ReconcileStats stats =
      m.Reconcile({dumped, failed}, kDumpStart, kNow, false);

  ExpectCorrections(stats, {{S::kCloseWait, 1}});
  ASSERT_NE(m.Find(20), nullptr);
  EXPECT_EQ(m.Find(20)->state, S::kEstablished);
  ExpectCounts(m, kOtherNetns, {{S::kEstablished, 1}, {S::kNewSynRecv, 5}});
  ExpectCounts(m, kNetns, {{S::kCloseWait, 1}});
}

// After a restart a CLOSE_WAIT leak keeps its age: the kernel's
// tcpi_last_ack_recv (the peer's FIN was the last segment with an ACK) dates
// seeded CLOSE_WAIT sockets, once each, never later than the mirror knew.
TEST(MirrorReconcileTest, CloseWaitAgesOfSeededSocketsComeFromTheKernel) {
  Mirror m(kBigTable);
  Sock leaked(0, 8080, 40001), replied_now(0, 8080, 40002),
      no_info(0, 8080, 40003), est(0, 8080, 40004);
  ReconcileOne(
      m, kNetns,
      {Diag(leaked, 11, S::kCloseWait), Diag(replied_now, 12, S::kCloseWait),
       Diag(no_info, 13, S::kCloseWait), Diag(est, 14, S::kEstablished)},
      /*seeding=*/true);
  Sock other(0, 8080, 40001, kOtherNetns);
  ReconcileOne(m, kOtherNetns, {Diag(other, 31, S::kCloseWait)},
               /*seeding=*/true);
  // A CLOSE_WAIT the events saw begin: its age is known.
  Sock tracked(21, 40005, 443);
  const uint64_t cw_at =
      Walk(m, tracked, {S::kClose, S::kSynSent, S::kEstablished, S::kCloseWait},
           kNow - 30 * kSec);
  std::vector<uint32_t> to_ask = m.NamespacesWithUnknownCloseWaitAges();
  std::sort(to_ask.begin(), to_ask.end());
  EXPECT_EQ(to_ask, (std::vector<uint32_t>{kNetns, kOtherNetns}));

  std::vector<DiagSocket> info = {
      Diag(leaked, 11, S::kCloseWait), Diag(replied_now, 12, S::kCloseWait),
      Diag(no_info, 13, S::kCloseWait), Diag(est, 14, S::kEstablished),
      Diag(tracked, 21, S::kCloseWait)};
  info[0].last_ack_ms = 90 * 1000;  // 90 s since the FIN
  info[1].last_ack_ms = 0;          // later than the seed: no younger
  // 13: no tcp_info in the reply (last_ack_ms stays kNoTcpInfo).
  info[3].last_ack_ms = 5000;
  info[4].last_ack_ms = 100 * 1000;
  const uint64_t now = kNow + kSec;
  EXPECT_EQ(m.AgeCloseWaitFromKernel({{kNetns, info}}, now), 2u);
  EXPECT_EQ(m.Find(11)->entered_ns, now - 90 * kSec);
  EXPECT_EQ(m.Find(12)->entered_ns, kNow);  // the seed's lower bound
  EXPECT_EQ(m.Find(13)->entered_ns, kNow);
  EXPECT_EQ(m.Find(14)->entered_ns, kNow);
  EXPECT_EQ(m.Find(21)->entered_ns, cw_at);  // known: untouched
  EXPECT_EQ(m.Find(31)->entered_ns, kNow);   // another namespace
  // 13 was asked too (not found): only the other namespace is left.
  EXPECT_EQ(m.NamespacesWithUnknownCloseWaitAges(),
            (std::vector<uint32_t>{kOtherNetns}));

  // Asked once: a later reply (the application wrote meanwhile and its
  // ACKs came back) does not make the leak younger.
  info[0].last_ack_ms = 1000;
  info[2].last_ack_ms = 3000;
  EXPECT_EQ(m.AgeCloseWaitFromKernel({{kNetns, info}}, now + kSec), 0u);
  EXPECT_EQ(m.Find(11)->entered_ns, now - 90 * kSec);
  EXPECT_EQ(m.Find(13)->entered_ns, kNow);
  // Still a lower bound: not observed into the duration histogram.
  EXPECT_TRUE(m.Find(11)->flags & tcpstated::kEntryAgeUnknown);
}

TEST(MirrorReconcileTest, KernelAgeIsAskedAgainAfterTheStateChanges) {
  Mirror m(kBigTable);
  Sock leaked(0, 8080, 40001);
  ReconcileOne(m, kNetns, {Diag(leaked, 11, S::kCloseWait)},
               /*seeding=*/true);
  // Another namespace's socket with the same cookie is not this one.
  Sock elsewhere(0, 8080, 40001, kOtherNetns);
  std::vector<DiagSocket> other = {Diag(elsewhere, 11, S::kCloseWait)};
  other[0].last_ack_ms = 7200 * 1000;
  EXPECT_EQ(m.AgeCloseWaitFromKernel({{kOtherNetns, other}}, kNow), 0u);
  EXPECT_EQ(m.Find(11)->entered_ns, kNow);

  std::vector<DiagSocket> info = {Diag(leaked, 11, S::kCloseWait)};
  info[0].last_ack_ms = 60 * 1000;
  EXPECT_EQ(m.AgeCloseWaitFromKernel({{kNetns, info}}, kNow), 1u);
  EXPECT_EQ(m.Find(11)->entered_ns, kNow - 60 * kSec);
  EXPECT_TRUE(m.NamespacesWithUnknownCloseWaitAges().empty());

  // The reconcile finds it in LAST_ACK, then in CLOSE_WAIT again (a lost
  // event each way): the time is unknown again and may be asked again.
  m.BeginReconcile();
  ReconcileOne(m, kNetns, {Diag(leaked, 11, S::kLastAck)}, false, 0, 60,
               kNow + kSec, kNow + 2 * kSec);
  m.BeginReconcile();
  ReconcileOne(m, kNetns, {Diag(leaked, 11, S::kCloseWait)}, false, 0, 60,
               kNow + 3 * kSec, kNow + 4 * kSec);
  EXPECT_EQ(m.Find(11)->entered_ns, kNow + 4 * kSec);
  EXPECT_EQ(m.NamespacesWithUnknownCloseWaitAges(),
            (std::vector<uint32_t>{kNetns}));
}

TEST(MirrorReconcileTest, RequestSocketsSetNewSynRecv) {
  Mirror m(kBigTable);
  SeedFixture f;
  SeedFrom(m, f);
  ASSERT_EQ(CountOf(m, kNetns, S::kNewSynRecv), 3);

  // A listener-only dump between full cycles.
  m.SetRequestSockets(kNetns, 7);
  EXPECT_EQ(CountOf(m, kNetns, S::kNewSynRecv), 7);
  m.SetRequestSockets(kOtherNetns, 2);
  EXPECT_EQ(CountOf(m, kOtherNetns, S::kNewSynRecv), 2);
  EXPECT_EQ(m.stats().tracked, 6u);

  // A full dump: the count is what it holds now, not a sum.
  std::vector<DiagSocket> dump = f.dump;
  dump.pop_back();
  dump.pop_back();
  m.BeginReconcile();
  ReconcileOne(m, kNetns, dump, false, kSeedCookie, kSeedFinTimeoutS);
  EXPECT_EQ(CountOf(m, kNetns, S::kNewSynRecv), 1);
  EXPECT_EQ(m.stats().tracked, 6u);
  // And none when the dump has none.
  dump.pop_back();
  m.BeginReconcile();
  ReconcileOne(m, kNetns, dump, false, kSeedCookie, kSeedFinTimeoutS);
  EXPECT_EQ(CountOf(m, kNetns, S::kNewSynRecv), 0);
  EXPECT_EQ(CountOf(m, kOtherNetns, S::kNewSynRecv), 2);
}

TEST(MirrorReconcileTest, TimewaitSubstateIsCorrectedWhenMatchedByCookie) {
  // The FIN_WAIT2 -> CLOSE hand-off was lost: the mirror has a full socket
  // in FIN_WAIT2, the kernel a timewait socket in the FIN_WAIT2 substate.
  Mirror m(kBigTable);
  Sock s(10, 40010, 80);
  Walk(m, s,
       {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2},
       kT0);
  ASSERT_FALSE(IsTimewaitSock(*m.Find(10)));
  std::vector<DiagSocket> dump = {Timewait(s, 10, S::kFinWait2, 20000)};

  m.BeginReconcile();
  Mirror::ReconcileStats stats = ReconcileOne(m, kNetns, dump, false);

  ExpectCorrections(stats, {{S::kFinWait2, 1}});
  EXPECT_EQ(stats.changed, 1u);
  const SocketEntry* entry = m.Find(10);
  ASSERT_NE(entry, nullptr);
  EXPECT_TRUE(IsTimewaitSock(*entry));
  EXPECT_TRUE(InFinWait2Substate(*entry));
  EXPECT_EQ(TimewaitIn(m, kNetns), 1u);
  m.Expire(kNow + 20 * kSec - 1);
  EXPECT_NE(m.Find(10), nullptr);
  m.Expire(kNow + 20 * kSec);
  EXPECT_EQ(m.Find(10), nullptr);
  ExpectCounts(m, kNetns, {});
}

TEST(MirrorReconcileTest, OrphanPromotedSilentlyIsCorrectedToTimeWait) {
  Mirror m(kBigTable);
  Sock s(10, 40010, 80);
  Walk(m, s,
       {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2,
        S::kClose},
       kT0);
  ASSERT_TRUE(InFinWait2Substate(*m.Find(10)));
  // The remote peer's FIN came: the kernel moved it to TIME_WAIT.
  std::vector<DiagSocket> dump = {Timewait(s, 10, S::kTimeWait, 50000)};

  m.BeginReconcile();
  Mirror::ReconcileStats stats = ReconcileOne(m, kNetns, dump, false);

  ExpectCorrections(stats, {{S::kTimeWait, 1}});
  const SocketEntry* entry = m.Find(10);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->state, S::kTimeWait);
  EXPECT_FALSE(InFinWait2Substate(*entry));
  ExpectCounts(m, kNetns, {{S::kTimeWait, 1}});
  EXPECT_EQ(TimewaitIn(m, kNetns), 1u);  // not also counted as an orphan
  m.Expire(kNow + 50 * kSec - 1);
  EXPECT_NE(m.Find(10), nullptr);
  m.Expire(kNow + 50 * kSec);
  EXPECT_EQ(m.Find(10), nullptr);
}

TEST(MirrorReconcileTest, CookieTrackedInAnotherNamespaceIsNeverDuplicated) {
  Mirror m(kBigTable);
  Sock there(10, 40010, 443, kOtherNetns);
  Walk(m, there, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  Sock here(0, 40099, 443, kNetns);
  std::vector<DiagSocket> dump = {Diag(here, 10, S::kEstablished)};

  m.BeginReconcile();
  ReconcileOne(m, kNetns, dump, false);

  int copies = 0;
  m.ForEach([&](const SocketEntry& s) { copies += s.id == 10 ? 1 : 0; });
  EXPECT_EQ(copies, 1);
  EXPECT_EQ(m.stats().tracked, 1u);
  ExpectCounts(m, kOtherNetns, {{S::kEstablished, 1}});
}

// --- Matching by 4-tuple (classic-tracepoint ids) ----------------------------

TEST(MirrorReconcileTest, IncarnationIdIsMatchedByTupleNotDuplicated) {
  Mirror m(kBigTable);
  Sock s(kIncarnation, 40010, 443);
  Walk(m, s, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  std::vector<DiagSocket> dump = {Diag(s, 4242, S::kEstablished)};

  m.BeginReconcile();
  Mirror::ReconcileStats stats = ReconcileOne(m, kNetns, dump, false);

  ExpectCorrections(stats, {});
  EXPECT_EQ(stats.added, 0u);
  EXPECT_EQ(stats.removed, 0u);
  EXPECT_EQ(stats.changed, 0u);
  EXPECT_NE(m.Find(kIncarnation), nullptr);
  EXPECT_EQ(m.Find(4242), nullptr);
  EXPECT_EQ(m.stats().tracked, 1u);
  ExpectCounts(m, kNetns, {{S::kEstablished, 1}});
  EXPECT_EQ(DestinationCount(m, kNetns, s), 1u);

  // And corrected by tuple when the state differs.
  dump = {Diag(s, 4242, S::kCloseWait)};
  m.BeginReconcile();
  stats = ReconcileOne(m, kNetns, dump, false);
  ExpectCorrections(stats, {{S::kCloseWait, 1}});
  EXPECT_EQ(stats.changed, 1u);
  ASSERT_NE(m.Find(kIncarnation), nullptr);
  EXPECT_EQ(m.Find(kIncarnation)->state, S::kCloseWait);
  EXPECT_EQ(m.stats().tracked, 1u);
  EXPECT_EQ(CloseWaitIds(m), std::set<uint64_t>{kIncarnation});
}

TEST(MirrorReconcileTest, TupleMatchIsPerNamespace) {
  Mirror m(kBigTable);
  Sock other(kIncarnation, 40010, 443, kOtherNetns);
  Walk(m, other, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  Sock here(0, 40010, 443, kNetns);  // the same tuple in another namespace
  std::vector<DiagSocket> dump_here = {Diag(here, 4242, S::kEstablished)};
  std::vector<DiagSocket> dump_other;

  m.BeginReconcile();
  Mirror::NamespaceDump a;
  a.netns = kNetns;
  a.sockets = &dump_here;
  Mirror::NamespaceDump b;
  b.netns = kOtherNetns;
  b.sockets = &dump_other;
  Mirror::ReconcileStats stats = m.Reconcile({a, b}, kDumpStart, kNow, false);

  EXPECT_EQ(stats.added, 1u);
  EXPECT_EQ(stats.removed, 1u);
  ExpectCorrections(stats, {{S::kEstablished, 2}});
  EXPECT_EQ(m.Find(kIncarnation), nullptr);
  ASSERT_NE(m.Find(4242), nullptr);
  EXPECT_EQ(m.Find(4242)->netns, kNetns);
  ExpectCounts(m, kNetns, {{S::kEstablished, 1}});
  ExpectCounts(m, kOtherNetns, {});
}

// A classic-tracepoint entry still holding a full FIN_WAIT2 socket (its
// hand-off event was lost), matched by 4-tuple to the kernel's timewait
// socket in the FIN_WAIT2 substate, is corrected into a timewait socket: it
// counts in TimewaitSockets() and expires.
TEST(MirrorReconcileTest, TimewaitSubstateIsCorrectedWhenMatchedByTuple) {
  Mirror m(kBigTable);
  Sock s(kIncarnation, 40010, 80);
  Walk(m, s,
       {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2},
       kT0);
  std::vector<DiagSocket> dump = {Timewait(s, 4242, S::kFinWait2, 20000)};

  m.BeginReconcile();
  Mirror::ReconcileStats stats = ReconcileOne(m, kNetns, dump, false);

  EXPECT_EQ(m.stats().tracked, 1u);
  ExpectCorrections(stats, {{S::kFinWait2, 1}});
  EXPECT_EQ(stats.changed, 1u);
  const SocketEntry* entry = m.Find(kIncarnation);
  ASSERT_NE(entry, nullptr);
  EXPECT_TRUE(IsTimewaitSock(*entry));
  EXPECT_TRUE(InFinWait2Substate(*entry));
  EXPECT_EQ(TimewaitIn(m, kNetns), 1u);
  m.Expire(kNow + 20 * kSec);
  EXPECT_EQ(m.Find(kIncarnation), nullptr);
}

// With classic tracepoints the id is an incarnation id, not the cookie: a
// socket that closed after BeginReconcile but that the dump still saw must
// be recognised by its tuple and not seeded again.
TEST(MirrorReconcileTest, IncarnationClosedAfterBeginReconcileIsNotRevived) {
  Mirror m(kBigTable);
  Sock s(kIncarnation, 40010, 443);
  Walk(m, s, {S::kClose, S::kSynSent, S::kEstablished, S::kCloseWait}, kT0);
  m.BeginReconcile();
  std::vector<DiagSocket> dump = {Diag(s, 4242, S::kCloseWait)};
  Walk(m, s, {S::kCloseWait, S::kLastAck, S::kClose}, kDumpStart + 100 * kMs);
  ASSERT_EQ(m.stats().tracked, 0u);

  Mirror::ReconcileStats stats = ReconcileOne(m, kNetns, dump, false);

  EXPECT_EQ(m.Find(4242), nullptr);
  EXPECT_EQ(m.stats().tracked, 0u);
  EXPECT_EQ(stats.added, 0u);
  ExpectCorrections(stats, {});
  ExpectCounts(m, kNetns, {});
  EXPECT_TRUE(CloseWaitIds(m).empty());
}

// --- Namespaces --------------------------------------------------------------

TEST(MirrorReconcileTest, NewNetnsCookieInADumpPurgesTheOldSocketsFirst) {
  Mirror m(kBigTable);
  Sock est(10, 40010, 443);
  est.netns_cookie = 1001;
  Walk(m, est, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  Sock orphan(11, 40011, 80);
  orphan.netns_cookie = 1001;
  Walk(m, orphan,
       {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2,
        S::kClose},
       kT0);
  Sock listener(12, 8080);
  listener.netns_cookie = 1001;
  m.Apply(StateChange(listener, S::kClose, S::kListen, kT0));
  m.Apply(SynackRetrans(listener, 50000, kT0 + kSec));
  // The same tuple as `est` in the new namespace: must not be taken for it.
  Sock reborn(0, 40010, 443);
  std::vector<DiagSocket> dump = {Diag(reborn, 900, S::kCloseWait)};
  ASSERT_EQ(m.stats().netns_purges, 0u);

  m.BeginReconcile();
  Mirror::ReconcileStats stats =
      ReconcileOne(m, kNetns, dump, false, /*netns_cookie=*/1002);

  EXPECT_EQ(m.stats().netns_purges, 1u);
  for (uint64_t id : {10, 11, 12}) EXPECT_EQ(m.Find(id), nullptr) << id;
  ASSERT_NE(m.Find(900), nullptr);
  EXPECT_EQ(m.Find(900)->state, S::kCloseWait);
  EXPECT_EQ(stats.added, 1u);
  EXPECT_EQ(stats.changed, 0u);
  ExpectCounts(m, kNetns, {{S::kCloseWait, 1}});
  EXPECT_EQ(TimewaitIn(m, kNetns), 0u);
  EXPECT_EQ(SynacksOf(m, kNetns, 8080), 0u);
  EXPECT_EQ(m.stats().tracked, 1u);
  // The new cookie is now the known one: its events purge nothing.
  Sock next(901, 40020, 443);
  next.netns_cookie = 1002;
  m.Apply(StateChange(next, S::kClose, S::kSynSent, kNow + kSec));
  EXPECT_EQ(m.stats().netns_purges, 1u);
  EXPECT_NE(m.Find(900), nullptr);
}

TEST(MirrorReconcileTest, KnownNetnsCookieInADumpPurgesNothing) {
  Mirror m(kBigTable);
  Sock est(10, 40010, 443);
  est.netns_cookie = 1001;
  Walk(m, est, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  std::vector<DiagSocket> dump = {Diag(est, 10, S::kEstablished)};
  m.BeginReconcile();
  ReconcileOne(m, kNetns, dump, false, /*netns_cookie=*/1001);
  m.BeginReconcile();
  ReconcileOne(m, kNetns, dump, false, /*netns_cookie=*/0);  // unknown
  EXPECT_EQ(m.stats().netns_purges, 0u);
  EXPECT_NE(m.Find(10), nullptr);
}

// A namespace purge also forgets the dead namespace's request sockets,
// which are counted in bulk rather than tracked.
TEST(MirrorReconcileTest, NetnsPurgeByEventForgetsRequestSockets) {
  Mirror m(kBigTable);
  SeedFixture f;
  SeedFrom(m, f);  // namespace cookie 1001, 3 request sockets
  m.SetRequestSockets(kNetns, 4);

  Sock fresh(500, 40500, 443);
  fresh.netns_cookie = 1003;
  m.Apply(StateChange(fresh, S::kClose, S::kSynSent, kNow + kSec));

  EXPECT_EQ(m.stats().netns_purges, 1u);
  ExpectCounts(m, kNetns, {{S::kSynSent, 1}});
}

TEST(MirrorReconcileTest, DropNamespaceForgetsItsSocketsAndSeries) {
  Mirror m(kBigTable);
  Sock cw(10, 8080, 50010);
  cw.netns_cookie = 1001;
  Walk(m, cw, {S::kListen, S::kSynRecv, S::kEstablished, S::kCloseWait}, kT0);
  Sock client(11, 40011, 443);
  client.netns_cookie = 1001;
  Walk(m, client, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  Sock orphan(12, 40012, 80);
  orphan.netns_cookie = 1001;
  Walk(m, orphan,
       {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2,
        S::kClose},
       kT0);
  Sock listener(13, 8080);
  listener.netns_cookie = 1001;
  m.Apply(StateChange(listener, S::kClose, S::kListen, kT0));
  m.Apply(SynackRetrans(listener, 50011, kT0 + kSec));
  m.SetRequestSockets(kNetns, 2);
  m.SetFinTimeout(kNetns, 10 * kSec);

  Sock survivor(20, 40020, 443, kOtherNetns);
  Walk(m, survivor, {S::kClose, S::kSynSent, S::kEstablished, S::kCloseWait},
       kT0);
  Sock other_listener(21, 8080, 0, kOtherNetns);
  m.Apply(SynackRetrans(other_listener, 50012, kT0 + kSec));
  ASSERT_EQ(m.destinations().size(), 3u);
  ASSERT_EQ(CloseWaitIds(m), (std::set<uint64_t>{10, 20}));

  m.DropNamespace(kNetns);

  EXPECT_EQ(m.counts().count(kNetns), 0u);
  EXPECT_EQ(m.TimewaitSockets().count(kNetns), 0u);
  EXPECT_EQ(Tracked(m), (std::map<uint64_t, uint32_t>{{20, kOtherNetns}}));
  EXPECT_EQ(CloseWaitIds(m), std::set<uint64_t>{20});
  ASSERT_EQ(m.destinations().size(), 1u);
  EXPECT_EQ(m.destinations().begin()->first.netns, kOtherNetns);
  EXPECT_EQ(SynacksOf(m, kNetns, 8080), 0u);
  EXPECT_EQ(SynacksOf(m, kOtherNetns, 8080), 1u);
  ExpectCounts(m, kOtherNetns, {{S::kCloseWait, 1}});
  m.Expire(kT0 + 3600 * kSec);  // stale expiries are harmless
  EXPECT_EQ(m.stats().tracked, 1u);

  // Its cookie and tcp_fin_timeout are forgotten too: a namespace that
  // later gets the inode is not a purge, and ages orphans by the default.
  Sock next(30, 40030, 80);
  next.netns_cookie = 7007;
  const uint64_t t = kT0 + 4000 * kSec;
  Walk(m, next,
       {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2,
        S::kClose},
       t);
  const uint64_t handoff = t + 4 * kSec;
  EXPECT_EQ(m.stats().netns_purges, 0u);
  m.Expire(handoff + 60 * kSec - 1);
  EXPECT_NE(m.Find(30), nullptr);
  m.Expire(handoff + 60 * kSec);
  EXPECT_EQ(m.Find(30), nullptr);
}

// --- Per-destination ephemeral-port books ------------------------------------

TEST(MirrorDestinationsTest, ClientCountedOnceWhenItsPortIsKnown) {
  Mirror m(kBigTable);
  Sock a(10, 0, 80);
  m.Apply(StateChange(a, S::kClose, S::kSynSent, kT0));
  // The port is not chosen yet: nothing held.
  EXPECT_TRUE(m.destinations().empty());
  a.sport = 40000;
  m.Apply(StateChange(a, S::kSynSent, S::kEstablished, kT0 + kSec));
  EXPECT_EQ(DestinationCount(m, kNetns, a), 1u);
  EXPECT_EQ(m.destinations().size(), 1u);
  // Later events do not count it again.
  Walk(m, a, {S::kEstablished, S::kFinWait1, S::kFinWait2}, kT0 + 2 * kSec);
  EXPECT_EQ(DestinationCount(m, kNetns, a), 1u);
  ASSERT_NE(m.Find(10), nullptr);
  EXPECT_NE(m.Find(10)->flags & tcpstated::kEntryDestCounted, 0);

  // A second connection to the same destination.
  Sock b(11, 40001, 80);
  Walk(m, b, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  EXPECT_EQ(DestinationCount(m, kNetns, a), 2u);
  // Another destination port is another key.
  Sock c(12, 40002, 443);
  Walk(m, c, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  EXPECT_EQ(DestinationCount(m, kNetns, c), 1u);
  EXPECT_EQ(m.destinations().size(), 2u);

  // Closing without TIME_WAIT (passive close, reset) gives the port back.
  Walk(m, b, {S::kEstablished, S::kCloseWait, S::kLastAck, S::kClose},
       kT0 + 10 * kSec);
  EXPECT_EQ(DestinationCount(m, kNetns, a), 1u);
  m.Apply(Reset(c, Source::kReceiveReset, S::kEstablished, kT0 + 10 * kSec));
  m.Apply(StateChange(c, S::kEstablished, S::kClose, kT0 + 10 * kSec));
  EXPECT_EQ(DestinationCount(m, kNetns, c), 0u);
  EXPECT_EQ(m.destinations().size(), 1u);  // emptied keys are erased
}

TEST(MirrorDestinationsTest, TimewaitSocketHoldsItsPortUntilItExpires) {
  for (bool peer_fin : {true, false}) {
    SCOPED_TRACE(peer_fin ? "TIME_WAIT substate" : "FIN_WAIT2 substate");
    Mirror m(kBigTable);
    Sock a(10, 0, 80);
    m.Apply(StateChange(a, S::kClose, S::kSynSent, kT0));
    a.sport = 40000;
    Walk(m, a, {S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2}, kT0);
    Event close = StateChange(a, S::kFinWait2, S::kClose, kT0 + 10 * kSec);
    close.peer_fin = peer_fin;
    m.Apply(close);
    ASSERT_NE(m.Find(10), nullptr);
    EXPECT_EQ(DestinationCount(m, kNetns, a), 1u);

    m.Expire(kT0 + 70 * kSec - 1);
    EXPECT_EQ(DestinationCount(m, kNetns, a), 1u);
    m.Expire(kT0 + 70 * kSec);
    EXPECT_EQ(m.Find(10), nullptr);
    EXPECT_EQ(DestinationCount(m, kNetns, a), 0u);
    EXPECT_TRUE(m.destinations().empty());
  }
}

TEST(MirrorDestinationsTest, ServerChildrenAndListenersAreNeverCounted) {
  Mirror m(kBigTable);
  Sock listener(10, 8080);
  listener.daddr = Address{};
  m.Apply(StateChange(listener, S::kClose, S::kListen, kT0));
  // Before 6.15 a child's first event has dport 0; later ones complete it.
  Sock child(11, 8080, 0);
  m.Apply(StateChange(child, S::kListen, S::kSynRecv, kT0 + kSec));
  child.dport = 50000;
  Walk(m, child, {S::kSynRecv, S::kEstablished, S::kFinWait1, S::kFinWait2},
       kT0 + 2 * kSec);
  ASSERT_NE(m.Find(11), nullptr);
  EXPECT_EQ(m.Find(11)->role, Role::kServer);
  EXPECT_TRUE(m.destinations().empty());
  // Even when the server closes actively and leaves a timewait socket.
  m.Apply(WithPeerFin(
      StateChange(child, S::kFinWait2, S::kClose, kT0 + 10 * kSec)));
  ASSERT_NE(m.Find(11), nullptr);
  EXPECT_TRUE(m.destinations().empty());
  // Seeded ones likewise: a listener and a child on its port.
  Sock seeded_listener(0, 9090);
  seeded_listener.daddr = Address{};
  Sock seeded_child(0, 9090, 50001);
  std::vector<DiagSocket> dump = {Diag(seeded_listener, 20, S::kListen),
                                  Diag(seeded_child, 21, S::kEstablished)};
  ReconcileOne(m, kOtherNetns, dump, /*seeding=*/true);
  ASSERT_NE(m.Find(21), nullptr);
  EXPECT_TRUE(m.destinations().empty());
}

TEST(MirrorDestinationsTest, AdoptedSocketOnAListenersPortIsNotCounted) {
  Mirror m(kBigTable);
  Sock listener(10, 8080);
  m.Apply(StateChange(listener, S::kClose, S::kListen, kT0));
  // Sockets that predate the daemon: first seen mid-life, role unknown.
  Sock on_listener(11, 8080, 50000);
  m.Apply(StateChange(on_listener, S::kEstablished, S::kCloseWait, kT0));
  ASSERT_NE(m.Find(11), nullptr);
  EXPECT_EQ(m.Find(11)->role, Role::kUnknown);
  EXPECT_TRUE(m.destinations().empty());
  // Off any listener's port, an unknown socket holds an ephemeral port.
  Sock elsewhere(12, 45000, 5432);
  m.Apply(StateChange(elsewhere, S::kEstablished, S::kCloseWait, kT0));
  ASSERT_NE(m.Find(12), nullptr);
  EXPECT_EQ(m.Find(12)->role, Role::kUnknown);
  EXPECT_EQ(DestinationCount(m, kNetns, elsewhere), 1u);
  EXPECT_EQ(m.destinations().size(), 1u);
}

TEST(MirrorDestinationsTest, SeededClientsAreCountedAndReleased) {
  Mirror m(kBigTable);
  SeedFixture f;
  SeedFrom(m, f);
  // Clients: 3 (to :443), 5 and 6 (timewait, to :80); children of the
  // listener on 8080 are not.
  EXPECT_EQ(DestinationCount(m, kNetns, f.client), 1u);
  EXPECT_EQ(DestinationCount(m, kNetns, f.time_wait), 2u);
  EXPECT_EQ(m.destinations().size(), 2u);
  m.Expire(kNow + 30 * kSec);  // both timewait sockets are gone
  EXPECT_EQ(DestinationCount(m, kNetns, f.time_wait), 0u);
  // A reconcile that no longer finds the client releases it.
  std::vector<DiagSocket> dump = {f.dump[0], f.dump[1], f.dump[3]};
  m.BeginReconcile();
  ReconcileOne(m, kNetns, dump, false, kSeedCookie, kSeedFinTimeoutS,
               kNow + 100 * kSec, kNow + 101 * kSec);
  EXPECT_EQ(m.Find(3), nullptr);
  EXPECT_TRUE(m.destinations().empty());
}

// --- CLOSE_WAIT index --------------------------------------------------------

TEST(MirrorCloseWaitTest, VisitsExactlyTheCloseWaitSockets) {
  Mirror m(kBigTable);
  EXPECT_TRUE(CloseWaitIds(m).empty());
  Sock a(10, 8080, 50010);
  Walk(m, a, {S::kListen, S::kSynRecv, S::kEstablished, S::kCloseWait}, kT0);
  Sock b(11, 40011, 443);
  Walk(m, b, {S::kClose, S::kSynSent, S::kEstablished, S::kCloseWait}, kT0);
  Sock c(12, 40012, 443);
  Walk(m, c, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  Sock d(13, 40013, 443, kOtherNetns);
  Walk(m, d, {S::kClose, S::kSynSent, S::kEstablished, S::kCloseWait}, kT0);
  // Straight from SYN_RECV.
  Sock e(14, 8080, 50014);
  Walk(m, e, {S::kListen, S::kSynRecv, S::kCloseWait}, kT0);
  EXPECT_EQ(CloseWaitIds(m), (std::set<uint64_t>{10, 11, 13, 14}));

  // Out: to LAST_ACK, and to CLOSE (a reset or abort).
  m.Apply(StateChange(a, S::kCloseWait, S::kLastAck, kT0 + 10 * kSec));
  m.Apply(StateChange(b, S::kCloseWait, S::kClose, kT0 + 10 * kSec));
  EXPECT_EQ(CloseWaitIds(m), (std::set<uint64_t>{13, 14}));
  // A lost ESTABLISHED -> CLOSE_WAIT: the resync passes through CLOSE_WAIT
  // and must leave no trace in the index.
  m.Apply(StateChange(c, S::kCloseWait, S::kLastAck, kT0 + 10 * kSec));
  EXPECT_EQ(CloseWaitIds(m), (std::set<uint64_t>{13, 14}));
  m.Apply(StateChange(c, S::kLastAck, S::kClose, kT0 + 11 * kSec));
  EXPECT_EQ(CountOf(m, kNetns, S::kCloseWait), 1);
  EXPECT_EQ(CountOf(m, kOtherNetns, S::kCloseWait), 1);
}

TEST(MirrorCloseWaitTest, FollowsReconcileCorrections) {
  Mirror m(kBigTable);
  Sock stays(10, 40010, 443);
  Walk(m, stays, {S::kClose, S::kSynSent, S::kEstablished, S::kCloseWait}, kT0);
  Sock moved(11, 40011, 443);  // kernel: LAST_ACK
  Walk(m, moved, {S::kClose, S::kSynSent, S::kEstablished, S::kCloseWait}, kT0);
  Sock gone(12, 40012, 443);  // kernel: no longer there
  Walk(m, gone, {S::kClose, S::kSynSent, S::kEstablished, S::kCloseWait}, kT0);
  Sock peer_fin_lost(13, 40013, 443);  // kernel: CLOSE_WAIT
  Walk(m, peer_fin_lost, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  Sock unknown(0, 40014, 443);  // kernel: CLOSE_WAIT, never seen
  ASSERT_EQ(CloseWaitIds(m), (std::set<uint64_t>{10, 11, 12}));
  std::vector<DiagSocket> dump = {
      Diag(stays, 10, S::kCloseWait), Diag(moved, 11, S::kLastAck),
      Diag(peer_fin_lost, 13, S::kCloseWait), Diag(unknown, 14, S::kCloseWait)};

  m.BeginReconcile();
  Mirror::ReconcileStats stats = ReconcileOne(m, kNetns, dump, false);

  ExpectCorrections(stats, {{S::kLastAck, 1}, {S::kCloseWait, 3}});
  EXPECT_EQ(CloseWaitIds(m), (std::set<uint64_t>{10, 13, 14}));
  ExpectCounts(m, kNetns, {{S::kCloseWait, 3}, {S::kLastAck, 1}});
}

// --- SYN-ACK retransmits -----------------------------------------------------

TEST(MirrorSynackTest, RetransmitsAreCountedPerListener) {
  Mirror m(kBigTable);
  Sock l8080(10, 8080);
  Sock l9090(11, 9090);
  Sock other(12, 8080, 0, kOtherNetns);
  for (uint16_t client : {50000, 50001, 50000}) {
    m.Apply(SynackRetrans(l8080, client, kT0));
  }
  m.Apply(SynackRetrans(l9090, 50002, kT0));
  m.Apply(SynackRetrans(other, 50003, kT0));

  EXPECT_EQ(SynacksOf(m, kNetns, 8080), 3u);
  EXPECT_EQ(SynacksOf(m, kNetns, 9090), 1u);
  EXPECT_EQ(SynacksOf(m, kOtherNetns, 8080), 1u);
  EXPECT_EQ(m.synack_retransmits().size(), 3u);
  EXPECT_EQ(Mirror::ListenerKeyOf(kNetns, 8080),
            (tcpstated::ListenerKey{kNetns, 8080}));
  EXPECT_NE(Mirror::ListenerKeyOf(kNetns, 8080),
            Mirror::ListenerKeyOf(kOtherNetns, 8080));
  EXPECT_EQ(m.stats().events[static_cast<size_t>(Source::kSynackRetrans)], 5u);
  // They track no socket and change no state count.
  EXPECT_EQ(m.stats().tracked, 0u);
  ExpectCounts(m, kNetns, {});
}

TEST(MirrorSynackTest, RetransmitsArePurgedWithTheirNamespace) {
  Mirror m(kBigTable);
  Sock old(10, 8080);
  old.netns_cookie = 1001;
  Sock other(11, 8080, 0, kOtherNetns);
  other.netns_cookie = 2002;
  m.Apply(SynackRetrans(old, 50000, kT0));
  m.Apply(SynackRetrans(old, 50001, kT0));
  m.Apply(SynackRetrans(other, 50002, kT0));
  ASSERT_EQ(SynacksOf(m, kNetns, 8080), 2u);

  // The inode comes back with a new namespace, whose listener retransmits.
  Sock reborn(12, 8080);
  reborn.netns_cookie = 1003;
  m.Apply(SynackRetrans(reborn, 50003, kT0 + kSec));
  EXPECT_EQ(m.stats().netns_purges, 1u);
  EXPECT_EQ(SynacksOf(m, kNetns, 8080), 1u);
  EXPECT_EQ(SynacksOf(m, kOtherNetns, 8080), 1u);

  m.DropNamespace(kOtherNetns);
  EXPECT_EQ(SynacksOf(m, kOtherNetns, 8080), 0u);
  EXPECT_EQ(SynacksOf(m, kNetns, 8080), 1u);
}

// --- Owners ------------------------------------------------------------------

TEST(MirrorOwnerTest, SetOwnerFillsOnlyUnownedSockets) {
  Mirror m(kBigTable);
  SeedFixture f;
  SeedFrom(m, f);
  const SocketEntry* cw = m.Find(4);
  ASSERT_NE(cw, nullptr);
  EXPECT_EQ(m.OwnerOf(*cw), nullptr);

  Owner java;
  java.tgid = 4242;
  java.cgroup_id = 99;
  java.comm = "java";
  m.SetOwner(4, java);
  const Owner* owner = m.OwnerOf(*m.Find(4));
  ASSERT_NE(owner, nullptr);
  EXPECT_EQ(owner->tgid, 4242u);
  EXPECT_EQ(owner->comm, "java");
  EXPECT_EQ(owner->cgroup_id, 99u);

  // Already owned: a second resolution is ignored.
  Owner other;
  other.tgid = 1;
  other.comm = "init";
  m.SetOwner(4, other);
  owner = m.OwnerOf(*m.Find(4));
  ASSERT_NE(owner, nullptr);
  EXPECT_EQ(owner->tgid, 4242u);
  EXPECT_EQ(owner->comm, "java");

  // Owned from its events (connect in its process): ignored too.
  Sock curl(30, 0, 443);
  m.Apply(
      InProcess(StateChange(curl, S::kClose, S::kSynSent, kNow), 777, "curl"));
  m.SetOwner(30, other);
  owner = m.OwnerOf(*m.Find(30));
  ASSERT_NE(owner, nullptr);
  EXPECT_EQ(owner->tgid, 777u);
  EXPECT_EQ(owner->comm, "curl");

  // Gone: nothing happens.
  m.SetOwner(12345, java);
  EXPECT_EQ(m.Find(12345), nullptr);
  EXPECT_EQ(m.stats().tracked, 7u);
  // Other seeded sockets keep no owner.
  EXPECT_EQ(m.OwnerOf(*m.Find(2)), nullptr);
}

TEST(MirrorOwnerTest, OwnerSlotsAreNotSharedBetweenSockets) {
  Mirror m(kBigTable);
  SeedFixture f;
  SeedFrom(m, f);
  Owner a;
  a.tgid = 10;
  a.comm = "a";
  Owner b;
  b.tgid = 20;
  b.comm = "b";
  m.SetOwner(2, a);
  m.SetOwner(4, b);
  // Releasing one (the socket closes) must not disturb the other.
  Sock child = f.child;
  Walk(m, child, {S::kEstablished, S::kCloseWait, S::kLastAck, S::kClose},
       kNow + kSec);
  ASSERT_EQ(m.Find(2), nullptr);
  Owner c;
  c.tgid = 30;
  c.comm = "c";
  m.SetOwner(3, c);
  ASSERT_NE(m.OwnerOf(*m.Find(4)), nullptr);
  EXPECT_EQ(m.OwnerOf(*m.Find(4))->tgid, 20u);
  EXPECT_EQ(m.OwnerOf(*m.Find(4))->comm, "b");
  ASSERT_NE(m.OwnerOf(*m.Find(3)), nullptr);
  EXPECT_EQ(m.OwnerOf(*m.Find(3))->tgid, 30u);
}

// --- Timewait sockets per namespace ------------------------------------------

TEST(MirrorTimewaitTest, CountsBothSubstatesPerNamespace) {
  Mirror m(kBigTable);
  // Inferred from events: one per substate (handed off at kT0 + 5 s and
  // kT0 + 4 s), and a full FIN_WAIT2 socket, not handed off, that does not
  // count.
  Sock tw(10, 40010, 80);
  Walk(m, tw,
       {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2},
       kT0);
  m.Apply(
      WithPeerFin(StateChange(tw, S::kFinWait2, S::kClose, kT0 + 5 * kSec)));
  Sock orphan(11, 40011, 80);
  Walk(m, orphan,
       {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2,
        S::kClose},
       kT0);
  Sock full(12, 40012, 80);
  Walk(m, full,
       {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2},
       kT0);
  // Elsewhere: one TIME_WAIT after a simultaneous close, and a namespace
  // with none.
  Sock other_tw(20, 40020, 80, kOtherNetns);
  Walk(m, other_tw,
       {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kClosing,
        S::kClose},
       kT0);
  Sock third(30, 40030, 80, kThirdNetns);
  Walk(m, third, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  // A dump agrees and adds one timewait socket of each substate.
  Sock seeded_tw(0, 40013, 80);
  Sock seeded_orphan(0, 40014, 80);
  std::vector<DiagSocket> dump = {
      Timewait(tw, 10, S::kTimeWait, 55000),
      Timewait(orphan, 11, S::kFinWait2, 54000), Diag(full, 12, S::kFinWait2),
      Timewait(seeded_tw, 13, S::kTimeWait, 40000),
      Timewait(seeded_orphan, 14, S::kFinWait2, 40000)};
  const uint64_t t = kT0 + 10 * kSec;
  m.BeginReconcile();
  Mirror::ReconcileStats stats =
      ReconcileOne(m, kNetns, dump, false, 0, 60, t, t);
  ExpectCorrections(stats, {{S::kTimeWait, 1}, {S::kFinWait2, 1}});
  EXPECT_EQ(stats.added, 2u);
  EXPECT_EQ(stats.changed, 0u);

  ExpectCounts(m, kNetns, {{S::kTimeWait, 2}, {S::kFinWait2, 3}});
  EXPECT_EQ(m.TimewaitSockets(),
            (std::unordered_map<uint32_t, uint64_t>{
                {kNetns, 4}, {kOtherNetns, 1}, {kThirdNetns, 0}}));

  // They leave the books as they expire.
  m.Expire(t + 40 * kSec);  // the seeded pair
  EXPECT_EQ(TimewaitIn(m, kNetns), 2u);
  m.Expire(kT0 + 64 * kSec);  // the inferred orphan
  EXPECT_EQ(TimewaitIn(m, kNetns), 1u);
  m.Expire(kT0 + 65 * kSec);  // the inferred TIME_WAIT
  EXPECT_EQ(TimewaitIn(m, kNetns), 0u);
  ExpectCounts(m, kNetns, {{S::kFinWait2, 1}});  // the full socket
  EXPECT_EQ(TimewaitIn(m, kOtherNetns), 0u);
}

}  // namespace

namespace {

// At net.ipv4.tcp_max_tw_buckets the kernel makes no timewait socket (it
// counts TCPTimeWaitOverflow instead): hand-offs beyond the limit are gone.
TEST(MirrorTimewaitLimit, HandOffsBeyondTcpMaxTwBucketsAreNotTimewait) {
  Mirror m(kBigTable);
  m.SetMaxTimewait(kNetns, 2);
  uint64_t first_closed = 0;
  for (uint64_t id = 1; id <= 3; ++id) {
    Sock s(id, static_cast<uint16_t>(40000 + id), 80);
    uint64_t closed = Walk(m, s,
                           {S::kClose, S::kSynSent, S::kEstablished,
                            S::kFinWait1, S::kClosing, S::kClose},
                           kT0 + id);
    if (id == 1) first_closed = closed;
  }
  ExpectCounts(m, kNetns, {{S::kTimeWait, 2}});
  EXPECT_EQ(TimewaitIn(m, kNetns), 2u);
  EXPECT_EQ(m.Find(3), nullptr);
  // One expires: room for the next hand-off.
  m.Expire(first_closed + tcpstated::kTimeWaitNs);
  EXPECT_EQ(TimewaitIn(m, kNetns), 1u);
  Sock next(4, 40004, 80);
  Walk(m, next,
       {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kClosing,
        S::kClose},
       first_closed + tcpstated::kTimeWaitNs + 10);
  EXPECT_NE(m.Find(4), nullptr);
  EXPECT_EQ(TimewaitIn(m, kNetns), 2u);
}

}  // namespace

// --- Reconciling in slices -------------------------------------------------

// A mirror that disagrees with its dump in every way a reconcile handles:
// sockets the kernel no longer has, sockets the mirror lacks, states that
// differ, classic-tracepoint ids matched by 4-tuple, timewait sockets and
// request sockets.
struct SliceFixture {
  std::vector<DiagSocket> dump;

  void Build(Mirror& m) {
    dump.clear();
    for (uint64_t i = 1; i <= 300; ++i) {
      Sock s(i, static_cast<uint16_t>(40000 + i), 443);
      switch (i % 6) {
        case 0:  // gone from the kernel
          Walk(m, s, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
          break;
        case 1:  // agrees
          Walk(m, s, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
          dump.push_back(Diag(s, i, S::kEstablished));
          break;
        case 2:  // differs
          Walk(m, s, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
          dump.push_back(Diag(s, i, S::kCloseWait));
          break;
        case 3:  // lost: only the kernel has it
          dump.push_back(Diag(s, i, S::kEstablished));
          break;
        case 4: {  // classic-tracepoint id, found by its tuple
          Sock incarnation((5ULL << 48) | i, s.sport, s.dport);
          Walk(m, incarnation, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
          dump.push_back(Diag(s, 100000 + i, S::kFinWait1));
          break;
        }
        case 5:  // timewait only the kernel still has
          dump.push_back(Timewait(s, i, S::kTimeWait, 20000));
          break;
      }
    }
    dump.push_back(Request(900, 8080, 50000));
  }
};

// Starts a sliced reconcile of kNetns against `dump` (which must outlive it).
void StartOne(Mirror& m, const std::vector<DiagSocket>& dump, bool seeding) {
  Mirror::NamespaceDump d;
  d.netns = kNetns;
  d.sockets = &dump;
  m.StartReconcile({d}, kDumpStart, kNow, seeding);
}

Mirror::ReconcileStats ReconcileInSlices(Mirror& m,
                                         const std::vector<DiagSocket>& dump,
                                         size_t budget, size_t* slices) {
  StartOne(m, dump, /*seeding=*/false);
  *slices = 1;
  while (!m.ContinueReconcile(budget)) ++*slices;
  return m.FinishReconcile();
}

TEST(MirrorSlicedReconcileTest, SmallestSlicesEndWhereOneReconcileEnds) {
  Mirror whole(kBigTable), sliced(kBigTable);
  SliceFixture f;
  f.Build(whole);
  f.Build(sliced);

  whole.BeginReconcile();
  Mirror::ReconcileStats expected = ReconcileOne(whole, kNetns, f.dump, false);
  sliced.BeginReconcile();
  size_t slices = 0;
  Mirror::ReconcileStats got = ReconcileInSlices(sliced, f.dump, 1, &slices);

  EXPECT_GT(slices, f.dump.size());  // one unit per slice, every pass
  EXPECT_EQ(got.corrections, expected.corrections);
  EXPECT_EQ(got.added, expected.added);
  EXPECT_EQ(got.changed, expected.changed);
  EXPECT_EQ(got.removed, expected.removed);
  EXPECT_EQ(expected.removed, 50u);
  EXPECT_EQ(expected.added, 100u);
  EXPECT_EQ(expected.changed, 100u);
  EXPECT_EQ(CountsIn(sliced, kNetns), CountsIn(whole, kNetns));
  EXPECT_EQ(Tracked(sliced), Tracked(whole));
  EXPECT_EQ(TimewaitIn(sliced, kNetns), 50u);
}

TEST(MirrorSlicedReconcileTest, EventsBetweenSlicesAreNewerThanTheDump) {
  Mirror m(kBigTable);
  Sock moved(10, 40010, 443), closed(11, 40011, 443), opened(12, 40012, 443);
  Sock lost(13, 40013, 443);
  Walk(m, moved, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  Walk(m, closed, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  std::vector<DiagSocket> dump = {Diag(moved, 10, S::kEstablished),
                                  Diag(lost, 13, S::kEstablished),
                                  Diag(closed, 11, S::kEstablished)};
  m.BeginReconcile();
  StartOne(m, dump, /*seeding=*/false);
  ASSERT_FALSE(m.ContinueReconcile(1));

  // Between slices, as the ring consumer applies them.
  m.Apply(StateChange(moved, S::kEstablished, S::kCloseWait, kNow + 1));
  Walk(m, closed, {S::kEstablished, S::kFinWait1, S::kClose}, kNow + 2);
  Walk(m, opened, {S::kClose, S::kSynSent}, kNow + 3);
  Walk(m, lost, {S::kEstablished, S::kCloseWait}, kNow + 4);

  while (!m.ContinueReconcile(1)) {
  }
  Mirror::ReconcileStats stats = m.FinishReconcile();

  ExpectCorrections(stats, {});
  ASSERT_NE(m.Find(10), nullptr);
  EXPECT_EQ(m.Find(10)->state, S::kCloseWait);
  EXPECT_EQ(m.Find(11), nullptr);  // not resurrected from the older dump
  EXPECT_NE(m.Find(12), nullptr);  // not in the dump, but newer
  ASSERT_NE(m.Find(13), nullptr);  // adopted by its event, kept
  EXPECT_EQ(m.Find(13)->state, S::kCloseWait);
  ExpectCounts(m, kNetns, {{S::kCloseWait, 2}, {S::kSynSent, 1}});
}

TEST(MirrorSlicedReconcileTest, SweepStartsOverWhenTheTableGrowsMidWay) {
  Mirror m(100000);
  // 200 sockets the kernel no longer has, in a table of 1024 slots.
  for (uint64_t i = 1; i <= 200; ++i) {
    Walk(m, Sock(i, static_cast<uint16_t>(40000 + i), 443),
         {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  }
  std::vector<DiagSocket> dump;
  m.BeginReconcile();
  StartOne(m, dump, /*seeding=*/false);
  ASSERT_FALSE(m.ContinueReconcile(500));  // half-way through the slots

  // Enough new connections to double the table: every slot moves.
  for (uint64_t i = 1000; i < 3000; ++i) {
    Walk(m, Sock(i, static_cast<uint16_t>(i), 80), {S::kClose, S::kSynSent},
         kNow + i);
  }
  while (!m.ContinueReconcile(500)) {
  }
  Mirror::ReconcileStats stats = m.FinishReconcile();

  EXPECT_EQ(stats.removed, 200u);
  ExpectCounts(m, kNetns, {{S::kSynSent, 2000}});
  EXPECT_EQ(m.stats().tracked, 2000u);
}

TEST(MirrorSlicedReconcileTest, FinishWithoutStartIsEmpty) {
  Mirror m(kBigTable);
  EXPECT_TRUE(m.ContinueReconcile(1));
  Mirror::ReconcileStats stats = m.FinishReconcile();
  EXPECT_EQ(stats.added + stats.changed + stats.removed, 0u);
}

TEST(MirrorReconcileTest, TimewaitSocketWhoseTimerIsDueIsNotAddedBack) {
  Mirror m(kBigTable);
  Sock due(20, 40020, 80), live(21, 40021, 80);
  std::vector<DiagSocket> dump = {Timewait(due, 20, S::kTimeWait, 0),
                                  Timewait(live, 21, S::kTimeWait, 1)};

  m.BeginReconcile();
  Mirror::ReconcileStats stats = ReconcileOne(m, kNetns, dump, false);

  ExpectCorrections(stats, {{S::kTimeWait, 1}});
  EXPECT_EQ(stats.added, 1u);
  EXPECT_EQ(m.Find(20), nullptr);
  EXPECT_NE(m.Find(21), nullptr);
  ExpectCounts(m, kNetns, {{S::kTimeWait, 1}});
}

TEST(MirrorSlicedReconcileTest, SocketClosedBeforeItsSeedIsNotSeeded) {
  // At start-up the mirror knows nothing; a socket in the dump closes while
  // the seeding is paused between slices, before it was added.
  Mirror m(kBigTable);
  Sock closed(30, 40030, 443), kept(31, 40031, 443);
  std::vector<DiagSocket> dump = {Diag(kept, 31, S::kEstablished),
                                  Diag(closed, 30, S::kEstablished)};
  m.BeginReconcile();
  StartOne(m, dump, /*seeding=*/true);
  ASSERT_FALSE(m.ContinueReconcile(1));

  m.Apply(StateChange(closed, S::kEstablished, S::kClose, kNow + 1));

  while (!m.ContinueReconcile(1)) {
  }
  Mirror::ReconcileStats stats = m.FinishReconcile();

  EXPECT_EQ(stats.added, 1u);
  EXPECT_EQ(m.Find(30), nullptr);
  EXPECT_NE(m.Find(31), nullptr);
  ExpectCounts(m, kNetns, {{S::kEstablished, 1}});
}
