#include "tcpstated/detectors.h"

#include <cmath>
#include <memory>
#include <utility>

#include "daemon/core/detectors/detectors_internal.h"

namespace tcpstated {

using detectors_internal::History;
using detectors_internal::NamespaceMap;

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
    detectors_internal::EvaluateCloseWait(config_, inputs.close_wait,
                                          previous.close_wait_leak,
                                          &next.close_wait_leak, &report);
    detectors_internal::EvaluateListeners(config_, inputs, namespaces, previous,
                                          elapsed, &next, &report);
    detectors_internal::EvaluateDestinations(config_, inputs, namespaces,
                                             previous, &next, &report);
    detectors_internal::EvaluateNamespaces(config_, namespaces, previous, &next,
                                           &report);
    state_->history = std::move(next);
    return report;
  } catch (...) {
    return DetectionReport{};
  }
}

}  // namespace tcpstated
