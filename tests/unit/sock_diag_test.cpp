// Unit tests of the inet_diag parser on hand-built netlink buffers (valid,
// truncated, lying and random), and of SockDiagClient against the running
// kernel (root only): loopback sockets in known states, a request socket, a
// timewait socket, and a fresh network namespace.

#include "tcpstated/sock_diag.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "tcpstated/tcp_state.h"

namespace {

using tcpstated::Address;
using tcpstated::DiagSocket;
using tcpstated::KernelState;
using tcpstated::ParseDiagMessages;
using tcpstated::ParseResult;
using tcpstated::ReplyFilter;
using tcpstated::SockDiagClient;
using S = tcpstated::TcpState;
using Bytes = std::vector<uint8_t>;

constexpr uint32_t kSeq = 7;
constexpr uint32_t kPortId = 4242;

// ---- Builders of kernel-like replies -------------------------------------

// What inet_sk_diag_fill / inet_twsk_diag_fill / inet_req_diag_fill would put
// in one message.
struct Spec {
  uint8_t family = AF_INET;
  uint8_t state = 1;
  uint8_t timer = 0;
  uint8_t retrans = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
  Bytes src = {127, 0, 0, 1};
  Bytes dst = {127, 0, 0, 1};
  uint64_t cookie = 0;
  uint32_t ifindex = 0;
  uint32_t expires = 0;
  uint32_t rqueue = 0;
  uint32_t wqueue = 0;
  uint32_t uid = 0;
  uint32_t inode = 0;
  bool shutdown_attr = true;  // every full socket has INET_DIAG_SHUTDOWN
  bool mark_attr = false;     // with CAP_NET_ADMIN, request sockets too
  bool pad_last_attr = true;  // kernel style; false leaves nlmsg_len unaligned
};

void AppendAttr(Bytes* out, uint16_t type, const Bytes& value, bool pad) {
  nlattr attr{};
  attr.nla_len = static_cast<uint16_t>(sizeof(attr) + value.size());
  attr.nla_type = type;
  const auto* p = reinterpret_cast<const uint8_t*>(&attr);
  out->insert(out->end(), p, p + sizeof(attr));
  out->insert(out->end(), value.begin(), value.end());
  if (pad) {
    while (out->size() % 4 != 0) out->push_back(0);
  }
}

Bytes DiagPayload(const Spec& spec) {
  inet_diag_msg msg{};
  msg.idiag_family = spec.family;
  msg.idiag_state = spec.state;
  msg.idiag_timer = spec.timer;
  msg.idiag_retrans = spec.retrans;
  msg.id.idiag_sport = htons(spec.sport);
  msg.id.idiag_dport = htons(spec.dport);
  std::memcpy(msg.id.idiag_src, spec.src.data(), spec.src.size());
  std::memcpy(msg.id.idiag_dst, spec.dst.data(), spec.dst.size());
  msg.id.idiag_if = spec.ifindex;
  msg.id.idiag_cookie[0] = static_cast<uint32_t>(spec.cookie);
  msg.id.idiag_cookie[1] = static_cast<uint32_t>(spec.cookie >> 32);
  msg.idiag_expires = spec.expires;
  msg.idiag_rqueue = spec.rqueue;
  msg.idiag_wqueue = spec.wqueue;
  msg.idiag_uid = spec.uid;
  msg.idiag_inode = spec.inode;
  const auto* p = reinterpret_cast<const uint8_t*>(&msg);
  Bytes payload(p, p + sizeof(msg));
  if (spec.mark_attr) {
    AppendAttr(&payload, INET_DIAG_MARK, {1, 0, 0, 0},
               spec.shutdown_attr || spec.pad_last_attr);
  }
  if (spec.shutdown_attr) {
    AppendAttr(&payload, INET_DIAG_SHUTDOWN, {0}, spec.pad_last_attr);
  }
  return payload;
}

// Appends one message and pads the buffer to the next message boundary, as
// the kernel lays them out in a datagram.
void AppendMessage(Bytes* out, uint16_t type, const Bytes& payload,
                   uint32_t seq = kSeq, uint32_t portid = kPortId) {
  nlmsghdr header{};
  header.nlmsg_len = static_cast<uint32_t>(sizeof(header) + payload.size());
  header.nlmsg_type = type;
  header.nlmsg_flags = NLM_F_MULTI;
  header.nlmsg_seq = seq;
  header.nlmsg_pid = portid;
  const auto* p = reinterpret_cast<const uint8_t*>(&header);
  out->insert(out->end(), p, p + sizeof(header));
  out->insert(out->end(), payload.begin(), payload.end());
  while (out->size() % 4 != 0) out->push_back(0);
}

void AppendSocket(Bytes* out, const Spec& spec, uint32_t seq = kSeq,
                  uint32_t portid = kPortId) {
  AppendMessage(out, SOCK_DIAG_BY_FAMILY, DiagPayload(spec), seq, portid);
}

Bytes IntPayload(int value) {
  Bytes payload(sizeof(value));
  std::memcpy(payload.data(), &value, sizeof(value));
  return payload;
}

void AppendDone(Bytes* out, int error = 0, uint32_t seq = kSeq) {
  AppendMessage(out, NLMSG_DONE, IntPayload(error), seq);
}

// nlmsgerr: the code, then the header of the request it answers.
void AppendError(Bytes* out, int error, uint32_t seq = kSeq) {
  Bytes payload = IntPayload(error);
  payload.resize(sizeof(nlmsgerr), 0);
  AppendMessage(out, NLMSG_ERROR, payload, seq);
}

void SetLength(Bytes* buffer, size_t message_offset, uint32_t len) {
  std::memcpy(buffer->data() + message_offset, &len, sizeof(len));
}

// Parses an exact-size heap copy, so that ASan sees any read past the end.
ParseResult Parse(const Bytes& buffer, std::vector<DiagSocket>* out,
                  size_t len = SIZE_MAX) {
  if (len == SIZE_MAX) len = buffer.size();
  Bytes copy(buffer.begin(), buffer.begin() + static_cast<ptrdiff_t>(len));
  return ParseDiagMessages(copy.empty() ? nullptr : copy.data(), copy.size(),
                           out);
}

Address V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  Address address{};
  address[0] = a;
  address[1] = b;
  address[2] = c;
  address[3] = d;
  return address;
}

