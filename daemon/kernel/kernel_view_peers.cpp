// KernelView's peer-liveness step: sock_diag dumps of FIN_WAIT2 and of
// ESTABLISHED (and LISTEN) sockets, in the namespaces where the mirror
// counts such sockets, each judgment on its own cadence (PeerDumpSchedule:
// a tenth of fin_wait2_stuck_after; dead peers a quarter of idle_after but
// at most 5 min; idle connections a quarter of idle_after; each within
// [detector interval, full reconcile interval]). A detection so starts and
// clears within its threshold plus that cadence (plus one detector cycle).
// tcp_info (INET_DIAG_INFO, ~230 bytes more per socket and the kernel's
// tcp_get_info under the socket lock) is asked for only by the FIN_WAIT2
// and idle judgments; dead peers are judged from the row's timer. Every
// full dump serves the dead-peer judgment, and the idle and FIN_WAIT2 ones
// when they fall due, for which it asks for tcp_info: each dump walks the
// whole host's established hash, so two walks would cost twice one. With
// the defaults the FIN_WAIT2 dump (a state-filtered walk; few sockets
// match) runs every 30 s in namespaces that have FIN_WAIT2 sockets, the
// 10-min safety dump carries tcp_info and serves all three judgments, and
// an ESTABLISHED dump without tcp_info judges dead peers 5 min after each.
// Cost at scale: docs/performance.md, sections 11, 16 and 20.

#include <spdlog/spdlog.h>

#include <chrono>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "daemon/kernel/kernel_view_cycle.h"
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
    "How long the last peer-liveness dump (FIN_WAIT2 sockets with "
    "tcp_info at a tenth of fin_wait2_stuck_after; ESTABLISHED sockets for "
    "dead peers at a quarter of idle_after, at most 5 min, and with "
    "tcp_info for idle connections at a quarter of idle_after) took, every "
    "namespace that has such sockets included; or the full dump that "
    "served it.",
    prometheus::MetricType::Gauge};

