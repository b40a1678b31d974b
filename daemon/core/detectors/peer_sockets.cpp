#include "tcpstated/peer_sockets.h"

#include <algorithm>
#include <limits>
#include <unordered_set>

namespace tcpstated {
namespace {

double SecondsOf(uint32_t ms) { return static_cast<double>(ms) / 1000.0; }

PendingTimer TimerOf(uint8_t idiag_timer) {
  switch (idiag_timer) {
    case 1:
      return PendingTimer::kRetransmit;
    case 2:
      return PendingTimer::kKeepalive;
    case 3:
      return PendingTimer::kTimewait;
    case 4:
      return PendingTimer::kZeroWindowProbe;
    default:
      return PendingTimer::kNone;
  }
}

uint16_t OwnerPort(Role role, const DiagSocket& d) {
  return role == Role::kClient ? d.dport : d.sport;
}

// Local ports with a LISTEN socket in the dump.
using ListenPorts = std::unordered_set<uint16_t>;

// The mirror's role, or, for a socket it cannot match (older than the
// daemon and not yet attributed, or a classic-tracepoint id), the dump's:
// a connection on a local listening port was accepted.
Role RoleOf(const KnownSocket& known, const DiagSocket& d,
            const ListenPorts& listening) {
  if (known.role != Role::kUnknown) return known.role;
  return listening.count(d.sport) != 0 ? Role::kServer : Role::kClient;
}

void AddFinWait2(const DiagSocket& d, const SocketLookup& lookup,
                 PeerSockets* out) {
  FinWait2Socket s;
  s.netns = d.netns;
  s.orphan = d.timewait || d.inode == 0;
  s.ipv6 = d.ipv6;
  s.daddr = d.daddr;
  s.dport = d.dport;
  double age = d.last_ack_ms != kNoTcpInfo ? SecondsOf(d.last_ack_ms) : 0;
  if (!s.orphan) {
    KnownSocket known = lookup(d);
    s.comm = std::move(known.comm);
    s.tgid = known.tgid;
    s.inode = d.inode;
    age = std::max(age, known.age_seconds);
  }
  s.age_seconds = age;
  out->fin_wait2.push_back(std::move(s));
}

void AddEstablished(const DiagSocket& d, const PeerLivenessConfig& liveness,
                    const SocketLookup& lookup, const ListenPorts& listening,
                    PeerSockets* out) {
  EstablishedSocket s;
  // Without tcp_info (a dead-peer judgment alone) the idle time is unknown.
  s.idle_seconds = d.last_data_recv_ms == kNoTcpInfo
                       ? std::numeric_limits<double>::quiet_NaN()
                       : SecondsOf(d.last_data_recv_ms);
  s.timer = TimerOf(d.timer);
  // inet_sk_diag_fill puts the live count of the pending timer in
  // idiag_retrans: icsk_retransmits for the retransmit timer (1),
  // icsk_probes_out for the keepalive (2) and zero-window (4) ones; the
  // very fields tcp_get_info copies to tcpi_retransmits and tcpi_probes
  // (5.10 to 6.18). So the row alone judges a dead peer, with or without
  // tcp_info, and both ways give the same verdict.
  if (s.timer == PendingTimer::kRetransmit) s.retransmits = d.retrans;
  if (s.timer == PendingTimer::kKeepalive ||
      s.timer == PendingTimer::kZeroWindowProbe) {
    s.probes = d.retrans;
  }
  if (!(s.idle_seconds > liveness.idle_after_seconds) &&
      DeadPeerOf(s, liveness.dead_peer_retries) == DeadPeerReason::kNone) {
    return;
  }
  KnownSocket known = lookup(d);
  s.netns = d.netns;
  s.comm = std::move(known.comm);
  s.tgid = known.tgid;
  s.inode = d.inode;
  s.role = RoleOf(known, d, listening);
  s.port = OwnerPort(s.role, d);
  out->established.push_back(std::move(s));
}

}  // namespace

void ClassifyPeerSockets(const std::vector<DiagSocket>& dump,
                         const PeerLivenessConfig& liveness,
                         const SocketLookup& lookup, PeerSockets* out) {
  ListenPorts listening;
  for (const DiagSocket& d : dump) {
    if (d.state == TcpState::kListen) listening.insert(d.sport);
  }
  for (const DiagSocket& d : dump) {
    if (d.state == TcpState::kFinWait2) {
      AddFinWait2(d, lookup, out);
    } else if (d.state == TcpState::kEstablished && !d.timewait) {
      AddEstablished(d, liveness, lookup, listening, out);
    }
  }
}

}  // namespace tcpstated
