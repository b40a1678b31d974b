// Unit tests of tcpstated::Mirror: sequences of decoded events, as the kernel
// emits them (shared/reference/linux-tcp-state-transitions.md), against the
// per-namespace counts, invalid transitions, durations, stats, roles, owners
// and tuples the mirror keeps.

#include "tcpstated/mirror.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "mirror_test_events.h"
#include "tcpstated/event.h"
#include "tcpstated/tcp_state.h"

namespace {

using tcpstated::Address;
using tcpstated::Event;
using tcpstated::Mirror;
using tcpstated::Role;
using tcpstated::SocketEntry;
using tcpstated::Source;
using tcpstated::StateIndex;
using tcpstated::test::CountOf;
using tcpstated::test::CountsIn;
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
using tcpstated::test::Sock;
using tcpstated::test::StateChange;
using tcpstated::test::Walk;
using tcpstated::test::WithPeerFin;
using S = tcpstated::TcpState;

int64_t Total(const Mirror& m, uint32_t netns) {
  int64_t total = 0;
  for (int64_t c : CountsIn(m, netns)) total += c;
  return total;
}

uint64_t InvalidTotal(const Mirror& m) {
  uint64_t total = 0;
  for (const auto& row : m.invalid_transitions()) {
    for (uint64_t c : row) total += c;
  }
  return total;
}

// The seeds' client life 7->2->1->4->5->7, one second a step from `ts`; the
// last event carries the peer's FIN or not. Returns the time of the CLOSE.
uint64_t ActiveClose(Mirror& m, const Sock& s, uint64_t ts, bool peer_fin) {
  uint64_t last = Walk(
      m, s,
      {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2},
      ts);
  Event close = StateChange(s, S::kFinWait2, S::kClose, last + kSec);
  close.peer_fin = peer_fin;
  m.Apply(close);
  return last + kSec;
}

// --- Typical lives ---------------------------------------------------------

TEST(MirrorTest, ClientPathEndsInTimewaitSocketInFinWait2Substate) {
  Mirror m(kBigTable);
  Sock s(11, 0, 443);
  // connect(): before the port is chosen, in the owner's process.
  m.Apply(
      InProcess(StateChange(s, S::kClose, S::kSynSent, kT0), 4242, "curl", 77));
  s.sport = 40001;
  m.Apply(StateChange(s, S::kSynSent, S::kEstablished, kT0 + kSec));
  ExpectCounts(m, kNetns, {{S::kEstablished, 1}});
  m.Apply(
      InProcess(StateChange(s, S::kEstablished, S::kFinWait1, kT0 + 2 * kSec),
                4242, "curl", 77));
  m.Apply(StateChange(s, S::kFinWait1, S::kFinWait2, kT0 + 3 * kSec));
  const uint64_t close_ts = kT0 + 4 * kSec;
  m.Apply(StateChange(s, S::kFinWait2, S::kClose, close_ts));

  // No peer FIN: an orphan handed to a timewait socket in the FIN_WAIT2
  // substate, which mirror.h reports as fin_wait2 (as ss does).
  ExpectCounts(m, kNetns, {{S::kFinWait2, 1}});
  EXPECT_EQ(InvalidTotal(m), 0u);
  EXPECT_EQ(m.stats().tracked, 1u);
  EXPECT_EQ(m.stats().resyncs, 0u);
  const SocketEntry* entry = m.Find(11);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->state, S::kFinWait2);
  EXPECT_TRUE(IsTimewaitSock(*entry));
  EXPECT_TRUE(InFinWait2Substate(*entry));
  EXPECT_EQ(entry->role, Role::kClient);
  // Its clock is the kernel's timer: it starts at the hand-off.
  EXPECT_EQ(entry->entered_ns, close_ts);
  EXPECT_EQ(entry->sport, 40001);
  EXPECT_EQ(entry->dport, 443);
  const tcpstated::Owner* owner = m.OwnerOf(*entry);
  ASSERT_NE(owner, nullptr);
  EXPECT_EQ(owner->tgid, 4242u);
  EXPECT_EQ(owner->comm, "curl");
  EXPECT_EQ(owner->cgroup_id, 77u);
  // Aged by the default tcp_fin_timeout, 60 s from the hand-off.
  m.Expire(close_ts + 60 * kSec - 1);
  EXPECT_NE(m.Find(11), nullptr);
  m.Expire(close_ts + 60 * kSec);
  EXPECT_EQ(m.Find(11), nullptr);
  ExpectCounts(m, kNetns, {});
}

TEST(MirrorTest, ClientPathWithPeerFinEndsInTimeWaitSubstate) {
  Mirror m(kBigTable);
  // A short tcp_fin_timeout must not apply to the TIME_WAIT substate.
  m.SetFinTimeout(kNetns, 10 * kSec);
  Sock s(12, 40002, 443);
  const uint64_t close_ts = ActiveClose(m, s, kT0, /*peer_fin=*/true);

  ExpectCounts(m, kNetns, {{S::kTimeWait, 1}});
  const SocketEntry* entry = m.Find(12);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->state, S::kTimeWait);
  EXPECT_TRUE(IsTimewaitSock(*entry));
  EXPECT_FALSE(InFinWait2Substate(*entry));
  EXPECT_EQ(entry->role, Role::kClient);
  m.Expire(close_ts + 60 * kSec - 1);
  EXPECT_EQ(CountOf(m, kNetns, S::kTimeWait), 1);
  m.Expire(close_ts + 60 * kSec);
  EXPECT_EQ(CountOf(m, kNetns, S::kTimeWait), 0);
  EXPECT_EQ(m.Find(12), nullptr);
}

TEST(MirrorTest, ServerChildInheritsListenerOwnerAndHasNoTimeWait) {
  Mirror m(kBigTable);
  Sock listener(100, 8080, 0);
  m.Apply(InProcess(StateChange(listener, S::kClose, S::kListen, kT0), 700,
                    "nginx", 9));
  // Softirq: the "current" task is not the owner, so nothing is captured.
  Sock child(200, 8080, 51000);
  m.Apply(StateChange(child, S::kListen, S::kSynRecv, kT0 + kSec));

  const SocketEntry* entry = m.Find(200);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->role, Role::kServer);
  EXPECT_EQ(entry->state, S::kSynRecv);
  const tcpstated::Owner* owner = m.OwnerOf(*entry);
  ASSERT_NE(owner, nullptr);
  EXPECT_EQ(owner->tgid, 700u);
  EXPECT_EQ(owner->comm, "nginx");
  EXPECT_EQ(owner->cgroup_id, 9u);
  ExpectCounts(m, kNetns, {{S::kListen, 1}, {S::kSynRecv, 1}});

  m.Apply(StateChange(child, S::kSynRecv, S::kEstablished, kT0 + 2 * kSec));
  m.Apply(StateChange(child, S::kEstablished, S::kCloseWait, kT0 + 3 * kSec));
  ExpectCounts(m, kNetns, {{S::kListen, 1}, {S::kCloseWait, 1}});
  m.Apply(
      InProcess(StateChange(child, S::kCloseWait, S::kLastAck, kT0 + 4 * kSec),
                700, "nginx", 9));
  ExpectCounts(m, kNetns, {{S::kListen, 1}, {S::kLastAck, 1}});
  m.Apply(StateChange(child, S::kLastAck, S::kClose, kT0 + 5 * kSec));

  EXPECT_EQ(m.Find(200), nullptr);
  ExpectCounts(m, kNetns, {{S::kListen, 1}});
  EXPECT_EQ(m.stats().tracked, 1u);
  EXPECT_EQ(InvalidTotal(m), 0u);
  const SocketEntry* l = m.Find(100);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->role, Role::kListener);
}

