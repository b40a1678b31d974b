// The mirror: tcpstated's own copy of the TCP state of every live socket,
// fed by decoded kernel events (and, at start-up and on reconcile, by the
// kernel's own socket dump).
//
// Pure C++: no libbpf, no syscalls. Every state change is checked against
// the legal transition table; an illegal one is counted and the mirror
// follows the kernel. TIME_WAIT, which the tracepoint never reports, is
// inferred from a FIN_WAIT2/CLOSING -> CLOSE without a reset, and aged out.
//
// Thread-safety: none. The daemon serialises Apply/Expire/reads with one
// mutex; aggregates are maintained incrementally so that reading them is
// cheap and never walks the table.
//
// Where each job lives:
//   mirror.cpp             applying events: the state machine per socket
//   mirror_table.cpp       the socket table and the books every entry is in
//                          (counts, CLOSE_WAIT index, destinations, histogram)
//   mirror_timewait.cpp    TIME_WAIT inference, orphans, take-overs, expiry
//   mirror_orphans.cpp     orphaned FIN_WAIT2: TCP_LINGER2, resets
//   mirror_namespaces.cpp  per-namespace books: sysctls, cookies, purges
//   mirror_reconcile.cpp   reconcile with the kernel's socket dump
//   mirror_close_wait_ages.cpp  CLOSE_WAIT ages from the kernel's tcp_info
//   mirror_saved_ages.cpp  ages kept across a restart (state_file.h)
//   owner_pool.cpp         who owns a socket (shared, reference-counted)
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tcpstated/destination_counts.h"
#include "tcpstated/event.h"
#include "tcpstated/expiry_queue.h"
#include "tcpstated/listener_index.h"
#include "tcpstated/mirror_observer.h"
#include "tcpstated/owner_pool.h"
#include "tcpstated/sock_diag.h"
#include "tcpstated/socket_keys.h"
#include "tcpstated/socket_table.h"
#include "tcpstated/state_file.h"
#include "tcpstated/tcp_state.h"
#include "tcpstated/tuple_index.h"

