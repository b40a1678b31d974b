// The three detections tcpstated exists for, as pure functions of what the
// mirror, the kernel's socket dump and the per-namespace counters say:
// CLOSE_WAIT leaks, SYN_RECV floods per listener, and ephemeral-port
// exhaustion per destination (plus TIME_WAIT buckets per namespace).
//
// The daemon gathers a DetectorInputs every evaluation (a few seconds apart)
// and calls Detectors::Evaluate; the result is cached and exposed at scrape
// time by BuildDetectorMetrics. Label sets that depend on traffic are bounded
// by max_series_per_metric: the largest series are kept, the rest are summed
// into one series whose traffic-dependent labels are "other", so sums stay
// exact.
//
// Thread-safety: Detectors is not thread-safe (one evaluating thread);
// BuildDetectorMetrics is a pure function.
//
// What throws: the Detectors constructor may throw std::bad_alloc. Evaluate
// and BuildDetectorMetrics never throw: if memory runs out they return an
// empty report (Evaluate then keeps its previous state) or no families.
#pragma once

#include <prometheus/metric_family.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tcpstated/event.h"
#include "tcpstated/kernel_settings.h"
#include "tcpstated/metric_family.h"
#include "tcpstated/tcp_state.h"

namespace tcpstated {

struct DetectorConfig {
  double close_wait_leak_after_seconds = 60;
  double syn_flood_half_open_ratio = 0.5;
  double synack_retransmit_rate = 100;  // per second, per listener
  double port_exhaustion_ratio = 0.8;
  double time_wait_buckets_ratio = 0.8;
  size_t max_series_per_metric = 50;
};

// One socket in CLOSE_WAIT.
struct CloseWaitSocket {
  uint32_t netns = 0;
  std::string comm;  // owner's command, "" if unknown
  std::string unit;  // owner's systemd unit, "" if unknown
  Role role = Role::kUnknown;
  // Server role: the listening (local) port; client role: the remote port;
  // unknown: the local port.
  uint16_t port = 0;
  double age_seconds = 0;  // time in CLOSE_WAIT (best estimate)
  // The daemon never saw it enter CLOSE_WAIT and has no saved time for it
  // (state_file.h): age_seconds is tcp_info's lower bound.
  bool age_lower_bound = false;
};

// One listening socket, with what the dump and the events say about it.
struct ListenerInput {
  uint32_t netns = 0;
  uint16_t port = 0;
  uint32_t accept_queue = 0;  // idiag_rqueue of the LISTEN socket
  uint32_t accept_limit = 0;  // idiag_wqueue: min(backlog, somaxconn)
  uint32_t half_open = 0;     // request sockets (NEW_SYN_RECV) on it
  uint64_t synack_retransmits_total = 0;  // monotonic, from the events
};

// Per network namespace.
struct NetnsInput {
  uint32_t netns = 0;
  std::string name;  // "host", the ip-netns name, or a process-derived name
  bool have_counters = false;
  TcpExtCounters counters;  // /proc/net/netstat of that namespace
  bool have_settings = false;
  TcpSettings settings;           // its sysctls
  uint64_t timewait_sockets = 0;  // both substates
};

// Sockets holding a local port towards one destination.
struct DestinationInput {
  uint32_t netns = 0;
  Address saddr{};
  Address daddr{};
  bool ipv6 = false;
  uint16_t dport = 0;
  uint64_t ports_used = 0;  // any state, TIME_WAIT included
};

struct DetectorInputs {
  std::vector<CloseWaitSocket> close_wait;
  std::vector<ListenerInput> listeners;
  std::vector<NetnsInput> namespaces;
  std::vector<DestinationInput> destinations;
};

struct DetectionReport {
  // CLOSE_WAIT, labels netns, comm, unit, role, port.
  std::vector<Series> close_wait_sockets;
  std::vector<Series> close_wait_leaked_sockets;
  std::vector<Series> close_wait_oldest_seconds;
  std::vector<Series> close_wait_age_lower_bound_sockets;
  // Per listener, labels netns, port.
  std::vector<Series> listen_syn_recv_sockets;
  std::vector<Series> listen_accept_queue_length;
  std::vector<Series> listen_accept_queue_limit;
  std::vector<Series> synack_retransmits_total;  // counter
  std::vector<Series> syn_flood_active;
  // Per namespace, label netns (counters from TcpExt).
  std::vector<Series> syncookies_sent_total;
  std::vector<Series> listen_overflows_total;
  std::vector<Series> listen_drops_total;
  std::vector<Series> syn_queue_full_drops_total;
  std::vector<Series> time_wait_overflows_total;
  std::vector<Series> ephemeral_ports_available;
  std::vector<Series> time_wait_limit;
  std::vector<Series> netns_info;  // labels netns, name; value 1
  // Per destination, labels netns, saddr, daddr, dport.
  std::vector<Series> ephemeral_ports_used;
  std::vector<Series> port_exhaustion_active;
  // Human-readable lines for detections that started or cleared in this
  // evaluation (one each), naming the top offenders. The caller logs them.
  std::vector<std::string> started;
  std::vector<std::string> cleared;
};

class Detectors {
 public:
  explicit Detectors(DetectorConfig config);
  ~Detectors();
  // Move-only: a copy would share (or fork) the previous counter values and
  // the active detections, and report transitions twice or never.
  Detectors(Detectors&&) noexcept;
  Detectors& operator=(Detectors&&) noexcept;
  Detectors(const Detectors&) = delete;
  Detectors& operator=(const Detectors&) = delete;

  // Evaluates every detector. `now_seconds` is a monotonic clock: SYN-ACK
  // retransmit rates are per second between consecutive evaluations, and SYN
  // cookies count when the namespace's counters rose since the previous one
  // (the first evaluation has no rates; a counter that goes back resets its
  // baseline). Keeps the set of active detections to report start and clear
  // transitions.
  DetectionReport Evaluate(const DetectorInputs& inputs, double now_seconds);

  void set_config(DetectorConfig config) { config_ = config; }

 private:
  DetectorConfig config_;
  // Implementation state: previous counter values and active detections.
  struct State;
  std::unique_ptr<State> state_;
};

// Metric families for a report (every family present, even when empty), as
// the table in detector_metrics.cpp declares them.
std::vector<prometheus::MetricFamily> BuildDetectorMetrics(
    const DetectionReport& report);

}  // namespace tcpstated
