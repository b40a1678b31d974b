#include "tcpstated/peer_liveness.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>
#include <utility>

#include "daemon/core/detectors/detectors_internal.h"
#include "tcpstated/keep_top.h"
#include "tcpstated/metric_family.h"

namespace tcpstated {
namespace {

using detectors_internal::LabelValue;
using detectors_internal::Short;
using prometheus::MetricFamily;
using prometheus::MetricType;

struct OwnerKey {
  uint32_t netns = 0;
  std::string comm;
  std::string unit;
  Role role = Role::kUnknown;
  uint16_t port = 0;
  // keepalive on/off for idle groups, the reason for dead peers.
  std::string split;

  bool operator<(const OwnerKey& o) const {
    return std::tie(netns, comm, unit, role, port, split) <
           std::tie(o.netns, o.comm, o.unit, o.role, o.port, o.split);
  }
};

struct Group {
  uint64_t count = 0;
  double longest = 0;
};

Role KnownRole(Role role) {
  return role == Role::kClient || role == Role::kServer ||
                 role == Role::kListener
             ? role
             : Role::kUnknown;
}

std::map<std::string, std::string> GroupLabels(const OwnerKey* k,
                                               const char* split_label) {
  if (k == nullptr) {
    return {{"netns", kOther}, {"comm", kOther}, {"unit", kOther},
            {"role", kOther},  {"port", kOther}, {split_label, kOther}};
  }
  return {{"netns", std::to_string(k->netns)},
          {"comm", k->comm},
          {"unit", k->unit},
          {"role", std::string(RoleName(k->role))},
          {"port", std::to_string(k->port)},
          {split_label, k->split}};
}

using Entry = std::map<OwnerKey, Group>::value_type;

TopGroups<OwnerKey, Group> Bounded(const std::map<OwnerKey, Group>& groups,
                                   size_t max_series) {
  return KeepTop(
      groups, max_series,
      [](const Entry* a, const Entry* b) {
        if (a->second.count != b->second.count) {
          return a->second.count > b->second.count;
        }
        if (a->second.longest != b->second.longest) {
          return a->second.longest > b->second.longest;
        }
        return a->first < b->first;
      },
      [](Group& into, const Group& g) {
        into.count += g.count;
        into.longest = std::max(into.longest, g.longest);
      });
}

// The largest group, for the "started" line.
std::string Top(const std::map<OwnerKey, Group>& groups) {
  const std::pair<const OwnerKey, Group>* top = nullptr;
  for (const auto& e : groups) {
    if (top == nullptr || e.second.count > top->second.count) top = &e;
  }
  if (top == nullptr) return "";
  const OwnerKey& k = top->first;
  return "; largest: comm=" + (k.comm.empty() ? "?" : k.comm) +
         " unit=" + (k.unit.empty() ? "?" : k.unit) +
         " role=" + std::string(RoleName(k.role)) +
         " port=" + std::to_string(k.port) + " " + k.split + " (" +
         std::to_string(top->second.count) + ")";
}

}  // namespace

std::string_view DeadPeerReasonName(DeadPeerReason reason) {
  switch (reason) {
    case DeadPeerReason::kKeepalive:
      return "keepalive";
    case DeadPeerReason::kRetransmit:
      return "retransmit";
    case DeadPeerReason::kNone:
      break;
  }
  return "none";
}

DeadPeerReason DeadPeerOf(const EstablishedSocket& s, unsigned retries) {
  if (retries == 0) return DeadPeerReason::kNone;
  // inet_diag reports the retransmit timer before the keepalive timer: a
  // socket with unacknowledged data shows timer 1 even with keepalive on.
  if (s.timer == PendingTimer::kRetransmit && s.retransmits >= retries) {
    return DeadPeerReason::kRetransmit;
  }
  if (s.timer == PendingTimer::kKeepalive && s.probes >= retries) {
    return DeadPeerReason::kKeepalive;
  }
  return DeadPeerReason::kNone;
}

namespace {

// The sockets grouped per detection, with the counts the lines report.
struct Grouped {
  std::map<OwnerKey, Group> idle;
  std::map<OwnerKey, Group> dead;
  uint64_t idle_total = 0;
  uint64_t idle_without_keepalive = 0;
  uint64_t dead_total = 0;
};

Grouped GroupSockets(const std::vector<EstablishedSocket>& sockets,
                     const PeerLivenessConfig& config) {
  Grouped out;
  for (const EstablishedSocket& s : sockets) {
    double idle_for =
        std::isnan(s.idle_seconds) || s.idle_seconds < 0 ? 0 : s.idle_seconds;
    OwnerKey key{s.netns,
                 LabelValue(s.comm),
                 LabelValue(s.unit),
                 KnownRole(s.role),
                 s.port,
                 ""};
    if (idle_for > config.idle_after_seconds) {
      bool keepalive = s.timer == PendingTimer::kKeepalive;
      OwnerKey k = key;
      k.split = keepalive ? "on" : "off";
      Group& g = out.idle[std::move(k)];
      g.count++;
      g.longest = std::max(g.longest, idle_for);
      out.idle_total++;
      if (!keepalive) out.idle_without_keepalive++;
    }
    DeadPeerReason reason = DeadPeerOf(s, config.dead_peer_retries);
    if (reason != DeadPeerReason::kNone) {
      key.split = std::string(DeadPeerReasonName(reason));
      Group& g = out.dead[std::move(key)];
      g.count++;
      g.longest = std::max(g.longest, idle_for);
      out.dead_total++;
    }
  }
  return out;
}

void EmitIdle(PeerLivenessReport& report,
              std::map<std::string, std::string> labels, const Group& g) {
  report.idle_sockets.push_back({labels, static_cast<double>(g.count)});
  report.idle_longest_seconds.push_back({std::move(labels), g.longest});
}

// The idle groups with the most sockets, the rest under "other".
void AddIdleSeries(const std::map<OwnerKey, Group>& idle, size_t max_series,
                   PeerLivenessReport& report) {
  auto top_idle = Bounded(idle, max_series);
  for (const Entry* e : top_idle.kept) {
    EmitIdle(report, GroupLabels(&e->first, "keepalive"), e->second);
  }
  if (top_idle.other)
    EmitIdle(report, GroupLabels(nullptr, "keepalive"), *top_idle.other);
}

// The dead peer groups with the most sockets, the rest under "other".
void AddDeadPeerSeries(const std::map<OwnerKey, Group>& dead, size_t max_series,
                       PeerLivenessReport& report) {
  auto top_dead = Bounded(dead, max_series);
  for (const Entry* e : top_dead.kept) {
    report.dead_peer_sockets.push_back({GroupLabels(&e->first, "reason"),
                                        static_cast<double>(e->second.count)});
  }
  if (top_dead.other) {
    report.dead_peer_sockets.push_back(
        {GroupLabels(nullptr, "reason"),
         static_cast<double>(top_dead.other->count)});
  }
}

// The idle connections line when the host goes from none to some or back.
void ReportIdleTransition(const Grouped& g, bool was_idle,
                          const PeerLivenessConfig& config,
                          PeerLivenessReport& report) {
  const std::string after = Short(config.idle_after_seconds) + "s";
  if (g.idle_total > 0 && !was_idle) {
    report.started.push_back(
        "idle connections started: " + std::to_string(g.idle_total) +
        " ESTABLISHED socket" + (g.idle_total == 1 ? "" : "s") +
        " with nothing received for longer than " + after + " (" +
        std::to_string(g.idle_without_keepalive) + " without keepalive)" +
        Top(g.idle));
  } else if (g.idle_total == 0 && was_idle) {
    report.cleared.push_back(
        "idle connections cleared: no ESTABLISHED socket idle longer than " +
        after);
  }
}

// The dead peers line when the host goes from none to some or back.
void ReportDeadPeerTransition(const Grouped& g, bool was_dead,
                              const PeerLivenessConfig& config,
                              PeerLivenessReport& report) {
  const std::string retries = std::to_string(config.dead_peer_retries);
  if (g.dead_total > 0 && !was_dead) {
    report.started.push_back(
        "dead peers started: " + std::to_string(g.dead_total) + " connection" +
        (g.dead_total == 1 ? "" : "s") + " whose peer has not answered " +
        retries + " keepalive probes or retransmissions in a row" +
        Top(g.dead));
  } else if (g.dead_total == 0 && was_dead) {
    report.cleared.push_back(
        "dead peers cleared: every peer answers (fewer than " + retries +
        " unanswered probes or retransmissions)");
  }
}

}  // namespace

PeerLivenessReport PeerLivenessDetector::Evaluate(
    const std::vector<EstablishedSocket>& sockets,
    const PeerLivenessConfig& config, PeerJudgments judge) {
  PeerLivenessReport report;
  const Grouped groups = GroupSockets(sockets, config);
  if (judge.idle) {
    AddIdleSeries(groups.idle, config.max_series_per_metric, report);
    ReportIdleTransition(groups, idle_, config, report);
    idle_ = groups.idle_total > 0;
    idle_sockets_ = report.idle_sockets;
    idle_longest_seconds_ = report.idle_longest_seconds;
  } else {
    report.idle_sockets = idle_sockets_;
    report.idle_longest_seconds = idle_longest_seconds_;
  }
  if (judge.dead) {
    AddDeadPeerSeries(groups.dead, config.max_series_per_metric, report);
    ReportDeadPeerTransition(groups, dead_, config, report);
    dead_ = groups.dead_total > 0;
    dead_peer_sockets_ = report.dead_peer_sockets;
  } else {
    report.dead_peer_sockets = dead_peer_sockets_;
  }
  return report;
}

// The families, declared once.
const FamilySpec kIdleSockets = {
    "tcpstated_idle_sockets",
    "ESTABLISHED connections that received no data for longer than "
    "detectors.idle_after, per owner, role and port, split by whether a "
    "keepalive timer is armed (keepalive=\"on\"). Without keepalive a peer "
    "that vanished is only noticed when the application writes.",
    MetricType::Gauge};
const FamilySpec kIdleLongest = {
    "tcpstated_idle_longest_seconds",
    "Longest time without received data among the group's idle "
    "connections (tcp_info tcpi_last_data_recv).",
    MetricType::Gauge};
const FamilySpec kDeadPeers = {
    "tcpstated_dead_peer_sockets",
    "ESTABLISHED connections whose peer does not answer: "
    "detectors.dead_peer_retries keepalive probes unanswered "
    "(reason=\"keepalive\") or as many retransmissions of data never "
    "acknowledged, backing off (reason=\"retransmit\"). The kernel only "
    "gives up after tcp_keepalive_probes probes or tcp_retries2 "
    "retransmissions (minutes to hours).",
    MetricType::Gauge};

std::vector<MetricFamily> PeerLivenessMetrics(const PeerLivenessReport& r) {
  return {BuildFamily(kIdleSockets, r.idle_sockets),
          BuildFamily(kIdleLongest, r.idle_longest_seconds),
          BuildFamily(kDeadPeers, r.dead_peer_sockets)};
}

}  // namespace tcpstated
