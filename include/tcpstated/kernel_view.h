// The kernel's own view, beside the event stream: the network namespaces on
// the host, sock_diag dumps (timewait and request sockets, LISTEN queues,
// sockets older than the daemon), TcpExt counters and sysctls, and the
// owners of sockets found in a dump. It seeds the mirror at start-up,
// reconciles it periodically, and runs the detectors.
//
// Cost follows activity, not the number of namespaces. At start-up every
// namespace is dumped once (a restart must not forget its sockets). After
// that a namespace is read only for what its sockets need, as the mirror
// counts them from the events (which carry the namespace): listeners get
// a LISTEN/SYN_RECV dump and TcpExt counters every detector cycle, any
// socket a check of the kernel's socket totals (sockstat) against the
// mirror's every detector cycle. The reconcile (a full dump) costs in
// proportion to drift (kernel_view_drift.cpp): a namespace whose totals
// disagree beyond what in-flight events explain is dumped alone; every
// namespace with sockets is dumped after lost or missed events, and at
// the latest every reconcile interval (the safety net for drift that
// leaves the totals equal). The
// peer-liveness dumps run on their own cadence (kernel_view_peers.cpp). A
// namespace without TCP sockets is never entered. Discovery (names, and the
// zero rows of idle namespaces) reads /proc and /run/netns every 30 s (or
// reconcile interval, if shorter) without entering anything, and at once
// when the events show a namespace it does not know; the sysctls of
// namespaces with sockets are re-read at the same cadence. All reads of one
// cycle happen in one batch (namespace_reads.h) that holds no descriptor
// afterwards.
//
// Thread-safety: Seed() from the main thread before Start(); then one
// background thread does the work, taking the mirror's mutex only to apply
// results. Metrics() may be called from any thread.
#pragma once

#include <prometheus/metric_family.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tcpstated/cgroup_units.h"
#include "tcpstated/detectors.h"
#include "tcpstated/drift_check.h"
#include "tcpstated/fin_wait2_detector.h"
#include "tcpstated/kernel_settings.h"
#include "tcpstated/mirror.h"
#include "tcpstated/namespace_reads.h"
#include "tcpstated/netns.h"
#include "tcpstated/owner_scan_misses.h"
#include "tcpstated/owners.h"
#include "tcpstated/peer_dump_schedule.h"
#include "tcpstated/peer_liveness.h"

namespace tcpstated {

class KernelView {
 public:
  struct Options {
    // Lost events dump every namespace at most this often (or every 30 s,
    // if longer); the drift check's totals run every detector cycle.
    std::chrono::milliseconds reconcile_interval{30000};
    // The safety dump of every namespace, when nothing else asked for one.
    std::chrono::milliseconds full_reconcile_interval{600000};
    // Detectors, LISTEN/SYN_RECV dumps, counters and sysctls.
    std::chrono::milliseconds detector_interval{5000};
    DetectorConfig detectors;
    // Judged from the peer-liveness dumps, at a cadence derived from their
    // thresholds (PeerDumpInterval).
    FinWait2Config fin_wait2;
    PeerLivenessConfig peer_liveness;
  };

  KernelView(Options options, Mirror* mirror, std::mutex* mirror_mutex);
  ~KernelView();
  KernelView(const KernelView&) = delete;
  KernelView& operator=(const KernelView&) = delete;

  // Discovers the namespaces and seeds the mirror from a full dump of each.
  // Throws std::runtime_error if even the daemon's own namespace cannot be
  // dumped (sock_diag unavailable: CONFIG_INET_DIAG).
  void Seed();
  void Start();
  void Stop();  // idempotent

  // Applies new detector thresholds and intervals (SIGHUP).
  void Reconfigure(const Options& options);
  // Called before a reconcile compares its dump with the mirror, without
  // the mirror's lock: applies the events still on their way (the ring
  // consumer's Flush), so that the dump is compared with a mirror as new
  // as itself. Set once, before Start().
  void set_event_drain(std::function<void()> drain) {
    event_drain_ = std::move(drain);
  }
  // Events lost or missed so far (every source, lost + missed): a rise
  // asks for a reconcile of every namespace. Set once, before Seed().
  void set_loss_counter(std::function<uint64_t()> counter) {
    loss_counter_ = std::move(counter);
  }

