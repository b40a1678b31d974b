// Unit tests of tcpstated::DecodeEvent: ring-buffer records
// (bpf/tcpstated_abi.h) into Events, and the records it must refuse.

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bpf/tcpstated_abi.h"
#include "tcpstated/event.h"
#include "tcpstated/tcp_state.h"

namespace {

using tcpstated::DecodeError;
using tcpstated::DecodeEvent;
using tcpstated::Event;
using tcpstated::Source;
using S = tcpstated::TcpState;

tcpstated_event SampleRecord() {
  tcpstated_event raw;
  std::memset(&raw, 0, sizeof(raw));
  raw.ts_ns = 123456789012345ULL;
  raw.id = 0x0102030405060708ULL;
  raw.skaddr = 0xffff888123456780ULL;
  raw.cgroup_id = 0xabcdefULL;
  raw.netns_cookie = 0x1122334455667788ULL;
  raw.netns = 4026531840u;
  raw.tgid = 4321;
  raw.pid = 4322;
  raw.sport = 40000;
  raw.dport = 443;
  EXPECT_EQ(inet_pton(AF_INET6, "2001:db8::1", raw.saddr), 1);
  EXPECT_EQ(inet_pton(AF_INET6, "2001:db8::2", raw.daddr), 1);
  raw.source = TCPSTATED_SRC_STATE;
  raw.oldstate = TCPSTATED_TCP_ESTABLISHED;
  raw.newstate = TCPSTATED_TCP_FIN_WAIT1;
  raw.flags = TCPSTATED_F_PROCESS_CTX | TCPSTATED_F_COOKIE | TCPSTATED_F_IPV6;
  std::strcpy(raw.comm, "nginx");
  return raw;
}

DecodeError Decode(const tcpstated_event& raw, Event* out) {
  return DecodeEvent(&raw, sizeof(raw), out);
}

TEST(DecoderTest, RoundTripsEveryField) {
  tcpstated_event raw = SampleRecord();
  Event e;
  ASSERT_EQ(Decode(raw, &e), DecodeError::kNone);

  EXPECT_EQ(e.ts_ns, raw.ts_ns);
  EXPECT_EQ(e.id, raw.id);
  EXPECT_EQ(e.skaddr, raw.skaddr);
  EXPECT_EQ(e.cgroup_id, raw.cgroup_id);
  EXPECT_EQ(e.netns_cookie, raw.netns_cookie);
  EXPECT_EQ(e.netns, raw.netns);
  EXPECT_EQ(e.tgid, raw.tgid);
  EXPECT_EQ(e.pid, raw.pid);
  EXPECT_EQ(e.sport, 40000);
  EXPECT_EQ(e.dport, 443);
  EXPECT_EQ(std::memcmp(e.saddr.data(), raw.saddr, 16), 0);
  EXPECT_EQ(std::memcmp(e.daddr.data(), raw.daddr, 16), 0);
  EXPECT_EQ(tcpstated::FormatAddress(e.saddr, true), "2001:db8::1");
  EXPECT_EQ(tcpstated::FormatAddress(e.daddr, true), "2001:db8::2");
  EXPECT_EQ(e.source, Source::kStateChange);
  EXPECT_EQ(e.oldstate, S::kEstablished);
  EXPECT_EQ(e.newstate, S::kFinWait1);
  EXPECT_TRUE(e.ipv6);
  EXPECT_TRUE(e.process_context);
  EXPECT_FALSE(e.peer_fin);
  EXPECT_TRUE(e.id_is_cookie);
  EXPECT_STREQ(e.comm.data(), "nginx");
}

TEST(DecoderTest, DecodesFlagsIndependently) {
  tcpstated_event raw = SampleRecord();
  raw.flags = TCPSTATED_F_PEER_FIN;
  raw.oldstate = TCPSTATED_TCP_FIN_WAIT2;
  raw.newstate = TCPSTATED_TCP_CLOSE;
  Event e;
  ASSERT_EQ(Decode(raw, &e), DecodeError::kNone);
  EXPECT_TRUE(e.peer_fin);
  EXPECT_FALSE(e.ipv6);
  EXPECT_FALSE(e.process_context);
  EXPECT_FALSE(e.id_is_cookie);
  EXPECT_EQ(e.oldstate, S::kFinWait2);
  EXPECT_EQ(e.newstate, S::kClose);
}

TEST(DecoderTest, SocketErrorCarriesItsErrno) {
  tcpstated_event raw = SampleRecord();
  raw.oldstate = TCPSTATED_TCP_SYN_SENT;
  raw.newstate = TCPSTATED_TCP_CLOSE;
  raw.flags = TCPSTATED_F_SOCK_ERR;
  raw.sk_err = 111;  // ECONNREFUSED
  Event e;
  ASSERT_EQ(Decode(raw, &e), DecodeError::kNone);
  EXPECT_TRUE(e.sock_error);
  EXPECT_EQ(e.sk_err, 111);
  // Without the flag the byte means nothing.
  raw.flags = 0;
  ASSERT_EQ(Decode(raw, &e), DecodeError::kNone);
  EXPECT_FALSE(e.sock_error);
  EXPECT_EQ(e.sk_err, 0);
}

TEST(DecoderTest, NoSocketOnlyForASentReset) {
  tcpstated_event raw = SampleRecord();
  raw.source = TCPSTATED_SRC_SEND_RESET;
  raw.oldstate = TCPSTATED_TCP_CLOSE;
  raw.newstate = 0;
  raw.flags = TCPSTATED_F_NO_SOCKET;
  raw.id = 0;
  raw.skaddr = 0;
  Event e;
  ASSERT_EQ(DecodeEvent(&raw, sizeof(tcpstated_event_head), &e),
            DecodeError::kNone);
  EXPECT_TRUE(e.no_socket);
  EXPECT_EQ(e.source, Source::kSendReset);
  EXPECT_EQ(e.sport, 40000);
  // The flag means nothing on another source.
  raw.source = TCPSTATED_SRC_RECV_RESET;
  ASSERT_EQ(Decode(raw, &e), DecodeError::kNone);
  EXPECT_FALSE(e.no_socket);
}

TEST(DecoderTest, Ipv4AddressesAreTheFirstFourBytes) {
  tcpstated_event raw = SampleRecord();
  raw.flags = 0;
  std::memset(raw.saddr, 0, sizeof(raw.saddr));
  std::memset(raw.daddr, 0, sizeof(raw.daddr));
  ASSERT_EQ(inet_pton(AF_INET, "192.0.2.7", raw.saddr), 1);
  ASSERT_EQ(inet_pton(AF_INET, "198.51.100.9", raw.daddr), 1);
  Event e;
  ASSERT_EQ(Decode(raw, &e), DecodeError::kNone);
  EXPECT_FALSE(e.ipv6);
  EXPECT_EQ(tcpstated::FormatAddress(e.saddr, false), "192.0.2.7");
  EXPECT_EQ(tcpstated::FormatAddress(e.daddr, false), "198.51.100.9");
}

// The short record: an IPv4 event outside process context, the head only.
tcpstated_event_head ShortRecord() {
  tcpstated_event_head h;
  std::memset(&h, 0, sizeof(h));
  h.ts_ns = 987654321ULL;
  h.id = 0x1111222233334444ULL;
  h.skaddr = 0xffff888100000040ULL;
  h.netns_cookie = 7;
  h.netns = 4026531999u;
  h.sport = 50000;
  h.dport = 80;
  EXPECT_EQ(inet_pton(AF_INET, "192.0.2.7", h.saddr4), 1);
  EXPECT_EQ(inet_pton(AF_INET, "198.51.100.9", h.daddr4), 1);
  h.source = TCPSTATED_SRC_STATE;
  h.oldstate = TCPSTATED_TCP_FIN_WAIT2;
  h.newstate = TCPSTATED_TCP_CLOSE;
  h.flags = TCPSTATED_F_COOKIE | TCPSTATED_F_PEER_FIN;
  return h;
}

TEST(DecoderTest, ShortRecordDecodesToTheSameEventFields) {
  EXPECT_EQ(sizeof(tcpstated_event_head),
            static_cast<size_t>(TCPSTATED_EVENT_HEAD_SIZE));
  const tcpstated_event_head h = ShortRecord();
  // Exactly 56 bytes on the heap: a read of the long part trips ASan.
  std::unique_ptr<unsigned char[]> buffer(new unsigned char[sizeof(h)]);
  std::memcpy(buffer.get(), &h, sizeof(h));
  Event e;
  // Stale owner fields from an earlier long record must not survive.
  e.tgid = 99;
  e.pid = 98;
  e.cgroup_id = 97;
  e.comm[0] = 'x';
  e.saddr.fill(0xff);
  ASSERT_EQ(DecodeEvent(buffer.get(), sizeof(h), &e), DecodeError::kNone);
  EXPECT_EQ(e.ts_ns, h.ts_ns);
  EXPECT_EQ(e.id, h.id);
  EXPECT_EQ(e.skaddr, h.skaddr);
  EXPECT_EQ(e.netns_cookie, 7u);
  EXPECT_EQ(e.netns, 4026531999u);
  EXPECT_EQ(e.sport, 50000);
  EXPECT_EQ(e.dport, 80);
  EXPECT_FALSE(e.ipv6);
  EXPECT_EQ(tcpstated::FormatAddress(e.saddr, false), "192.0.2.7");
  EXPECT_EQ(tcpstated::FormatAddress(e.daddr, false), "198.51.100.9");
  for (size_t i = 4; i < e.saddr.size(); ++i) {
    EXPECT_EQ(e.saddr[i], 0) << i;
    EXPECT_EQ(e.daddr[i], 0) << i;
  }
  EXPECT_EQ(e.oldstate, S::kFinWait2);
  EXPECT_EQ(e.newstate, S::kClose);
  EXPECT_TRUE(e.peer_fin);
  EXPECT_TRUE(e.id_is_cookie);
  EXPECT_FALSE(e.process_context);
  EXPECT_EQ(e.tgid, 0u);
  EXPECT_EQ(e.pid, 0u);
  EXPECT_EQ(e.cgroup_id, 0u);
  EXPECT_EQ(e.comm[0], '\0');
}

TEST(DecoderTest, ShortRecordCannotClaimWhatOnlyTheLongOneCarries) {
  for (uint8_t flag :
       {uint8_t{TCPSTATED_F_IPV6}, uint8_t{TCPSTATED_F_PROCESS_CTX}}) {
    tcpstated_event_head h = ShortRecord();
    h.flags |= flag;
    Event e;
    EXPECT_EQ(DecodeEvent(&h, sizeof(h), &e), DecodeError::kBadSize)
        << unsigned{flag};
  }
}

TEST(DecoderTest, ShortRecordChecksSourceAndStates) {
  tcpstated_event_head h = ShortRecord();
  h.source = 5;
  Event e;
  EXPECT_EQ(DecodeEvent(&h, sizeof(h), &e), DecodeError::kBadSource);
  h = ShortRecord();
  h.newstate = 14;
  EXPECT_EQ(DecodeEvent(&h, sizeof(h), &e), DecodeError::kBadState);
}

TEST(DecoderTest, DecodesFromAnUnalignedBuffer) {
  tcpstated_event raw = SampleRecord();
  std::vector<unsigned char> buffer(sizeof(raw) + 1);
  std::memcpy(buffer.data() + 1, &raw, sizeof(raw));
  Event e;
  ASSERT_EQ(DecodeEvent(buffer.data() + 1, sizeof(raw), &e),
            DecodeError::kNone);
  EXPECT_EQ(e.id, raw.id);
  EXPECT_EQ(e.ts_ns, raw.ts_ns);
}

TEST(DecoderTest, RejectsWrongSizes) {
  EXPECT_EQ(sizeof(tcpstated_event), static_cast<size_t>(TCPSTATED_EVENT_SIZE));
  tcpstated_event raw = SampleRecord();
  // The brief's 103 and 105 (around the original 104-byte layout), 104
  // itself (a BPF object older than the netns_cookie field), 112 (one from
  // before the short record), and one byte either side of both sizes.
  for (size_t size :
       {size_t{0}, size_t{103}, size_t{104}, size_t{105}, size_t{112},
        sizeof(tcpstated_event_head) - 1, sizeof(tcpstated_event_head) + 1,
        sizeof(raw) - 1, sizeof(raw) + 1}) {
    // Exactly `size` bytes on the heap: any read past them trips ASan.
    std::unique_ptr<unsigned char[]> buffer(new unsigned char[size]);
    std::memcpy(buffer.get(), &raw, std::min(size, sizeof(raw)));
    Event e;
    EXPECT_EQ(DecodeEvent(buffer.get(), size, &e), DecodeError::kBadSize)
        << size;
  }
  Event e;
  EXPECT_EQ(DecodeEvent(nullptr, sizeof(raw), &e), DecodeError::kBadSize);
}

TEST(DecoderTest, RejectsUnknownSources) {
  for (unsigned source : {5u, 6u, 255u}) {
    tcpstated_event raw = SampleRecord();
    raw.source = static_cast<__u8>(source);
    Event e;
    EXPECT_EQ(Decode(raw, &e), DecodeError::kBadSource) << source;
  }
  // Every source the BPF side sends decodes, to the matching enumerator.
  for (unsigned source = 0; source < TCPSTATED_SRC_COUNT; ++source) {
    tcpstated_event raw = SampleRecord();
    raw.source = static_cast<__u8>(source);
    Event e;
    ASSERT_EQ(Decode(raw, &e), DecodeError::kNone) << source;
    EXPECT_EQ(static_cast<unsigned>(e.source), source);
  }
}

TEST(DecoderTest, RejectsStatesOutsideOneToThirteen) {
  for (unsigned bad : {0u, 14u, 255u}) {
    tcpstated_event raw = SampleRecord();
    raw.oldstate = static_cast<__u8>(bad);
    Event e;
    EXPECT_EQ(Decode(raw, &e), DecodeError::kBadState) << "old " << bad;
    raw = SampleRecord();
    raw.newstate = static_cast<__u8>(bad);
    EXPECT_EQ(Decode(raw, &e), DecodeError::kBadState) << "new " << bad;
  }
  for (unsigned good : {1u, 13u}) {
    tcpstated_event raw = SampleRecord();
    raw.oldstate = static_cast<__u8>(good);
    raw.newstate = static_cast<__u8>(good);
    Event e;
    EXPECT_EQ(Decode(raw, &e), DecodeError::kNone) << good;
  }
}

TEST(DecoderTest, NonStateSourcesIgnoreNewstateButCheckTheSocketState) {
  tcpstated_event raw = SampleRecord();
  raw.source = TCPSTATED_SRC_SEND_RESET;
  raw.oldstate = TCPSTATED_TCP_CLOSE;
  raw.newstate = 0;  // not filled for resets
  Event e;
  ASSERT_EQ(Decode(raw, &e), DecodeError::kNone);
  EXPECT_EQ(e.source, Source::kSendReset);
  EXPECT_EQ(e.oldstate, S::kClose);
  EXPECT_EQ(e.newstate, S::kClose);

  raw.oldstate = 0;
  EXPECT_EQ(Decode(raw, &e), DecodeError::kBadState);
  raw.source = TCPSTATED_SRC_RECV_RESET;
  raw.oldstate = 14;
  EXPECT_EQ(Decode(raw, &e), DecodeError::kBadState);
}

TEST(DecoderTest, CommWithoutNulIsTerminated) {
  tcpstated_event raw = SampleRecord();
  std::memset(raw.comm, 'A', sizeof(raw.comm));
  Event e;
  ASSERT_EQ(Decode(raw, &e), DecodeError::kNone);
  EXPECT_EQ(e.comm.back(), '\0');
  EXPECT_EQ(std::strlen(e.comm.data()), sizeof(raw.comm) - 1);
  EXPECT_EQ(std::string(e.comm.data()), std::string(15, 'A'));
}

TEST(DecoderTest, CommIsOnlyTakenInProcessContext) {
  tcpstated_event raw = SampleRecord();
  raw.flags = TCPSTATED_F_COOKIE;  // softirq: comm is whatever ran
  Event e;
  ASSERT_EQ(Decode(raw, &e), DecodeError::kNone);
  EXPECT_FALSE(e.process_context);
  EXPECT_EQ(e.comm[0], '\0');
}

TEST(DecoderTest, Names) {
  EXPECT_EQ(tcpstated::SourceName(Source::kStateChange), "inet_sock_set_state");
  EXPECT_EQ(tcpstated::SourceName(Source::kReceiveReset), "tcp_receive_reset");
  EXPECT_EQ(tcpstated::SourceName(Source::kSendReset), "tcp_send_reset");
  EXPECT_EQ(tcpstated::SourceName(static_cast<Source>(TCPSTATED_SRC_COUNT)),
            "unknown");
  EXPECT_EQ(tcpstated::SourceName(Source::kSynackRetrans),
            "tcp_retransmit_synack");
  EXPECT_EQ(tcpstated::SourceName(Source::kSynRetrans), "tcp_retransmit_skb");
  EXPECT_EQ(tcpstated::DecodeErrorName(DecodeError::kNone), "none");
  EXPECT_EQ(tcpstated::DecodeErrorName(DecodeError::kBadSize), "bad_size");
  EXPECT_EQ(tcpstated::DecodeErrorName(DecodeError::kBadSource), "bad_source");
  EXPECT_EQ(tcpstated::DecodeErrorName(DecodeError::kBadState), "bad_state");
}

}  // namespace

