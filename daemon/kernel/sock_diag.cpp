#include "tcpstated/sock_diag.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <climits>
#include <system_error>
#include <thread>
#include <utility>

namespace tcpstated {
namespace {

// The kernel caps a dump datagram at 32 KiB (netlink_dump), so a buffer twice
// that is never truncated in practice; MSG_TRUNC is still checked.
constexpr size_t kReceiveBufferSize = 64 * 1024;
// A dump is served by the kernel as fast as we read it; silence this long
// means something is wrong, and a daemon must not hang on it.
constexpr time_t kReceiveTimeoutSec = 30;

[[noreturn]] void ThrowErrno(int error, const char* what) {
  throw std::system_error(error, std::system_category(), what);
}

struct OpenedSocket {
  int fd = -1;
  int error = 0;
  const char* what = nullptr;
  uint32_t netns = 0;
};

// Must run on the thread whose namespace the socket is to live in. Does not
// throw, so that it is safe on the helper thread.
OpenedSocket OpenHere() {
  OpenedSocket opened;
  opened.fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (opened.fd < 0) {
    opened.error = errno;
    opened.what = "socket(NETLINK_SOCK_DIAG)";
    return opened;
  }
  // thread-self, not self: after setns only this thread is in the namespace.
  struct stat st;
  if (stat("/proc/thread-self/ns/net", &st) == 0) {
    opened.netns = static_cast<uint32_t>(st.st_ino);
  }
  return opened;
}

// setns() changes only the calling thread's namespace; doing it on a thread
// that dies right after leaves every other thread where it was.
OpenedSocket OpenInNamespace(int netns_fd) {
  OpenedSocket opened;
  std::thread helper([&opened, netns_fd] {
    if (setns(netns_fd, CLONE_NEWNET) != 0) {
      opened.error = errno;
      opened.what = "setns(CLONE_NEWNET)";
      return;
    }
    opened = OpenHere();
  });
  helper.join();
  return opened;
}

}  // namespace

SockDiagClient::SockDiagClient(int netns_fd) : buffer_(kReceiveBufferSize) {
  OpenedSocket opened = netns_fd >= 0 ? OpenInNamespace(netns_fd) : OpenHere();
  if (opened.fd < 0) ThrowErrno(opened.error, opened.what);
  fd_ = opened.fd;
  netns_ = opened.netns;
  // The destructor does not run for a constructor that throws.
  try {
    // Bind now rather than on first send, to learn the port id that the
    // replies must carry.
    sockaddr_nl local{};
    local.nl_family = AF_NETLINK;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
      ThrowErrno(errno, "bind(NETLINK_SOCK_DIAG)");
    }
    socklen_t local_len = sizeof(local);
    if (getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &local_len) !=
        0) {
      ThrowErrno(errno, "getsockname(NETLINK_SOCK_DIAG)");
    }
    portid_ = local.nl_pid;
    timeval timeout{};
    timeout.tv_sec = kReceiveTimeoutSec;
    if (setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) !=
        0) {
      ThrowErrno(errno, "setsockopt(SO_RCVTIMEO)");
    }
  } catch (...) {
    close(fd_);
    throw;
  }
}

SockDiagClient::~SockDiagClient() {
  if (fd_ >= 0) close(fd_);
}

SockDiagClient::SockDiagClient(SockDiagClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      portid_(other.portid_),
      seq_(other.seq_),
      netns_(other.netns_),
      malformed_(other.malformed_),
      one_walk_refused_(other.one_walk_refused_),
      buffer_(std::move(other.buffer_)) {}

SockDiagClient& SockDiagClient::operator=(SockDiagClient&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    portid_ = other.portid_;
    seq_ = other.seq_;
    netns_ = other.netns_;
    malformed_ = other.malformed_;
    one_walk_refused_ = other.one_walk_refused_;
    buffer_ = std::move(other.buffer_);
  }
  return *this;
}

std::vector<DiagSocket> SockDiagClient::DumpTcp(uint32_t state_mask,
                                                bool with_tcp_info) {
  if (fd_ < 0) ThrowErrno(EBADF, "SockDiagClient used after move");
  std::vector<DiagSocket> sockets;
  // Without INET_DIAG_INFO unless asked: keeps the full dumps cheap.
  const uint8_t ext =
      with_tcp_info ? static_cast<uint8_t>(1u << (INET_DIAG_INFO - 1)) : 0;
  if (!one_walk_refused_) {
    try {
      DumpBothFamilies(state_mask, ext, &sockets);
    } catch (const std::system_error& e) {
      // A kernel without the legacy request refuses it before any row: the
      // two-walk way, from now on. Any other failure is an error like any
      // other.
      const int error = e.code().value();
      const bool refused = error == EINVAL || error == EOPNOTSUPP ||
                           error == ENOENT || error == EPROTONOSUPPORT;
      if (!refused || !sockets.empty()) throw;
      one_walk_refused_ = true;
    }
  }
  if (one_walk_refused_) {
    DumpFamily(AF_INET, state_mask, ext, &sockets);
    DumpFamily(AF_INET6, state_mask, ext, &sockets);
  }
  for (DiagSocket& socket : sockets) socket.netns = netns_;
  return sockets;
}

