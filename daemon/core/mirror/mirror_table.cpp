// The mirror's table of sockets and the books every entry is counted in:
// per-namespace state counts, the CLOSE_WAIT index, the destination and
// listener books, and the state-duration histogram. Every insertion,
// removal and state change goes through here (or through
// mirror_table_inl.h, its per-event part), so the books never drift from
// the table.
#include "daemon/core/mirror/mirror_table_inl.h"
#include "tcpstated/mirror.h"

namespace tcpstated {
namespace {

// How many neighbours of a new socket's home slot the eviction policy looks
// at: O(1) per eviction, and with a uniform hash the oldest of 16 random
// entries is old enough.
constexpr size_t kEvictionWindow = 16;

}  // namespace

void Mirror::EvictOne(uint64_t near_id, uint64_t now_ns) {
  // Prefer a timewait socket (the kernel will confirm it at the next
  // reconcile), then the entry that has been in its state longest.
  uint64_t victim = 0;
  bool victim_tw = false;
  uint64_t victim_entered = 0;
  table_.ForEachNear(near_id, kEvictionWindow, [&](const SocketEntry& s) {
    bool tw = (s.flags & kEntryTimewaitSock) != 0;
    // The first entry seen is a candidate whatever its time (a timestamp
    // of UINT64_MAX must not leave the table without a victim).
    if (victim == 0 || (tw && !victim_tw) ||
        (tw == victim_tw && s.entered_ns < victim_entered)) {
      victim = s.id;
      victim_tw = tw;
      victim_entered = s.entered_ns;
    }
  });
  if (SocketEntry* entry = table_.Find(victim)) {
    Remove(entry, now_ns, /*observe=*/false);
    evictions_++;
  }
}

DestinationKey Mirror::DestinationOf(const SocketEntry& entry) {
  return {entry.netns, entry.dport, entry.saddr, entry.daddr};
}

void Mirror::UpdateDestination(SocketEntry* entry) {
  if (entry->flags & kEntryDestCounted) return;
  // A connection holds an ephemeral port towards its destination when it
  // was opened by connect(): clients, and sockets of unknown origin that do
  // not sit on a local listener's port. Both ports must be known.
  if (entry->sport == 0 || entry->dport == 0) return;
  if (entry->role == Role::kListener || entry->role == Role::kServer) return;
  if (entry->role == Role::kUnknown &&
      (listeners_.HasPort(entry->netns, entry->sport) ||
       !InEphemeralRange(entry->netns, entry->sport))) {
    return;
  }
  destinations_.Add(DestinationOf(*entry));
  entry->flags |= kEntryDestCounted;
}

void Mirror::UnregisterDestination(SocketEntry& entry) {
  if ((entry.flags & kEntryDestCounted) == 0) return;
  entry.flags &= static_cast<uint8_t>(~kEntryDestCounted);
  destinations_.Remove(DestinationOf(entry));
}

void Mirror::RegisterListener(const SocketEntry& entry) {
  if (entry.sport != 0) {
    listeners_.Add(entry.netns, entry.sport, entry.saddr, entry.id);
  }
}

void Mirror::UnregisterListener(const SocketEntry& entry) {
  listeners_.Remove(entry.netns, entry.sport, entry.id);
}

}  // namespace tcpstated