namespace tcpstated {

inline constexpr uint64_t kNsPerSec = 1000000000ULL;
// TCP_TIMEWAIT_LEN: fixed in the kernel.
inline constexpr uint64_t kTimeWaitNs = 60 * kNsPerSec;
// How long the timewait socket of an orphan whose tcp_fin_time() is
// fin_time_ns lives: above TCP_TIMEWAIT_LEN the kernel first keeps the full
// socket for fin_time - 60 s, then hands off for fin_time - 60 s again
// (tcp_keepalive_timer passes that to tcp_time_wait).
inline constexpr uint64_t OrphanTimewaitNs(uint64_t fin_time_ns) {
  return fin_time_ns > kTimeWaitNs ? fin_time_ns - kTimeWaitNs : fin_time_ns;
}

struct SocketEntry {
  uint64_t id = 0;          // identity; 0 = empty slot
  uint64_t entered_ns = 0;  // when it entered `state` (best estimate)
  Address saddr{};
  Address daddr{};
  uint32_t netns = 0;
  uint32_t owner = 0;  // index into the owner table; 0 = unknown
  uint16_t sport = 0;
  uint16_t dport = 0;
  TcpState state = TcpState::kClose;
  Role role = Role::kUnknown;
  uint8_t flags = 0;  // kEntry* below
  // The last reconcile whose dump confirmed this socket (its epoch).
  uint8_t reconcile_mark = 0;
};
static_assert(sizeof(SocketEntry) == 64, "one cache line per tracked socket");

// SocketEntry::flags
inline constexpr uint8_t kEntryIpv6 = 1 << 0;
// A reset was received or sent: the next ->CLOSE is not a TIME_WAIT hand-off.
inline constexpr uint8_t kEntryResetSeen = 1 << 1;
// entered_ns is an estimate (adopted mid-life or seeded from a dump): its
// state duration is not observed into the histogram.
inline constexpr uint8_t kEntryAgeUnknown = 1 << 2;
// The full socket handed over to a timewait socket: what remains is the
// kernel's inet_timewait_sock, in state TIME_WAIT or, with the flag below,
// in the FIN_WAIT2 substate (an orphan still waiting for the peer's FIN).
inline constexpr uint8_t kEntryTimewaitSock = 1 << 3;
// Timewait socket in the FIN_WAIT2 substate: reported as fin_wait2 (as `ss`
// does), aged by its TCP_LINGER2 or the namespace's tcp_fin_timeout (see
// mirror_orphans.cpp), promoted to TIME_WAIT by a local peer's FIN.
inline constexpr uint8_t kEntryFinWait2Substate = 1 << 4;
// Counted in the per-destination ephemeral-port books (see destinations()).
inline constexpr uint8_t kEntryDestCounted = 1 << 5;
// With kEntryAgeUnknown, in CLOSE_WAIT: the kernel was asked for the
// socket's tcpi_last_ack_recv (see AgeCloseWaitFromKernel), once.
inline constexpr uint8_t kEntryAgeAsked = 1 << 6;

// Buckets of tcpstated_state_duration_seconds.
inline constexpr std::array<double, 15> kDurationBuckets = {
    0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 86400};

struct DurationHistogram {
  std::array<uint64_t, kDurationBuckets.size() + 1> counts{};  // +Inf last
  double sum = 0;
  uint64_t count = 0;
};

using StateCounts = std::array<int64_t, kStateSlots>;
using TransitionMatrix =
    std::array<std::array<uint64_t, kStateSlots>, kStateSlots>;

struct MirrorStats {
  uint64_t tracked = 0;
  uint64_t limit = 0;
  uint64_t evictions = 0;
  // Events whose old state disagreed with the mirror (an event was lost or
  // the socket predates us): the mirror took the kernel's word.
  uint64_t resyncs = 0;
  // Namespaces found dead (their inode number came back with a new
  // namespace cookie): their sockets, timewait included, were dropped.
  uint64_t netns_purges = 0;
  std::array<uint64_t, kSourceCount> events{};  // applied, per source
};

class Mirror {
 public:
  explicit Mirror(size_t max_tracked_sockets);
  ~Mirror();

  // Applies one decoded event. Never throws for any event content.
  void Apply(const Event& event);
  // Applies events in order, as Apply does each, looking their sockets up
  // ahead of time (the ring consumer's path).
  void ApplyBatch(const Event* events, size_t n);

  // Removes inferred TIME_WAIT entries whose time is up at `now_ns`
  // (CLOCK_MONOTONIC, the clock of Event::ts_ns).
  void Expire(uint64_t now_ns);

  // tcp_fin_timeout of a namespace (default 60 s): the lifetime of an
  // inferred TIME_WAIT entry in the FIN_WAIT2 substate.
  void SetFinTimeout(uint32_t netns, uint64_t ns);

  // Per-namespace socket counts indexed by kernel state number, for every
  // namespace seen so far (a namespace stays listed with zeros).
  const std::unordered_map<uint32_t, StateCounts>& counts() const {
    return counts_;
  }
  const TransitionMatrix& invalid_transitions() const { return invalid_; }
  const std::array<DurationHistogram, kStateSlots>& durations() const {
    return durations_;
  }
  MirrorStats stats() const;
  // Events applied for a namespace so far (0 if none): the drift check's
  // allowance for events in flight (drift_check.h).
  uint64_t EventsIn(uint32_t netns) const {
    auto it = netns_events_.find(netns);
    return it != netns_events_.end() ? it->second : 0;
  }

  // The shared key types (socket_keys.h), under their old names here.
  using DestinationKey = tcpstated::DestinationKey;
  using DestinationKeyHash = tcpstated::DestinationKeyHash;
  // Outbound connections (any state, timewait included) per destination.
  // Iterated as a map: pairs of key and count; find(), size(), empty().
  const DestinationCounts& destinations() const { return destinations_; }

