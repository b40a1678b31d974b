// Unit tests of tcpstated::PeerLivenessDetector: idle connections split by
// keepalive, dead peers by reason (keepalive probes, retransmissions), which
// pending timer makes which counter count, the fold and the log lines.

#include "tcpstated/peer_liveness.h"

#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <string>
#include <vector>

namespace tcpstated {
namespace {

using Labels = std::map<std::string, std::string>;

EstablishedSocket Conn(uint16_t port, double idle, PendingTimer timer,
                       uint8_t probes = 0, uint8_t retransmits = 0) {
  EstablishedSocket s;
  s.netns = 1;
  s.comm = "svc";
  s.unit = "svc.service";
  s.role = Role::kServer;
  s.port = port;
  s.idle_seconds = idle;
  s.timer = timer;
  s.probes = probes;
  s.retransmits = retransmits;
  return s;
}

Labels L(uint16_t port, const char* split_label, const char* split) {
  return {{"netns", "1"},
          {"comm", "svc"},
          {"unit", "svc.service"},
          {"role", "server"},
          {"port", std::to_string(port)},
          {split_label, split}};
}

double ValueOf(const std::vector<Series>& series, const Labels& labels) {
  for (const Series& s : series) {
    if (s.labels == labels) return s.value;
  }
  ADD_FAILURE() << "no series with the labels";
  return -1;
}

TEST(PeerLivenessTest, DeadPeerReadsTheCounterOfThePendingTimer) {
  EXPECT_EQ(DeadPeerOf(Conn(1, 0, PendingTimer::kRetransmit, 0, 3), 3),
            DeadPeerReason::kRetransmit);
  EXPECT_EQ(DeadPeerOf(Conn(1, 0, PendingTimer::kRetransmit, 0, 2), 3),
            DeadPeerReason::kNone);
  // A stale probe count under the retransmit timer is not a dead peer.
  EXPECT_EQ(DeadPeerOf(Conn(1, 0, PendingTimer::kRetransmit, 9, 0), 3),
            DeadPeerReason::kNone);
  EXPECT_EQ(DeadPeerOf(Conn(1, 0, PendingTimer::kKeepalive, 3, 0), 3),
            DeadPeerReason::kKeepalive);
  EXPECT_EQ(DeadPeerOf(Conn(1, 0, PendingTimer::kKeepalive, 0, 9), 3),
            DeadPeerReason::kNone);
  // Zero-window probes are answered: the peer is alive.
  EXPECT_EQ(DeadPeerOf(Conn(1, 0, PendingTimer::kZeroWindowProbe, 9, 9), 3),
            DeadPeerReason::kNone);
  EXPECT_EQ(DeadPeerOf(Conn(1, 0, PendingTimer::kNone, 9, 9), 3),
            DeadPeerReason::kNone);
}

TEST(PeerLivenessTest, IdleSplitByKeepaliveAndDeadByReason) {
  PeerLivenessDetector detector;
  PeerLivenessConfig config;
  config.idle_after_seconds = 60;
  config.dead_peer_retries = 2;
  PeerLivenessReport r = detector.Evaluate(
      {Conn(80, 61, PendingTimer::kNone), Conn(80, 120, PendingTimer::kNone),
       Conn(80, 90, PendingTimer::kKeepalive, 2),
       Conn(80, 60, PendingTimer::kNone),  // at the threshold: not idle
       Conn(443, 1, PendingTimer::kRetransmit, 0, 5)},
      config);
  EXPECT_EQ(ValueOf(r.idle_sockets, L(80, "keepalive", "off")), 2);
  EXPECT_EQ(ValueOf(r.idle_longest_seconds, L(80, "keepalive", "off")), 120);
  EXPECT_EQ(ValueOf(r.idle_sockets, L(80, "keepalive", "on")), 1);
  EXPECT_EQ(r.idle_sockets.size(), 2u);
  EXPECT_EQ(ValueOf(r.dead_peer_sockets, L(80, "reason", "keepalive")), 1);
  EXPECT_EQ(ValueOf(r.dead_peer_sockets, L(443, "reason", "retransmit")), 1);
  ASSERT_EQ(r.started.size(), 2u);
  EXPECT_NE(r.started[0].find("3 ESTABLISHED sockets"), std::string::npos)
      << r.started[0];
  EXPECT_NE(r.started[0].find("(2 without keepalive)"), std::string::npos)
      << r.started[0];
  EXPECT_NE(r.started[1].find("dead peers started: 2 connections"),
            std::string::npos)
      << r.started[1];

  r = detector.Evaluate({Conn(80, 61, PendingTimer::kNone)}, config);
  EXPECT_TRUE(r.started.empty());
  ASSERT_EQ(r.cleared.size(), 1u);
  EXPECT_EQ(r.cleared[0].rfind("dead peers cleared", 0), 0u);
  r = detector.Evaluate({}, config);
  ASSERT_EQ(r.cleared.size(), 1u);
  EXPECT_EQ(r.cleared[0].rfind("idle connections cleared", 0), 0u);
  EXPECT_TRUE(r.idle_sockets.empty());
}

// A dump without tcp_info (every 5 min at the defaults) judges dead peers
// only: the idle series and state stand until a dump with tcp_info.
TEST(PeerLivenessTest, DeadPeersAloneKeepTheLastIdleJudgment) {
  PeerLivenessDetector detector;
  PeerLivenessConfig config;
  config.idle_after_seconds = 60;
  config.dead_peer_retries = 2;
  const double unknown = std::numeric_limits<double>::quiet_NaN();
  PeerLivenessReport r =
      detector.Evaluate({Conn(80, 90, PendingTimer::kNone)}, config);
  ASSERT_EQ(r.started.size(), 1u);
  EXPECT_EQ(ValueOf(r.idle_sockets, L(80, "keepalive", "off")), 1);

  PeerJudgments dead_only;
  dead_only.idle = false;
  r = detector.Evaluate({Conn(443, unknown, PendingTimer::kKeepalive, 2)},
                        config, dead_only);
  EXPECT_EQ(ValueOf(r.idle_sockets, L(80, "keepalive", "off")), 1);
  EXPECT_EQ(ValueOf(r.idle_longest_seconds, L(80, "keepalive", "off")), 90);
  EXPECT_EQ(ValueOf(r.dead_peer_sockets, L(443, "reason", "keepalive")), 1);
  ASSERT_EQ(r.started.size(), 1u);
  EXPECT_EQ(r.started[0].rfind("dead peers started", 0), 0u) << r.started[0];
  EXPECT_TRUE(r.cleared.empty());

  // And the other way round: an idle judgment alone keeps the dead peers.
  PeerJudgments idle_only;
  idle_only.dead = false;
  r = detector.Evaluate({}, config, idle_only);
  EXPECT_TRUE(r.idle_sockets.empty());
  EXPECT_EQ(ValueOf(r.dead_peer_sockets, L(443, "reason", "keepalive")), 1);
  ASSERT_EQ(r.cleared.size(), 1u);
  EXPECT_EQ(r.cleared[0].rfind("idle connections cleared", 0), 0u);

  r = detector.Evaluate({}, config, dead_only);
  EXPECT_TRUE(r.dead_peer_sockets.empty());
  ASSERT_EQ(r.cleared.size(), 1u);
  EXPECT_EQ(r.cleared[0].rfind("dead peers cleared", 0), 0u);
}

TEST(PeerLivenessTest, FoldsIntoOther) {
  PeerLivenessDetector detector;
  PeerLivenessConfig config;
  config.idle_after_seconds = 1;
  config.max_series_per_metric = 1;
  PeerLivenessReport r = detector.Evaluate(
      {Conn(80, 5, PendingTimer::kNone), Conn(80, 6, PendingTimer::kNone),
       Conn(81, 50, PendingTimer::kNone), Conn(82, 7, PendingTimer::kNone)},
      config);
  ASSERT_EQ(r.idle_sockets.size(), 2u);
  EXPECT_EQ(ValueOf(r.idle_sockets, L(80, "keepalive", "off")), 2);
  Labels other = {{"netns", "other"}, {"comm", "other"},
                  {"unit", "other"},  {"role", "other"},
                  {"port", "other"},  {"keepalive", "other"}};
  EXPECT_EQ(ValueOf(r.idle_sockets, other), 2);
  EXPECT_EQ(ValueOf(r.idle_longest_seconds, other), 50);
}

TEST(PeerLivenessTest, EveryFamilyPresentWhenEmpty) {
  auto families = PeerLivenessMetrics(PeerLivenessReport{});
  ASSERT_EQ(families.size(), 3u);
  for (const auto& f : families) EXPECT_FALSE(f.help.empty()) << f.name;
}

}  // namespace
}  // namespace tcpstated