TEST(MirrorTest, AcceptedChildKeepsOwnerAfterListenerCloses) {
  Mirror m(kBigTable);
  Sock listener(100, 8080);
  m.Apply(InProcess(StateChange(listener, S::kClose, S::kListen, kT0), 700,
                    "nginx", 9));
  Sock child(200, 8080, 51000);
  Walk(m, child, {S::kListen, S::kSynRecv, S::kEstablished}, kT0 + kSec);
  m.Apply(
      InProcess(StateChange(listener, S::kListen, S::kClose, kT0 + 5 * kSec),
                700, "nginx", 9));
  // A new owner must not take over the freed slot of a referenced one.
  Sock other(300, 0, 53);
  m.Apply(InProcess(StateChange(other, S::kClose, S::kSynSent, kT0 + 6 * kSec),
                    800, "dig", 10));

  const SocketEntry* entry = m.Find(200);
  ASSERT_NE(entry, nullptr);
  const tcpstated::Owner* owner = m.OwnerOf(*entry);
  ASSERT_NE(owner, nullptr);
  EXPECT_EQ(owner->comm, "nginx");
  EXPECT_EQ(owner->tgid, 700u);
  const SocketEntry* o = m.Find(300);
  ASSERT_NE(o, nullptr);
  ASSERT_NE(m.OwnerOf(*o), nullptr);
  EXPECT_EQ(m.OwnerOf(*o)->comm, "dig");
  ExpectCounts(m, kNetns, {{S::kEstablished, 1}, {S::kSynSent, 1}});
}

TEST(MirrorTest, SimultaneousOpenIsAClientWithoutInvalidTransitions) {
  Mirror m(kBigTable);
  Sock s(21, 5000, 5000);
  m.Apply(InProcess(StateChange(s, S::kClose, S::kSynSent, kT0), 1, "self", 1));
  m.Apply(StateChange(s, S::kSynSent, S::kSynRecv, kT0 + kSec));
  ExpectCounts(m, kNetns, {{S::kSynRecv, 1}});
  m.Apply(StateChange(s, S::kSynRecv, S::kEstablished, kT0 + 2 * kSec));

  const SocketEntry* entry = m.Find(21);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->role, Role::kClient);
  EXPECT_EQ(entry->state, S::kEstablished);
  EXPECT_EQ(InvalidTotal(m), 0u);
  EXPECT_EQ(m.stats().resyncs, 0u);
  ExpectCounts(m, kNetns, {{S::kEstablished, 1}});
}

TEST(MirrorTest, SimultaneousCloseIsTimeWaitAgedAfterExactlySixtySeconds) {
  Mirror m(kBigTable);
  // CLOSING -> CLOSE is the TIME_WAIT substate: tcp_fin_timeout is irrelevant.
  m.SetFinTimeout(kNetns, 10 * kSec);
  Sock s(22, 5000, 5001);
  Walk(m, s, {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1}, kT0);
  m.Apply(StateChange(s, S::kFinWait1, S::kClosing, kT0 + 10 * kSec));
  ExpectCounts(m, kNetns, {{S::kClosing, 1}});
  const uint64_t close_ts = kT0 + 11 * kSec;
  m.Apply(StateChange(s, S::kClosing, S::kClose, close_ts));

  ExpectCounts(m, kNetns, {{S::kTimeWait, 1}});
  EXPECT_EQ(InvalidTotal(m), 0u);
  const SocketEntry* entry = m.Find(22);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->state, S::kTimeWait);
  EXPECT_FALSE(InFinWait2Substate(*entry));

  m.Expire(close_ts + 60 * kSec - 1);
  EXPECT_EQ(CountOf(m, kNetns, S::kTimeWait), 1);
  EXPECT_NE(m.Find(22), nullptr);
  m.Expire(close_ts + 60 * kSec);
  EXPECT_EQ(CountOf(m, kNetns, S::kTimeWait), 0);
  EXPECT_EQ(m.Find(22), nullptr);
  EXPECT_EQ(m.stats().tracked, 0u);
}

TEST(MirrorTest, ConnectFailureWithSportZeroLeavesNothing) {
  Mirror m(kBigTable);
  Sock s(31, 0, 80);
  m.Apply(InProcess(StateChange(s, S::kClose, S::kSynSent, kT0), 5, "wget", 1));
  ExpectCounts(m, kNetns, {{S::kSynSent, 1}});
  m.Apply(InProcess(StateChange(s, S::kSynSent, S::kClose, kT0 + kSec), 5,
                    "wget", 1));

  ExpectCounts(m, kNetns, {});
  EXPECT_EQ(m.stats().tracked, 0u);
  EXPECT_EQ(m.Find(31), nullptr);
  EXPECT_EQ(InvalidTotal(m), 0u);
  m.Expire(kT0 + 3600 * kSec);
  EXPECT_EQ(m.stats().tracked, 0u);
  ExpectCounts(m, kNetns, {});
}

TEST(MirrorTest, ListenerAbortThenCloseToCloseIsLegalAndLeavesNothing) {
  Mirror m(kBigTable);
  Sock listener(41, 9000);
  m.Apply(InProcess(StateChange(listener, S::kClose, S::kListen, kT0), 900,
                    "redis", 3));
  const SocketEntry* entry = m.Find(41);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->role, Role::kListener);
  ASSERT_NE(m.OwnerOf(*entry), nullptr);
  EXPECT_EQ(m.OwnerOf(*entry)->comm, "redis");
  EXPECT_EQ(m.OwnerOf(*entry)->tgid, 900u);
  ExpectCounts(m, kNetns, {{S::kListen, 1}});

  // ss -K: LISTEN -> CLOSE then CLOSE -> CLOSE.
  m.Apply(StateChange(listener, S::kListen, S::kClose, kT0 + kSec));
  m.Apply(StateChange(listener, S::kClose, S::kClose, kT0 + kSec));

  EXPECT_EQ(m.stats().tracked, 0u);
  ExpectCounts(m, kNetns, {});
  EXPECT_EQ(InvalidTotal(m), 0u);
  EXPECT_EQ(m.stats().resyncs, 0u);
  // The port is no longer attributed to the dead listener.
  Sock child(42, 9000, 40000);
  m.Apply(StateChange(child, S::kListen, S::kSynRecv, kT0 + 2 * kSec));
  const SocketEntry* c = m.Find(42);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(m.OwnerOf(*c), nullptr);
}

