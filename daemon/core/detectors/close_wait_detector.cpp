// CLOSE_WAIT leaks: sockets whose peer closed while the application never
// calls close(), grouped by owner, unit, role and port.
#include <algorithm>
#include <cmath>
#include <tuple>

#include "daemon/core/detectors/detectors_internal.h"
#include "tcpstated/keep_top.h"

namespace tcpstated::detectors_internal {
namespace {

// Groups named in the "CLOSE_WAIT leak started" line.
constexpr size_t kTopInLog = 3;

// Ages come from clocks: NaN or negative (clock skew) count as 0.
double Age(double seconds) {
  return std::isnan(seconds) || seconds < 0 ? 0 : seconds;
}

// Roles outside the enum would label as "unknown" yet group apart.
Role KnownRole(Role role) {
  switch (role) {
    case Role::kClient:
    case Role::kServer:
    case Role::kListener:
      return role;
    case Role::kUnknown:
      break;
  }
  return Role::kUnknown;
}

struct CloseWaitKey {
  uint32_t netns = 0;
  std::string comm;
  std::string unit;
  Role role = Role::kUnknown;
  uint16_t port = 0;

  bool operator<(const CloseWaitKey &o) const {
    return std::tie(netns, comm, unit, role, port) <
           std::tie(o.netns, o.comm, o.unit, o.role, o.port);
  }
};

struct CloseWaitGroup {
  uint64_t count = 0;
  uint64_t leaked = 0;
  uint64_t age_lower_bound = 0;
  double oldest = 0;
};

std::map<std::string, std::string> CloseWaitLabels(const CloseWaitKey &k) {
  return {{"netns", std::to_string(k.netns)},
          {"comm", k.comm},
          {"unit", k.unit},
          {"role", std::string(RoleName(k.role))},
          {"port", std::to_string(k.port)}};
}

using CloseWaitGroups = std::map<CloseWaitKey, CloseWaitGroup>;

void ReportCloseWait(const DetectorConfig &config,
                     const CloseWaitGroups &groups, DetectionReport *report) {
  using Entry = CloseWaitGroups::value_type;
  auto top = KeepTop(
      groups, config.max_series_per_metric,
      [](const Entry *a, const Entry *b) {
        if (a->second.count != b->second.count) {
          return a->second.count > b->second.count;
        }
        if (a->second.oldest != b->second.oldest) {
          return a->second.oldest > b->second.oldest;
        }
        return a->first < b->first;
      },
      [](CloseWaitGroup &other, const CloseWaitGroup &g) {
        other.count = SatAdd(other.count, g.count);
        other.leaked = SatAdd(other.leaked, g.leaked);
        other.age_lower_bound =
            SatAdd(other.age_lower_bound, g.age_lower_bound);
        other.oldest = std::max(other.oldest, g.oldest);
      });
  auto emit = [report](const std::map<std::string, std::string> &labels,
                       const CloseWaitGroup &g) {
    report->close_wait_sockets.push_back(MakeSeries(labels, D(g.count)));
    report->close_wait_leaked_sockets.push_back(
        MakeSeries(labels, D(g.leaked)));
    report->close_wait_oldest_seconds.push_back(MakeSeries(labels, g.oldest));
    report->close_wait_age_lower_bound_sockets.push_back(
        MakeSeries(labels, D(g.age_lower_bound)));
  };
  for (const Entry *e : top.kept) emit(CloseWaitLabels(e->first), e->second);
  if (top.other) {
    emit(OtherLabels({"netns", "comm", "unit", "role", "port"}), *top.other);
  }
}

// "CLOSE_WAIT leak started: ..." naming the groups with the most leaked
// sockets.
std::string LeakStartedLine(const DetectorConfig &config,
                            const CloseWaitGroups &groups,
                            uint64_t total_leaked) {
  using Entry = CloseWaitGroups::value_type;
  std::vector<const Entry *> leaders;
  for (const Entry &e : groups) {
    if (e.second.leaked > 0) leaders.push_back(&e);
  }
  size_t shown = std::min(leaders.size(), kTopInLog);
  std::partial_sort(leaders.begin(),
                    leaders.begin() + static_cast<std::ptrdiff_t>(shown),
                    leaders.end(), [](const Entry *a, const Entry *b) {
                      if (a->second.leaked != b->second.leaked) {
                        return a->second.leaked > b->second.leaked;
                      }
                      return a->first < b->first;
                    });
  std::string line =
      "CLOSE_WAIT leak started: " + std::to_string(total_leaked) +
      " leaked socket" + (total_leaked == 1 ? "" : "s") + "; top:";
  for (size_t i = 0; i < shown; ++i) {
    const CloseWaitKey &k = leaders[i]->first;
    line += std::string(i == 0 ? " " : ", ") +
            "comm=" + (k.comm.empty() ? "?" : k.comm) +
            " unit=" + (k.unit.empty() ? "?" : k.unit) +
            " port=" + std::to_string(k.port) + " (" +
            std::to_string(leaders[i]->second.leaked) + ")";
  }
  if (leaders.size() > shown) {
    line += ", and " + std::to_string(leaders.size() - shown) + " more group" +
            (leaders.size() - shown == 1 ? "" : "s");
  }
  return line + "; leaked = in CLOSE_WAIT longer than " +
         Short(config.close_wait_leak_after_seconds) + "s";
}

}  // namespace

void EvaluateCloseWait(const DetectorConfig &config,
                       const std::vector<CloseWaitSocket> &sockets,
                       bool was_leaking, bool *leaking,
                       DetectionReport *report) {
  CloseWaitGroups groups;
  uint64_t total_leaked = 0;
  for (const CloseWaitSocket &s : sockets) {
    CloseWaitKey key{s.netns, LabelValue(s.comm), LabelValue(s.unit),
                     KnownRole(s.role), s.port};
    CloseWaitGroup &g = groups[std::move(key)];
    double age = Age(s.age_seconds);
    g.count = SatAdd(g.count, 1);
    if (s.age_lower_bound) g.age_lower_bound = SatAdd(g.age_lower_bound, 1);
    // "Longer than" the threshold: a socket exactly at it is not leaked yet.
    if (age > config.close_wait_leak_after_seconds) {
      g.leaked = SatAdd(g.leaked, 1);
      total_leaked = SatAdd(total_leaked, 1);
    }
    g.oldest = std::max(g.oldest, age);
  }
  ReportCloseWait(config, groups, report);

  // One line for the whole host, not one per group: a leaking service
  // spreads over many ports and namespaces, and the metrics have the detail.
  *leaking = total_leaked > 0;
  if (*leaking && !was_leaking) {
    report->started.push_back(LeakStartedLine(config, groups, total_leaked));
  } else if (!*leaking && was_leaking) {
    report->cleared.push_back(
        "CLOSE_WAIT leak cleared: no socket in CLOSE_WAIT longer than " +
        Short(config.close_wait_leak_after_seconds) + "s");
  }
}

}  // namespace tcpstated::detectors_internal
