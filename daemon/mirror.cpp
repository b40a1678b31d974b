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

// Events looked up ahead of the one being applied (ApplyBatch): far enough
// to cover a cache miss, near enough that the lines are still cached.
constexpr size_t kPrefetchDistance = 8;

}  // namespace

Mirror::Mirror(size_t max_tracked_sockets)
    : table_(max_tracked_sockets),
      close_wait_ids_(max_tracked_sockets),
      owners_(1) {
  for (const auto& [from, to] : LegalTransitions()) {
    legal_[StateIndex(from)] |= static_cast<uint16_t>(1u << StateIndex(to));
  }
}

StateCounts& Mirror::CountsOf(uint32_t netns) {
  if (counts_cache_ != nullptr && counts_cache_netns_ == netns) {
    return *counts_cache_;
  }
  StateCounts& counts = counts_[netns];
  counts_cache_netns_ = netns;
  counts_cache_ = &counts;
  return counts;
}

MirrorStats Mirror::stats() const {
  MirrorStats s;
  s.tracked = table_.size();
  s.limit = table_.max_entries();
  s.evictions = evictions_;
  s.resyncs = resyncs_;
  s.netns_purges = netns_purges_;
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
  // DecodeEvent guarantees these; a hand-built event must not index out of
  // the per-state arrays.
  if (!IsSentSource(e.source) || StateIndex(e.oldstate) >= kStateSlots ||
      StateIndex(e.newstate) >= kStateSlots) {
    return;
  }
  events_[static_cast<size_t>(e.source)]++;
  if (e.netns_cookie != cookie_cache_ || e.netns != cookie_cache_netns_) {
    CheckNamespace(e);
  }
  switch (e.source) {
    case Source::kStateChange:
      ApplyStateChange(e);
      break;
    case Source::kReceiveReset:
    case Source::kSendReset:
      ApplyReset(e);
      break;
    case Source::kSynackRetrans:
      // sport is the listener's port (the request socket's local port).
      synack_retransmits_[ListenerKeyOf(e.netns, e.sport)]++;
      break;
    case Source::kSynRetrans:
      ApplySynRetransmit(e);
      break;
  }
}

void Mirror::ApplyBatch(const Event* events, size_t n) {
  for (size_t i = 0; i < n && i < kPrefetchDistance; ++i) {
    table_.Prefetch(events[i].id);
  }
  for (size_t i = 0; i < n; ++i) {
    if (i + kPrefetchDistance < n) {
      table_.Prefetch(events[i + kPrefetchDistance].id);
    }
    Apply(events[i]);
  }
}

void Mirror::CheckNamespace(const Event& e) {
  if (e.netns_cookie == 0) return;
  auto [it, inserted] = netns_cookies_.try_emplace(e.netns, e.netns_cookie);
  if (!inserted && it->second != e.netns_cookie) {
    // Inode numbers of namespaces are reused. A new cookie behind a known
    // inode means the old namespace is gone, and with it every socket it
    // had (the kernel purges its timewait sockets without an event).
    PurgeNamespace(e.netns);
    it->second = e.netns_cookie;
    netns_purges_++;
  }
  cookie_cache_netns_ = e.netns;
  cookie_cache_ = e.netns_cookie;
}

void Mirror::PurgeNamespace(uint32_t netns) {
  // Request sockets are counted in bulk, not tracked one by one.
  if (auto it = counts_.find(netns); it != counts_.end()) {
    it->second[StateIndex(TcpState::kNewSynRecv)] = 0;
  }
  for (auto it = synack_retransmits_.begin();
       it != synack_retransmits_.end();) {
    it = (it->first >> 16) == netns ? synack_retransmits_.erase(it)
                                    : std::next(it);
  }
  std::vector<uint64_t> ids;
  table_.ForEach([&](const SocketEntry& s) {
    if (s.netns == netns) ids.push_back(s.id);
  });
  // These sockets died with their namespace, not while a dump was being
  // taken: a new namespace's dump may reuse their tuples.
  bool reconciling = reconciling_;
  reconciling_ = false;
  for (uint64_t id : ids) {
    if (SocketEntry* entry = table_.Find(id)) {
      Remove(entry, 0, /*observe=*/false);
    }
  }
  reconciling_ = reconciling;
}

void Mirror::ApplyStateChange(const Event& e) {
  // An accepted child's first event in tp_btf mode: before 6.15 its cookie
  // is its listener's, on every kernel its address is its own. Tracked
  // under its address until its next event brings its cookie (ClaimChild).
  if (e.id_is_cookie && e.oldstate == TcpState::kListen &&
      e.newstate == TcpState::kSynRecv && e.skaddr != 0) {
    Event child = e;
    child.id = ProvisionalChildId(e.skaddr);
    // An earlier child at this address whose next event was lost: the
    // address was freed and reused since, so that child is gone.
    if (SocketEntry* stale = table_.Find(child.id)) {
      Remove(stale, e.ts_ns, /*observe=*/false);
    }
    ApplyTransition(child);
    return;
  }
  ApplyTransition(e);
}

