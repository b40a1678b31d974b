// Applying decoded events to the mirror: the TCP state machine per socket.
// What each entry is counted in (the table's books) is in mirror_table.cpp,
// TIME_WAIT in mirror_timewait.cpp.
#include "tcpstated/mirror.h"

#include <cstring>

#include "daemon/core/mirror/mirror_reconcile_job.h"
#include "daemon/core/mirror/mirror_table_inl.h"
#include "tcpstated/transition_table.h"

namespace tcpstated {
namespace {

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

// Events looked up ahead of the one being applied (ApplyBatch): far enough
// to cover a cache miss, near enough that the lines are still cached.
constexpr size_t kPrefetchDistance = 8;

// Request and timewait sockets change state without this tracepoint, and
// BOUND_INACTIVE exists only in sock_diag's answers: no full socket leaves
// those states, nor enters the last two. The count of NEW_SYN_RECV is the
// kernel's, set in bulk (SetRequestSockets), and a TIME_WAIT entry is only
// ever a timewait socket the mirror ages: a table entry put in one of them
// by such an event would corrupt the one or never age out. TIME_WAIT as the
// new state is followed (ApplyChange ages it as an inferred one).
bool ReportsFullSocket(TcpState from, TcpState to) {
  const bool never_from = from == TcpState::kTimeWait ||
                          from == TcpState::kNewSynRecv ||
                          from == TcpState::kBoundInactive;
  const bool never_to =
      to == TcpState::kNewSynRecv || to == TcpState::kBoundInactive;
  return !never_from && !never_to;
}

}  // namespace

Mirror::Mirror(size_t max_tracked_sockets)
    : table_(max_tracked_sockets),
      close_wait_ids_(max_tracked_sockets),
      timewaits_(max_tracked_sockets) {
  for (const auto& [from, to] : LegalTransitions()) {
    legal_[StateIndex(from)] |= static_cast<uint16_t>(1u << StateIndex(to));
  }
}

Mirror::~Mirror() = default;

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

void Mirror::Apply(const Event& e) {
  // DecodeEvent guarantees these; a hand-built event must not index out of
  // the per-state arrays.
  if (!IsSentSource(e.source) || StateIndex(e.oldstate) >= kStateSlots ||
      StateIndex(e.newstate) >= kStateSlots) {
    return;
  }
  events_[static_cast<size_t>(e.source)]++;
  if (netns_events_cache_ == nullptr || netns_events_cache_netns_ != e.netns) {
    netns_events_cache_ = &netns_events_[e.netns];
    netns_events_cache_netns_ = e.netns;
  }
  ++*netns_events_cache_;
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

void Mirror::NotifyObserver(const Event& e, const SocketEntry* before) {
  // The listener index is a hash lookup: asked only when the entry cannot
  // tell the socket's role (mirror_observer.h).
  const bool role_unknown = before == nullptr || before->role == Role::kUnknown;
  observer_->BeforeApply(e, before,
                         role_unknown && listeners_.HasPort(e.netns, e.sport));
}

void Mirror::PrefetchFor(const Event& e) const {
  if (!e.id_is_cookie || e.skaddr == 0) {
    table_.Prefetch(e.id);
    return;
  }
  // An accepted child's first event is applied under its provisional id
  // (ApplyStateChange), and its next one finds it there (ClaimChild).
  const uint64_t provisional = ProvisionalChildId(e.skaddr);
  if (e.oldstate == TcpState::kListen && e.newstate == TcpState::kSynRecv) {
    table_.Prefetch(provisional);
    return;
  }
  table_.Prefetch(e.id);
  if (e.oldstate == TcpState::kSynRecv && provisional_children_ != 0) {
    table_.Prefetch(provisional);
  }
}

void Mirror::ApplyBatch(const Event* events, size_t n) {
  for (size_t i = 0; i < n && i < kPrefetchDistance; ++i) {
    PrefetchFor(events[i]);
  }
  for (size_t i = 0; i < n; ++i) {
    if (i + kPrefetchDistance < n) PrefetchFor(events[i + kPrefetchDistance]);
    Apply(events[i]);
  }
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
    ApplyTransition(child, nullptr);  // no entry under child.id now
    return;
  }
  ApplyTransition(e, table_.Find(e.id));
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
  table_.Erase(entry, [this](const SocketEntry& m, size_t from, size_t to) {
    if (job_ != nullptr) NoteMoved(m, from, to);
  });
  provisional_children_--;
  entry = table_.Insert(e.id);
  if (job_ != nullptr)
    NoteMoved(*entry, table_.capacity(), table_.SlotOf(entry));
  moved.id = e.id;
  *entry = moved;
  return entry;
}

void Mirror::ApplyTransition(const Event& e, SocketEntry* const found) {
  const TcpState from = e.oldstate;
  const TcpState to = e.newstate;
  if (observer_ != nullptr && MirrorObserver::Wants(e)) {
    NotifyObserver(e, found);
  }
  if ((legal_[StateIndex(from)] & (1u << StateIndex(to))) == 0) {
    invalid_[StateIndex(from)][StateIndex(to)]++;
    if (invalid_hook_) invalid_hook_(e);
  }
  // Make sure the namespace is listed even if nothing is tracked in it yet.
  CountsOf(e.netns);
  // An event no full socket can produce (counted invalid above) moves no
  // table entry: see ReportsFullSocket.
  if (!ReportsFullSocket(from, to)) return;

  SocketEntry* entry = EntryForTransition(e, found);
  // A local peer sending its FIN moves the FIN_WAIT2 orphan on the other
  // end of the connection to TIME_WAIT, as the kernel silently does.
  if (to == TcpState::kLastAck && !timewaits_.empty()) {
    PromoteOrphan(e, /*peer_reset=*/false);
  }
  if (to == TcpState::kClose) {
    ApplyClose(entry, e);
    return;
  }
  const bool adopted = entry == nullptr;
  if (adopted) {
    entry = Adopt(e);
    if (entry == nullptr) return;
  } else if (entry->state != from) {
    Resync(entry, from, e.ts_ns);  // before moving on
  }
  ApplyChange(entry, e, adopted);
}

SocketEntry* Mirror::EntryForTransition(const Event& e, SocketEntry* found) {
  SocketEntry* entry = found;
  // Also for a socket leaving CLOSE: a provisional child whose next events
  // were lost, at an address a new socket now reuses, is dropped here.
  if (entry == nullptr) entry = ClaimChild(e);
  if (entry == nullptr) return nullptr;
  if (entry->flags & kEntryTimewaitSock) {
    // The id of a timewait socket comes back on a full socket: the
    // application kept the fd after the hand-off and reused it. A new life.
    Remove(entry, e.ts_ns, /*observe=*/false);
    return nullptr;
  }
  if (entry->state != e.oldstate) {
    resyncs_++;
    if (resync_hook_) resync_hook_(e, entry->state);
    if (e.oldstate == TcpState::kClose) {
      // The kernel says the socket starts over: what the mirror had of it
      // ended unseen.
      Remove(entry, e.ts_ns, /*observe=*/false);
      return nullptr;
    }
  }
  return entry;
}

void Mirror::Resync(SocketEntry* entry, TcpState from, uint64_t now_ns) {
  SetState(entry, from, now_ns);
  entry->flags |= kEntryAgeUnknown;
}

void Mirror::ApplyClose(SocketEntry* entry, const Event& e) {
  const TcpState from = e.oldstate;
  const bool from_fin_state =
      from == TcpState::kFinWait2 || from == TcpState::kClosing;
  if (entry == nullptr) {
    // A socket we never saw open (it predates us, or its events were
    // lost) can still hand off to a timewait socket.
    if (from_fin_state && e.id != 0 && !e.sock_error) {
      entry = Track(e, from, e.ts_ns, kEntryAgeUnknown, Role::kUnknown);
      if (entry != nullptr) EnterTimeWait(entry, e);
    } else if (reconciling_ && e.id != 0) {
      // Closed before a running reconcile added it from its (older)
      // dump: it must not be added now.
      RememberRemoved(e.id,
                      TupleKey{e.netns, e.sport, e.dport, e.saddr, e.daddr});
    }
    return;
  }
  CopyTuple(entry, e);
  if (entry->state != from) Resync(entry, from, e.ts_ns);
  // Only tcp_time_wait() makes a timewait socket; tcp_write_err (FIN
  // retransmits or TCP_USER_TIMEOUT exhausted) and tcp_abort close from
  // CLOSING or FIN_WAIT2 without one, with sk_err set and no reset.
  const bool handoff =
      from_fin_state && (entry->flags & kEntryResetSeen) == 0 && !e.sock_error;
  if (handoff) {
    EnterTimeWait(entry, e);
  } else {
    Remove(entry, e.ts_ns, /*observe=*/true);
  }
}

SocketEntry* Mirror::Adopt(const Event& e) {
  const TcpState from = e.oldstate;
  if (e.id == 0) return nullptr;  // no identity (incarnation map full)
  // Events from states no full socket is in never get here
  // (ReportsFullSocket, ApplyTransition).
  // New socket (connect, listen, accepted child) or one that predates us:
  // for the latter the time it entered `from` is unknown.
  // Either way nothing is observed for the state it starts in: a new
  // socket's CLOSE (or a child's copied LISTEN) is not a stay.
  const Role role = RoleFromTransition(from, e.newstate);
  SocketEntry* entry = Track(e, from, e.ts_ns, kEntryAgeUnknown, role);
  if (entry == nullptr || role != Role::kServer) return entry;
  // An accepted child belongs to whoever owns its listener.
  if (uint64_t listener_id = listeners_.Find(e.netns, e.sport, e.saddr)) {
    if (const SocketEntry* listener = table_.Find(listener_id)) {
      entry->owner = listener->owner;
      owners_.AddRef(entry->owner);
    }
  }
  return entry;
}

void Mirror::ApplyChange(SocketEntry* entry, const Event& e, bool adopted) {
  const TcpState to = e.newstate;
  const bool tuple_changed = CopyTuple(entry, e);
  if (!timewaits_.empty() && CanTakeOver(e, adopted, tuple_changed)) {
    entry = EndTakenOverTimewait(entry, e.ts_ns);
    if (entry == nullptr) return;
  }
  if (e.process_context && e.tgid != 0 &&
      (to == TcpState::kSynSent || to == TcpState::kListen ||
       entry->owner == OwnerPool::kUnknown)) {
    TakeOwner(entry, e);
  }
  if (to == TcpState::kListen) {
    entry->role = Role::kListener;
    RegisterListener(*entry);
  }
  if (e.oldstate == to) return;
  // A reset that did not close the socket (an answer to a bad segment in
  // SYN_SENT or SYN_RECV) says nothing about how it will end.
  entry->flags &= static_cast<uint8_t>(~kEntryResetSeen);
  SetState(entry, to, e.ts_ns);
  if (to == TcpState::kTimeWait) {
    // Never emitted by Linux (counted invalid above); age it like an
    // inferred one rather than keep it forever.
    MarkTimewait(entry, /*fin_wait2_substate=*/false);
    expiries_.Push(entry->entered_ns + kTimeWaitNs, entry->id);
  }
}

void Mirror::TakeOwner(SocketEntry* entry, const Event& e) {
  const uint32_t owner = owners_.Acquire(
      e.tgid, e.cgroup_id,
      std::string_view(e.comm.data(), strnlen(e.comm.data(), e.comm.size())));
  owners_.Release(entry->owner);
  entry->owner = owner;
}

void Mirror::ApplyReset(const Event& e) {
  // One probe of the table for the observer and the reset.
  SocketEntry* entry = e.no_socket ? nullptr : table_.Find(e.id);
  if (observer_ != nullptr) NotifyObserver(e, entry);
  // A reset for a segment that reached no socket: no entry of ours.
  if (e.no_socket) return;
  if (e.oldstate == TcpState::kTimeWait) {
    EndResetTimewait(e);
    return;
  }
  // A local peer's RST kills the FIN_WAIT2 orphan it was connected to; a
  // RST the local peer received on that 4-tuple came from the orphan
  // (TCP_TW_RST), which the kernel freed.
  if (!timewaits_.empty()) {
    const size_t tracked = table_.size();
    PromoteOrphan(e, /*peer_reset=*/true);
    // Removing the orphan may have moved this socket's slot.
    if (table_.size() != tracked) entry = table_.Find(e.id);
  }
  if (entry == nullptr) entry = ClaimChild(e);
  if (entry == nullptr) return;
  if (entry->flags & kEntryTimewaitSock) {
    // tcp_send_reset after CLOSE (close() with unread data, disconnect): the
    // FIN_WAIT2/CLOSING -> CLOSE we took for a hand-off was an abort. Resets
    // of real timewait sockets arrive with oldstate TIME_WAIT (above).
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
  if (CopyTuple(entry, e) && !timewaits_.empty()) {
    EndTakenOverTimewait(entry, e.ts_ns);
  }
}

const Owner* Mirror::OwnerOf(const SocketEntry& entry) const {
  return owners_.Get(entry.owner);
}

void Mirror::SetOwner(uint64_t id, const Owner& owner) {
  SocketEntry* entry = table_.Find(id);
  if (entry == nullptr || entry->owner != OwnerPool::kUnknown) return;
  // Held as the kernel holds a comm: at most 15 bytes, up to a NUL.
  std::string_view comm(owner.comm);
  comm = comm.substr(0, std::min(comm.size(), sizeof(Event::comm) - 1));
  comm = comm.substr(0, comm.find('\0'));
  entry->owner = owners_.Acquire(owner.tgid, owner.cgroup_id, comm);
}

}  // namespace tcpstated
