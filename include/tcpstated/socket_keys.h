// The keys the books are kept under: one type per concept, shared by the
// mirror (which counts under them) and the detectors (which group and
// report under them), so a listener or a destination means the same thing
// on both sides.
//
// Pure value types; the hashes are inline because the mirror computes them
// on its hot path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>

#include "tcpstated/event.h"

namespace tcpstated {

// A listening port of a namespace (several LISTEN sockets may share one:
// IPv4 and IPv6, or an SO_REUSEPORT group).
struct ListenerKey {
  uint32_t netns = 0;
  uint16_t port = 0;

  bool operator==(const ListenerKey& o) const {
    return netns == o.netns && port == o.port;
  }
  bool operator!=(const ListenerKey& o) const { return !(*this == o); }
  bool operator<(const ListenerKey& o) const {
    return std::tie(netns, port) < std::tie(o.netns, o.port);
  }
};

struct ListenerKeyHash {
  size_t operator()(const ListenerKey& k) const {
    return (static_cast<size_t>(k.netns) << 16) ^ k.port;
  }
};

namespace keys_detail {

// Mixes a namespace, two ports and two addresses: the 4-tuple hash.
inline size_t MixTuple(uint32_t netns, uint16_t sport, uint16_t dport,
                       const Address& saddr, const Address& daddr) {
  uint64_t h = (static_cast<uint64_t>(netns) << 32) ^
               (static_cast<uint64_t>(sport) << 16) ^ dport;
  for (size_t i = 0; i < saddr.size(); i += 8) {
    uint64_t a, b;
    std::memcpy(&a, saddr.data() + i, 8);
    std::memcpy(&b, daddr.data() + i, 8);
    h = (h ^ a) * 0x9e3779b97f4a7c15ULL;
    h = (h ^ b) * 0x9e3779b97f4a7c15ULL;
  }
  return static_cast<size_t>(h ^ (h >> 29));
}

// Addresses compared as two 64-bit words: the hot paths compare keys on
// every lookup, and std::array's operator== is a memcmp call.
inline bool SameAddress(const Address& a, const Address& b) {
  uint64_t a0, a1, b0, b1;
  std::memcpy(&a0, a.data(), 8);
  std::memcpy(&a1, a.data() + 8, 8);
  std::memcpy(&b0, b.data(), 8);
  std::memcpy(&b1, b.data() + 8, 8);
  return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}

}  // namespace keys_detail

// A connection's destination as seen from the local end: the sockets
// holding an ephemeral port towards it are what exhausts the port range.
// IPv4 addresses sit in bytes 0-3 with zeros after them.
struct DestinationKey {
  uint32_t netns = 0;
  uint16_t dport = 0;
  Address saddr{};
  Address daddr{};

  // Whether the addresses are IPv6: IPv4 keeps bytes 4-15 zero.
  bool ipv6() const {
    for (size_t i = 4; i < saddr.size(); ++i) {
      if (saddr[i] != 0 || daddr[i] != 0) return true;
    }
    return false;
  }
  bool operator==(const DestinationKey& o) const {
    return netns == o.netns && dport == o.dport &&
           keys_detail::SameAddress(saddr, o.saddr) &&
           keys_detail::SameAddress(daddr, o.daddr);
  }
  // The order destinations are reported in: by namespace, family,
  // addresses, then port.
  bool operator<(const DestinationKey& o) const {
    const bool v6 = ipv6(), o_v6 = o.ipv6();
    return std::tie(netns, v6, saddr, daddr, dport) <
           std::tie(o.netns, o_v6, o.saddr, o.daddr, o.dport);
  }
};

struct DestinationKeyHash {
  size_t operator()(const DestinationKey& k) const {
    return keys_detail::MixTuple(k.netns, 0, k.dport, k.saddr, k.daddr);
  }
};

// The 4-tuple of a connection as seen from one side: for finding the local
// peer of a FIN_WAIT2 orphan, and the timewait socket a new connection on
// the same 4-tuple took over.
struct TupleKey {
  uint32_t netns = 0;
  uint16_t sport = 0, dport = 0;
  Address saddr{}, daddr{};

  bool operator==(const TupleKey& o) const {
    return netns == o.netns && sport == o.sport && dport == o.dport &&
           keys_detail::SameAddress(saddr, o.saddr) &&
           keys_detail::SameAddress(daddr, o.daddr);
  }
};

struct TupleKeyHash {
  size_t operator()(const TupleKey& k) const {
    return keys_detail::MixTuple(k.netns, k.sport, k.dport, k.saddr, k.daddr);
  }
};

}  // namespace tcpstated
