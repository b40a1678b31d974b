// A map of per-key tallies whose size is bounded, for label sets that
// traffic chooses (destinations, ports): a scan of many keys cannot grow it
// without limit. When it is full, the least recently touched half of the
// keys is folded into one `other` tally, so totals stay exact and
// monotonic while the keys that are active now keep their own series.
//
// Value must have `void Add(const Value&)` (folding) and be default
// constructible. Thread-safety: none (the caller's lock).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tcpstated {

template <typename Key, typename Value, typename Hash>
class BoundedBook {
 public:
  explicit BoundedBook(size_t max_keys)
      : max_keys_(std::max<size_t>(max_keys, 2)) {}

  // The tally of `key`, created if need be; `now` orders keys for folding.
  Value& At(const Key& key, uint64_t now) {
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      if (entries_.size() >= max_keys_) FoldOldestHalf();
      it = entries_.emplace(key, Slot{}).first;
    }
    it->second.touched = now;
    return it->second.value;
  }

  // Drops the keys `pred` holds for (their tallies are not folded).
  template <typename Pred>
  void EraseIf(Pred&& pred) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      it = pred(it->first) ? entries_.erase(it) : std::next(it);
    }
  }

  template <typename F>
  void ForEach(F&& f) const {
    for (const auto& [key, slot] : entries_) f(key, slot.value);
  }
  // Everything folded so far.
  const Value& other() const { return other_; }
  size_t size() const { return entries_.size(); }
  uint64_t folded_keys() const { return folded_keys_; }

 private:
  struct Slot {
    Value value;
    uint64_t touched = 0;
  };

  // Halving (rather than folding one key) keeps the cost of a scan of new
  // keys at O(log n) per key.
  void FoldOldestHalf() {
    std::vector<std::pair<uint64_t, Key>> order;
    order.reserve(entries_.size());
    for (const auto& [key, slot] : entries_)
      order.emplace_back(slot.touched, key);
    auto middle = order.begin() + static_cast<std::ptrdiff_t>(order.size() / 2);
    std::nth_element(
        order.begin(), middle, order.end(),
        [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto it = order.begin(); it != middle; ++it) {
      auto found = entries_.find(it->second);
      other_.Add(found->second.value);
      entries_.erase(found);
      ++folded_keys_;
    }
  }

  size_t max_keys_;
  std::unordered_map<Key, Slot, Hash> entries_;
  Value other_;
  uint64_t folded_keys_ = 0;
};

}  // namespace tcpstated
