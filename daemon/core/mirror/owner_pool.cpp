#include "tcpstated/owner_pool.h"

namespace tcpstated {

uint32_t OwnerPool::Acquire(uint32_t tgid, uint64_t cgroup_id,
                            std::string_view comm) {
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