  // SYN-ACK retransmits per listener (netns, local port), from the events.
  const std::unordered_map<ListenerKey, uint64_t, ListenerKeyHash>&
  synack_retransmits() const {
    return synack_retransmits_;
  }
  static ListenerKey ListenerKeyOf(uint32_t netns, uint16_t port) {
    return ListenerKey{netns, port};
  }

  // Sockets in CLOSE_WAIT, without walking the table.
  template <typename F>
  void ForEachCloseWait(F&& f) const {
    close_wait_ids_.ForEach([&](const IdSlot& slot) {
      if (const SocketEntry* entry = table_.Find(slot.id)) f(*entry);
    });
  }

  // Namespaces with CLOSE_WAIT sockets whose entry time is unknown
  // (seeded, adopted, or corrected by a reconcile) and not yet asked of
  // the kernel.
  std::vector<uint32_t> NamespacesWithUnknownCloseWaitAges() const;
  // Entry times of those, from dumps of CLOSE_WAIT sockets with tcp_info
  // (DiagSocket::last_ack_ms), by namespace: now - last_ack_ms, where that
  // is earlier than the mirror's estimate. A lower bound, exact for an
  // application that has sent nothing since the peer's FIN: a leak keeps
  // its age across a restart. Matched by cookie, so in classic-tracepoint
  // mode only sockets whose identity came from a dump. Every such socket
  // of a dumped namespace counts as asked afterwards, found or not.
  // Returns how many were aged.
  size_t AgeCloseWaitFromKernel(
      const std::unordered_map<uint32_t, std::vector<DiagSocket>>& dumps,
      uint64_t now_ns);

  // ---- Ages across a restart (mirror_saved_ages.cpp) ----
  // The entry times worth keeping across a restart (CLOSE_WAIT, then
  // FIN_WAIT2, then ESTABLISHED; the oldest first within each), at most
  // `max`. `ids_are_cookies`: the socket ids are socket cookies (tp_btf
  // mode); otherwise the records carry no cookie and are matched by
  // namespace and 4-tuple alone.
  std::vector<SavedSocket> SavedSockets(size_t max, bool ids_are_cookies) const;
  struct RestoreStats {
    uint64_t saved = 0;     // records offered
    uint64_t restored = 0;  // taken
    uint64_t rejected = 0;  // matched a socket, but disagreed with it
  };
  // Takes back the saved entry times of the sockets whose age the mirror
  // does not know (seeded from the start-up dump), where the socket is the
  // same (namespace cookie, socket cookie when saved), still in the saved
  // state, and, in CLOSE_WAIT, the time agrees with its tcp_info
  // (`close_wait_dumps`: CLOSE_WAIT sockets with tcp_info, by namespace):
  // after the last data it received, no later than its last ACK. An exact
  // time replaces the estimate; a saved lower bound only moves it earlier.
  RestoreStats RestoreSavedAges(
      const std::vector<SavedSocket>& saved,
      const std::unordered_map<uint32_t, std::vector<DiagSocket>>&
          close_wait_dumps,
      uint64_t now_ns);

  // Owner of a socket found in a dump, resolved by the caller from /proc.
  // Ignored if the socket is gone or already has an owner.
  void SetOwner(uint64_t id, const Owner& owner);