Spec Ipv4Established() {
  Spec spec;
  spec.state = 1;
  spec.sport = 443;
  spec.dport = 51234;
  spec.src = {10, 0, 0, 1};
  spec.dst = {192, 168, 1, 20};
  spec.cookie = 0x0000'1234'8765'4321ULL;
  spec.inode = 99001;
  spec.uid = 1000;
  spec.rqueue = 17;
  spec.wqueue = 4096;
  spec.timer = 2;
  spec.expires = 7200000;
  spec.ifindex = 3;
  return spec;
}

Spec Ipv6Established() {
  Spec spec;
  spec.family = AF_INET6;
  spec.state = 8;
  spec.sport = 8080;
  spec.dport = 40000;
  spec.src = Bytes(16, 0);
  spec.src[0] = 0x20;
  spec.src[1] = 0x01;
  spec.src[2] = 0x0d;
  spec.src[3] = 0xb8;
  spec.src[15] = 1;
  spec.dst = spec.src;
  spec.dst[15] = 2;
  spec.cookie = 0xfedc'ba98'7654'3210ULL;
  spec.inode = 5;
  return spec;
}

// ---- Well-formed replies ---------------------------------------------------

TEST(SockDiagParserTest, ParsesIpv4Socket) {
  Bytes buffer;
  AppendSocket(&buffer, Ipv4Established());
  std::vector<DiagSocket> out;
  ParseResult result = Parse(buffer, &out);
  EXPECT_FALSE(result.done);
  EXPECT_EQ(result.error, 0);
  EXPECT_EQ(result.malformed, 0u);
  EXPECT_FALSE(result.corrupt);
  ASSERT_EQ(out.size(), 1u);
  const DiagSocket& s = out[0];
  EXPECT_EQ(s.state, S::kEstablished);
  EXPECT_FALSE(s.timewait);
  EXPECT_FALSE(s.ipv6);
  EXPECT_EQ(s.sport, 443);
  EXPECT_EQ(s.dport, 51234);
  EXPECT_EQ(s.saddr, V4(10, 0, 0, 1));
  EXPECT_EQ(s.daddr, V4(192, 168, 1, 20));
  EXPECT_EQ(s.cookie, 0x0000'1234'8765'4321ULL);
  EXPECT_EQ(s.inode, 99001u);
  EXPECT_EQ(s.uid, 1000u);
  EXPECT_EQ(s.rqueue, 17u);
  EXPECT_EQ(s.wqueue, 4096u);
  EXPECT_EQ(s.timer, 2);
  EXPECT_EQ(s.expires_ms, 7200000u);
  EXPECT_EQ(s.ifindex, 3u);
  EXPECT_EQ(s.netns, 0u);
}

// INET_DIAG_INFO (asked for by DumpTcp(..., true)) carries struct tcp_info;
// only tcpi_last_ack_recv is read, and only from an attribute long enough.
TEST(SockDiagParserTest, LastAckRecvFromTcpInfo) {
  Spec spec = Ipv4Established();
  spec.state = TCP_CLOSE_WAIT;
  tcp_info info{};
  info.tcpi_last_ack_recv = 123456;
  info.tcpi_last_data_recv = 999;  // a neighbouring field, not this one
  const auto* p = reinterpret_cast<const uint8_t*>(&info);
  const size_t needed = offsetof(tcp_info, tcpi_last_ack_recv) + 4;
  struct Case {
    size_t len;
    uint32_t expected;
  };
  for (const Case& c : {Case{sizeof(info), 123456u}, Case{needed, 123456u},
                        Case{needed - 1, tcpstated::kNoTcpInfo},
                        Case{0, tcpstated::kNoTcpInfo}}) {
    Bytes payload = DiagPayload(spec);
    AppendAttr(&payload, INET_DIAG_INFO, Bytes(p, p + c.len), true);
    Bytes buffer;
    AppendMessage(&buffer, SOCK_DIAG_BY_FAMILY, payload);
    std::vector<DiagSocket> out;
    ParseResult result = Parse(buffer, &out);
    EXPECT_EQ(result.malformed, 0u) << c.len;
    ASSERT_EQ(out.size(), 1u) << c.len;
    EXPECT_EQ(out[0].last_ack_ms, c.expected) << c.len;
    EXPECT_EQ(out[0].state, S::kCloseWait);
  }
  // Without the attribute (the daemon's full dumps): none.
  Bytes buffer;
  AppendSocket(&buffer, spec);
  std::vector<DiagSocket> out;
  Parse(buffer, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].last_ack_ms, tcpstated::kNoTcpInfo);
}

