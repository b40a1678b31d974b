// SYN floods per listener: half-open ratio, SYN-ACK retransmit rate, and
// SYN cookies sent while the listener is under pressure.
#include <set>

#include "daemon/core/detectors/detectors_internal.h"
#include "tcpstated/keep_top.h"

namespace tcpstated::detectors_internal {
namespace {

struct ListenerGroup {
  uint64_t half_open = 0;
  uint64_t accept_queue = 0;
  uint64_t accept_limit = 0;
  uint64_t synack_retransmits = 0;
  // Several LISTEN sockets may share (netns, port): IPv4 and IPv6, or an
  // SO_REUSEPORT group. Each has its own queues, so the half-open ratio and
  // "accept queue full" are judged per socket and OR-ed.
  bool ratio_reached = false;
  bool queue_full = false;
  double retransmit_rate = 0;
  bool cookies = false;  // its namespace sent cookies while it was pressured
  bool flood = false;
};

std::string ListenerText(const ListenerKey &key, const ListenerGroup &g,
                         const NamespaceMap &namespaces) {
  return NetnsText(key.netns, namespaces) +
         " port=" + std::to_string(key.port) + ": " +
         std::to_string(g.half_open) + " half-open (limit " +
         std::to_string(g.accept_limit) + "), accept queue " +
         std::to_string(g.accept_queue) + "/" + std::to_string(g.accept_limit) +
         ", SYN-ACK retransmits " + Fixed(g.retransmit_rate, 1) + "/s";
}

// Namespaces whose SYN cookie counters rose since the previous round. A
// decrease means the namespace was recreated (its inode reused): the
// baseline restarts and nothing is inferred this round.
std::set<uint32_t> CookiesRose(const NamespaceMap &namespaces,
                               const History &previous, History *next) {
  std::set<uint32_t> rose;
  for (const auto &[netns, ns] : namespaces) {
    if (!ns->have_counters) continue;
    CookieCounters now{ns->counters.SyncookiesSent,
                       ns->counters.TCPReqQFullDoCookies};
    next->cookies[netns] = now;
    auto it = previous.cookies.find(netns);
    if (it == previous.cookies.end()) continue;
    const CookieCounters &before = it->second;
    if (now.sent < before.sent || now.do_cookies < before.do_cookies) continue;
    if (now.sent > before.sent || now.do_cookies > before.do_cookies) {
      rose.insert(netns);
    }
  }
  return rose;
}

using ListenerGroups = std::map<ListenerKey, ListenerGroup>;

ListenerGroups GroupListeners(const DetectorConfig &config,
                              const std::vector<ListenerInput> &listeners) {
  ListenerGroups groups;
  for (const ListenerInput &l : listeners) {
    ListenerGroup &g = groups[ListenerKey{l.netns, l.port}];
    g.half_open = SatAdd(g.half_open, l.half_open);
    g.accept_queue = SatAdd(g.accept_queue, l.accept_queue);
    g.accept_limit = SatAdd(g.accept_limit, l.accept_limit);
    g.synack_retransmits =
        SatAdd(g.synack_retransmits, l.synack_retransmits_total);
    if (ReachesRatio(l.half_open, l.accept_limit,
                     config.syn_flood_half_open_ratio)) {
      g.ratio_reached = true;
    }
    if (l.accept_limit > 0 && l.accept_queue >= l.accept_limit) {
      g.queue_full = true;
    }
  }
  return groups;
}

// Rates and verdicts of every group; the next round's baselines and
// active floods into `next`.
void JudgeListeners(const DetectorConfig &config,
                    const std::set<uint32_t> &cookies_rose,
                    const History &previous, double elapsed, History *next,
                    ListenerGroups *groups) {
  for (auto &[key, g] : *groups) {
    next->synack_retransmits[key] = g.synack_retransmits;
    auto it = previous.synack_retransmits.find(key);
    // No baseline (first round, new listener), a counter that went back
    // (listener recreated) or a clock that did not advance: rate 0.
    if (it != previous.synack_retransmits.end() && elapsed > 0 &&
        g.synack_retransmits >= it->second) {
      g.retransmit_rate = D(g.synack_retransmits - it->second) / elapsed;
    }
    // SYN cookies alone do not make a flood: with tcp_syncookies=1 a host
    // may send them by design, as a defence, for any short SYN burst, and
    // the counter is per namespace, not per listener. They count only for a
    // listener that is itself under pressure (half-open requests queued, or
    // its accept queue full).
    g.cookies =
        cookies_rose.count(key.netns) > 0 && (g.half_open > 0 || g.queue_full);
    g.flood = g.ratio_reached ||
              g.retransmit_rate > config.synack_retransmit_rate || g.cookies;
    if (g.flood) next->syn_floods.insert(key);
  }
}

void ReportListeners(const DetectorConfig &config, const ListenerGroups &groups,
                     DetectionReport *report) {
  using Entry = ListenerGroups::value_type;
  auto top = KeepTop(
      groups, config.max_series_per_metric,
      [](const Entry *a, const Entry *b) {
        if (a->second.half_open != b->second.half_open) {
          return a->second.half_open > b->second.half_open;
        }
        if (a->second.accept_queue != b->second.accept_queue) {
          return a->second.accept_queue > b->second.accept_queue;
        }
        return a->first < b->first;
      },
      [](ListenerGroup &other, const ListenerGroup &g) {
        other.half_open = SatAdd(other.half_open, g.half_open);
        other.accept_queue = SatAdd(other.accept_queue, g.accept_queue);
        other.accept_limit = SatAdd(other.accept_limit, g.accept_limit);
        other.synack_retransmits =
            SatAdd(other.synack_retransmits, g.synack_retransmits);
        other.flood = other.flood || g.flood;
      });
  auto emit = [report](const std::map<std::string, std::string> &labels,
                       const ListenerGroup &g) {
    report->listen_syn_recv_sockets.push_back(
        MakeSeries(labels, D(g.half_open)));
    report->listen_accept_queue_length.push_back(
        MakeSeries(labels, D(g.accept_queue)));
    report->listen_accept_queue_limit.push_back(
        MakeSeries(labels, D(g.accept_limit)));
    report->synack_retransmits_total.push_back(
        MakeSeries(labels, D(g.synack_retransmits)));
    report->syn_flood_active.push_back(MakeSeries(labels, g.flood ? 1 : 0));
  };
  for (const Entry *e : top.kept) {
    emit({{"netns", std::to_string(e->first.netns)},
          {"port", std::to_string(e->first.port)}},
         e->second);
  }
  if (top.other) emit(OtherLabels({"netns", "port"}), *top.other);
}

// The started and cleared lines, one per listener whose verdict changed.
void LogListeners(const DetectorConfig &config, const ListenerGroups &groups,
                  const NamespaceMap &namespaces, const History &previous,
                  DetectionReport *report) {
  for (const auto &[key, g] : groups) {
    if (!g.flood || previous.syn_floods.count(key) > 0) continue;
    std::string why;
    auto add = [&why](const std::string &reason) {
      why += (why.empty() ? "" : ", ") + reason;
    };
    if (g.ratio_reached) {
      add("half-open >= " + Short(config.syn_flood_half_open_ratio) +
          " of the limit");
    }
    if (g.retransmit_rate > config.synack_retransmit_rate) {
      add("SYN-ACK retransmits above " + Short(config.synack_retransmit_rate) +
          "/s");
    }
    if (g.cookies) add("SYN cookies sent while the listener is under pressure");
    report->started.push_back("SYN flood started on " +
                              ListenerText(key, g, namespaces) + " (" + why +
                              ")");
  }
  for (const ListenerKey &key : previous.syn_floods) {
    auto it = groups.find(key);
    if (it == groups.end()) {
      report->cleared.push_back(
          "SYN flood cleared on " + NetnsText(key.netns, namespaces) +
          " port=" + std::to_string(key.port) + ": the listener is gone");
    } else if (!it->second.flood) {
      report->cleared.push_back("SYN flood cleared on " +
                                ListenerText(key, it->second, namespaces));
    }
  }
}

}  // namespace

void EvaluateListeners(const DetectorConfig &config,
                       const DetectorInputs &inputs,
                       const NamespaceMap &namespaces, const History &previous,
                       double elapsed, History *next, DetectionReport *report) {
  const std::set<uint32_t> cookies_rose =
      CookiesRose(namespaces, previous, next);
  ListenerGroups groups = GroupListeners(config, inputs.listeners);
  JudgeListeners(config, cookies_rose, previous, elapsed, next, &groups);
  ReportListeners(config, groups, report);
  LogListeners(config, groups, namespaces, previous, report);
}

}  // namespace tcpstated::detectors_internal
