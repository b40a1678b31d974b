// The detectors' metric families: one row per family of a
// DetectionReport, in exposition order. A new detector adds its series to
// the report and its row here.
#include <iterator>

#include "tcpstated/detectors.h"
#include "tcpstated/metric_family.h"

namespace tcpstated {
namespace {

using prometheus::MetricFamily;
using prometheus::MetricType;

struct ReportFamily {
  FamilySpec spec;
  std::vector<Series> DetectionReport::*series;
};

const ReportFamily kReportFamilies[] = {
    {{"tcpstated_close_wait_sockets",
      "Sockets in CLOSE_WAIT: the peer closed the connection but the "
      "application has not called close() yet; per owner process, systemd "
      "unit, role and port (the largest groups, the rest summed under "
      "\"other\").",
      MetricType::Gauge},
     &DetectionReport::close_wait_sockets},
    {{"tcpstated_close_wait_leaked_sockets",
      "Sockets in CLOSE_WAIT for longer than "
      "detectors.close_wait_leak_after: the application is most likely "
      "leaking them (never calling close()), which ends in file descriptor "
      "exhaustion.",
      MetricType::Gauge},
     &DetectionReport::close_wait_leaked_sockets},
    {{"tcpstated_close_wait_oldest_seconds",
      "Age of the oldest socket in CLOSE_WAIT in the group: how long the "
      "application has been ignoring the peer's close.",
      MetricType::Gauge},
     &DetectionReport::close_wait_oldest_seconds},
    {{"tcpstated_close_wait_age_lower_bound_sockets",
      "Sockets in CLOSE_WAIT whose age is only a lower bound: they predate "
      "the daemon and no saved age (state.directory) was taken back for "
      "them, so it comes from tcp_info's last ACK, which keepalive ACKs "
      "reset. Their leak may be older than close_wait_oldest_seconds says.",
      MetricType::Gauge},
     &DetectionReport::close_wait_age_lower_bound_sockets},
    {{"tcpstated_listen_syn_recv_sockets",
      "Half-open connections on a listener (SYN received and SYN-ACK sent, "
      "final ACK still missing); many of them mean a SYN flood or clients "
      "that cannot reach back.",
      MetricType::Gauge},
     &DetectionReport::listen_syn_recv_sockets},
    {{"tcpstated_listen_accept_queue_length",
      "Connections established but not yet accept()ed by the application "
      "on a listener; when it reaches the limit the kernel drops new "
      "handshakes.",
      MetricType::Gauge},
     &DetectionReport::listen_accept_queue_length},
    {{"tcpstated_listen_accept_queue_limit",
      "Accept-queue limit of a listener: its listen() backlog capped by "
      "net.core.somaxconn.",
      MetricType::Gauge},
     &DetectionReport::listen_accept_queue_limit},
    {{"tcpstated_synack_retransmits_total",
      "SYN-ACKs a listener retransmitted because the client never "
      "completed the handshake (spoofed SYNs in a flood, or packet loss).",
      MetricType::Counter},
     &DetectionReport::synack_retransmits_total},
    {{"tcpstated_syn_flood_active",
      "1 while a listener looks SYN-flooded (half-open connections at "
      "detectors.syn_flood_half_open_ratio of its limit, SYN-ACK "
      "retransmits above detectors.synack_retransmit_rate per second, or "
      "SYN cookies sent while it is under pressure), else 0.",
      MetricType::Gauge},
     &DetectionReport::syn_flood_active},
    {{"tcpstated_syncookies_sent_total",
      "SYN cookies the namespace sent because a listener's SYN queue was "
      "full (TcpExt SyncookiesSent).",
      MetricType::Counter},
     &DetectionReport::syncookies_sent_total},
    {{"tcpstated_listen_overflows_total",
      "Completed handshakes dropped because a listener's accept queue was "
      "full, i.e. the application did not accept() fast enough (TcpExt "
      "ListenOverflows).",
      MetricType::Counter},
     &DetectionReport::listen_overflows_total},
    {{"tcpstated_listen_drops_total",
      "Connection attempts dropped by listeners for any reason, "
      "accept-queue overflows included (TcpExt ListenDrops).",
      MetricType::Counter},
     &DetectionReport::listen_drops_total},
    {{"tcpstated_syn_queue_full_drops_total",
      "SYNs dropped because a listener's SYN queue was full and SYN "
      "cookies were off (TcpExt TCPReqQFullDrop).",
      MetricType::Counter},
     &DetectionReport::syn_queue_full_drops_total},
    {{"tcpstated_time_wait_overflows_total",
      "Connections closed without a TIME_WAIT socket because "
      "net.ipv4.tcp_max_tw_buckets was reached (TcpExt "
      "TCPTimeWaitOverflow).",
      MetricType::Counter},
     &DetectionReport::time_wait_overflows_total},
    {{"tcpstated_ephemeral_ports_used",
      "Local ports held towards one destination (source address, "
      "destination address and port) in any state, TIME_WAIT included; "
      "connect() to it fails with EADDRNOTAVAIL when none is left.",
      MetricType::Gauge},
     &DetectionReport::ephemeral_ports_used},
    {{"tcpstated_ephemeral_ports_available",
      "Ephemeral ports connect() can choose from in the namespace: "
      "net.ipv4.ip_local_port_range minus ip_local_reserved_ports.",
      MetricType::Gauge},
     &DetectionReport::ephemeral_ports_available},
    {{"tcpstated_time_wait_limit",
      "net.ipv4.tcp_max_tw_buckets of the namespace: the most TIME_WAIT "
      "sockets it keeps; beyond it connections close without TIME_WAIT.",
      MetricType::Gauge},
     &DetectionReport::time_wait_limit},
    {{"tcpstated_port_exhaustion_active",
      "1 while one destination holds at least "
      "detectors.port_exhaustion_ratio of the namespace's ephemeral ports "
      "(new connect() calls to it are about to fail), else 0.",
      MetricType::Gauge},
     &DetectionReport::port_exhaustion_active},
    {{"tcpstated_netns_info",
      "Maps a network namespace inode (the netns label) to a name: host, "
      "its ip netns name, or one derived from a process in it; always 1.",
      MetricType::Gauge},
     &DetectionReport::netns_info},
};

}  // namespace

std::vector<MetricFamily> BuildDetectorMetrics(const DetectionReport& report) {
  try {
    std::vector<MetricFamily> out;
    out.reserve(std::size(kReportFamilies));
    for (const ReportFamily& f : kReportFamilies) {
      out.push_back(BuildFamily(f.spec, report.*f.series));
    }
    return out;
  } catch (...) {  // std::bad_alloc only
    return {};
  }
}

}  // namespace tcpstated
