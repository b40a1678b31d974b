#include "tcpstated/drift_check.h"

#include <charconv>
#include <sstream>
#include <stdexcept>
#include <string_view>

namespace tcpstated {
namespace {

// The value after `name` on the line starting with `prefix` ("TCP:" or
// "TCP6:"); nullopt-like false when the line is absent.
bool FieldOf(const std::string& text, std::string_view prefix,
             std::string_view name, uint64_t* out) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string word;
    if (!(words >> word) || word != prefix) continue;
    std::string key, value;
    while (words >> key >> value) {
      if (key != name) continue;
      const char* end = value.data() + value.size();
      auto [ptr, ec] = std::from_chars(value.data(), end, *out);
      if (ec != std::errc() || ptr != end) {
        throw std::invalid_argument(std::string(prefix) + " " +
                                    std::string(name) + ": not a count: \"" +
                                    value + "\"");
      }
      return true;
    }
    throw std::invalid_argument(std::string(prefix) + " line without " +
                                std::string(name));
  }
  return false;
}

}  // namespace

SocketTotals ParseSockstat(const std::string& sockstat,
                           const std::string& sockstat6) {
  SocketTotals t;
  if (!FieldOf(sockstat, "TCP:", "inuse", &t.inuse) ||
      !FieldOf(sockstat, "TCP:", "tw", &t.timewait)) {
    throw std::invalid_argument("sockstat: no TCP line");
  }
  uint64_t inuse6 = 0;
  if (!sockstat6.empty() && !FieldOf(sockstat6, "TCP6:", "inuse", &inuse6)) {
    throw std::invalid_argument("sockstat6: no TCP6 line");
  }
  t.inuse += inuse6;
  return t;
}

SocketTotals MirrorTotals(const StateCounts& counts, uint64_t timewait) {
  int64_t entries = 0;
  for (size_t i = 0; i < kStateSlots; ++i) {
    // Request sockets are counted from dumps, and a closed socket is in no
    // hash: neither is in the kernel's inuse.
    if (i == StateIndex(TcpState::kNewSynRecv) ||
        i == StateIndex(TcpState::kClose)) {
      continue;
    }
    entries += counts[i];
  }
  SocketTotals t;
  t.timewait = timewait;
  // Every timewait entry is counted once in `counts` too (as TIME_WAIT, or
  // FIN_WAIT2 in that substate).
  const int64_t full = entries - static_cast<int64_t>(timewait);
  t.inuse = full > 0 ? static_cast<uint64_t>(full) : 0;
  return t;
}

uint64_t DriftBetween(const SocketTotals& kernel, const SocketTotals& mirror,
                      uint64_t timewait_expired) {
  auto apart = [](uint64_t a, uint64_t b) { return a > b ? a - b : b - a; };
  uint64_t timewait = apart(kernel.timewait, mirror.timewait);
  if (kernel.timewait > mirror.timewait) {
    timewait = timewait > timewait_expired ? timewait - timewait_expired : 0;
  }
  return apart(kernel.inuse, mirror.inuse) + timewait;
}

const char* ReasonName(ReconcileReason reason) {
  switch (reason) {
    case ReconcileReason::kStart:
      return "start";
    case ReconcileReason::kDrift:
      return "drift";
    case ReconcileReason::kLost:
      return "lost";
    case ReconcileReason::kSafety:
      return "safety";
  }
  return "unknown";
}

void DriftTracker::Observe(uint32_t netns, uint64_t drift, uint64_t allowance) {
  last_[netns] = drift;
  // An event moves each total by at most one (FIN_WAIT2 -> CLOSE into
  // TIME_WAIT moves both).
  if (drift > 2 * allowance) {
    streak_[netns]++;
  } else {
    streak_.erase(netns);
  }
}

std::set<uint32_t> DriftTracker::Drifting() const {
  std::set<uint32_t> out;
  for (const auto& [netns, n] : streak_) {
    if (n >= kConfirmChecks) out.insert(netns);
  }
  return out;
}

void DriftTracker::Reconciled(uint32_t netns) { streak_.erase(netns); }

void DriftTracker::Reset() { streak_.clear(); }

void DriftTracker::Forget(uint32_t netns) {
  streak_.erase(netns);
  last_.erase(netns);
}

bool DriftTracker::LostSince(uint64_t lost_total) {
  if (!have_lost_) {
    ReconciledAll(lost_total);
    return false;
  }
  return lost_total != lost_seen_;
}

}  // namespace tcpstated
