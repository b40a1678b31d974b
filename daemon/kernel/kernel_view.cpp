#include "tcpstated/kernel_view.h"

#include <malloc.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "daemon/kernel/kernel_view_cycle.h"
#include "tcpstated/metric_family.h"
#include "tcpstated/monotonic_clock.h"

namespace tcpstated {
namespace {

using prometheus::MetricFamily;
using prometheus::MetricType;

// The kernel view's own families, in exposition order (after the
// detectors').
constexpr FamilySpec kCorrections{
    "tcpstated_reconcile_corrections_total",
    "Mirror entries corrected by the periodic comparison with the kernel's "
    "socket dump (sockets added, state changed, or removed), by the state "
    "the kernel or the mirror had.",
    MetricType::Counter};
constexpr FamilySpec kDiagErrors{
    "tcpstated_sock_diag_errors_total",
    "Failed sock_diag dumps or namespace reads; the mirror then relies on "
    "the event stream alone until the next cycle.",
    MetricType::Counter};
constexpr FamilySpec kDumpSeconds{
    "tcpstated_reconcile_dump_seconds",
    "How long the last full sock_diag dump of every namespace took.",
    MetricType::Gauge};

// What a detector cycle dumps between full reconciles: listeners, and their
// half-open request sockets (the SYN_RECV bit brings NEW_SYN_RECV too) only
// when there is a sign of them. Request sockets live in the host-wide
// established hash, which a dump walks whole whatever namespace it is for
// (unless net.ipv4.tcp_child_ehash_entries gave the namespace its own):
// about 1.5 ms per address family on a host with 262,144 buckets, against
// a tenth of that for listeners alone.
constexpr uint32_t kListenMask = StateBit(TcpState::kListen);
constexpr uint32_t kListenerMask = kListenMask | StateBit(TcpState::kSynRecv);

// Whether a namespace's SYN-side counters rose between two readings: a SYN
// queue filling up, cookies, drops. A decrease (a new namespace behind the
// inode) is not a rise.
bool SynCountersRose(const TcpExtCounters& before, const TcpExtCounters& now) {
  return now.SyncookiesSent > before.SyncookiesSent ||
         now.TCPReqQFullDoCookies > before.TCPReqQFullDoCookies ||
         now.TCPReqQFullDrop > before.TCPReqQFullDrop ||
         now.ListenOverflows > before.ListenOverflows ||
         now.ListenDrops > before.ListenDrops;
}

// A full reconcile works in slices of this many units (dump sockets looked
// up, table slots visited): a few milliseconds each at a million sockets,
// with a pause between them for the consumer and scrapes.
constexpr size_t kReconcileSlice = 65536;
constexpr std::chrono::milliseconds kReconcilePause{1};

// Lost events ask for a dump of every namespace, at most this often: under
// a storm that overflows the ring every cycle, a million-socket dump every
// few seconds would only add to the load.
constexpr std::chrono::milliseconds kLostReconcileGap{30000};

// Discovery and the sysctls of namespaces with sockets are refreshed this
// often (or every reconcile interval, if shorter).
constexpr std::chrono::milliseconds kRefreshInterval{30000};

// A namespace missing from this many discoveries in a row is gone.
constexpr int kMissingCyclesBeforeDrop = 2;

double Seconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

std::vector<ListenerInput> ListenersOf(const std::vector<DiagSocket>& dump,
                                       uint32_t netns) {
  std::map<uint16_t, ListenerInput> by_port;
  for (const DiagSocket& d : dump) {
    if (d.state == TcpState::kListen) {
      ListenerInput& l = by_port[d.sport];
      l.netns = netns;
      l.port = d.sport;
      // One port can have several listeners (SO_REUSEPORT, v4 and v6):
      // their queues add up.
      l.accept_queue += d.rqueue;
      l.accept_limit += d.wqueue;
    }
  }
  for (const DiagSocket& d : dump) {
    if (d.state != TcpState::kNewSynRecv) continue;
    auto it = by_port.find(d.sport);
    if (it != by_port.end()) it->second.half_open++;
  }
  std::vector<ListenerInput> out;
  for (auto& [port, l] : by_port) out.push_back(l);
  return out;
}

// After a full cycle: its dumps (tens of MB at a million sockets) and
// whatever the mirror gave back are free; without this, glibc keeps much of
// it in the arenas of the threads that used it, and RSS stays at the peak.
void ReleaseFreedMemory() { malloc_trim(0); }

uint64_t RequestSockets(const std::vector<DiagSocket>& dump) {
  return static_cast<uint64_t>(std::count_if(
      dump.begin(), dump.end(),
      [](const DiagSocket& d) { return d.state == TcpState::kNewSynRecv; }));
}

}  // namespace

KernelView::KernelView(Options options, Mirror* mirror, std::mutex* mutex)
    : options_(options),
      mirror_(mirror),
      mirror_mutex_(mutex),
      detectors_(options.detectors) {}

KernelView::~KernelView() { Stop(); }

void KernelView::Seed() {
  RunCycle(/*full_reconcile=*/true, /*seeding=*/true, ReconcileReason::kStart);
  ReleaseFreedMemory();
  if (!seed_dumped_own_) {
    throw std::runtime_error(
        "cannot dump TCP sockets with sock_diag in the daemon's own network "
        "namespace (kernel built without CONFIG_INET_DIAG / "
        "CONFIG_INET_DIAG_TCP?)");
  }
}

void KernelView::Start() {
  thread_ = std::thread([this] { Run(); });
}

void KernelView::Stop() {
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void KernelView::Reconfigure(const Options& options) {
  std::lock_guard<std::mutex> lock(wake_mutex_);
  // Picked up by the worker at its next cycle; detectors_ belongs to it.
  pending_options_ = options;
  have_pending_options_ = true;
}

void KernelView::Run() {
  // Named for per-thread CPU and scheduling figures (docs/performance.md).
  // Its priority stays the daemon's: it takes the mutex the ring consumer
  // needs, and at nice +10 a saturating storm lost events in every round
  // (docs/performance.md, "Scheduling").
  pthread_setname_np(pthread_self(), "kernel-view");
  auto last_full = std::chrono::steady_clock::now();
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(wake_mutex_);
      wake_.wait_for(lock, options_.detector_interval,
                     [this] { return stop_; });
      if (stop_) return;
      if (have_pending_options_) {
        options_ = pending_options_;
        detectors_.set_config(options_.detectors);
        have_pending_options_ = false;
      }
    }
    // Every namespace is dumped at the latest after the full reconcile
    // interval (the safety net: the drift check's totals cannot see a
    // socket in the wrong state), or after lost or missed events (which say
    // nothing of where), but not more often than every kLostReconcileGap
    // (or the reconcile interval, if shorter).
    auto now = std::chrono::steady_clock::now();
    ReconcileReason reason = ReconcileReason::kSafety;
    bool full = now - last_full >= options_.full_reconcile_interval;
    if (!full && loss_counter_ && drift_.LostSince(loss_counter_()) &&
        now - last_full >=
            std::min<std::chrono::milliseconds>(kLostReconcileGap,
                                                options_.reconcile_interval)) {
      full = true;
      reason = ReconcileReason::kLost;
    }
    if (full) last_full = now;
    try {
      RunCycle(full, /*seeding=*/false, reason);
    } catch (const std::exception& e) {
      // Degrade, count, go on: the event stream keeps the mirror useful.
      spdlog::warn("kernel view cycle failed: {}", e.what());
      std::lock_guard<std::mutex> lock(report_mutex_);
      diag_errors_++;
    }
    if (full) ReleaseFreedMemory();
  }
}

