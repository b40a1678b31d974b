#include "tcpstated/fin_wait2_detector.h"

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

// Groups named in the "started" line.
constexpr size_t kTopInLog = 3;

struct Key {
  uint32_t netns = 0;
  std::string comm;
  std::string unit;
  bool ipv6 = false;
  Address daddr{};
  uint16_t dport = 0;

  bool operator<(const Key& o) const {
    return std::tie(netns, comm, unit, ipv6, daddr, dport) <
           std::tie(o.netns, o.comm, o.unit, o.ipv6, o.daddr, o.dport);
  }
};

struct Group {
  uint64_t count = 0;
  uint64_t stuck = 0;
  double oldest = 0;
};

// NaN or negative ages (clock skew) count as 0.
double Age(double seconds) {
  return std::isnan(seconds) || seconds < 0 ? 0 : seconds;
}

std::map<std::string, std::string> GroupLabels(const Key* k) {
  if (k == nullptr) {
    return {{"netns", kOther},
            {"comm", kOther},
            {"unit", kOther},
            {"daddr", kOther},
            {"dport", kOther}};
  }
  return {{"netns", std::to_string(k->netns)},
          {"comm", k->comm},
          {"unit", k->unit},
          {"daddr", FormatAddress(k->daddr, k->ipv6)},
          {"dport", std::to_string(k->dport)}};
}

std::string StartedLine(const std::map<Key, Group>& groups, uint64_t stuck,
                        double after) {
  std::vector<const std::pair<const Key, Group>*> top;
  for (const auto& e : groups) {
    if (e.second.stuck > 0) top.push_back(&e);
  }
  size_t shown = std::min(top.size(), kTopInLog);
  std::partial_sort(top.begin(),
                    top.begin() + static_cast<std::ptrdiff_t>(shown), top.end(),
                    [](const auto* a, const auto* b) {
                      if (a->second.stuck != b->second.stuck) {
                        return a->second.stuck > b->second.stuck;
                      }
                      return a->first < b->first;
                    });
  std::string line = "FIN_WAIT2 stuck started: " + std::to_string(stuck) +
                     " socket" + (stuck == 1 ? "" : "s") +
                     " whose peer never closed; top:";
  for (size_t i = 0; i < shown; ++i) {
    const Key& k = top[i]->first;
    std::string peer = FormatAddress(k.daddr, k.ipv6);
    if (k.ipv6) peer = "[" + peer + "]";
    line += std::string(i == 0 ? " " : ", ") +
            "comm=" + (k.comm.empty() ? "?" : k.comm) +
            " unit=" + (k.unit.empty() ? "?" : k.unit) + " peer=" + peer + ":" +
            std::to_string(k.dport) + " (" +
            std::to_string(top[i]->second.stuck) + ", oldest " +
            Short(std::floor(top[i]->second.oldest)) + "s)";
  }
  if (top.size() > shown) {
    line += ", and " + std::to_string(top.size() - shown) + " more";
  }
  return line + "; stuck = full socket in FIN_WAIT2 longer than " +
         Short(after) + "s";
}

}  // namespace

