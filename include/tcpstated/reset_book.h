// Connections ended by a reset, sent or received, by the state the socket
// was in and by the port that names the service: the local listening port
// for a server's connections, the remote port for a client's. Fed with
// every event and the mirror's entry for its socket as it was before it.
//
// A reset sent after the socket already reported CLOSE (close() with
// unread data, SO_LINGER 0, tcp_disconnect: the kernel closes first, then
// sends) is charged to the state the socket left, remembered for the last
// few closes.
//
// Pure C++. Thread-safety: none (the mirror's lock).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "tcpstated/bounded_book.h"
#include "tcpstated/event.h"
#include "tcpstated/mirror.h"
#include "tcpstated/tcp_state.h"

namespace tcpstated {

// The service a reset is charged to.
struct ResetKey {
  uint32_t netns = 0;
  uint16_t port = 0;
  Role role = Role::kUnknown;  // kServer, kClient or kListener
  bool operator==(const ResetKey& o) const {
    return netns == o.netns && port == o.port && role == o.role;
  }
};
struct ResetKeyHash {
  size_t operator()(const ResetKey& k) const;
};

// Resets sent for segments that reached no socket, per (netns, local
// port): a port scan, connects to a closed port, a peer still talking to
// a connection this host forgot. Folding keeps the count.
struct NoSocketKey {
  uint32_t netns = 0;
  uint16_t port = 0;
  bool operator==(const NoSocketKey& o) const {
    return netns == o.netns && port == o.port;
  }
};
struct NoSocketKeyHash {
  size_t operator()(const NoSocketKey& k) const;
};
struct NoSocketTally {
  uint64_t resets = 0;
  void Add(const NoSocketTally& o) { resets += o.resets; }
};

// Resets by direction and by the state the socket was in: folding keeps
// both, only the service is lost.
struct ResetTally {
  std::array<uint64_t, 2 * kStateSlots>
      counts{};  // [sent * kStateSlots + state]
  static size_t Slot(bool sent, TcpState state) {
    return (sent ? kStateSlots : 0) + StateIndex(state);
  }
  uint64_t total() const;
  void Add(const ResetTally& o);
};

class ResetBook {
 public:
  explicit ResetBook(size_t max_keys) : book_(max_keys), no_socket_(max_keys) {}

  // `before`: the mirror's entry for e.id before `e` is applied, or
  // nullptr; `local_port_listens`: a listener is known on (e.netns,
  // e.sport), which names the side of a socket the mirror has no role for.
  void Observe(const Event& e, const SocketEntry* before,
               bool local_port_listens);
  // Forgets the ports of a namespace that is gone.
  void DropNamespace(uint32_t netns) {
    book_.EraseIf([netns](const ResetKey& k) { return k.netns == netns; });
    no_socket_.EraseIf(
        [netns](const NoSocketKey& k) { return k.netns == netns; });
    for (Close& c : closes_) {
      if (c.netns == netns) c = Close{};
    }
  }

  const BoundedBook<ResetKey, ResetTally, ResetKeyHash>& book() const {
    return book_;
  }
  // Resets for segments that reached no socket (Event::no_socket).
  const BoundedBook<NoSocketKey, NoSocketTally, NoSocketKeyHash>& no_socket()
      const {
    return no_socket_;
  }

 private:
  struct Close {
    uint64_t id = 0;
    uint32_t netns = 0;
    uint16_t port = 0;
    TcpState from = TcpState::kClose;
    Role role = Role::kUnknown;
  };
  // The close that precedes its reset runs in the same kernel call, so
  // only events of other CPUs can come in between: a few suffice.
  static constexpr size_t kRecentCloses = 64;

  static Role RoleOf(const SocketEntry* before, bool local_port_listens);
  void Count(const Event& e, TcpState state, Role role, uint16_t port,
             bool sent);

  BoundedBook<ResetKey, ResetTally, ResetKeyHash> book_;
  BoundedBook<NoSocketKey, NoSocketTally, NoSocketKeyHash> no_socket_;
  std::array<Close, kRecentCloses> closes_{};
  size_t next_close_ = 0;
};

}  // namespace tcpstated