void KernelView::Discover() {
  // No cookies: reading one means entering the namespace, which is what
  // idle namespaces must not cost. A visit reads it when there is a reason.
  std::vector<NetnsHandle> found =
      registry_.Discover(nullptr, /*read_cookies=*/false);
  rediscover_ = false;
  unfound_.clear();
  std::unordered_set<uint32_t> seen;
  for (const NetnsHandle& h : found) {
    seen.insert(h.inode);
    auto [it, inserted] = namespaces_.try_emplace(h.inode);
    Namespace& ns = it->second;
    ns.missing = 0;
    // A better name may have appeared, or the path that reaches it changed
    // (the process it was found through exited); the cookie stays what the
    // last visit read (a reused inode is caught there, and by the events).
    uint64_t cookie = inserted ? 0 : ns.handle.cookie;
    ns.handle = h;
    ns.handle.cookie = cookie;
  }
  std::vector<uint32_t> gone;
  for (auto& [inode, ns] : namespaces_) {
    if (seen.count(inode) == 0 && ++ns.missing >= kMissingCyclesBeforeDrop) {
      gone.push_back(inode);
    }
  }
  for (uint32_t inode : gone) {
    namespaces_.erase(inode);
    drift_.Forget(inode);
    std::lock_guard<std::mutex> lock(*mirror_mutex_);
    mirror_->DropNamespace(inode);
  }
}

