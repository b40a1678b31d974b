// The one way tcpstated declares and builds a Prometheus metric family: a
// FamilySpec (name, help, type) declared once in a table beside the code
// that fills it, and samples added to the family it makes. Used by the
// mirror's metrics, the detectors and the kernel view alike, so every
// family is spelled the same way and its type decides which value is set.
//
// Thread-safety: pure functions. What throws: std::bad_alloc only.
#pragma once

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>

#include <map>
#include <string>
#include <vector>

namespace tcpstated {

struct FamilySpec {
  const char* name;
  const char* help;
  prometheus::MetricType type;
};

// A labelled value, ready for exposition (labels in name order).
struct Series {
  std::map<std::string, std::string> labels;
  double value = 0;
};

using Labels = std::vector<prometheus::ClientMetric::Label>;

// An empty family as `spec` declares it.
prometheus::MetricFamily NewFamily(const FamilySpec& spec);

// Adds a sample with `labels` and no value set (for histograms).
prometheus::ClientMetric& AddMetric(prometheus::MetricFamily& family,
                                    Labels labels);

// Adds a sample: its counter or its gauge, as the family's type says.
void AddSample(prometheus::MetricFamily& family, Labels labels, double value);

// A family with one sample per series, in the order given.
prometheus::MetricFamily BuildFamily(const FamilySpec& spec,
                                     const std::vector<Series>& series);

}  // namespace tcpstated
