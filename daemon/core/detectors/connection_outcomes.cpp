#include "tcpstated/connection_outcomes.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <set>
#include <string_view>
#include <tuple>
#include <utility>

#include "tcpstated/keep_top.h"
#include "tcpstated/metric_family.h"

namespace tcpstated {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using LabelMap = std::map<std::string, std::string>;

size_t BookKeys(size_t max_series) {
  const size_t per_series = 10;
  return max_series > std::numeric_limits<size_t>::max() / per_series
             ? std::numeric_limits<size_t>::max()
             : std::max<size_t>(max_series * per_series, 64);
}

double D(uint64_t v) { return static_cast<double>(v); }

struct DestinationLess {
  bool operator()(const ConnectDestination& a,
                  const ConnectDestination& b) const {
    return std::tie(a.netns, a.ipv6, a.daddr, a.dport) <
           std::tie(b.netns, b.ipv6, b.daddr, b.dport);
  }
};

// One series of tcpstated_connect_failures_total: a destination and the
// index of a reason.
using FailureSeries = std::pair<ConnectDestination, size_t>;
struct FailureSeriesLess {
  bool operator()(const FailureSeries& a, const FailureSeries& b) const {
    if (DestinationLess()(a.first, b.first)) return true;
    if (DestinationLess()(b.first, a.first)) return false;
    return a.second < b.second;
  }
};

// A service as the reset counts name it.
struct PortKey {
  uint32_t netns = 0;
  Role role = Role::kUnknown;
  uint16_t port = 0;
  bool operator<(const PortKey& o) const {
    return std::tie(netns, role, port) < std::tie(o.netns, o.role, o.port);
  }
};

std::string Endpoint(const ConnectDestination& d) {
  std::string a = FormatAddress(d.daddr, d.ipv6);
  return (d.ipv6 ? "[" + a + "]" : a) + ":" + std::to_string(d.dport);
}

LabelMap DestinationLabels(const ConnectDestination& d) {
  return {{"netns", std::to_string(d.netns)},
          {"daddr", FormatAddress(d.daddr, d.ipv6)},
          {"dport", std::to_string(d.dport)}};
}

LabelMap OtherDestination() {
  return {{"netns", kOther}, {"daddr", kOther}, {"dport", kOther}};
}

// The `max_kept` largest entries of `values` by count (ties by key); the
// rest are returned in `*folded`.
template <typename Map>
std::vector<typename Map::key_type> TopKeys(
    const Map& values, size_t max_kept,
    std::vector<typename Map::key_type>* folded) {
  std::vector<std::pair<uint64_t, typename Map::key_type>> order;
  order.reserve(values.size());
  for (const auto& [key, count] : values) order.emplace_back(count, key);
  const size_t kept = std::min(max_kept, order.size());
  std::partial_sort(order.begin(),
                    order.begin() + static_cast<std::ptrdiff_t>(kept),
                    order.end(), [&values](const auto& a, const auto& b) {
                      if (a.first != b.first) return a.first > b.first;
                      return values.key_comp()(a.second, b.second);
                    });
  std::vector<typename Map::key_type> out;
  for (size_t i = 0; i < order.size(); ++i) {
    (i < kept ? out : *folded).push_back(order[i].second);
  }
  return out;
}

// The families built here, declared once (metric_family.h).
const FamilySpec kConnectFailuresTotal = {
    "tcpstated_connect_failures_total",
    "Outbound connection attempts that ended in SYN_SENT -> CLOSE, per "
    "destination and reason: refused (a reset answered the SYN: nothing "
    "listens there), timed_out (no SYN-ACK within the SYN retries), "
    "unreachable (ICMP host or network unreachable), aborted (the "
    "application closed the socket while connecting, e.g. its own "
    "connect timeout), no_local_port (no ephemeral port was free), error "
    "(another errno). The largest series are kept, the rest summed under "
    "\"other\".",
    MetricType::Counter};
const FamilySpec kConnectDurationSeconds = {
    "tcpstated_connect_duration_seconds",
    "Time from connect() (SYN_SENT) to ESTABLISHED per destination: one "
    "round trip when all goes well, a second or more when a SYN was "
    "lost and retransmitted.",
    MetricType::Histogram};
const FamilySpec kConnectFailingActive = {
    "tcpstated_connect_failing_active",
    "1 while connects to the destination fail faster than "
    "detectors.connect_failure_rate per second, else 0; per destination "
    "with failures (the largest kept, the rest under \"other\").",
    MetricType::Gauge};
const FamilySpec kResetsTotal = {
    "tcpstated_resets_total",
    "Connections ended by a reset, by direction (received: the peer "
    "reset it, \"connection reset by peer\"; sent: this host aborted "
    "it: SO_LINGER 0, close() with unread data, or an answer to an "
    "unexpected segment), by the state it was in, and by role and port "
    "(server: the local listening port; client: the remote port). The "
    "largest series are kept, the rest summed under \"other\".",
    MetricType::Counter};
const FamilySpec kResetsActive = {
    "tcpstated_resets_active",
    "1 while connections of the port (server: the local listening port; "
    "client: the remote port) are reset faster than "
    "detectors.reset_rate per second, sent and received together, else "
    "0; per port with resets (the largest kept, the rest under "
    "\"other\").",
    MetricType::Gauge};

const FamilySpec kResetsNoSocketTotal = {
    "tcpstated_resets_no_socket_total",
    "Resets this host sent for segments that reached no socket, per local "
    "port: connects to a port nothing listens on, a port scan, a peer "
    "still sending on a connection this host has forgotten. nstat's "
    "TcpOutRsts counts these together with the resets of "
    "tcpstated_resets_total. Only kernels 6.10 and later report them (the "
    "tcp_send_reset tracepoint fires without a socket since 6.10); older "
    "kernels leave this family empty. The largest series are kept, the "
    "rest summed under \"other\".",
    MetricType::Counter};

Labels ToLabels(const LabelMap& labels) {
  Labels out;
  out.reserve(labels.size());
  for (const auto& [name, value] : labels) out.push_back({name, value});
  return out;
}

void AddCounter(MetricFamily& f, const LabelMap& labels, double value) {
  AddSample(f, ToLabels(labels), value);
}

void AddGauge(MetricFamily& f, const LabelMap& labels, double value) {
  AddSample(f, ToLabels(labels), value);
}

void AddHistogram(MetricFamily& f, const LabelMap& labels,
                  const ConnectTally& t) {
  ClientMetric& m = AddMetric(f, ToLabels(labels));
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kConnectBuckets.size(); ++i) {
    cumulative += t.buckets[i];
    m.histogram.bucket.push_back({cumulative, kConnectBuckets[i]});
  }
  cumulative += t.buckets[kConnectBuckets.size()];
  m.histogram.bucket.push_back(
      {cumulative, std::numeric_limits<double>::infinity()});
  m.histogram.sample_count = t.established;
  m.histogram.sample_sum = t.latency_sum;
}

