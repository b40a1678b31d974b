// Ephemeral-port exhaustion per destination: the local ports held towards
// one (source, destination, port) against the namespace's range.
#include <algorithm>
#include <unordered_map>
#include <vector>

#include "daemon/core/detectors/detectors_internal.h"
#include "tcpstated/keep_top.h"

namespace tcpstated::detectors_internal {
namespace {

Address Normalized(const Address &a, bool ipv6) {
  Address out = a;
  if (!ipv6) std::fill(out.begin() + 4, out.end(), 0);
  return out;
}

struct DestinationGroup {
  uint64_t used = 0;
  uint64_t available = 0;
  bool have_available = false;
  bool active = false;
};

std::string DestinationText(const DestinationKey &key,
                            const NamespaceMap &namespaces) {
  const bool ipv6 = key.ipv6();
  return NetnsText(key.netns, namespaces) + " " +
         FormatAddress(key.saddr, ipv6) + " -> " +
         Endpoint(key.daddr, ipv6, key.dport);
}

std::string UsageText(const DestinationGroup &g) {
  return std::to_string(g.used) + " of " + std::to_string(g.available) +
         " ephemeral ports (" + Percent(g.used, g.available) + ")";
}

// Hashed, not ordered: at every detector cycle each destination the mirror
// counts is grouped here, and on a busy host (thousands of destinations)
// the ordered map's key comparisons were most of the kernel-view thread's
// time between dumps (docs/performance.md, sections 16 and 20). The report
// and the lines come out in key order all the same.
using DestinationGroups =
    std::unordered_map<DestinationKey, DestinationGroup, DestinationKeyHash>;

// Ports held per destination, judged against the namespace's range; the
// active ones into `next`.
DestinationGroups JudgeDestinations(const DetectorConfig &config,
                                    const DetectorInputs &inputs,
                                    const NamespaceMap &namespaces,
                                    History *next) {
  std::map<uint32_t, uint64_t> available;  // namespaces with settings
  for (const auto &[netns, ns] : namespaces) {
    if (ns->have_settings)
      available[netns] = EphemeralPortsAvailable(ns->settings);
  }
  DestinationGroups groups;
  groups.reserve(inputs.destinations.size());
  for (const DestinationInput &d : inputs.destinations) {
    DestinationKey key{d.netns, d.dport, Normalized(d.saddr, d.ipv6),
                       Normalized(d.daddr, d.ipv6)};
    DestinationGroup &g = groups[key];
    g.used = SatAdd(g.used, d.ports_used);
  }
  for (auto &[key, g] : groups) {
    auto it = available.find(key.netns);
    // Without the namespace's sysctls the range is unknown: no verdict. A
    // range with no port at all is a namespace-wide misconfiguration, not
    // one destination exhausting it: no verdict either.
    if (it == available.end()) continue;
    g.have_available = true;
    g.available = it->second;
    // A destination cannot hold more ports than the range has. More is the
    // mirror counting a port twice (a timewait socket the kernel ended
    // without an event, until the next reconcile): report the range, never
    // a ratio above 1.
    if (g.available > 0) g.used = std::min(g.used, g.available);
    g.active = ReachesRatio(g.used, g.available, config.port_exhaustion_ratio);
    if (g.active) next->port_exhaustion.insert(key);
  }
  return groups;
}

void ReportDestinations(const DetectorConfig &config,
                        const DestinationGroups &groups,
                        DetectionReport *report) {
  using Entry = DestinationGroups::value_type;
  auto top = KeepTop(
      groups, config.max_series_per_metric,
      [](const Entry *a, const Entry *b) {
        if (a->second.used != b->second.used) {
          return a->second.used > b->second.used;
        }
        return a->first < b->first;
      },
      [](DestinationGroup &other, const DestinationGroup &g) {
        other.used = SatAdd(other.used, g.used);
        other.active = other.active || g.active;
      });
  auto emit = [report](const std::map<std::string, std::string> &labels,
                       const DestinationGroup &g) {
    report->ephemeral_ports_used.push_back(MakeSeries(labels, D(g.used)));
    report->port_exhaustion_active.push_back(
        MakeSeries(labels, g.active ? 1 : 0));
  };
  for (const Entry *e : top.kept) {
    const DestinationKey &k = e->first;
    const bool ipv6 = k.ipv6();
    emit({{"netns", std::to_string(k.netns)},
          {"saddr", FormatAddress(k.saddr, ipv6)},
          {"daddr", FormatAddress(k.daddr, ipv6)},
          {"dport", std::to_string(k.dport)}},
         e->second);
  }
  if (top.other) {
    emit(OtherLabels({"netns", "saddr", "daddr", "dport"}), *top.other);
  }
}

// The started and cleared lines, one per destination whose verdict changed.
void LogDestinations(const DestinationGroups &groups,
                     const NamespaceMap &namespaces, const History &previous,
                     DetectionReport *report) {
  std::vector<const DestinationGroups::value_type *> started;
  for (const auto &entry : groups) {
    if (entry.second.active &&
        previous.port_exhaustion.count(entry.first) == 0) {
      started.push_back(&entry);
    }
  }
  std::sort(started.begin(), started.end(),
            [](const auto *a, const auto *b) { return a->first < b->first; });
  for (const auto *entry : started) {
    report->started.push_back(
        "Ephemeral port exhaustion started: " +
        DestinationText(entry->first, namespaces) + " holds " +
        UsageText(entry->second) +
        "; connect() to it fails with EADDRNOTAVAIL when none is left");
  }
  for (const DestinationKey &key : previous.port_exhaustion) {
    auto it = groups.find(key);
    if (it == groups.end()) {
      report->cleared.push_back("Ephemeral port exhaustion cleared: " +
                                DestinationText(key, namespaces) +
                                " holds no port any more");
    } else if (!it->second.active) {
      std::string usage =
          it->second.have_available
              ? UsageText(it->second)
              : std::to_string(it->second.used) + " ports (range unknown)";
      report->cleared.push_back("Ephemeral port exhaustion cleared: " +
                                DestinationText(key, namespaces) + " holds " +
                                usage);
    }
  }
}

}  // namespace

void EvaluateDestinations(const DetectorConfig &config,
                          const DetectorInputs &inputs,
                          const NamespaceMap &namespaces,
                          const History &previous, History *next,
                          DetectionReport *report) {
  const DestinationGroups groups =
      JudgeDestinations(config, inputs, namespaces, next);
  ReportDestinations(config, groups, report);
  LogDestinations(groups, namespaces, previous, report);
}

}  // namespace tcpstated::detectors_internal
