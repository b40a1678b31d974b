// When the peer-liveness dumps (FIN_WAIT2 and ESTABLISHED sockets with
// tcp_info, KernelView) run, and when a full dump stands in for them.
//
// A sock_diag dump walks the host-wide established hash whatever it asks
// for, so at a million connections the ESTABLISHED dump costs as much as
// the full safety dump (docs/performance.md, section 16). Rather than two
// walks, the full dump asks for tcp_info when the ESTABLISHED dump is due
// (or about to be) and the detectors judge its rows. With the defaults
// (idle_after 1h, full_reconcile_interval 10 min) the ESTABLISHED judgment
// comes every 5 min: every other one rides on the safety dump.
//
// Thread-safety: a value type; one owner (the kernel view's worker).
// What throws: nothing.
#pragma once

#include <chrono>
#include <cstdint>

namespace tcpstated {

struct PeerDumpIntervals {
  // A tenth of detectors.fin_wait2_stuck_after (a state-filtered dump;
  // few sockets match), a quarter of detectors.idle_after but at most 5 min
  // (a dump of every connection; the cap keeps every peer that dies under
  // the default keepalive judged before the kernel resets it), each within
  // [detector interval, full reconcile interval]. An idle connection is so
  // flagged by idle_after plus that interval plus one detector cycle at the
  // latest.
  uint64_t fin_wait2_ns = 0;
  uint64_t established_ns = 0;
  uint64_t detector_ns = 0;
  uint64_t full_ns = 0;
};

PeerDumpIntervals PeerDumpIntervalsFor(double fin_wait2_stuck_after_seconds,
                                       double idle_after_seconds,
                                       std::chrono::milliseconds detector,
                                       std::chrono::milliseconds full);

struct PeerDumpsDue {
  bool fin_wait2 = false;
  bool established = false;
  bool any() const { return fin_wait2 || established; }
};

class PeerDumpSchedule {
 public:
  // Whether a full dump starting at now_ns should carry tcp_info and
  // serve both peer detectors: the ESTABLISHED dump is due before the next
  // detector cycle (or overdue: under lost events the full dumps come
  // every 30 s and the safety one never, so an overdue judgment waits for
  // the next full dump of any reason, at most full_ns away).
  bool FullDumpServes(uint64_t now_ns, const PeerDumpIntervals& i) const;
  // The dumps of their own due at now_ns. The ESTABLISHED one never runs
  // on its own when its interval is the full dump's (FullDumpServes).
  PeerDumpsDue DueNow(uint64_t now_ns, const PeerDumpIntervals& i) const;
  // A judgment was made at now_ns from a dump with those sockets.
  void Ran(PeerDumpsDue ran, uint64_t now_ns, const PeerDumpIntervals& i);

 private:
  uint64_t next_fin_wait2_ns_ = 0;
  uint64_t next_established_ns_ = 0;
};

}  // namespace tcpstated