  // Ages saved by the previous run (state_store.h), taken back after the
  // seeding dump where the kernel agrees (Mirror::RestoreSavedAges). Set
  // once, before Seed().
  void set_saved_sockets(std::vector<SavedSocket> saved) {
    saved_sockets_ = std::move(saved);
  }

  // Detector families, tcpstated_netns_info, reconcile corrections.
  std::vector<prometheus::MetricFamily> Metrics() const;

  // The latest detection report and the reconciler's health, copied (the
  // live page's JSON).
  struct Status {
    DetectionReport report;
    uint64_t reconciles = 0;         // full cycles, the seed included
    uint64_t last_reconcile_ns = 0;  // CLOCK_MONOTONIC end; 0 if none
    double last_reconcile_seconds = 0;
    uint64_t diag_errors = 0;
  };
  Status status() const;

  // Runs one cycle now (tests and start-up). `full_reconcile`: every
  // namespace with sockets is dumped, for `reason`; otherwise only those
  // whose drift is confirmed.
  void RunCycle(bool full_reconcile, bool seeding,
                ReconcileReason reason = ReconcileReason::kSafety);

 private:
  // How long an inode that no process was found holding is not looked for
  // in /proc again.
  static constexpr uint64_t kOwnerRetryNs = 600ULL * 1000000000ULL;

  struct Namespace {
    NetnsHandle handle;  // from discovery; cookie from the last visit
    int missing = 0;     // consecutive discoveries that did not find it
    bool have_settings = false;
    TcpSettings settings;
    bool have_counters = false;
    TcpExtCounters counters;
    std::vector<ListenerInput> listeners;
    // Half-open sockets are counted (an expensive dump) only on a sign of
    // them: see RunCycle.
    bool syn_pressure = false;
    bool counters_rose = false;    // SYN-side TcpExt counters, last reading
    uint64_t synacks_seen = 0;     // SYN-ACK retransmits, last round
    uint64_t request_sockets = 0;  // in the last dump that counted them
  };
  // What the mirror's counts say about a namespace's sockets.
  struct Activity {
    bool sockets = false;    // any tracked socket
    bool listeners = false;  // a LISTEN socket
    bool request_sockets = false;
    uint64_t synack_retransmits = 0;  // since the start, all its listeners
    // The namespace cookie its events carry (0: none yet, or no cookies):
    // when it differs from the one last read, the inode names a new
    // namespace and what was read of the old one is stale.
    uint64_t events_cookie = 0;
  };

  void Run();

  // One cycle's steps, in order (RunCycle), and what they hand on.
  struct Cycle;
  // Discovery when due, the mirror's activity, signs of SYN pressure.
  void Survey(Cycle& c);
  // Reads of the namespaces (dumps, sysctls, counters) as planned.
  void Dump(Cycle& c);
  // Settings and request-socket counts into the mirror; a full cycle
  // starts its reconcile.
  void Apply(Cycle& c);
  void ApplySettings(const Cycle& c);  // under the mirror's lock
  // The reconcile in slices, and the dump's sockets left without an owner.
  void Reconcile(Cycle& c);
  void ResolveOwners(Cycle& c);
  // Owners into the mirror, expiry, and the detectors' inputs out of it.
  void CopyFromMirror(Cycle& c);
  void Detect(Cycle& c);
  void Publish(Cycle& c);

