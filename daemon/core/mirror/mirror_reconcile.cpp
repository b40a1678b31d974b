// Reconcile: the mirror compared with the kernel's socket dump, in four
// resumable passes (match by cookie, index the rest by 4-tuple, seed what
// only the kernel has, sweep what the kernel no longer has), so the caller
// can let go of its lock between slices.
#include <algorithm>

#include "daemon/core/mirror/mirror_reconcile_job.h"
#include "daemon/core/mirror/mirror_table_inl.h"
#include "tcpstated/mirror.h"

namespace tcpstated {

void Mirror::BeginReconcile() {
  reconciling_ = true;
  removed_during_reconcile_.clear();
  removed_tuples_during_reconcile_.clear();
}

void Mirror::RememberRemoved(uint64_t id, const TupleKey& tuple) {
  removed_during_reconcile_.insert(id);
  removed_tuples_during_reconcile_.insert(tuple);
}

namespace {

// The timewait lifetime a dump's socket is in: its substate decides.
uint64_t DumpLifetimeNs(const DiagSocket& d, uint32_t fin_timeout_s) {
  return d.state == TcpState::kFinWait2
             ? OrphanTimewaitNs(static_cast<uint64_t>(fin_timeout_s) *
                                kNsPerSec)
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
  if (d.state == TcpState::kListen) RegisterListener(*entry);
  if (d.timewait) {
    MarkTimewait(entry, d.state == TcpState::kFinWait2);
    ScheduleExpiry(*entry);
  }
  return entry;
}

void Mirror::CorrectState(SocketEntry* entry, const DiagSocket& d,
                          uint64_t now_ns, uint32_t fin_timeout_s) {
  UnmarkTimewait(entry);
  if (entry->state == TcpState::kListen) UnregisterListener(*entry);
  if (d.state == TcpState::kListen && entry->sport != 0) {
    entry->role = Role::kListener;
    RegisterListener(*entry);
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
    ScheduleExpiry(*entry);
  }
}

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
    if (dump.netns_cookie != 0) ConfirmCookie(dump.netns, dump.netns_cookie);
    job.by_netns[dump.netns] = &dump;
    counts_.try_emplace(dump.netns);
    namespaces_[dump.netns].fin_timeout_ns =
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
  // After a peak of sockets the table, the indexes and the destination
  // counts give their memory back (at most once per reconcile; a storm's dip
  // does not).
  table_.Shrink();
  close_wait_ids_.Shrink();
  timewaits_.Shrink();
  destinations_.Shrink();
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
    if (correction_hook_ && !job.seeding) {
      correction_hook_({"changed", entry, entry->state, d.state});
    }
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
      if (correction_hook_ && !job.seeding) {
        correction_hook_({"added", entry, TcpState::kClose, d->state});
      }
    }
  }
  return true;
}

void Mirror::NoteMoved(const SocketEntry& entry, size_t from, size_t to) {
  ReconcileJob& job = *job_;
  // Only a jump from the part not walked yet into the part already walked
  // escapes the walk (the other way, it is visited twice: harmless).
  if (from < job.slot || to >= job.slot ||
      table_.capacity() != job.walk_capacity ||
      entry.reconcile_mark == job.epoch ||
      job.by_netns.count(entry.netns) == 0) {
    return;
  }
  using Phase = ReconcileJob::Phase;
  if (job.phase == Phase::kIndex) {
    job.by_tuple.emplace(KeyOf(entry), entry.id);
  } else if (job.phase == Phase::kSweep && from < table_.capacity()) {
    job.sweep_again.push_back(entry.id);
  }
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
    SweepOut(job, entry);
    // Erasing can move a later entry of the probe run into this slot:
    // look at it again.
  }
  // What jumped behind the walk while it was paused.
  while (!job.sweep_again.empty()) {
    if (*budget == 0) return false;
    --*budget;
    SocketEntry* entry = table_.Find(job.sweep_again.back());
    job.sweep_again.pop_back();
    if (entry != nullptr && entry->reconcile_mark != job.epoch &&
        entry->entered_ns < job.dump_start_ns &&
        job.by_netns.count(entry->netns) != 0) {
      SweepOut(job, entry);
    }
  }
  return true;
}

void Mirror::SweepOut(ReconcileJob& job, SocketEntry* entry) {
  // A timewait socket whose time is up: the kernel's timer fired before the
  // dump, and the mirror's own expiry (the daemon's next tick) had not run
  // yet. What Expire does, not a correction: the stray removal of a quiet
  // guest, whose earlier runs left TIME_WAIT sockets behind.
  if ((entry->flags & kEntryTimewaitSock) != 0 &&
      entry->entered_ns + TimeWaitLifetime(*entry) <= job.now_ns) {
    Remove(entry, job.now_ns, /*observe=*/true);
    return;
  }
  job.Correct(entry->state);
  job.stats.removed++;
  if (correction_hook_ && !job.seeding) {
    correction_hook_({"removed", entry, entry->state, TcpState::kClose});
  }
  Remove(entry, job.now_ns, /*observe=*/false);
}

}  // namespace tcpstated
