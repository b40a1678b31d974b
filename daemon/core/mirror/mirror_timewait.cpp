// TIME_WAIT, which the tracepoint never reports: inferred from a
// FIN_WAIT2/CLOSING -> CLOSE hand-off, promoted or killed through the
// local peer of a FIN_WAIT2 orphan, ended when a new connection takes its
// 4-tuple over, and aged out by Expire.
#include "daemon/core/mirror/mirror_table_inl.h"
#include "tcpstated/mirror.h"

namespace tcpstated {

namespace {

// How far ahead Expire looks up the deadlines that come next: the table
// slot of the one kExpirySlotAhead ahead starts loading, and the TIME_WAIT
// index lines of the one kExpiryIndexAhead ahead (whose slot has arrived by
// then). A socket that expires was last touched 60 s ago: at a million
// sockets its table slot and its index lines are cache misses, one after
// the other, unless they are asked for early.
constexpr size_t kExpirySlotAhead = 16;
constexpr size_t kExpiryIndexAhead = 8;

}  // namespace

void Mirror::PrefetchExpiry(uint64_t now_ns) const {
  if (const ExpiryQueue::Item* slot = expiries_.RingAhead(kExpirySlotAhead);
      slot != nullptr && slot->at_ns <= now_ns) {
    table_.Prefetch(slot->id);
  }
  const ExpiryQueue::Item* next = expiries_.RingAhead(kExpiryIndexAhead);
  if (next == nullptr || next->at_ns > now_ns) return;
  const SocketEntry* entry = table_.Find(next->id);
  if (entry != nullptr && (entry->flags & kEntryTimewaitSock) != 0) {
    timewaits_.Prefetch(KeyOf(*entry));
  }
}

void Mirror::Expire(uint64_t now_ns) {
  // The first items' lines, before the loop asks for each item's own.
  for (size_t k = 0; k < kExpirySlotAhead; ++k) {
    const ExpiryQueue::Item* x = expiries_.RingAhead(k);
    if (x == nullptr || x->at_ns > now_ns) break;
    table_.Prefetch(x->id);
  }
  while (!expiries_.empty() && expiries_.Top().at_ns <= now_ns) {
    PrefetchExpiry(now_ns);
    const ExpiryQueue::Item x = expiries_.Top();
    expiries_.Pop();
    SocketEntry* entry = table_.Find(x.id);
    // Stale items (the entry left TIME_WAIT) are dropped. The deadline is
    // recomputed, since the entry may have re-entered TIME_WAIT or its
    // namespace's tcp_fin_timeout may have changed since it was queued.
    if (entry == nullptr || (entry->flags & kEntryTimewaitSock) == 0) continue;
    uint64_t deadline = entry->entered_ns + TimeWaitLifetime(*entry);
    if (deadline <= now_ns) {
      Remove(entry, now_ns, /*observe=*/true);
    } else {
      expiries_.Push(deadline, x.id);
    }
  }
}

uint64_t Mirror::TimeWaitLifetime(const SocketEntry& entry) const {
  if (entry.flags & kEntryFinWait2Substate) return OrphanLifetime(entry);
  return kTimeWaitNs;
}

void Mirror::ScheduleExpiry(const SocketEntry& entry) {
  expiries_.Push(entry.entered_ns + TimeWaitLifetime(entry), entry.id);
}

void Mirror::EnterTimeWait(SocketEntry* entry, const Event& e) {
  // At net.ipv4.tcp_max_tw_buckets the kernel makes no timewait socket: the
  // hand-off looks the same, but the connection is simply gone.
  auto book = namespaces_.find(entry->netns);
  if (book != namespaces_.end() && book->second.have_max_timewait &&
      book->second.timewait_sockets >= book->second.max_timewait) {
    Remove(entry, e.ts_ns, /*observe=*/true);
    return;
  }
  // CLOSING -> CLOSE means both FINs were exchanged, as does FIN_WAIT2 ->
  // CLOSE after the peer's FIN: TIME_WAIT substate. FIN_WAIT2 -> CLOSE
  // without it is an orphan that the kernel keeps as a timewait socket in
  // the FIN_WAIT2 substate for tcp_fin_time() (its own TCP_LINGER2 or the
  // namespace's tcp_fin_timeout: mirror_orphans.cpp) from now.
  if (e.oldstate == TcpState::kFinWait2 && !e.peer_fin) {
    if (e.own_linger2 && !NoteOwnLinger(*entry, e)) {
      Remove(entry, e.ts_ns, /*observe=*/true);
      return;
    }
    // Still FIN_WAIT2 for ss and for us; its clock restarts at the
    // hand-off, which is when the kernel's timer starts.
    entry->entered_ns = e.ts_ns;
    MarkTimewait(entry, /*fin_wait2_substate=*/true);
  } else {
    SetState(entry, TcpState::kTimeWait, e.ts_ns);
    MarkTimewait(entry, /*fin_wait2_substate=*/false);
  }
  ScheduleExpiry(*entry);
}

void Mirror::PromoteOrphan(const Event& peer, bool peer_reset) {
  const TupleKey key{peer.netns, peer.dport, peer.sport, peer.daddr,
                     peer.saddr};
  const uint64_t id = timewaits_.Find(key);
  if (id == 0) return;
  SocketEntry* orphan = table_.Find(id);
  if (orphan == nullptr) {
    timewaits_.Erase(key, id);
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
  expiries_.Push(orphan->entered_ns + kTimeWaitNs, orphan->id);
}

bool Mirror::CanTakeOver(const Event& e, bool adopted, bool tuple_changed) {
  // The kernel's connection hash holds one socket per 4-tuple: a full
  // socket lands on a timewait socket's only when it gets that 4-tuple, in
  // the handshake (connect() choosing a port under tcp_tw_reuse, a SYN a
  // timewait socket accepted). The mirror sees that as a socket it adopts,
  // an event whose ports or addresses are new to the entry, or a handshake
  // transition; a socket whose 4-tuple the mirror already knew in an
  // earlier event was checked then. Every other event (most of them: the
  // closes of established connections) skips the index lookup.
  return adopted || tuple_changed || e.newstate == TcpState::kSynSent ||
         e.newstate == TcpState::kSynRecv || e.oldstate == TcpState::kSynSent ||
         e.oldstate == TcpState::kSynRecv;
}

SocketEntry* Mirror::EndTakenOverTimewait(SocketEntry* entry, uint64_t now_ns) {
  if (entry->sport == 0 || entry->dport == 0) return entry;
  const TupleKey key = KeyOf(*entry);
  const uint64_t timewait_id = timewaits_.Find(key);
  if (timewait_id == 0 || timewait_id == entry->id) return entry;
  const uint64_t id = entry->id;
  SocketEntry* timewait = table_.Find(timewait_id);
  if (timewait == nullptr) {
    timewaits_.Erase(key, timewait_id);
    return entry;
  }
  // connect() under tcp_tw_reuse (TcpExt TWRecycled), or a SYN that a
  // TIME_WAIT socket accepted as a new connection: the kernel freed the
  // timewait socket without an event, and the port is held once.
  Remove(timewait, now_ns, /*observe=*/true);
  return table_.Find(id);
}

void Mirror::MarkTimewait(SocketEntry* entry, bool fin_wait2_substate) {
  if ((entry->flags & kEntryTimewaitSock) == 0) {
    namespaces_[entry->netns].timewait_sockets++;
  }
  entry->flags |= kEntryTimewaitSock;
  if (fin_wait2_substate) entry->flags |= kEntryFinWait2Substate;
  if (entry->sport != 0 && entry->dport != 0) {
    // Never refused: there are no more timewait entries than sockets.
    timewaits_.Set(KeyOf(*entry), entry->id);
  }
}

void Mirror::UnmarkTimewait(SocketEntry* entry) {
  if ((entry->flags & kEntryTimewaitSock) == 0) return;
  auto book = namespaces_.find(entry->netns);
  if (book != namespaces_.end() && book->second.timewait_sockets > 0) {
    book->second.timewait_sockets--;
  }
  timewaits_.Erase(KeyOf(*entry), entry->id);
  ForgetOrphan(entry->id);
  entry->flags &=
      static_cast<uint8_t>(~(kEntryTimewaitSock | kEntryFinWait2Substate));
}

}  // namespace tcpstated
