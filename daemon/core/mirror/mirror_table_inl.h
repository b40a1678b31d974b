// The per-event part of the mirror's table and books (mirror_table.cpp):
// what nearly every event goes through (state counts, the CLOSE_WAIT index,
// the duration histogram, tuple updates, insertion and removal). Inline,
// and included by every mirror_*.cpp that calls it, because a call into
// another translation unit per event cost 10-30% in the mirror benchmark.
// Private to the mirror's sources.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

#include "tcpstated/mirror.h"

namespace tcpstated {
namespace mirror_table_detail {

// Addresses as two 64-bit words: compared on every state change.
struct Words {
  uint64_t lo, hi;
};
inline Words WordsOf(const Address& a) {
  Words w;
  std::memcpy(&w, a.data(), sizeof(w));
  return w;
}
inline bool IsZero(Words w) { return (w.lo | w.hi) == 0; }
inline bool Same(Words a, Words b) {
  return ((a.lo ^ b.lo) | (a.hi ^ b.hi)) == 0;
}

// kDurationBuckets in nanoseconds, for bucketing without floating point.
constexpr std::array<uint64_t, kDurationBuckets.size()> BucketBoundsNs() {
  std::array<uint64_t, kDurationBuckets.size()> out{};
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<uint64_t>(kDurationBuckets[i] * 1e9);
  }
  return out;
}
inline constexpr std::array<uint64_t, kDurationBuckets.size()> kBucketBoundsNs =
    BucketBoundsNs();

}  // namespace mirror_table_detail

inline StateCounts& Mirror::CountsOf(uint32_t netns) {
  if (counts_cache_ != nullptr && counts_cache_netns_ == netns) {
    return *counts_cache_;
  }
  StateCounts& counts = counts_[netns];
  counts_cache_netns_ = netns;
  counts_cache_ = &counts;
  return counts;
}

inline SocketEntry* Mirror::Track(const Event& e, TcpState state,
                                  uint64_t entered_ns, uint8_t flags,
                                  Role role) {
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
  // As if moved in from beyond the table: a paused walk that is past its
  // slot must still index it.
  if (job_ != nullptr)
    NoteMoved(*entry, table_.capacity(), table_.SlotOf(entry));
  return entry;
}

inline void Mirror::SetState(SocketEntry* entry, TcpState state,
                             uint64_t now_ns) {
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

inline void Mirror::Remove(SocketEntry* entry, uint64_t now_ns, bool observe) {
  if (observe) Observe(*entry, now_ns);
  if (reconciling_) RememberRemoved(entry->id, KeyOf(*entry));
  Account(*entry, entry->state, -1);
  UnregisterDestination(*entry);
  if (entry->state == TcpState::kListen) UnregisterListener(*entry);
  if (entry->flags & kEntryTimewaitSock) UnmarkTimewait(entry);
  owners_.Release(entry->owner);
  if (IsProvisionalId(entry->id)) provisional_children_--;
  table_.Erase(entry, [this](const SocketEntry& moved, size_t from, size_t to) {
    if (job_ != nullptr) NoteMoved(moved, from, to);
  });
}

inline void Mirror::Observe(const SocketEntry& entry, uint64_t now_ns) {
  if (entry.flags & kEntryAgeUnknown) return;
  if (now_ns < entry.entered_ns) return;  // events from CPUs slightly apart
  const uint64_t ns = now_ns - entry.entered_ns;
  DurationHistogram& h = durations_[StateIndex(entry.state)];
  // Le-buckets: the first bound at or above the duration.
  size_t bucket = 0;
  while (bucket < mirror_table_detail::kBucketBoundsNs.size() &&
         ns > mirror_table_detail::kBucketBoundsNs[bucket]) {
    ++bucket;
  }
  h.counts[bucket]++;
  h.sum += static_cast<double>(ns) * 1e-9;
  h.count++;
}

inline void Mirror::Account(const SocketEntry& entry, TcpState state,
                            int delta) {
  CountsOf(entry.netns)[StateIndex(state)] += delta;
  if (state == TcpState::kCloseWait) IndexCloseWait(entry.id, delta > 0);
}

inline void Mirror::IndexCloseWait(uint64_t id, bool in) {
  IdSlot* slot = close_wait_ids_.Find(id);
  if (in && slot == nullptr && !close_wait_ids_.full()) {
    close_wait_ids_.Insert(id);
  } else if (!in && slot != nullptr) {
    close_wait_ids_.Erase(slot);
  }
}

inline bool Mirror::CopyTuple(SocketEntry* entry, const Event& e) {
  // Early events carry partial tuples (sport 0 before the port is chosen;
  // before 6.15 a child's first event has its listener's addresses), so a
  // known field is never overwritten by an unknown one.
  const mirror_table_detail::Words esaddr =
                                       mirror_table_detail::WordsOf(e.saddr),
                                   edaddr =
                                       mirror_table_detail::WordsOf(e.daddr);
  const bool saddr_known = !mirror_table_detail::IsZero(esaddr),
             daddr_known = !mirror_table_detail::IsZero(edaddr);
  bool changed =
      (e.sport != 0 && e.sport != entry->sport) ||
      (e.dport != 0 && e.dport != entry->dport) ||
      (saddr_known &&
       !mirror_table_detail::Same(
           esaddr, mirror_table_detail::WordsOf(entry->saddr))) ||
      (daddr_known && !mirror_table_detail::Same(
                          edaddr, mirror_table_detail::WordsOf(entry->daddr)));
  if (!changed) {
    if (e.ipv6) entry->flags |= kEntryIpv6;
    return false;
  }
  UnregisterDestination(*entry);
  if (e.sport != 0) entry->sport = e.sport;
  if (e.dport != 0) entry->dport = e.dport;
  if (saddr_known) entry->saddr = e.saddr;
  if (daddr_known) entry->daddr = e.daddr;
  if (e.ipv6) entry->flags |= kEntryIpv6;
  UpdateDestination(entry);
  return true;
}

inline TupleKey Mirror::KeyOf(const SocketEntry& entry) {
  return {entry.netns, entry.sport, entry.dport, entry.saddr, entry.daddr};
}

}  // namespace tcpstated
