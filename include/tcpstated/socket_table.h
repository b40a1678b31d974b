// A flat open-addressing hash table of tracked sockets, keyed by their 64-bit
// identity (socket cookie or incarnation id; 0 is reserved for "empty").
//
// Linear probing with backward-shift deletion: no tombstones, so lookups stay
// short however many sockets come and go, and an entry costs its own size
// plus the load-factor slack, with no per-node allocation. Grows by doubling
// up to the capacity that holds `max_entries` at the maximum load factor.
//
// Thread-safety: none; the owner serialises access.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "tcpstated/bit_mix.h"

namespace tcpstated {

// Entry must have a public `uint64_t id` member (0 = empty slot) and be
// trivially copyable.
template <typename Entry>
class SocketTable {
 public:
  explicit SocketTable(size_t max_entries) : max_entries_(max_entries) {
    Rehash(kMinCapacity);
  }

  size_t size() const { return size_; }
  size_t capacity() const { return slots_.size(); }
  size_t max_entries() const { return max_entries_; }
  bool full() const { return size_ >= max_entries_; }
  size_t memory_bytes() const { return slots_.capacity() * sizeof(Entry); }

  Entry* Find(uint64_t id) {
    if (id == 0) return nullptr;
    for (size_t i = Home(id);; i = Next(i)) {
      Entry& slot = slots_[i];
      if (slot.id == id) return &slot;
      if (slot.id == 0) return nullptr;
    }
  }
  const Entry* Find(uint64_t id) const {
    return const_cast<SocketTable*>(this)->Find(id);
  }

  // Starts loading id's home slot into the cache: a batch of events looks
  // its sockets up a few events ahead, so that at a million sockets the
  // memory latency overlaps with the work on earlier events.
  void Prefetch(uint64_t id) const { __builtin_prefetch(&slots_[Home(id)]); }

  // Inserts a value-initialised entry for `id` and returns it. The caller
  // must check full() first (eviction is its policy, not the table's) and
  // that `id` is not present. Pointers returned earlier may be invalidated.
  Entry* Insert(uint64_t id) {
    if ((size_ + 1) * kLoadDen > slots_.size() * kLoadNum) {
      Rehash(slots_.size() * 2);
    }
    size_t i = Home(id);
    while (slots_[i].id != 0) i = Next(i);
    slots_[i] = Entry{};
    slots_[i].id = id;
    ++size_;
    return &slots_[i];
  }

  // Removes the entry at `slot` (a pointer returned by Find/Insert or
  // visited by ForEach). Pointers to other entries may be invalidated.
  void Erase(Entry* slot) {
    Erase(slot, [](const Entry&, size_t, size_t) {});
  }
  // The same, calling moved(entry, from, to) for each entry the backward
  // shift moves (to its new slot): a walk of the slots that is paused
  // across the erase learns which entries jumped over its position.
  template <typename F>
  void Erase(Entry* slot, F&& moved) {
    size_t hole = static_cast<size_t>(slot - slots_.data());
    // Backward-shift: pull later members of the probe run into the hole so
    // that every entry stays reachable from its home slot.
    for (size_t i = Next(hole);; i = Next(i)) {
      Entry& candidate = slots_[i];
      if (candidate.id == 0) break;
      size_t home = Home(candidate.id);
      // Movable when its home is not in the cyclic range (hole, i].
      bool home_after_hole = ((i - home) & mask_) < ((i - hole) & mask_);
      if (!home_after_hole) {
        slots_[hole] = candidate;
        moved(slots_[hole], i, hole);
        hole = i;
      }
    }
    slots_[hole] = Entry{};
    --size_;
  }

  // Gives memory back after a peak: once the entries would fit a quarter of
  // the slots at half the maximum load, the table is rehashed to the
  // smallest capacity that holds them at that load. The gap between the
  // two thresholds keeps a fluctuating size from growing and shrinking the
  // table in turn. Returns whether it shrank (pointers are then invalid).
  bool Shrink() {
    size_t target = kMinCapacity;
    while (size_ * kLoadDen * 2 > target * kLoadNum) target *= 2;
    if (target * 4 > slots_.size()) return false;
    Rehash(target);
    return true;
  }

  // Up to `window` occupied entries in the probe run starting at id's home:
  // the cheap neighbourhood the eviction policy chooses a victim from.
  template <typename F>
  void ForEachNear(uint64_t id, size_t window, F&& f) {
    size_t seen = 0;
    for (size_t i = Home(id), n = 0; n < slots_.size() && seen < window;
         i = Next(i), ++n) {
      if (slots_[i].id != 0) {
        f(slots_[i]);
        ++seen;
      }
    }
  }

  // The slot of an entry (a pointer returned by Find/Insert/AtSlot).
  size_t SlotOf(const Entry* e) const {
    return static_cast<size_t>(e - slots_.data());
  }

  // The entry in slot `i` (< capacity()), or null if the slot is empty:
  // for walks that are paused and resumed. Erasing the entry at slot i can
  // only move later entries of its probe run into slot i or after it.
  Entry* AtSlot(size_t i) { return slots_[i].id != 0 ? &slots_[i] : nullptr; }
  const Entry* AtSlot(size_t i) const {
    return slots_[i].id != 0 ? &slots_[i] : nullptr;
  }

  template <typename F>
  void ForEach(F&& f) const {
    for (const Entry& slot : slots_) {
      if (slot.id != 0) f(slot);
    }
  }

  template <typename F>
  void ForEachMutable(F&& f) {
    for (Entry& slot : slots_) {
      if (slot.id != 0) f(slot);
    }
  }

 private:
  static constexpr size_t kMinCapacity = 1024;
  // Maximum load factor 3/4. Every new socket makes unsuccessful probes (its
  // id, a provisional child's id), and with linear probing those scan about
  // (1 + 1/(1-a)^2)/2 slots: 8.5 at 3/4 against 32 at 7/8, a cache line
  // each. The price is slack: at worst (just past 3/4, doubled) 171 table
  // bytes per socket instead of 146.
  static constexpr size_t kLoadNum = 3;
  static constexpr size_t kLoadDen = 4;

  size_t Home(uint64_t id) const { return MixBits(id) & mask_; }
  size_t Next(size_t i) const { return (i + 1) & mask_; }

  void Rehash(size_t capacity) {
    std::vector<Entry> old;
    old.swap(slots_);
    slots_.assign(capacity, Entry{});
    mask_ = capacity - 1;
    size_ = 0;
    for (const Entry& e : old) {
      if (e.id == 0) continue;
      size_t i = Home(e.id);
      while (slots_[i].id != 0) i = Next(i);
      slots_[i] = e;
      ++size_;
    }
  }

  std::vector<Entry> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
  size_t max_entries_;
};

}  // namespace tcpstated