// The peer-liveness read takes tcpi_last_data_recv and the probe,
// retransmission and backoff counts from the same attribute, all or none.
TEST(SockDiagParserTest, LivenessFieldsFromTcpInfo) {
  Spec spec = Ipv4Established();
  tcp_info info{};
  info.tcpi_last_ack_recv = 5000;
  info.tcpi_last_data_recv = 7000;
  info.tcpi_probes = 3;
  info.tcpi_retransmits = 4;
  info.tcpi_backoff = 5;
  const auto* p = reinterpret_cast<const uint8_t*>(&info);
  const size_t needed = offsetof(tcp_info, tcpi_last_ack_recv) + 4;
  for (size_t len : {sizeof(info), needed, needed - 1}) {
    Bytes payload = DiagPayload(spec);
    AppendAttr(&payload, INET_DIAG_INFO, Bytes(p, p + len), true);
    Bytes buffer;
    AppendMessage(&buffer, SOCK_DIAG_BY_FAMILY, payload);
    std::vector<DiagSocket> out;
    Parse(buffer, &out);
    ASSERT_EQ(out.size(), 1u) << len;
    const bool full = len >= needed;
    EXPECT_EQ(out[0].last_data_recv_ms, full ? 7000u : tcpstated::kNoTcpInfo)
        << len;
    EXPECT_EQ(out[0].probes, full ? 3 : 0) << len;
    EXPECT_EQ(out[0].retransmits, full ? 4 : 0) << len;
    EXPECT_EQ(out[0].backoff, full ? 5 : 0) << len;
  }
}

TEST(SockDiagParserTest, Ipv4AddressIgnoresBytesBeyondTheFirstFour) {
  Spec spec = Ipv4Established();
  spec.src = {10, 0, 0, 1, 0xaa, 0xbb};
  Bytes buffer;
  AppendSocket(&buffer, spec);
  std::vector<DiagSocket> out;
  Parse(buffer, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].saddr, V4(10, 0, 0, 1));
}

TEST(SockDiagParserTest, ParsesIpv6Socket) {
  Spec spec = Ipv6Established();
  Bytes buffer;
  AppendSocket(&buffer, spec);
  std::vector<DiagSocket> out;
  ParseResult result = Parse(buffer, &out);
  EXPECT_EQ(result.malformed, 0u);
  ASSERT_EQ(out.size(), 1u);
  const DiagSocket& s = out[0];
  EXPECT_TRUE(s.ipv6);
  EXPECT_EQ(s.state, S::kCloseWait);
  EXPECT_EQ(s.sport, 8080);
  EXPECT_EQ(s.dport, 40000);
  EXPECT_EQ(0, std::memcmp(s.saddr.data(), spec.src.data(), 16));
  EXPECT_EQ(0, std::memcmp(s.daddr.data(), spec.dst.data(), 16));
  EXPECT_EQ(s.cookie, 0xfedc'ba98'7654'3210ULL);
}

TEST(SockDiagParserTest, ListenQueueFields) {
  Spec spec;
  spec.state = 10;
  spec.sport = 80;
  spec.src = {0, 0, 0, 0};
  spec.dst = {0, 0, 0, 0};
  spec.rqueue = 3;    // connections waiting for accept()
  spec.wqueue = 128;  // min(backlog, somaxconn)
  spec.inode = 777;
  Bytes buffer;
  AppendSocket(&buffer, spec);
  std::vector<DiagSocket> out;
  Parse(buffer, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].state, S::kListen);
  EXPECT_EQ(out[0].sport, 80);
  EXPECT_EQ(out[0].dport, 0);
  EXPECT_EQ(out[0].rqueue, 3u);
  EXPECT_EQ(out[0].wqueue, 128u);
}

// inet_twsk_diag_fill: substate in idiag_state, timer 3, no attributes.
TEST(SockDiagParserTest, TimewaitSockets) {
  Spec time_wait = Ipv4Established();
  time_wait.state = 6;
  time_wait.timer = 3;
  time_wait.expires = 59000;
  time_wait.inode = 0;
  time_wait.uid = 0;
  time_wait.rqueue = 0;
  time_wait.wqueue = 0;
  time_wait.shutdown_attr = false;
  time_wait.mark_attr = true;  // 6.18 adds INET_DIAG_MARK for CAP_NET_ADMIN
  Spec fin_wait2 = time_wait;
  fin_wait2.state = 5;
  fin_wait2.sport = 444;
  // An owned FIN_WAIT2 socket (shutdown(SHUT_WR)) is a full socket.
  Spec full_fin_wait2 = Ipv4Established();
  full_fin_wait2.state = 5;
  full_fin_wait2.timer = 0;

  Bytes buffer;
  AppendSocket(&buffer, time_wait);
  AppendSocket(&buffer, fin_wait2);
  AppendSocket(&buffer, full_fin_wait2);
  std::vector<DiagSocket> out;
  ParseResult result = Parse(buffer, &out);
  EXPECT_EQ(result.malformed, 0u);
  ASSERT_EQ(out.size(), 3u);

  EXPECT_EQ(out[0].state, S::kTimeWait);
  EXPECT_TRUE(out[0].timewait);
  EXPECT_EQ(KernelState(out[0]), S::kTimeWait);
  EXPECT_EQ(out[0].expires_ms, 59000u);
  EXPECT_EQ(out[0].cookie, time_wait.cookie);

  EXPECT_EQ(out[1].state, S::kFinWait2);
  EXPECT_TRUE(out[1].timewait);
  EXPECT_EQ(KernelState(out[1]), S::kTimeWait);

  EXPECT_EQ(out[2].state, S::kFinWait2);
  EXPECT_FALSE(out[2].timewait);
  EXPECT_EQ(KernelState(out[2]), S::kFinWait2);
}