  // ---- Reconciliation with the kernel's socket dump ----
  //
  // BeginReconcile() is called (under the caller's lock) before the dumps
  // are taken; from then on the mirror remembers which sockets it removed,
  // so a dump that raced with their close cannot resurrect them.
  // Reconcile() then applies every namespace's dump in one pass over the
  // table: sockets the mirror lacks are added (seeded), states that differ
  // are corrected, and sockets the kernel no longer has are removed, except
  // where the mirror learned something after the dump began. Request
  // sockets are not tracked one by one: they set the namespace's
  // new_syn_recv count.
  struct NamespaceDump {
    uint32_t netns = 0;
    uint64_t netns_cookie = 0;  // 0 if unknown
    const std::vector<DiagSocket>* sockets = nullptr;
    uint32_t fin_timeout_s = 60;
  };
  struct ReconcileStats {
    // Corrections by state: the kernel's state for sockets added or
    // changed, the mirror's state for sockets removed.
    std::array<uint64_t, kStateSlots> corrections{};
    uint64_t added = 0;
    uint64_t changed = 0;
    uint64_t removed = 0;
  };
  void BeginReconcile();
  // `seeding`: the first dump at start-up; nothing is counted as a
  // correction then. Namespaces not in `dumps` are left alone.
  ReconcileStats Reconcile(const std::vector<NamespaceDump>& dumps,
                           uint64_t dump_start_ns, uint64_t now_ns,
                           bool seeding);
  // The same, in slices: StartReconcile, then ContinueReconcile until it
  // returns true, then FinishReconcile. The caller may release its lock
  // between the calls, and events may be applied meanwhile (they are newer
  // than the dump and win). The dumps must outlive FinishReconcile. Each
  // ContinueReconcile does about `budget` units of work (a dump socket
  // looked up, a table slot visited; a socket seeded counts as four).
  // A socket that moves in the table while the sweep for vanished sockets
  // is paused can be missed: it is then removed by the next reconcile.
  void StartReconcile(const std::vector<NamespaceDump>& dumps,
                      uint64_t dump_start_ns, uint64_t now_ns, bool seeding);
  bool ContinueReconcile(size_t budget);
  ReconcileStats FinishReconcile();
  // Forgets a namespace that no longer exists: its sockets and its series.
  void DropNamespace(uint32_t netns);
  // The cookie of the namespace behind inode `netns` as its latest events
  // or dump told; 0 if none did.
  uint64_t NetnsCookie(uint32_t netns) const;
  // ip_local_port_range of a namespace: a socket of unknown origin holds an
  // ephemeral port (and counts towards its destination) only if its local
  // port is in it.
  void SetPortRange(uint32_t netns, uint16_t lo, uint16_t hi);
  // net.ipv4.tcp_max_tw_buckets of a namespace: once that many timewait
  // sockets exist the kernel makes no more (TCPTimeWaitOverflow), and a
  // hand-off is then the end of the connection.
  void SetMaxTimewait(uint32_t netns, uint64_t max_tw_buckets);
  // Half-open request sockets of a namespace, from a (partial) dump.
  void SetRequestSockets(uint32_t netns, uint64_t count);
  // Timewait sockets (both substates) per namespace: what counts against
  // net.ipv4.tcp_max_tw_buckets.
  std::unordered_map<uint32_t, uint64_t> TimewaitSockets() const;

  // The id under which an accepted child is tracked from its first event
  // (LISTEN->SYN_RECV) until its next event in tp_btf mode: its kernel
  // address, tagged with the top bit, which cookies (a counter from 1) and
  // incarnation ids (CPU number << 48) never reach. Before 6.15 the first
  // event carries the listener's cookie (inet_csk_clone_lock reports the
  // state before it sets the child's), so that cookie cannot name the
  // child; the next event, with the child's own cookie and the same
  // address, renames the entry.
  static uint64_t ProvisionalChildId(uint64_t skaddr) {
    return skaddr | kProvisionalIdBit;
  }
  static bool IsProvisionalId(uint64_t id) {
    return (id & kProvisionalIdBit) != 0;
  }

  const SocketEntry* Find(uint64_t id) const { return table_.Find(id); }
  const Owner* OwnerOf(const SocketEntry& entry) const;
  template <typename F>
  void ForEach(F&& f) const {
    table_.ForEach(f);
  }
  // Visits the entries in table slots [begin, begin + count); returns the
  // slot to resume from, or 0 once the table is done. For readers that
  // release the lock between slices: an entry moved by a rehash or an erase
  // in between may be missed or visited twice.
  template <typename F>
  size_t ForEachInSlots(size_t begin, size_t count, F&& f) const {
    const size_t end = std::min(table_.capacity(), begin + count);
    for (size_t i = begin; i < end; ++i) {
      if (const SocketEntry* entry = table_.AtSlot(i)) f(*entry);
    }
    return end < table_.capacity() ? end : 0;
  }

