// libFuzzer target: inet_diag dump replies (tcpstated/sock_diag.h).
//
// The input is a byte stream as recv() would hand it over: netlink messages
// laid end to end. ParseDiagMessages runs on it through both overloads, at an
// aligned and at an odd address, and its result is compared with a reference
// walk of the framing written from the header's contract (not from the
// parser's code):
//  - done / error / corrupt / foreign are exactly what the framing says;
//  - every socket returned comes from a SOCK_DIAG_BY_FAMILY message (or a
//    TCPDIAG_GETSOCK one, the reply to the one-walk request of both
//    families) whose fixed part is usable (payload >= sizeof(inet_diag_msg),
//    AF_INET or AF_INET6, state 1..13), in order, with every field copied
//    (ports in host order, addresses, cookie, inode, queues, timer, and
//    tcpi_last_ack_recv from the last INET_DIAG_INFO attribute long enough to
//    hold it), and a state the header allows for it;
//  - such messages that were not returned (broken rtattrs) and every other
//    unusable message are counted in `malformed`, and nothing else is;
//  - sockets are appended: what `out` held before is left alone.
// Any mismatch aborts (a finding).

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "tcpstated/sock_diag.h"
#include "tcpstated/tcp_state.h"

namespace {

using tcpstated::DiagSocket;
using tcpstated::ParseResult;
using tcpstated::ReplyFilter;
using tcpstated::TcpState;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_sock_diag: invariant violated: %s\n", what);
  std::abort();
}

void Check(bool ok, const char* what) {
  if (!ok) Fail(what);
}

constexpr size_t kHeaderLen = 16;
constexpr size_t Align4(size_t n) { return (n + 3) & ~static_cast<size_t>(3); }

// A SOCK_DIAG_BY_FAMILY message with a usable fixed part.
struct Candidate {
  inet_diag_msg msg;
  uint32_t last_ack_ms;  // what its attributes say, if they are well formed
};

// What the framing alone says about a buffer.
struct Expected {
  ParseResult result;  // malformed: the messages surely malformed
  std::vector<Candidate> candidates;
};

// tcpi_last_ack_recv from the attributes after the fixed message (netlink
// attribute framing: length, type, value, padded to 4 bytes): the last
// INET_DIAG_INFO whose value reaches that field, else kNoTcpInfo.
uint32_t ReferenceLastAck(const uint8_t* attrs, size_t len) {
  const size_t field = offsetof(tcp_info, tcpi_last_ack_recv);
  uint32_t value = tcpstated::kNoTcpInfo;
  size_t at = 0;
  while (len - at >= 4) {
    uint16_t nla_len, nla_type;
    std::memcpy(&nla_len, attrs + at, 2);
    std::memcpy(&nla_type, attrs + at + 2, 2);
    if (nla_len < 4 || nla_len > len - at) break;  // broken: not returned
    if ((nla_type & NLA_TYPE_MASK) == INET_DIAG_INFO &&
        nla_len - 4u >= field + 4) {
      std::memcpy(&value, attrs + at + 4 + field, 4);
    }
    at += Align4(nla_len);
    if (at >= len) break;
  }
  return value;
}

Expected ReferenceWalk(const uint8_t* data, size_t len,
                       const ReplyFilter& filter) {
  Expected x;
  size_t offset = 0;
  while (offset < len) {
    const size_t remaining = len - offset;
    if (remaining < kHeaderLen) {
      x.result.malformed++;
      x.result.corrupt = true;
      return x;
    }
    nlmsghdr h;
    std::memcpy(&h, data + offset, sizeof(h));
    if (h.nlmsg_len < kHeaderLen || h.nlmsg_len > remaining) {
      x.result.malformed++;
      x.result.corrupt = true;
      return x;
    }
    const uint8_t* payload = data + offset + kHeaderLen;
    const size_t payload_len = h.nlmsg_len - kHeaderLen;
    if ((filter.seq && h.nlmsg_seq != *filter.seq) ||
        (filter.portid && h.nlmsg_pid != *filter.portid)) {
      x.result.foreign++;
    } else if (h.nlmsg_type == NLMSG_DONE) {
      x.result.done = true;
      if (payload_len >= sizeof(int)) {
        int code;
        std::memcpy(&code, payload, sizeof(code));
        if (code < 0) x.result.error = code;
      }
      return x;
    } else if (h.nlmsg_type == NLMSG_ERROR) {
      if (payload_len < sizeof(int)) {
        x.result.malformed++;
        x.result.corrupt = true;
        return x;
      }
      int code;
      std::memcpy(&code, payload, sizeof(code));
      if (code < 0) {
        x.result.error = code;
        return x;
      }
      if (code > 0) x.result.malformed++;
    } else if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY ||
               h.nlmsg_type == TCPDIAG_GETSOCK) {
      inet_diag_msg msg;
      if (payload_len < sizeof(msg)) {
        x.result.malformed++;
      } else {
        std::memcpy(&msg, payload, sizeof(msg));
        if ((msg.idiag_family != AF_INET && msg.idiag_family != AF_INET6) ||
            msg.idiag_state < 1 || msg.idiag_state > 13) {
          x.result.malformed++;
        } else {
          const size_t attrs = Align4(sizeof(msg));
          x.candidates.push_back(
              {msg, payload_len > attrs
                        ? ReferenceLastAck(payload + attrs, payload_len - attrs)
                        : tcpstated::kNoTcpInfo});
        }
      }
    } else if (h.nlmsg_type != NLMSG_NOOP) {
      x.result.malformed++;
    }
    offset += Align4(h.nlmsg_len);
  }
  return x;
}

