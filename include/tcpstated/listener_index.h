// The listening sockets the mirror tracks, by namespace, port and bound
// address: where an accepted child finds the listener it inherits its owner
// from, and whether a local port belongs to a server.
//
// One port can hold several listeners at once: SO_REUSEPORT groups, an IPv4
// and an IPv6 socket, one per bound address, and for a moment a socket whose
// listen() fails with EADDRINUSE (the kernel reports CLOSE -> LISTEN ->
// CLOSE for it). Each is kept under its own id, so removing one never
// forgets another.
//
// Pure C++. Thread-safety: none (the mirror's lock covers it). Throws only
// std::bad_alloc.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "tcpstated/event.h"

namespace tcpstated {

class ListenerIndex {
 public:
  // Records listener `id` on (netns, port), bound to `saddr` (all zeros for
  // the wildcard address). Adding an id already there updates its address.
  void Add(uint32_t netns, uint16_t port, const Address& saddr, uint64_t id);
  // Forgets listener `id` on (netns, port); other listeners stay.
  void Remove(uint32_t netns, uint16_t port, uint64_t id);
  // The listener a connection to (saddr, port) in `netns` was accepted
  // from: the earliest one bound to exactly `saddr`, else the earliest one
  // on the wildcard address, else the earliest on the port (an IPv6
  // wildcard also accepts IPv4, and before 6.15 a child's first event
  // carries its listener's address rather than its own). 0 if none. The
  // earliest wins because a later socket on the same address is either a
  // SO_REUSEPORT sibling (any is right) or one whose listen() is failing.
  uint64_t Find(uint32_t netns, uint16_t port, const Address& saddr) const;
  // Whether any listener is on (netns, port).
  bool HasPort(uint32_t netns, uint16_t port) const;
  size_t size() const { return size_; }

 private:
  struct Listener {
    Address saddr;
    uint64_t id;
  };
  static uint64_t KeyOf(uint32_t netns, uint16_t port) {
    return (static_cast<uint64_t>(netns) << 16) | port;
  }
  // In the order they were added; rarely more than a handful per port.
  std::unordered_map<uint64_t, std::vector<Listener>> ports_;
  size_t size_ = 0;
};

}  // namespace tcpstated
