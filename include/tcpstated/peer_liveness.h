// Idle connections and dead peers, from what the kernel knows of each
// ESTABLISHED socket (tcp_info and the pending timer, read by sock_diag):
//  - idle: nothing received for longer than detectors.idle_after, split by
//    whether keepalive is armed. Without keepalive an idle connection to a
//    peer that vanished (rebooted, removed by a NAT or firewall) is never
//    noticed until the application writes; with the default keepalive it
//    takes over two hours.
//  - dead peer: the peer does not answer. Keepalive probes go unanswered,
//    or data is retransmitted with exponential backoff and never
//    acknowledged: detectors.dead_peer_retries consecutive probes or
//    retransmissions. The kernel only gives up after tcp_keepalive_probes
//    probes, or tcp_retries2 retransmissions (about 15 minutes).
// A zero-window probe is not a dead peer: the peer answers, it just does
// not read.
//
// Thread-safety: a PeerLivenessDetector is used by one thread; the metric
// builder is a pure function. What throws: std::bad_alloc only.
#pragma once

#include <prometheus/metric_family.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tcpstated/detectors.h"
#include "tcpstated/tcp_state.h"

namespace tcpstated {

// idiag_timer values (inet_diag): which timer is pending on the socket.
enum class PendingTimer : uint8_t {
  kNone = 0,
  kRetransmit = 1,
  kKeepalive = 2,
  kTimewait = 3,
  kZeroWindowProbe = 4,
};

// One ESTABLISHED socket.
struct EstablishedSocket {
  uint32_t netns = 0;
  std::string comm;  // owner's command, "" if unknown
  std::string unit;  // owner's systemd unit, "" if unknown
  Role role = Role::kUnknown;
  // Server: the local (listening) port; client: the remote port; unknown:
  // the local port (as for CLOSE_WAIT).
  uint16_t port = 0;
  // Since data last arrived (tcpi_last_data_recv); NaN when the dump
  // carried no tcp_info (a dead-peer judgment alone).
  double idle_seconds = 0;
  // The pending timer and its count, as every inet_diag row gives them
  // (idiag_timer, idiag_retrans): unanswered keepalive or zero-window
  // probes (icsk_probes_out, what tcp_info calls tcpi_probes) and
  // consecutive retransmission timeouts (icsk_retransmits, tcpi_retransmits).
  PendingTimer timer = PendingTimer::kNone;
  uint8_t probes = 0;
  uint8_t retransmits = 0;
  // Where the caller finds `comm` and `unit` when they are unknown: the
  // owning process, or else the socket's inode (0: none). Not labels.
  uint32_t tgid = 0;
  uint32_t inode = 0;
};

enum class DeadPeerReason { kNone, kKeepalive, kRetransmit };
std::string_view DeadPeerReasonName(DeadPeerReason reason);

// Whether the socket's peer is not answering, and how we know: the pending
// timer says which counter is live (the other keeps a stale value).
DeadPeerReason DeadPeerOf(const EstablishedSocket& socket, unsigned retries);

struct PeerLivenessConfig {
  double idle_after_seconds = 3600;
  unsigned dead_peer_retries = 3;
  size_t max_series_per_metric = 50;
};

struct PeerLivenessReport {
  // Labels netns, comm, unit, role, port, keepalive ("on"/"off").
  std::vector<Series> idle_sockets;
  std::vector<Series> idle_longest_seconds;
  // Labels netns, comm, unit, role, port, reason ("keepalive"/"retransmit").
  std::vector<Series> dead_peer_sockets;
  std::vector<std::string> started;
  std::vector<std::string> cleared;
};

// Which detections a dump lets the detector judge: dead peers from any
// dump of ESTABLISHED sockets, idle connections only from one with
// tcp_info.
struct PeerJudgments {
  bool idle = true;
  bool dead = true;
};

class PeerLivenessDetector {
 public:
  // Groups `sockets`; one start/clear line per detection (idle, dead peer)
  // when the host goes from none to some or back. A detection not in
  // `judge` keeps its last series and says nothing.
  PeerLivenessReport Evaluate(const std::vector<EstablishedSocket>& sockets,
                              const PeerLivenessConfig& config,
                              PeerJudgments judge = {});

 private:
  bool idle_ = false;
  bool dead_ = false;
  // The last judged series of each detection.
  std::vector<Series> idle_sockets_;
  std::vector<Series> idle_longest_seconds_;
  std::vector<Series> dead_peer_sockets_;
};

// The families of a report, every one present even when empty.
std::vector<prometheus::MetricFamily> PeerLivenessMetrics(
    const PeerLivenessReport& report);

}  // namespace tcpstated
