// The growth, insertion and deletion of the 4-tuple index (tuple_index.h);
// lookups are inline in the header.
#include "tcpstated/tuple_index.h"

namespace tcpstated {

TupleIndex::TupleIndex(size_t max_entries) : max_entries_(max_entries) {
  Rehash(kMinCapacity);
}

TupleKey TupleIndex::Unpack(const Packed& p) {
  TupleKey key;
  key.netns = p.netns;
  key.sport = p.sport;
  key.dport = p.dport;
  std::memcpy(key.saddr.data(), p.saddr, sizeof(p.saddr));
  std::memcpy(key.daddr.data(), p.daddr, sizeof(p.daddr));
  return key;
}

size_t TupleIndex::SlotOf(const Packed& k, uint32_t h) const {
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    if (hashes_[i] == 0) return hashes_.size();
    if (hashes_[i] == h && slots_[i].key == k) return i;
  }
}

bool TupleIndex::Set(const TupleKey& key, uint64_t id) {
  const Packed k = Pack(key);
  const uint32_t h = HashOf(k);
  const size_t found = SlotOf(k, h);
  if (found != hashes_.size()) {
    slots_[found].id = id;
    return true;
  }
  if (size_ >= max_entries_) return false;
  if ((size_ + 1) * kLoadDen > hashes_.size() * kLoadNum) {
    Rehash(hashes_.size() * 2);
  }
  size_t i = h & mask_;
  while (hashes_[i] != 0) i = (i + 1) & mask_;
  hashes_[i] = h;
  slots_[i] = Slot{k, id};
  ++size_;
  return true;
}

bool TupleIndex::Erase(const TupleKey& key, uint64_t id) {
  const Packed k = Pack(key);
  size_t hole = SlotOf(k, HashOf(k));
  if (hole == hashes_.size() || slots_[hole].id != id) return false;
  // Backward shift: pull later members of the probe run into the hole so
  // that every key stays reachable from its home slot.
  for (size_t i = (hole + 1) & mask_; hashes_[i] != 0; i = (i + 1) & mask_) {
    const size_t home = hashes_[i] & mask_;
    // Movable when its home is not in the cyclic range (hole, i].
    if (((i - home) & mask_) >= ((i - hole) & mask_)) {
      hashes_[hole] = hashes_[i];
      slots_[hole] = slots_[i];
      hole = i;
    }
  }
  hashes_[hole] = 0;
  --size_;
  return true;
}

bool TupleIndex::Shrink() {
  size_t target = kMinCapacity;
  while (size_ * kLoadDen * 2 > target * kLoadNum) target *= 2;
  if (target * 4 > hashes_.size()) return false;
  Rehash(target);
  return true;
}

void TupleIndex::Rehash(size_t capacity) {
  std::vector<uint32_t> old_hashes(capacity, 0);
  std::vector<Slot> old_slots(capacity);
  old_hashes.swap(hashes_);
  old_slots.swap(slots_);
  mask_ = capacity - 1;
  for (size_t j = 0; j < old_hashes.size(); ++j) {
    if (old_hashes[j] == 0) continue;
    size_t i = old_hashes[j] & mask_;
    while (hashes_[i] != 0) i = (i + 1) & mask_;
    hashes_[i] = old_hashes[j];
    slots_[i] = old_slots[j];
  }
}

}  // namespace tcpstated