FinWait2Report FinWait2Detector::Evaluate(
    const std::vector<FinWait2Socket>& sockets, const FinWait2Config& config) {
  FinWait2Report report;
  std::map<Key, Group> groups;
  std::map<uint32_t, uint64_t> orphans;
  uint64_t stuck = 0;
  for (const FinWait2Socket& s : sockets) {
    if (s.orphan) {
      orphans[s.netns]++;
      continue;
    }
    Key key;
    key.netns = s.netns;
    key.comm = LabelValue(s.comm);
    key.unit = LabelValue(s.unit);
    key.ipv6 = s.ipv6;
    key.daddr = s.daddr;
    // FormatAddress ignores bytes 4..15 of an IPv4 address: so does the key.
    if (!s.ipv6) std::fill(key.daddr.begin() + 4, key.daddr.end(), 0);
    key.dport = s.dport;
    Group& g = groups[std::move(key)];
    double age = Age(s.age_seconds);
    g.count++;
    // "Older than" the threshold, as for CLOSE_WAIT leaks.
    if (age > config.stuck_after_seconds) {
      g.stuck++;
      stuck++;
    }
    g.oldest = std::max(g.oldest, age);
  }

  using Entry = std::map<Key, Group>::value_type;
  auto top = KeepTop(
      groups, config.max_series_per_metric,
      [](const Entry* a, const Entry* b) {
        if (a->second.stuck != b->second.stuck) {
          return a->second.stuck > b->second.stuck;
        }
        if (a->second.count != b->second.count) {
          return a->second.count > b->second.count;
        }
        if (a->second.oldest != b->second.oldest) {
          return a->second.oldest > b->second.oldest;
        }
        return a->first < b->first;
      },
      [](Group& into, const Group& g) {
        into.count += g.count;
        into.stuck += g.stuck;
        into.oldest = std::max(into.oldest, g.oldest);
      });
  auto emit = [&report](std::map<std::string, std::string> labels,
                        const Group& g) {
    report.sockets.push_back({labels, static_cast<double>(g.count)});
    report.stuck_sockets.push_back({labels, static_cast<double>(g.stuck)});
    report.oldest_seconds.push_back({std::move(labels), g.oldest});
  };
  for (const Entry* e : top.kept) emit(GroupLabels(&e->first), e->second);
  if (top.other) emit(GroupLabels(nullptr), *top.other);
  for (const auto& [netns, n] : orphans) {
    report.orphan_sockets.push_back(
        {{{"netns", std::to_string(netns)}}, static_cast<double>(n)});
  }

  bool now_stuck = stuck > 0;
  if (now_stuck && !stuck_) {
    report.started.push_back(
        StartedLine(groups, stuck, config.stuck_after_seconds));
  } else if (!now_stuck && stuck_) {
    report.cleared.push_back(
        "FIN_WAIT2 stuck cleared: no full socket in FIN_WAIT2 longer than " +
        Short(config.stuck_after_seconds) + "s");
  }
  stuck_ = now_stuck;
  return report;
}

// The families, declared once.
const FamilySpec kFinWait2Sockets = {
    "tcpstated_fin_wait2_sockets",
    "Sockets in FIN_WAIT2 that the application still holds: this side "
    "closed its half (close() on a shared socket, or shutdown(SHUT_WR)), "
    "the peer acknowledged the FIN but has not sent its own. No timer ends "
    "them. Per owner and peer (daddr, dport), the largest groups, the rest "
    "summed under \"other\".",
    MetricType::Gauge};
const FamilySpec kFinWait2Stuck = {
    "tcpstated_fin_wait2_stuck_sockets",
    "Full sockets in FIN_WAIT2 for longer than "
    "detectors.fin_wait2_stuck_after: the peer's application most likely "
    "never calls close() (a CLOSE_WAIT leak on the peer).",
    MetricType::Gauge};
const FamilySpec kFinWait2Oldest = {
    "tcpstated_fin_wait2_oldest_seconds",
    "Age of the oldest full socket in FIN_WAIT2 in the group: how long the "
    "peer has been holding its half of the connection open.",
    MetricType::Gauge};
const FamilySpec kFinWait2Orphans = {
    "tcpstated_fin_wait2_orphan_sockets",
    "Orphaned sockets in FIN_WAIT2 (the application has closed them; "
    "timewait stand-ins included): the kernel drops them after "
    "net.ipv4.tcp_fin_timeout, so they are not flagged.",
    MetricType::Gauge};

std::vector<MetricFamily> FinWait2Metrics(const FinWait2Report& r) {
  return {BuildFamily(kFinWait2Sockets, r.sockets),
          BuildFamily(kFinWait2Stuck, r.stuck_sockets),
          BuildFamily(kFinWait2Oldest, r.oldest_seconds),
          BuildFamily(kFinWait2Orphans, r.orphan_sockets)};
}

}  // namespace tcpstated
