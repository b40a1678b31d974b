// The mirror's per-namespace books: socket counts, the sysctls that decide
// how its sockets are counted and aged, timewait sockets against
// tcp_max_tw_buckets, and the namespace cookie that tells a reused inode
// number from the namespace it used to name.
#include "daemon/core/mirror/mirror_table_inl.h"
#include "tcpstated/mirror.h"

namespace tcpstated {

void Mirror::CheckNamespace(const Event& e) {
  if (e.netns_cookie == 0) return;
  ConfirmCookie(e.netns, e.netns_cookie);
  cookie_cache_netns_ = e.netns;
  cookie_cache_ = e.netns_cookie;
}

void Mirror::ConfirmCookie(uint32_t netns, uint64_t cookie) {
  NamespaceBook& book = namespaces_[netns];
  if (book.cookie != 0 && book.cookie != cookie) {
    // Inode numbers of namespaces are reused. A new cookie behind a known
    // inode means the old namespace is gone, and with it every socket it
    // had (the kernel purges its timewait sockets without an event).
    PurgeNamespace(netns);
    netns_purges_++;
    cookie_cache_ = 0;
    cookie_cache_netns_ = 0;
  }
  book.cookie = cookie;
}

void Mirror::PurgeNamespace(uint32_t netns) {
  if (observer_ != nullptr) observer_->NamespaceGone(netns);
  // Request sockets are counted in bulk, not tracked one by one.
  if (auto it = counts_.find(netns); it != counts_.end()) {
    it->second[StateIndex(TcpState::kNewSynRecv)] = 0;
  }
  for (auto it = synack_retransmits_.begin();
       it != synack_retransmits_.end();) {
    it = it->first.netns == netns ? synack_retransmits_.erase(it)
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

uint64_t Mirror::NetnsCookie(uint32_t netns) const {
  auto it = namespaces_.find(netns);
  return it != namespaces_.end() ? it->second.cookie : 0;
}

void Mirror::DropNamespace(uint32_t netns) {
  PurgeNamespace(netns);
  counts_.erase(netns);
  counts_cache_ = nullptr;
  netns_events_.erase(netns);
  netns_events_cache_ = nullptr;
  cookie_cache_ = 0;
  cookie_cache_netns_ = 0;
  namespaces_.erase(netns);
}

void Mirror::SetFinTimeout(uint32_t netns, uint64_t ns) {
  namespaces_[netns].fin_timeout_ns = ns;
}

void Mirror::SetPortRange(uint32_t netns, uint16_t lo, uint16_t hi) {
  NamespaceBook& book = namespaces_[netns];
  book.have_port_range = true;
  book.port_lo = lo;
  book.port_hi = hi;
}

void Mirror::SetMaxTimewait(uint32_t netns, uint64_t max_tw_buckets) {
  NamespaceBook& book = namespaces_[netns];
  book.have_max_timewait = true;
  book.max_timewait = max_tw_buckets;
}

bool Mirror::InEphemeralRange(uint32_t netns, uint16_t port) const {
  auto it = namespaces_.find(netns);
  if (it == namespaces_.end() || !it->second.have_port_range) return true;
  return port >= it->second.port_lo && port <= it->second.port_hi;
}

void Mirror::SetRequestSockets(uint32_t netns, uint64_t count) {
  counts_[netns][StateIndex(TcpState::kNewSynRecv)] =
      static_cast<int64_t>(count);
}

std::unordered_map<uint32_t, uint64_t> Mirror::TimewaitSockets() const {
  std::unordered_map<uint32_t, uint64_t> out;
  for (const auto& [netns, counts] : counts_) {
    auto it = namespaces_.find(netns);
    out[netns] = it != namespaces_.end() ? it->second.timewait_sockets : 0;
  }
  return out;
}

}  // namespace tcpstated
