// Unit tests of tcpstated::Mirror on kernel paths that report no state
// change of their own (shared/reference/linux-tcp-state-transitions.md,
// "State changes the tracepoint never reports"): a timewait socket taken
// over by a new connection on its 4-tuple, and a close from CLOSING or
// FIN_WAIT2 that makes no timewait socket, and the port a connect() holds
// in SYN_SENT.

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "mirror_test_events.h"
#include "tcpstated/event.h"
#include "tcpstated/mirror.h"
#include "tcpstated/tcp_state.h"

namespace {

using tcpstated::Event;
using tcpstated::Mirror;
using tcpstated::Role;
using tcpstated::SocketEntry;
using tcpstated::test::ExpectCounts;
using tcpstated::test::InFinWait2Substate;
using tcpstated::test::Ip;
using tcpstated::test::IsTimewaitSock;
using tcpstated::test::kBigTable;
using tcpstated::test::kNetns;
using tcpstated::test::kOtherNetns;
using tcpstated::test::kSec;
using tcpstated::test::kT0;
using tcpstated::test::Sock;
using tcpstated::test::StateChange;
using tcpstated::test::Walk;
using tcpstated::test::WithPeerFin;
using S = tcpstated::TcpState;

constexpr uint16_t kClientPort = 40001;
constexpr uint16_t kServerPort = 80;

// A client socket of 192.0.2.1:40001 -> 192.0.2.2:80 in `netns`.
Sock Client(uint64_t id, uint32_t netns = kNetns) {
  Sock s(id, kClientPort, kServerPort, netns);
  s.saddr = Ip(AF_INET, "192.0.2.1");
  s.daddr = Ip(AF_INET, "192.0.2.2");
  return s;
}

// The client closes first and the peer's FIN comes: a TIME_WAIT hand-off.
void ClientToTimeWait(Mirror& m, const Sock& s, uint64_t ts) {
  uint64_t last = Walk(
      m, s,
      {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2},
      ts);
  m.Apply(WithPeerFin(StateChange(s, S::kFinWait2, S::kClose, last + kSec)));
}

// connect() on the same 4-tuple: the port is chosen after the first event.
void Reconnect(Mirror& m, const Sock& s, uint64_t ts) {
  Sock before_port = s;
  before_port.sport = 0;
  m.Apply(StateChange(before_port, S::kClose, S::kSynSent, ts));
  m.Apply(StateChange(s, S::kSynSent, S::kEstablished, ts + kSec));
}

uint64_t PortsTowards(const Mirror& m, const Sock& s) {
  auto it = m.destinations().find({s.netns, s.dport, s.saddr, s.daddr});
  return it == m.destinations().end() ? 0 : it->second;
}

TEST(MirrorTimewaitTakeover, TwReuseEndsTheTimewaitEntryAndHoldsThePortOnce) {
  Mirror m(kBigTable);
  const Sock old_conn = Client(1);
  ClientToTimeWait(m, old_conn, kT0);
  ASSERT_NE(m.Find(1), nullptr);
  ASSERT_TRUE(IsTimewaitSock(*m.Find(1)));
  EXPECT_EQ(PortsTowards(m, old_conn), 1u);

  const Sock new_conn = Client(2);
  Reconnect(m, new_conn, kT0 + 10 * kSec);

  EXPECT_EQ(m.Find(1), nullptr);
  ASSERT_NE(m.Find(2), nullptr);
  EXPECT_EQ(m.Find(2)->state, S::kEstablished);
  ExpectCounts(m, kNetns, {{S::kEstablished, 1}});
  EXPECT_EQ(PortsTowards(m, new_conn), 1u);
  EXPECT_EQ(m.TimewaitSockets()[kNetns], 0u);
  EXPECT_EQ(m.stats().resyncs, 0u);
  // Its stay in TIME_WAIT ended at the take-over.
  EXPECT_EQ(m.durations()[tcpstated::StateIndex(S::kTimeWait)].count, 1u);
}

TEST(MirrorTimewaitTakeover, OrphanInFinWait2SubstateIsTakenOverToo) {
  Mirror m(kBigTable);
  const Sock old_conn = Client(1);
  uint64_t last = Walk(
      m, old_conn,
      {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2},
      kT0);
  m.Apply(StateChange(old_conn, S::kFinWait2, S::kClose, last + kSec));
  ASSERT_TRUE(InFinWait2Substate(*m.Find(1)));

  Reconnect(m, Client(2), kT0 + 10 * kSec);

  EXPECT_EQ(m.Find(1), nullptr);
  ExpectCounts(m, kNetns, {{S::kEstablished, 1}});
  EXPECT_EQ(m.TimewaitSockets()[kNetns], 0u);
}

TEST(MirrorTimewaitTakeover, PromotedOrphanIsStillTakenOver) {
  Mirror m(kBigTable);
  const Sock old_conn = Client(1);
  uint64_t last = Walk(
      m, old_conn,
      {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2},
      kT0);
  m.Apply(StateChange(old_conn, S::kFinWait2, S::kClose, last + kSec));
  // Its local peer closes: the orphan silently becomes TIME_WAIT.
  Sock peer(9, kServerPort, kClientPort);
  peer.saddr = old_conn.daddr;
  peer.daddr = old_conn.saddr;
  Walk(m, peer, {S::kCloseWait, S::kLastAck, S::kClose}, last + 2 * kSec);
  ASSERT_NE(m.Find(1), nullptr);
  ASSERT_EQ(m.Find(1)->state, S::kTimeWait);

  Reconnect(m, Client(2), kT0 + 20 * kSec);

  EXPECT_EQ(m.Find(1), nullptr);
  ExpectCounts(m, kNetns, {{S::kEstablished, 1}});
}

TEST(MirrorTimewaitTakeover, ServerTimeWaitTakenOverByANewChild) {
  // A SYN on a server-side TIME_WAIT socket's 4-tuple opened a new
  // connection (TCP_TW_SYN): the new child has that 4-tuple.
  Mirror m(kBigTable);
  Sock listener(100, kServerPort);
  m.Apply(StateChange(listener, S::kClose, S::kListen, kT0));
  Sock child(200, kServerPort, kClientPort);
  child.saddr = Ip(AF_INET, "192.0.2.2");
  child.daddr = Ip(AF_INET, "192.0.2.1");
  uint64_t last = Walk(
      m, child,
      {S::kListen, S::kSynRecv, S::kEstablished, S::kFinWait1, S::kFinWait2},
      kT0 + kSec);
  m.Apply(WithPeerFin(StateChange(child, S::kFinWait2, S::kClose, last + 1)));
  ASSERT_TRUE(IsTimewaitSock(*m.Find(200)));

  Sock next = child;
  next.id = 201;
  m.Apply(StateChange(next, S::kListen, S::kSynRecv, kT0 + 30 * kSec));

  EXPECT_EQ(m.Find(200), nullptr);
  ASSERT_NE(m.Find(201), nullptr);
  EXPECT_EQ(m.Find(201)->role, Role::kServer);
  ExpectCounts(m, kNetns, {{S::kListen, 1}, {S::kSynRecv, 1}});
}

TEST(MirrorTimewaitTakeover, OtherTuplesAndNamespacesAreLeftAlone) {
  Mirror m(kBigTable);
  ClientToTimeWait(m, Client(1), kT0);
  // Same tuple in another namespace; another local port; another peer.
  Reconnect(m, Client(2, kOtherNetns), kT0 + 10 * kSec);
  Sock other_port = Client(3);
  other_port.sport = kClientPort + 1;
  Reconnect(m, other_port, kT0 + 10 * kSec);
  Sock other_peer = Client(4);
  other_peer.daddr = Ip(AF_INET, "192.0.2.3");
  Reconnect(m, other_peer, kT0 + 10 * kSec);

  ASSERT_NE(m.Find(1), nullptr);
  EXPECT_TRUE(IsTimewaitSock(*m.Find(1)));
  ExpectCounts(m, kNetns, {{S::kTimeWait, 1}, {S::kEstablished, 2}});
  ExpectCounts(m, kOtherNetns, {{S::kEstablished, 1}});
}

// --- Closes that make no timewait socket -------------------------------

Event WithSocketError(Event e) {
  e.sock_error = true;
  return e;
}

TEST(MirrorCloseWithoutTimewait, ClosingToCloseAfterWriteTimeoutIsTheEnd) {
  // Simultaneous close whose last ACK never comes: tcp_write_err closes
  // the socket from CLOSING with sk_err set and no reset.
  Mirror m(kBigTable);
  const Sock s = Client(1);
  uint64_t last =
      Walk(m, s,
           {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kClosing},
           kT0);
  m.Apply(WithSocketError(StateChange(s, S::kClosing, S::kClose, last + 3)));

  EXPECT_EQ(m.Find(1), nullptr);
  ExpectCounts(m, kNetns, {});
  EXPECT_EQ(m.TimewaitSockets()[kNetns], 0u);
  EXPECT_EQ(PortsTowards(m, s), 0u);
}

TEST(MirrorCloseWithoutTimewait, ClosingToCloseWithoutErrorIsStillAHandOff) {
  Mirror m(kBigTable);
  const Sock s = Client(1);
  uint64_t last = Walk(m, s,
                       {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1,
                        S::kClosing, S::kClose},
                       kT0);
  (void)last;
  ASSERT_NE(m.Find(1), nullptr);
  EXPECT_TRUE(IsTimewaitSock(*m.Find(1)));
  ExpectCounts(m, kNetns, {{S::kTimeWait, 1}});
}

TEST(MirrorCloseWithoutTimewait, UnknownSocketClosedByAnErrorIsNotAdopted) {
  Mirror m(kBigTable);
  m.Apply(
      WithSocketError(StateChange(Client(1), S::kFinWait2, S::kClose, kT0)));
  m.Apply(WithSocketError(StateChange(Client(2), S::kClosing, S::kClose, kT0)));
  EXPECT_EQ(m.stats().tracked, 0u);
  ExpectCounts(m, kNetns, {});
}

// --- Ports held in SYN_SENT ---------------------------------------------

TEST(MirrorSynSentPort, FirstSynRetransmitTellsThePortHeld) {
  // connect() to a destination that never answers: CLOSE->SYN_SENT with
  // sport 0, then the SYN retransmits (tcp_retransmit_skb) with the port.
  Mirror m(kBigTable);
  const Sock s = Client(1);
  Sock before_port = s;
  before_port.sport = 0;
  m.Apply(StateChange(before_port, S::kClose, S::kSynSent, kT0));
  EXPECT_EQ(PortsTowards(m, s), 0u);
  EXPECT_EQ(m.Find(1)->sport, 0);

  Event retransmit = StateChange(s, S::kSynSent, S::kSynSent, kT0 + kSec);
  retransmit.source = tcpstated::Source::kSynRetrans;
  m.Apply(retransmit);
  m.Apply(retransmit);  // the next ones change nothing

  ASSERT_NE(m.Find(1), nullptr);
  EXPECT_EQ(m.Find(1)->sport, kClientPort);
  EXPECT_EQ(m.Find(1)->state, S::kSynSent);
  EXPECT_EQ(PortsTowards(m, s), 1u);
  ExpectCounts(m, kNetns, {{S::kSynSent, 1}});
  EXPECT_EQ(m.stats().resyncs, 0u);

  // The connect times out: the port is free again.
  m.Apply(StateChange(s, S::kSynSent, S::kClose, kT0 + 127 * kSec));
  EXPECT_EQ(PortsTowards(m, s), 0u);
  EXPECT_EQ(m.stats().tracked, 0u);
}

TEST(MirrorSynSentPort, RetransmitOfAnUnknownOrLaterSocketIsIgnored) {
  Mirror m(kBigTable);
  const Sock s = Client(1);
  Event retransmit = StateChange(s, S::kSynSent, S::kSynSent, kT0);
  retransmit.source = tcpstated::Source::kSynRetrans;
  m.Apply(retransmit);
  EXPECT_EQ(m.stats().tracked, 0u);
  EXPECT_EQ(PortsTowards(m, s), 0u);
}

}  // namespace
