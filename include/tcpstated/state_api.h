// /api/v1/state: the live page's data, a small versioned JSON document that
// scripts and terminal clients may use too (its fields are documented in the
// README; additions keep the version, changes bump it).
//
// Aggregates and owners only: socket counts per namespace and state, the
// kernel's transition counters, the active detections as the metrics report
// them, and tcpstated's own health. Never the 4-tuple of a socket.
//
// Bounded: at most kStateMaxNamespaces namespaces (the host first, then the
// most populated), kStateMaxRows rows per detection, labels cut to
// kStateMaxLabelBytes; the whole answer is under kStateJsonMaxBytes whatever
// the inputs (the unit tests build the worst case).
//
// Thread-safety: BuildStateJson is a pure function of its inputs. It never
// throws except std::bad_alloc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "tcpstated/detectors.h"
#include "tcpstated/metrics.h"

namespace tcpstated {

inline constexpr int kStateApiVersion = 1;
inline constexpr size_t kStateMaxNamespaces = 256;
inline constexpr size_t kStateMaxRows = 50;
inline constexpr size_t kStateMaxLabelBytes = 128;
inline constexpr size_t kStateJsonMaxBytes = 1024 * 1024;

struct StateInputs {
  Snapshot snapshot;       // what a scrape reports
  DetectionReport report;  // the latest detector evaluation
  uint64_t reconciles = 0;
  // Seconds since the last full reconcile ended; negative if none yet.
  double last_reconcile_age_seconds = -1;
  double last_reconcile_dump_seconds = 0;
  uint64_t sock_diag_errors = 0;
  // CLOCK_MONOTONIC: a client divides counter deltas by the delta of this.
  uint64_t now_ns = 0;
  // Whether /debug/sockets answers: the page links to it only then.
  bool debug_sockets = false;
  std::string telemetry_path = "/metrics";  // where the metrics are
};

std::string BuildStateJson(const StateInputs& inputs);

}  // namespace tcpstated