// --- Resets ----------------------------------------------------------------

struct ResetCase {
  const char* name;
  std::vector<S> path;  // a legal life that ends in the state under test
};

void PrintTo(const ResetCase& c, std::ostream* os) { *os << c.name; }

class MirrorResetTest
    : public ::testing::TestWithParam<std::tuple<ResetCase, Source>> {};

TEST_P(MirrorResetTest, ResetThenCloseRemovesWithoutTimeWait) {
  const ResetCase& c = std::get<0>(GetParam());
  const Source source = std::get<1>(GetParam());
  Mirror m(kBigTable);
  Sock s(51, 41000, 443);
  uint64_t ts = kT0;
  for (size_t i = 1; i < c.path.size(); ++i) {
    m.Apply(StateChange(s, c.path[i - 1], c.path[i], ts));
    ts += kSec;
  }
  const S state = c.path.back();
  ASSERT_EQ(CountOf(m, kNetns, state), 1);
  m.Apply(Reset(s, source, state, ts));
  // The reset alone changes nothing: the CLOSE event follows.
  EXPECT_EQ(CountOf(m, kNetns, state), 1);
  m.Apply(StateChange(s, state, S::kClose, ts));

  EXPECT_EQ(m.Find(51), nullptr);
  EXPECT_EQ(m.stats().tracked, 0u);
  ExpectCounts(m, kNetns, {});
  EXPECT_EQ(InvalidTotal(m), 0u);
  EXPECT_EQ(m.stats().events[static_cast<size_t>(source)], 1u);
}

INSTANTIATE_TEST_SUITE_P(
    SynchronizedStates, MirrorResetTest,
    ::testing::Combine(
        ::testing::Values(
            ResetCase{"Established", {S::kClose, S::kSynSent, S::kEstablished}},
            ResetCase{"SynRecv", {S::kListen, S::kSynRecv}},
            ResetCase{"FinWait1",
                      {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1}},
            ResetCase{"FinWait2",
                      {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1,
                       S::kFinWait2}},
            ResetCase{"CloseWait",
                      {S::kClose, S::kSynSent, S::kEstablished, S::kCloseWait}},
            ResetCase{"Closing",
                      {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1,
                       S::kClosing}},
            ResetCase{"LastAck",
                      {S::kListen, S::kSynRecv, S::kEstablished, S::kCloseWait,
                       S::kLastAck}}),
        ::testing::Values(Source::kReceiveReset, Source::kSendReset)),
    [](const ::testing::TestParamInfo<MirrorResetTest::ParamType>& info) {
      return std::string(std::get<0>(info.param).name) +
             (std::get<1>(info.param) == Source::kReceiveReset ? "_Received"
                                                               : "_Sent");
    });

TEST(MirrorTest, SendResetBeforeCloseFromFinWait2IsNoTimeWait) {
  Mirror m(kBigTable);
  Sock s(52, 41001, 443);
  uint64_t ts = Walk(
      m, s,
      {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2},
      kT0);
  // Linger timeout: tcp_send_reset fires before the CLOSE event.
  m.Apply(Reset(s, Source::kSendReset, S::kFinWait2, ts + kSec));
  m.Apply(StateChange(s, S::kFinWait2, S::kClose, ts + kSec));

  EXPECT_EQ(m.Find(52), nullptr);
  ExpectCounts(m, kNetns, {});
  EXPECT_EQ(m.stats().tracked, 0u);
}

TEST(MirrorTest, SendResetAfterCloseRetractsInferredTimeWait) {
  for (bool peer_fin : {true, false}) {
    SCOPED_TRACE(peer_fin ? "TIME_WAIT substate" : "FIN_WAIT2 substate");
    Mirror m(kBigTable);
    Sock s(53, 41002, 443);
    const uint64_t ts = ActiveClose(m, s, kT0, peer_fin);
    ASSERT_EQ(CountOf(m, kNetns, peer_fin ? S::kTimeWait : S::kFinWait2), 1);
    // close() with unread data: the reset follows the CLOSE event and
    // reports the socket's state at that point, CLOSE.
    m.Apply(Reset(s, Source::kSendReset, S::kClose, ts));

    EXPECT_EQ(m.Find(53), nullptr);
    ExpectCounts(m, kNetns, {});
    EXPECT_EQ(m.stats().tracked, 0u);
    // The retracted hand-off was never a timewait socket: nothing observed.
    EXPECT_EQ(m.durations()[StateIndex(S::kTimeWait)].count, 0u);
  }
}

TEST(MirrorTest, ReceiveResetDoesNotRetractTimeWait) {
  Mirror m(kBigTable);
  Sock s(54, 41003, 443);
  uint64_t ts = Walk(m, s,
                     {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1,
                      S::kClosing, S::kClose},
                     kT0);
  m.Apply(Reset(s, Source::kReceiveReset, S::kClose, ts));
  EXPECT_NE(m.Find(54), nullptr);
  ExpectCounts(m, kNetns, {{S::kTimeWait, 1}});
}

// tcp_v4_send_reset also fires tcp_send_reset for a socket that
// stays open: a SYN_SENT socket answering an unacceptable ACK
// (tcp_rcv_synsent_state_process -> reset_and_undo), a SYN_RECV socket
// answering a bad ACK. Such a socket goes on to ESTABLISHED and its later
// FIN_WAIT2/CLOSING -> CLOSE hand-off is wrongly taken for an abort: the
// TIME_WAIT is missed.
TEST(MirrorTest, ResetThatDoesNotCloseTheSocketIsForgottenOnNextState) {
  Mirror m(kBigTable);
  Sock s(55, 41004, 443);
  m.Apply(StateChange(s, S::kClose, S::kSynSent, kT0));
  m.Apply(Reset(s, Source::kSendReset, S::kSynSent, kT0 + kSec));
  uint64_t ts =
      Walk(m, s, {S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2},
           kT0 + 2 * kSec);
  m.Apply(WithPeerFin(StateChange(s, S::kFinWait2, S::kClose, ts + kSec)));

  ExpectCounts(m, kNetns, {{S::kTimeWait, 1}});
  const SocketEntry* entry = m.Find(55);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->state, S::kTimeWait);
}

// --- Identity --------------------------------------------------------------