// The mirror's owner, role and time in state of a dumped socket. Sockets
// are matched by cookie: in classic-tracepoint mode only those whose
// identity came from a dump are found; the others keep the kernel's age
// and are attributed through /proc. A socket found without an owner is
// added to `unowned` (id, inode) for KeepOwners.
KnownSocket Lookup(const Mirror& mirror, const DiagSocket& d, uint64_t now_ns,
                   std::vector<std::pair<uint64_t, uint32_t>>* unowned) {
  KnownSocket known;
  const SocketEntry* e = d.cookie != 0 ? mirror.Find(d.cookie) : nullptr;
  if (e == nullptr || e->state != d.state) return known;
  known.role = e->role;
  if (const Owner* owner = mirror.OwnerOf(*e)) {
    known.comm = owner->comm;
    known.tgid = owner->tgid;
  } else if (d.inode != 0) {
    unowned->emplace_back(d.cookie, d.inode);
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

PeerDumpIntervals KernelView::PeerIntervals() const {
  return PeerDumpIntervalsFor(options_.fin_wait2.stuck_after_seconds,
                              options_.peer_liveness.idle_after_seconds,
                              options_.detector_interval,
                              options_.full_reconcile_interval);
}

PeerDumpsDue KernelView::FullDumpServesPeers() const {
  return peer_schedule_.FullDumpServes(MonotonicNowNs(), PeerIntervals());
}

uint64_t KernelView::ReadPeerLivenessWhenDue(const Cycle& c) {
  // Not tied to the full reconcile otherwise: its safety interval is long,
  // and lost events (which trigger it) say nothing about liveness.
  const uint64_t now = MonotonicNowNs();
  const PeerDumpIntervals intervals = PeerIntervals();
  if (c.peers_from_full.any()) {
    // The full dump's failures are counted with it.
    peer_schedule_.Ran(c.peers_from_full, now, intervals);
    std::vector<const std::vector<DiagSocket>*> dumps;
    for (const auto& [inode, sockets] : c.dumps) dumps.push_back(&sockets);
    JudgePeers(dumps, c.peers_from_full,
               static_cast<double>(c.dump_end - c.dump_start) / 1e9);
  }
  // What the full dump did not serve (FIN_WAIT2 without tcp_info).
  const PeerDumpsDue due = peer_schedule_.DueNow(now, intervals);
  if (!due.any()) return 0;
  peer_schedule_.Ran(due, now, intervals);
  return ReadPeerLiveness(due);
}

uint64_t KernelView::ReadPeerLiveness(PeerDumpsDue due) {
  const bool established = due.established || due.idle;
  const uint32_t mask = StateBit(TcpState::kListen) |
                        (due.fin_wait2 ? StateBit(TcpState::kFinWait2) : 0) |
                        (established ? StateBit(TcpState::kEstablished) : 0);
  std::vector<NamespaceRequest> requests;
  {
    std::lock_guard<std::mutex> lock(*mirror_mutex_);
    for (const auto& [inode, counts] : mirror_->counts()) {
      if (!(established && counts[StateIndex(TcpState::kEstablished)] > 0) &&
          !(due.fin_wait2 && counts[StateIndex(TcpState::kFinWait2)] > 0)) {
        continue;
      }
      auto it = namespaces_.find(inode);
      if (it == namespaces_.end()) continue;
      NamespaceRequest r;
      r.handle = it->second.handle;
      r.dump_mask = mask;
      r.dump_tcp_info = due.needs_tcp_info();
      requests.push_back(std::move(r));
    }
  }
  uint64_t errors = 0;
  const uint64_t dump_start = MonotonicNowNs();
  std::vector<NamespaceResult> results = Visit(requests, &errors);
  const double dump_seconds =
      static_cast<double>(MonotonicNowNs() - dump_start) / 1e9;
  std::vector<const std::vector<DiagSocket>*> dumps;
  for (const NamespaceResult& r : results) {
    if (r.dumped) dumps.push_back(&r.sockets);
  }
  JudgePeers(dumps, due, dump_seconds);
  return errors;
}

void KernelView::JudgePeers(
    const std::vector<const std::vector<DiagSocket>*>& dumps, PeerDumpsDue due,
    double dump_seconds) {
  PeerSockets sockets;
  // Flagged sockets the mirror knows without an owner: the owner /proc
  // gives is kept in the mirror, so that the next dump of the same idle
  // connections does not search /proc for them again.
  std::vector<std::pair<uint64_t, uint32_t>> unowned;  // id, inode
  {
    // The mirror's lock per looked-up row, not around the whole
    // classification: every full dump is judged (a million rows at a
    // million connections, every 30 s under lost events), and only the
    // rows the detectors can flag are looked up; the ring consumer must
    // not wait for the others.
    const uint64_t now = MonotonicNowNs();
    SocketLookup lookup = [this, now, &unowned](const DiagSocket& d) {
      std::lock_guard<std::mutex> lock(*mirror_mutex_);
      return Lookup(*mirror_, d, now, &unowned);
    };
    for (const std::vector<DiagSocket>* dump : dumps) {
      ClassifyPeerSockets(*dump, options_.peer_liveness, lookup, &sockets);
    }
  }

  std::unordered_set<uint32_t> inodes;
  UnownedInodes(sockets.fin_wait2, &inodes);
  UnownedInodes(sockets.established, &inodes);
  std::unordered_map<uint32_t, ProcessInfo> by_inode;
  if (!inodes.empty()) by_inode = FindOwners(inodes, nullptr);
  Attribute(&sockets.fin_wait2, &owners_, by_inode);
  Attribute(&sockets.established, &owners_, by_inode);
  KeepOwners(unowned, by_inode);

  // Only the detector whose dump ran is judged; the other's report stands.
  FinWait2Report fin_wait2;
  PeerLivenessReport liveness;
  if (due.fin_wait2) {
    fin_wait2 = fin_wait2_.Evaluate(sockets.fin_wait2, options_.fin_wait2);
  }
  const bool judges_liveness = due.established || due.idle;
  if (judges_liveness) {
    PeerJudgments judge;
    judge.idle = due.idle;
    judge.dead = due.established;
    liveness =
        liveness_.Evaluate(sockets.established, options_.peer_liveness, judge);
  }
  for (const auto* lines : {&fin_wait2.started, &liveness.started}) {
    for (const std::string& line : *lines) spdlog::warn("{}", line);
  }
  for (const auto* lines : {&fin_wait2.cleared, &liveness.cleared}) {
    for (const std::string& line : *lines) spdlog::info("{}", line);
  }
  std::lock_guard<std::mutex> lock(report_mutex_);
  if (due.fin_wait2) fin_wait2_report_ = std::move(fin_wait2);
  if (judges_liveness) liveness_report_ = std::move(liveness);
  liveness_dump_seconds_ = dump_seconds;
}

void KernelView::KeepOwners(
    const std::vector<std::pair<uint64_t, uint32_t>>& unowned,
    const std::unordered_map<uint32_t, ProcessInfo>& by_inode) {
  if (unowned.empty() || by_inode.empty()) return;
  std::lock_guard<std::mutex> lock(*mirror_mutex_);
  for (const auto& [id, inode] : unowned) {
    auto it = by_inode.find(inode);
    if (it == by_inode.end()) continue;
    Owner o;
    o.tgid = it->second.tgid;
    o.comm = it->second.comm;
    mirror_->SetOwner(id, o);  // only if still there and still unowned
  }
}

void KernelView::AppendPeerLivenessMetrics(
    std::vector<prometheus::MetricFamily>* out) const {
  for (auto& f : FinWait2Metrics(fin_wait2_report_)) out->push_back(f);
  for (auto& f : PeerLivenessMetrics(liveness_report_)) out->push_back(f);
  out->push_back(NewFamily(kPeerLivenessDumpSeconds));
  AddSample(out->back(), {}, liveness_dump_seconds_);
}

}  // namespace tcpstated