// Every field of `s` as the header says it is derived from `msg` (the
// SYN_RECV/request-socket distinction depends on rtattrs, so both are
// allowed for an inode-0 SYN_RECV).
bool Matches(const DiagSocket& s, const Candidate& c) {
  const inet_diag_msg& msg = c.msg;
  const bool ipv6 = msg.idiag_family == AF_INET6;
  const size_t addr_len = ipv6 ? 16 : 4;
  tcpstated::Address saddr{};
  tcpstated::Address daddr{};
  std::memcpy(saddr.data(), msg.id.idiag_src, addr_len);
  std::memcpy(daddr.data(), msg.id.idiag_dst, addr_len);
  const uint64_t cookie = static_cast<uint64_t>(msg.id.idiag_cookie[0]) |
                          static_cast<uint64_t>(msg.id.idiag_cookie[1]) << 32;
  bool state_ok = static_cast<unsigned>(s.state) == msg.idiag_state;
  if (msg.idiag_state == 3 && msg.idiag_inode == 0) {
    state_ok =
        s.state == TcpState::kSynRecv || s.state == TcpState::kNewSynRecv;
  }
  const bool timewait =
      msg.idiag_timer == 3 && (msg.idiag_state == 5 || msg.idiag_state == 6);
  return state_ok && s.ipv6 == ipv6 && s.timewait == timewait &&
         s.timer == msg.idiag_timer && s.retrans == msg.idiag_retrans &&
         s.sport == ntohs(msg.id.idiag_sport) &&
         s.dport == ntohs(msg.id.idiag_dport) && s.saddr == saddr &&
         s.daddr == daddr && s.cookie == cookie && s.inode == msg.idiag_inode &&
         s.uid == msg.idiag_uid && s.rqueue == msg.idiag_rqueue &&
         s.wqueue == msg.idiag_wqueue && s.expires_ms == msg.idiag_expires &&
         s.ifindex == msg.id.idiag_if && s.netns == 0 &&
         s.last_ack_ms == c.last_ack_ms;
}

bool SameSocket(const DiagSocket& a, const DiagSocket& b) {
  return a.state == b.state && a.timewait == b.timewait && a.ipv6 == b.ipv6 &&
         a.timer == b.timer && a.retrans == b.retrans && a.sport == b.sport &&
         a.dport == b.dport && a.saddr == b.saddr && a.daddr == b.daddr &&
         a.cookie == b.cookie && a.inode == b.inode && a.uid == b.uid &&
         a.rqueue == b.rqueue && a.wqueue == b.wqueue &&
         a.expires_ms == b.expires_ms && a.ifindex == b.ifindex &&
         a.netns == b.netns && a.last_ack_ms == b.last_ack_ms;
}

bool SameResult(const ParseResult& a, const ParseResult& b) {
  return a.done == b.done && a.error == b.error && a.malformed == b.malformed &&
         a.corrupt == b.corrupt && a.foreign == b.foreign;
}

DiagSocket Sentinel() {
  DiagSocket s;
  s.state = TcpState::kListen;
  s.sport = 0xbeef;
  s.cookie = 0x5e171e15e171e1ULL;
  s.netns = 7;
  return s;
}