std::map<uint32_t, KernelView::Activity> KernelView::ActivityFromMirror()
    const {
  std::map<uint32_t, Activity> out;
  std::lock_guard<std::mutex> lock(*mirror_mutex_);
  for (const auto& [inode, counts] : mirror_->counts()) {
    Activity a;
    for (TcpState state : kReportedStates) {
      if (state == TcpState::kNewSynRecv) continue;  // counted from dumps
      if (counts[StateIndex(state)] > 0) a.sockets = true;
    }
    a.listeners = counts[StateIndex(TcpState::kListen)] > 0;
    a.request_sockets = counts[StateIndex(TcpState::kNewSynRecv)] > 0;
    a.events_cookie = mirror_->NetnsCookie(inode);
    if (a.sockets || a.request_sockets) out.emplace(inode, a);
  }
  for (const auto& [key, n] : mirror_->synack_retransmits()) {
    auto it = out.find(key.netns);
    if (it != out.end()) it->second.synack_retransmits += n;
  }
  return out;
}

std::vector<NamespaceRequest> KernelView::PlanReads(const Cycle& c) const {
  const bool seeding = c.seeding;
  std::vector<NamespaceRequest> requests;
  for (const auto& [inode, ns] : namespaces_) {
    auto it = c.activity.find(inode);
    Activity a = it != c.activity.end() ? it->second : Activity{};
    // A full reconcile dumps every namespace with sockets, a drift
    // reconcile those whose drift is confirmed.
    const bool full = c.full || c.targets.count(inode) > 0;
    const bool drift = ChecksDrift(inode, a.sockets);
    const bool reused = a.events_cookie != 0 && ns.handle.cookie != 0 &&
                        a.events_cookie != ns.handle.cookie;
    NamespaceRequest r;
    r.handle = ns.handle;
    if (seeding) {
      // Sockets older than the daemon are only in the kernel's tables.
      r.dump_mask = kAllStatesMask;
      r.dump_tcp_info = c.peers_from_full.needs_tcp_info();
      r.read_settings = r.read_counters = true;
      r.files_only_if_sockets = true;
    } else if (full && (a.sockets || c.targets.count(inode) > 0)) {
      // The sysctls are re-read here: they seldom change, and nothing
      // announces a change (no inotify on /proc/sys).
      r.dump_mask = kAllStatesMask;
      r.dump_tcp_info = c.peers_from_full.needs_tcp_info();
      r.read_settings = r.read_counters = true;
    } else if (a.listeners) {
      // Queues for the SYN-flood detector, and its cookie counters, every
      // round; half-open sockets while there are any or a sign of a flood
      // (see kListenMask).
      r.dump_mask = ns.syn_pressure ? kListenerMask : kListenMask;
      r.read_counters = true;
      r.read_settings = !ns.have_settings || reused;
    } else if (a.sockets && (!ns.have_settings || reused)) {
      // New to the events, or a new namespace behind a reused inode: its
      // limits (port range, timewait buckets) for the port books without
      // waiting for the reconcile.
      r.read_settings = r.read_counters = true;
    } else if (!drift) {
      continue;
    }
    r.read_sockstat = drift && !seeding;
    if (drift && c.refresh) r.read_settings = true;
    requests.push_back(std::move(r));
  }
  return requests;
}