void SockDiagClient::DumpBothFamilies(uint32_t state_mask, uint8_t ext,
                                      std::vector<DiagSocket>* out) {
  // A dump walks the host's whole established hash (every namespace's
  // sockets, both families in one table) whatever it asks for, and
  // SOCK_DIAG_BY_FAMILY takes one family at a time: two walks. The legacy
  // TCPDIAG_GETSOCK request is dumped as AF_UNSPEC by the kernel
  // (inet_diag_dump_compat): one walk for both families, the same rows,
  // replies typed TCPDIAG_GETSOCK (docs/performance.md, section 20). Its
  // request is the older inet_diag_req, whose layout differs from
  // inet_diag_req_v2 (the states come after the socket id).
  struct {
    nlmsghdr header;
    inet_diag_req body;
  } request{};
  request.header.nlmsg_len = sizeof(request);
  request.header.nlmsg_type = TCPDIAG_GETSOCK;
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request.header.nlmsg_seq = ++seq_;
  request.body.idiag_family = AF_UNSPEC;
  request.body.idiag_ext = ext;
  request.body.idiag_states = state_mask;
  Exchange(&request, sizeof(request), request.header.nlmsg_seq, out);
}

void SockDiagClient::DumpFamily(uint8_t family, uint32_t state_mask,
                                uint8_t ext, std::vector<DiagSocket>* out) {
  struct {
    nlmsghdr header;
    inet_diag_req_v2 body;
  } request{};
  request.header.nlmsg_len = sizeof(request);
  request.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request.header.nlmsg_seq = ++seq_;
  request.body.sdiag_family = family;
  request.body.sdiag_protocol = IPPROTO_TCP;
  request.body.idiag_ext = ext;
  request.body.idiag_states = state_mask;
  Exchange(&request, sizeof(request), request.header.nlmsg_seq, out);
}

void SockDiagClient::Exchange(const void* request, size_t size, uint32_t seq,
                              std::vector<DiagSocket>* out) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  for (;;) {
    ssize_t sent = sendto(fd_, request, size, 0,
                          reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel));
    if (sent == static_cast<ssize_t>(size)) break;
    if (sent < 0 && errno == EINTR) continue;
    ThrowErrno(sent < 0 ? errno : EIO, "send(SOCK_DIAG_BY_FAMILY)");
  }

  ReplyFilter filter;
  filter.seq = seq;
  filter.portid = portid_;
  for (;;) {
    iovec iov{buffer_.data(), buffer_.size()};
    sockaddr_nl from{};
    msghdr message{};
    message.msg_name = &from;
    message.msg_namelen = sizeof(from);
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    ssize_t received = recvmsg(fd_, &message, 0);
    if (received < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        ThrowErrno(ETIMEDOUT, "recv(SOCK_DIAG_BY_FAMILY)");
      }
      ThrowErrno(errno, "recv(SOCK_DIAG_BY_FAMILY)");
    }
    // The rest of a truncated datagram is gone: the dump would be incomplete.
    if (message.msg_flags & MSG_TRUNC) {
      ThrowErrno(EMSGSIZE, "recv(SOCK_DIAG_BY_FAMILY): datagram truncated");
    }
    // Any process may send to our port id; only the kernel's replies count.
    if (from.nl_pid != 0) continue;

    ParseResult parsed = ParseDiagMessages(
        buffer_.data(), static_cast<size_t>(received), filter, out);
    malformed_ += parsed.malformed;
    if (parsed.error < 0) {
      ThrowErrno(parsed.error == INT_MIN ? EPROTO : -parsed.error,
                 "SOCK_DIAG_BY_FAMILY dump");
    }
    if (parsed.corrupt) {
      ThrowErrno(EBADMSG, "SOCK_DIAG_BY_FAMILY dump: undecodable reply");
    }
    if (out->size() > kMaxDumpSockets) {
      ThrowErrno(EOVERFLOW, "SOCK_DIAG_BY_FAMILY dump: too many sockets");
    }
    if (parsed.done) return;
  }
}

}  // namespace tcpstated
