#include "tcpstated/reset_book.h"

namespace tcpstated {

size_t ResetKeyHash::operator()(const ResetKey& k) const {
  uint64_t h = (static_cast<uint64_t>(k.netns) << 20) ^
               (static_cast<uint64_t>(k.port) << 4) ^
               static_cast<uint64_t>(k.role);
  return static_cast<size_t>(h * 0x9E3779B97F4A7C15ULL);
}

size_t NoSocketKeyHash::operator()(const NoSocketKey& k) const {
  const uint64_t h = (static_cast<uint64_t>(k.netns) << 16) ^ k.port;
  return static_cast<size_t>(h * 0x9E3779B97F4A7C15ULL);
}

uint64_t ResetTally::total() const {
  uint64_t n = 0;
  for (uint64_t c : counts) n += c;
  return n;
}

void ResetTally::Add(const ResetTally& o) {
  for (size_t i = 0; i < counts.size(); ++i) counts[i] += o.counts[i];
}

Role ResetBook::RoleOf(const SocketEntry* before, bool local_port_listens) {
  if (before != nullptr && before->role != Role::kUnknown) return before->role;
  return local_port_listens ? Role::kServer : Role::kClient;
}

void ResetBook::Count(const Event& e, TcpState state, Role role, uint16_t port,
                      bool sent) {
  ResetKey key;
  key.netns = e.netns;
  key.port = port;
  key.role = role;
  if (StateIndex(state) >= kStateSlots) return;
  book_.At(key, e.ts_ns).counts[ResetTally::Slot(sent, state)]++;
}

void ResetBook::Observe(const Event& e, const SocketEntry* before,
                        bool local_port_listens) {
  if (e.no_socket) {
    no_socket_.At(NoSocketKey{e.netns, e.sport}, e.ts_ns).resets++;
    return;
  }
  const Role role = RoleOf(before, local_port_listens);
  // A client is named by the service it talks to, a server or listener by
  // its own port.
  const uint16_t port = role == Role::kClient ? e.dport : e.sport;
  switch (e.source) {
    case Source::kStateChange:
      if (e.newstate == TcpState::kClose && e.id != 0) {
        closes_[next_close_] = Close{e.id, e.netns, port, e.oldstate, role};
        next_close_ = (next_close_ + 1) % kRecentCloses;
      }
      return;
    case Source::kReceiveReset:
      Count(e, e.oldstate, role, port, /*sent=*/false);
      return;
    case Source::kSendReset:
      if (e.oldstate == TcpState::kClose && e.id != 0) {
        // Newest first: the close is usually the socket's previous event,
        // so this ends at once instead of comparing all of them.
        for (size_t back = 1; back <= kRecentCloses; ++back) {
          const Close& c =
              closes_[(next_close_ + kRecentCloses - back) % kRecentCloses];
          if (c.id == e.id && c.netns == e.netns) {
            Count(e, c.from, c.role, c.port, /*sent=*/true);
            return;
          }
        }
      }
      Count(e, e.oldstate, role, port, /*sent=*/true);
      return;
    case Source::kSynackRetrans:
    case Source::kSynRetrans:
      return;
  }
}

}  // namespace tcpstated