std::vector<NamespaceResult> KernelView::Visit(
    const std::vector<NamespaceRequest>& requests, uint64_t* errors) {
  std::vector<NamespaceResult> results = ReadNamespaces(requests);
  for (NamespaceResult& r : results) {
    auto it = namespaces_.find(r.inode);
    if (it == namespaces_.end()) continue;
    Namespace& ns = it->second;
    if (r.enter_error != 0) {
      if (r.enter_error == ENOENT || r.enter_error == ESTALE ||
          r.enter_error == EINVAL) {
        // Gone, or reached through a process that exited: discovery tells
        // which, and drops it after a second miss.
        rediscover_ = true;
        continue;
      }
      (*errors)++;
      spdlog::warn("cannot enter netns {} ({}) through {}: {}", r.inode,
                   ns.handle.name, ns.handle.path,
                   std::strerror(r.enter_error));
      continue;
    }
    for (const std::string& line : r.failures) {
      (*errors)++;
      spdlog::warn("netns {} ({}): {}", r.inode, ns.handle.name, line);
    }
    if (r.cookie != 0 && ns.handle.cookie != 0 &&
        r.cookie != ns.handle.cookie) {
      // Its inode now names a new namespace: what was read of the old one
      // does not describe it.
      ns.have_settings = ns.have_counters = false;
      ns.listeners.clear();
    }
    if (r.cookie != 0) ns.handle.cookie = r.cookie;
    if (r.settings) {
      ns.settings = std::move(*r.settings);
      ns.have_settings = true;
    }
    if (r.counters) {
      ns.counters_rose =
          ns.have_counters && SynCountersRose(ns.counters, *r.counters);
      ns.counters = *r.counters;
      ns.have_counters = true;
    }
  }
  return results;
}

uint64_t KernelView::AgeCloseWaitFromKernel() {
  std::vector<uint32_t> inodes;
  {
    std::lock_guard<std::mutex> lock(*mirror_mutex_);
    inodes = mirror_->NamespacesWithUnknownCloseWaitAges();
  }
  // Only CLOSE_WAIT sockets, with tcp_info: cheap next to the full dump.
  std::vector<NamespaceRequest> requests;
  for (uint32_t inode : inodes) {
    auto it = namespaces_.find(inode);
    if (it == namespaces_.end()) continue;
    NamespaceRequest r;
    r.handle = it->second.handle;
    r.dump_mask = StateBit(TcpState::kCloseWait);
    r.dump_tcp_info = true;
    requests.push_back(std::move(r));
  }
  uint64_t errors = 0;
  std::unordered_map<uint32_t, std::vector<DiagSocket>> dumps;
  for (NamespaceResult& r : Visit(requests, &errors)) {
    if (r.dumped) dumps[r.inode] = std::move(r.sockets);
  }
  RestoreSavedAges(dumps);
  if (dumps.empty()) return errors;
  std::lock_guard<std::mutex> lock(*mirror_mutex_);
  size_t aged = mirror_->AgeCloseWaitFromKernel(dumps, MonotonicNowNs());
  if (aged > 0) SPDLOG_DEBUG("CLOSE_WAIT ages from the kernel: {}", aged);
  return errors;
}

