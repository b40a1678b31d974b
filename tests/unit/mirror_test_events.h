// Test helpers shared by the tcpstated::Mirror unit tests (mirror_test.cpp,
// mirror_reconcile_test.cpp): sockets as the event stream identifies them,
// builders for the decoded events the kernel emits for them, a walker that
// feeds a path of states, and readers of the per-namespace counts.
//
// Test-only: nothing outside tests/unit includes this.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <map>

#include "tcpstated/event.h"
#include "tcpstated/mirror.h"
#include "tcpstated/tcp_state.h"

namespace tcpstated::test {

inline constexpr uint64_t kSec = kNsPerSec;
// An arbitrary CLOCK_MONOTONIC origin.
inline constexpr uint64_t kT0 = 1000 * kSec;
inline constexpr uint32_t kNetns = 4026531840;       // init_net's inode number
inline constexpr uint32_t kOtherNetns = 4026532600;  // a container's
inline constexpr size_t kBigTable = 1000;

inline Address Ip(int family, const char* text) {
  Address a{};
  EXPECT_EQ(inet_pton(family, text, a.data()), 1) << text;
  return a;
}

// What identifies one socket in the event stream. Addresses are all zeros
// unless a test sets them.
struct Sock {
  explicit Sock(uint64_t id_in, uint16_t sport_in = 0, uint16_t dport_in = 0,
                uint32_t netns_in = kNetns)
      : id(id_in), sport(sport_in), dport(dport_in), netns(netns_in) {}

  uint64_t id;
  uint16_t sport;
  uint16_t dport;
  uint32_t netns;
  uint64_t skaddr = 0xffff888100a0b000ULL;
  Address saddr{};
  Address daddr{};
  uint64_t netns_cookie = 0;  // 0: the kernel has none
};

inline Event StateChange(const Sock& s, TcpState from, TcpState to,
                         uint64_t ts) {
  Event e;
  e.source = Source::kStateChange;
  e.ts_ns = ts;
  e.id = s.id;
  e.skaddr = s.skaddr;
  e.netns = s.netns;
  e.netns_cookie = s.netns_cookie;
  e.sport = s.sport;
  e.dport = s.dport;
  e.saddr = s.saddr;
  e.daddr = s.daddr;
  e.oldstate = from;
  e.newstate = to;
  return e;
}

// tcp_receive_reset / tcp_send_reset: `state` is the socket's state when the
// reset fired (CLOSE when send_reset comes after the CLOSE event).
inline Event Reset(const Sock& s, Source source, TcpState state, uint64_t ts) {
  Event e = StateChange(s, state, state, ts);
  e.source = source;
  return e;
}

// The transition ran in the owner's process (connect, listen, close).
inline Event InProcess(Event e, uint32_t tgid, const char* comm,
                       uint64_t cgroup = 0) {
  e.process_context = true;
  e.tgid = tgid;
  e.pid = tgid;
  e.cgroup_id = cgroup;
  std::strncpy(e.comm.data(), comm, e.comm.size() - 1);
  return e;
}

// tp_btf mode: the id is the socket's cookie, and skaddr its address.
inline Event WithCookie(Event e) {
  e.id_is_cookie = true;
  return e;
}

inline Event WithPeerFin(Event e) {
  e.peer_fin = true;
  return e;
}

// Feeds path[0]->path[1], path[1]->path[2], ... for `s`, `step` apart from
// `ts`. Returns the time of the last event.
inline uint64_t Walk(Mirror& m, const Sock& s,
                     std::initializer_list<TcpState> path, uint64_t ts,
                     uint64_t step = kSec) {
  const TcpState* prev = nullptr;
  uint64_t last = ts;
  for (const TcpState& state : path) {
    if (prev != nullptr) {
      m.Apply(StateChange(s, *prev, state, ts));
      last = ts;
      ts += step;
    }
    prev = &state;
  }
  return last;
}

inline StateCounts CountsIn(const Mirror& m, uint32_t netns) {
  auto it = m.counts().find(netns);
  return it == m.counts().end() ? StateCounts{} : it->second;
}

inline int64_t CountOf(const Mirror& m, uint32_t netns, TcpState state) {
  return CountsIn(m, netns)[StateIndex(state)];
}

// Every state of `netns` holds exactly what `expected` says (zero if absent).
inline void ExpectCounts(const Mirror& m, uint32_t netns,
                         const std::map<TcpState, int64_t>& expected) {
  StateCounts counts = CountsIn(m, netns);
  for (size_t i = 0; i < counts.size(); ++i) {
    TcpState state = static_cast<TcpState>(i);
    auto it = expected.find(state);
    int64_t want = it == expected.end() ? 0 : it->second;
    EXPECT_EQ(counts[i], want)
        << "netns " << netns << " state " << StateName(state);
  }
}

inline bool InFinWait2Substate(const SocketEntry& entry) {
  return (entry.flags & kEntryFinWait2Substate) != 0;
}

inline bool IsTimewaitSock(const SocketEntry& entry) {
  return (entry.flags & kEntryTimewaitSock) != 0;
}

// A full socket of a sock_diag dump with `s`'s 4-tuple and namespace.
inline DiagSocket Diag(const Sock& s, uint64_t cookie, TcpState state) {
  DiagSocket d;
  d.state = state;
  d.sport = s.sport;
  d.dport = s.dport;
  d.saddr = s.saddr;
  d.daddr = s.daddr;
  d.cookie = cookie;
  d.inode = 1000 + static_cast<uint32_t>(cookie);
  d.netns = s.netns;
  return d;
}

}  // namespace tcpstated::test
