#include "tcpstated/mirror.h"

#include <algorithm>
#include <cstring>

#include "tcpstated/transition_table.h"

namespace tcpstated {
namespace {

// How many neighbours of a new socket's home slot the eviction policy looks
// at: O(1) per eviction, and with a uniform hash the oldest of 16 random
// entries is old enough.
constexpr size_t kEvictionWindow = 16;

Role RoleFromTransition(TcpState from, TcpState to) {
  if (from == TcpState::kClose && to == TcpState::kSynSent) {
    return Role::kClient;
  }
  if (from == TcpState::kListen && to == TcpState::kSynRecv) {
    return Role::kServer;
  }
  if (to == TcpState::kListen) return Role::kListener;
  return Role::kUnknown;
}

bool IsZero(const Address& a) {
  return std::all_of(a.begin(), a.end(), [](uint8_t b) { return b == 0; });
}

}  // namespace

Mirror::Mirror(size_t max_tracked_sockets)
    : table_(max_tracked_sockets), owners_(1) {}

MirrorStats Mirror::stats() const {
  MirrorStats s;
  s.tracked = table_.size();
  s.limit = table_.max_entries();
  s.evictions = evictions_;
  s.resyncs = resyncs_;
  s.events = events_;
  return s;
}

const Owner* Mirror::OwnerOf(const SocketEntry& entry) const {
  if (entry.owner == 0 || entry.owner >= owners_.size()) return nullptr;
  return &owners_[entry.owner].owner;
}

void Mirror::SetFinTimeout(uint32_t netns, uint64_t ns) {
  fin_timeouts_[netns] = ns;
}

void Mirror::Apply(const Event& e) {
  events_[static_cast<size_t>(e.source)]++;
  switch (e.source) {
    case Source::kStateChange:
      ApplyStateChange(e);
      break;
    case Source::kReceiveReset:
    case Source::kSendReset:
      ApplyReset(e);
      break;
    case Source::kDestroy:
      ApplyDestroy(e);
      break;
    case Source::kSynackRetrans:
      break;  // per-listener counters live with the detectors
  }
}

void Mirror::ApplyStateChange(const Event& e) {
  const TcpState from = e.oldstate;
  const TcpState to = e.newstate;
  if (!IsLegalTransition(from, to)) {
    invalid_[StateIndex(from)][StateIndex(to)]++;
    if (invalid_hook_) invalid_hook_(e);
  }
  // Make sure the namespace is listed even if nothing is tracked in it yet.
  counts_.try_emplace(e.netns);

  SocketEntry* entry = table_.Find(e.id);
  if (entry != nullptr && entry->state != from) {
    // An inferred TIME_WAIT entry whose id comes back (the application kept
    // the fd after a hand-off and reused it) is a new life, not a desync.
    if (entry->state != TcpState::kTimeWait) resyncs_++;
    if (entry->state == TcpState::kTimeWait || from == TcpState::kClose) {
      Remove(entry, e.ts_ns, /*observe=*/false);
      entry = nullptr;
    }
  }

  if (to == TcpState::kClose) {
    if (entry == nullptr) {
      // A socket we never saw open (it predates us, or its events were
      // lost) can still hand off to a timewait socket.
      if ((from == TcpState::kFinWait2 || from == TcpState::kClosing) &&
          e.id != 0) {
        entry = Track(e, from, e.ts_ns, kEntryAgeUnknown);
        if (entry != nullptr) EnterTimeWait(entry, e);
      }
      return;
    }
    CopyTuple(entry, e);
    const bool handoff =
        (from == TcpState::kFinWait2 || from == TcpState::kClosing) &&
        (entry->flags & kEntryResetSeen) == 0;
    if (handoff) {
      EnterTimeWait(entry, e);
    } else {
      Remove(entry, e.ts_ns, /*observe=*/true);
    }
    return;
  }

  if (entry == nullptr) {
    if (e.id == 0) return;  // no identity (incarnation map full): untrackable
    // New socket (connect, listen, accepted child) or one that predates us:
    // for the latter the time it entered `from` is unknown.
    Role role = RoleFromTransition(from, to);
    uint8_t flags = role == Role::kUnknown ? kEntryAgeUnknown : 0;
    entry = Track(e, from, e.ts_ns, flags);
    if (entry == nullptr) return;
    entry->role = role;
    if (role == Role::kServer) {
      auto it = listeners_.find({e.netns, e.sport});
      if (it != listeners_.end()) {
        if (const SocketEntry* listener = table_.Find(it->second)) {
          entry->owner = listener->owner;
          AddOwnerRef(entry->owner);
        }
      }
    }
  } else if (entry->state != from) {
    SetState(entry, from, e.ts_ns);  // resynchronise before moving on
    entry->flags |= kEntryAgeUnknown;
  }

  CopyTuple(entry, e);
  if (e.process_context && e.tgid != 0 &&
      (to == TcpState::kSynSent || to == TcpState::kListen ||
       entry->owner == 0)) {
    uint32_t owner = AcquireOwner(e);
    ReleaseOwner(entry->owner);
    entry->owner = owner;
  }
  if (to == TcpState::kListen) {
    entry->role = Role::kListener;
    if (entry->sport != 0) listeners_[{entry->netns, entry->sport}] = entry->id;
  }
  if (from != to) SetState(entry, to, e.ts_ns);
}

void Mirror::ApplyReset(const Event& e) {
  SocketEntry* entry = table_.Find(e.id);
  if (entry == nullptr) return;
  if (entry->state == TcpState::kTimeWait) {
    // tcp_send_reset after CLOSE (close() with unread data, disconnect): the
    // FIN_WAIT2/CLOSING -> CLOSE we took for a hand-off was an abort. The
    // BPF side never reports resets of real timewait sockets.
    if (e.source == Source::kSendReset && e.oldstate == TcpState::kClose) {
      Remove(entry, e.ts_ns, /*observe=*/false);
    }
    return;
  }
  entry->flags |= kEntryResetSeen;
}

void Mirror::ApplyDestroy(const Event& e) {
  SocketEntry* entry = table_.Find(e.id);
  // A destroyed full socket is gone unless a timewait socket took its place.
  if (entry != nullptr && entry->state != TcpState::kTimeWait) {
    Remove(entry, e.ts_ns, /*observe=*/true);
  }
}

void Mirror::Expire(uint64_t now_ns) {
  while (!expiries_.empty() && expiries_.top().at_ns <= now_ns) {
    Expiry x = expiries_.top();
    expiries_.pop();
    SocketEntry* entry = table_.Find(x.id);
    // Stale items (the entry left TIME_WAIT) are dropped. The deadline is
    // recomputed, since the entry may have re-entered TIME_WAIT or its
    // namespace's tcp_fin_timeout may have changed since it was queued.
    if (entry == nullptr || entry->state != TcpState::kTimeWait) continue;
    uint64_t deadline = entry->entered_ns + TimeWaitLifetime(*entry);
    if (deadline <= now_ns) {
      Remove(entry, now_ns, /*observe=*/true);
    } else {
      expiries_.push({deadline, x.id});
    }
  }
}

uint64_t Mirror::TimeWaitLifetime(const SocketEntry& entry) const {
  if (entry.flags & kEntryFinWait2Substate) {
    auto it = fin_timeouts_.find(entry.netns);
    return it != fin_timeouts_.end() ? it->second : 60 * kNsPerSec;
  }
  return kTimeWaitNs;
}

void Mirror::EnterTimeWait(SocketEntry* entry, const Event& e) {
  // CLOSING -> CLOSE means both FINs were exchanged: TIME_WAIT substate.
  // FIN_WAIT2 -> CLOSE without the peer's FIN is an orphaned FIN_WAIT2
  // socket that lives at most tcp_fin_timeout unless the FIN arrives.
  bool fin_wait2_substate = e.oldstate == TcpState::kFinWait2 && !e.peer_fin;
  SetState(entry, TcpState::kTimeWait, e.ts_ns);
  entry->flags &= static_cast<uint8_t>(~kEntryFinWait2Substate);
  if (fin_wait2_substate) entry->flags |= kEntryFinWait2Substate;
  expiries_.push({entry->entered_ns + TimeWaitLifetime(*entry), entry->id});
}

SocketEntry* Mirror::Track(const Event& e, TcpState state, uint64_t entered_ns,
                           uint8_t flags) {
  if (table_.max_entries() == 0) return nullptr;
  if (table_.full()) EvictOne(e.id, e.ts_ns);
  SocketEntry* entry = table_.Insert(e.id);
  entry->netns = e.netns;
  entry->state = state;
  entry->entered_ns = entered_ns;
  entry->flags = flags;
  CopyTuple(entry, e);
  Count(entry->netns, state, +1);
  return entry;
}

void Mirror::EvictOne(uint64_t near_id, uint64_t now_ns) {
  // Prefer an inferred TIME_WAIT entry (the kernel will confirm it at the
  // next reconcile), then the entry that has been in its state longest.
  uint64_t victim = 0;
  bool victim_tw = false;
  uint64_t victim_entered = UINT64_MAX;
  table_.ForEachNear(near_id, kEvictionWindow, [&](const SocketEntry& s) {
    bool tw = s.state == TcpState::kTimeWait;
    if ((tw && !victim_tw) ||
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
  Count(entry->netns, entry->state, -1);
  Count(entry->netns, state, +1);
  entry->state = state;
  entry->entered_ns = now_ns;
  entry->flags &= static_cast<uint8_t>(~kEntryAgeUnknown);
}

void Mirror::Remove(SocketEntry* entry, uint64_t now_ns, bool observe) {
  if (observe) Observe(*entry, now_ns);
  Count(entry->netns, entry->state, -1);
  if (entry->state == TcpState::kListen) {
    auto it = listeners_.find({entry->netns, entry->sport});
    if (it != listeners_.end() && it->second == entry->id) listeners_.erase(it);
  }
  ReleaseOwner(entry->owner);
  table_.Erase(entry);
}

void Mirror::Observe(const SocketEntry& entry, uint64_t now_ns) {
  if (entry.flags & kEntryAgeUnknown) return;
  if (now_ns < entry.entered_ns) return;  // events from CPUs slightly apart
  double seconds = static_cast<double>(now_ns - entry.entered_ns) / 1e9;
  DurationHistogram& h = durations_[StateIndex(entry.state)];
  auto it = std::lower_bound(kDurationBuckets.begin(), kDurationBuckets.end(),
                             seconds);
  h.counts[static_cast<size_t>(it - kDurationBuckets.begin())]++;
  h.sum += seconds;
  h.count++;
}

void Mirror::Count(uint32_t netns, TcpState state, int64_t delta) {
  counts_[netns][StateIndex(state)] += delta;
}

void Mirror::CopyTuple(SocketEntry* entry, const Event& e) {
  // Early events carry partial tuples (sport 0 before the port is chosen;
  // before 6.15 a child's first event has its listener's addresses), so a
  // known field is never overwritten by an unknown one.
  if (e.sport != 0) entry->sport = e.sport;
  if (e.dport != 0) entry->dport = e.dport;
  if (!IsZero(e.saddr)) entry->saddr = e.saddr;
  if (!IsZero(e.daddr)) entry->daddr = e.daddr;
  if (e.ipv6) {
    entry->flags |= kEntryIpv6;
  }
}

uint32_t Mirror::AcquireOwner(const Event& e) {
  uint32_t index;
  if (!free_owners_.empty()) {
    index = free_owners_.back();
    free_owners_.pop_back();
  } else {
    index = static_cast<uint32_t>(owners_.size());
    owners_.emplace_back();
  }
  OwnerSlot& slot = owners_[index];
  slot.owner.tgid = e.tgid;
  slot.owner.cgroup_id = e.cgroup_id;
  slot.owner.comm.assign(e.comm.data(), strnlen(e.comm.data(), e.comm.size()));
  slot.refs = 1;
  return index;
}

void Mirror::AddOwnerRef(uint32_t owner) {
  if (owner != 0) owners_[owner].refs++;
}

void Mirror::ReleaseOwner(uint32_t owner) {
  if (owner == 0) return;
  OwnerSlot& slot = owners_[owner];
  if (--slot.refs == 0) {
    slot.owner = Owner{};
    free_owners_.push_back(owner);
  }
}

}  // namespace tcpstated