// inet_req_diag_fill: reported as SYN_RECV, inode 0, timer 1, no
// INET_DIAG_SHUTDOWN (but INET_DIAG_MARK when the dumper has CAP_NET_ADMIN).
TEST(SockDiagParserTest, RequestSockets) {
  Spec request;
  request.state = 3;
  request.timer = 1;
  request.retrans = 2;
  request.sport = 80;
  request.dport = 33000;
  request.cookie = 77;
  request.inode = 0;
  request.shutdown_attr = false;
  Spec request_admin = request;
  request_admin.mark_attr = true;
  // A full child not accepted yet (TFO, simultaneous open): inode 0 too,
  // but it is a full socket and says so with INET_DIAG_SHUTDOWN.
  Spec full_child = request;
  full_child.shutdown_attr = true;
  Spec accepted = request;
  accepted.shutdown_attr = true;
  accepted.inode = 1234;
  Spec said_12 = request;
  said_12.state = 12;

  Bytes buffer;
  for (const Spec& spec :
       {request, request_admin, full_child, accepted, said_12}) {
    AppendSocket(&buffer, spec);
  }
  std::vector<DiagSocket> out;
  ParseResult result = Parse(buffer, &out);
  EXPECT_EQ(result.malformed, 0u);
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[0].state, S::kNewSynRecv);
  EXPECT_EQ(out[0].retrans, 2);
  EXPECT_EQ(out[0].cookie, 77u);
  EXPECT_EQ(out[0].dport, 33000);
  EXPECT_EQ(out[1].state, S::kNewSynRecv);
  EXPECT_EQ(out[2].state, S::kSynRecv);
  EXPECT_EQ(out[3].state, S::kSynRecv);
  EXPECT_EQ(out[4].state, S::kNewSynRecv);
  for (const DiagSocket& s : out) EXPECT_FALSE(s.timewait);
}

TEST(SockDiagParserTest, DoneEndsTheDump) {
  Bytes buffer;
  AppendSocket(&buffer, Ipv4Established());
  AppendDone(&buffer);
  AppendSocket(&buffer, Ipv6Established());  // never looked at
  std::vector<DiagSocket> out;
  ParseResult result = Parse(buffer, &out);
  EXPECT_TRUE(result.done);
  EXPECT_EQ(result.error, 0);
  EXPECT_EQ(result.malformed, 0u);
  EXPECT_EQ(out.size(), 1u);
}

TEST(SockDiagParserTest, DoneWithoutPayloadAndDoneWithErrno) {
  Bytes empty_done;
  AppendMessage(&empty_done, NLMSG_DONE, {});
  std::vector<DiagSocket> out;
  ParseResult result = Parse(empty_done, &out);
  EXPECT_TRUE(result.done);
  EXPECT_EQ(result.error, 0);

  Bytes failed;
  AppendDone(&failed, -EINTR);
  result = Parse(failed, &out);
  EXPECT_TRUE(result.done);
  EXPECT_EQ(result.error, -EINTR);
}

TEST(SockDiagParserTest, ErrorStopsParsing) {
  Bytes buffer;
  AppendSocket(&buffer, Ipv4Established());
  AppendError(&buffer, -ENOENT);
  AppendSocket(&buffer, Ipv6Established());
  std::vector<DiagSocket> out;
  ParseResult result = Parse(buffer, &out);
  EXPECT_FALSE(result.done);
  EXPECT_EQ(result.error, -ENOENT);
  EXPECT_EQ(out.size(), 1u);
}

TEST(SockDiagParserTest, AckNoopAndOddErrors) {
  Bytes buffer;
  AppendError(&buffer, 0);  // an ACK
  AppendMessage(&buffer, NLMSG_NOOP, {});
  AppendError(&buffer, 5);  // positive codes do not exist
  AppendSocket(&buffer, Ipv4Established());
  std::vector<DiagSocket> out;
  ParseResult result = Parse(buffer, &out);
  EXPECT_EQ(result.error, 0);
  EXPECT_EQ(result.malformed, 1u);
  EXPECT_FALSE(result.corrupt);
  EXPECT_EQ(out.size(), 1u);

  Bytes short_error;
  AppendMessage(&short_error, NLMSG_ERROR, {0xff, 0xff});
  AppendDone(&short_error);
  result = Parse(short_error, &out);
  EXPECT_TRUE(result.corrupt);
  EXPECT_FALSE(result.done);
  EXPECT_EQ(result.malformed, 1u);
}

TEST(SockDiagParserTest, FilterSkipsOtherRequestsReplies) {
  Bytes buffer;
  AppendSocket(&buffer, Ipv4Established(), kSeq - 1);
  AppendDone(&buffer, 0, kSeq - 1);  // the end of an abandoned dump
  AppendSocket(&buffer, Ipv4Established(), kSeq, kPortId + 1);
  AppendSocket(&buffer, Ipv6Established());
  AppendDone(&buffer);
  ReplyFilter filter;
  filter.seq = kSeq;
  filter.portid = kPortId;
  std::vector<DiagSocket> out;
  ParseResult result =
      ParseDiagMessages(buffer.data(), buffer.size(), filter, &out);
  EXPECT_TRUE(result.done);
  EXPECT_EQ(result.foreign, 3u);
  EXPECT_EQ(result.malformed, 0u);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].ipv6);
}

TEST(SockDiagParserTest, UnalignedLengthIsFollowedByAlignedMessage) {
  Spec spec = Ipv4Established();
  spec.pad_last_attr = false;  // nlmsg_len = 16 + 72 + 5
  Bytes buffer;
  AppendSocket(&buffer, spec);
  uint32_t first_len;
  std::memcpy(&first_len, buffer.data(), sizeof(first_len));
  ASSERT_EQ(first_len % 4, 1u);
  AppendSocket(&buffer, Ipv6Established());
  std::vector<DiagSocket> out;
  ParseResult result = Parse(buffer, &out);
  EXPECT_EQ(result.malformed, 0u);
  EXPECT_FALSE(result.corrupt);
  EXPECT_EQ(out.size(), 2u);
}

TEST(SockDiagParserTest, EmptyAndNullInput) {
  std::vector<DiagSocket> out;
  ParseResult result = ParseDiagMessages(nullptr, 0, &out);
  EXPECT_FALSE(result.done);
  EXPECT_EQ(result.malformed, 0u);
  EXPECT_TRUE(out.empty());
}