void KernelView::RestoreSavedAges(
    const std::unordered_map<uint32_t, std::vector<DiagSocket>>& dumps) {
  if (saved_sockets_.empty()) return;
  Mirror::RestoreStats r;
  {
    std::lock_guard<std::mutex> lock(*mirror_mutex_);
    r = mirror_->RestoreSavedAges(saved_sockets_, dumps, MonotonicNowNs());
  }
  spdlog::info(
      "state file: {} of {} saved socket ages taken back ({} disagreed with "
      "the kernel, the rest are gone)",
      r.restored, r.saved, r.rejected);
  saved_sockets_.clear();
  saved_sockets_.shrink_to_fit();
}

void KernelView::RunCycle(bool full, bool seeding, ReconcileReason reason) {
  Cycle c;
  c.full = full;
  c.seeding = seeding;
  c.reason = full ? reason : ReconcileReason::kDrift;
  if (!full) c.targets = drift_.Drifting();
  c.reconcile = full || !c.targets.empty();
  if (full) c.peers_from_full = FullDumpServesPeers();
  if (loss_counter_) c.loss_before = loss_counter_();
  Survey(c);
  Dump(c);
  Apply(c);
  if (c.reconcile) {
    Reconcile(c);
    c.errors += AgeCloseWaitFromKernel();
  }
  CheckDrift(c);
  c.errors += ReadPeerLivenessWhenDue(c);
  ResolveOwners(c);
  CopyFromMirror(c);
  Detect(c);
  Publish(c);
}

void KernelView::Survey(Cycle& c) {
  // Discovery and the sysctls keep the cadence they had when every
  // reconcile was full: the safety interval is long.
  const uint64_t now = MonotonicNowNs();
  if (c.full || now >= next_refresh_ns_) {
    c.refresh = true;
    next_refresh_ns_ =
        now +
        static_cast<uint64_t>(std::min<std::chrono::milliseconds>(
                                  options_.reconcile_interval, kRefreshInterval)
                                  .count()) *
            1000000;
  }
  bool discovered = false;
  if (c.refresh || c.seeding || rediscover_) {
    Discover();
    discovered = true;
  }
  c.activity = ActivityFromMirror();
  {
    std::lock_guard<std::mutex> lock(*mirror_mutex_);
    for (const auto& [inode, counts] : mirror_->counts()) {
      c.events_before[inode] = mirror_->EventsIn(inode);
    }
  }
  // A namespace the events show but discovery has not found (created since
  // the last one): look now rather than at the next reconcile, once.
  bool unknown = false;
  for (const auto& [inode, a] : c.activity) {
    if (namespaces_.count(inode) == 0 && unfound_.count(inode) == 0) {
      unknown = true;
    }
  }
  if (unknown && !discovered) Discover();
  for (const auto& [inode, a] : c.activity) {
    if (namespaces_.count(inode) == 0) unfound_.insert(inode);
  }
  for (auto& [inode, ns] : namespaces_) {
    auto it = c.activity.find(inode);
    if (it == c.activity.end() || !it->second.listeners) {
      // No listener any more: nothing for the SYN-flood detector to show.
      ns.listeners.clear();
      ns.syn_pressure = false;
      ns.request_sockets = 0;  // they die with their listener
      continue;
    }
    // Signs of half-open sockets: SYN-ACKs retransmitted since the last
    // round (a handshake that did not complete in a second), SYN counters
    // that rose, or half-open sockets in the last count.
    uint64_t synacks = it->second.synack_retransmits;
    ns.syn_pressure =
        synacks > ns.synacks_seen || ns.counters_rose || ns.request_sockets > 0;
    ns.synacks_seen = synacks;
  }
}

