#include <arpa/inet.h>

#include <cstring>

#include "bpf/tcpstated_abi.h"
#include "tcpstated/event.h"

namespace tcpstated {

static_assert(sizeof(tcpstated_event) == TCPSTATED_EVENT_SIZE,
              "kernel/user event layout drifted");
static_assert(alignof(tcpstated_event) == 8);
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
  if (data == nullptr || size != sizeof(tcpstated_event)) {
    return DecodeError::kBadSize;
  }
  // Copy out of the ring first: the record may be overwritten after we
  // return it to the kernel, and it need not be aligned for us.
  tcpstated_event raw;
  std::memcpy(&raw, data, sizeof(raw));
  if (!IsSentSource(static_cast<Source>(raw.source))) {
    return DecodeError::kBadSource;
  }
  // Kernel state numbers 1..kStateSlots-1; the new state only matters for
  // state changes (the other sources leave it 0).
  const bool is_state_change = raw.source == TCPSTATED_SRC_STATE;
  const bool old_ok = raw.oldstate >= 1 && raw.oldstate < kStateSlots;
  const bool new_ok = raw.newstate >= 1 && raw.newstate < kStateSlots;
  if (!old_ok || (is_state_change && !new_ok)) return DecodeError::kBadState;
  // Filled in place, every field: this runs for every event.
  Event& e = *out;
  e.ts_ns = raw.ts_ns;
  e.id = raw.id;
  e.skaddr = raw.skaddr;
  e.cgroup_id = raw.cgroup_id;
  e.netns_cookie = raw.netns_cookie;
  e.netns = raw.netns;
  e.tgid = raw.tgid;
  e.pid = raw.pid;
  e.sport = raw.sport;
  e.dport = raw.dport;
  std::memcpy(e.saddr.data(), raw.saddr, e.saddr.size());
  std::memcpy(e.daddr.data(), raw.daddr, e.daddr.size());
  e.source = static_cast<Source>(raw.source);
  e.oldstate = static_cast<TcpState>(raw.oldstate);
  e.newstate = static_cast<TcpState>(new_ok ? raw.newstate : raw.oldstate);
  e.ipv6 = raw.flags & TCPSTATED_F_IPV6;
  e.process_context = raw.flags & TCPSTATED_F_PROCESS_CTX;
  e.peer_fin = raw.flags & TCPSTATED_F_PEER_FIN;
  e.id_is_cookie = raw.flags & TCPSTATED_F_COOKIE;
  e.sock_error = raw.flags & TCPSTATED_F_SOCK_ERR;
  e.sk_err = e.sock_error ? raw.sk_err : 0;
  if (e.process_context) {
    std::memcpy(e.comm.data(), raw.comm, e.comm.size());
    e.comm.back() = '\0';  // the kernel's comm is terminated; be sure
  } else {
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
