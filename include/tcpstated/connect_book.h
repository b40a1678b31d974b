// Outbound connection attempts per destination: how each connect() that
// failed ended (SYN_SENT -> CLOSE, by reason), and how long the ones that
// succeeded took (SYN_SENT -> ESTABLISHED). Fed with every event and the
// mirror's entry for its socket as it was before the event.
//
// Pure C++. Thread-safety: none (the mirror's lock).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tcpstated/bounded_book.h"
#include "tcpstated/event.h"
#include "tcpstated/mirror.h"
#include "tcpstated/socket_keys.h"

namespace tcpstated {

// Why a connect() ended in SYN_SENT -> CLOSE.
enum class ConnectFailure : uint8_t {
  kRefused = 0,   // a reset answered the SYN (ECONNREFUSED)
  kTimedOut = 1,  // SYN retries or TCP_USER_TIMEOUT exhausted (ETIMEDOUT)
  kUnreachable =
      2,         // ICMP host/network unreachable (EHOSTUNREACH, ENETUNREACH)
  kAborted = 3,  // the application closed the socket while connecting
  kNoLocalPort = 4,  // no ephemeral port was free (EADDRNOTAVAIL)
  kError = 5,        // any other errno
};
inline constexpr size_t kConnectFailureCount = 6;

// Label value: "refused", "timed_out", "unreachable", "aborted",
// "no_local_port", "error".
std::string_view ConnectFailureName(ConnectFailure reason);

// The reason of a SYN_SENT -> CLOSE: by sk_err when the kernel set one
// (tcp_reset, tcp_write_err and tcp_v4_err all set it before tcp_done),
// else a reset seen in SYN_SENT, else a connect that never got a local port
// (sport 0: inet_hash_connect failed), else the application's close().
ConnectFailure ClassifyConnectFailure(uint8_t sk_err, bool reset_seen,
                                      uint16_t sport);

// Buckets of tcpstated_connect_duration_seconds: loopback and LAN
// handshakes take well under a millisecond, a lost SYN costs a 1 s
// retransmit, and the kernel gives up after about 130 s.
inline constexpr std::array<double, 15> kConnectBuckets = {
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,   0.5,   1,      3,     10,   30};

struct ConnectDestination {
  uint32_t netns = 0;
  uint16_t dport = 0;
  bool ipv6 = false;
  Address daddr{};
  bool operator==(const ConnectDestination& o) const {
    return netns == o.netns && dport == o.dport && ipv6 == o.ipv6 &&
           keys_detail::SameAddress(daddr, o.daddr);
  }
};
struct ConnectDestinationHash {
  size_t operator()(const ConnectDestination& d) const;
};

struct ConnectTally {
  std::array<uint64_t, kConnectFailureCount> failures{};
  // SYN_SENT -> ESTABLISHED of sockets whose SYN_SENT entry time is known.
  std::array<uint64_t, kConnectBuckets.size() + 1> buckets{};  // +Inf last
  double latency_sum = 0;
  uint64_t established = 0;

  uint64_t failed() const;
  void Add(const ConnectTally& o);
};

class ConnectBook {
 public:
  // At most `max_destinations` are tallied apart (see BoundedBook).
  explicit ConnectBook(size_t max_destinations) : book_(max_destinations) {}

  // `before`: the mirror's entry for e.id before `e` is applied, or nullptr.
  void Observe(const Event& e, const SocketEntry* before);
  // Forgets the destinations seen from a namespace that is gone.
  void DropNamespace(uint32_t netns) {
    book_.EraseIf(
        [netns](const ConnectDestination& d) { return d.netns == netns; });
  }

  const BoundedBook<ConnectDestination, ConnectTally, ConnectDestinationHash>&
  book() const {
    return book_;
  }

 private:
  BoundedBook<ConnectDestination, ConnectTally, ConnectDestinationHash> book_;
};

}  // namespace tcpstated