  // Called for every invalid transition (for the debug log), with the
  // event that carried it. Optional.
  void set_invalid_transition_hook(std::function<void(const Event&)> hook) {
    invalid_hook_ = std::move(hook);
  }
  // Called for every reconcile correction (for the debug log, where the
  // cause of a stray one is found): `entry` as the mirror had it (removed,
  // changed) or as seeded from the dump (added), and the kernel's state
  // (kClose when the kernel no longer has the socket). Optional.
  struct Correction {
    const char* kind;  // "added", "changed" or "removed"
    const SocketEntry* entry;
    TcpState mirror_state;  // kClose for "added"
    TcpState kernel_state;  // kClose for "removed"
  };
  void set_correction_hook(std::function<void(const Correction&)> hook) {
    correction_hook_ = std::move(hook);
  }
  // Called for every resync (for the debug log): the event, and the state
  // the mirror had instead of its old state. Optional.
  void set_resync_hook(std::function<void(const Event&, TcpState)> hook) {
    resync_hook_ = std::move(hook);
  }
  // Shown the events that end a connect() or carry a reset, before they
  // are applied (mirror_observer.h). Optional, not owned.
  void set_observer(MirrorObserver* observer) { observer_ = observer; }

 private:
  // ---- Applying events (mirror.cpp) ----
  // Starts loading the table slots `e` will be looked up in (ApplyBatch).
  void PrefetchFor(const Event& e) const;
  void ApplyStateChange(const Event& e);
  // `found`: table_.Find(e.id), one probe of the table for the observer
  // and the transition.
  void ApplyTransition(const Event& e, SocketEntry* found);
  // The entry an event is about, after dropping what cannot be it (a
  // timewait id reused by a full socket, an entry the event says was
  // closed); nullptr if the mirror has none. `found`: table_.Find(e.id).
  SocketEntry* EntryForTransition(const Event& e, SocketEntry* found);
  // ->CLOSE: the end of the socket, or its hand-off to a timewait socket.
  void ApplyClose(SocketEntry* entry, const Event& e);
  // A socket the mirror has not seen: a new one, or one that predates us.
  SocketEntry* Adopt(const Event& e);
  // Any other change of a tracked socket's state. `adopted`: the entry was
  // made for this event.
  void ApplyChange(SocketEntry* entry, const Event& e, bool adopted);
  void ApplyReset(const Event& e);
  void ApplySynRetransmit(const Event& e);
  // The provisional entry of the child at e.skaddr, renamed to e.id (the
  // child's own cookie), or nullptr if there is none.
  SocketEntry* ClaimChild(const Event& e);
  // A lost event: take the kernel's word for the state the socket left.
  void Resync(SocketEntry* entry, TcpState from, uint64_t now_ns);
  void TakeOwner(SocketEntry* entry, const Event& e);
  static constexpr uint64_t kProvisionalIdBit = 1ULL << 63;

  // ---- The table and the books every entry is in (mirror_table.cpp) ----
  SocketEntry* Track(const Event& e, TcpState state, uint64_t entered_ns,
                     uint8_t flags, Role role);
  void SetState(SocketEntry* entry, TcpState state, uint64_t now_ns);
  void Remove(SocketEntry* entry, uint64_t now_ns, bool observe);
  void Observe(const SocketEntry& entry, uint64_t now_ns);
  void EvictOne(uint64_t near_id, uint64_t now_ns);
  // Moves `entry` in or out of `state`'s books: the per-namespace counts
  // and the CLOSE_WAIT index.
  void Account(const SocketEntry& entry, TcpState state, int delta);
  void IndexCloseWait(uint64_t id, bool in);
  // Returns whether the entry's 4-tuple changed (a port or an address
  // became known or different).
  bool CopyTuple(SocketEntry* entry, const Event& e);
  void UpdateDestination(SocketEntry* entry);
  void UnregisterDestination(SocketEntry& entry);
  void RegisterListener(const SocketEntry& entry);
  void UnregisterListener(const SocketEntry& entry);
  static DestinationKey DestinationOf(const SocketEntry& entry);
  static TupleKey KeyOf(const SocketEntry& entry);

