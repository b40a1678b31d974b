#include "tcpstated/metrics.h"

#include <algorithm>
#include <limits>

#include "tcpstated/transition_table.h"

namespace tcpstated {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily Family(const char* name, const char* help, MetricType type) {
  MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

ClientMetric& Add(MetricFamily& f, std::vector<ClientMetric::Label> labels) {
  f.metric.emplace_back();
  f.metric.back().label = std::move(labels);
  return f.metric.back();
}

void AddGauge(MetricFamily& f, std::vector<ClientMetric::Label> labels,
              double value) {
  Add(f, std::move(labels)).gauge.value = value;
}

void AddCounter(MetricFamily& f, std::vector<ClientMetric::Label> labels,
                double value) {
  Add(f, std::move(labels)).counter.value = value;
}

std::string Str(std::string_view s) { return std::string(s); }

}  // namespace

std::vector<MetricFamily> BuildMetrics(const Snapshot& s) {
  std::vector<MetricFamily> out;

  auto sockets = Family("tcpstated_sockets",
                        "TCP sockets per network namespace and state, as "
                        "mirrored by tcpstated (time_wait inferred, "
                        "new_syn_recv from the kernel's dump).",
                        MetricType::Gauge);
  for (const auto& [netns, counts] : s.sockets) {
    std::string ns = std::to_string(netns);
    for (TcpState state : kReportedStates) {
      AddGauge(
          sockets, {{"netns", ns}, {"state", Str(StateName(state))}},
          static_cast<double>(std::max<int64_t>(0, counts[StateIndex(state)])));
    }
  }
  out.push_back(std::move(sockets));

  // Every legal transition is always present so that rate() and increase()
  // see the first occurrence; anything else the kernel counted is added.
  auto transitions =
      Family("tcpstated_transitions_total",
             "TCP state transitions reported by the kernel, counted in the "
             "kernel (exact when the ring buffer overflows; runs the kernel "
             "skipped are in tcpstated_events_missed_total).",
             MetricType::Counter);
  std::array<std::array<bool, kStateSlots>, kStateSlots> listed{};
  for (const auto& [from, to] : LegalTransitions()) {
    listed[StateIndex(from)][StateIndex(to)] = true;
  }
  for (size_t from = 1; from < kStateSlots; ++from) {
    for (size_t to = 1; to < kStateSlots; ++to) {
      uint64_t n = s.kernel.transitions[from][to];
      if (!listed[from][to] && n == 0) continue;
      AddCounter(transitions,
                 {{"from", Str(StateName(static_cast<TcpState>(from)))},
                  {"to", Str(StateName(static_cast<TcpState>(to)))}},
                 static_cast<double>(n));
    }
  }
  out.push_back(std::move(transitions));

  auto invalid = Family(
      "tcpstated_invalid_transitions_total",
      "TCP state transitions outside Linux's legal transition table (the "
      "mirror followed the kernel).",
      MetricType::Counter);
  for (size_t from = 1; from < kStateSlots; ++from) {
    for (size_t to = 1; to < kStateSlots; ++to) {
      if (s.invalid[from][to] == 0) continue;
      AddCounter(invalid,
                 {{"from", Str(StateName(static_cast<TcpState>(from)))},
                  {"to", Str(StateName(static_cast<TcpState>(to)))}},
                 static_cast<double>(s.invalid[from][to]));
    }
  }
  out.push_back(std::move(invalid));

  auto durations =
      Family("tcpstated_state_duration_seconds",
             "Time sockets spent in a TCP state, observed when they leave "
             "it (sockets adopted mid-state are not observed).",
             MetricType::Histogram);
  for (TcpState state : kReportedStates) {
    const DurationHistogram& h = s.durations[StateIndex(state)];
    ClientMetric& m = Add(durations, {{"state", Str(StateName(state))}});
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kDurationBuckets.size(); ++i) {
      cumulative += h.counts[i];
      m.histogram.bucket.push_back({cumulative, kDurationBuckets[i]});
    }
    cumulative += h.counts[kDurationBuckets.size()];
    m.histogram.bucket.push_back(
        {cumulative, std::numeric_limits<double>::infinity()});
    m.histogram.sample_count = h.count;
    m.histogram.sample_sum = h.sum;
  }
  out.push_back(std::move(durations));

