#include "tcpstated/metric_family.h"

#include <utility>

namespace tcpstated {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily NewFamily(const FamilySpec& spec) {
  MetricFamily f;
  f.name = spec.name;
  f.help = spec.help;
  f.type = spec.type;
  return f;
}

ClientMetric& AddMetric(MetricFamily& family, Labels labels) {
  family.metric.emplace_back();
  family.metric.back().label = std::move(labels);
  return family.metric.back();
}

void AddSample(MetricFamily& family, Labels labels, double value) {
  ClientMetric& m = AddMetric(family, std::move(labels));
  if (family.type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
}

MetricFamily BuildFamily(const FamilySpec& spec,
                         const std::vector<Series>& series) {
  MetricFamily f = NewFamily(spec);
  f.metric.reserve(series.size());
  for (const Series& s : series) {
    Labels labels;
    labels.reserve(s.labels.size());
    for (const auto& [k, v] : s.labels) labels.push_back({k, v});
    AddSample(f, std::move(labels), s.value);
  }
  return f;
}

}  // namespace tcpstated
