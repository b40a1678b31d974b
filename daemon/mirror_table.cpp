// The mirror's table of sockets and the books every entry is counted in:
// per-namespace state counts, the CLOSE_WAIT index, the destination and
// listener books, and the state-duration histogram. Every insertion,
// removal and state change goes through here, so the books never drift
// from the table.
#include <cstring>

#include "tcpstated/mirror.h"

namespace tcpstated {
namespace {

// How many neighbours of a new socket's home slot the eviction policy looks
// at: O(1) per eviction, and with a uniform hash the oldest of 16 random
// entries is old enough.
constexpr size_t kEvictionWindow = 16;

// Addresses as two 64-bit words: compared on every state change.
struct Words {
  uint64_t lo, hi;
};
Words WordsOf(const Address& a) {
  Words w;
  std::memcpy(&w, a.data(), sizeof(w));
  return w;
}
bool IsZero(Words w) { return (w.lo | w.hi) == 0; }
bool Same(Words a, Words b) { return ((a.lo ^ b.lo) | (a.hi ^ b.hi)) == 0; }

// kDurationBuckets in nanoseconds, for bucketing without floating point.
constexpr std::array<uint64_t, kDurationBuckets.size()> BucketBoundsNs() {
  std::array<uint64_t, kDurationBuckets.size()> out{};
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<uint64_t>(kDurationBuckets[i] * 1e9);
  }
  return out;
}
constexpr std::array<uint64_t, kDurationBuckets.size()> kBucketBoundsNs =
    BucketBoundsNs();

}  // namespace

SocketEntry* Mirror::Track(const Event& e, TcpState state, uint64_t entered_ns,
                           uint8_t flags, Role role) {
  if (table_.max_entries() == 0) return nullptr;
  if (table_.full()) EvictOne(e.id, e.ts_ns);
  SocketEntry* entry = table_.Insert(e.id);
  if (IsProvisionalId(e.id)) provisional_children_++;
  entry->netns = e.netns;
  entry->state = state;
  entry->entered_ns = entered_ns;
  entry->flags = flags;
  entry->role = role;
  CopyTuple(entry, e);
  Account(*entry, state, +1);
  UpdateDestination(entry);
  return entry;
}

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

void Mirror::SetState(SocketEntry* entry, TcpState state, uint64_t now_ns) {
  Observe(*entry, now_ns);
  // Account(-1) and Account(+1) in one: same namespace, one lookup.
  StateCounts& counts = CountsOf(entry->netns);
  counts[StateIndex(entry->state)]--;
  counts[StateIndex(state)]++;
  if (entry->state == TcpState::kCloseWait) IndexCloseWait(entry->id, false);
  if (state == TcpState::kCloseWait) IndexCloseWait(entry->id, true);
  entry->state = state;
  entry->entered_ns = now_ns;
  entry->flags &= static_cast<uint8_t>(~(kEntryAgeUnknown | kEntryAgeAsked));
}

void Mirror::Remove(SocketEntry* entry, uint64_t now_ns, bool observe) {
  if (observe) Observe(*entry, now_ns);
  if (reconciling_) RememberRemoved(entry->id, KeyOf(*entry));
  Account(*entry, entry->state, -1);
  UnregisterDestination(*entry);
  if (entry->state == TcpState::kListen) UnregisterListener(*entry);
  UnmarkTimewait(entry);
  owners_.Release(entry->owner);
  if (IsProvisionalId(entry->id)) provisional_children_--;
  table_.Erase(entry);
}

void Mirror::Observe(const SocketEntry& entry, uint64_t now_ns) {
  if (entry.flags & kEntryAgeUnknown) return;
  if (now_ns < entry.entered_ns) return;  // events from CPUs slightly apart
  const uint64_t ns = now_ns - entry.entered_ns;
  DurationHistogram& h = durations_[StateIndex(entry.state)];
  // Le-buckets: the first bound at or above the duration.
  size_t bucket = 0;
  while (bucket < kBucketBoundsNs.size() && ns > kBucketBoundsNs[bucket]) {
    ++bucket;
  }
  h.counts[bucket]++;
  h.sum += static_cast<double>(ns) * 1e-9;
  h.count++;
}

