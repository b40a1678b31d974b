#include "tcpstated/ring_merge.h"

#include <algorithm>

namespace tcpstated {
namespace {

bool StampedBefore(const Event& a, const Event& b) { return a.ts_ns < b.ts_ns; }

}  // namespace

RingMerge::RingMerge(size_t rings) : incoming_(std::max<size_t>(rings, 1)) {}

size_t RingMerge::held() const {
  size_t n = held_.size();
  for (const auto& ring : incoming_) n += ring.size();
  return n;
}

void RingMerge::Release(uint64_t watermark_ns, std::vector<Event>* out) {
  // A ring is in stamp order unless CPUs share it or a program ran nested in
  // another's interrupt on one CPU: then its records are sorted (stably, so
  // that equal stamps keep the ring's order).
  for (auto& ring : incoming_) {
    if (!std::is_sorted(ring.begin(), ring.end(), StampedBefore)) {
      std::stable_sort(ring.begin(), ring.end(), StampedBefore);
    }
  }
  // A merge of the sorted sequences (the held ones first, then ring 0, 1,
  // ...): the first of the smallest stamps wins, which keeps ties in that
  // order. A handful of sequences, so a scan of their heads beats a heap.
  const size_t sources = incoming_.size() + 1;
  auto sequence = [&](size_t s) -> const std::vector<Event>& {
    return s == 0 ? held_ : incoming_[s - 1];
  };
  std::vector<size_t> next(sources, 0);
  next_held_.clear();
  for (;;) {
    const Event* first = nullptr;
    size_t from = 0;
    for (size_t s = 0; s < sources; ++s) {
      const auto& seq = sequence(s);
      if (next[s] < seq.size() &&
          (first == nullptr || StampedBefore(seq[next[s]], *first))) {
        first = &seq[next[s]];
        from = s;
      }
    }
    if (first == nullptr) break;
    (first->ts_ns < watermark_ns ? out : &next_held_)->push_back(*first);
    ++next[from];
  }
  held_.swap(next_held_);
  for (auto& ring : incoming_) ring.clear();
}

}  // namespace tcpstated