// ---- Malformed messages with sound headers: skipped, parsing goes on -------

TEST(SockDiagParserTest, BadContentIsSkipped) {
  std::vector<Bytes> bad_payloads;
  Spec unknown_family = Ipv4Established();
  unknown_family.family = AF_UNIX;
  bad_payloads.push_back(DiagPayload(unknown_family));
  for (uint8_t state : {0, 14, 255}) {
    Spec bad_state = Ipv4Established();
    bad_state.state = state;
    bad_payloads.push_back(DiagPayload(bad_state));
  }
  Bytes short_payload = DiagPayload(Ipv4Established());
  short_payload.resize(sizeof(inet_diag_msg) - 1);
  bad_payloads.push_back(short_payload);
  bad_payloads.push_back({});

  for (size_t i = 0; i < bad_payloads.size(); ++i) {
    SCOPED_TRACE(i);
    Bytes buffer;
    AppendMessage(&buffer, SOCK_DIAG_BY_FAMILY, bad_payloads[i]);
    AppendSocket(&buffer, Ipv6Established());
    AppendDone(&buffer);
    std::vector<DiagSocket> out;
    ParseResult result = Parse(buffer, &out);
    EXPECT_EQ(result.malformed, 1u);
    EXPECT_FALSE(result.corrupt);
    EXPECT_TRUE(result.done);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].ipv6);
  }
}

// The one-walk request of both families (TCPDIAG_GETSOCK) is answered in
// messages of that type, with the same payload.
TEST(SockDiagParserTest, OneWalkRepliesAreSockets) {
  Bytes buffer;
  AppendMessage(&buffer, TCPDIAG_GETSOCK, DiagPayload(Ipv4Established()));
  AppendSocket(&buffer, Ipv4Established());
  std::vector<DiagSocket> out;
  ParseResult result = Parse(buffer, &out);
  EXPECT_EQ(result.malformed, 0u);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].sport, out[1].sport);
  EXPECT_EQ(out[0].cookie, out[1].cookie);
}

TEST(SockDiagParserTest, UnknownMessageTypeIsSkipped) {
  Bytes buffer;
  AppendMessage(&buffer, NLMSG_MIN_TYPE + 1, DiagPayload(Ipv4Established()));
  AppendMessage(&buffer, NLMSG_OVERRUN, {});
  AppendSocket(&buffer, Ipv4Established());
  std::vector<DiagSocket> out;
  ParseResult result = Parse(buffer, &out);
  EXPECT_EQ(result.malformed, 2u);
  EXPECT_EQ(out.size(), 1u);
}

TEST(SockDiagParserTest, AttributeLengthLies) {
  for (uint16_t nla_len : {0, 1, 3, 9, 0xffff}) {
    SCOPED_TRACE(nla_len);
    Bytes payload = DiagPayload(Ipv4Established());
    // The SHUTDOWN attribute starts right after the fixed message.
    std::memcpy(payload.data() + sizeof(inet_diag_msg), &nla_len,
                sizeof(nla_len));
    Bytes buffer;
    AppendMessage(&buffer, SOCK_DIAG_BY_FAMILY, payload);
    AppendSocket(&buffer, Ipv6Established());
    std::vector<DiagSocket> out;
    ParseResult result = Parse(buffer, &out);
    EXPECT_EQ(result.malformed, 1u);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].ipv6);
  }
}

TEST(SockDiagParserTest, StrayBytesAfterAttributesAreTolerated) {
  Bytes payload = DiagPayload(Ipv4Established());
  payload.push_back(0);
  payload.push_back(0);
  Bytes buffer;
  AppendMessage(&buffer, SOCK_DIAG_BY_FAMILY, payload);
  std::vector<DiagSocket> out;
  ParseResult result = Parse(buffer, &out);
  EXPECT_EQ(result.malformed, 0u);
  EXPECT_EQ(out.size(), 1u);
}

// ---- Broken framing: parsing stops ------------------------------------------

// Two messages, the first with an unaligned nlmsg_len so that the padding
// between them is exercised too.
struct TwoMessages {
  Bytes buffer;
  size_t first_end = 0;     // first message's nlmsg_len
  size_t second_start = 0;  // NLMSG_ALIGN of that
};

TwoMessages MakeTwoMessages() {
  TwoMessages two;
  Spec first = Ipv4Established();
  first.pad_last_attr = false;
  AppendSocket(&two.buffer, first);
  uint32_t len;
  std::memcpy(&len, two.buffer.data(), sizeof(len));
  two.first_end = len;
  two.second_start = two.buffer.size();
  AppendSocket(&two.buffer, Ipv6Established());
  return two;
}

TEST(SockDiagParserTest, TruncatedAtEveryOffset) {
  TwoMessages two = MakeTwoMessages();
  for (size_t n = 0; n <= two.buffer.size(); ++n) {
    SCOPED_TRACE(n);
    std::vector<DiagSocket> out;
    ParseResult result = Parse(two.buffer, &out, n);
    EXPECT_FALSE(result.done);
    EXPECT_EQ(result.error, 0);
    size_t complete = (n >= two.first_end) + (n == two.buffer.size());
    bool clean = n == 0 || (n >= two.first_end && n <= two.second_start) ||
                 n == two.buffer.size();
    EXPECT_EQ(out.size(), complete);
    EXPECT_EQ(result.corrupt, !clean);
    EXPECT_EQ(result.malformed, clean ? 0u : 1u);
  }
}