std::string FailureText(const ConnectTally& t) {
  std::string out;
  for (size_t i = 0; i < kConnectFailureCount; ++i) {
    if (t.failures[i] == 0) continue;
    if (!out.empty()) out += ", ";
    out += std::string(ConnectFailureName(static_cast<ConnectFailure>(i))) +
           " " + std::to_string(t.failures[i]);
  }
  return out;
}

std::string ResetText(const ResetTally& t) {
  uint64_t received = 0;
  uint64_t sent = 0;
  for (size_t i = 0; i < kStateSlots; ++i) {
    received += t.counts[i];
    sent += t.counts[kStateSlots + i];
  }
  return std::to_string(received) + " received, " + std::to_string(sent) +
         " sent";
}

// One series per direction and state with resets, under `base` labels.
void AddResetSeries(MetricFamily& f, const LabelMap& base,
                    const ResetTally& t) {
  for (int sent = 0; sent < 2; ++sent) {
    for (TcpState state : kReportedStates) {
      const uint64_t n = t.counts[ResetTally::Slot(sent != 0, state)];
      if (n == 0) continue;
      LabelMap labels = base;
      labels["direction"] = sent ? "sent" : "received";
      labels["state"] = std::string(StateName(state));
      AddCounter(f, std::move(labels), D(n));
    }
  }
}

std::string Rate(double per_second) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.2f/s", per_second);
  return buf;
}

// The rate of a monotonic total since the previous evaluation; a key that
// is new since then started from 0, one that went back (folded and made
// again) has no rate.
template <typename Map>
double RateOf(const Map& previous, const typename Map::key_type& key,
              uint64_t total, double elapsed) {
  auto it = previous.find(key);
  const uint64_t before = it == previous.end() ? 0 : it->second;
  if (elapsed <= 0 || total < before) return 0;
  return D(total - before) / elapsed;
}

}  // namespace