void KernelView::Dump(Cycle& c) {
  c.dump_start = MonotonicNowNs();
  if (c.reconcile) {
    std::lock_guard<std::mutex> lock(*mirror_mutex_);
    mirror_->BeginReconcile();
  }
  c.requests = PlanReads(c);
  c.results = Visit(c.requests, &c.errors);
  for (size_t i = 0; i < c.results.size(); ++i) {
    NamespaceResult& r = c.results[i];
    if (r.enter_error == 0 && r.settings) c.settings_read.insert(r.inode);
    if (!r.dumped) continue;
    if (c.seeding && r.inode == CurrentNetnsInode()) seed_dumped_own_ = true;
    Namespace& ns = namespaces_[r.inode];
    ns.listeners = ListenersOf(r.sockets, r.inode);
    if (c.requests[i].dump_mask & StateBit(TcpState::kSynRecv)) {
      ns.request_sockets = RequestSockets(r.sockets);
      c.requests_counted.insert(r.inode);
    }
    // Only full dumps reconcile: a listeners-only dump would remove every
    // other socket of its namespace.
    if (c.requests[i].dump_mask == kAllStatesMask) {
      c.dumps[r.inode] = std::move(r.sockets);
    }
  }
  c.dump_end = MonotonicNowNs();
  if (c.reconcile && event_drain_) event_drain_();
}

void KernelView::Apply(Cycle& c) {
  std::lock_guard<std::mutex> lock(*mirror_mutex_);
  ApplySettings(c);
  if (c.reconcile) {
    std::vector<Mirror::NamespaceDump> dumps;
    for (auto& [inode, sockets] : c.dumps) {
      const Namespace& ns = namespaces_[inode];
      Mirror::NamespaceDump d;
      d.netns = inode;
      d.netns_cookie = ns.handle.cookie;
      d.sockets = &sockets;
      d.fin_timeout_s = ns.have_settings ? ns.settings.fin_timeout_s : 60;
      dumps.push_back(d);
    }
    mirror_->StartReconcile(dumps, c.dump_start, c.dump_end, c.seeding);
  }
  {
    // A listeners-only dump says nothing of request sockets: the last
    // count stands (zero, or it would have been counted again).
    for (uint32_t inode : c.requests_counted) {
      if (c.dumps.count(inode) > 0) continue;  // the reconcile counts them
      mirror_->SetRequestSockets(inode, namespaces_[inode].request_sockets);
    }
  }
}

// Under the mirror's lock.
void KernelView::ApplySettings(const Cycle& c) {
  for (uint32_t inode : c.settings_read) {
    const Namespace& ns = namespaces_[inode];
    mirror_->SetPortRange(inode,
                          static_cast<uint16_t>(ns.settings.port_range_lo),
                          static_cast<uint16_t>(ns.settings.port_range_hi));
    mirror_->SetMaxTimewait(inode, ns.settings.max_tw_buckets);
    mirror_->SetFinTimeout(
        inode, static_cast<uint64_t>(ns.settings.fin_timeout_s) * kNsPerSec);
  }
  for (const auto& [inode, ns] : namespaces_) {
    // An idle namespace gets its zero rows (every state series present,
    // as the SPEC asks) from discovery alone: listing it costs no read.
    // Without a listener it has no request sockets either, so zero is
    // what a dump would have said.
    auto it = c.activity.find(inode);
    bool listed = mirror_->counts().count(inode) > 0;
    if (!listed || (it != c.activity.end() && !it->second.listeners &&
                    it->second.request_sockets)) {
      mirror_->SetRequestSockets(inode, 0);
    }
  }
}