TEST(SockDiagParserTest, LyingLengths) {
  TwoMessages two = MakeTwoMessages();
  const uint32_t total = static_cast<uint32_t>(two.buffer.size());
  // Lies in the first message: nothing can be trusted after them.
  for (uint32_t lie : {0u, 1u, 15u, total + 1, 0xffffffffu}) {
    SCOPED_TRACE(lie);
    Bytes buffer = two.buffer;
    SetLength(&buffer, 0, lie);
    std::vector<DiagSocket> out;
    ParseResult result = Parse(buffer, &out);
    EXPECT_TRUE(result.corrupt);
    EXPECT_EQ(result.malformed, 1u);
    EXPECT_TRUE(out.empty());
  }
  // Lies in the second: the first still counts.
  for (uint32_t lie :
       {0u, 15u, static_cast<uint32_t>(total - two.second_start + 1)}) {
    SCOPED_TRACE(lie);
    Bytes buffer = two.buffer;
    SetLength(&buffer, two.second_start, lie);
    std::vector<DiagSocket> out;
    ParseResult result = Parse(buffer, &out);
    EXPECT_TRUE(result.corrupt);
    EXPECT_EQ(result.malformed, 1u);
    EXPECT_EQ(out.size(), 1u);
  }
  // A length that fits but is too small for inet_diag_msg, so the second
  // message's header is then read from inside the first one's body.
  Bytes buffer = two.buffer;
  SetLength(&buffer, 0, 16 + 8);
  std::vector<DiagSocket> out;
  ParseResult result = Parse(buffer, &out);
  EXPECT_GE(result.malformed, 1u);
}

void ExpectSane(const std::vector<DiagSocket>& sockets) {
  for (const DiagSocket& s : sockets) {
    ASSERT_TRUE(tcpstated::StateFromNumber(static_cast<unsigned>(s.state)));
    if (!s.ipv6) {
      for (size_t i = 4; i < 16; ++i) ASSERT_EQ(s.saddr[i], 0);
    }
  }
}

TEST(SockDiagParserTest, RandomBytes) {
  std::mt19937 rng(20240607);
  for (int i = 0; i < 10000; ++i) {
    size_t len = std::uniform_int_distribution<size_t>(0, 600)(rng);
    Bytes buffer(len);
    for (uint8_t& b : buffer) b = static_cast<uint8_t>(rng());
    // Plausible headers now and then, so the parser gets past the first one.
    if (len >= 16 && i % 2 == 0) {
      uint32_t nlmsg_len = static_cast<uint32_t>(
          std::uniform_int_distribution<size_t>(0, len + 8)(rng));
      uint16_t type = (i % 4 == 0) ? SOCK_DIAG_BY_FAMILY : rng() % 4;
      std::memcpy(buffer.data(), &nlmsg_len, 4);
      std::memcpy(buffer.data() + 4, &type, 2);
    }
    std::vector<DiagSocket> out;
    ParseResult result = Parse(buffer, &out);
    EXPECT_LE(out.size(), len / (16 + sizeof(inet_diag_msg)));
    EXPECT_LE(result.error, 0);
    ExpectSane(out);
  }
}

TEST(SockDiagParserTest, MutatedValidBuffers) {
  Bytes valid;
  AppendSocket(&valid, Ipv4Established());
  Spec request;
  request.state = 3;
  request.timer = 1;
  request.shutdown_attr = false;
  request.mark_attr = true;
  AppendSocket(&valid, request);
  AppendSocket(&valid, Ipv6Established());
  AppendDone(&valid);
  std::mt19937 rng(42);
  for (int i = 0; i < 10000; ++i) {
    Bytes buffer = valid;
    int flips = 1 + static_cast<int>(rng() % 8);
    for (int f = 0; f < flips; ++f) {
      buffer[rng() % buffer.size()] = static_cast<uint8_t>(rng());
    }
    size_t len = buffer.size() - rng() % 8;
    std::vector<DiagSocket> out;
    Parse(buffer, &out, len);
    EXPECT_LE(out.size(), 3u);
    ExpectSane(out);
  }
}

// ---- Real kernel ------------------------------------------------------------

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

uint16_t LocalPort(int fd) {
  sockaddr_storage address{};
  socklen_t len = sizeof(address);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &len), 0);
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
}

uint64_t Cookie(int fd) {
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  EXPECT_EQ(getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len), 0);
  return cookie;
}

uint32_t Inode(int fd) {
  struct stat st {};
  EXPECT_EQ(fstat(fd, &st), 0);
  return static_cast<uint32_t>(st.st_ino);
}

uint32_t CurrentNetns() {
  struct stat st {};
  if (stat("/proc/thread-self/ns/net", &st) != 0) return 0;
  return static_cast<uint32_t>(st.st_ino);
}

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

int Listen(int backlog) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in address = Loopback(0);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
            0);
  EXPECT_EQ(listen(fd, backlog), 0);
  return fd;
}

int Connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in address = Loopback(port);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
            0)
      << std::strerror(errno);
  return fd;
}

using Predicate = std::function<bool(const DiagSocket&)>;

