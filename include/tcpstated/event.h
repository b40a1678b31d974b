// One decoded kernel event, and the decoder that turns a ring-buffer record
// (bpf/tcpstated_abi.h) into it.
//
// Thread-safety: pure functions; Event is a plain value.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tcpstated/tcp_state.h"

namespace tcpstated {

enum class Source : uint8_t {
  kStateChange = 0,    // sock/inet_sock_set_state
  kReceiveReset = 1,   // tcp/tcp_receive_reset
  kSendReset = 2,      // tcp/tcp_send_reset
  kSynackRetrans = 3,  // tcp/tcp_retransmit_synack
  kSynRetrans = 4,     // tcp/tcp_retransmit_skb of a socket in SYN_SENT
};
inline constexpr size_t kSourceCount = 5;

// Whether `source` is one the BPF side sends.
inline constexpr bool IsSentSource(Source source) {
  return static_cast<size_t>(source) < kSourceCount;
}

// Label value of a source: the tracepoint name ("inet_sock_set_state", ...).
std::string_view SourceName(Source source);

using Address = std::array<uint8_t, 16>;

struct Event {
  uint64_t ts_ns = 0;  // CLOCK_MONOTONIC
  uint64_t id = 0;     // socket cookie, or per-incarnation id
  uint64_t skaddr = 0;
  uint64_t cgroup_id = 0;
  uint64_t netns_cookie = 0;  // 0 when the kernel has none
  uint32_t netns = 0;
  uint32_t tgid = 0;
  uint32_t pid = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
  Address saddr{};
  Address daddr{};
  Source source = Source::kStateChange;
  TcpState oldstate = TcpState::kClose;  // resets: the socket's state
  TcpState newstate = TcpState::kClose;
  bool ipv6 = false;
  bool process_context = false;  // pid/tgid/comm/cgroup_id are the owner's
  bool peer_fin = false;         // RCV_SHUTDOWN when leaving FIN_WAIT2/CLOSING
  // `id` is a socket cookie (tp_btf mode), not a per-incarnation id.
  bool id_is_cookie = false;
  // X->CLOSE with sk_err set: closed by an error (tcp_write_err,
  // tcp_abort), never handed to a timewait socket.
  bool sock_error = false;
  // With sock_error: the errno in sk_err (ECONNREFUSED, ETIMEDOUT, ...),
  // 255 for anything larger. 0 otherwise.
  uint8_t sk_err = 0;
  // kSendReset answering a segment that reached no socket (kernels >=
  // 6.10): id and skaddr are 0, sport is this host's port, no addresses.
  bool no_socket = false;
  std::array<char, 16> comm{};  // NUL-terminated when process_context
  // FIN_WAIT2->CLOSE of a socket with a TCP_LINGER2 of its own: its
  // tcp_fin_time() (0: negative linger2, no timewait socket follows) and
  // the namespace's tcp_fin_timeout, both in the kernel's jiffies.
  bool own_linger2 = false;
  uint32_t fin_time_jiffies = 0;
  uint32_t fin_timeout_jiffies = 0;
};

enum class DecodeError {
  kNone = 0,
  kBadSize,
  kBadSource,
  kBadState,
};

std::string_view DecodeErrorName(DecodeError error);

// Decodes one ring-buffer record. Never reads past `size`; rejects records of
// the wrong size, unknown sources and state numbers outside 1..13.
DecodeError DecodeEvent(const void* data, size_t size, Event* out);

// "10.0.0.1" / "2001:db8::1" for logs and labels.
std::string FormatAddress(const Address& address, bool ipv6);

}  // namespace tcpstated