  auto events = Family("tcpstated_events_total",
                       "Kernel events received and applied by the daemon, "
                       "per tracepoint.",
                       MetricType::Counter);
  auto lost = Family("tcpstated_events_lost_total",
                     "Kernel events dropped because the ring buffer was "
                     "full, per tracepoint (counted in the kernel).",
                     MetricType::Counter);
  auto missed = Family(
      "tcpstated_events_missed_total",
      "Kernel events never produced because the kernel skipped a run of "
      "tcpstated's BPF program for that tracepoint (its recursion guard: "
      "another BPF tracing program was running on that CPU), per "
      "tracepoint. They are missing from tcpstated_transitions_total too; "
      "the next reconcile repairs the mirror.",
      MetricType::Counter);
  for (size_t i = 0; i < kSourceCount; ++i) {
    std::string source = Str(SourceName(static_cast<Source>(i)));
    AddCounter(events, {{"source", source}},
               static_cast<double>(s.mirror.events[i]));
    AddCounter(lost, {{"source", source}},
               static_cast<double>(s.kernel.lost[i]));
    AddCounter(missed, {{"source", source}},
               static_cast<double>(s.kernel.missed[i]));
  }
  out.push_back(std::move(events));
  out.push_back(std::move(lost));
  out.push_back(std::move(missed));

  auto decode = Family("tcpstated_event_decode_errors_total",
                       "Ring-buffer records that failed to decode and were "
                       "dropped.",
                       MetricType::Counter);
  AddCounter(decode, {}, static_cast<double>(s.decode_errors));
  out.push_back(std::move(decode));

  auto tracked = Family("tcpstated_tracked_sockets",
                        "Sockets in the mirror's table (TIME_WAIT included).",
                        MetricType::Gauge);
  AddGauge(tracked, {}, static_cast<double>(s.mirror.tracked));
  out.push_back(std::move(tracked));

  auto limit = Family("tcpstated_tracked_sockets_limit",
                      "Bound of the mirror's table "
                      "(tracking.max_tracked_sockets).",
                      MetricType::Gauge);
  AddGauge(limit, {}, static_cast<double>(s.mirror.limit));
  out.push_back(std::move(limit));

  auto evictions = Family("tcpstated_evictions_total",
                          "Sockets evicted from the full mirror table.",
                          MetricType::Counter);
  AddCounter(evictions, {}, static_cast<double>(s.mirror.evictions));
  out.push_back(std::move(evictions));

  auto resyncs = Family(
      "tcpstated_mirror_resyncs_total",
      "Events whose old state disagreed with the mirror (a lost event or a "
      "socket older than the daemon); the mirror took the kernel's state.",
      MetricType::Counter);
  AddCounter(resyncs, {}, static_cast<double>(s.mirror.resyncs));
  out.push_back(std::move(resyncs));

  auto build = Family("tcpstated_build_info",
                      "tcpstated version and the BPF attach mode in use; "
                      "always 1.",
                      MetricType::Gauge);
  AddGauge(build, {{"version", s.version}, {"attach", s.attach}}, 1);
  out.push_back(std::move(build));

  // Which fleets run which kernel in which mode: the attach mode decides
  // what identity the events carry, the release which kernel facts apply.
  auto kernel = Family("tcpstated_kernel_info",
                       "Release of the running kernel (uname -r) and the BPF "
                       "attach mode in use; always 1.",
                       MetricType::Gauge);
  AddGauge(kernel, {{"release", s.kernel_release}, {"attach", s.attach}}, 1);
  out.push_back(std::move(kernel));

  return out;
}

}  // namespace tcpstated
