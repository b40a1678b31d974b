// Who owns a socket, kept once per ownership and shared by reference count:
// a SocketEntry holds a 32-bit index into the pool instead of a string, so
// the table stays one cache line per socket.
//
// Owners are captured where a transition ran in its process (connect,
// listen, close), inherited by accepted children from their listener, or
// resolved from /proc for sockets found in a dump.
//
// Thread-safety: none (the mirror's lock covers it).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tcpstated {

struct Owner {
  uint32_t tgid = 0;
  uint64_t cgroup_id = 0;
  std::string comm;
};

class OwnerPool {
 public:
  // Index 0 is "unknown": never handed out, and ignored by every call.
  static constexpr uint32_t kUnknown = 0;

  OwnerPool() : slots_(1) {}

  // An owner with one more reference; returns its index. The same owner
  // as the last one acquired (still held) shares its slot.
  uint32_t Acquire(uint32_t tgid, uint64_t cgroup_id, std::string_view comm);
  // One more reference to an owner already held (an accepted child).
  void AddRef(uint32_t index) {
    if (index != kUnknown) slots_[index].refs++;
  }
  // Drops a reference; the last one frees the slot for reuse.
  void Release(uint32_t index);
  // The owner at `index`, or nullptr for unknown or out of range.
  const Owner* Get(uint32_t index) const {
    if (index == kUnknown || index >= slots_.size()) return nullptr;
    return &slots_[index].owner;
  }

 private:
  struct Slot {
    Owner owner;
    uint32_t refs = 0;
  };
  std::vector<Slot> slots_;  // index 0 unused
  std::vector<uint32_t> free_;
  uint32_t last_ = kUnknown;  // the slot Acquire last filled
};

}  // namespace tcpstated
