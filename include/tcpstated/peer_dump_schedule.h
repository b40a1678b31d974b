// When the peer-liveness dumps (FIN_WAIT2 and ESTABLISHED sockets, KernelView)
// run, and when a full dump stands in for them.
//
// A sock_diag dump walks the host-wide established hash whatever it asks
// for, so at a million connections the ESTABLISHED dump costs as much as
// the full safety dump (docs/performance.md, sections 16 and 20). Three
// judgments, each on its own cadence:
//  - dead peers: from every ESTABLISHED row's pending timer and its count
//    (idiag_timer, idiag_retrans), which every inet_diag row carries
//    without tcp_info. Every full dump serves it.
//  - idle connections: tcpi_last_data_recv, so tcp_info of every
//    ESTABLISHED socket (~0.5-1 s more at a million). The full dump asks for
//    tcp_info when it is due (or about to be) and serves it.
//  - stuck FIN_WAIT2: tcp_info of the (few) FIN_WAIT2 sockets; served by a
//    full dump that carries tcp_info.
// With the defaults (idle_after 1h, full_reconcile_interval 10 min) the
// 10-min safety dump carries tcp_info and serves all three, and a dump of
// ESTABLISHED sockets without tcp_info judges dead peers 5 min after it.
//
// Thread-safety: a value type; one owner (the kernel view's worker).
// What throws: nothing.
#pragma once

#include <chrono>
#include <cstdint>

namespace tcpstated {

struct PeerDumpIntervals {
  // Each within [detector interval, full reconcile interval]:
  //  - fin_wait2_ns: a tenth of detectors.fin_wait2_stuck_after (a
  //    state-filtered dump; few sockets match);
  //  - established_ns (dead peers): a quarter of detectors.idle_after but at
  //    most 5 min, which keeps every peer that dies under the default
  //    keepalive judged before the kernel resets it;
  //  - idle_ns: a quarter of detectors.idle_after. An idle connection is so
  //    flagged by idle_after plus that interval plus one detector cycle at
  //    the latest.
  uint64_t fin_wait2_ns = 0;
  uint64_t established_ns = 0;
  uint64_t idle_ns = 0;
  uint64_t detector_ns = 0;
  uint64_t full_ns = 0;
};

PeerDumpIntervals PeerDumpIntervalsFor(double fin_wait2_stuck_after_seconds,
                                       double idle_after_seconds,
                                       std::chrono::milliseconds detector,
                                       std::chrono::milliseconds full);

// Which judgments a dump serves.
struct PeerDumpsDue {
  bool fin_wait2 = false;    // FIN_WAIT2 sockets, with tcp_info
  bool established = false;  // dead peers: ESTABLISHED rows, no tcp_info
  bool idle = false;         // idle: ESTABLISHED rows with tcp_info
  bool any() const { return fin_wait2 || established || idle; }
  bool needs_tcp_info() const { return fin_wait2 || idle; }
};

class PeerDumpSchedule {
 public:
  // What a full dump starting at now_ns serves: dead peers always (every
  // row carries its timer), and, when the idle judgment is due before the
  // next detector cycle (or overdue: under lost events the full dumps come
  // every 30 s and the safety one never, so an overdue judgment waits for
  // the next full dump of any reason, at most full_ns away), the idle and
  // FIN_WAIT2 judgments, for which the dump asks for tcp_info.
  PeerDumpsDue FullDumpServes(uint64_t now_ns,
                              const PeerDumpIntervals& i) const;
  // The dumps of their own due at now_ns. The idle judgment never runs on
  // its own when its interval is the full dump's (FullDumpServes). A dump
  // of ESTABLISHED sockets judges dead peers too; one that carries tcp_info
  // for them (for FIN_WAIT2 sockets, say) judges idle connections too.
  PeerDumpsDue DueNow(uint64_t now_ns, const PeerDumpIntervals& i) const;
  // A judgment was made at now_ns from a dump with those sockets.
  void Ran(PeerDumpsDue ran, uint64_t now_ns, const PeerDumpIntervals& i);

 private:
  uint64_t next_fin_wait2_ns_ = 0;
  uint64_t next_established_ns_ = 0;
  uint64_t next_idle_ns_ = 0;
};

}  // namespace tcpstated