ConnectionOutcomes::ConnectionOutcomes(size_t max_series_per_metric)
    : connects_(BookKeys(max_series_per_metric)),
      resets_(BookKeys(max_series_per_metric)) {}

void ConnectionOutcomes::BeforeApply(const Event& e, const SocketEntry* before,
                                     bool local_port_listens) {
  try {
    connects_.Observe(e, before);
    resets_.Observe(e, before, local_port_listens);
  } catch (...) {  // std::bad_alloc: this event is not counted
  }
}

void ConnectionOutcomes::NamespaceGone(uint32_t netns) {
  connects_.DropNamespace(netns);
  resets_.DropNamespace(netns);
}

namespace {

// What the detections remember from one rate evaluation to the next.
struct History {
  bool have_previous = false;
  double previous_seconds = 0;
  std::map<ConnectDestination, uint64_t, DestinationLess> failed;
  std::map<PortKey, uint64_t> resets;
  std::set<ConnectDestination, DestinationLess> failing;
  std::set<PortKey> resetting;
};

// This evaluation's totals, read from the books once: the families and the
// detections are built from the same numbers.
struct Totals {
  std::map<ConnectDestination, const ConnectTally*, DestinationLess> tallies;
  std::map<ConnectDestination, uint64_t, DestinationLess> failed;
  std::map<PortKey, const ResetTally*> reset_tallies;
  std::map<PortKey, uint64_t> port_resets;
};

Totals ReadTotals(const ConnectBook& connects, const ResetBook& resets) {
  Totals now;
  connects.book().ForEach(
      [&](const ConnectDestination& key, const ConnectTally& t) {
        now.tallies.emplace(key, &t);
        if (t.failed() > 0) now.failed.emplace(key, t.failed());
      });
  resets.book().ForEach([&](const ResetKey& k, const ResetTally& t) {
    PortKey p{k.netns, k.role, k.port};
    now.reset_tallies.emplace(p, &t);
    now.port_resets.emplace(p, t.total());
  });
  return now;
}

// The destinations failing now; a line in `report` for each that started
// or cleared since the previous evaluation, `elapsed` seconds ago.
std::set<ConnectDestination, DestinationLess> DetectConnectFailures(
    const History& h, Totals& now, double elapsed, double threshold,
    OutcomeReport& report) {
  std::set<ConnectDestination, DestinationLess> failing;
  for (const auto& [key, total] : now.failed) {
    const double rate = RateOf(h.failed, key, total, elapsed);
    const bool was = h.failing.count(key) > 0;
    if (h.have_previous && rate >= threshold && rate > 0) {
      failing.insert(key);
      if (!was) {
        report.started.push_back(
            "connect failures started: netns=" + std::to_string(key.netns) +
            " to " + Endpoint(key) + " at " + Rate(rate) +
            " (threshold detectors.connect_failure_rate=" + Rate(threshold) +
            "; so far " + FailureText(*now.tallies[key]) + ")");
      }
    } else if (was) {
      report.cleared.push_back(
          "connect failures cleared: netns=" + std::to_string(key.netns) +
          " to " + Endpoint(key) + " now at " + Rate(rate));
    }
  }
  for (const ConnectDestination& key : h.failing) {
    if (now.failed.count(key) == 0) {
      report.cleared.push_back(
          "connect failures cleared: netns=" + std::to_string(key.netns) +
          " to " + Endpoint(key) + " (no longer tallied)");
    }
  }
  return failing;
}

// The ports resetting now; a line in `report` for each that started or
// cleared since the previous evaluation, `elapsed` seconds ago.
std::set<PortKey> DetectResets(const History& h, Totals& now, double elapsed,
                               double threshold, OutcomeReport& report) {
  std::set<PortKey> resetting;
  for (const auto& [key, total] : now.port_resets) {
    const double rate = RateOf(h.resets, key, total, elapsed);
    const bool was = h.resetting.count(key) > 0;
    const std::string name = "netns=" + std::to_string(key.netns) + " " +
                             std::string(RoleName(key.role)) + " port " +
                             std::to_string(key.port);
    if (h.have_previous && rate >= threshold && rate > 0) {
      resetting.insert(key);
      if (!was) {
        report.started.push_back(
            "connection resets started: " + name + " at " + Rate(rate) +
            " (threshold detectors.reset_rate=" + Rate(threshold) +
            "; so far " + ResetText(*now.reset_tallies[key]) + ")");
      }
    } else if (was) {
      report.cleared.push_back("connection resets cleared: " + name +
                               " now at " + Rate(rate));
    }
  }
  return resetting;
}

// Rates since the previous evaluation, the detections they start and
// clear, and `h` moved on to this evaluation.
void UpdateDetections(History& h, Totals& now, double now_seconds,
                      const OutcomeConfig& config, OutcomeReport& report) {
  const double elapsed = h.have_previous ? now_seconds - h.previous_seconds : 0;
  std::set<ConnectDestination, DestinationLess> failing = DetectConnectFailures(
      h, now, elapsed, config.connect_failure_rate, report);
  std::set<PortKey> resetting =
      DetectResets(h, now, elapsed, config.reset_rate, report);
  h.have_previous = true;
  h.previous_seconds = now_seconds;
  // Copies: the families are built from this round's totals too.
  h.failed = now.failed;
  h.resets = now.port_resets;
  h.failing = std::move(failing);
  h.resetting = std::move(resetting);
}

// Failures: one series per (destination, reason) seen, the largest
// kept; the rest summed per reason under "other".
MetricFamily ConnectFailuresFamily(const Totals& now,
                                   const ConnectBook& connects,
                                   size_t max_series) {
  MetricFamily failures = NewFamily(kConnectFailuresTotal);
  std::map<FailureSeries, uint64_t, FailureSeriesLess> series;
  for (const auto& [key, t] : now.tallies) {
    for (size_t i = 0; i < kConnectFailureCount; ++i) {
      if (t->failures[i] > 0) series[{key, i}] = t->failures[i];
    }
  }
  std::vector<FailureSeries> folded;
  auto kept = TopKeys(series, max_series, &folded);
  std::sort(kept.begin(), kept.end(), series.key_comp());
  for (const auto& k : kept) {
    LabelMap labels = DestinationLabels(k.first);
    labels["reason"] =
        std::string(ConnectFailureName(static_cast<ConnectFailure>(k.second)));
    AddCounter(failures, std::move(labels), D(series[k]));
  }
  std::array<uint64_t, kConnectFailureCount> other =
      connects.book().other().failures;
  for (const auto& k : folded) other[k.second] += series[k];
  for (size_t i = 0; i < kConnectFailureCount; ++i) {
    if (other[i] == 0) continue;
    LabelMap labels = OtherDestination();
    labels["reason"] =
        std::string(ConnectFailureName(static_cast<ConnectFailure>(i)));
    AddCounter(failures, std::move(labels), D(other[i]));
  }
  return failures;
}

// Handshake times: the destinations with the most connections kept.
MetricFamily ConnectDurationFamily(Totals& now, const ConnectBook& connects,
                                   size_t max_series) {
  MetricFamily latency = NewFamily(kConnectDurationSeconds);
  std::map<ConnectDestination, uint64_t, DestinationLess> established;
  for (const auto& [key, t] : now.tallies) {
    if (t->established > 0) established[key] = t->established;
  }
  std::vector<ConnectDestination> folded;
  auto kept = TopKeys(established, max_series, &folded);
  std::sort(kept.begin(), kept.end(), DestinationLess());
  for (const auto& key : kept) {
    AddHistogram(latency, DestinationLabels(key), *now.tallies[key]);
  }
  ConnectTally other;
  other.buckets = connects.book().other().buckets;
  other.latency_sum = connects.book().other().latency_sum;
  other.established = connects.book().other().established;
  for (const auto& key : folded) other.Add(*now.tallies[key]);
  if (other.established > 0) {
    AddHistogram(latency, OtherDestination(), other);
  }
  return latency;
}

// The connect failure detection, per destination with failures.
MetricFamily ConnectFailingFamily(const History& h, size_t max_series) {
  MetricFamily failing = NewFamily(kConnectFailingActive);
  std::vector<ConnectDestination> folded;
  auto kept = TopKeys(h.failed, max_series, &folded);
  std::sort(kept.begin(), kept.end(), DestinationLess());
  for (const auto& key : kept) {
    AddGauge(failing, DestinationLabels(key), h.failing.count(key) ? 1 : 0);
  }
  if (!folded.empty()) {
    bool any = false;
    for (const auto& key : folded) any = any || h.failing.count(key) > 0;
    AddGauge(failing, OtherDestination(), any ? 1 : 0);
  }
  return failing;
}

// The ports with the most resets keep their own series; the rest are
// summed per direction and state under "other".
MetricFamily ResetsFamily(Totals& now, const ResetBook& resets,
                          size_t max_series) {
  MetricFamily reset_family = NewFamily(kResetsTotal);
  std::vector<PortKey> folded;
  auto kept = TopKeys(now.port_resets, max_series, &folded);
  std::sort(kept.begin(), kept.end());
  for (const PortKey& k : kept) {
    AddResetSeries(reset_family,
                   {{"netns", std::to_string(k.netns)},
                    {"role", std::string(RoleName(k.role))},
                    {"port", std::to_string(k.port)}},
                   *now.reset_tallies[k]);
  }
  ResetTally other = resets.book().other();
  for (const PortKey& k : folded) other.Add(*now.reset_tallies[k]);
  AddResetSeries(reset_family,
                 {{"netns", kOther}, {"role", kOther}, {"port", kOther}},
                 other);
  return reset_family;
}

MetricFamily ResetsNoSocketFamily(const ResetBook& resets, size_t max_series) {
  MetricFamily no_socket = NewFamily(kResetsNoSocketTotal);
  using NoSocketPort = std::pair<uint32_t, uint16_t>;  // netns, port
  std::map<NoSocketPort, uint64_t> counts;
  resets.no_socket().ForEach([&](const NoSocketKey& k, const NoSocketTally& t) {
    counts[{k.netns, k.port}] = t.resets;
  });
  std::vector<NoSocketPort> folded;
  auto kept = TopKeys(counts, max_series, &folded);
  std::sort(kept.begin(), kept.end());
  for (const NoSocketPort& k : kept) {
    AddCounter(no_socket,
               {{"netns", std::to_string(k.first)},
                {"port", std::to_string(k.second)}},
               D(counts[k]));
  }
  uint64_t other = resets.no_socket().other().resets;
  for (const NoSocketPort& k : folded) other += counts[k];
  if (other > 0) {
    AddCounter(no_socket, {{"netns", kOther}, {"port", kOther}}, D(other));
  }
  return no_socket;
}

// The reset detection, per port with resets.
MetricFamily ResetsActiveFamily(const History& h, size_t max_series) {
  MetricFamily resetting = NewFamily(kResetsActive);
  std::vector<PortKey> folded;
  auto kept = TopKeys(h.resets, max_series, &folded);
  std::sort(kept.begin(), kept.end());
  for (const PortKey& k : kept) {
    AddGauge(resetting,
             {{"netns", std::to_string(k.netns)},
              {"role", std::string(RoleName(k.role))},
              {"port", std::to_string(k.port)}},
             h.resetting.count(k) ? 1 : 0);
  }
  if (!folded.empty()) {
    bool any = false;
    for (const PortKey& k : folded) any = any || h.resetting.count(k) > 0;
    AddGauge(resetting, {{"netns", kOther}, {"role", kOther}, {"port", kOther}},
             any ? 1 : 0);
  }
  return resetting;
}

}  // namespace

