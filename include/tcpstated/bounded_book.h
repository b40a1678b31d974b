// A map of per-key tallies whose size is bounded, for label sets that
// traffic chooses (destinations, ports): a scan of many keys cannot grow it
// without limit. When it is full, the least recently touched half of the
// keys is folded into one `other` tally, so totals stay exact and
// monotonic while the keys that are active now keep their own series.
//
// Flat: the tallies sit in one dense vector and an open-addressing index
// (linear probing, at most half full) points into it. The book is looked
// up on the event path under the mirror's lock (every connect, every
// reset), so a lookup is one hash and a probe of a small array, a new key
// is no allocation of its own, and the copy Daemon::EvaluateOutcomes takes
// under that lock every second is two vector copies.
//
// Value must have `void Add(const Value&)` (folding) and be default
// constructible. Thread-safety: none (the caller's lock). At may throw
// std::bad_alloc (the key is then not added; the book stays consistent).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "tcpstated/bit_mix.h"

namespace tcpstated {

template <typename Key, typename Value, typename Hash>
class BoundedBook {
 public:
  // Bounds above 2^30 keys are 2^30 (the index holds 32-bit positions).
  explicit BoundedBook(size_t max_keys)
      : max_keys_(std::clamp<size_t>(max_keys, 2, size_t{1} << 30)) {}

  // The tally of `key`, created if need be; `now` orders keys for folding.
  Value& At(const Key& key, uint64_t now) {
    size_t slot = 0;
    if (!index_.empty()) {
      slot = Probe(key);
      if (index_[slot] != kEmpty) {
        Entry& e = entries_[index_[slot]];
        e.touched = now;
        return e.value;
      }
    }
    if (entries_.size() >= max_keys_) FoldOldestHalf();
    // Room first (both may throw), then the change.
    if (entries_.size() == entries_.capacity()) {
      // Geometric growth, up to the bound (reserve(n) alone allocates
      // exactly n: every new key would copy the whole book).
      entries_.reserve(
          std::min(max_keys_, std::max<size_t>(16, entries_.capacity() * 2)));
    }
    if ((entries_.size() + 1) * 2 > index_.size()) {
      GrowIndex(entries_.size() + 1);
    }
    slot = Probe(key);
    index_[slot] = static_cast<uint32_t>(entries_.size());
    entries_.push_back(Entry{key, Value{}, now});
    return entries_.back().value;
  }

  // Drops the keys `pred` holds for (their tallies are not folded).
  template <typename Pred>
  void EraseIf(Pred&& pred) {
    const size_t before = entries_.size();
    entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                  [&pred](const Entry& e) {
                                    return pred(static_cast<const Key&>(e.key));
                                  }),
                   entries_.end());
    if (entries_.size() != before) Reindex();
  }

  template <typename F>
  void ForEach(F&& f) const {
    for (const Entry& e : entries_) f(e.key, e.value);
  }
  // Everything folded so far.
  const Value& other() const { return other_; }
  size_t size() const { return entries_.size(); }
  uint64_t folded_keys() const { return folded_keys_; }

 private:
  struct Entry {
    Key key;
    Value value;
    uint64_t touched = 0;
  };
  static constexpr uint32_t kEmpty = UINT32_MAX;

  // The slot holding `key`, or the empty slot where it would go. The index
  // is never full (at most half), so the probe ends.
  size_t Probe(const Key& key) const {
    const size_t mask = index_.size() - 1;
    size_t slot = static_cast<size_t>(MixBits(Hash()(key))) & mask;
    while (index_[slot] != kEmpty && !(entries_[index_[slot]].key == key)) {
      slot = (slot + 1) & mask;
    }
    return slot;
  }

  // A power of two at least twice `keys`.
  void GrowIndex(size_t keys) {
    size_t n = 16;
    while (n < keys * 2) n *= 2;
    std::vector<uint32_t> index(n, kEmpty);
    index_.swap(index);
    Reindex();
  }

  void Reindex() {
    std::fill(index_.begin(), index_.end(), kEmpty);
    for (size_t i = 0; i < entries_.size(); ++i) {
      index_[Probe(entries_[i].key)] = static_cast<uint32_t>(i);
    }
  }

  // Halving (rather than folding one key) keeps the cost of a scan of new
  // keys at O(1) per key, amortised: one pass over the book per half of it.
  void FoldOldestHalf() {
    std::vector<uint64_t> times;
    times.reserve(entries_.size());
    for (const Entry& e : entries_) times.push_back(e.touched);
    const size_t half = times.size() / 2;
    std::nth_element(times.begin(),
                     times.begin() + static_cast<std::ptrdiff_t>(half),
                     times.end());
    // Fold exactly `half` keys: every key older than the median, then keys
    // at the median (the oldest by position) until half are folded.
    const uint64_t median = times[half];
    size_t older = 0;
    for (const Entry& e : entries_) older += e.touched < median ? 1 : 0;
    size_t at_median = half - older;
    size_t kept = 0;
    for (Entry& e : entries_) {
      bool fold = e.touched < median;
      if (!fold && e.touched == median && at_median > 0) {
        fold = true;
        --at_median;
      }
      if (fold) {
        other_.Add(e.value);
        ++folded_keys_;
        continue;
      }
      if (&entries_[kept] != &e) entries_[kept] = std::move(e);
      ++kept;
    }
    entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(kept),
                   entries_.end());
    Reindex();
  }

  size_t max_keys_;
  std::vector<Entry> entries_;
  std::vector<uint32_t> index_;  // entry positions; kEmpty: free slot
  Value other_;
  uint64_t folded_keys_ = 0;
};

}  // namespace tcpstated