void KernelView::Reconcile(Cycle& c) {
  // In slices, letting go of the lock in between: the ring consumer and
  // scrapes get their turn, and events applied meanwhile are newer than
  // the dump (the mirror keeps them).
  for (bool done = false; !done;) {
    {
      std::lock_guard<std::mutex> lock(*mirror_mutex_);
      done = mirror_->ContinueReconcile(kReconcileSlice);
    }
    if (!done) std::this_thread::sleep_for(kReconcilePause);
  }
  std::lock_guard<std::mutex> lock(*mirror_mutex_);
  c.stats = mirror_->FinishReconcile();
  // Sockets from the dump that the events never attributed: find their
  // process by inode (CLOSE_WAIT and LISTEN are what the detectors name).
  for (auto& [inode, sockets] : c.dumps) {
    for (const DiagSocket& d : sockets) {
      if (d.inode == 0 ||
          (d.state != TcpState::kCloseWait && d.state != TcpState::kListen)) {
        continue;
      }
      const SocketEntry* e = mirror_->Find(d.cookie);
      if (e != nullptr && e->owner == 0) {
        c.need_owner.emplace_back(d.cookie, d.inode);
      }
    }
  }
}

// Owners of sockets only the dump knows, from /proc, before the detectors
// name them (given to the mirror by CopyFromMirror, under its lock).
void KernelView::ResolveOwners(Cycle& c) {
  if (c.need_owner.empty()) return;
  std::unordered_set<uint32_t> inodes;
  for (const auto& [id, inode] : c.need_owner) inodes.insert(inode);
  bool complete = true;
  c.owners_found = FindOwners(inodes, &complete);
  if (!complete) {
    spdlog::warn(
        "owner scan of /proc stopped early (bound reached); some "
        "sockets stay unattributed");
  }
}

void KernelView::CopyFromMirror(Cycle& c) {
  std::lock_guard<std::mutex> lock(*mirror_mutex_);
  for (const auto& [id, inode] : c.need_owner) {
    auto it = c.owners_found.find(inode);
    if (it == c.owners_found.end()) continue;
    Owner o;
    o.tgid = it->second.tgid;
    o.comm = it->second.comm;
    mirror_->SetOwner(id, o);
  }
  uint64_t now = MonotonicNowNs();
  mirror_->Expire(now);
  mirror_->ForEachCloseWait([&](const SocketEntry& s) {
    const Owner* owner = mirror_->OwnerOf(s);
    CloseWaitSocket cw;
    cw.netns = s.netns;
    if (owner != nullptr) cw.comm = owner->comm;
    cw.role = s.role;
    cw.port = s.role == Role::kClient ? s.dport : s.sport;
    cw.age_seconds = now > s.entered_ns ? Seconds(now - s.entered_ns) : 0;
    cw.age_lower_bound = (s.flags & kEntryAgeUnknown) != 0;
    c.inputs.close_wait.push_back(std::move(cw));
    c.close_wait_tgids.push_back(owner ? owner->tgid : 0);
    c.close_wait_cgroups.push_back(owner ? owner->cgroup_id : 0);
  });
  for (const auto& [key, n] : mirror_->destinations()) {
    DestinationInput d;
    d.netns = key.netns;
    d.saddr = key.saddr;
    d.daddr = key.daddr;
    d.dport = key.dport;
    d.ipv6 = key.ipv6();
    d.ports_used = n;
    c.inputs.destinations.push_back(d);
  }
  c.synacks = mirror_->synack_retransmits();
  c.timewait = mirror_->TimewaitSockets();
}

std::string KernelView::UnitOf(uint32_t tgid, uint64_t cgroup_id) {
  // The cgroup captured with the event names the unit even after the
  // process is gone and its pid reused; only owners found in /proc (no
  // event, cgroup id 0) or a host without cgroup v2 go by the pid.
  if (cgroup_id != 0) {
    if (std::optional<std::string> unit = units_.UnitOf(cgroup_id)) {
      return *unit;
    }
  }
  if (tgid == 0) return std::string();
  std::optional<ProcessInfo> info = owners_.Describe(tgid);
  return info ? info->unit : std::string();
}

