// Per namespace: TIME_WAIT bucket exhaustion against tcp_max_tw_buckets,
// the TcpExt counters and sysctls as series, and the namespace's name.

#include "daemon/core/detectors/detectors_internal.h"

namespace tcpstated::detectors_internal {
namespace {

std::string TimeWaitText(uint32_t netns, const NetnsInput* ns,
                         const NamespaceMap& namespaces) {
  return NetnsText(netns, namespaces) + ": " +
         std::to_string(ns->timewait_sockets) +
         " TIME_WAIT sockets, net.ipv4.tcp_max_tw_buckets=" +
         std::to_string(ns->settings.max_tw_buckets) + " (" +
         Percent(ns->timewait_sockets, ns->settings.max_tw_buckets) + ")";
}

}  // namespace

void EvaluateNamespaces(const DetectorConfig& config,
                        const NamespaceMap& namespaces, const History& previous,
                        History* next, DetectionReport* report) {
  // Namespaces are bounded by the host, not by traffic, so they are not
  // folded; the cap only guards Prometheus against a runaway discovery.
  // The lowest inodes are kept: the host's namespace is the lowest.
  size_t cap = SatMul(config.max_series_per_metric, 10);
  size_t emitted = 0;
  for (const auto& [netns, ns] : namespaces) {
    bool active =
        ns->have_settings &&
        ReachesRatio(ns->timewait_sockets, ns->settings.max_tw_buckets,
                     config.time_wait_buckets_ratio);
    if (active) {
      next->time_wait_buckets.insert(netns);
      if (previous.time_wait_buckets.count(netns) == 0) {
        report->started.push_back(
            "TIME_WAIT bucket exhaustion started: " +
            TimeWaitText(netns, ns, namespaces) +
            "; beyond the limit connections close without TIME_WAIT");
      }
    } else if (previous.time_wait_buckets.count(netns) > 0) {
      report->cleared.push_back("TIME_WAIT bucket exhaustion cleared: " +
                                (ns->have_settings
                                     ? TimeWaitText(netns, ns, namespaces)
                                     : NetnsText(netns, namespaces) +
                                           ": settings no longer readable"));
    }

    if (emitted >= cap) continue;
    ++emitted;
    std::map<std::string, std::string> labels = {
        {"netns", std::to_string(netns)}};
    if (ns->have_counters) {
      const TcpExtCounters& c = ns->counters;
      report->syncookies_sent_total.push_back(
          MakeSeries(labels, D(c.SyncookiesSent)));
      report->listen_overflows_total.push_back(
          MakeSeries(labels, D(c.ListenOverflows)));
      report->listen_drops_total.push_back(
          MakeSeries(labels, D(c.ListenDrops)));
      report->syn_queue_full_drops_total.push_back(
          MakeSeries(labels, D(c.TCPReqQFullDrop)));
      report->time_wait_overflows_total.push_back(
          MakeSeries(labels, D(c.TCPTimeWaitOverflow)));
    }
    if (ns->have_settings) {
      report->ephemeral_ports_available.push_back(
          MakeSeries(labels, D(EphemeralPortsAvailable(ns->settings))));
      report->time_wait_limit.push_back(
          MakeSeries(labels, D(ns->settings.max_tw_buckets)));
    }
    labels["name"] = LabelValue(ns->name);
    report->netns_info.push_back(MakeSeries(std::move(labels), 1));
  }
  for (uint32_t netns : previous.time_wait_buckets) {
    if (namespaces.count(netns) == 0) {
      report->cleared.push_back("TIME_WAIT bucket exhaustion cleared: netns=" +
                                std::to_string(netns) +
                                ": the namespace is gone");
    }
  }
}

}  // namespace tcpstated::detectors_internal
