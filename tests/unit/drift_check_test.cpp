#include "tcpstated/drift_check.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace tcpstated {
namespace {

// Text as 6.18 printed it in a namespace with a listener, an established
// pair and two timewait sockets (one IPv6).
constexpr const char* kSockstat =
    "sockets: used 5\n"
    "TCP: inuse 3 orphan 7 tw 2 alloc 9 mem 333\n"
    "UDP: inuse 0 mem 0\n"
    "UDPLITE: inuse 0\n"
    "RAW: inuse 0\n"
    "FRAG: inuse 0 memory 0\n";
constexpr const char* kSockstat6 =
    "TCP6: inuse 1\nUDP6: inuse 0\nUDPLITE6: inuse 0\nRAW6: inuse 0\n"
    "FRAG6: inuse 0 memory 0\n";

TEST(ParseSockstat, AddsBothFamiliesAndTakesTimewaitFromIpv4) {
  SocketTotals t = ParseSockstat(kSockstat, kSockstat6);
  EXPECT_EQ(t.inuse, 4u);
  EXPECT_EQ(t.timewait, 2u);
}

TEST(ParseSockstat, NoIpv6IsNoIpv6Socket) {
  SocketTotals t = ParseSockstat(kSockstat, "");
  EXPECT_EQ(t.inuse, 3u);
}

TEST(ParseSockstat, RejectsMissingOrMalformedLines) {
  EXPECT_THROW(ParseSockstat("UDP: inuse 0 mem 0\n", ""),
               std::invalid_argument);
  EXPECT_THROW(ParseSockstat("TCP: inuse x orphan 0 tw 0\n", ""),
               std::invalid_argument);
  EXPECT_THROW(ParseSockstat("TCP: inuse 1 orphan 0\n", ""),
               std::invalid_argument);
  EXPECT_THROW(ParseSockstat("TCP: inuse -1 orphan 0 tw 0\n", ""),
               std::invalid_argument);
  EXPECT_THROW(ParseSockstat(kSockstat, "UDP6: inuse 0\n"),
               std::invalid_argument);
}

TEST(MirrorTotals, CountsWhatTheKernelHashes) {
  StateCounts c{};
  c[StateIndex(TcpState::kListen)] = 1;
  c[StateIndex(TcpState::kEstablished)] = 2;
  c[StateIndex(TcpState::kCloseWait)] = 1;
  c[StateIndex(TcpState::kTimeWait)] = 3;
  c[StateIndex(TcpState::kFinWait2)] = 2;  // one of them a timewait orphan
  c[StateIndex(TcpState::kNewSynRecv)] = 50;
  c[StateIndex(TcpState::kClose)] = 4;
  SocketTotals t = MirrorTotals(c, /*timewait=*/4);
  EXPECT_EQ(t.timewait, 4u);
  EXPECT_EQ(t.inuse, 5u);  // LISTEN, 2 ESTABLISHED, CLOSE_WAIT, FIN_WAIT2
}

TEST(MirrorTotals, NeverNegative) {
  StateCounts c{};
  EXPECT_EQ(MirrorTotals(c, 3).inuse, 0u);
}

TEST(DriftBetween, SumsBothDifferences) {
  EXPECT_EQ(DriftBetween({10, 2}, {10, 2}), 0u);
  EXPECT_EQ(DriftBetween({10, 2}, {12, 1}), 3u);
}

TEST(DriftBetween, KernelTimewaitTimersMayLag) {
  // The mirror aged out 3 timewait sockets the kernel still holds: no
  // drift; a fourth is.
  EXPECT_EQ(DriftBetween({10, 5}, {10, 2}, 3), 0u);
  EXPECT_EQ(DriftBetween({10, 6}, {10, 2}, 3), 1u);
  // A timewait socket the kernel killed (an RST) is drift at once.
  EXPECT_EQ(DriftBetween({10, 1}, {10, 2}, 3), 1u);
}

TEST(DriftTracker, ConfirmsAfterConsecutiveChecks) {
  DriftTracker t;
  t.Observe(7, 1, 0);
  EXPECT_TRUE(t.Drifting().empty());
  t.Observe(7, 1, 0);
  EXPECT_EQ(t.Drifting(), std::set<uint32_t>{7});
  EXPECT_EQ(t.last_drift().at(7), 1u);
  t.Reconciled(7);
  EXPECT_TRUE(t.Drifting().empty());
}

TEST(DriftTracker, InFlightEventsExplainDrift) {
  DriftTracker t;
  // Three events applied meanwhile explain up to six.
  t.Observe(7, 6, 3);
  t.Observe(7, 6, 3);
  EXPECT_TRUE(t.Drifting().empty());
  t.Observe(7, 7, 3);
  t.Observe(7, 7, 3);
  EXPECT_EQ(t.Drifting(), std::set<uint32_t>{7});
}

TEST(DriftTracker, AnAgreeingCheckBreaksTheStreak) {
  DriftTracker t;
  t.Observe(7, 5, 0);
  t.Observe(7, 0, 0);
  t.Observe(7, 5, 0);
  EXPECT_TRUE(t.Drifting().empty());
  t.Observe(8, 1, 0);
  t.Observe(8, 1, 0);
  t.Forget(8);
  EXPECT_TRUE(t.Drifting().empty());
  EXPECT_EQ(t.last_drift().count(8), 0u);
}

TEST(DriftTracker, LostEventsComparedWithTheLastFullReconcile) {
  DriftTracker t;
  EXPECT_FALSE(t.LostSince(5));  // the first reading is the baseline
  EXPECT_FALSE(t.LostSince(5));
  EXPECT_TRUE(t.LostSince(6));
  t.ReconciledAll(6);
  EXPECT_FALSE(t.LostSince(6));
}

// The allowance for events in flight is counted per namespace: a busy
// namespace next door must not hide a quiet one's drift.
TEST(MirrorEventsIn, CountsEachNamespaceApart) {
  Mirror mirror(100);
  auto event = [](uint32_t netns, uint64_t id, TcpState from, TcpState to) {
    Event e;
    e.netns = netns;
    e.id = id;
    e.id_is_cookie = true;
    e.sport = 40000;
    e.dport = 80;
    e.oldstate = from;
    e.newstate = to;
    return e;
  };
  mirror.Apply(event(1, 1, TcpState::kClose, TcpState::kSynSent));
  mirror.Apply(event(1, 1, TcpState::kSynSent, TcpState::kEstablished));
  mirror.Apply(event(2, 2, TcpState::kClose, TcpState::kSynSent));
  EXPECT_EQ(mirror.EventsIn(1), 2u);
  EXPECT_EQ(mirror.EventsIn(2), 1u);
  EXPECT_EQ(mirror.EventsIn(3), 0u);
  mirror.DropNamespace(1);
  EXPECT_EQ(mirror.EventsIn(1), 0u);
  mirror.Apply(event(1, 3, TcpState::kClose, TcpState::kSynSent));
  EXPECT_EQ(mirror.EventsIn(1), 1u);
}

TEST(ReasonName, EveryReasonHasALabel) {
  for (ReconcileReason r : kReconcileReasons) {
    EXPECT_NE(std::string(ReasonName(r)), "unknown");
  }
}

}  // namespace
}  // namespace tcpstated
