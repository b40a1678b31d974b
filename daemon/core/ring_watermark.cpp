#include "tcpstated/ring_watermark.h"

#include <algorithm>

namespace tcpstated {
namespace {

// A ring blocked for this many turns keeps the watermark where it was; the
// bound only limits memory (an observation dropped unmatched is one the
// watermark never moves to, which is safe).
constexpr size_t kMaxObservations = 64;

}  // namespace

RingWatermark::RingWatermark(size_t rings)
    : pending_(std::max<size_t>(rings, 1)),
      safe_ns_(std::max<size_t>(rings, 1), 0) {}

void RingWatermark::Observe(size_t ring, uint64_t now_ns,
                            uint64_t producer_pos) {
  auto& pending = pending_[ring];
  if (pending.size() >= kMaxObservations) pending.pop_front();
  pending.push_back({now_ns, producer_pos});
}

void RingWatermark::Drained(size_t ring, uint64_t consumer_pos) {
  auto& pending = pending_[ring];
  while (!pending.empty() && pending.front().producer_pos <= consumer_pos) {
    safe_ns_[ring] = pending.front().now_ns;
    pending.pop_front();
  }
}

uint64_t RingWatermark::watermark_ns() const {
  return *std::min_element(safe_ns_.begin(), safe_ns_.end());
}

}  // namespace tcpstated
