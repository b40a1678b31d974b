// Stuck FIN_WAIT_2: this side closed its half of the connection (close()
// or shutdown(SHUT_WR)), the peer acknowledged the FIN but never sends its
// own, and the application still holds the socket. No timer runs on such a
// socket (the kernel's tcp_fin_timeout only applies to orphans), so it
// stays for as long as the application does: the far end of somebody's
// CLOSE_WAIT leak. Grouped by the local owner and the remote endpoint (the
// peer that does not close), with the age of the oldest; those older than
// detectors.fin_wait2_stuck_after are stuck.
//
// Orphaned FIN_WAIT2 sockets (the application closed, the kernel keeps the
// socket, or its timewait stand-in, for tcp_fin_timeout and then drops it)
// are counted apart, per namespace, and never flagged: that is the kernel's
// normal cleanup.
//
// Thread-safety: a FinWait2Detector is used by one thread; the metric
// builder is a pure function. What throws: std::bad_alloc only.
#pragma once

#include <prometheus/metric_family.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tcpstated/detectors.h"
#include "tcpstated/event.h"

namespace tcpstated {

// One socket in FIN_WAIT2, from the kernel's dump.
struct FinWait2Socket {
  uint32_t netns = 0;
  bool orphan = false;  // no file refers to it, or a timewait socket
  std::string comm;     // owner's command, "" if unknown (full sockets)
  std::string unit;     // owner's systemd unit, "" if unknown
  bool ipv6 = false;
  Address daddr{};  // the peer that has not sent its FIN
  uint16_t dport = 0;
  double age_seconds = 0;  // time in FIN_WAIT2 (best lower bound)
  // Where the caller finds `comm` and `unit` when they are unknown: the
  // owning process, or else the socket's inode (0: none). Not labels.
  uint32_t tgid = 0;
  uint32_t inode = 0;
};

struct FinWait2Config {
  double stuck_after_seconds = 300;
  size_t max_series_per_metric = 50;
};

struct FinWait2Report {
  // Full sockets, labels netns, comm, unit, daddr, dport.
  std::vector<Series> sockets;
  std::vector<Series> stuck_sockets;
  std::vector<Series> oldest_seconds;
  // Orphans, label netns (namespaces are few: not folded).
  std::vector<Series> orphan_sockets;
  std::vector<std::string> started;  // log lines, one per transition
  std::vector<std::string> cleared;
};

class FinWait2Detector {
 public:
  // Groups `sockets` and reports a start or clear line when the host goes
  // from no stuck socket to some, or back.
  FinWait2Report Evaluate(const std::vector<FinWait2Socket>& sockets,
                          const FinWait2Config& config);

 private:
  bool stuck_ = false;
};

// The families of a report, every one present even when empty.
std::vector<prometheus::MetricFamily> FinWait2Metrics(
    const FinWait2Report& report);

}  // namespace tcpstated