  SocketTable<SocketEntry> table_;
  size_t provisional_children_ = 0;  // entries under a provisional id
  // The CLOSE_WAIT index: a flat set of ids (no allocation per entry).
  struct IdSlot {
    uint64_t id = 0;
  };
  SocketTable<IdSlot> close_wait_ids_;
  ListenerIndex listeners_;
  DestinationCounts destinations_;
  std::unordered_map<ListenerKey, uint64_t, ListenerKeyHash>
      synack_retransmits_;
  OwnerPool owners_;
  TransitionMatrix invalid_{};
  std::array<DurationHistogram, kStateSlots> durations_{};
  // Legal transitions as one bit per new state, per old state.
  std::array<uint16_t, kStateSlots> legal_{};
  uint64_t evictions_ = 0;
  uint64_t resyncs_ = 0;
  std::array<uint64_t, kSourceCount> events_{};
  std::function<void(const Event&)> invalid_hook_;
  std::function<void(const Correction&)> correction_hook_;
  std::function<void(const Event&, TcpState)> resync_hook_;
  MirrorObserver* observer_ = nullptr;
  // `before`: the entry tracked under e.id (nullptr if none).
  void NotifyObserver(const Event& e, const SocketEntry* before);

  // ---- TIME_WAIT inference and expiry (mirror_timewait.cpp) ----
  // Starts loading the table slot and the TIME_WAIT index lines of the
  // deadlines that come a few after the next one (Expire).
  void PrefetchExpiry(uint64_t now_ns) const;
  void EnterTimeWait(SocketEntry* entry, const Event& e);
  void PromoteOrphan(const Event& peer_event, bool peer_reset);
  uint64_t TimeWaitLifetime(const SocketEntry& entry) const;
  // Sets kEntryTimewaitSock (and the FIN_WAIT2-substate flag) and keeps the
  // per-namespace timewait count.
  void MarkTimewait(SocketEntry* entry, bool fin_wait2_substate);
  void UnmarkTimewait(SocketEntry* entry);
  void ScheduleExpiry(const SocketEntry& entry);
  // A full socket now holds a timewait entry's 4-tuple: the timewait
  // socket was taken over (tcp_tw_reuse, TCP_TW_SYN) and is gone. Returns
  // `entry` again (removing moves entries).
  SocketEntry* EndTakenOverTimewait(SocketEntry* entry, uint64_t now_ns);
  // Whether an event can be the one that puts a full socket on a timewait
  // socket's 4-tuple: see mirror_timewait.cpp.
  static bool CanTakeOver(const Event& e, bool adopted, bool tuple_changed);

  // ---- Orphaned FIN_WAIT2 lifetimes and resets (mirror_orphans.cpp) ----
  uint64_t OrphanLifetime(const SocketEntry& entry) const;
  // An orphan's own TCP_LINGER2 from its hand-off event; false when it is
  // negative (the kernel made no timewait socket).
  bool NoteOwnLinger(const SocketEntry& entry, const Event& e);
  void ForgetOrphan(uint64_t id);
  // A reset sent by a timewait socket, which the kernel then freed.
  void EndResetTimewait(const Event& e);
  // tcp_fin_time() of orphans with a TCP_LINGER2 of their own, by id.
  std::unordered_map<uint64_t, uint64_t> orphan_fin_times_;

  ExpiryQueue expiries_;
  // Timewait entries (both substates) by 4-tuple, where both ports are
  // known: the kernel's connection hash holds one socket per 4-tuple.
  // Bounded by the table's size, with no allocation per entry.
  TupleIndex timewaits_;

