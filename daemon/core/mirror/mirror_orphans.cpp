// Orphaned FIN_WAIT2 sockets (closed by their application, waiting for the
// peer's FIN) on the paths the tracepoint does not report: how long the
// kernel keeps one (tcp_fin_time(): the socket's TCP_LINGER2, else the
// namespace's tcp_fin_timeout), and the reset that ends one early.
//
// The kernel's rules (net/ipv4/tcp.c tcp_close, tcp_input.c
// tcp_rcv_state_process, tcp_timer.c tcp_keepalive_timer): an orphan whose
// fin time is at most 60 s (TCP_TIMEWAIT_LEN) is handed to a timewait
// socket in the FIN_WAIT2 substate for that time. Above 60 s the full
// socket stays, on its keepalive timer, for fin_time - 60 s, and is then
// handed to a timewait socket for fin_time - 60 s again. A negative
// linger2 ends the orphan at once, with no timewait socket.
#include "daemon/core/mirror/mirror_table_inl.h"
#include "tcpstated/mirror.h"

namespace tcpstated {

namespace {

// tcp_fin_time() is an int of jiffies; HZ is at least 100.
constexpr uint64_t kMaxFinTimeNs = (uint64_t{1} << 31) / 100 * kNsPerSec;

}  // namespace

uint64_t Mirror::OrphanLifetime(const SocketEntry& entry) const {
  if (!orphan_fin_times_.empty()) {
    auto own = orphan_fin_times_.find(entry.id);
    if (own != orphan_fin_times_.end()) return OrphanTimewaitNs(own->second);
  }
  auto it = namespaces_.find(entry.netns);
  return OrphanTimewaitNs(it != namespaces_.end() ? it->second.fin_timeout_ns
                                                  : 60 * kNsPerSec);
}

bool Mirror::NoteOwnLinger(const SocketEntry& entry, const Event& e) {
  if (e.fin_time_jiffies == 0) return false;  // linger2 < 0
  // Jiffies to ns through the namespace's tcp_fin_timeout, which the event
  // gives in jiffies and the daemon reads in seconds: HZ is in no BTF type.
  // A tcp_fin_timeout of 0 gives no scale: the namespace's lifetime stays.
  if (e.fin_timeout_jiffies == 0) return true;
  auto it = namespaces_.find(entry.netns);
  const uint64_t fin_timeout_ns =
      it != namespaces_.end() ? it->second.fin_timeout_ns : 60 * kNsPerSec;
  // Exact in 128 bits; bounded by the longest fin time a kernel can hold
  // (an int of jiffies at HZ=100), so that a corrupt record cannot push the
  // deadline past the clock's range.
  const unsigned __int128 scaled =
      static_cast<unsigned __int128>(e.fin_time_jiffies) * fin_timeout_ns /
      e.fin_timeout_jiffies;
  const uint64_t fin_time_ns =
      scaled < kMaxFinTimeNs ? static_cast<uint64_t>(scaled) : kMaxFinTimeNs;
  // Bounded by the number of timewait entries: erased with them.
  orphan_fin_times_[entry.id] = fin_time_ns;
  return true;
}

void Mirror::ForgetOrphan(uint64_t id) {
  if (!orphan_fin_times_.empty()) orphan_fin_times_.erase(id);
}

void Mirror::EndResetTimewait(const Event& e) {
  // TCP_TW_RST: the kernel answered data (or a SYN) reaching an orphan in
  // the FIN_WAIT2 substate with a reset, and freed the timewait socket.
  SocketEntry* entry = table_.Find(
      timewaits_.Find(TupleKey{e.netns, e.sport, e.dport, e.saddr, e.daddr}));
  if (entry == nullptr && e.id != 0) entry = table_.Find(e.id);
  if (entry == nullptr || (entry->flags & kEntryTimewaitSock) == 0) return;
  Remove(entry, e.ts_ns, /*observe=*/true);
}

}  // namespace tcpstated