struct OutcomeDetectors::State : History {};

OutcomeDetectors::OutcomeDetectors(OutcomeConfig config)
    : config_(config), state_(std::make_unique<State>()) {}

OutcomeDetectors::~OutcomeDetectors() = default;

OutcomeReport OutcomeDetectors::Evaluate(const ConnectBook& connects,
                                         const ResetBook& resets,
                                         double now_seconds) {
  OutcomeReport report;
  try {
    State& s = *state_;
    Totals now = ReadTotals(connects, resets);
    if (!s.have_previous ||
        now_seconds - s.previous_seconds >= kMinIntervalSeconds) {
      UpdateDetections(s, now, now_seconds, config_, report);
    }
    const size_t max_series = config_.max_series_per_metric;
    report.families.push_back(ConnectFailuresFamily(now, connects, max_series));
    report.families.push_back(ConnectDurationFamily(now, connects, max_series));
    report.families.push_back(ConnectFailingFamily(s, max_series));
    report.families.push_back(ResetsFamily(now, resets, max_series));
    report.families.push_back(ResetsNoSocketFamily(resets, max_series));
    report.families.push_back(ResetsActiveFamily(s, max_series));
  } catch (...) {  // std::bad_alloc only
    return OutcomeReport{};
  }
  return report;
}

}  // namespace tcpstated
