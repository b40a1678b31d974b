// KernelView's peer-liveness step: sock_diag dumps of FIN_WAIT2 and of
// ESTABLISHED (and LISTEN) sockets with tcp_info (INET_DIAG_INFO, ~230
// bytes more per socket), in the namespaces where the mirror counts such
// sockets, each on its own cadence: a tenth of its detector's threshold
// (fin_wait2_stuck_after, idle_after), within [detector interval, full
// reconcile interval] (not the 30-s reconcile interval: at a million
// connections the ESTABLISHED dump costs ~1.45 full dumps). A detection so
// starts and clears within its threshold plus that cadence (plus one
// detector cycle). With the defaults the FIN_WAIT2 dump (a state-filtered
// walk; few sockets match) runs every 30 s and the ESTABLISHED one every
// 6 min. The full dump stays without tcp_info:
// asking for it there would make every LISTEN, TIME_WAIT and request socket
// pay too. Cost at scale: docs/performance.md.

#include <spdlog/spdlog.h>

#include <chrono>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "tcpstated/kernel_view.h"
#include "tcpstated/metric_family.h"
#include "tcpstated/monotonic_clock.h"
#include "tcpstated/peer_sockets.h"

namespace tcpstated {
namespace {

// LISTEN too (a handful of sockets): the role of connections the mirror
// cannot match comes from whether their local port is listening.
const FamilySpec kPeerLivenessDumpSeconds = {
    "tcpstated_peer_liveness_dump_seconds",
    "How long the last peer-liveness dump (FIN_WAIT2 and/or ESTABLISHED "
    "sockets with tcp_info, each at a tenth of its detector's threshold) "
    "took, every namespace that has such sockets included.",
    prometheus::MetricType::Gauge};

// The interval of a peer dump whose detector has threshold `seconds`.
uint64_t PeerDumpIntervalNs(double seconds, std::chrono::milliseconds lo,
                            std::chrono::milliseconds hi) {
  const double lo_s = static_cast<double>(lo.count()) / 1e3;
  const double hi_s = static_cast<double>(hi.count()) / 1e3;
  double s = seconds / 10;
  if (s > hi_s) s = hi_s;
  if (s < lo_s) s = lo_s;
  return static_cast<uint64_t>(s * 1e9);
}

// The mirror's owner, role and time in state of a dumped socket. Sockets
// are matched by cookie: in classic-tracepoint mode only those whose
// identity came from a dump are found; the others keep the kernel's age
// and are attributed through /proc.
KnownSocket Lookup(const Mirror& mirror, const DiagSocket& d, uint64_t now_ns) {
  KnownSocket known;
  const SocketEntry* e = d.cookie != 0 ? mirror.Find(d.cookie) : nullptr;
  if (e == nullptr || e->state != d.state) return known;
  known.role = e->role;
  if (const Owner* owner = mirror.OwnerOf(*e)) {
    known.comm = owner->comm;
    known.tgid = owner->tgid;
  }
  if (now_ns > e->entered_ns) {
    known.age_seconds = static_cast<double>(now_ns - e->entered_ns) / 1e9;
  }
  return known;
}

// Fills comm and unit of rows the mirror could not attribute from /proc
// (by inode), and the unit of the others from their process.
template <typename Row>
void Attribute(std::vector<Row>* rows, OwnerResolver* owners,
               const std::unordered_map<uint32_t, ProcessInfo>& by_inode) {
  for (Row& row : *rows) {
    if (row.tgid == 0 && row.inode != 0) {
      auto it = by_inode.find(row.inode);
      if (it != by_inode.end()) {
        row.tgid = it->second.tgid;
        row.comm = it->second.comm;
      }
    }
    if (row.tgid != 0) {
      if (auto info = owners->Describe(row.tgid)) row.unit = info->unit;
    }
  }
}

template <typename Row>
void UnownedInodes(const std::vector<Row>& rows,
                   std::unordered_set<uint32_t>* inodes) {
  for (const Row& row : rows) {
    if (row.tgid == 0 && row.inode != 0) inodes->insert(row.inode);
  }
}

}  // namespace

uint64_t KernelView::ReadPeerLivenessWhenDue() {
  // Not tied to the full reconcile: its safety interval is long, and lost
  // events (which trigger it) say nothing about liveness.
  const uint64_t now = MonotonicNowNs();
  const bool fin_wait2 = now >= next_fin_wait2_ns_;
  const bool established = now >= next_established_ns_;
  if (fin_wait2) {
    next_fin_wait2_ns_ =
        now + PeerDumpIntervalNs(options_.fin_wait2.stuck_after_seconds,
                                 options_.detector_interval,
                                 options_.full_reconcile_interval);
  }
  if (established) {
    next_established_ns_ =
        now + PeerDumpIntervalNs(options_.peer_liveness.idle_after_seconds,
                                 options_.detector_interval,
                                 options_.full_reconcile_interval);
  }
  if (!fin_wait2 && !established) return 0;
  return ReadPeerLiveness(fin_wait2, established);
}

uint64_t KernelView::ReadPeerLiveness(bool fin_wait2_due,
                                      bool established_due) {
  const uint32_t mask =
      StateBit(TcpState::kListen) |
      (fin_wait2_due ? StateBit(TcpState::kFinWait2) : 0) |
      (established_due ? StateBit(TcpState::kEstablished) : 0);
  std::vector<NamespaceRequest> requests;
  {
    std::lock_guard<std::mutex> lock(*mirror_mutex_);
    for (const auto& [inode, counts] : mirror_->counts()) {
      if (!(established_due &&
            counts[StateIndex(TcpState::kEstablished)] > 0) &&
          !(fin_wait2_due && counts[StateIndex(TcpState::kFinWait2)] > 0)) {
        continue;
      }
      auto it = namespaces_.find(inode);
      if (it == namespaces_.end()) continue;
      NamespaceRequest r;
      r.handle = it->second.handle;
      r.dump_mask = mask;
      r.dump_tcp_info = true;
      requests.push_back(std::move(r));
    }
  }
  uint64_t errors = 0;
  const uint64_t dump_start = MonotonicNowNs();
  std::vector<NamespaceResult> results = Visit(requests, &errors);
  const double dump_seconds =
      static_cast<double>(MonotonicNowNs() - dump_start) / 1e9;

  PeerSockets sockets;
  {
    std::lock_guard<std::mutex> lock(*mirror_mutex_);
    const uint64_t now = MonotonicNowNs();
    SocketLookup lookup = [this, now](const DiagSocket& d) {
      return Lookup(*mirror_, d, now);
    };
    for (const NamespaceResult& r : results) {
      if (r.dumped) {
        ClassifyPeerSockets(r.sockets, options_.peer_liveness, lookup,
                            &sockets);
      }
    }
  }
  results.clear();

  std::unordered_set<uint32_t> inodes;
  UnownedInodes(sockets.fin_wait2, &inodes);
  UnownedInodes(sockets.established, &inodes);
  std::unordered_map<uint32_t, ProcessInfo> by_inode;
  if (!inodes.empty()) by_inode = FindOwners(inodes, nullptr);
  Attribute(&sockets.fin_wait2, &owners_, by_inode);
  Attribute(&sockets.established, &owners_, by_inode);

  // Only the detector whose dump ran is judged; the other's report stands.
  FinWait2Report fin_wait2;
  PeerLivenessReport liveness;
  if (fin_wait2_due) {
    fin_wait2 = fin_wait2_.Evaluate(sockets.fin_wait2, options_.fin_wait2);
  }
  if (established_due) {
    liveness = liveness_.Evaluate(sockets.established, options_.peer_liveness);
  }
  for (const auto* lines : {&fin_wait2.started, &liveness.started}) {
    for (const std::string& line : *lines) spdlog::warn("{}", line);
  }
  for (const auto* lines : {&fin_wait2.cleared, &liveness.cleared}) {
    for (const std::string& line : *lines) spdlog::info("{}", line);
  }
  std::lock_guard<std::mutex> lock(report_mutex_);
  if (fin_wait2_due) fin_wait2_report_ = std::move(fin_wait2);
  if (established_due) liveness_report_ = std::move(liveness);
  liveness_dump_seconds_ = dump_seconds;
  return errors;
}

void KernelView::AppendPeerLivenessMetrics(
    std::vector<prometheus::MetricFamily>* out) const {
  for (auto& f : FinWait2Metrics(fin_wait2_report_)) out->push_back(f);
  for (auto& f : PeerLivenessMetrics(liveness_report_)) out->push_back(f);
  out->push_back(NewFamily(kPeerLivenessDumpSeconds));
  AddSample(out->back(), {}, liveness_dump_seconds_);
}

}  // namespace tcpstated
