// A NETLINK_SOCK_DIAG (inet_diag) client for TCP: a snapshot of every TCP
// socket of one network namespace, used to seed the mirror at start-up and to
// cross-check it, since the event stream never shows sockets that existed
// before the probes were attached, timewait sockets or request sockets
// (shared/reference/linux-tcp-state-transitions.md).
//
// Thread-safety: ParseDiagMessages is a pure function. A SockDiagClient holds
// one netlink socket and one dump at a time: use each instance from one thread
// (or under a lock); distinct instances are independent.
//
// What throws: the SockDiagClient constructor and DumpTcp/DumpAll throw
// std::system_error (see each); the parser never throws except std::bad_alloc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "tcpstated/event.h"
#include "tcpstated/tcp_state.h"

namespace tcpstated {

// One socket as inet_diag reports it.
//
// `state` is what the kernel put in idiag_state, with one change:
//  - Request sockets (a SYN received, handshake not finished) are reported by
//    the kernel as SYN_RECV (3). They are stored as kNewSynRecv, which is their
//    real sk_state. A message is taken for a request socket when it says
//    SYN_RECV, has inode 0 and lacks the INET_DIAG_SHUTDOWN attribute, which
//    the kernel adds to every full socket (inet_diag_msg_attrs_fill) and to
//    no request socket (inet_req_diag_fill). A full SYN_RECV child not yet
//    accepted also has inode 0, but carries that attribute, so it stays
//    kSynRecv. A message that says 12 directly is taken as a request socket
//    too.
//  - Timewait sockets keep their substate, as `ss` shows them: kTimeWait, or
//    kFinWait2 for an orphaned FIN_WAIT2 socket handed to a timewait socket.
//    `timewait` marks them; it comes from the message itself (idiag_timer 3,
//    which only inet_twsk_diag_fill sets), not from the query's state mask,
//    because one dump usually asks for every state at once.
struct DiagSocket {
  TcpState state = TcpState::kClose;
  bool timewait = false;  // a timewait minisocket; its sk_state is TIME_WAIT
  bool ipv6 = false;      // AF_INET6 (v4-mapped addresses stay as they are)
  uint8_t timer = 0;      // idiag_timer: 0 none, 1 retransmit, 2 keepalive,
                          // 3 timewait, 4 zero-window probe
  uint8_t retrans = 0;    // retransmissions / probes of that timer
  uint16_t sport = 0;     // host order
  uint16_t dport = 0;     // host order
  Address saddr{};        // network order; IPv4 in bytes 0-3, the rest zero
  Address daddr{};
  uint64_t cookie = 0;  // idiag_cookie[0] | idiag_cookie[1] << 32
  uint32_t inode = 0;   // 0 for request, timewait and unaccepted sockets
  uint32_t uid = 0;
  // LISTEN: accept-queue length and backlog limit (min of the listen()
  // backlog and somaxconn). Others: bytes not yet read / not yet acked.
  uint32_t rqueue = 0;
  uint32_t wqueue = 0;
  uint32_t expires_ms = 0;  // until `timer` fires
  uint32_t ifindex = 0;     // SO_BINDTODEVICE / scope id, 0 if none
  uint32_t netns = 0;       // namespace inode; set by SockDiagClient, not
                            // by the parser
  // Milliseconds since the socket last received an ACK
  // (tcp_info.tcpi_last_ack_recv), only in dumps that ask for
  // INET_DIAG_INFO; kNoTcpInfo otherwise. In CLOSE_WAIT the peer's FIN was
  // the last segment to carry one unless the application sent data since:
  // a lower bound of the time in CLOSE_WAIT, exact for a silent one.
  uint32_t last_ack_ms = UINT32_MAX;
  // Also from tcp_info, for the peer-liveness read (peer_sockets.h):
  // milliseconds since data last arrived (tcpi_last_data_recv; kNoTcpInfo
  // without tcp_info), and the counters behind a peer that does not answer:
  // unanswered keepalive or zero-window probes (tcpi_probes), consecutive
  // retransmission timeouts of unacknowledged data (tcpi_retransmits) and
  // the timer's exponential backoff (tcpi_backoff).
  uint32_t last_data_recv_ms = UINT32_MAX;
  uint8_t probes = 0;
  uint8_t retransmits = 0;
  uint8_t backoff = 0;
};
inline constexpr uint32_t kNoTcpInfo = UINT32_MAX;

// The socket's sk_state as the tracepoints would name it: TIME_WAIT for every
// timewait socket whatever its substate.
inline TcpState KernelState(const DiagSocket& socket) {
  return socket.timewait ? TcpState::kTimeWait : socket.state;
}

struct ParseResult {
  bool done = false;  // NLMSG_DONE seen; nothing after it is looked at
  // Negative errno from NLMSG_ERROR, or from an NLMSG_DONE that carries one
  // (a dump the kernel ended in error); 0 otherwise. Parsing stops there.
  int error = 0;
  // Messages that could not be used. A message whose header is sound but
  // whose content is not (payload shorter than inet_diag_msg, family other
  // than AF_INET/AF_INET6, state outside 1..13, broken rtattrs, unknown
  // message type, NLMSG_ERROR with a positive code) is counted and skipped,
  // and parsing goes on with the next one.
  size_t malformed = 0;
  // Parsing stopped early because the stream could not be trusted: fewer
  // than 16 bytes left, nlmsg_len below 16 or beyond the end of the buffer,
  // or an NLMSG_ERROR too short to hold its code (skipping it could hide the
  // end of the dump). That message counts in `malformed` too; the bytes after
  // it are not examined.
  bool corrupt = false;
  // Messages skipped because their nlmsg_seq / nlmsg_pid did not match the
  // filter (replies to an earlier, abandoned request).
  size_t foreign = 0;
};

// Which replies ParseDiagMessages accepts; unset fields match anything.
struct ReplyFilter {
  std::optional<uint32_t> seq;
  std::optional<uint32_t> portid;
};

// Walks `len` bytes of netlink messages (one or more recv() datagrams laid end
// to end) and appends every SOCK_DIAG_BY_FAMILY reply for TCP over IPv4/IPv6
// to `out`. Robust to arbitrary bytes: never reads outside [data, data+len),
// makes no alignment assumptions, trusts no length. `data` may be null when
// `len` is 0. Control messages (NOOP, ERROR, DONE) are honoured whatever
// their content, so a reply with another seq must be filtered out first:
// the second overload does that.
ParseResult ParseDiagMessages(const uint8_t* data, size_t len,
                              std::vector<DiagSocket>* out);
ParseResult ParseDiagMessages(const uint8_t* data, size_t len,
                              const ReplyFilter& filter,
                              std::vector<DiagSocket>* out);

// idiag_states bit of a state number.
inline constexpr uint32_t StateBit(TcpState state) {
  return 1u << static_cast<uint32_t>(state);
}

// States 1..12. Covers request sockets (the kernel adds NEW_SYN_RECV when
// SYN_RECV is asked for) and timewait sockets of both substates: the kernel
// filters timewait sockets on their substate, so bit 6 alone returns only
// those in TIME_WAIT and bit 5 those in FIN_WAIT2. BOUND_INACTIVE (13) is left
// out: bound-only sockets are not connections.
inline constexpr uint32_t kAllStatesMask = (1u << 13) - 2;

// DumpTcp gives up beyond this many sockets rather than eat all memory.
inline constexpr size_t kMaxDumpSockets = 10'000'000;

class SockDiagClient {
 public:
  // Opens a NETLINK_SOCK_DIAG socket in the caller's network namespace, or,
  // when `netns_fd` >= 0 (an open /run/netns/NAME or /proc/PID/ns/net), in
  // that namespace: a short-lived helper thread setns()es into it and opens the
  // socket there, so no thread of the caller changes namespace. The socket
  // stays in that namespace for its life. `netns_fd` is not kept.
  // Throws std::system_error if the namespace cannot be entered (setns needs
  // CAP_SYS_ADMIN; EINVAL for a descriptor that is not a network namespace)
  // or the socket cannot be opened.
  explicit SockDiagClient(int netns_fd = -1);
  ~SockDiagClient();
  SockDiagClient(SockDiagClient&& other) noexcept;
  SockDiagClient& operator=(SockDiagClient&& other) noexcept;
  SockDiagClient(const SockDiagClient&) = delete;
  SockDiagClient& operator=(const SockDiagClient&) = delete;