void Mirror::Account(const SocketEntry& entry, TcpState state, int delta) {
  CountsOf(entry.netns)[StateIndex(state)] += delta;
  if (state == TcpState::kCloseWait) IndexCloseWait(entry.id, delta > 0);
}

void Mirror::IndexCloseWait(uint64_t id, bool in) {
  IdSlot* slot = close_wait_ids_.Find(id);
  if (in && slot == nullptr && !close_wait_ids_.full()) {
    close_wait_ids_.Insert(id);
  } else if (!in && slot != nullptr) {
    close_wait_ids_.Erase(slot);
  }
}

void Mirror::CopyTuple(SocketEntry* entry, const Event& e) {
  // Early events carry partial tuples (sport 0 before the port is chosen;
  // before 6.15 a child's first event has its listener's addresses), so a
  // known field is never overwritten by an unknown one.
  const Words esaddr = WordsOf(e.saddr), edaddr = WordsOf(e.daddr);
  const bool saddr_known = !IsZero(esaddr), daddr_known = !IsZero(edaddr);
  bool changed = (e.sport != 0 && e.sport != entry->sport) ||
                 (e.dport != 0 && e.dport != entry->dport) ||
                 (saddr_known && !Same(esaddr, WordsOf(entry->saddr))) ||
                 (daddr_known && !Same(edaddr, WordsOf(entry->daddr)));
  if (!changed) {
    if (e.ipv6) entry->flags |= kEntryIpv6;
    return;
  }
  UnregisterDestination(*entry);
  if (e.sport != 0) entry->sport = e.sport;
  if (e.dport != 0) entry->dport = e.dport;
  if (saddr_known) entry->saddr = e.saddr;
  if (daddr_known) entry->daddr = e.daddr;
  if (e.ipv6) entry->flags |= kEntryIpv6;
  UpdateDestination(entry);
}

DestinationKey Mirror::DestinationOf(const SocketEntry& entry) {
  return {entry.netns, entry.dport, entry.saddr, entry.daddr};
}

TupleKey Mirror::KeyOf(const SocketEntry& entry) {
  return {entry.netns, entry.sport, entry.dport, entry.saddr, entry.daddr};
}

void Mirror::UpdateDestination(SocketEntry* entry) {
  if (entry->flags & kEntryDestCounted) return;
  // A connection holds an ephemeral port towards its destination when it
  // was opened by connect(): clients, and sockets of unknown origin that do
  // not sit on a local listener's port. Both ports must be known.
  if (entry->sport == 0 || entry->dport == 0) return;
  if (entry->role == Role::kListener || entry->role == Role::kServer) return;
  if (entry->role == Role::kUnknown &&
      (listeners_.count({entry->netns, entry->sport}) != 0 ||
       !InEphemeralRange(entry->netns, entry->sport))) {
    return;
  }
  destinations_[DestinationOf(*entry)]++;
  entry->flags |= kEntryDestCounted;
}

void Mirror::UnregisterDestination(SocketEntry& entry) {
  if ((entry.flags & kEntryDestCounted) == 0) return;
  entry.flags &= static_cast<uint8_t>(~kEntryDestCounted);
  auto it = destinations_.find(DestinationOf(entry));
  if (it != destinations_.end() && --it->second == 0) destinations_.erase(it);
}

void Mirror::RegisterListener(const SocketEntry& entry) {
  if (entry.sport != 0) listeners_[{entry.netns, entry.sport}] = entry.id;
}

void Mirror::UnregisterListener(const SocketEntry& entry) {
  auto it = listeners_.find({entry.netns, entry.sport});
  if (it != listeners_.end() && it->second == entry.id) listeners_.erase(it);
}

}  // namespace tcpstated