SocketEntry* Mirror::ClaimChild(const Event& e) {
  if (provisional_children_ == 0 || !e.id_is_cookie || e.skaddr == 0 ||
      e.id == 0 || IsProvisionalId(e.id)) {
    return nullptr;
  }
  SocketEntry* entry = table_.Find(ProvisionalChildId(e.skaddr));
  if (entry == nullptr) return nullptr;
  // The same contents under the new id. A provisional entry has had only
  // its first event: it is in SYN_RECV, and no book keyed by id (the
  // CLOSE_WAIT index, listeners, orphans, expiries) names it.
  SocketEntry moved = *entry;
  table_.Erase(entry);
  provisional_children_--;
  entry = table_.Insert(e.id);
  moved.id = e.id;
  *entry = moved;
  return entry;
}

void Mirror::ApplyTransition(const Event& e) {
  const TcpState from = e.oldstate;
  const TcpState to = e.newstate;
  if ((legal_[StateIndex(from)] & (1u << StateIndex(to))) == 0) {
    invalid_[StateIndex(from)][StateIndex(to)]++;
    if (invalid_hook_) invalid_hook_(e);
  }
  // Make sure the namespace is listed even if nothing is tracked in it yet.
  CountsOf(e.netns);

  SocketEntry* entry = table_.Find(e.id);
  if (entry == nullptr) entry = ClaimChild(e);
  if (entry != nullptr && (entry->flags & kEntryTimewaitSock)) {
    // The id of a timewait socket comes back on a full socket: the
    // application kept the fd after the hand-off and reused it. A new life.
    Remove(entry, e.ts_ns, /*observe=*/false);
    entry = nullptr;
  }
  if (entry != nullptr && entry->state != from) {
    resyncs_++;
    if (from == TcpState::kClose) {
      Remove(entry, e.ts_ns, /*observe=*/false);
      entry = nullptr;
    }
  }

  // A local peer sending its FIN moves the FIN_WAIT2 orphan on the other
  // end of the connection to TIME_WAIT, as the kernel silently does.
  if (to == TcpState::kLastAck && !timewaits_.empty()) {
    PromoteOrphan(e, /*peer_reset=*/false);
  }

  if (to == TcpState::kClose) {
    if (entry == nullptr) {
      // A socket we never saw open (it predates us, or its events were
      // lost) can still hand off to a timewait socket.
      if ((from == TcpState::kFinWait2 || from == TcpState::kClosing) &&
          e.id != 0 && !e.sock_error) {
        entry = Track(e, from, e.ts_ns, kEntryAgeUnknown, Role::kUnknown);
        if (entry != nullptr) EnterTimeWait(entry, e);
      } else if (reconciling_ && e.id != 0) {
        // Closed before a running reconcile added it from its (older)
        // dump: it must not be added now.
        removed_during_reconcile_.insert(e.id);
        removed_tuples_during_reconcile_.insert(
            TupleKey{e.netns, e.sport, e.dport, e.saddr, e.daddr});
      }
      return;
    }
    CopyTuple(entry, e);
    if (entry->state != from) {
      // A lost event: take the kernel's word for the state it left.
      SetState(entry, from, e.ts_ns);
      entry->flags |= kEntryAgeUnknown;
    }
    // Only tcp_time_wait() makes a timewait socket; tcp_write_err (FIN
    // retransmits or TCP_USER_TIMEOUT exhausted) and tcp_abort close from
    // CLOSING or FIN_WAIT2 without one, with sk_err set and no reset.
    const bool handoff =
        (from == TcpState::kFinWait2 || from == TcpState::kClosing) &&
        (entry->flags & kEntryResetSeen) == 0 && !e.sock_error;
    if (handoff) {
      EnterTimeWait(entry, e);
    } else {
      Remove(entry, e.ts_ns, /*observe=*/true);
    }
    return;
  }

  if (entry == nullptr) {
    if (e.id == 0) return;  // no identity (incarnation map full): untrackable
    // Full sockets are never in these states; an (invalid, counted) event
    // from one is not a socket to adopt.
    if (from == TcpState::kTimeWait || from == TcpState::kNewSynRecv ||
        from == TcpState::kBoundInactive) {
      return;
    }
    // New socket (connect, listen, accepted child) or one that predates us:
    // for the latter the time it entered `from` is unknown.
    // Either way nothing is observed for the state it starts in: a new
    // socket's CLOSE (or a child's copied LISTEN) is not a stay.
    Role role = RoleFromTransition(from, to);
    entry = Track(e, from, e.ts_ns, kEntryAgeUnknown, role);
    if (entry == nullptr) return;
    if (role == Role::kServer) {
      if (uint64_t listener_id = listeners_.Find(e.netns, e.sport, e.saddr)) {
        if (const SocketEntry* listener = table_.Find(listener_id)) {
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
  if (!timewaits_.empty()) {
    entry = EndTakenOverTimewait(entry, e.ts_ns);
    if (entry == nullptr) return;
  }
  if (e.process_context && e.tgid != 0 &&
      (to == TcpState::kSynSent || to == TcpState::kListen ||
       entry->owner == 0)) {
    uint32_t owner = AcquireOwner(e);
    ReleaseOwner(entry->owner);
    entry->owner = owner;
  }
  if (to == TcpState::kListen) {
    entry->role = Role::kListener;
    if (entry->sport != 0) {
      listeners_.Add(entry->netns, entry->sport, entry->saddr, entry->id);
    }
  }
  if (from != to) {
    // A reset that did not close the socket (an answer to a bad segment in
    // SYN_SENT or SYN_RECV) says nothing about how it will end.
    entry->flags &= static_cast<uint8_t>(~kEntryResetSeen);
    SetState(entry, to, e.ts_ns);
    if (to == TcpState::kTimeWait) {
      // Never emitted by Linux (counted invalid above); age it like an
      // inferred one rather than keep it forever.
      MarkTimewait(entry, /*fin_wait2_substate=*/false);
      expiries_.push({entry->entered_ns + kTimeWaitNs, entry->id});
    }
  }
}

void Mirror::ApplyReset(const Event& e) {
  // A local peer's RST kills the FIN_WAIT2 orphan it was connected to.
  if (e.source == Source::kSendReset && !timewaits_.empty()) {
    PromoteOrphan(e, /*peer_reset=*/true);
  }
  SocketEntry* entry = table_.Find(e.id);
  if (entry == nullptr) entry = ClaimChild(e);
  if (entry == nullptr) return;
  if (entry->flags & kEntryTimewaitSock) {
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

void Mirror::ApplySynRetransmit(const Event& e) {
  // The port connect() chose after its CLOSE->SYN_SENT event: from now on
  // the socket holds it towards its destination.
  SocketEntry* entry = table_.Find(e.id);
  if (entry == nullptr || entry->state != TcpState::kSynSent) return;
  CopyTuple(entry, e);
}

void Mirror::Expire(uint64_t now_ns) {
  while (!expiries_.empty() && expiries_.top().at_ns <= now_ns) {
    Expiry x = expiries_.top();
    expiries_.pop();
    SocketEntry* entry = table_.Find(x.id);
    // Stale items (the entry left TIME_WAIT) are dropped. The deadline is
    // recomputed, since the entry may have re-entered TIME_WAIT or its
    // namespace's tcp_fin_timeout may have changed since it was queued.
    if (entry == nullptr || (entry->flags & kEntryTimewaitSock) == 0) continue;
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
  // At net.ipv4.tcp_max_tw_buckets the kernel makes no timewait socket: the
  // hand-off looks the same, but the connection is simply gone.
  auto limit = max_timewait_.find(entry->netns);
  if (limit != max_timewait_.end() &&
      timewait_socks_[entry->netns] >= limit->second) {
    Remove(entry, e.ts_ns, /*observe=*/true);
    return;
  }
  // CLOSING -> CLOSE means both FINs were exchanged, as does FIN_WAIT2 ->
  // CLOSE after the peer's FIN: TIME_WAIT substate. FIN_WAIT2 -> CLOSE
  // without it is an orphan that the kernel keeps as a timewait socket in
  // the FIN_WAIT2 substate for at most tcp_fin_timeout from now.
  if (e.oldstate == TcpState::kFinWait2 && !e.peer_fin) {
    // Still FIN_WAIT2 for ss and for us; its clock restarts at the
    // hand-off, which is when the kernel's timer starts.
    entry->entered_ns = e.ts_ns;
    MarkTimewait(entry, /*fin_wait2_substate=*/true);
  } else {
    SetState(entry, TcpState::kTimeWait, e.ts_ns);
    MarkTimewait(entry, /*fin_wait2_substate=*/false);
  }
  expiries_.push({entry->entered_ns + TimeWaitLifetime(*entry), entry->id});
}

void Mirror::PromoteOrphan(const Event& peer, bool peer_reset) {
  TupleKey key{peer.netns, peer.dport, peer.sport, peer.daddr, peer.saddr};
  auto it = timewaits_.find(key);
  if (it == timewaits_.end()) return;
  SocketEntry* orphan = table_.Find(it->second);
  if (orphan == nullptr) {
    timewaits_.erase(it);
    return;
  }
  if ((orphan->flags & kEntryFinWait2Substate) == 0) return;
  if (peer_reset) {
    // A timewait socket in FIN_WAIT2 dies on the peer's RST.
    Remove(orphan, peer.ts_ns, /*observe=*/true);
    return;
  }
  // Still a timewait socket (and indexed as one), now in TIME_WAIT.
  orphan->flags &= static_cast<uint8_t>(~kEntryFinWait2Substate);
  SetState(orphan, TcpState::kTimeWait, peer.ts_ns);
  expiries_.push({orphan->entered_ns + kTimeWaitNs, orphan->id});
}

Mirror::TupleKey Mirror::KeyOf(const SocketEntry& entry) {
  return {entry.netns, entry.sport, entry.dport, entry.saddr, entry.daddr};
}

size_t Mirror::TupleKeyHash::operator()(const TupleKey& k) const {
  uint64_t h = (static_cast<uint64_t>(k.netns) << 32) ^
               (static_cast<uint64_t>(k.sport) << 16) ^ k.dport;
  for (size_t i = 0; i < k.saddr.size(); i += 8) {
    uint64_t a, b;
    std::memcpy(&a, k.saddr.data() + i, 8);
    std::memcpy(&b, k.daddr.data() + i, 8);
    h = (h ^ a) * 0x9e3779b97f4a7c15ULL;
    h = (h ^ b) * 0x9e3779b97f4a7c15ULL;
  }
  return static_cast<size_t>(h ^ (h >> 29));
}

void Mirror::Unindex(const SocketEntry& entry) {
  if ((entry.flags & kEntryTimewaitSock) == 0) return;
  auto it = timewaits_.find(KeyOf(entry));
  if (it != timewaits_.end() && it->second == entry.id) timewaits_.erase(it);
}

SocketEntry* Mirror::EndTakenOverTimewait(SocketEntry* entry, uint64_t now_ns) {
  if (entry->sport == 0 || entry->dport == 0) return entry;
  auto it = timewaits_.find(KeyOf(*entry));
  if (it == timewaits_.end() || it->second == entry->id) return entry;
  const uint64_t id = entry->id;
  SocketEntry* timewait = table_.Find(it->second);
  if (timewait == nullptr) {
    timewaits_.erase(it);
    return entry;
  }
  // connect() under tcp_tw_reuse (TcpExt TWRecycled), or a SYN that a
  // TIME_WAIT socket accepted as a new connection: the kernel freed the
  // timewait socket without an event, and the port is held once.
  Remove(timewait, now_ns, /*observe=*/true);
  return table_.Find(id);
}

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
  if (reconciling_) {
    removed_during_reconcile_.insert(entry->id);
    removed_tuples_during_reconcile_.insert(KeyOf(*entry));
  }
  Account(*entry, entry->state, -1);
  UnregisterDestination(*entry);
  if (entry->state == TcpState::kListen) {
    listeners_.Remove(entry->netns, entry->sport, entry->id);
  }
  UnmarkTimewait(entry);
  ReleaseOwner(entry->owner);
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

Mirror::DestinationKey Mirror::DestinationOf(const SocketEntry& entry) {
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
  destinations_[DestinationOf(*entry)]++;
  entry->flags |= kEntryDestCounted;
}

void Mirror::UnregisterDestination(SocketEntry& entry) {
  if ((entry.flags & kEntryDestCounted) == 0) return;
  entry.flags &= static_cast<uint8_t>(~kEntryDestCounted);
  auto it = destinations_.find(DestinationOf(entry));
  if (it != destinations_.end() && --it->second == 0) destinations_.erase(it);
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

namespace tcpstated {

size_t Mirror::DestinationKeyHash::operator()(const DestinationKey& k) const {
  return TupleKeyHash()({k.netns, 0, k.dport, k.saddr, k.daddr});
}

void Mirror::SetOwner(uint64_t id, const Owner& owner) {
  SocketEntry* entry = table_.Find(id);
  if (entry == nullptr || entry->owner != 0) return;
  Event e;
  e.tgid = owner.tgid;
  e.cgroup_id = owner.cgroup_id;
  size_t n = std::min(owner.comm.size(), e.comm.size() - 1);
  std::memcpy(e.comm.data(), owner.comm.data(), n);
  entry->owner = AcquireOwner(e);
}

void Mirror::DropNamespace(uint32_t netns) {
  PurgeNamespace(netns);
  counts_.erase(netns);
  counts_cache_ = nullptr;
  cookie_cache_ = 0;
  cookie_cache_netns_ = 0;
  port_ranges_.erase(netns);
  max_timewait_.erase(netns);
  timewait_socks_.erase(netns);
  netns_cookies_.erase(netns);
  fin_timeouts_.erase(netns);
}

void Mirror::SetMaxTimewait(uint32_t netns, uint64_t max_tw_buckets) {
  max_timewait_[netns] = max_tw_buckets;
}

void Mirror::MarkTimewait(SocketEntry* entry, bool fin_wait2_substate) {
  if ((entry->flags & kEntryTimewaitSock) == 0) timewait_socks_[entry->netns]++;
  entry->flags |= kEntryTimewaitSock;
  if (fin_wait2_substate) entry->flags |= kEntryFinWait2Substate;
  if (entry->sport != 0 && entry->dport != 0) {
    timewaits_[KeyOf(*entry)] = entry->id;
  }
}

void Mirror::UnmarkTimewait(SocketEntry* entry) {
  if (entry->flags & kEntryTimewaitSock) {
    auto it = timewait_socks_.find(entry->netns);
    if (it != timewait_socks_.end() && it->second > 0) it->second--;
  }
  Unindex(*entry);
  entry->flags &=
      static_cast<uint8_t>(~(kEntryTimewaitSock | kEntryFinWait2Substate));
}

void Mirror::SetPortRange(uint32_t netns, uint16_t lo, uint16_t hi) {
  port_ranges_[netns] = {lo, hi};
}

bool Mirror::InEphemeralRange(uint32_t netns, uint16_t port) const {
  auto it = port_ranges_.find(netns);
  return it == port_ranges_.end() ||
         (port >= it->second.first && port <= it->second.second);
}

void Mirror::SetRequestSockets(uint32_t netns, uint64_t count) {
  counts_[netns][StateIndex(TcpState::kNewSynRecv)] =
      static_cast<int64_t>(count);
}

std::unordered_map<uint32_t, uint64_t> Mirror::TimewaitSockets() const {
  std::unordered_map<uint32_t, uint64_t> out;
  for (const auto& [netns, counts] : counts_) {
    auto it = timewait_socks_.find(netns);
    out[netns] = it != timewait_socks_.end() ? it->second : 0;
  }
  return out;
}

void Mirror::BeginReconcile() {
  reconciling_ = true;
  removed_during_reconcile_.clear();
  removed_tuples_during_reconcile_.clear();
}

namespace {

// The timewait lifetime a dump's socket is in: its substate decides.
uint64_t DumpLifetimeNs(const DiagSocket& d, uint32_t fin_timeout_s) {
  return d.state == TcpState::kFinWait2
             ? static_cast<uint64_t>(fin_timeout_s) * kNsPerSec
             : kTimeWaitNs;
}

}  // namespace

SocketEntry* Mirror::Seed(
    const DiagSocket& d, uint32_t netns, uint64_t now_ns,
    uint32_t fin_timeout_s,
    const std::unordered_map<uint32_t, std::vector<uint16_t>>& listening) {
  Event e;
  e.id = d.cookie;
  e.netns = netns;
  e.sport = d.sport;
  e.dport = d.dport;
  e.saddr = d.saddr;
  e.daddr = d.daddr;
  e.ipv6 = d.ipv6;
  e.ts_ns = now_ns;
  // A socket on a port some local listener owns was accepted from it;
  // otherwise it was opened by connect().
  // A socket whose local port is outside the ephemeral range and has no
  // listener (it closed since) is of unknown origin.
  Role role = InEphemeralRange(netns, d.sport) ? Role::kClient : Role::kUnknown;
  if (d.state == TcpState::kListen) {
    role = Role::kListener;
  } else if (auto it = listening.find(netns); it != listening.end()) {
    for (uint16_t port : it->second) {
      if (port == d.sport) role = Role::kServer;
    }
  }
  // Ages: a timewait socket's remaining time is in the dump (exact); for
  // any other socket the time it entered its state is unknown, and its age
  // counts from now (a lower bound).
  uint64_t entered = now_ns;
  uint8_t flags = kEntryAgeUnknown;
  if (d.timewait) {
    uint64_t life = DumpLifetimeNs(d, fin_timeout_s);
    uint64_t left = static_cast<uint64_t>(d.expires_ms) * 1000000ULL;
    entered = now_ns - std::min(now_ns, life > left ? life - left : 0);
  }
  SocketEntry* entry = Track(e, d.state, entered, flags, role);
  if (entry == nullptr) return nullptr;
  if (d.state == TcpState::kListen && d.sport != 0) {
    listeners_.Add(netns, d.sport, d.saddr, entry->id);
  }
  if (d.timewait) {
    MarkTimewait(entry, d.state == TcpState::kFinWait2);
    expiries_.push({entry->entered_ns + TimeWaitLifetime(*entry), entry->id});
  }
  return entry;
}

void Mirror::CorrectState(SocketEntry* entry, const DiagSocket& d,
                          uint64_t now_ns, uint32_t fin_timeout_s) {
  UnmarkTimewait(entry);
  if (entry->state == TcpState::kListen) {
    listeners_.Remove(entry->netns, entry->sport, entry->id);
  }
  if (d.state == TcpState::kListen && entry->sport != 0) {
    entry->role = Role::kListener;
    listeners_.Add(entry->netns, entry->sport, entry->saddr, entry->id);
  }
  Account(*entry, entry->state, -1);
  Account(*entry, d.state, +1);
  entry->state = d.state;
  entry->flags |= kEntryAgeUnknown;
  entry->flags &= static_cast<uint8_t>(~kEntryAgeAsked);
  entry->entered_ns = now_ns;
  if (d.timewait) {
    uint64_t life = DumpLifetimeNs(d, fin_timeout_s);
    uint64_t left = static_cast<uint64_t>(d.expires_ms) * 1000000ULL;
    entry->entered_ns =
        now_ns - std::min(now_ns, life > left ? life - left : 0);
    MarkTimewait(entry, d.state == TcpState::kFinWait2);
    expiries_.push({entry->entered_ns + TimeWaitLifetime(*entry), entry->id});
  }
}

namespace {

bool CloseWaitAgeToAsk(const SocketEntry& entry) {
  return (entry.flags & (kEntryAgeUnknown | kEntryAgeAsked)) ==
         kEntryAgeUnknown;
}

}  // namespace

std::vector<uint32_t> Mirror::NamespacesWithUnknownCloseWaitAges() const {
  std::unordered_set<uint32_t> found;
  ForEachCloseWait([&found](const SocketEntry& entry) {
    if (CloseWaitAgeToAsk(entry)) found.insert(entry.netns);
  });
  return {found.begin(), found.end()};
}

size_t Mirror::AgeCloseWaitFromKernel(
    const std::unordered_map<uint32_t, std::vector<DiagSocket>>& dumps,
    uint64_t now_ns) {
  size_t aged = 0;
  for (const auto& [netns, sockets] : dumps) {
    for (const DiagSocket& d : sockets) {
      if (d.state != TcpState::kCloseWait || d.last_ack_ms == kNoTcpInfo) {
        continue;
      }
      SocketEntry* entry = table_.Find(d.cookie);
      if (entry == nullptr || entry->netns != netns ||
          entry->state != TcpState::kCloseWait || !CloseWaitAgeToAsk(*entry)) {
        continue;
      }
      const uint64_t since = static_cast<uint64_t>(d.last_ack_ms) * 1000000ULL;
      entry->entered_ns =
          std::min(entry->entered_ns, now_ns - std::min(now_ns, since));
      entry->flags |= kEntryAgeAsked;
      aged++;
    }
  }
  // The rest were not in the replies (an incarnation id, or closed since):
  // not asked again at every reconcile.
  std::vector<uint64_t> rest;
  ForEachCloseWait([&](const SocketEntry& entry) {
    if (CloseWaitAgeToAsk(entry) && dumps.count(entry.netns) != 0) {
      rest.push_back(entry.id);
    }
  });
  for (uint64_t id : rest) {
    if (SocketEntry* entry = table_.Find(id)) entry->flags |= kEntryAgeAsked;
  }
  return aged;
}

struct Mirror::ReconcileJob {
  enum class Phase { kMatch, kIndex, kSeed, kSweep, kDone };
  std::vector<NamespaceDump> dumps;
  uint64_t dump_start_ns = 0;
  uint64_t now_ns = 0;
  bool seeding = false;
  uint8_t epoch = 0;
  std::unordered_map<uint32_t, const NamespaceDump*> by_netns;
  std::unordered_map<uint32_t, std::vector<uint16_t>> listening;
  Phase phase = Phase::kMatch;
  // kMatch: position in dumps; request sockets of the current namespace.
  size_t dump_index = 0;
  size_t socket_index = 0;
  uint64_t request_sockets = 0;
  // Dump sockets no cookie matched, for the 4-tuple pass and seeding.
  std::vector<std::pair<const DiagSocket*, uint32_t>> unmatched;
  size_t unmatched_index = 0;
  // kIndex: unconfirmed entries whose id is not the kernel's cookie (the
  // classic-tracepoint mode's incarnation ids), by 4-tuple.
  std::unordered_map<TupleKey, uint64_t, TupleKeyHash> by_tuple;
  // kIndex and kSweep: the next table slot, and the table's capacity when
  // the walk began (a rehash reorders the slots: the walk starts over).
  size_t slot = 0;
  size_t walk_capacity = 0;
  ReconcileStats stats;

  void Correct(TcpState state) {
    if (!seeding) stats.corrections[StateIndex(state)]++;
  }
};

Mirror::~Mirror() = default;

Mirror::ReconcileStats Mirror::Reconcile(
    const std::vector<NamespaceDump>& dumps, uint64_t dump_start_ns,
    uint64_t now_ns, bool seeding) {
  StartReconcile(dumps, dump_start_ns, now_ns, seeding);
  while (!ContinueReconcile(SIZE_MAX)) {
  }
  return FinishReconcile();
}

void Mirror::StartReconcile(const std::vector<NamespaceDump>& dumps,
                            uint64_t dump_start_ns, uint64_t now_ns,
                            bool seeding) {
  job_ = std::make_unique<ReconcileJob>();
  ReconcileJob& job = *job_;
  job.dump_start_ns = dump_start_ns;
  job.now_ns = now_ns;
  job.seeding = seeding;
  reconcile_epoch_ = reconcile_epoch_ == 255 ? 1 : reconcile_epoch_ + 1;
  job.epoch = reconcile_epoch_;
  // One dump per namespace (the last given), and only namespaces with one
  // take part: the others are left alone.
  std::unordered_map<uint32_t, size_t> last;
  for (size_t k = 0; k < dumps.size(); ++k) {
    if (dumps[k].sockets != nullptr) last[dumps[k].netns] = k;
  }
  for (size_t k = 0; k < dumps.size(); ++k) {
    if (dumps[k].sockets != nullptr && last[dumps[k].netns] == k) {
      job.dumps.push_back(dumps[k]);
    }
  }
  for (const NamespaceDump& dump : job.dumps) {
    if (dump.netns_cookie != 0) {
      auto [it, inserted] =
          netns_cookies_.try_emplace(dump.netns, dump.netns_cookie);
      if (!inserted && it->second != dump.netns_cookie) {
        PurgeNamespace(dump.netns);
        it->second = dump.netns_cookie;
        netns_purges_++;
        cookie_cache_ = 0;
        cookie_cache_netns_ = 0;
      }
    }
    job.by_netns[dump.netns] = &dump;
    counts_.try_emplace(dump.netns);
    fin_timeouts_[dump.netns] =
        static_cast<uint64_t>(dump.fin_timeout_s) * kNsPerSec;
    for (const DiagSocket& d : *dump.sockets) {
      if (d.state == TcpState::kListen)
        job.listening[dump.netns].push_back(d.sport);
    }
  }
}

bool Mirror::ContinueReconcile(size_t budget) {
  if (!job_) return true;
  ReconcileJob& job = *job_;
  using Phase = ReconcileJob::Phase;
  while (budget > 0 && job.phase != Phase::kDone) {
    switch (job.phase) {
      case Phase::kMatch:
        if (ReconcileMatch(job, &budget)) {
          job.phase = job.unmatched.empty() ? Phase::kSweep : Phase::kIndex;
          job.slot = 0;
          job.walk_capacity = table_.capacity();
        }
        break;
      case Phase::kIndex:
        if (ReconcileIndex(job, &budget)) job.phase = Phase::kSeed;
        break;
      case Phase::kSeed:
        if (ReconcileSeed(job, &budget)) {
          job.phase = Phase::kSweep;
          job.slot = 0;
          job.walk_capacity = table_.capacity();
        }
        break;
      case Phase::kSweep:
        if (ReconcileSweep(job, &budget)) job.phase = Phase::kDone;
        break;
      case Phase::kDone:
        break;
    }
  }
  return job.phase == Phase::kDone;
}

Mirror::ReconcileStats Mirror::FinishReconcile() {
  ReconcileStats stats;
  if (job_) stats = job_->stats;
  job_.reset();
  // After a peak of sockets the table and the CLOSE_WAIT index give their
  // memory back (at most once per reconcile; a storm's dip does not).
  table_.Shrink();
  close_wait_ids_.Shrink();
  reconciling_ = false;
  removed_during_reconcile_.clear();
  removed_tuples_during_reconcile_.clear();
  return stats;
}

void Mirror::Confirm(SocketEntry* entry, const DiagSocket& d, ReconcileJob& job,
                     uint32_t fin_timeout_s) {
  entry->reconcile_mark = job.epoch;
  bool same = entry->state == d.state &&
              ((entry->flags & kEntryTimewaitSock) != 0) == d.timewait;
  // What the mirror learned after the dump began is newer than the dump.
  if (!same && entry->entered_ns < job.dump_start_ns) {
    job.Correct(d.state);
    job.stats.changed++;
    CorrectState(entry, d, job.now_ns, fin_timeout_s);
  }
}

// Pass 1: the kernel's sockets, matched by cookie. The rest wait for the
// 4-tuple pass (classic-tracepoint ids are not cookies).
bool Mirror::ReconcileMatch(ReconcileJob& job, size_t* budget) {
  while (job.dump_index < job.dumps.size()) {
    const NamespaceDump& dump = job.dumps[job.dump_index];
    const std::vector<DiagSocket>& sockets = *dump.sockets;
    for (; job.socket_index < sockets.size(); ++job.socket_index) {
      if (*budget == 0) return false;
      --*budget;
      const DiagSocket& d = sockets[job.socket_index];
      if (d.state == TcpState::kNewSynRecv) {
        job.request_sockets++;
        continue;
      }
      SocketEntry* entry = d.cookie != 0 ? table_.Find(d.cookie) : nullptr;
      if (entry == nullptr || entry->netns != dump.netns) {
        job.unmatched.emplace_back(&d, dump.netns);
        continue;
      }
      Confirm(entry, d, job, dump.fin_timeout_s);
    }
    CountsOf(dump.netns)[StateIndex(TcpState::kNewSynRecv)] =
        static_cast<int64_t>(job.request_sockets);
    job.request_sockets = 0;
    job.socket_index = 0;
    job.dump_index++;
  }
  return true;
}

// The mirror's unconfirmed sockets in the dumped namespaces, by 4-tuple.
bool Mirror::ReconcileIndex(ReconcileJob& job, size_t* budget) {
  if (table_.capacity() != job.walk_capacity) {
    job.by_tuple.clear();
    job.slot = 0;
    job.walk_capacity = table_.capacity();
  }
  for (; job.slot < table_.capacity(); ++job.slot) {
    if (*budget == 0) return false;
    --*budget;
    const SocketEntry* s = table_.AtSlot(job.slot);
    if (s == nullptr || s->reconcile_mark == job.epoch ||
        job.by_netns.count(s->netns) == 0) {
      continue;
    }
    job.by_tuple.emplace(KeyOf(*s), s->id);
  }
  return true;
}

// Pass 2: by 4-tuple, then seed what is still unknown.
bool Mirror::ReconcileSeed(ReconcileJob& job, size_t* budget) {
  for (; job.unmatched_index < job.unmatched.size(); ++job.unmatched_index) {
    if (*budget == 0) return false;
    *budget -= std::min<size_t>(*budget, 4);
    const auto& [d, netns] = job.unmatched[job.unmatched_index];
    const uint32_t fin_timeout_s = job.by_netns[netns]->fin_timeout_s;
    TupleKey key{netns, d->sport, d->dport, d->saddr, d->daddr};
    auto it = job.by_tuple.find(key);
    if (it != job.by_tuple.end()) {
      SocketEntry* entry = table_.Find(it->second);
      job.by_tuple.erase(it);
      if (entry != nullptr && entry->reconcile_mark != job.epoch) {
        Confirm(entry, *d, job, fin_timeout_s);
        continue;
      }
    }
    // Closed while the dump was being taken: the dump is older news. Ids of
    // classic-tracepoint sockets are not cookies, so their tuples count too.
    if (removed_during_reconcile_.count(d->cookie) != 0 || d->cookie == 0 ||
        removed_tuples_during_reconcile_.count(key) != 0) {
      continue;
    }
    // Known already: under this cookie in another namespace, or opened
    // (and reported by its events) since the dump.
    if (table_.Find(d->cookie) != nullptr) continue;
    // A timewait socket whose timer is already due: its time is up, and the
    // mirror expired it (at exactly 60 s, or tcp_fin_timeout); the kernel's
    // timer wheel fires up to an eighth of the timeout later. Adding it back
    // for that moment would only count a correction.
    if (d->timewait && d->expires_ms == 0) continue;
    if (SocketEntry* entry =
            Seed(*d, netns, job.now_ns, fin_timeout_s, job.listening)) {
      entry->reconcile_mark = job.epoch;
      job.Correct(d->state);
      job.stats.added++;
    }
  }
  return true;
}

// Pass 3: what the kernel no longer has.
bool Mirror::ReconcileSweep(ReconcileJob& job, size_t* budget) {
  if (table_.capacity() != job.walk_capacity) {
    job.slot = 0;
    job.walk_capacity = table_.capacity();
  }
  while (job.slot < table_.capacity()) {
    if (*budget == 0) return false;
    --*budget;
    SocketEntry* entry = table_.AtSlot(job.slot);
    if (entry == nullptr || entry->reconcile_mark == job.epoch ||
        entry->entered_ns >= job.dump_start_ns ||
        job.by_netns.count(entry->netns) == 0) {
      job.slot++;
      continue;
    }
    job.Correct(entry->state);
    job.stats.removed++;
    // Erasing can move a later entry of the probe run into this slot:
    // look at it again.
    Remove(entry, job.now_ns, /*observe=*/false);
  }
  return true;
}

}  // namespace tcpstated