TEST(MirrorTest, SkaddrReuseAcrossIncarnationsKeepsCountsExact) {
  Mirror m(kBigTable);
  // Classic tracepoint mode: per-incarnation ids, (cpu + 1) << 48 | seq.
  constexpr uint64_t kSkaddr = 0xffff888104d2c000ULL;
  const uint64_t id1 = (1ULL << 48) | 1;
  const uint64_t id2 = (1ULL << 48) | 2;
  const uint64_t id3 = (2ULL << 48) | 1;
  Sock first(id1, 42000, 80);
  Sock second(id2, 42001, 80);
  Sock third(id3, 42002, 80);
  first.skaddr = second.skaddr = third.skaddr = kSkaddr;

  // Passive close: no TIME_WAIT, gone afterwards.
  uint64_t ts = Walk(m, first,
                     {S::kClose, S::kSynSent, S::kEstablished, S::kCloseWait,
                      S::kLastAck, S::kClose},
                     kT0);
  ExpectCounts(m, kNetns, {});
  // Active close: an inferred TIME_WAIT outlives the full socket.
  ts = ActiveClose(m, second, ts + kSec, /*peer_fin=*/true);
  ExpectCounts(m, kNetns, {{S::kTimeWait, 1}});
  // The slab hands the address to a third socket while the second's
  // timewait socket lives on.
  Walk(m, third, {S::kClose, S::kSynSent, S::kEstablished}, ts + kSec);

  ExpectCounts(m, kNetns, {{S::kTimeWait, 1}, {S::kEstablished, 1}});
  EXPECT_EQ(m.stats().tracked, 2u);
  EXPECT_EQ(m.stats().resyncs, 0u);
  EXPECT_EQ(InvalidTotal(m), 0u);
  ASSERT_NE(m.Find(id2), nullptr);
  EXPECT_EQ(m.Find(id2)->state, S::kTimeWait);
  ASSERT_NE(m.Find(id3), nullptr);
  EXPECT_EQ(m.Find(id3)->state, S::kEstablished);
  EXPECT_EQ(m.Find(id1), nullptr);
}

TEST(MirrorTest, SameIdReconnectingAfterFailedConnectKeepsCountsExact) {
  Mirror m(kBigTable);
  Sock s(61, 0, 80);
  m.Apply(StateChange(s, S::kClose, S::kSynSent, kT0));
  m.Apply(StateChange(s, S::kSynSent, S::kClose, kT0 + kSec));
  ExpectCounts(m, kNetns, {});
  m.Apply(StateChange(s, S::kClose, S::kSynSent, kT0 + 2 * kSec));
  ExpectCounts(m, kNetns, {{S::kSynSent, 1}});
  s.sport = 43000;
  m.Apply(StateChange(s, S::kSynSent, S::kEstablished, kT0 + 3 * kSec));

  ExpectCounts(m, kNetns, {{S::kEstablished, 1}});
  EXPECT_EQ(m.stats().tracked, 1u);
  EXPECT_EQ(m.stats().resyncs, 0u);
  EXPECT_EQ(InvalidTotal(m), 0u);
  ASSERT_NE(m.Find(61), nullptr);
  EXPECT_EQ(m.Find(61)->role, Role::kClient);
}

TEST(MirrorTest, LostCloseEventIsAResyncAndANewLife) {
  Mirror m(kBigTable);
  Sock s(62, 0, 80);
  m.Apply(StateChange(s, S::kClose, S::kSynSent, kT0));
  // The SYN_SENT -> CLOSE event was lost; the socket connects again.
  m.Apply(StateChange(s, S::kClose, S::kSynSent, kT0 + kSec));

  ExpectCounts(m, kNetns, {{S::kSynSent, 1}});
  EXPECT_EQ(m.stats().resyncs, 1u);
  EXPECT_EQ(m.stats().tracked, 1u);
}

TEST(MirrorTest, IdComingBackAfterTimeWaitIsANewLifeNotAResync) {
  for (bool peer_fin : {true, false}) {
    SCOPED_TRACE(peer_fin ? "TIME_WAIT substate" : "FIN_WAIT2 substate");
    Mirror m(kBigTable);
    Sock s(63, 43001, 80);
    const uint64_t ts = ActiveClose(m, s, kT0, peer_fin);
    ASSERT_EQ(Total(m, kNetns), 1);
    // The application kept the fd after the hand-off and connects again.
    m.Apply(StateChange(s, S::kClose, S::kSynSent, ts + kSec));

    ExpectCounts(m, kNetns, {{S::kSynSent, 1}});
    EXPECT_EQ(m.stats().resyncs, 0u);
    EXPECT_EQ(m.stats().tracked, 1u);
    ASSERT_NE(m.Find(63), nullptr);
    EXPECT_FALSE(IsTimewaitSock(*m.Find(63)));
    EXPECT_FALSE(InFinWait2Substate(*m.Find(63)));
    // The old expiry must not take the new life.
    m.Expire(ts + 3600 * kSec);
    EXPECT_NE(m.Find(63), nullptr);
  }
}