void KernelView::Detect(Cycle& c) {
  // Units come from cgroupfs or /proc: looked up outside the mirror's lock.
  for (size_t i = 0; i < c.close_wait_tgids.size(); ++i) {
    c.inputs.close_wait[i].unit =
        UnitOf(c.close_wait_tgids[i], c.close_wait_cgroups[i]);
  }
  for (auto& [inode, ns] : namespaces_) {
    for (ListenerInput l : ns.listeners) {
      auto it = c.synacks.find(Mirror::ListenerKeyOf(inode, l.port));
      l.synack_retransmits_total = it != c.synacks.end() ? it->second : 0;
      c.inputs.listeners.push_back(l);
    }
    NetnsInput n;
    n.netns = inode;
    n.name = ns.handle.name;
    n.have_counters = ns.have_counters;
    n.counters = ns.counters;
    n.have_settings = ns.have_settings;
    n.settings = ns.settings;
    auto tw = c.timewait.find(inode);
    n.timewait_sockets = tw != c.timewait.end() ? tw->second : 0;
    c.inputs.namespaces.push_back(std::move(n));
  }
  c.report = detectors_.Evaluate(c.inputs, Seconds(MonotonicNowNs()));
  for (const std::string& line : c.report.started) spdlog::warn("{}", line);
  for (const std::string& line : c.report.cleared) spdlog::info("{}", line);
}

void KernelView::Publish(Cycle& c) {
  std::lock_guard<std::mutex> lock(report_mutex_);
  report_ = std::move(c.report);
  diag_errors_ += c.errors;
  if (!c.reconcile) return;
  for (size_t i = 0; i < kStateSlots; ++i) {
    corrections_[i] += c.stats.corrections[i];
  }
  reconcile_runs_[static_cast<size_t>(c.reason)]++;
  if (!c.full) {
    if (c.stats.added + c.stats.changed + c.stats.removed > 0) {
      spdlog::info(
          "drift reconcile of {} namespace(s) corrected the mirror: {} "
          "added, {} changed, {} removed",
          c.dumps.size(), c.stats.added, c.stats.changed, c.stats.removed);
    }
    return;
  }
  reconciles_++;
  last_reconcile_seconds_ = Seconds(c.dump_end - c.dump_start);
  last_reconcile_ns_ = c.dump_end;
  if (c.seeding) {
    spdlog::info(
        "seeded the mirror from the kernel: {} sockets in {} "
        "namespaces ({:.3f} s)",
        c.stats.added, c.dumps.size(), last_reconcile_seconds_);
  } else if (c.stats.added + c.stats.changed + c.stats.removed > 0) {
    spdlog::info(
        "reconcile corrected the mirror: {} added, {} changed, {} "
        "removed",
        c.stats.added, c.stats.changed, c.stats.removed);
  }
}

KernelView::Status KernelView::status() const {
  std::lock_guard<std::mutex> lock(report_mutex_);
  Status s;
  s.report = report_;
  s.reconciles = reconciles_;
  s.last_reconcile_ns = last_reconcile_ns_;
  s.last_reconcile_seconds = last_reconcile_seconds_;
  s.diag_errors = diag_errors_;
  return s;
}

std::vector<MetricFamily> KernelView::Metrics() const {
  std::lock_guard<std::mutex> lock(report_mutex_);
  std::vector<MetricFamily> out = BuildDetectorMetrics(report_);
  MetricFamily corrections = NewFamily(kCorrections);
  for (TcpState state : kReportedStates) {
    AddSample(corrections, {{"state", std::string(StateName(state))}},
              static_cast<double>(corrections_[StateIndex(state)]));
  }
  out.push_back(std::move(corrections));
  out.push_back(NewFamily(kDiagErrors));
  AddSample(out.back(), {}, static_cast<double>(diag_errors_));
  out.push_back(NewFamily(kDumpSeconds));
  AddSample(out.back(), {}, last_reconcile_seconds_);
  AppendDriftMetrics(&out);
  AppendPeerLivenessMetrics(&out);
  return out;
}

}  // namespace tcpstated