  // ---- Per-namespace books (mirror_namespaces.cpp) ----
  // What the mirror knows of one namespace besides its socket counts.
  struct NamespaceBook {
    uint64_t cookie = 0;  // 0 = not known yet
    // tcp_fin_timeout: the lifetime of a FIN_WAIT2-substate timewait entry.
    uint64_t fin_timeout_ns = 60 * kNsPerSec;
    // ip_local_port_range; without it every port counts as ephemeral.
    bool have_port_range = false;
    uint16_t port_lo = 0, port_hi = 0;
    // tcp_max_tw_buckets; without it there is no limit.
    bool have_max_timewait = false;
    uint64_t max_timewait = 0;
    uint64_t timewait_sockets = 0;  // both substates
  };
  void CheckNamespace(const Event& e);
  // A namespace's cookie, from an event or a dump: a new cookie behind a
  // known inode means the old namespace died (its sockets are purged).
  void ConfirmCookie(uint32_t netns, uint64_t cookie);
  void PurgeNamespace(uint32_t netns);
  bool InEphemeralRange(uint32_t netns, uint16_t port) const;
  // The per-namespace counts of the namespace last used (events come in
  // runs from one namespace): a pointer into counts_, whose nodes do not
  // move; reset wherever a namespace is erased.
  StateCounts& CountsOf(uint32_t netns);

  std::unordered_map<uint32_t, StateCounts> counts_;
  std::unordered_map<uint32_t, NamespaceBook> namespaces_;
  // EventsIn's counters; the one last used cached as counts_cache_ is.
  std::unordered_map<uint32_t, uint64_t> netns_events_;
  uint64_t* netns_events_cache_ = nullptr;
  uint32_t netns_events_cache_netns_ = 0;
  uint64_t netns_purges_ = 0;
  uint32_t counts_cache_netns_ = 0;
  StateCounts* counts_cache_ = nullptr;
  // The (inode, cookie) pair CheckNamespace last confirmed; reset wherever
  // a cookie changes or a namespace is dropped.
  uint32_t cookie_cache_netns_ = 0;
  uint64_t cookie_cache_ = 0;

  // ---- Reconcile (mirror_reconcile.cpp) ----
  SocketEntry* Seed(const DiagSocket& d, uint32_t netns, uint64_t now_ns,
                    uint32_t fin_timeout_s,
                    const std::unordered_map<uint32_t, std::vector<uint16_t>>&
                        listening_ports);
  void CorrectState(SocketEntry* entry, const DiagSocket& d, uint64_t now_ns,
                    uint32_t fin_timeout_s);
  // An unfinished reconcile (StartReconcile .. FinishReconcile).
  struct ReconcileJob;
  bool ReconcileMatch(ReconcileJob& job, size_t* budget);
  bool ReconcileIndex(ReconcileJob& job, size_t* budget);
  bool ReconcileSeed(ReconcileJob& job, size_t* budget);
  bool ReconcileSweep(ReconcileJob& job, size_t* budget);
  void Confirm(SocketEntry* entry, const DiagSocket& d, ReconcileJob& job,
               uint32_t fin_timeout_s);
  // While a reconcile runs: a socket the events removed must not come back
  // from the (older) dump.
  // A paused reconcile walk (the 4-tuple index, the sweep) must not miss
  // an entry that an erase's backward shift moved, or an insert put, from
  // the slots it has not walked yet (`from`; capacity() for an insert)
  // into those it has (`to`): it is indexed, or checked again at the end
  // of the sweep.
  void NoteMoved(const SocketEntry& entry, size_t from, size_t to);
  // The sweep's removal of a socket the kernel no longer has.
  void SweepOut(ReconcileJob& job, SocketEntry* entry);
  void RememberRemoved(uint64_t id, const TupleKey& tuple);

  bool reconciling_ = false;
  std::unique_ptr<ReconcileJob> job_;
  uint8_t reconcile_epoch_ = 0;  // 1..255; 0 is "never confirmed"
  std::unordered_set<uint64_t> removed_during_reconcile_;
  std::unordered_set<TupleKey, TupleKeyHash> removed_tuples_during_reconcile_;
};

}  // namespace tcpstated
