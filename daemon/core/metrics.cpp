#include "tcpstated/metrics.h"

#include <algorithm>
#include <limits>

#include "tcpstated/metric_family.h"
#include "tcpstated/transition_table.h"

namespace tcpstated {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// ---- The families, in exposition order ----------------------------------

constexpr FamilySpec kSockets{
    "tcpstated_sockets",
    "TCP sockets per network namespace and state, as mirrored by tcpstated "
    "(time_wait inferred, new_syn_recv from the kernel's dump).",
    MetricType::Gauge};
constexpr FamilySpec kTransitions{
    "tcpstated_transitions_total",
    "TCP state transitions reported by the kernel, counted in the kernel "
    "(exact when the ring buffer overflows; runs the kernel skipped are in "
    "tcpstated_events_missed_total).",
    MetricType::Counter};
constexpr FamilySpec kInvalid{
    "tcpstated_invalid_transitions_total",
    "TCP state transitions outside Linux's legal transition table (the "
    "mirror followed the kernel).",
    MetricType::Counter};
constexpr FamilySpec kDurations{
    "tcpstated_state_duration_seconds",
    "Time sockets spent in a TCP state, observed when they leave it (sockets "
    "adopted mid-state are not observed).",
    MetricType::Histogram};
constexpr FamilySpec kEvents{
    "tcpstated_events_total",
    "Kernel events received and applied by the daemon, per tracepoint.",
    MetricType::Counter};
constexpr FamilySpec kLost{
    "tcpstated_events_lost_total",
    "Kernel events dropped because the ring buffer was full, per tracepoint "
    "(counted in the kernel).",
    MetricType::Counter};
constexpr FamilySpec kMissed{
    "tcpstated_events_missed_total",
    "Kernel events never produced because the kernel skipped a run of "
    "tcpstated's BPF program for that tracepoint (its recursion guard: "
    "another BPF tracing program was running on that CPU), per tracepoint. "
    "They are missing from tcpstated_transitions_total too; the next "
    "reconcile repairs the mirror.",
    MetricType::Counter};
constexpr FamilySpec kDecodeErrors{
    "tcpstated_event_decode_errors_total",
    "Ring-buffer records that failed to decode and were dropped.",
    MetricType::Counter};
constexpr FamilySpec kUnmerged{
    "tcpstated_events_unmerged_total",
    "Kernel events applied before the merge of the per-CPU rings could order "
    "them (the held events reached their bound within one drain): their "
    "sockets' order is not guaranteed; the next reconcile repairs the mirror.",
    MetricType::Counter};
constexpr FamilySpec kTracked{
    "tcpstated_tracked_sockets",
    "Sockets in the mirror's table (TIME_WAIT included).", MetricType::Gauge};
constexpr FamilySpec kLimit{
    "tcpstated_tracked_sockets_limit",
    "Bound of the mirror's table (tracking.max_tracked_sockets).",
    MetricType::Gauge};
constexpr FamilySpec kEvictions{"tcpstated_evictions_total",
                                "Sockets evicted from the full mirror table.",
                                MetricType::Counter};
constexpr FamilySpec kResyncs{
    "tcpstated_mirror_resyncs_total",
    "Events whose old state disagreed with the mirror (a lost event or a "
    "socket older than the daemon); the mirror took the kernel's state.",
    MetricType::Counter};
constexpr FamilySpec kBuildInfo{
    "tcpstated_build_info",
    "tcpstated version and the BPF attach mode in use; always 1.",
    MetricType::Gauge};
// Which fleets run which kernel in which mode: the attach mode decides what
// identity the events carry, the release which kernel facts apply.
constexpr FamilySpec kKernelInfo{
    "tcpstated_kernel_info",
    "Release of the running kernel (uname -r) and the BPF attach mode in "
    "use; always 1.",
    MetricType::Gauge};

std::string Str(std::string_view s) { return std::string(s); }
double D(uint64_t v) { return static_cast<double>(v); }

// A family with one unlabelled sample.
MetricFamily Scalar(const FamilySpec& spec, double value) {
  MetricFamily f = NewFamily(spec);
  AddSample(f, {}, value);
  return f;
}

MetricFamily Sockets(const Snapshot& s) {
  MetricFamily f = NewFamily(kSockets);
  for (const auto& [netns, counts] : s.sockets) {
    std::string ns = std::to_string(netns);
    for (TcpState state : kReportedStates) {
      AddSample(
          f, {{"netns", ns}, {"state", Str(StateName(state))}},
          static_cast<double>(std::max<int64_t>(0, counts[StateIndex(state)])));
    }
  }
  return f;
}

// The transitions of `matrix`, from-major; `always` lists the ones present
// even at zero.
MetricFamily Transitions(
    const FamilySpec& spec, const TransitionMatrix& matrix,
    const std::array<std::array<bool, kStateSlots>, kStateSlots>& always) {
  MetricFamily f = NewFamily(spec);
  for (size_t from = 1; from < kStateSlots; ++from) {
    for (size_t to = 1; to < kStateSlots; ++to) {
      uint64_t n = matrix[from][to];
      if (!always[from][to] && n == 0) continue;
      AddSample(f,
                {{"from", Str(StateName(static_cast<TcpState>(from)))},
                 {"to", Str(StateName(static_cast<TcpState>(to)))}},
                D(n));
    }
  }
  return f;
}

MetricFamily Durations(const Snapshot& s) {
  MetricFamily f = NewFamily(kDurations);
  for (TcpState state : kReportedStates) {
    const DurationHistogram& h = s.durations[StateIndex(state)];
    ClientMetric& m = AddMetric(f, {{"state", Str(StateName(state))}});
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
  return f;
}

// A per-tracepoint counter family.
MetricFamily PerSource(const FamilySpec& spec,
                       const std::array<uint64_t, kSourceCount>& values) {
  MetricFamily f = NewFamily(spec);
  for (size_t i = 0; i < kSourceCount; ++i) {
    AddSample(f, {{"source", Str(SourceName(static_cast<Source>(i)))}},
              D(values[i]));
  }
  return f;
}

MetricFamily Info(const FamilySpec& spec, Labels labels) {
  MetricFamily f = NewFamily(spec);
  AddSample(f, std::move(labels), 1);
  return f;
}

}  // namespace

std::vector<MetricFamily> BuildMetrics(const Snapshot& s) {
  // Every legal transition is always present so that rate() and increase()
  // see the first occurrence; anything else the kernel counted is added.
  std::array<std::array<bool, kStateSlots>, kStateSlots> legal{};
  for (const auto& [from, to] : LegalTransitions()) {
    legal[StateIndex(from)][StateIndex(to)] = true;
  }
  std::vector<MetricFamily> out;
  out.push_back(Sockets(s));
  out.push_back(Transitions(kTransitions, s.kernel.transitions, legal));
  out.push_back(Transitions(kInvalid, s.invalid, {}));
  out.push_back(Durations(s));
  out.push_back(PerSource(kEvents, s.mirror.events));
  out.push_back(PerSource(kLost, s.kernel.lost));
  out.push_back(PerSource(kMissed, s.kernel.missed));
  out.push_back(Scalar(kDecodeErrors, D(s.decode_errors)));
  out.push_back(Scalar(kUnmerged, D(s.unmerged_events)));
  out.push_back(Scalar(kTracked, D(s.mirror.tracked)));
  out.push_back(Scalar(kLimit, D(s.mirror.limit)));
  out.push_back(Scalar(kEvictions, D(s.mirror.evictions)));
  out.push_back(Scalar(kResyncs, D(s.mirror.resyncs)));
  out.push_back(
      Info(kBuildInfo, {{"version", s.version}, {"attach", s.attach}}));
  out.push_back(
      Info(kKernelInfo, {{"release", s.kernel_release}, {"attach", s.attach}}));
  return out;
}

}  // namespace tcpstated
