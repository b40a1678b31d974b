// Unit tests of tcpstated::Mirror on orphaned FIN_WAIT2 sockets: their
// lifetime follows the socket's TCP_LINGER2 and the namespace's
// tcp_fin_timeout (with the kernel's split above 60 s), and a reset sent by
// their timewait socket, or received by their local peer, ends them.

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>

#include "mirror_test_events.h"
#include "tcpstated/event.h"
#include "tcpstated/mirror.h"
#include "tcpstated/tcp_state.h"

namespace {

using tcpstated::Event;
using tcpstated::Mirror;
using tcpstated::Source;
using tcpstated::test::ExpectCounts;
using tcpstated::test::InFinWait2Substate;
using tcpstated::test::Ip;
using tcpstated::test::kBigTable;
using tcpstated::test::kNetns;
using tcpstated::test::kSec;
using tcpstated::test::kT0;
using tcpstated::test::Reset;
using tcpstated::test::Sock;
using tcpstated::test::StateChange;
using tcpstated::test::Walk;
using S = tcpstated::TcpState;

// A kernel with HZ=250, whose namespace keeps tcp_fin_timeout at 60 s.
constexpr uint32_t kHz = 250;

Sock Client(uint64_t id) {
  Sock s(id, 40001, 80);
  s.saddr = Ip(AF_INET, "192.0.2.1");
  s.daddr = Ip(AF_INET, "192.0.2.2");
  return s;
}

// Its peer, the server side of the same connection.
Sock Peer(const Sock& c, uint64_t id) {
  Sock p(id, c.dport, c.sport);
  p.saddr = c.daddr;
  p.daddr = c.saddr;
  return p;
}

// The socket's own TCP_LINGER2 as the CLOSE event carries it: its
// tcp_fin_time() and the namespace's tcp_fin_timeout, in jiffies (a
// fin_time of 0 means linger2 < 0).
struct OwnLinger {
  uint32_t fin_time_jiffies = 0;
  uint32_t fin_timeout_jiffies = 0;
};

// The client closes first and its FIN is acknowledged: the orphan's
// hand-off, with the socket's own TCP_LINGER2 when `own` is set. Returns
// the hand-off time.
uint64_t Orphan(Mirror& m, const Sock& s,
                std::optional<OwnLinger> own = std::nullopt) {
  uint64_t last = Walk(
      m, s,
      {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2},
      kT0);
  Event e = StateChange(s, S::kFinWait2, S::kClose, last + kSec);
  if (own) {
    e.own_linger2 = true;
    e.fin_time_jiffies = own->fin_time_jiffies;
    e.fin_timeout_jiffies = own->fin_timeout_jiffies;
  }
  m.Apply(e);
  return e.ts_ns;
}

// The same with a linger2 of `linger_s` seconds (negative: -1) in a
// namespace whose tcp_fin_timeout is 60 s.
uint64_t Orphan(Mirror& m, const Sock& s, int linger_s) {
  return Orphan(
      m, s,
      OwnLinger{linger_s < 0 ? 0 : static_cast<uint32_t>(linger_s) * kHz,
                60 * kHz});
}

TEST(MirrorOrphans, NamespaceFinTimeoutIsTheDefaultLifetime) {
  Mirror m(kBigTable);
  m.SetFinTimeout(kNetns, 30 * kSec);
  const uint64_t t = Orphan(m, Client(1));
  ASSERT_TRUE(InFinWait2Substate(*m.Find(1)));
  m.Expire(t + 29 * kSec);
  EXPECT_NE(m.Find(1), nullptr);
  m.Expire(t + 30 * kSec);
  EXPECT_EQ(m.Find(1), nullptr);
  ExpectCounts(m, kNetns, {});
}

TEST(MirrorOrphans, OwnLinger2SetsTheLifetime) {
  Mirror m(kBigTable);
  m.SetFinTimeout(kNetns, 60 * kSec);
  const uint64_t t = Orphan(m, Client(1), 2);
  ASSERT_NE(m.Find(1), nullptr);
  ExpectCounts(m, kNetns, {{S::kFinWait2, 1}});
  m.Expire(t + 2 * kSec - 1);
  EXPECT_NE(m.Find(1), nullptr);
  m.Expire(t + 2 * kSec);
  EXPECT_EQ(m.Find(1), nullptr);
  EXPECT_EQ(m.TimewaitSockets()[kNetns], 0u);
}

TEST(MirrorOrphans, JiffiesAreScaledByTheNamespaceFinTimeout) {
  // The namespace's tcp_fin_timeout is 10 s = 2500 jiffies; a linger2 of
  // 4 s is 1000 jiffies whatever HZ is.
  Mirror m(kBigTable);
  m.SetFinTimeout(kNetns, 10 * kSec);
  const uint64_t t = Orphan(m, Client(1), OwnLinger{4 * kHz, 10 * kHz});
  m.Expire(t + 4 * kSec - 1);
  EXPECT_NE(m.Find(1), nullptr);
  m.Expire(t + 4 * kSec);
  EXPECT_EQ(m.Find(1), nullptr);
}

TEST(MirrorOrphans, AnImpossibleFinTimeIsBoundedByTheKernelsLongest) {
  // A corrupt record (found by fuzz-decoder): 2^32-1 jiffies at one jiffy
  // per 60 s overflowed the conversion. The kernel's fin time is an int of
  // jiffies at HZ >= 100, so no orphan outlives 2^31 / 100 s.
  constexpr uint64_t kLongest = (uint64_t{1} << 31) / 100 * kSec;
  Mirror m(kBigTable);
  m.SetFinTimeout(kNetns, 60 * kSec);
  const uint64_t t = Orphan(m, Client(1), OwnLinger{UINT32_MAX, 1});
  ASSERT_NE(m.Find(1), nullptr);
  m.Expire(t + kLongest - 60 * kSec - 1);
  EXPECT_NE(m.Find(1), nullptr);
  m.Expire(t + kLongest - 60 * kSec);
  EXPECT_EQ(m.Find(1), nullptr);
}

TEST(MirrorOrphans, NegativeLinger2MakesNoTimewaitSocket) {
  Mirror m(kBigTable);
  Orphan(m, Client(1), -1);
  EXPECT_EQ(m.Find(1), nullptr);
  ExpectCounts(m, kNetns, {});
  EXPECT_EQ(m.TimewaitSockets()[kNetns], 0u);
}

TEST(MirrorOrphans, AboveSixtySecondsTheTimewaitPartIsFinTimeMinusSixty) {
  // linger2 90 s: the kernel kept the full socket 30 s on its keepalive
  // timer, then hands off for 30 s.
  Mirror m(kBigTable);
  const uint64_t t = Orphan(m, Client(1), 90);
  m.Expire(t + 30 * kSec - 1);
  EXPECT_NE(m.Find(1), nullptr);
  m.Expire(t + 30 * kSec);
  EXPECT_EQ(m.Find(1), nullptr);

  // The same split for a namespace's tcp_fin_timeout above 60 s.
  Mirror n(kBigTable);
  n.SetFinTimeout(kNetns, 100 * kSec);
  const uint64_t u = Orphan(n, Client(2));
  n.Expire(u + 40 * kSec - 1);
  EXPECT_NE(n.Find(2), nullptr);
  n.Expire(u + 40 * kSec);
  EXPECT_EQ(n.Find(2), nullptr);
}

TEST(MirrorOrphans, PeerFinStillMeansSixtySecondsOfTimeWait) {
  Mirror m(kBigTable);
  const Sock s = Client(1);
  const uint64_t t = Orphan(m, s, 2);
  // Its local peer closes: the orphan silently becomes TIME_WAIT (60 s).
  Walk(m, Peer(s, 9), {S::kCloseWait, S::kLastAck, S::kClose}, t + 1);
  ASSERT_NE(m.Find(1), nullptr);
  ASSERT_EQ(m.Find(1)->state, S::kTimeWait);
  m.Expire(t + 10 * kSec);
  EXPECT_NE(m.Find(1), nullptr);
}

TEST(MirrorOrphans, ResetSentByTheTimewaitSocketEndsIt) {
  // TCP_TW_RST: data from the peer reaches the orphan, which answers with
  // a reset and is freed. The event names the timewait socket by 4-tuple.
  Mirror m(kBigTable);
  const Sock s = Client(1);
  const uint64_t t = Orphan(m, s);
  Sock tw = s;
  tw.id = 0;  // a classic tracepoint's timewait socket has no incarnation
  m.Apply(Reset(tw, Source::kSendReset, S::kTimeWait, t + kSec));
  EXPECT_EQ(m.Find(1), nullptr);
  ExpectCounts(m, kNetns, {});
  EXPECT_EQ(m.TimewaitSockets()[kNetns], 0u);
}

TEST(MirrorOrphans, ResetReceivedByTheLocalPeerEndsIt) {
  // Before 6.10 the timewait socket's reset is not traced; the local peer
  // receiving it on the same 4-tuple is.
  Mirror m(kBigTable);
  const Sock s = Client(1);
  const uint64_t t = Orphan(m, s);
  const Sock peer = Peer(s, 9);
  Walk(m, peer, {S::kClose, S::kSynSent, S::kEstablished, S::kCloseWait}, kT0);
  m.Apply(Reset(peer, Source::kReceiveReset, S::kCloseWait, t + kSec));
  m.Apply(StateChange(peer, S::kCloseWait, S::kClose, t + kSec));
  EXPECT_EQ(m.Find(1), nullptr);
  EXPECT_EQ(m.Find(9), nullptr);
  ExpectCounts(m, kNetns, {});
}

TEST(MirrorOrphans, ResetOfAnotherTupleLeavesTheOrphan) {
  Mirror m(kBigTable);
  const Sock s = Client(1);
  const uint64_t t = Orphan(m, s);
  Sock other = s;
  other.id = 0;
  other.sport = 40002;
  m.Apply(Reset(other, Source::kSendReset, S::kTimeWait, t + kSec));
  EXPECT_NE(m.Find(1), nullptr);
  ExpectCounts(m, kNetns, {{S::kFinWait2, 1}});
}

}  // namespace