  void Discover();
  std::map<uint32_t, Activity> ActivityFromMirror() const;
  // What this cycle reads of each namespace, given the mirror's activity.
  std::vector<NamespaceRequest> PlanReads(const Cycle& c) const;
  // ReadNamespaces, then the results kept in namespaces_ (cookie, sysctls,
  // counters); failures are logged and counted in `*errors`, and a
  // namespace whose path no longer leads to it asks for a rediscovery.
  std::vector<NamespaceResult> Visit(
      const std::vector<NamespaceRequest>& requests, uint64_t* errors);
  // Entry times of CLOSE_WAIT sockets the mirror only knows from a dump,
  // from the kernel's tcp_info (Mirror::AgeCloseWaitFromKernel). Returns
  // the number of failed dumps.
  uint64_t AgeCloseWaitFromKernel();
  // The ages of set_saved_sockets, once, with the CLOSE_WAIT dumps of
  // AgeCloseWaitFromKernel as the kernel's word (its tcp_info).
  void RestoreSavedAges(
      const std::unordered_map<uint32_t, std::vector<DiagSocket>>& dumps);
  std::vector<SavedSocket> saved_sockets_;  // until the seeding cycle
  // The systemd unit of a socket's owner: from its cgroup id where the
  // event captured one, else from /proc/<tgid>.
  std::string UnitOf(uint32_t tgid, uint64_t cgroup_id);
  // The holders of socket inodes, from /proc, but not of those a scan
  // missed recently (OwnerScanMisses; kernel_view_owners.cpp).
  std::unordered_map<uint32_t, ProcessInfo> FindOwners(
      const std::unordered_set<uint32_t>& inodes, bool* complete);
  // The peer-liveness step (kernel_view_peers.cpp): a dump of FIN_WAIT2
  // and/or ESTABLISHED sockets (with tcp_info when a judgment needs it) in
  // every namespace that has some, judged by the FIN_WAIT2 and
  // peer-liveness detectors, or the cycle's full dump for what it serves
  // (PeerDumpSchedule). Returns the number of failed reads.
  PeerDumpIntervals PeerIntervals() const;
  PeerDumpsDue FullDumpServesPeers() const;
  uint64_t ReadPeerLivenessWhenDue(const Cycle& c);
  uint64_t ReadPeerLiveness(PeerDumpsDue due);
  void JudgePeers(const std::vector<const std::vector<DiagSocket>*>& dumps,
                  PeerDumpsDue due, double dump_seconds);
  // Gives the mirror the owners /proc found for sockets it knows without
  // one (id, inode), as the reconcile does for CLOSE_WAIT and LISTEN.
  void KeepOwners(const std::vector<std::pair<uint64_t, uint32_t>>& unowned,
                  const std::unordered_map<uint32_t, ProcessInfo>& by_inode);
  // The drift check (kernel_view_drift.cpp): sockstat read for the
  // namespaces it checks (PlanReads), compared with the mirror after the
  // events in flight are applied.
  bool ChecksDrift(uint32_t inode, bool has_sockets) const;
  void CheckDrift(Cycle& c);
  void AppendDriftMetrics(std::vector<prometheus::MetricFamily>* out) const;
  // Its families (caller holds report_mutex_).
  void AppendPeerLivenessMetrics(
      std::vector<prometheus::MetricFamily>* out) const;

  Options options_;
  Mirror* mirror_;
  std::mutex* mirror_mutex_;
  NetnsRegistry registry_;
  OwnerResolver owners_;
  // Inodes a /proc scan did not find: not scanned for again at
  // every reconcile (owner_scan_misses.h). Worker thread only.
  OwnerScanMisses owner_misses_{kOwnerRetryNs};
  CgroupUnits units_;  // worker thread only
  Detectors detectors_;
  FinWait2Detector fin_wait2_;                // worker thread only
  PeerLivenessDetector liveness_;             // worker thread only
  std::map<uint32_t, Namespace> namespaces_;  // worker thread only
  // Worker thread only: discover again at the next cycle (a visit found a
  // path stale), and namespaces with sockets that the last discovery did
  // not find (not looked for again before the next regular discovery).
  bool rediscover_ = false;
  bool seed_dumped_own_ = false;  // the seed dumped the daemon's namespace
  std::unordered_set<uint32_t> unfound_;
  DriftTracker drift_;              // worker thread only
  uint64_t next_refresh_ns_ = 0;    // discovery, sysctls (worker only)
  PeerDumpSchedule peer_schedule_;  // worker thread only

  mutable std::mutex report_mutex_;  // guards the fields below
  DetectionReport report_;
  FinWait2Report fin_wait2_report_;
  PeerLivenessReport liveness_report_;
  double liveness_dump_seconds_ = 0;
  std::array<uint64_t, std::size(kReconcileReasons)> reconcile_runs_{};
  std::map<uint32_t, uint64_t> drift_seen_;  // the last check's, by netns
  std::array<uint64_t, kStateSlots> corrections_{};
  uint64_t diag_errors_ = 0;
  uint64_t reconciles_ = 0;
  double last_reconcile_seconds_ = 0;
  uint64_t last_reconcile_ns_ = 0;

  std::mutex wake_mutex_;  // guards stop_ and the pending options
  std::condition_variable wake_;
  bool stop_ = false;
  bool have_pending_options_ = false;
  Options pending_options_;
  std::function<void()> event_drain_;
  std::function<uint64_t()> loss_counter_;
  std::thread thread_;
};

}  // namespace tcpstated
