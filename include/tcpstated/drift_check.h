// The reconcile in proportion to drift: the kernel's cheap per-namespace
// socket totals (the `TCP: inuse … tw …` line of /proc/net/sockstat and
// `TCP6: inuse` of sockstat6) against the same totals counted from the
// mirror, every detector cycle, and the decision which namespaces need a
// sock_diag dump and why. Pure: the caller reads the files and the mirror.
//
// What the kernel counts (checked in a namespace on 6.18; the same fields
// since 4.12, when tcp_death_row became per namespace; 6.1's pointer and
// 6.2's refcount kept the meaning):
//   inuse  full TCP sockets hashed in this namespace, per family (tcp_prot
//          in sockstat, tcpv6_prot in sockstat6): LISTEN, SYN_SENT,
//          SYN_RECV children, ESTABLISHED, FIN_WAIT1/2, CLOSE_WAIT,
//          LAST_ACK, CLOSING, orphans included. Not request sockets
//          (NEW_SYN_RECV), not timewait sockets, not sockets only bound or
//          closed (TCP_CLOSE).
//   tw     timewait sockets of this namespace, both families, in either
//          substate (TIME_WAIT, and FIN_WAIT2 orphans handed to a timewait
//          socket, which ss shows as FIN-WAIT-2). Only in sockstat.
//   orphan, alloc and mem are host-wide: not used.
//
// Thread-safety: DriftTracker is not synchronised (the kernel view's
// worker owns it). What throws: ParseSockstat, std::invalid_argument.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "tcpstated/mirror.h"

namespace tcpstated {

struct SocketTotals {
  uint64_t inuse = 0;     // full sockets, both families
  uint64_t timewait = 0;  // timewait sockets, both substates
  bool operator==(const SocketTotals& o) const {
    return inuse == o.inuse && timewait == o.timewait;
  }
};

// `sockstat` is /proc/net/sockstat, `sockstat6` /proc/net/sockstat6 (empty
// when IPv6 is disabled: no TCP6 line then). Throws std::invalid_argument
// when the TCP line, or a TCP6 line in non-empty sockstat6 text, is
// missing or malformed.
SocketTotals ParseSockstat(const std::string& sockstat,
                           const std::string& sockstat6);

// The same totals from the mirror's counts of one namespace and its
// timewait entries (Mirror::TimewaitSockets: those in the FIN_WAIT2
// substate are counted as FIN_WAIT2 in `counts`, like ss does).
SocketTotals MirrorTotals(const StateCounts& counts, uint64_t timewait);

// How far two totals are apart: the sum of both differences, except that
// the kernel may still hold up to `timewait_expired` timewait sockets the
// mirror has just aged out (those it removed at its last expiry, within one
// detector cycle): the kernel's 60-s timer sits in a coarse level of the
// timer wheel and fires up to ~4 s late (HZ=1000), the mirror's does not.
uint64_t DriftBetween(const SocketTotals& kernel, const SocketTotals& mirror,
                      uint64_t timewait_expired = 0);

enum class ReconcileReason { kStart, kDrift, kLost, kSafety };
inline constexpr ReconcileReason kReconcileReasons[] = {
    ReconcileReason::kStart, ReconcileReason::kDrift, ReconcileReason::kLost,
    ReconcileReason::kSafety};
const char* ReasonName(ReconcileReason reason);

class DriftTracker {
 public:
  // A namespace is dumped after its totals disagreed beyond the in-flight
  // allowance this many checks in a row: one check can catch the mirror
  // between a kernel timer and its own (a timewait socket ageing out a
  // jiffy apart), two seldom do, and a real drift stays.
  static constexpr int kConfirmChecks = 2;

  // One check of a namespace: `drift` as DriftBetween says, `allowance`
  // the events applied to the mirror between the kernel's reading and the
  // mirror's (each moves a total by at most one in each of the two).
  void Observe(uint32_t netns, uint64_t drift, uint64_t allowance);
  // Namespaces whose drift is confirmed: dump them at the next cycle.
  std::set<uint32_t> Drifting() const;
  // The drift seen at the last check of each namespace checked.
  const std::map<uint32_t, uint64_t>& last_drift() const { return last_; }
  // After a dump of `netns` (or of every namespace: Reset): its streak
  // starts again.
  void Reconciled(uint32_t netns);
  void Reset();
  // A namespace gone: forgotten.
  void Forget(uint32_t netns);

  // Events lost or missed since the last reconcile of everything: the
  // counter (lost + missed, every source) is compared with the one seen
  // then. The first reading only sets the baseline.
  bool LostSince(uint64_t lost_total);
  void ReconciledAll(uint64_t lost_total) {
    lost_seen_ = lost_total;
    have_lost_ = true;
  }

 private:
  std::map<uint32_t, int> streak_;
  std::map<uint32_t, uint64_t> last_;
  uint64_t lost_seen_ = 0;
  bool have_lost_ = false;
};

}  // namespace tcpstated
