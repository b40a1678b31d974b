// Decoding of inet_diag dump replies. Fuzzed (tests/fuzz/corpus/sock_diag):
// every read is bounds-checked against the caller's buffer and goes through
// memcpy, because netlink gives no alignment guarantee we may rely on once
// lengths are untrusted.

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstring>

#include "tcpstated/sock_diag.h"

namespace tcpstated {
namespace {

constexpr size_t kHeaderLen = sizeof(nlmsghdr);
static_assert(kHeaderLen == 16);
static_assert(sizeof(inet_diag_msg) == 72);

constexpr size_t Align4(size_t n) { return (n + 3) & ~static_cast<size_t>(3); }

enum class AttrScan { kOk, kBroken };

// Where tcp_info's tcpi_last_ack_recv ends: an INET_DIAG_INFO shorter than
// that (a kernel's smaller struct, or garbage) does not carry it.
constexpr size_t kLastAckRecvEnd =
    offsetof(tcp_info, tcpi_last_ack_recv) + sizeof(uint32_t);
constexpr size_t kLastDataRecvEnd =
    offsetof(tcp_info, tcpi_last_data_recv) + sizeof(uint32_t);
static_assert(kLastDataRecvEnd < kLastAckRecvEnd);

// What ScanAttributes takes from INET_DIAG_INFO.
struct TcpInfoFields {
  uint32_t last_ack_ms = kNoTcpInfo;
  uint32_t last_data_recv_ms = kNoTcpInfo;
  uint8_t probes = 0;
  uint8_t retransmits = 0;
  uint8_t backoff = 0;
};

void ReadTcpInfo(const uint8_t* info, size_t len, TcpInfoFields* out) {
  if (len < kLastAckRecvEnd) return;
  std::memcpy(&out->last_ack_ms, info + offsetof(tcp_info, tcpi_last_ack_recv),
              sizeof(out->last_ack_ms));
  std::memcpy(&out->last_data_recv_ms,
              info + offsetof(tcp_info, tcpi_last_data_recv),
              sizeof(out->last_data_recv_ms));
  out->retransmits = info[offsetof(tcp_info, tcpi_retransmits)];
  out->probes = info[offsetof(tcp_info, tcpi_probes)];
  out->backoff = info[offsetof(tcp_info, tcpi_backoff)];
}

// Walks the rtattrs after the fixed message. INET_DIAG_SHUTDOWN tells full
// sockets from request sockets; INET_DIAG_INFO (when asked for) gives
// tcpi_last_ack_recv and the liveness fields. A last attribute without its
// padding, or up to 3 stray bytes at the end, are tolerated as the kernel's own
// nla_parse does; a length that points outside the message is not.
AttrScan ScanAttributes(const uint8_t* p, size_t len, bool* has_shutdown,
                        TcpInfoFields* info) {
  while (len >= sizeof(nlattr)) {
    nlattr attr;
    std::memcpy(&attr, p, sizeof(attr));
    if (attr.nla_len < sizeof(nlattr) || attr.nla_len > len) {
      return AttrScan::kBroken;
    }
    const uint16_t type = attr.nla_type & NLA_TYPE_MASK;
    if (type == INET_DIAG_SHUTDOWN) {
      *has_shutdown = true;
    } else if (type == INET_DIAG_INFO) {
      ReadTcpInfo(p + sizeof(nlattr), attr.nla_len - sizeof(nlattr), info);
    }
    size_t step = Align4(attr.nla_len);
    if (step >= len) break;
    p += step;
    len -= step;
  }
  return AttrScan::kOk;
}

// Decodes one SOCK_DIAG_BY_FAMILY (or TCPDIAG_GETSOCK) payload; false if it
// is unusable.
bool DecodeSocket(const uint8_t* payload, size_t len, DiagSocket* out) {
  if (len < sizeof(inet_diag_msg)) return false;
  inet_diag_msg msg;
  std::memcpy(&msg, payload, sizeof(msg));
  if (msg.idiag_family != AF_INET && msg.idiag_family != AF_INET6) {
    return false;
  }
  std::optional<TcpState> state = StateFromNumber(msg.idiag_state);
  if (!state) return false;

  bool has_shutdown = false;
  TcpInfoFields info;
  size_t attrs_at = Align4(sizeof(inet_diag_msg));
  if (len > attrs_at &&
      ScanAttributes(payload + attrs_at, len - attrs_at, &has_shutdown,
                     &info) == AttrScan::kBroken) {
    return false;
  }

  DiagSocket s;
  s.ipv6 = msg.idiag_family == AF_INET6;
  s.timer = msg.idiag_timer;
  s.retrans = msg.idiag_retrans;
  s.sport = ntohs(msg.id.idiag_sport);
  s.dport = ntohs(msg.id.idiag_dport);
  // The kernel zeroes the rest of idiag_src for AF_INET; copying only the
  // address keeps Address comparisons right even if it someday does not.
  size_t addr_len = s.ipv6 ? 16 : 4;
  std::memcpy(s.saddr.data(), msg.id.idiag_src, addr_len);
  std::memcpy(s.daddr.data(), msg.id.idiag_dst, addr_len);
  s.cookie = static_cast<uint64_t>(msg.id.idiag_cookie[0]) |
             static_cast<uint64_t>(msg.id.idiag_cookie[1]) << 32;
  s.ifindex = msg.id.idiag_if;
  s.inode = msg.idiag_inode;
  s.uid = msg.idiag_uid;
  s.rqueue = msg.idiag_rqueue;
  s.wqueue = msg.idiag_wqueue;
  s.expires_ms = msg.idiag_expires;
  s.last_ack_ms = info.last_ack_ms;
  s.last_data_recv_ms = info.last_data_recv_ms;
  s.probes = info.probes;
  s.retransmits = info.retransmits;
  s.backoff = info.backoff;

  s.state = *state;
  if (*state == TcpState::kSynRecv && msg.idiag_inode == 0 && !has_shutdown) {
    s.state = TcpState::kNewSynRecv;
  }
  // Only inet_twsk_diag_fill reports timer 3; full sockets use 0, 1, 2, 4.
  s.timewait = msg.idiag_timer == 3 &&
               (*state == TcpState::kTimeWait || *state == TcpState::kFinWait2);
  *out = s;
  return true;
}

int ReadInt(const uint8_t* p) {
  int value;
  std::memcpy(&value, p, sizeof(value));
  return value;
}

}  // namespace

ParseResult ParseDiagMessages(const uint8_t* data, size_t len,
                              std::vector<DiagSocket>* out) {
  return ParseDiagMessages(data, len, ReplyFilter{}, out);
}

ParseResult ParseDiagMessages(const uint8_t* data, size_t len,
                              const ReplyFilter& filter,
                              std::vector<DiagSocket>* out) {
  ParseResult result;
  if (data == nullptr) return result;
  size_t offset = 0;
  while (offset < len) {
    size_t remaining = len - offset;
    const uint8_t* msg = data + offset;
    nlmsghdr header;
    if (remaining < kHeaderLen) {
      ++result.malformed;
      result.corrupt = true;
      return result;
    }
    std::memcpy(&header, msg, kHeaderLen);
    if (header.nlmsg_len < kHeaderLen || header.nlmsg_len > remaining) {
      ++result.malformed;
      result.corrupt = true;
      return result;
    }
    const uint8_t* payload = msg + kHeaderLen;
    size_t payload_len = header.nlmsg_len - kHeaderLen;

    if ((filter.seq && header.nlmsg_seq != *filter.seq) ||
        (filter.portid && header.nlmsg_pid != *filter.portid)) {
      ++result.foreign;
    } else if (header.nlmsg_type == NLMSG_DONE) {
      result.done = true;
      // A dump that failed half-way ends with DONE carrying the errno.
      if (payload_len >= sizeof(int) && ReadInt(payload) < 0) {
        result.error = ReadInt(payload);
      }
      return result;
    } else if (header.nlmsg_type == NLMSG_ERROR) {
      // Losing an error would leave the caller waiting for a DONE that is
      // never coming, so an unreadable one stops everything.
      if (payload_len < sizeof(int)) {
        ++result.malformed;
        result.corrupt = true;
        return result;
      }
      int error = ReadInt(payload);
      if (error < 0) {
        result.error = error;
        return result;
      }
      if (error > 0) ++result.malformed;
      // 0 is an acknowledgement: nothing to do.
    } else if (header.nlmsg_type == SOCK_DIAG_BY_FAMILY ||
               header.nlmsg_type == TCPDIAG_GETSOCK) {
      // TCPDIAG_GETSOCK: the reply to the one-walk request of both families
      // (SockDiagClient::DumpTcp), with the same payload.
      DiagSocket socket;
      if (DecodeSocket(payload, payload_len, &socket)) {
        out->push_back(socket);
      } else {
        ++result.malformed;
      }
    } else if (header.nlmsg_type != NLMSG_NOOP) {
      ++result.malformed;
    }
    // header.nlmsg_len <= remaining, so this cannot wrap.
    offset += Align4(header.nlmsg_len);
  }
  return result;
}

}  // namespace tcpstated