// Loopback handshakes and FINs are processed in softirq, usually before the
// syscall returns but not always: look again for a while.
const DiagSocket* FindEventually(SockDiagClient* client,
                                 std::vector<DiagSocket>* dump,
                                 const Predicate& predicate) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (;;) {
    *dump = client->DumpAll();
    for (const DiagSocket& s : *dump) {
      if (predicate(s)) return &s;
    }
    if (std::chrono::steady_clock::now() > deadline) return nullptr;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool OnLoopback(const DiagSocket& s) {
  return !s.ipv6 && s.saddr == V4(127, 0, 0, 1);
}

#define SKIP_UNLESS_ROOT() \
  if (geteuid() != 0) GTEST_SKIP() << "needs root"

TEST(SockDiagKernelTest, LoopbackListenerServerAndClient) {
  SKIP_UNLESS_ROOT();
  SockDiagClient client;
  EXPECT_EQ(client.netns(), CurrentNetns());

  Fd listener(Listen(16));
  uint16_t port = LocalPort(listener.get());
  Fd connected(Connect(port));
  uint16_t client_port = LocalPort(connected.get());

  std::vector<DiagSocket> dump;
  const DiagSocket* listen_entry =
      FindEventually(&client, &dump, [&](const DiagSocket& s) {
        return s.state == S::kListen && s.sport == port && s.rqueue == 1;
      });
  ASSERT_NE(listen_entry, nullptr) << "listener with one queued connection";
  EXPECT_EQ(listen_entry->wqueue, 16u);  // somaxconn is larger
  EXPECT_EQ(listen_entry->inode, Inode(listener.get()));
  EXPECT_EQ(listen_entry->cookie, Cookie(listener.get()));
  EXPECT_EQ(listen_entry->netns, CurrentNetns());

  Fd server(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_GE(server.get(), 0);
  uint64_t server_cookie = Cookie(server.get());
  connected.Reset();  // client: FIN_WAIT1 -> FIN_WAIT2; server: CLOSE_WAIT

  const DiagSocket* server_entry =
      FindEventually(&client, &dump, [&](const DiagSocket& s) {
        return OnLoopback(s) && s.sport == port && s.dport == client_port &&
               s.state == S::kCloseWait;
      });
  ASSERT_NE(server_entry, nullptr) << "server socket in CLOSE_WAIT";
  EXPECT_NE(server_entry->cookie, 0u);
  EXPECT_EQ(server_entry->cookie, server_cookie);
  EXPECT_EQ(server_entry->inode, Inode(server.get()));
  EXPECT_EQ(server_entry->daddr, V4(127, 0, 0, 1));

  const DiagSocket* client_entry =
      FindEventually(&client, &dump, [&](const DiagSocket& s) {
        return OnLoopback(s) && s.sport == client_port && s.dport == port &&
               s.state == S::kFinWait2;
      });
  ASSERT_NE(client_entry, nullptr) << "client socket in FIN_WAIT2";
  // Orphaned by close(), it normally lives on as a timewait socket.
  EXPECT_EQ(client_entry->inode, 0u);

  const DiagSocket* listen_after =
      FindEventually(&client, &dump, [&](const DiagSocket& s) {
        return s.state == S::kListen && s.sport == port;
      });
  ASSERT_NE(listen_after, nullptr);
  EXPECT_EQ(listen_after->rqueue, 0u);

  // A mask without LISTEN leaves the listener out; one with only LISTEN
  // gives nothing else.
  for (const DiagSocket& s :
       client.DumpTcp(tcpstated::StateBit(S::kCloseWait))) {
    EXPECT_EQ(s.state, S::kCloseWait);
  }
  for (const DiagSocket& s : client.DumpTcp(tcpstated::StateBit(S::kListen))) {
    EXPECT_EQ(s.state, S::kListen);
  }
}

// The peer's FIN carries the last ACK a silent CLOSE_WAIT socket receives:
// tcpi_last_ack_recv is the time since it entered CLOSE_WAIT.
TEST(SockDiagKernelTest, CloseWaitLastAckRecvCountsFromThePeersFin) {
  SKIP_UNLESS_ROOT();
  SockDiagClient client;
  Fd listener(Listen(16));
  uint16_t port = LocalPort(listener.get());
  Fd connected(Connect(port));
  uint16_t client_port = LocalPort(connected.get());
  Fd server(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_GE(server.get(), 0);
  auto fin_sent = std::chrono::steady_clock::now();
  connected.Reset();
  std::vector<DiagSocket> dump;
  ASSERT_NE(FindEventually(&client, &dump,
                           [&](const DiagSocket& s) {
                             return OnLoopback(s) && s.sport == port &&
                                    s.dport == client_port &&
                                    s.state == S::kCloseWait;
                           }),
            nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  uint32_t last_ack_ms = tcpstated::kNoTcpInfo;
  for (const DiagSocket& s :
       client.DumpTcp(tcpstated::StateBit(S::kCloseWait), true)) {
    EXPECT_EQ(s.state, S::kCloseWait);
    if (s.sport == port && s.dport == client_port) last_ack_ms = s.last_ack_ms;
  }
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - fin_sent)
                     .count();
  ASSERT_NE(last_ack_ms, tcpstated::kNoTcpInfo);
  // Jiffies: a tick or two of rounding either way.
  EXPECT_GE(last_ack_ms, 300u - 20u);
  EXPECT_LE(last_ack_ms, static_cast<uint64_t>(elapsed) + 20u);
  // Full dumps do not ask for tcp_info.
  for (const DiagSocket& s : client.DumpAll()) {
    EXPECT_EQ(s.last_ack_ms, tcpstated::kNoTcpInfo);
  }
}

TEST(SockDiagKernelTest, TimewaitKeepsTheFullSocketsCookie) {
  SKIP_UNLESS_ROOT();
  SockDiagClient client;
  Fd listener(Listen(4));
  uint16_t port = LocalPort(listener.get());
  Fd connected(Connect(port));
  uint16_t client_port = LocalPort(connected.get());
  uint64_t client_cookie = Cookie(connected.get());
  Fd server(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_GE(server.get(), 0);
  connected.Reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  server.Reset();  // the active closer, the client, ends in TIME_WAIT

  std::vector<DiagSocket> dump;
  const DiagSocket* entry =
      FindEventually(&client, &dump, [&](const DiagSocket& s) {
        return OnLoopback(s) && s.sport == client_port && s.dport == port &&
               s.state == S::kTimeWait;
      });
  ASSERT_NE(entry, nullptr);
  EXPECT_TRUE(entry->timewait);
  EXPECT_EQ(entry->timer, 3);
  EXPECT_EQ(entry->cookie, client_cookie);
  EXPECT_GT(entry->expires_ms, 0u);
  EXPECT_LE(entry->expires_ms, 60000u);

  // The kernel filters timewait sockets on their substate.
  bool seen = false;
  for (const DiagSocket& s :
       client.DumpTcp(tcpstated::StateBit(S::kTimeWait))) {
    EXPECT_EQ(s.state, S::kTimeWait);
    seen |= s.cookie == client_cookie;
  }
  EXPECT_TRUE(seen);
}

// With TCP_DEFER_ACCEPT the listener drops the bare third ACK, so the
// connection stays a request socket until data comes: a NEW_SYN_RECV
// socket without packet tricks.
TEST(SockDiagKernelTest, RequestSocket) {
  SKIP_UNLESS_ROOT();
  SockDiagClient client;
  Fd listener(Listen(4));
  int defer_seconds = 30;
  ASSERT_EQ(setsockopt(listener.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT,
                       &defer_seconds, sizeof(defer_seconds)),
            0);
  uint16_t port = LocalPort(listener.get());
  Fd connected(Connect(port));
  uint16_t client_port = LocalPort(connected.get());

  std::vector<DiagSocket> dump;
  const DiagSocket* request =
      FindEventually(&client, &dump, [&](const DiagSocket& s) {
        return OnLoopback(s) && s.sport == port && s.dport == client_port;
      });
  ASSERT_NE(request, nullptr);
  EXPECT_EQ(request->state, S::kNewSynRecv);
  EXPECT_EQ(request->inode, 0u);
  EXPECT_EQ(request->timer, 1);
  EXPECT_NE(request->cookie, 0u);
  EXPECT_NE(request->cookie, Cookie(connected.get()));

  const DiagSocket* client_side =
      FindEventually(&client, &dump, [&](const DiagSocket& s) {
        return OnLoopback(s) && s.sport == client_port && s.dport == port;
      });
  ASSERT_NE(client_side, nullptr);
  EXPECT_EQ(client_side->state, S::kEstablished);

  // Only the SYN_RECV bit asked for: the kernel adds request sockets.
  bool seen = false;
  for (const DiagSocket& s : client.DumpTcp(tcpstated::StateBit(S::kSynRecv))) {
    seen |= s.sport == port && s.dport == client_port;
  }
  EXPECT_TRUE(seen);
}

TEST(SockDiagKernelTest, Ipv6Listener) {
  SKIP_UNLESS_ROOT();
  Fd listener(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (listener.get() < 0) GTEST_SKIP() << "no IPv6";
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_addr = in6addr_loopback;
  if (bind(listener.get(), reinterpret_cast<sockaddr*>(&address),
           sizeof(address)) != 0) {
    GTEST_SKIP() << "cannot bind ::1: " << std::strerror(errno);
  }
  ASSERT_EQ(listen(listener.get(), 8), 0);
  uint16_t port = LocalPort(listener.get());
  SockDiagClient client;
  std::vector<DiagSocket> dump;
  const DiagSocket* entry =
      FindEventually(&client, &dump, [&](const DiagSocket& s) {
        return s.ipv6 && s.state == S::kListen && s.sport == port;
      });
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(0, std::memcmp(entry->saddr.data(), &in6addr_loopback, 16));
  EXPECT_EQ(entry->wqueue, 8u);
}

TEST(SockDiagKernelTest, NotANamespaceDescriptorThrows) {
  Fd not_netns(open("/dev/null", O_RDONLY | O_CLOEXEC));
  ASSERT_GE(not_netns.get(), 0);
  try {
    SockDiagClient client(not_netns.get());
    FAIL() << "constructed from /dev/null";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EINVAL) << e.what();
  }
}

TEST(SockDiagKernelTest, MovedFromClientThrows) {
  SKIP_UNLESS_ROOT();
  SockDiagClient first;
  SockDiagClient second(std::move(first));
  EXPECT_THROW(first.DumpAll(), std::system_error);
  EXPECT_NO_THROW(second.DumpAll());
}

// Deletes the named namespace however the test ends.
class NetnsGuard {
 public:
  explicit NetnsGuard(std::string name) : name_(std::move(name)) {}
  ~NetnsGuard() {
    if (added_) {
      std::string command = "ip netns del " + name_ + " 2>/dev/null";
      if (std::system(command.c_str()) != 0) {
        ADD_FAILURE() << "could not delete netns " << name_;
      }
    }
  }
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;

  bool Add() {
    std::string command = "ip netns add " + name_ + " 2>/dev/null";
    added_ = std::system(command.c_str()) == 0;
    return added_;
  }
  std::string path() const { return "/run/netns/" + name_; }

 private:
  std::string name_;
  bool added_ = false;
};

TEST(SockDiagKernelTest, FreshNamespaceIsEmpty) {
  SKIP_UNLESS_ROOT();
  NetnsGuard netns("tcpstated-test-sockdiag-" + std::to_string(getpid()));
  if (!netns.Add()) GTEST_SKIP() << "ip netns add failed";
  Fd netns_fd(open(netns.path().c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_GE(netns_fd.get(), 0) << std::strerror(errno);

  // Something to not see from inside.
  Fd listener(Listen(4));
  uint32_t before = CurrentNetns();
  SockDiagClient client(netns_fd.get());
  EXPECT_EQ(CurrentNetns(), before) << "the caller's thread moved";
  EXPECT_EQ(client.netns(), Inode(netns_fd.get()));
  EXPECT_NE(client.netns(), before);
  std::vector<DiagSocket> dump = client.DumpAll();
  EXPECT_TRUE(dump.empty())
      << dump.size() << " sockets, first on port " << dump[0].sport;
  // The client does not keep the descriptor it was given.
  netns_fd.Reset();
  EXPECT_TRUE(client.DumpAll().empty());
}

}  // namespace
