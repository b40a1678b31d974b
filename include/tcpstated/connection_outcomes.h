// How connections end, beyond the state counts: failed connects per
// destination (connect_book.h) and resets per port (reset_book.h), fed by
// the mirror's observer seam; and their detections (one destination that
// keeps failing, one port that keeps resetting) with the metric families
// that expose them.
//
// Thread-safety: ConnectionOutcomes is fed under the mirror's lock and
// must be read (copied) under it too. OutcomeDetectors has one evaluating
// thread; BuildOutcomeMetrics is a pure function.
//
// What throws: constructors may throw std::bad_alloc; BeforeApply, Evaluate
// and BuildOutcomeMetrics never throw (out of memory: the event is not
// counted, the report is empty).
#pragma once

#include <prometheus/metric_family.h>

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tcpstated/connect_book.h"
#include "tcpstated/mirror_observer.h"
#include "tcpstated/reset_book.h"

namespace tcpstated {

struct OutcomeConfig {
  // Failed connects per second to one destination (any reason) that make
  // it "failing".
  double connect_failure_rate = 1;
  // Resets per second (sent and received) on one port that make it
  // "resetting".
  double reset_rate = 10;
  size_t max_series_per_metric = 50;
};

class ConnectionOutcomes final : public MirrorObserver {
 public:
  // Tallies at most ten times max_series_per_metric keys apart per book.
  explicit ConnectionOutcomes(size_t max_series_per_metric);

  void BeforeApply(const Event& e, const SocketEntry* before,
                   bool local_port_listens) override;
  void NamespaceGone(uint32_t netns) override;

  const ConnectBook& connects() const { return connects_; }
  const ResetBook& resets() const { return resets_; }

 private:
  ConnectBook connects_;
  ResetBook resets_;
};

struct OutcomeReport {
  std::vector<prometheus::MetricFamily> families;
  // One line per detection that started or cleared in this evaluation.
  std::vector<std::string> started;
  std::vector<std::string> cleared;
};

class OutcomeDetectors {
 public:
  explicit OutcomeDetectors(OutcomeConfig config);
  ~OutcomeDetectors();
  OutcomeDetectors(const OutcomeDetectors&) = delete;
  OutcomeDetectors& operator=(const OutcomeDetectors&) = delete;

  // Rates are per second between consecutive evaluations at least
  // `min_interval_seconds` apart (the first has none); in between, the
  // families are rebuilt with the detections as they stand. `now_seconds`
  // is monotonic.
  OutcomeReport Evaluate(const ConnectBook& connects, const ResetBook& resets,
                         double now_seconds);

  void set_config(OutcomeConfig config) { config_ = config; }

  static constexpr double kMinIntervalSeconds = 5;

 private:
  OutcomeConfig config_;
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace tcpstated
