#include "tcpstated/owner_pool.h"

namespace tcpstated {

uint32_t OwnerPool::Acquire(uint32_t tgid, uint64_t cgroup_id,
                            std::string_view comm) {
  // A process opens its connections in runs (a client's connects, a
  // proxy's accepts): the owner last handed out is shared, as an accepted
  // child shares its listener's, instead of a slot and a copy of the comm
  // per socket.
  if (last_ != kUnknown && last_ < slots_.size()) {
    Slot& last = slots_[last_];
    if (last.refs > 0 && last.owner.tgid == tgid &&
        last.owner.cgroup_id == cgroup_id && last.owner.comm == comm) {
      last.refs++;
      return last_;
    }
  }
  uint32_t index;
  if (!free_.empty()) {
    index = free_.back();
    free_.pop_back();
  } else {
    index = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& slot = slots_[index];
  slot.owner.tgid = tgid;
  slot.owner.cgroup_id = cgroup_id;
  slot.owner.comm.assign(comm.data(), comm.size());
  slot.refs = 1;
  last_ = index;
  return index;
}

void OwnerPool::Release(uint32_t index) {
  if (index == kUnknown) return;
  Slot& slot = slots_[index];
  if (--slot.refs == 0) {
    slot.owner = Owner{};
    free_.push_back(index);
  }
}

}  // namespace tcpstated
