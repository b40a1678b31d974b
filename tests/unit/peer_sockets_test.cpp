// Unit tests of tcpstated::ClassifyPeerSockets: orphans told from full
// FIN_WAIT2 sockets, ages from the mirror and tcp_info, and only idle or
// dead-peer ESTABLISHED sockets looked up.

#include "tcpstated/peer_sockets.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace tcpstated {
namespace {

DiagSocket Diag(TcpState state, uint32_t inode, uint16_t sport,
                uint16_t dport) {
  DiagSocket d;
  d.state = state;
  d.inode = inode;
  d.sport = sport;
  d.dport = dport;
  d.netns = 9;
  d.cookie = inode + 1000;
  d.daddr = {192, 0, 2, 7};
  return d;
}

TEST(PeerSocketsTest, FinWait2OrphansAndAges) {
  DiagSocket full = Diag(TcpState::kFinWait2, 55, 40000, 80);
  full.last_ack_ms = 7000;  // older than the mirror's estimate
  DiagSocket full_young = Diag(TcpState::kFinWait2, 56, 40001, 80);
  full_young.last_ack_ms = 1000;
  DiagSocket orphan = Diag(TcpState::kFinWait2, 0, 40002, 80);
  DiagSocket tw = Diag(TcpState::kFinWait2, 0, 40003, 80);
  tw.timewait = true;
  tw.timer = 3;
  int lookups = 0;
  SocketLookup lookup = [&lookups](const DiagSocket& d) {
    lookups++;
    KnownSocket k;
    k.comm = "client";
    k.tgid = 42;
    k.role = Role::kClient;
    k.age_seconds = d.inode == 55 ? 3 : 4;
    return k;
  };
  PeerSockets out;
  ClassifyPeerSockets({full, full_young, orphan, tw}, PeerLivenessConfig{},
                      lookup, &out);
  EXPECT_EQ(lookups, 2);
  ASSERT_EQ(out.fin_wait2.size(), 4u);
  EXPECT_FALSE(out.fin_wait2[0].orphan);
  EXPECT_EQ(out.fin_wait2[0].age_seconds, 7);
  EXPECT_EQ(out.fin_wait2[0].comm, "client");
  EXPECT_EQ(out.fin_wait2[0].tgid, 42u);
  EXPECT_EQ(out.fin_wait2[0].dport, 80);
  EXPECT_EQ(out.fin_wait2[1].age_seconds, 4);
  EXPECT_TRUE(out.fin_wait2[2].orphan);
  EXPECT_TRUE(out.fin_wait2[3].orphan);
  EXPECT_TRUE(out.established.empty());
}

TEST(PeerSocketsTest, OnlyIdleOrDeadEstablishedSocketsAreKept) {
  PeerLivenessConfig config;
  config.idle_after_seconds = 10;
  config.dead_peer_retries = 2;
  DiagSocket busy = Diag(TcpState::kEstablished, 1, 80, 50000);
  busy.last_data_recv_ms = 100;
  DiagSocket idle = Diag(TcpState::kEstablished, 2, 80, 50001);
  idle.last_data_recv_ms = 10500;
  idle.timer = 2;
  DiagSocket dead = Diag(TcpState::kEstablished, 3, 50002, 443);
  dead.last_data_recv_ms = 200;
  dead.timer = 1;
  dead.retrans = 2;
  DiagSocket no_info = Diag(TcpState::kEstablished, 4, 80, 50003);
  int lookups = 0;
  SocketLookup lookup = [&lookups](const DiagSocket& d) {
    lookups++;
    KnownSocket k;
    k.role = d.inode == 3 ? Role::kClient : Role::kUnknown;
    return k;
  };
  PeerSockets out;
  ClassifyPeerSockets({busy, idle, dead, no_info}, config, lookup, &out);
  EXPECT_EQ(lookups, 2);
  ASSERT_EQ(out.established.size(), 2u);
  EXPECT_EQ(out.established[0].idle_seconds, 10.5);
  EXPECT_EQ(out.established[0].timer, PendingTimer::kKeepalive);
  // Not on a listening port (none in this dump): a client, the remote port.
  EXPECT_EQ(out.established[0].role, Role::kClient);
  EXPECT_EQ(out.established[0].port, 50001);
  EXPECT_EQ(out.established[0].inode, 2u);
  EXPECT_EQ(out.established[1].port, 443);  // client: the remote port
  EXPECT_EQ(DeadPeerOf(out.established[1], 2), DeadPeerReason::kRetransmit);
}

// A dump without tcp_info (the 5-min dead-peer dump at the defaults): the
// row's timer and count (idiag_timer, idiag_retrans) judge the peer; no
// idle time, so no idle verdict however long the socket was quiet.
TEST(PeerSocketsTest, DeadPeersFromTheRowWithoutTcpInfo) {
  PeerLivenessConfig config;
  config.idle_after_seconds = 10;
  config.dead_peer_retries = 3;
  DiagSocket quiet = Diag(TcpState::kEstablished, 1, 80, 50000);
  DiagSocket probed = Diag(TcpState::kEstablished, 2, 80, 50001);
  probed.timer = 2;
  probed.retrans = 3;
  DiagSocket retransmitting = Diag(TcpState::kEstablished, 3, 50002, 443);
  retransmitting.timer = 1;
  retransmitting.retrans = 4;
  DiagSocket few = Diag(TcpState::kEstablished, 4, 50003, 443);
  few.timer = 2;
  few.retrans = 2;
  DiagSocket window = Diag(TcpState::kEstablished, 5, 50004, 443);
  window.timer = 4;  // zero-window probes are answered
  window.retrans = 9;
  SocketLookup lookup = [](const DiagSocket&) { return KnownSocket{}; };
  PeerSockets out;
  ClassifyPeerSockets({quiet, probed, retransmitting, few, window}, config,
                      lookup, &out);
  ASSERT_EQ(out.established.size(), 2u);
  EXPECT_EQ(out.established[0].inode, 2u);
  EXPECT_EQ(DeadPeerOf(out.established[0], 3), DeadPeerReason::kKeepalive);
  EXPECT_TRUE(std::isnan(out.established[0].idle_seconds));
  EXPECT_EQ(out.established[1].inode, 3u);
  EXPECT_EQ(DeadPeerOf(out.established[1], 3), DeadPeerReason::kRetransmit);
}

// Sockets the mirror cannot match get their role from the dump's listeners.
TEST(PeerSocketsTest, RoleFromListenersWhenTheMirrorDoesNotKnow) {
  PeerLivenessConfig config;
  config.idle_after_seconds = 1;
  DiagSocket listener = Diag(TcpState::kListen, 10, 8080, 0);
  DiagSocket accepted = Diag(TcpState::kEstablished, 11, 8080, 50000);
  accepted.last_data_recv_ms = 5000;
  DiagSocket outbound = Diag(TcpState::kEstablished, 12, 41000, 5432);
  outbound.last_data_recv_ms = 5000;
  SocketLookup unknown = [](const DiagSocket&) { return KnownSocket{}; };
  PeerSockets out;
  ClassifyPeerSockets({accepted, outbound, listener}, config, unknown, &out);
  ASSERT_EQ(out.established.size(), 2u);
  EXPECT_EQ(out.established[0].role, Role::kServer);
  EXPECT_EQ(out.established[0].port, 8080);
  EXPECT_EQ(out.established[1].role, Role::kClient);
  EXPECT_EQ(out.established[1].port, 5432);
  EXPECT_TRUE(out.fin_wait2.empty());
}

}  // namespace
}  // namespace tcpstated
