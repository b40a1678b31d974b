// The mirror's count of outbound connections per destination (namespace,
// local address, remote address and port): the sockets that hold an
// ephemeral port towards it, in any state, timewait included. Updated twice
// per client connection (when its port becomes known, when it goes).
//
// Flat: the counts sit in one dense vector, which readers iterate as they
// would a map (pairs of key and count), and an open-addressing index of
// each key's 32-bit hash and position (linear probing, backward-shift
// deletion, at most half full) points into it. The std::unordered_map this
// replaces reached a key through its bucket, the node before it and the
// node itself, each a separate allocation: in storm.py's TIME_WAIT storm
// (8,000 destinations, a million sockets churning the caches) that lookup
// was the daemon's largest single cost, 15 % of its samples.
//
// Thread-safety: none (the mirror's lock). Add may throw std::bad_alloc
// (growing); the counts are then unchanged.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "tcpstated/bit_mix.h"
#include "tcpstated/socket_keys.h"

namespace tcpstated {

class DestinationCounts {
 public:
  using value_type = std::pair<DestinationKey, uint64_t>;
  using const_iterator = std::vector<value_type>::const_iterator;

  const_iterator begin() const { return entries_.begin(); }
  const_iterator end() const { return entries_.end(); }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  const_iterator find(const DestinationKey& key) const {
    const size_t slot = SlotOf(key, HashOf(key));
    return slot == kNone ? end() : begin() + index_[slot].pos;
  }

  // One more socket towards `key`.
  void Add(const DestinationKey& key) {
    const uint32_t h = HashOf(key);
    const size_t slot = SlotOf(key, h);
    if (slot != kNone) {
      entries_[index_[slot].pos].second++;
      return;
    }
    // Room first (both may throw), then the change.
    if ((entries_.size() + 1) * 2 > index_.size()) Rehash(index_.size() * 2);
    if (entries_.size() == entries_.capacity()) {
      // Geometric growth (reserve(size + 1) would copy every key each time).
      entries_.reserve(std::max<size_t>(kMinCapacity, entries_.size() * 2));
    }
    size_t i = h & mask_;
    while (index_[i].pos != kEmpty) i = (i + 1) & mask_;
    index_[i] = Slot{h, static_cast<uint32_t>(entries_.size())};
    entries_.emplace_back(key, 1);
  }

  // Gives memory back after a peak (a scan of many destinations): once the
  // keys would fit a quarter of the index at a quarter full, the index is
  // rebuilt at the smallest size that holds them at most half full, and the
  // pairs' vector is trimmed. Returns whether it shrank.
  bool Shrink() {
    size_t target = kMinCapacity;
    while (entries_.size() * 4 > target) target *= 2;
    if (target * 4 > index_.size()) return false;
    Rehash(target);
    entries_.shrink_to_fit();
    return true;
  }

  // One fewer socket towards `key`; the key goes with its last socket. A
  // key not held is ignored.
  void Remove(const DestinationKey& key) {
    const size_t slot = SlotOf(key, HashOf(key));
    if (slot == kNone) return;
    const uint32_t pos = index_[slot].pos;
    if (--entries_[pos].second != 0) return;
    EraseSlot(slot);
    // The last entry fills the hole in the dense vector.
    const uint32_t last = static_cast<uint32_t>(entries_.size() - 1);
    if (pos != last) {
      const size_t moved =
          SlotOf(entries_[last].first, HashOf(entries_[last].first));
      index_[moved].pos = pos;
      entries_[pos] = entries_[last];
    }
    entries_.pop_back();
  }

 private:
  struct Slot {
    uint32_t hash;
    uint32_t pos;  // kEmpty: an empty slot
  };
  static constexpr uint32_t kEmpty = UINT32_MAX;
  static constexpr size_t kNone = SIZE_MAX;
  static constexpr size_t kMinCapacity = 16;

  static uint32_t HashOf(const DestinationKey& key) {
    return static_cast<uint32_t>(MixBits(DestinationKeyHash()(key)));
  }

  // The index slot of `key` (hash `h`), or kNone.
  size_t SlotOf(const DestinationKey& key, uint32_t h) const {
    if (index_.empty()) return kNone;
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = index_[i];
      if (s.pos == kEmpty) return kNone;
      if (s.hash == h && entries_[s.pos].first == key) return i;
    }
  }

  // Backward shift: later members of the probe run move into the hole so
  // that each stays reachable from its home slot (no tombstones).
  void EraseSlot(size_t hole) {
    for (size_t i = (hole + 1) & mask_;; i = (i + 1) & mask_) {
      const Slot s = index_[i];
      if (s.pos == kEmpty) break;
      const size_t home = s.hash & mask_;
      // Movable when its home is not in the cyclic range (hole, i].
      if (((i - home) & mask_) >= ((i - hole) & mask_)) {
        index_[hole] = s;
        hole = i;
      }
    }
    index_[hole] = Slot{0, kEmpty};
  }

  void Rehash(size_t capacity) {
    if (capacity < kMinCapacity) capacity = kMinCapacity;
    std::vector<Slot> index(capacity, Slot{0, kEmpty});
    const size_t mask = capacity - 1;
    for (const Slot& s : index_) {
      if (s.pos == kEmpty) continue;
      size_t i = s.hash & mask;
      while (index[i].pos != kEmpty) i = (i + 1) & mask;
      index[i] = s;
    }
    index_.swap(index);
    mask_ = mask;
  }

  std::vector<value_type> entries_;
  std::vector<Slot> index_;  // capacity a power of two (or 0)
  size_t mask_ = 0;
};

}  // namespace tcpstated
