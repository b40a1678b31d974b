// A flat index from a connection's 4-tuple (with its namespace) to the id
// of the one socket that holds it: the mirror's TIME_WAIT index, looked up
// on nearly every state change while timewait entries exist.
//
// Open addressing with linear probing and backward-shift deletion (no
// tombstones), like SocketTable, but keyed by a 40-byte tuple: a parallel
// array of 32-bit hashes is probed first (16 per cache line), so a miss,
// the common case, compares no key and touches one or two lines however
// large the index; keys are compared as 64-bit words. No allocation per
// key (a std::unordered_map made one node per timewait socket). Grows by
// doubling up to the capacity that holds `max_entries` at the maximum
// load; Shrink() gives memory back after a peak.
//
// Thread-safety: none; the owner serialises access. What throws: the
// constructor, Set and Shrink may throw std::bad_alloc (growing).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tcpstated/socket_keys.h"

namespace tcpstated {

class TupleIndex {
 public:
  explicit TupleIndex(size_t max_entries);

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return hashes_.size(); }
  size_t max_entries() const { return max_entries_; }
  size_t memory_bytes() const {
    return hashes_.capacity() * sizeof(uint32_t) +
           slots_.capacity() * sizeof(Slot);
  }

  // The id `key` maps to, or 0 if none.
  uint64_t Find(const TupleKey& key) const {
    if (size_ == 0) return 0;
    const Packed k = Pack(key);
    const uint32_t h = HashOf(k);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const uint32_t slot_hash = hashes_[i];
      if (slot_hash == 0) return 0;
      if (slot_hash == h && slots_[i].key == k) return slots_[i].id;
    }
  }

  // Starts loading the lines a Find, Set or Erase of `key` reads first: at
  // a million timewait sockets each is otherwise two cache misses in a row.
  void Prefetch(const TupleKey& key) const {
    if (hashes_.empty()) return;
    const size_t i = HashOf(Pack(key)) & mask_;
    __builtin_prefetch(&hashes_[i]);
    __builtin_prefetch(&slots_[i]);
  }

  // Maps `key` to `id` (non-zero), replacing the id it had. Returns false,
  // changing nothing, when `key` is new and max_entries keys are held.
  bool Set(const TupleKey& key, uint64_t id);

  // Removes `key` if it maps to `id`. Returns whether it did.
  bool Erase(const TupleKey& key, uint64_t id);

  // Once the keys would fit a quarter of the slots at half the maximum
  // load, rehashes to the smallest capacity that holds them at that load
  // (the gap keeps a fluctuating size from growing and shrinking in turn).
  // Returns whether it shrank.
  bool Shrink();

  template <typename F>
  void ForEach(F&& f) const {
    for (size_t i = 0; i < hashes_.size(); ++i) {
      if (hashes_[i] != 0) f(Unpack(slots_[i].key), slots_[i].id);
    }
  }

 private:
  // The tuple as plain words: compared without a memcmp call.
  struct Packed {
    uint32_t netns;
    uint16_t sport, dport;
    uint64_t saddr[2], daddr[2];
    bool operator==(const Packed& o) const {
      return ((static_cast<uint64_t>(netns) ^ o.netns) |
              (static_cast<uint64_t>(sport) ^ o.sport) |
              (static_cast<uint64_t>(dport) ^ o.dport) |
              (saddr[0] ^ o.saddr[0]) | (saddr[1] ^ o.saddr[1]) |
              (daddr[0] ^ o.daddr[0]) | (daddr[1] ^ o.daddr[1])) == 0;
    }
  };
  struct Slot {
    Packed key;
    uint64_t id;
  };
  static_assert(sizeof(Slot) == 48, "a slot is the tuple and the id");

  static constexpr size_t kMinCapacity = 64;
  // Maximum load 3/4: with the hashes probed first a miss scans about 8
  // of them, within one or two cache lines.
  static constexpr size_t kLoadNum = 3;
  static constexpr size_t kLoadDen = 4;

  static Packed Pack(const TupleKey& key) {
    Packed p;
    p.netns = key.netns;
    p.sport = key.sport;
    p.dport = key.dport;
    std::memcpy(p.saddr, key.saddr.data(), sizeof(p.saddr));
    std::memcpy(p.daddr, key.daddr.data(), sizeof(p.daddr));
    return p;
  }
  static TupleKey Unpack(const Packed& p);
  // Never 0 (the empty slot's mark); its low bits are the home slot.
  static uint32_t HashOf(const Packed& p) {
    constexpr uint64_t kMul = 0x9e3779b97f4a7c15ULL;
    uint64_t h = (static_cast<uint64_t>(p.netns) << 32) ^
                 (static_cast<uint64_t>(p.sport) << 16) ^ p.dport;
    h = (h ^ p.saddr[0]) * kMul;
    h = (h ^ p.daddr[0]) * kMul;
    h = (h ^ p.saddr[1]) * kMul;
    h = (h ^ p.daddr[1]) * kMul;
    // The high half is where every input bit has reached.
    const uint32_t out = static_cast<uint32_t>(h >> 32);
    return out != 0 ? out : 1;
  }
  // The index of `k` (hash `h`), or capacity() if absent.
  size_t SlotOf(const Packed& k, uint32_t h) const;
  void Rehash(size_t capacity);

  std::vector<uint32_t> hashes_;  // 0 = empty slot
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
  size_t max_entries_;
};

}  // namespace tcpstated