TEST(MirrorTest, NamespaceInodeReuseWithNewCookiePurgesItsSockets) {
  Mirror m(kBigTable);
  Sock est(121, 49100, 80);
  est.netns_cookie = 1001;
  Walk(m, est, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  Sock tw(122, 49101, 80);
  tw.netns_cookie = 1001;
  ActiveClose(m, tw, kT0, /*peer_fin=*/true);
  Sock listener(123, 8123);
  listener.netns_cookie = 1001;
  m.Apply(InProcess(StateChange(listener, S::kClose, S::kListen, kT0), 5, "srv",
                    1));
  Sock other(124, 49102, 80, kOtherNetns);
  other.netns_cookie = 2002;
  Walk(m, other, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  // Events without a cookie (old kernels) and with the known one change
  // nothing.
  Sock no_cookie(125, 49103, 80);
  Walk(m, no_cookie, {S::kClose, S::kSynSent}, kT0 + 10 * kSec);
  m.Apply(Reset(est, Source::kReceiveReset, S::kEstablished, kT0 + 11 * kSec));
  ExpectCounts(m, kNetns,
               {{S::kEstablished, 1},
                {S::kTimeWait, 1},
                {S::kListen, 1},
                {S::kSynSent, 1}});
  EXPECT_EQ(m.stats().netns_purges, 0u);

  // The namespace died and a new one got its inode number.
  Sock fresh(126, 49104, 80);
  fresh.netns_cookie = 1003;
  m.Apply(StateChange(fresh, S::kClose, S::kSynSent, kT0 + 20 * kSec));

  EXPECT_EQ(m.stats().netns_purges, 1u);
  ExpectCounts(m, kNetns, {{S::kSynSent, 1}});
  EXPECT_NE(m.Find(126), nullptr);
  for (uint64_t id : {121, 122, 123, 125}) EXPECT_EQ(m.Find(id), nullptr) << id;
  ExpectCounts(m, kOtherNetns, {{S::kEstablished, 1}});
  EXPECT_EQ(m.stats().tracked, 2u);
  // The dead listener's port no longer hands its owner to children.
  Sock child(127, 8123, 50127);
  child.netns_cookie = 1003;
  m.Apply(StateChange(child, S::kListen, S::kSynRecv, kT0 + 21 * kSec));
  ASSERT_NE(m.Find(127), nullptr);
  EXPECT_EQ(m.OwnerOf(*m.Find(127)), nullptr);
  // Stale expiries of purged entries are harmless.
  m.Expire(kT0 + 3600 * kSec);
  ExpectCounts(m, kNetns, {{S::kSynSent, 1}, {S::kSynRecv, 1}});
}

TEST(MirrorTest, EventsWithoutIdentityAreNotTracked) {
  Mirror m(kBigTable);
  Sock s(0, 43002, 80);
  Walk(m, s,
       {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2,
        S::kClose},
       kT0);
  EXPECT_EQ(m.stats().tracked, 0u);
  ExpectCounts(m, kNetns, {});
  // The namespace is still listed.
  EXPECT_EQ(m.counts().count(kNetns), 1u);
}

// --- TIME_WAIT ageing ------------------------------------------------------

TEST(MirrorTest, FinWait2SubstateAgesWithPerNamespaceFinTimeout) {
  Mirror m(kBigTable);
  m.SetFinTimeout(kNetns, 30 * kSec);
  Sock a(71, 44000, 80, kNetns);
  Sock b(72, 44000, 80, kOtherNetns);
  const uint64_t close_ts = ActiveClose(m, a, kT0, /*peer_fin=*/false);
  ASSERT_EQ(ActiveClose(m, b, kT0, /*peer_fin=*/false), close_ts);
  ExpectCounts(m, kNetns, {{S::kFinWait2, 1}});
  ExpectCounts(m, kOtherNetns, {{S::kFinWait2, 1}});

  m.Expire(close_ts + 30 * kSec - 1);
  EXPECT_NE(m.Find(71), nullptr);
  EXPECT_EQ(CountOf(m, kNetns, S::kFinWait2), 1);
  m.Expire(close_ts + 30 * kSec);
  EXPECT_EQ(m.Find(71), nullptr);
  ExpectCounts(m, kNetns, {});
  // The other namespace keeps the 60 s default.
  ExpectCounts(m, kOtherNetns, {{S::kFinWait2, 1}});
  m.Expire(close_ts + 60 * kSec - 1);
  EXPECT_NE(m.Find(72), nullptr);
  m.Expire(close_ts + 60 * kSec);
  EXPECT_EQ(m.Find(72), nullptr);
  ExpectCounts(m, kOtherNetns, {});
  EXPECT_EQ(m.stats().tracked, 0u);
  // Both namespaces stay listed, with zeros.
  EXPECT_EQ(m.counts().size(), 2u);
}

TEST(MirrorTest, LocalPeerFinPromotesFinWait2OrphanToTimeWait) {
  Mirror m(kBigTable);
  m.SetFinTimeout(kNetns, 10 * kSec);
  // Both ends on this host: A (client, active closer) and B (server child).
  Sock a(74, 40074, 8080);
  a.saddr = Ip(AF_INET, "127.0.0.1");
  a.daddr = Ip(AF_INET, "127.0.0.2");
  Sock b(75, 8080, 40074);
  b.saddr = a.daddr;
  b.daddr = a.saddr;
  Walk(m, a, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  Walk(m, b, {S::kListen, S::kSynRecv, S::kEstablished}, kT0);
  m.Apply(StateChange(a, S::kEstablished, S::kFinWait1, kT0 + 10 * kSec));
  m.Apply(StateChange(b, S::kEstablished, S::kCloseWait, kT0 + 10 * kSec));
  m.Apply(StateChange(a, S::kFinWait1, S::kFinWait2, kT0 + 10 * kSec));
  const uint64_t handoff_ts = kT0 + 10 * kSec;
  m.Apply(StateChange(a, S::kFinWait2, S::kClose, handoff_ts));
  ExpectCounts(m, kNetns, {{S::kFinWait2, 1}, {S::kCloseWait, 1}});

  // B closes: its FIN moves A's timewait socket to TIME_WAIT for 60 s.
  const uint64_t fin_ts = handoff_ts + 5 * kSec;
  m.Apply(StateChange(b, S::kCloseWait, S::kLastAck, fin_ts));
  ExpectCounts(m, kNetns, {{S::kTimeWait, 1}, {S::kLastAck, 1}});
  const SocketEntry* entry = m.Find(74);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->state, S::kTimeWait);
  EXPECT_FALSE(InFinWait2Substate(*entry));
  EXPECT_TRUE(IsTimewaitSock(*entry));
  m.Apply(StateChange(b, S::kLastAck, S::kClose, fin_ts));
  ExpectCounts(m, kNetns, {{S::kTimeWait, 1}});

  // No longer aged by tcp_fin_timeout but by TCP_TIMEWAIT_LEN from the FIN.
  m.Expire(handoff_ts + 10 * kSec);
  EXPECT_NE(m.Find(74), nullptr);
  m.Expire(fin_ts + 60 * kSec - 1);
  EXPECT_NE(m.Find(74), nullptr);
  m.Expire(fin_ts + 60 * kSec);
  EXPECT_EQ(m.Find(74), nullptr);
  ExpectCounts(m, kNetns, {});
  EXPECT_EQ(InvalidTotal(m), 0u);
}

TEST(MirrorTest, LocalPeerResetKillsFinWait2Orphan) {
  Mirror m(kBigTable);
  Sock a(76, 40076, 8080);
  a.saddr = Ip(AF_INET, "127.0.0.1");
  a.daddr = Ip(AF_INET, "127.0.0.2");
  Sock b(77, 8080, 40076);
  b.saddr = a.daddr;
  b.daddr = a.saddr;
  Walk(m, b, {S::kListen, S::kSynRecv, S::kEstablished, S::kCloseWait}, kT0);
  ActiveClose(m, a, kT0, /*peer_fin=*/false);
  ExpectCounts(m, kNetns, {{S::kFinWait2, 1}, {S::kCloseWait, 1}});

  // B closes with unread data: CLOSE, then the RST that kills A's orphan.
  m.Apply(StateChange(b, S::kCloseWait, S::kClose, kT0 + 20 * kSec));
  m.Apply(Reset(b, Source::kSendReset, S::kClose, kT0 + 20 * kSec));

  EXPECT_EQ(m.Find(76), nullptr);
  EXPECT_EQ(m.Find(77), nullptr);
  ExpectCounts(m, kNetns, {});
  EXPECT_EQ(m.stats().tracked, 0u);
}

TEST(MirrorTest, PeerInAnotherNamespaceOrTupleDoesNotPromoteOrphan) {
  Mirror m(kBigTable);
  Sock a(78, 40078, 8080);
  a.saddr = Ip(AF_INET, "10.0.0.1");
  a.daddr = Ip(AF_INET, "10.0.0.2");
  ActiveClose(m, a, kT0, /*peer_fin=*/false);
  // Same reversed tuple, but another namespace.
  Sock elsewhere(79, 8080, 40078, kOtherNetns);
  elsewhere.saddr = a.daddr;
  elsewhere.daddr = a.saddr;
  // Same namespace, but another connection between the same hosts. (A
  // socket with A's own tuple would have taken A over: see
  // mirror_unreported_test.cpp.)
  Sock same_way(80, 8080, 40079);
  same_way.saddr = a.daddr;
  same_way.daddr = a.saddr;
  Walk(m, elsewhere, {S::kEstablished, S::kCloseWait, S::kLastAck},
       kT0 + 20 * kSec);
  Walk(m, same_way, {S::kEstablished, S::kCloseWait, S::kLastAck},
       kT0 + 20 * kSec);

  ASSERT_NE(m.Find(78), nullptr);
  EXPECT_EQ(m.Find(78)->state, S::kFinWait2);
  EXPECT_TRUE(InFinWait2Substate(*m.Find(78)));
  ExpectCounts(m, kNetns, {{S::kFinWait2, 1}, {S::kLastAck, 1}});
}

TEST(MirrorTest, HandOffOfAnUnknownSocketIsAdoptedAsTimeWait) {
  Mirror m(kBigTable);
  Sock s(73, 44001, 80);
  m.Apply(WithPeerFin(StateChange(s, S::kFinWait2, S::kClose, kT0)));

  ExpectCounts(m, kNetns, {{S::kTimeWait, 1}});
  ASSERT_NE(m.Find(73), nullptr);
  EXPECT_EQ(m.Find(73)->role, Role::kUnknown);
  // The time it spent in FIN_WAIT2 is unknown: not observed.
  EXPECT_EQ(m.durations()[StateIndex(S::kFinWait2)].count, 0u);
  m.Expire(kT0 + 60 * kSec);
  ExpectCounts(m, kNetns, {});
}

// --- Bounds and eviction ---------------------------------------------------

TEST(MirrorTest, TableIsBoundedAndEvictionsAreCounted) {
  Mirror m(100);
  for (uint64_t i = 1; i <= 150; ++i) {
    Sock s(i, static_cast<uint16_t>(45000 + i), 80);
    Walk(m, s, {S::kClose, S::kSynSent, S::kEstablished}, kT0 + i * kSec);
  }

  tcpstated::MirrorStats stats = m.stats();
  EXPECT_EQ(stats.tracked, 100u);
  EXPECT_EQ(stats.limit, 100u);
  EXPECT_EQ(stats.evictions, 50u);
  EXPECT_EQ(Total(m, kNetns), 100);
  ExpectCounts(m, kNetns, {{S::kEstablished, 100}});
  std::set<uint64_t> ids;
  m.ForEach([&](const SocketEntry& e) { ids.insert(e.id); });
  EXPECT_EQ(ids.size(), 100u);
  for (uint64_t id : ids) EXPECT_NE(m.Find(id), nullptr) << id;
}

TEST(MirrorTest, EvictionPrefersTimeWaitEntries) {
  Mirror m(10);
  for (uint64_t i = 1; i <= 9; ++i) {
    Walk(m, Sock(i, static_cast<uint16_t>(46000 + i)),
         {S::kClose, S::kSynSent, S::kEstablished}, kT0 + i * kSec);
  }
  // The newest entry, but an inferred TIME_WAIT.
  Walk(m, Sock(10, 46010),
       {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2,
        S::kClose},
       kT0 + 100 * kSec);
  ASSERT_EQ(m.stats().tracked, 10u);
  m.Apply(
      StateChange(Sock(11, 46011), S::kClose, S::kSynSent, kT0 + 200 * kSec));

  EXPECT_EQ(m.stats().evictions, 1u);
  EXPECT_EQ(m.stats().tracked, 10u);
  EXPECT_EQ(m.Find(10), nullptr);
  for (uint64_t i = 1; i <= 9; ++i) EXPECT_NE(m.Find(i), nullptr) << i;
  ExpectCounts(m, kNetns, {{S::kEstablished, 9}, {S::kSynSent, 1}});
}

TEST(MirrorTest, EvictionWithoutTimeWaitTakesTheLongestInItsState) {
  Mirror m(10);
  for (uint64_t i = 1; i <= 10; ++i) {
    // Socket 7 has been established longest.
    uint64_t ts = kT0 + (i == 7 ? 0 : i * 10 * kSec);
    Walk(m, Sock(i, static_cast<uint16_t>(47000 + i)),
         {S::kClose, S::kSynSent, S::kEstablished}, ts);
  }
  m.Apply(StateChange(Sock(11), S::kClose, S::kSynSent, kT0 + 500 * kSec));

  EXPECT_EQ(m.stats().evictions, 1u);
  EXPECT_EQ(m.Find(7), nullptr);
  EXPECT_NE(m.Find(11), nullptr);
  ExpectCounts(m, kNetns, {{S::kEstablished, 9}, {S::kSynSent, 1}});
}

// Found by fuzz_decoder: an entry stamped with the largest timestamp was
// never older than the "nothing chosen yet" mark, so a full table found no
// victim and grew past its bound.
TEST(MirrorTest, EvictionFindsAVictimWhateverTheTimestamps) {
  Mirror m(1);
  m.Apply(
      StateChange(Sock(1, 48001), S::kEstablished, S::kCloseWait, UINT64_MAX));
  m.Apply(StateChange(Sock(2, 48002), S::kSynRecv, S::kEstablished, kT0));
  EXPECT_EQ(m.stats().tracked, 1u);
  EXPECT_EQ(m.stats().evictions, 1u);
  EXPECT_EQ(m.Find(1), nullptr);
  EXPECT_NE(m.Find(2), nullptr);
  ExpectCounts(m, kNetns, {{S::kEstablished, 1}});
}

TEST(MirrorTest, ZeroSizedTableTracksNothing) {
  Mirror m(0);
  Walk(m, Sock(1), {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  EXPECT_EQ(m.stats().tracked, 0u);
  ExpectCounts(m, kNetns, {});
}

// --- Invalid transitions and resyncs ---------------------------------------

TEST(MirrorTest, InvalidTransitionsAreCountedHookedAndFollowed) {
  Mirror m(kBigTable);
  std::vector<Event> hooked;
  m.set_invalid_transition_hook([&](const Event& e) { hooked.push_back(e); });

  // SYN_RECV -> LISTEN: in the seeds' diagrams, never emitted by Linux.
  Sock child(81, 8081, 50000);
  m.Apply(StateChange(child, S::kListen, S::kSynRecv, kT0));
  m.Apply(StateChange(child, S::kSynRecv, S::kListen, kT0 + kSec));
  // CLOSE -> ESTABLISHED.
  Sock odd(82, 8082, 50001);
  m.Apply(StateChange(odd, S::kClose, S::kEstablished, kT0 + 2 * kSec));
  // Anything -> TIME_WAIT.
  Sock tw(83, 8083, 50002);
  Walk(m, tw, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  m.Apply(StateChange(tw, S::kEstablished, S::kTimeWait, kT0 + 3 * kSec));

  const auto& invalid = m.invalid_transitions();
  EXPECT_EQ(invalid[StateIndex(S::kSynRecv)][StateIndex(S::kListen)], 1u);
  EXPECT_EQ(invalid[StateIndex(S::kClose)][StateIndex(S::kEstablished)], 1u);
  EXPECT_EQ(invalid[StateIndex(S::kEstablished)][StateIndex(S::kTimeWait)], 1u);
  EXPECT_EQ(InvalidTotal(m), 3u);
  ASSERT_EQ(hooked.size(), 3u);
  EXPECT_EQ(hooked[0].id, 81u);
  EXPECT_EQ(hooked[0].oldstate, S::kSynRecv);
  EXPECT_EQ(hooked[0].newstate, S::kListen);
  EXPECT_EQ(hooked[1].id, 82u);
  EXPECT_EQ(hooked[2].id, 83u);
  EXPECT_EQ(hooked[2].newstate, S::kTimeWait);

  // The mirror follows the kernel.
  ASSERT_NE(m.Find(81), nullptr);
  EXPECT_EQ(m.Find(81)->state, S::kListen);
  ASSERT_NE(m.Find(82), nullptr);
  EXPECT_EQ(m.Find(82)->state, S::kEstablished);
  EXPECT_EQ(m.Find(82)->role, Role::kUnknown);
  ASSERT_NE(m.Find(83), nullptr);
  EXPECT_EQ(m.Find(83)->state, S::kTimeWait);
  ExpectCounts(m, kNetns,
               {{S::kListen, 1}, {S::kEstablished, 1}, {S::kTimeWait, 1}});
  EXPECT_EQ(m.stats().resyncs, 0u);
}

TEST(MirrorTest, InvalidTransitionWithoutHookIsStillCounted) {
  Mirror m(kBigTable);
  m.Apply(StateChange(Sock(84), S::kEstablished, S::kSynSent, kT0));
  m.Apply(StateChange(Sock(85), S::kListen, S::kNewSynRecv, kT0));
  EXPECT_EQ(m.invalid_transitions()[StateIndex(S::kEstablished)]
                                   [StateIndex(S::kSynSent)],
            1u);
  EXPECT_EQ(m.invalid_transitions()[StateIndex(S::kListen)]
                                   [StateIndex(S::kNewSynRecv)],
            1u);
  EXPECT_EQ(InvalidTotal(m), 2u);
}

// A fuzzer finding: SYN_SENT -> NEW_SYN_RECV left a table entry in the state
// whose count is the kernel's request sockets, and a namespace purge (which
// zeroes that count) then drove it to -1. Likewise TIME_WAIT -> TIME_WAIT
// resynced a known socket into a TIME_WAIT that nothing ages out.
TEST(MirrorTest, EventsNoFullSocketProducesMoveNoEntry) {
  Mirror m(kBigTable);
  Sock s(86, 49086, 80);
  s.netns_cookie = 1001;
  Walk(m, s, {S::kClose, S::kSynSent}, kT0);
  m.Apply(StateChange(s, S::kSynSent, S::kNewSynRecv, kT0 + kSec));
  m.Apply(StateChange(Sock(87), S::kNewSynRecv, S::kEstablished, kT0 + kSec));
  Sock est(89, 49089, 80);
  est.netns_cookie = 1001;
  Walk(m, est, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  m.Apply(StateChange(est, S::kTimeWait, S::kTimeWait, kT0 + kSec));
  m.Apply(StateChange(est, S::kBoundInactive, S::kClose, kT0 + kSec));
  m.Apply(StateChange(Sock(90), S::kClose, S::kBoundInactive, kT0 + kSec));
  EXPECT_EQ(InvalidTotal(m), 5u);
  ASSERT_NE(m.Find(86), nullptr);
  EXPECT_EQ(m.Find(86)->state, S::kSynSent);
  ASSERT_NE(m.Find(89), nullptr);
  EXPECT_EQ(m.Find(89)->state, S::kEstablished);
  EXPECT_EQ(m.Find(87), nullptr);
  EXPECT_EQ(m.Find(90), nullptr);
  m.SetRequestSockets(kNetns, 3);
  ExpectCounts(m, kNetns,
               {{S::kSynSent, 1}, {S::kEstablished, 1}, {S::kNewSynRecv, 3}});

  // The namespace's inode comes back with a new cookie: everything goes.
  Sock fresh(88, 49088, 80);
  fresh.netns_cookie = 1002;
  m.Apply(StateChange(fresh, S::kClose, S::kSynSent, kT0 + 2 * kSec));
  ExpectCounts(m, kNetns, {{S::kSynSent, 1}});
}

TEST(MirrorTest, MissedTransitionIsAResyncWithExactCounts) {
  Mirror m(kBigTable);
  Sock s(91, 8091, 50010);
  Walk(m, s, {S::kListen, S::kSynRecv, S::kEstablished}, kT0);
  ASSERT_EQ(CountOf(m, kNetns, S::kEstablished), 1);
  // ESTABLISHED -> CLOSE_WAIT was lost.
  m.Apply(StateChange(s, S::kCloseWait, S::kLastAck, kT0 + 10 * kSec));

  EXPECT_EQ(m.stats().resyncs, 1u);
  EXPECT_EQ(InvalidTotal(m), 0u);
  ExpectCounts(m, kNetns, {{S::kLastAck, 1}});
  ASSERT_NE(m.Find(91), nullptr);
  EXPECT_EQ(m.Find(91)->state, S::kLastAck);
  EXPECT_EQ(m.Find(91)->role, Role::kServer);
  // The time it spent in CLOSE_WAIT is unknown: not observed.
  EXPECT_EQ(m.durations()[StateIndex(S::kCloseWait)].count, 0u);
  m.Apply(StateChange(s, S::kLastAck, S::kClose, kT0 + 11 * kSec));
  ExpectCounts(m, kNetns, {});
  EXPECT_EQ(m.stats().resyncs, 1u);
}

TEST(MirrorTest, SocketPredatingTheDaemonIsAdoptedWithUnknownAge) {
  Mirror m(kBigTable);
  Sock s(92, 8092, 50011);
  m.Apply(StateChange(s, S::kEstablished, S::kCloseWait, kT0));

  EXPECT_EQ(m.stats().tracked, 1u);
  EXPECT_EQ(m.stats().resyncs, 0u);
  ExpectCounts(m, kNetns, {{S::kCloseWait, 1}});
  const SocketEntry* entry = m.Find(92);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->role, Role::kUnknown);
  EXPECT_EQ(entry->state, S::kCloseWait);
  EXPECT_EQ(m.OwnerOf(*entry), nullptr);
  // How long it was ESTABLISHED is unknown: nothing observed.
  EXPECT_EQ(m.durations()[StateIndex(S::kEstablished)].count, 0u);

  // close() runs in the owner's process: the owner is learnt there.
  m.Apply(InProcess(StateChange(s, S::kCloseWait, S::kLastAck, kT0 + 5 * kSec),
                    1234, "java", 5));
  entry = m.Find(92);
  ASSERT_NE(entry, nullptr);
  ASSERT_NE(m.OwnerOf(*entry), nullptr);
  EXPECT_EQ(m.OwnerOf(*entry)->comm, "java");
  // It entered CLOSE_WAIT under our eyes: that duration is known.
  EXPECT_EQ(m.durations()[StateIndex(S::kCloseWait)].count, 1u);
  EXPECT_DOUBLE_EQ(m.durations()[StateIndex(S::kCloseWait)].sum, 5.0);
  m.Apply(StateChange(s, S::kLastAck, S::kClose, kT0 + 6 * kSec));
  EXPECT_EQ(m.Find(92), nullptr);
  EXPECT_EQ(m.durations()[StateIndex(S::kEstablished)].count, 0u);
}

// --- Durations -------------------------------------------------------------

TEST(MirrorTest, OneSecondInSynSentIsOneSampleOfOneSecond) {
  Mirror m(kBigTable);
  Sock s(93, 0, 80);
  m.Apply(StateChange(s, S::kClose, S::kSynSent, kT0));
  EXPECT_EQ(m.durations()[StateIndex(S::kSynSent)].count, 0u);
  m.Apply(StateChange(s, S::kSynSent, S::kEstablished, kT0 + kSec));

  const tcpstated::DurationHistogram& h =
      m.durations()[StateIndex(S::kSynSent)];
  EXPECT_EQ(h.count, 1u);
  EXPECT_DOUBLE_EQ(h.sum, 1.0);
  // Cumulative buckets are built later; here each sample sits in the first
  // bucket whose bound is >= the value: le="1".
  for (size_t i = 0; i < h.counts.size(); ++i) {
    bool le_one = i < tcpstated::kDurationBuckets.size() &&
                  tcpstated::kDurationBuckets[i] == 1.0;
    EXPECT_EQ(h.counts[i], le_one ? 1u : 0u) << "bucket " << i;
  }
  EXPECT_EQ(m.durations()[StateIndex(S::kEstablished)].count, 0u);
}

TEST(MirrorTest, LongDurationsLandInTheInfBucket) {
  Mirror m(kBigTable);
  Sock s(94, 0, 80);
  Walk(m, s, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  m.Apply(StateChange(s, S::kEstablished, S::kFinWait1,
                      kT0 + kSec + 100000 * kSec));
  const tcpstated::DurationHistogram& h =
      m.durations()[StateIndex(S::kEstablished)];
  EXPECT_EQ(h.count, 1u);
  EXPECT_EQ(h.counts.back(), 1u);
  EXPECT_DOUBLE_EQ(h.sum, 100000.0);
}

// A new socket starts in CLOSE (or, for an accepted child, a copied LISTEN):
// that is not a stay, and observing it would fill
// tcpstated_state_duration_seconds{state="listen"} with zeros.
TEST(MirrorTest, NewSocketsObserveNothingForTheStateTheyStartIn) {
  Mirror m(kBigTable);
  m.Apply(StateChange(Sock(95, 0, 80), S::kClose, S::kSynSent, kT0));
  Sock listener(96, 8096);
  m.Apply(StateChange(listener, S::kClose, S::kListen, kT0));
  for (uint64_t i = 0; i < 5; ++i) {
    Sock child(200 + i, 8096, static_cast<uint16_t>(50000 + i));
    m.Apply(StateChange(child, S::kListen, S::kSynRecv, kT0 + kSec));
  }
  EXPECT_EQ(m.durations()[StateIndex(S::kClose)].count, 0u);
  EXPECT_EQ(m.durations()[StateIndex(S::kListen)].count, 0u);
}

// --- Sources ---------------------------------------------------------------

TEST(MirrorTest, EventsAreCountedPerSource) {
  Mirror m(kBigTable);
  Sock s(104, 48002, 80);
  Walk(m, s, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  m.Apply(Reset(s, Source::kReceiveReset, S::kEstablished, kT0 + 5 * kSec));
  m.Apply(StateChange(s, S::kEstablished, S::kClose, kT0 + 5 * kSec));
  Event synack = Reset(Sock(0, 80), Source::kSynackRetrans, S::kListen, kT0);
  m.Apply(synack);

  const auto events = m.stats().events;
  EXPECT_EQ(events[static_cast<size_t>(Source::kStateChange)], 3u);
  EXPECT_EQ(events[static_cast<size_t>(Source::kReceiveReset)], 1u);
  EXPECT_EQ(events[static_cast<size_t>(Source::kSendReset)], 0u);
  EXPECT_EQ(events[static_cast<size_t>(Source::kSynackRetrans)], 1u);
  EXPECT_EQ(m.stats().tracked, 0u);
}

// --- Tuples ----------------------------------------------------------------

TEST(MirrorTest, Ipv6TupleIsCopiedAndZerosNeverOverwriteKnownFields) {
  Mirror m(kBigTable);
  Sock s(111, 0, 443);
  Event connect = StateChange(s, S::kClose, S::kSynSent, kT0);
  connect.ipv6 = true;
  connect.saddr = Ip(AF_INET6, "2001:db8::1");
  connect.daddr = Ip(AF_INET6, "2001:db8::2");
  m.Apply(connect);
  // A later event with the port known but no addresses and no dport.
  Event est = StateChange(Sock(111, 49000, 0), S::kSynSent, S::kEstablished,
                          kT0 + kSec);
  est.ipv6 = true;
  m.Apply(est);

  const SocketEntry* entry = m.Find(111);
  ASSERT_NE(entry, nullptr);
  EXPECT_NE(entry->flags & tcpstated::kEntryIpv6, 0);
  EXPECT_EQ(entry->saddr, Ip(AF_INET6, "2001:db8::1"));
  EXPECT_EQ(entry->daddr, Ip(AF_INET6, "2001:db8::2"));
  EXPECT_EQ(entry->sport, 49000);
  EXPECT_EQ(entry->dport, 443);
  EXPECT_EQ(tcpstated::FormatAddress(entry->saddr, true), "2001:db8::1");
}

TEST(MirrorTest, ChildTupleIsCompletedByLaterEvents) {
  Mirror m(kBigTable);
  // Before 6.15 a child's first event has dport 0 and the listener's
  // (wildcard) addresses.
  Sock child(112, 8112, 0);
  m.Apply(StateChange(child, S::kListen, S::kSynRecv, kT0));
  const SocketEntry* entry = m.Find(112);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->dport, 0);
  EXPECT_EQ(entry->flags & tcpstated::kEntryIpv6, 0);

  Event est = StateChange(Sock(112, 8112, 52000), S::kSynRecv, S::kEstablished,
                          kT0 + kSec);
  est.saddr = Ip(AF_INET, "10.0.0.1");
  est.daddr = Ip(AF_INET, "10.0.0.2");
  m.Apply(est);
  // And the close, from a softirq event that carries no tuple at all.
  m.Apply(
      StateChange(Sock(112), S::kEstablished, S::kCloseWait, kT0 + 2 * kSec));

  entry = m.Find(112);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->sport, 8112);
  EXPECT_EQ(entry->dport, 52000);
  EXPECT_EQ(tcpstated::FormatAddress(entry->saddr, false), "10.0.0.1");
  EXPECT_EQ(tcpstated::FormatAddress(entry->daddr, false), "10.0.0.2");
  EXPECT_EQ(entry->netns, kNetns);
}

}  // namespace
