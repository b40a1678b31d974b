// KernelView's drift check: every detector cycle, the kernel's socket
// totals of each namespace with sockets (sockstat, read in the cycle's
// visit) against the mirror's, once the events in flight are applied. A
// namespace whose totals disagree beyond what the events applied meanwhile
// explain, in DriftTracker::kConfirmChecks checks in a row, is dumped and
// reconciled alone at the next cycle (reason "drift"). What the totals
// cannot see (a socket in the wrong state with the right count) waits for
// the full reconcile of the safety interval (full_reconcile_interval, 10
// min). Cost: two small seq_files per namespace and cycle, against a full
// dump (~1.6 s of CPU at 1M sockets).

#include <spdlog/spdlog.h>

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "daemon/kernel/kernel_view_cycle.h"
#include "tcpstated/kernel_view.h"
#include "tcpstated/metric_family.h"
#include "tcpstated/monotonic_clock.h"

namespace tcpstated {
namespace {

const FamilySpec kReconcileRuns = {
    "tcpstated_reconcile_runs_total",
    "Reconciles with the kernel's socket dump, by what drove them: start "
    "(the seed), drift (a namespace's socket totals in sockstat disagreed "
    "with the mirror's; that namespace only), lost (events lost or missed; "
    "every namespace), safety (tracking.full_reconcile_interval passed "
    "without a full one; every namespace).",
    prometheus::MetricType::Counter};

const FamilySpec kDriftSockets = {
    "tcpstated_reconcile_drift_sockets",
    "At the last drift check of each namespace with sockets: how far the "
    "kernel's socket totals (sockstat: full sockets, timewait sockets) were "
    "from the mirror's, summed; in-flight events can explain a few.",
    prometheus::MetricType::Gauge};

}  // namespace

bool KernelView::ChecksDrift(uint32_t inode, bool has_sockets) const {
  // A namespace the mirror has emptied is checked until the kernel agrees:
  // lost closes must not hide it from the check.
  if (has_sockets) return true;
  auto it = drift_.last_drift().find(inode);
  return it != drift_.last_drift().end() && it->second > 0;
}

void KernelView::CheckDrift(Cycle& c) {
  if (c.full) {
    drift_.Reset();
    drift_.ReconciledAll(c.loss_before);
  }
  for (uint32_t inode : c.targets) drift_.Reconciled(inode);

  std::vector<std::pair<uint32_t, SocketTotals>> kernel;
  for (const NamespaceResult& r : c.results) {
    if (r.sockstat) kernel.emplace_back(r.inode, *r.sockstat);
  }
  if (kernel.empty()) return;
  // The events the kernel sent before its totals were read.
  if (event_drain_) event_drain_();
  struct Check {
    uint32_t inode;
    uint64_t drift;
    uint64_t allowance;
  };
  std::vector<Check> checks;
  bool table_full = false;
  {
    std::lock_guard<std::mutex> lock(*mirror_mutex_);
    // Timewait sockets due now leave first, as the kernel's did; those
    // leaving now may still be in the kernel's (late) timer wheel.
    std::unordered_map<uint32_t, uint64_t> tw_before =
        mirror_->TimewaitSockets();
    mirror_->Expire(MonotonicNowNs());
    std::unordered_map<uint32_t, uint64_t> tw = mirror_->TimewaitSockets();
    MirrorStats stats = mirror_->stats();
    table_full = stats.tracked >= stats.limit;
    for (const auto& [inode, totals] : kernel) {
      auto counts = mirror_->counts().find(inode);
      auto now = tw.find(inode);
      auto before = tw_before.find(inode);
      const uint64_t tw_now = now != tw.end() ? now->second : 0;
      const uint64_t tw_then = before != tw_before.end() ? before->second : 0;
      const SocketTotals mirror = MirrorTotals(
          counts != mirror_->counts().end() ? counts->second : StateCounts{},
          tw_now);
      // The events of this namespace applied since before the reading.
      auto seen = c.events_before.find(inode);
      const uint64_t events_then =
          seen != c.events_before.end() ? seen->second : 0;
      const uint64_t events_now = mirror_->EventsIn(inode);
      checks.push_back(
          {inode,
           DriftBetween(totals, mirror,
                        tw_then > tw_now ? tw_then - tw_now : 0),
           events_now > events_then ? events_now - events_then : 0});
    }
  }
  // A full table cannot match the kernel (evicted sockets): dumps would
  // not help, and the evictions metric says so already.
  for (const Check& check : checks) {
    if (!table_full) drift_.Observe(check.inode, check.drift, check.allowance);
  }
  for (uint32_t inode : drift_.Drifting()) {
    spdlog::debug("netns {}: socket totals drifted from the kernel's ({})",
                  inode, drift_.last_drift().at(inode));
  }
  std::lock_guard<std::mutex> lock(report_mutex_);
  drift_seen_ = drift_.last_drift();
}

void KernelView::AppendDriftMetrics(
    std::vector<prometheus::MetricFamily>* out) const {
  out->push_back(NewFamily(kReconcileRuns));
  for (ReconcileReason r : kReconcileReasons) {
    AddSample(out->back(), {{"reason", ReasonName(r)}},
              static_cast<double>(reconcile_runs_[static_cast<size_t>(r)]));
  }
  out->push_back(NewFamily(kDriftSockets));
  for (const auto& [inode, d] : drift_seen_) {
    AddSample(out->back(), {{"netns", std::to_string(inode)}},
              static_cast<double>(d));
  }
}

}  // namespace tcpstated