  // Every TCP socket (both families, in one walk of the kernel's tables
  // where it can) whose state bit is in
  // `state_mask` (bits as the kernel numbers states, see kAllStatesMask for
  // the subtleties), with netns filled in. INET_DIAG_INFO (struct
  // tcp_info, ~240 bytes more per socket) only if `with_tcp_info`.
  // The kernel walks its hash tables while sockets come and go: a socket that
  // changes state during the dump may show up twice or not at all.
  // Throws std::system_error on an I/O error, an error reply (its errno), a
  // truncated datagram (EMSGSIZE), a reply that cannot be parsed (EBADMSG),
  // no reply for 30 s (ETIMEDOUT), or more than kMaxDumpSockets sockets
  // (EOVERFLOW). After a throw the client stays usable: leftovers of the
  // abandoned dump are recognised by their sequence number and dropped.
  std::vector<DiagSocket> DumpTcp(uint32_t state_mask,
                                  bool with_tcp_info = false);
  std::vector<DiagSocket> DumpAll() { return DumpTcp(kAllStatesMask); }

  // Inode of the socket's network namespace (as in Event::netns), 0 if it
  // could not be read.
  uint32_t netns() const { return netns_; }
  // Messages skipped as malformed over this client's life: a kernel newer
  // than this code may report states it does not know.
  uint64_t malformed() const { return malformed_; }

 private:
  void DumpBothFamilies(uint32_t state_mask, uint8_t ext,
                        std::vector<DiagSocket>* out);
  void DumpFamily(uint8_t family, uint32_t state_mask, uint8_t ext,
                  std::vector<DiagSocket>* out);
  // Sends one dump request and reads its replies into `out`.
  void Exchange(const void* request, size_t size, uint32_t seq,
                std::vector<DiagSocket>* out);

  int fd_ = -1;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
  uint32_t netns_ = 0;
  uint64_t malformed_ = 0;
  // The kernel refused the one-walk request (TCPDIAG_GETSOCK): one dump
  // per family instead.
  bool one_walk_refused_ = false;
  std::vector<uint8_t> buffer_;
};

}  // namespace tcpstated