// Parses with `filter` (nullopt: the filterless overload) and checks the
// result against the reference walk. Returns the sockets parsed.
std::vector<DiagSocket> ParseAndCheck(const uint8_t* data, size_t len,
                                      const std::optional<ReplyFilter>& filter,
                                      ParseResult* result_out) {
  std::vector<DiagSocket> out = {Sentinel()};
  const ParseResult result =
      filter ? tcpstated::ParseDiagMessages(data, len, *filter, &out)
             : tcpstated::ParseDiagMessages(data, len, &out);
  Check(!out.empty() && SameSocket(out.front(), Sentinel()),
        "sockets already in `out` were touched");
  out.erase(out.begin());

  const Expected x = ReferenceWalk(data, len, filter.value_or(ReplyFilter{}));
  Check(result.done == x.result.done, "done differs from the framing");
  Check(result.error == x.result.error, "error differs from the framing");
  Check(result.error <= 0, "positive error");
  Check(result.corrupt == x.result.corrupt, "corrupt differs from the framing");
  Check(result.foreign == x.result.foreign, "foreign differs from the framing");
  Check(!(result.done && result.corrupt), "done and corrupt");
  Check(!result.corrupt || result.malformed >= 1, "corrupt but not malformed");

  // Sockets: an in-order subsequence of the usable messages, fields copied.
  Check(out.size() <= x.candidates.size(), "more sockets than messages");
  size_t next = 0;
  for (const DiagSocket& s : out) {
    Check(
        tcpstated::StateFromNumber(static_cast<unsigned>(s.state)).has_value(),
        "socket with a state outside 1..13");
    Check(!s.timewait || s.state == TcpState::kTimeWait ||
              s.state == TcpState::kFinWait2,
          "timewait socket in a state other than TIME_WAIT/FIN_WAIT2");
    if (!s.ipv6) {
      for (size_t i = 4; i < s.saddr.size(); ++i) {
        Check(s.saddr[i] == 0 && s.daddr[i] == 0,
              "IPv4 socket with bytes beyond the address");
      }
    }
    while (next < x.candidates.size() && !Matches(s, x.candidates[next])) {
      ++next;
    }
    Check(next < x.candidates.size(),
          "socket that matches no message (fields not copied?)");
    ++next;
  }
  // Usable-looking messages that were dropped (broken rtattrs) are
  // malformed; so is everything the framing calls malformed; nothing else.
  const size_t dropped = x.candidates.size() - out.size();
  Check(result.malformed == x.result.malformed + dropped,
        "malformed count differs from the messages that were not used");
  if (result_out != nullptr) *result_out = result;
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Null and empty input.
  {
    std::vector<DiagSocket> out;
    const ParseResult r = tcpstated::ParseDiagMessages(nullptr, 0, &out);
    Check(out.empty() && SameResult(r, ParseResult{}), "null input");
  }

  ParseResult plain;
  const std::vector<DiagSocket> sockets =
      ParseAndCheck(data, size, std::nullopt, &plain);

  // The filter overload with no filter is the same function.
  ParseResult unfiltered;
  const std::vector<DiagSocket> same =
      ParseAndCheck(data, size, ReplyFilter{}, &unfiltered);
  Check(SameResult(plain, unfiltered), "overloads disagree");
  Check(same.size() == sockets.size(), "overloads disagree on sockets");
  for (size_t i = 0; i < same.size(); ++i) {
    Check(SameSocket(same[i], sockets[i]), "overloads disagree on a socket");
  }

  // No alignment assumptions: the same bytes one byte off.
  {
    std::vector<uint8_t> shifted(size + 1);
    if (size != 0) std::memcpy(shifted.data() + 1, data, size);
    ParseResult odd;
    const std::vector<DiagSocket> odd_sockets =
        ParseAndCheck(shifted.data() + 1, size, std::nullopt, &odd);
    Check(SameResult(plain, odd), "result depends on alignment");
    Check(odd_sockets.size() == sockets.size(), "sockets depend on alignment");
  }

  // Filters: the first message's own seq and portid (a real reply), and
  // each alone, so that later messages with other values become foreign.
  if (size >= kHeaderLen) {
    nlmsghdr first;
    std::memcpy(&first, data, sizeof(first));
    ReplyFilter both;
    both.seq = first.nlmsg_seq;
    both.portid = first.nlmsg_pid;
    ParseAndCheck(data, size, both, nullptr);
    ReplyFilter seq_only;
    seq_only.seq = first.nlmsg_seq;
    ParseAndCheck(data, size, seq_only, nullptr);
    ReplyFilter portid_only;
    portid_only.portid = first.nlmsg_pid;
    ParseAndCheck(data, size, portid_only, nullptr);
    // Another request's seq: most messages become foreign.
    ReplyFilter other;
    other.seq = first.nlmsg_seq + 1;
    ParseAndCheck(data, size, other, nullptr);
  }
  return 0;
}
