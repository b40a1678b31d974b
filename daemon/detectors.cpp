#include "tcpstated/detectors.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <limits>
#include <set>
#include <string_view>
#include <tuple>
#include <utility>

namespace tcpstated {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Label value of the series that sums everything beyond
// max_series_per_metric. Never a real value: netns and ports are decimal.
constexpr const char kOther[] = "other";
// Longer label values are cut (comm is 15 bytes; units are paths).
constexpr size_t kMaxLabelBytes = 256;
// Groups named in the "CLOSE_WAIT leak started" line.
constexpr size_t kTopInLog = 3;

uint64_t SatAdd(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b
             ? std::numeric_limits<uint64_t>::max()
             : a + b;
}

size_t SatMul(size_t a, size_t b) {
  if (a != 0 && b > std::numeric_limits<size_t>::max() / a) {
    return std::numeric_limits<size_t>::max();
  }
  return a * b;
}

double D(uint64_t v) { return static_cast<double>(v); }

// value / limit >= ratio. Dividing keeps boundaries exact (800 / 1000 is the
// double nearest 0.8, like the configured 0.8), where ratio * limit may round
// above the integer (0.55 * 100 > 55).
bool ReachesRatio(uint64_t value, uint64_t limit, double ratio) {
  if (value == 0 || limit == 0) return false;
  return D(value) / D(limit) >= ratio;
}

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

std::string Short(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

std::string Percent(uint64_t value, uint64_t limit) {
  return limit == 0 ? "-" : Fixed(100.0 * D(value) / D(limit), 0) + "%";
}

// Prometheus needs UTF-8 label values, but comm and unit names are bytes:
// invalid sequences and control characters become '?', and the value is cut
// at kMaxLabelBytes. Grouping uses the cleaned value, so two raw names that
// clean to the same label still make one series.
std::string LabelValue(std::string_view in) {
  std::string out;
  out.reserve(std::min(in.size(), kMaxLabelBytes));
  size_t i = 0;
  while (i < in.size()) {
    auto byte = [&in](size_t k) { return static_cast<unsigned char>(in[k]); };
    unsigned char c = byte(i);
    size_t len = c < 0x80             ? 1
                 : (c & 0xE0) == 0xC0 ? 2
                 : (c & 0xF0) == 0xE0 ? 3
                 : (c & 0xF8) == 0xF0 ? 4
                                      : 0;
    bool ok = len > 0 && len <= in.size() - i;
    for (size_t k = 1; ok && k < len; ++k) ok = (byte(i + k) & 0xC0) == 0x80;
    if (ok && len == 1) ok = c >= 0x20 && c != 0x7F;
    if (ok && len == 2) ok = c >= 0xC2;  // no overlong forms
    if (ok && len == 3) {
      unsigned char c1 = byte(i + 1);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
    }
    if (ok && len == 4) {
      unsigned char c1 = byte(i + 1);
      ok = c <= 0xF4 && !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    size_t take = ok ? len : 1;
    if (out.size() + take > kMaxLabelBytes) break;
    if (ok) {
      out.append(in.substr(i, len));
    } else {
      out.push_back('?');
    }
    i += take;
  }
  return out;
}

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

// Keeps the `max_kept` entries of `groups` that rank first by `before` (a
// strict total order) and returns them in key order; the others go to
// `*folded`. Linear on average (nth_element), plus sorting what is kept.
template <typename Map, typename Before>
std::vector<const typename Map::value_type*> KeepTop(
    const Map& groups, size_t max_kept, Before before,
    std::vector<const typename Map::value_type*>* folded) {
  std::vector<const typename Map::value_type*> kept;
  kept.reserve(groups.size());
  for (const auto& g : groups) kept.push_back(&g);
  folded->clear();
  if (kept.size() > max_kept) {
    auto nth = kept.begin() + static_cast<std::ptrdiff_t>(max_kept);
    std::nth_element(kept.begin(), nth, kept.end(), before);
    folded->assign(nth, kept.end());
    kept.erase(nth, kept.end());
    std::sort(kept.begin(), kept.end(),
              [](const auto* a, const auto* b) { return a->first < b->first; });
  }
  return kept;
}

Series MakeSeries(std::map<std::string, std::string> labels, double value) {
  Series s;
  s.labels = std::move(labels);
  s.value = value;
  return s;
}

// ---- keys --------------------------------------------------------------

struct CloseWaitKey {
  uint32_t netns = 0;
  std::string comm;
  std::string unit;
  Role role = Role::kUnknown;
  uint16_t port = 0;

  bool operator<(const CloseWaitKey& o) const {
    return std::tie(netns, comm, unit, role, port) <
           std::tie(o.netns, o.comm, o.unit, o.role, o.port);
  }
};

struct ListenerKey {
  uint32_t netns = 0;
  uint16_t port = 0;

  bool operator<(const ListenerKey& o) const {
    return std::tie(netns, port) < std::tie(o.netns, o.port);
  }
};

struct DestinationKey {
  uint32_t netns = 0;
  bool ipv6 = false;
  Address saddr{};  // IPv4: bytes 4..15 zeroed, as FormatAddress ignores them
  Address daddr{};
  uint16_t dport = 0;

  bool operator<(const DestinationKey& o) const {
    return std::tie(netns, ipv6, saddr, daddr, dport) <
           std::tie(o.netns, o.ipv6, o.saddr, o.daddr, o.dport);
  }
};

Address Normalized(const Address& a, bool ipv6) {
  Address out = a;
  if (!ipv6) std::fill(out.begin() + 4, out.end(), 0);
  return out;
}

struct CookieCounters {
  uint64_t sent = 0;        // SyncookiesSent
  uint64_t do_cookies = 0;  // TCPReqQFullDoCookies
};

// What Evaluate knows about the namespaces in this round: the first entry
// per inode wins (a duplicate would make duplicate series).
using NamespaceMap = std::map<uint32_t, const NetnsInput*>;

std::string NetnsText(uint32_t netns, const NamespaceMap& namespaces) {
  std::string out = "netns=" + std::to_string(netns);
  auto it = namespaces.find(netns);
  if (it != namespaces.end() && !it->second->name.empty()) {
    out += " (" + LabelValue(it->second->name) + ")";
  }
  return out;
}

std::string Endpoint(const Address& address, bool ipv6, uint16_t port) {
  std::string a = FormatAddress(address, ipv6);
  return (ipv6 ? "[" + a + "]" : a) + ":" + std::to_string(port);
}

// Everything Evaluate remembers between rounds. Only keys present in the
// latest round are kept, so it is bounded by the inputs.
struct History {
  bool have_previous = false;  // a previous round with a finite clock
  double previous_seconds = 0;
  std::map<ListenerKey, uint64_t> synack_retransmits;  // last totals
  std::map<uint32_t, CookieCounters> cookies;  // namespaces with counters
  // Active detections.
  bool close_wait_leak = false;
  std::set<ListenerKey> syn_floods;
  std::set<DestinationKey> port_exhaustion;
  std::set<uint32_t> time_wait_buckets;
};

// ---- CLOSE_WAIT --------------------------------------------------------

struct CloseWaitGroup {
  uint64_t count = 0;
  uint64_t leaked = 0;
  double oldest = 0;
};

std::map<std::string, std::string> CloseWaitLabels(const CloseWaitKey& k) {
  return {{"netns", std::to_string(k.netns)},
          {"comm", k.comm},
          {"unit", k.unit},
          {"role", std::string(RoleName(k.role))},
          {"port", std::to_string(k.port)}};
}

std::map<std::string, std::string> OtherLabels(
    std::initializer_list<const char*> names) {
  std::map<std::string, std::string> labels;
  for (const char* name : names) labels[name] = kOther;
  return labels;
}

void EvaluateCloseWait(const DetectorConfig& config,
                       const std::vector<CloseWaitSocket>& sockets,
                       bool was_leaking, bool* leaking,
                       DetectionReport* report) {
  std::map<CloseWaitKey, CloseWaitGroup> groups;
  uint64_t total_leaked = 0;
  for (const CloseWaitSocket& s : sockets) {
    CloseWaitKey key{s.netns, LabelValue(s.comm), LabelValue(s.unit),
                     KnownRole(s.role), s.port};
    CloseWaitGroup& g = groups[std::move(key)];
    double age = Age(s.age_seconds);
    g.count = SatAdd(g.count, 1);
    // "Longer than" the threshold: a socket exactly at it is not leaked yet.
    if (age > config.close_wait_leak_after_seconds) {
      g.leaked = SatAdd(g.leaked, 1);
      total_leaked = SatAdd(total_leaked, 1);
    }
    g.oldest = std::max(g.oldest, age);
  }

  using Entry = std::map<CloseWaitKey, CloseWaitGroup>::value_type;
  std::vector<const Entry*> folded;
  auto kept = KeepTop(
      groups, config.max_series_per_metric,
      [](const Entry* a, const Entry* b) {
        if (a->second.count != b->second.count) {
          return a->second.count > b->second.count;
        }
        if (a->second.oldest != b->second.oldest) {
          return a->second.oldest > b->second.oldest;
        }
        return a->first < b->first;
      },
      &folded);
  for (const Entry* e : kept) {
    auto labels = CloseWaitLabels(e->first);
    report->close_wait_sockets.push_back(
        MakeSeries(labels, D(e->second.count)));
    report->close_wait_leaked_sockets.push_back(
        MakeSeries(labels, D(e->second.leaked)));
    report->close_wait_oldest_seconds.push_back(
        MakeSeries(std::move(labels), e->second.oldest));
  }
  if (!folded.empty()) {
    CloseWaitGroup other;
    for (const Entry* e : folded) {
      other.count = SatAdd(other.count, e->second.count);
      other.leaked = SatAdd(other.leaked, e->second.leaked);
      other.oldest = std::max(other.oldest, e->second.oldest);
    }
    auto labels = OtherLabels({"netns", "comm", "unit", "role", "port"});
    report->close_wait_sockets.push_back(MakeSeries(labels, D(other.count)));
    report->close_wait_leaked_sockets.push_back(
        MakeSeries(labels, D(other.leaked)));
    report->close_wait_oldest_seconds.push_back(
        MakeSeries(std::move(labels), other.oldest));
  }

  // One line for the whole host, not one per group: a leaking service
  // spreads over many ports and namespaces, and the metrics have the detail.
  *leaking = total_leaked > 0;
  if (*leaking && !was_leaking) {
    std::vector<const Entry*> top;
    for (const Entry& e : groups) {
      if (e.second.leaked > 0) top.push_back(&e);
    }
    size_t shown = std::min(top.size(), kTopInLog);
    std::partial_sort(top.begin(),
                      top.begin() + static_cast<std::ptrdiff_t>(shown),
                      top.end(), [](const Entry* a, const Entry* b) {
                        if (a->second.leaked != b->second.leaked) {
                          return a->second.leaked > b->second.leaked;
                        }
                        return a->first < b->first;
                      });
    std::string line =
        "CLOSE_WAIT leak started: " + std::to_string(total_leaked) +
        " leaked socket" + (total_leaked == 1 ? "" : "s") + "; top:";
    for (size_t i = 0; i < shown; ++i) {
      const CloseWaitKey& k = top[i]->first;
      line += std::string(i == 0 ? " " : ", ") +
              "comm=" + (k.comm.empty() ? "?" : k.comm) +
              " unit=" + (k.unit.empty() ? "?" : k.unit) +
              " port=" + std::to_string(k.port) + " (" +
              std::to_string(top[i]->second.leaked) + ")";
    }
    if (top.size() > shown) {
      line += ", and " + std::to_string(top.size() - shown) + " more group" +
              (top.size() - shown == 1 ? "" : "s");
    }
    line += "; leaked = in CLOSE_WAIT longer than " +
            Short(config.close_wait_leak_after_seconds) + "s";
    report->started.push_back(std::move(line));
  } else if (!*leaking && was_leaking) {
    report->cleared.push_back(
        "CLOSE_WAIT leak cleared: no socket in CLOSE_WAIT longer than " +
        Short(config.close_wait_leak_after_seconds) + "s");
  }
}

// ---- Listeners (SYN_RECV floods) ---------------------------------------

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

std::string ListenerText(const ListenerKey& key, const ListenerGroup& g,
                         const NamespaceMap& namespaces) {
  return NetnsText(key.netns, namespaces) +
         " port=" + std::to_string(key.port) + ": " +
         std::to_string(g.half_open) + " half-open (limit " +
         std::to_string(g.accept_limit) + "), accept queue " +
         std::to_string(g.accept_queue) + "/" + std::to_string(g.accept_limit) +
         ", SYN-ACK retransmits " + Fixed(g.retransmit_rate, 1) + "/s";
}

void EvaluateListeners(const DetectorConfig& config,
                       const DetectorInputs& inputs,
                       const NamespaceMap& namespaces, const History& previous,
                       double elapsed, History* next, DetectionReport* report) {
  // Namespaces whose SYN cookie counters rose since the previous round. A
  // decrease means the namespace was recreated (its inode reused): the
  // baseline restarts and nothing is inferred this round.
  std::set<uint32_t> cookies_rose;
  for (const auto& [netns, ns] : namespaces) {
    if (!ns->have_counters) continue;
    CookieCounters now{ns->counters.SyncookiesSent,
                       ns->counters.TCPReqQFullDoCookies};
    next->cookies[netns] = now;
    auto it = previous.cookies.find(netns);
    if (it == previous.cookies.end()) continue;
    const CookieCounters& before = it->second;
    if (now.sent < before.sent || now.do_cookies < before.do_cookies) continue;
    if (now.sent > before.sent || now.do_cookies > before.do_cookies) {
      cookies_rose.insert(netns);
    }
  }

  std::map<ListenerKey, ListenerGroup> groups;
  for (const ListenerInput& l : inputs.listeners) {
    ListenerGroup& g = groups[ListenerKey{l.netns, l.port}];
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

  for (auto& [key, g] : groups) {
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

  using Entry = std::map<ListenerKey, ListenerGroup>::value_type;
  std::vector<const Entry*> folded;
  auto kept = KeepTop(
      groups, config.max_series_per_metric,
      [](const Entry* a, const Entry* b) {
        if (a->second.half_open != b->second.half_open) {
          return a->second.half_open > b->second.half_open;
        }
        if (a->second.accept_queue != b->second.accept_queue) {
          return a->second.accept_queue > b->second.accept_queue;
        }
        return a->first < b->first;
      },
      &folded);
  auto emit = [report](const std::map<std::string, std::string>& labels,
                       const ListenerGroup& g) {
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
  for (const Entry* e : kept) {
    emit({{"netns", std::to_string(e->first.netns)},
          {"port", std::to_string(e->first.port)}},
         e->second);
  }
  if (!folded.empty()) {
    ListenerGroup other;
    for (const Entry* e : folded) {
      other.half_open = SatAdd(other.half_open, e->second.half_open);
      other.accept_queue = SatAdd(other.accept_queue, e->second.accept_queue);
      other.accept_limit = SatAdd(other.accept_limit, e->second.accept_limit);
      other.synack_retransmits =
          SatAdd(other.synack_retransmits, e->second.synack_retransmits);
      other.flood = other.flood || e->second.flood;
    }
    emit(OtherLabels({"netns", "port"}), other);
  }

  for (const auto& [key, g] : groups) {
    if (!g.flood || previous.syn_floods.count(key) > 0) continue;
    std::string why;
    auto add = [&why](const std::string& reason) {
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
  for (const ListenerKey& key : previous.syn_floods) {
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

// ---- Destinations (ephemeral port exhaustion) --------------------------

struct DestinationGroup {
  uint64_t used = 0;
  uint64_t available = 0;
  bool have_available = false;
  bool active = false;
};

std::string DestinationText(const DestinationKey& key,
                            const NamespaceMap& namespaces) {
  return NetnsText(key.netns, namespaces) + " " +
         FormatAddress(key.saddr, key.ipv6) + " -> " +
         Endpoint(key.daddr, key.ipv6, key.dport);
}

std::string UsageText(const DestinationGroup& g) {
  return std::to_string(g.used) + " of " + std::to_string(g.available) +
         " ephemeral ports (" + Percent(g.used, g.available) + ")";
}

void EvaluateDestinations(const DetectorConfig& config,
                          const DetectorInputs& inputs,
                          const NamespaceMap& namespaces,
                          const History& previous, History* next,
                          DetectionReport* report) {
  std::map<uint32_t, uint64_t> available;  // namespaces with settings
  for (const auto& [netns, ns] : namespaces) {
    if (ns->have_settings)
      available[netns] = EphemeralPortsAvailable(ns->settings);
  }

  std::map<DestinationKey, DestinationGroup> groups;
  for (const DestinationInput& d : inputs.destinations) {
    DestinationKey key{d.netns, d.ipv6, Normalized(d.saddr, d.ipv6),
                       Normalized(d.daddr, d.ipv6), d.dport};
    DestinationGroup& g = groups[key];
    g.used = SatAdd(g.used, d.ports_used);
  }
  for (auto& [key, g] : groups) {
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

  using Entry = std::map<DestinationKey, DestinationGroup>::value_type;
  std::vector<const Entry*> folded;
  auto kept = KeepTop(
      groups, config.max_series_per_metric,
      [](const Entry* a, const Entry* b) {
        if (a->second.used != b->second.used) {
          return a->second.used > b->second.used;
        }
        return a->first < b->first;
      },
      &folded);
  for (const Entry* e : kept) {
    const DestinationKey& k = e->first;
    std::map<std::string, std::string> labels = {
        {"netns", std::to_string(k.netns)},
        {"saddr", FormatAddress(k.saddr, k.ipv6)},
        {"daddr", FormatAddress(k.daddr, k.ipv6)},
        {"dport", std::to_string(k.dport)}};
    report->ephemeral_ports_used.push_back(
        MakeSeries(labels, D(e->second.used)));
    report->port_exhaustion_active.push_back(
        MakeSeries(std::move(labels), e->second.active ? 1 : 0));
  }
  if (!folded.empty()) {
    uint64_t used = 0;
    bool active = false;
    for (const Entry* e : folded) {
      used = SatAdd(used, e->second.used);
      active = active || e->second.active;
    }
    auto labels = OtherLabels({"netns", "saddr", "daddr", "dport"});
    report->ephemeral_ports_used.push_back(MakeSeries(labels, D(used)));
    report->port_exhaustion_active.push_back(
        MakeSeries(std::move(labels), active ? 1 : 0));
  }

  for (const auto& [key, g] : groups) {
    if (!g.active || previous.port_exhaustion.count(key) > 0) continue;
    report->started.push_back(
        "Ephemeral port exhaustion started: " +
        DestinationText(key, namespaces) + " holds " + UsageText(g) +
        "; connect() to it fails with EADDRNOTAVAIL when none is left");
  }
  for (const DestinationKey& key : previous.port_exhaustion) {
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

// ---- Namespaces (kernel counters, settings, TIME_WAIT buckets) ---------

std::string TimeWaitText(uint32_t netns, const NetnsInput* ns,
                         const NamespaceMap& namespaces) {
  return NetnsText(netns, namespaces) + ": " +
         std::to_string(ns->timewait_sockets) +
         " TIME_WAIT sockets, net.ipv4.tcp_max_tw_buckets=" +
         std::to_string(ns->settings.max_tw_buckets) + " (" +
         Percent(ns->timewait_sockets, ns->settings.max_tw_buckets) + ")";
}

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

// ---- Exposition --------------------------------------------------------

MetricFamily Family(const char* name, const char* help, MetricType type,
                    const std::vector<Series>& series) {
  MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  f.metric.reserve(series.size());
  for (const Series& s : series) {
    ClientMetric m;
    m.label.reserve(s.labels.size());
    for (const auto& [k, v] : s.labels) m.label.push_back({k, v});
    if (type == MetricType::Counter) {
      m.counter.value = s.value;
    } else {
      m.gauge.value = s.value;
    }
    f.metric.push_back(std::move(m));
  }
  return f;
}

}  // namespace

struct Detectors::State {
  History history;
};

Detectors::Detectors(DetectorConfig config)
    : config_(config), state_(std::make_unique<State>()) {}

Detectors::~Detectors() = default;
Detectors::Detectors(Detectors&&) noexcept = default;
Detectors& Detectors::operator=(Detectors&&) noexcept = default;

DetectionReport Detectors::Evaluate(const DetectorInputs& inputs,
                                    double now_seconds) {
  // The only exception possible here is std::bad_alloc. The new state is
  // built aside and committed at the end, so a failed round changes nothing
  // and the next one compares against the last complete round.
  try {
    if (!state_) state_ = std::make_unique<State>();  // moved-from
    const History& previous = state_->history;
    History next;
    next.have_previous = std::isfinite(now_seconds);
    next.previous_seconds = now_seconds;
    double elapsed = 0;
    if (previous.have_previous && next.have_previous) {
      elapsed = now_seconds - previous.previous_seconds;
    }

    NamespaceMap namespaces;
    for (const NetnsInput& ns : inputs.namespaces) {
      namespaces.emplace(ns.netns, &ns);
    }

    DetectionReport report;
    EvaluateCloseWait(config_, inputs.close_wait, previous.close_wait_leak,
                      &next.close_wait_leak, &report);
    EvaluateListeners(config_, inputs, namespaces, previous, elapsed, &next,
                      &report);
    EvaluateDestinations(config_, inputs, namespaces, previous, &next, &report);
    EvaluateNamespaces(config_, namespaces, previous, &next, &report);
    state_->history = std::move(next);
    return report;
  } catch (...) {
    return DetectionReport{};
  }
}

std::vector<MetricFamily> BuildDetectorMetrics(const DetectionReport& r) {
  try {
    const MetricType kGauge = MetricType::Gauge;
    const MetricType kCounter = MetricType::Counter;
    std::vector<MetricFamily> out;
    out.reserve(18);
    out.push_back(Family(
        "tcpstated_close_wait_sockets",
        "Sockets in CLOSE_WAIT: the peer closed the connection but the "
        "application has not called close() yet; per owner process, systemd "
        "unit, role and port (the largest groups, the rest summed under "
        "\"other\").",
        kGauge, r.close_wait_sockets));
    out.push_back(Family(
        "tcpstated_close_wait_leaked_sockets",
        "Sockets in CLOSE_WAIT for longer than "
        "detectors.close_wait_leak_after: the application is most likely "
        "leaking them (never calling close()), which ends in file descriptor "
        "exhaustion.",
        kGauge, r.close_wait_leaked_sockets));
    out.push_back(Family(
        "tcpstated_close_wait_oldest_seconds",
        "Age of the oldest socket in CLOSE_WAIT in the group: how long the "
        "application has been ignoring the peer's close.",
        kGauge, r.close_wait_oldest_seconds));
    out.push_back(Family(
        "tcpstated_listen_syn_recv_sockets",
        "Half-open connections on a listener (SYN received and SYN-ACK sent, "
        "final ACK still missing); many of them mean a SYN flood or clients "
        "that cannot reach back.",
        kGauge, r.listen_syn_recv_sockets));
    out.push_back(Family(
        "tcpstated_listen_accept_queue_length",
        "Connections established but not yet accept()ed by the application "
        "on a listener; when it reaches the limit the kernel drops new "
        "handshakes.",
        kGauge, r.listen_accept_queue_length));
    out.push_back(Family(
        "tcpstated_listen_accept_queue_limit",
        "Accept-queue limit of a listener: its listen() backlog capped by "
        "net.core.somaxconn.",
        kGauge, r.listen_accept_queue_limit));
    out.push_back(Family(
        "tcpstated_synack_retransmits_total",
        "SYN-ACKs a listener retransmitted because the client never "
        "completed the handshake (spoofed SYNs in a flood, or packet loss).",
        kCounter, r.synack_retransmits_total));
    out.push_back(Family(
        "tcpstated_syn_flood_active",
        "1 while a listener looks SYN-flooded (half-open connections at "
        "detectors.syn_flood_half_open_ratio of its limit, SYN-ACK "
        "retransmits above detectors.synack_retransmit_rate per second, or "
        "SYN cookies sent while it is under pressure), else 0.",
        kGauge, r.syn_flood_active));
    out.push_back(Family(
        "tcpstated_syncookies_sent_total",
        "SYN cookies the namespace sent because a listener's SYN queue was "
        "full (TcpExt SyncookiesSent).",
        kCounter, r.syncookies_sent_total));
    out.push_back(Family(
        "tcpstated_listen_overflows_total",
        "Completed handshakes dropped because a listener's accept queue was "
        "full, i.e. the application did not accept() fast enough (TcpExt "
        "ListenOverflows).",
        kCounter, r.listen_overflows_total));
    out.push_back(
        Family("tcpstated_listen_drops_total",
               "Connection attempts dropped by listeners for any reason, "
               "accept-queue overflows included (TcpExt ListenDrops).",
               kCounter, r.listen_drops_total));
    out.push_back(
        Family("tcpstated_syn_queue_full_drops_total",
               "SYNs dropped because a listener's SYN queue was full and SYN "
               "cookies were off (TcpExt TCPReqQFullDrop).",
               kCounter, r.syn_queue_full_drops_total));
    out.push_back(
        Family("tcpstated_time_wait_overflows_total",
               "Connections closed without a TIME_WAIT socket because "
               "net.ipv4.tcp_max_tw_buckets was reached (TcpExt "
               "TCPTimeWaitOverflow).",
               kCounter, r.time_wait_overflows_total));
    out.push_back(Family(
        "tcpstated_ephemeral_ports_used",
        "Local ports held towards one destination (source address, "
        "destination address and port) in any state, TIME_WAIT included; "
        "connect() to it fails with EADDRNOTAVAIL when none is left.",
        kGauge, r.ephemeral_ports_used));
    out.push_back(
        Family("tcpstated_ephemeral_ports_available",
               "Ephemeral ports connect() can choose from in the namespace: "
               "net.ipv4.ip_local_port_range minus ip_local_reserved_ports.",
               kGauge, r.ephemeral_ports_available));
    out.push_back(Family(
        "tcpstated_time_wait_limit",
        "net.ipv4.tcp_max_tw_buckets of the namespace: the most TIME_WAIT "
        "sockets it keeps; beyond it connections close without TIME_WAIT.",
        kGauge, r.time_wait_limit));
    out.push_back(Family(
        "tcpstated_port_exhaustion_active",
        "1 while one destination holds at least "
        "detectors.port_exhaustion_ratio of the namespace's ephemeral ports "
        "(new connect() calls to it are about to fail), else 0.",
        kGauge, r.port_exhaustion_active));
    out.push_back(Family(
        "tcpstated_netns_info",
        "Maps a network namespace inode (the netns label) to a name: host, "
        "its ip netns name, or one derived from a process in it; always 1.",
        kGauge, r.netns_info));
    return out;
  } catch (...) {  // std::bad_alloc only
    return {};
  }
}

std::string CleanLabelValue(std::string_view raw) { return LabelValue(raw); }

MetricFamily SeriesFamily(const char* name, const char* help, MetricType type,
                          const std::vector<Series>& series) {
  return Family(name, help, type, series);
}

}  // namespace tcpstated