namespace {

TEST(DecoderTest, OwnLinger2OnlyFromTheLongRecordWithItsFlag) {
  tcpstated_event raw = SampleRecord();
  raw.oldstate = TCPSTATED_TCP_FIN_WAIT2;
  raw.newstate = TCPSTATED_TCP_CLOSE;
  raw.flags = TCPSTATED_F_COOKIE | TCPSTATED_F_LINGER2;
  raw.fin_time = 3 * 250;
  raw.fin_timeout = 60 * 250;
  Event e;
  ASSERT_EQ(Decode(raw, &e), DecodeError::kNone);
  EXPECT_TRUE(e.own_linger2);
  EXPECT_EQ(e.fin_time_jiffies, 750u);
  EXPECT_EQ(e.fin_timeout_jiffies, 15000u);

  // Without the flag the fields are not the socket's: left at 0.
  raw.flags = TCPSTATED_F_COOKIE;
  ASSERT_EQ(Decode(raw, &e), DecodeError::kNone);
  EXPECT_FALSE(e.own_linger2);
  EXPECT_EQ(e.fin_time_jiffies, 0u);
  EXPECT_EQ(e.fin_timeout_jiffies, 0u);

  // A short record has no such fields, whatever its flags say.
  raw.flags = TCPSTATED_F_COOKIE | TCPSTATED_F_LINGER2;
  ASSERT_EQ(DecodeEvent(&raw, sizeof(tcpstated_event_head), &e),
            DecodeError::kNone);
  EXPECT_FALSE(e.own_linger2);
}

TEST(DecoderTest, ResetOfATimewaitSocketDecodes) {
  tcpstated_event raw = SampleRecord();
  raw.source = TCPSTATED_SRC_SEND_RESET;
  raw.oldstate = TCPSTATED_TCP_TIME_WAIT;
  raw.newstate = 0;
  raw.flags = TCPSTATED_F_IPV6;
  Event e;
  ASSERT_EQ(Decode(raw, &e), DecodeError::kNone);
  EXPECT_EQ(e.source, Source::kSendReset);
  EXPECT_EQ(e.oldstate, S::kTimeWait);
}

}  // namespace
