// Exposition: turns a snapshot of the daemon's state into Prometheus metric
// families. Built at scrape time from aggregates the mirror maintains
// incrementally, so a scrape costs the same with ten sockets or a million.
//
// Thread-safety: BuildMetrics is a pure function of its snapshot.
#pragma once

#include <prometheus/metric_family.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tcpstated/event.h"
#include "tcpstated/mirror.h"

namespace tcpstated {

// Counters kept in the kernel (per-CPU arrays, summed).
struct KernelCounters {
  TransitionMatrix transitions{};             // counted before the ring
  std::array<uint64_t, kSourceCount> lost{};  // ring reserve failures
  // Program runs the kernel skipped (bpf_prog_info.recursion_misses): no
  // event, and no transition counted either.
  std::array<uint64_t, kSourceCount> missed{};
};

// What one scrape reports; copied out of the mirror under its lock.
struct Snapshot {
  std::vector<std::pair<uint32_t, StateCounts>> sockets;  // per netns
  TransitionMatrix invalid{};
  std::array<DurationHistogram, kStateSlots> durations{};
  MirrorStats mirror;
  KernelCounters kernel;
  uint64_t decode_errors = 0;
  uint64_t unmerged_events = 0;  // RingConsumer::unmerged_events
  std::string version;
  std::string attach;          // "tp_btf" or "tracepoint"
  std::string kernel_release;  // uname -r of the running kernel
};

std::vector<prometheus::MetricFamily> BuildMetrics(const Snapshot& snapshot);

}  // namespace tcpstated
