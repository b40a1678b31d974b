// A seam in the mirror's event path for books that need to know how a
// connection ended (a failed connect, a reset) together with what the
// mirror knew of the socket just before: its state, the time it entered
// it, its role. Only the events that can end a connection or carry a
// reset are shown, so the hot path pays one branch for the rest.
//
// Thread-safety: called under the mirror's lock, from Mirror::Apply.
#pragma once

#include <cstdint>

#include "tcpstated/event.h"

namespace tcpstated {

struct SocketEntry;

class MirrorObserver {
 public:
  virtual ~MirrorObserver() = default;

  // The events BeforeApply is called for.
  static bool Wants(const Event& e) {
    if (e.source == Source::kReceiveReset || e.source == Source::kSendReset) {
      return true;
    }
    return e.source == Source::kStateChange &&
           (e.oldstate == TcpState::kSynSent || e.newstate == TcpState::kClose);
  }

  // `before`: the entry tracked under e.id before `e` is applied (nullptr
  // if none); `local_port_listens`: a listener is known on (e.netns,
  // e.sport), looked up only when `before` does not know the socket's role
  // (nullptr or Role::kUnknown), false otherwise. Must not throw.
  virtual void BeforeApply(const Event& e, const SocketEntry* before,
                           bool local_port_listens) = 0;
  // The namespace's sockets were dropped (it died, and its inode may come
  // back with a new namespace): forget what was charged to it.
  virtual void NamespaceGone(uint32_t netns) = 0;
};

}  // namespace tcpstated
