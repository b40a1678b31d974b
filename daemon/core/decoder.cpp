#include <arpa/inet.h>

#include <cstddef>
#include <cstring>

#include "bpf/tcpstated_abi.h"
#include "tcpstated/event.h"

namespace tcpstated {

static_assert(sizeof(tcpstated_event) == TCPSTATED_EVENT_SIZE,
              "kernel/user event layout drifted");
static_assert(sizeof(tcpstated_event_head) == TCPSTATED_EVENT_HEAD_SIZE,
              "kernel/user event layout drifted");
static_assert(alignof(tcpstated_event) == 8);
// The long record starts with the head, field by field: the BPF side fills
// the head of either through the same code.
static_assert(offsetof(tcpstated_event, spare) ==
              offsetof(tcpstated_event_head, spare));
static_assert(offsetof(tcpstated_event, sk_err) ==
              offsetof(tcpstated_event_head, sk_err));
static_assert(offsetof(tcpstated_event, saddr) == sizeof(tcpstated_event_head));
static_assert(TCPSTATED_SRC_COUNT == kSourceCount);
static_assert(TCPSTATED_COMM_LEN == sizeof(Event::comm));

std::string_view SourceName(Source source) {
  switch (source) {
    case Source::kStateChange:
      return "inet_sock_set_state";
    case Source::kReceiveReset:
      return "tcp_receive_reset";
    case Source::kSendReset:
      return "tcp_send_reset";
    case Source::kSynackRetrans:
      return "tcp_retransmit_synack";
    case Source::kSynRetrans:
      return "tcp_retransmit_skb";
  }
  return "unknown";
}

std::string_view DecodeErrorName(DecodeError error) {
  switch (error) {
    case DecodeError::kNone:
      return "none";
    case DecodeError::kBadSize:
      return "bad_size";
    case DecodeError::kBadSource:
      return "bad_source";
    case DecodeError::kBadState:
      return "bad_state";
  }
  return "unknown";
}

DecodeError DecodeEvent(const void* data, size_t size, Event* out) {
  const bool long_form = size == sizeof(tcpstated_event);
  if (data == nullptr || (!long_form && size != sizeof(tcpstated_event_head))) {
    return DecodeError::kBadSize;
  }
  // Copy out of the ring first: the record may be overwritten after we
  // return it to the kernel, and it need not be aligned for us. A short
  // record is the long one's head. Copies of constant sizes, so that the
  // compiler inlines them rather than call memcpy for every event.
  tcpstated_event raw;
  std::memcpy(&raw, data, sizeof(tcpstated_event_head));
  if (long_form) {
    std::memcpy(reinterpret_cast<char*>(&raw) + sizeof(tcpstated_event_head),
                static_cast<const char*>(data) + sizeof(tcpstated_event_head),
                sizeof(tcpstated_event) - sizeof(tcpstated_event_head));
  }
  if (!IsSentSource(static_cast<Source>(raw.source))) {
    return DecodeError::kBadSource;
  }
  // Kernel state numbers 1..kStateSlots-1; the new state only matters for
  // state changes (the other sources leave it 0).
  const bool is_state_change = raw.source == TCPSTATED_SRC_STATE;
  const bool old_ok = raw.oldstate >= 1 && raw.oldstate < kStateSlots;
  const bool new_ok = raw.newstate >= 1 && raw.newstate < kStateSlots;
  if (!old_ok || (is_state_change && !new_ok)) return DecodeError::kBadState;
  // What only the long record carries cannot be flagged in a short one.
  if (!long_form &&
      (raw.flags & (TCPSTATED_F_IPV6 | TCPSTATED_F_PROCESS_CTX)) != 0) {
    return DecodeError::kBadSize;
  }
  // Filled in place, every field: this runs for every event.
  Event& e = *out;
  e.ts_ns = raw.ts_ns;
  e.id = raw.id;
  e.skaddr = raw.skaddr;
  e.netns_cookie = raw.netns_cookie;
  e.netns = raw.netns;
  e.sport = raw.sport;
  e.dport = raw.dport;
  e.source = static_cast<Source>(raw.source);
  e.oldstate = static_cast<TcpState>(raw.oldstate);
  e.newstate = static_cast<TcpState>(new_ok ? raw.newstate : raw.oldstate);
  e.ipv6 = raw.flags & TCPSTATED_F_IPV6;
  e.process_context = raw.flags & TCPSTATED_F_PROCESS_CTX;
  e.peer_fin = raw.flags & TCPSTATED_F_PEER_FIN;
  e.id_is_cookie = raw.flags & TCPSTATED_F_COOKIE;
  e.sock_error = raw.flags & TCPSTATED_F_SOCK_ERR;
  e.own_linger2 = long_form && (raw.flags & TCPSTATED_F_LINGER2) != 0;
  e.fin_time_jiffies = e.own_linger2 ? raw.fin_time : 0;
  e.fin_timeout_jiffies = e.own_linger2 ? raw.fin_timeout : 0;
  e.no_socket = (raw.flags & TCPSTATED_F_NO_SOCKET) != 0 &&
                raw.source == TCPSTATED_SRC_SEND_RESET;
  if (long_form) {
    std::memcpy(e.saddr.data(), raw.saddr, e.saddr.size());
    std::memcpy(e.daddr.data(), raw.daddr, e.daddr.size());
  } else {
    e.saddr = {};
    e.daddr = {};
    std::memcpy(e.saddr.data(), raw.saddr4, sizeof(raw.saddr4));
    std::memcpy(e.daddr.data(), raw.daddr4, sizeof(raw.daddr4));
  }
  e.sk_err = e.sock_error ? raw.sk_err : 0;
  if (e.process_context) {
    e.cgroup_id = raw.cgroup_id;
    e.tgid = raw.tgid;
    e.pid = raw.pid;
    std::memcpy(e.comm.data(), raw.comm, e.comm.size());
    e.comm.back() = '\0';  // the kernel's comm is terminated; be sure
  } else {
    e.cgroup_id = 0;
    e.tgid = 0;
    e.pid = 0;
    e.comm = {};
  }
  return DecodeError::kNone;
}

std::string FormatAddress(const Address& address, bool ipv6) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(ipv6 ? AF_INET6 : AF_INET, address.data(), buf, sizeof(buf)) ==
      nullptr) {
    return "?";
  }
  return buf;
}

}  // namespace tcpstated
