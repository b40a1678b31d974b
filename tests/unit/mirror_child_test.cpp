// Unit tests of tcpstated::Mirror for accepted children in tp_btf mode, fed
// the event order each kernel produces. Before 6.15 inet_csk_clone_lock()
// reports LISTEN->SYN_RECV on the child before it sets the child's own
// cookie, so that event carries whatever cookie the child copied from its
// listener (the listener's, or a fresh one if the listener had none) and the
// child's next event its own; from 6.15 both carry the child's own. The
// child's address (skaddr) is the same in both
// (shared/reference/linux-tcp-state-transitions.md, "Fields and identity").

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <ostream>
#include <vector>

#include "mirror_test_events.h"
#include "tcpstated/event.h"
#include "tcpstated/mirror.h"
#include "tcpstated/tcp_state.h"

namespace {

using tcpstated::Event;
using tcpstated::Mirror;
using tcpstated::Role;
using tcpstated::SocketEntry;
using tcpstated::Source;
using tcpstated::test::CountOf;
using tcpstated::test::ExpectCounts;
using tcpstated::test::InProcess;
using tcpstated::test::Ip;
using tcpstated::test::kBigTable;
using tcpstated::test::kNetns;
using tcpstated::test::kSec;
using tcpstated::test::kT0;
using tcpstated::test::Reset;
using tcpstated::test::Sock;
using tcpstated::test::StateChange;
using tcpstated::test::WithCookie;
using S = tcpstated::TcpState;

constexpr uint64_t kListenerCookie = 100;
constexpr uint64_t kListenerAddr = 0xffff888100a0b000ULL;
constexpr uint16_t kPort = 8080;

uint64_t InvalidTotal(const Mirror& m) {
  uint64_t total = 0;
  for (const auto& row : m.invalid_transitions()) {
    for (uint64_t c : row) total += c;
  }
  return total;
}

// A listener on :8080 opened by nginx (tgid 700, cgroup 9).
void Listen(Mirror& m) {
  Sock listener(kListenerCookie, kPort);
  listener.skaddr = kListenerAddr;
  m.Apply(
      InProcess(WithCookie(StateChange(listener, S::kClose, S::kListen, kT0)),
                700, "nginx", 9));
}

// One accepted child: its address, its own cookie, the cookie its first
// event carries, and its peer's port.
struct Child {
  uint64_t skaddr;
  uint64_t cookie;
  uint64_t first_cookie;
  uint16_t peer_port;
};

// The child's LISTEN->SYN_RECV as the kernel reports it. Before 6.15 the
// child still has its listener's (wildcard) addresses and no peer port; from
// 6.15 the full 4-tuple.
Event Birth(const Child& c, bool full_tuple, uint64_t ts) {
  Sock s(c.first_cookie, kPort, full_tuple ? c.peer_port : 0);
  s.skaddr = c.skaddr;
  if (full_tuple) {
    s.saddr = Ip(AF_INET, "192.0.2.1");
    s.daddr = Ip(AF_INET, "192.0.2.2");
  }
  return WithCookie(StateChange(s, S::kListen, S::kSynRecv, ts));
}

// Any later event of the child: its own cookie and its full 4-tuple.
Sock Own(const Child& c) {
  Sock s(c.cookie, kPort, c.peer_port);
  s.skaddr = c.skaddr;
  s.saddr = Ip(AF_INET, "192.0.2.1");
  s.daddr = Ip(AF_INET, "192.0.2.2");
  return s;
}

Event Next(const Child& c, S from, S to, uint64_t ts) {
  return WithCookie(StateChange(Own(c), from, to, ts));
}

const SocketEntry* FindChildByTuple(const Mirror& m, uint16_t peer_port) {
  const SocketEntry* found = nullptr;
  m.ForEach([&](const SocketEntry& s) {
    if (s.role == Role::kServer && s.dport == peer_port) found = &s;
  });
  return found;
}

// What the kernel puts in the first event's id.
struct KernelOrder {
  const char* name;
  bool listener_cookie;  // before 6.15, with the listener's cookie set
  bool fresh_cookie;     // before 6.15, the listener had no cookie yet
  bool full_tuple;       // 6.15 and later
};

void PrintTo(const KernelOrder& k, std::ostream* os) { *os << k.name; }

class MirrorChildTest : public ::testing::TestWithParam<KernelOrder> {
 protected:
  Child MakeChild(uint64_t skaddr, uint64_t cookie, uint16_t peer_port) const {
    const KernelOrder& k = GetParam();
    uint64_t first = cookie;  // 6.15 and later: its own
    if (k.listener_cookie) first = kListenerCookie;
    if (k.fresh_cookie) first = cookie + 5000;
    return Child{skaddr, cookie, first, peer_port};
  }
};

TEST_P(MirrorChildTest, ListenerStaysListenAndChildIsAServerFromItsFirstEvent) {
  Mirror m(kBigTable);
  Listen(m);
  const Child c = MakeChild(0xffff888100c0d000ULL, 200, 51000);

  m.Apply(Birth(c, GetParam().full_tuple, kT0 + kSec));

  // The listener is untouched; the child is a server with the listener's
  // owner and its local port at once.
  const SocketEntry* listener = m.Find(kListenerCookie);
  ASSERT_NE(listener, nullptr);
  EXPECT_EQ(listener->state, S::kListen);
  EXPECT_EQ(listener->role, Role::kListener);
  ExpectCounts(m, kNetns, {{S::kListen, 1}, {S::kSynRecv, 1}});
  const SocketEntry* child = m.Find(Mirror::ProvisionalChildId(c.skaddr));
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->state, S::kSynRecv);
  EXPECT_EQ(child->role, Role::kServer);
  EXPECT_EQ(child->sport, kPort);
  ASSERT_NE(m.OwnerOf(*child), nullptr);
  EXPECT_EQ(m.OwnerOf(*child)->comm, "nginx");
  EXPECT_EQ(m.OwnerOf(*child)->tgid, 700u);
  EXPECT_EQ(m.OwnerOf(*child)->cgroup_id, 9u);

  m.Apply(Next(c, S::kSynRecv, S::kEstablished, kT0 + 2 * kSec));
  m.Apply(Next(c, S::kEstablished, S::kCloseWait, kT0 + 3 * kSec));

  // Its own cookie names it from its second event on.
  EXPECT_EQ(m.Find(Mirror::ProvisionalChildId(c.skaddr)), nullptr);
  child = m.Find(c.cookie);
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->state, S::kCloseWait);
  EXPECT_EQ(child->role, Role::kServer);
  EXPECT_EQ(child->sport, kPort);
  EXPECT_EQ(child->dport, c.peer_port);
  ASSERT_NE(m.OwnerOf(*child), nullptr);
  EXPECT_EQ(m.OwnerOf(*child)->comm, "nginx");
  // A leak is found under the child's cookie, with its owner.
  std::vector<uint64_t> close_wait;
  m.ForEachCloseWait([&](const SocketEntry& s) { close_wait.push_back(s.id); });
  EXPECT_EQ(close_wait, std::vector<uint64_t>{c.cookie});
  ExpectCounts(m, kNetns, {{S::kListen, 1}, {S::kCloseWait, 1}});
  EXPECT_EQ(m.Find(kListenerCookie)->state, S::kListen);
  EXPECT_EQ(m.stats().resyncs, 0u);
  EXPECT_EQ(m.stats().tracked, 2u);
  EXPECT_EQ(InvalidTotal(m), 0u);

  // The passive close ends it; the listener is still there.
  m.Apply(InProcess(Next(c, S::kCloseWait, S::kLastAck, kT0 + 4 * kSec), 700,
                    "nginx", 9));
  m.Apply(Next(c, S::kLastAck, S::kClose, kT0 + 5 * kSec));
  ExpectCounts(m, kNetns, {{S::kListen, 1}});
  EXPECT_EQ(m.stats().tracked, 1u);
  EXPECT_EQ(m.stats().resyncs, 0u);
  EXPECT_EQ(InvalidTotal(m), 0u);
}

TEST_P(MirrorChildTest, InterleavedChildrenOfOneListenerKeepTheirOwnEntries) {
  Mirror m(kBigTable);
  Listen(m);
  // Two handshakes complete on two CPUs: both first events come before
  // either second event.
  const Child a = MakeChild(0xffff888100c0d000ULL, 200, 51000);
  const Child b = MakeChild(0xffff888100c0e000ULL, 201, 51001);
  m.Apply(Birth(a, GetParam().full_tuple, kT0 + kSec));
  m.Apply(Birth(b, GetParam().full_tuple, kT0 + kSec));
  ExpectCounts(m, kNetns, {{S::kListen, 1}, {S::kSynRecv, 2}});
  m.Apply(Next(b, S::kSynRecv, S::kEstablished, kT0 + 2 * kSec));
  m.Apply(Next(a, S::kSynRecv, S::kEstablished, kT0 + 2 * kSec));
  m.Apply(Next(a, S::kEstablished, S::kCloseWait, kT0 + 3 * kSec));

  ExpectCounts(m, kNetns,
               {{S::kListen, 1}, {S::kEstablished, 1}, {S::kCloseWait, 1}});
  ASSERT_NE(m.Find(a.cookie), nullptr);
  ASSERT_NE(m.Find(b.cookie), nullptr);
  EXPECT_EQ(m.Find(a.cookie)->state, S::kCloseWait);
  EXPECT_EQ(m.Find(a.cookie)->dport, a.peer_port);
  EXPECT_EQ(m.Find(b.cookie)->state, S::kEstablished);
  EXPECT_EQ(m.Find(b.cookie)->dport, b.peer_port);
  EXPECT_EQ(FindChildByTuple(m, b.peer_port), m.Find(b.cookie));
  EXPECT_EQ(m.stats().resyncs, 0u);
  EXPECT_EQ(InvalidTotal(m), 0u);
}

TEST_P(MirrorChildTest, ChildResetBeforeItsNextStateChangeLeavesNothing) {
  Mirror m(kBigTable);
  Listen(m);
  const Child c = MakeChild(0xffff888100c0d000ULL, 200, 51000);
  m.Apply(Birth(c, GetParam().full_tuple, kT0 + kSec));
  // tcp_receive_reset carries the child's own cookie, then the close.
  m.Apply(WithCookie(
      Reset(Own(c), Source::kReceiveReset, S::kSynRecv, kT0 + 2 * kSec)));
  m.Apply(Next(c, S::kSynRecv, S::kClose, kT0 + 2 * kSec));

  ExpectCounts(m, kNetns, {{S::kListen, 1}});
  EXPECT_EQ(m.stats().tracked, 1u);
  EXPECT_EQ(m.stats().resyncs, 0u);
  EXPECT_EQ(m.TimewaitSockets()[kNetns], 0u);
}

TEST_P(MirrorChildTest,
       ChildWhoseNextEventWasLostMakesWayForTheNextAtItsAddress) {
  Mirror m(kBigTable);
  Listen(m);
  const Child first = MakeChild(0xffff888100c0d000ULL, 200, 51000);
  m.Apply(Birth(first, GetParam().full_tuple, kT0 + kSec));
  // Its next events were lost; it was freed and its address reused.
  const Child second = MakeChild(first.skaddr, 300, 52000);
  m.Apply(Birth(second, GetParam().full_tuple, kT0 + 2 * kSec));
  m.Apply(Next(second, S::kSynRecv, S::kEstablished, kT0 + 3 * kSec));

  ExpectCounts(m, kNetns, {{S::kListen, 1}, {S::kEstablished, 1}});
  ASSERT_NE(m.Find(second.cookie), nullptr);
  EXPECT_EQ(m.Find(second.cookie)->role, Role::kServer);
  EXPECT_EQ(m.Find(kListenerCookie)->state, S::kListen);
  EXPECT_EQ(m.stats().tracked, 2u);
}

INSTANTIATE_TEST_SUITE_P(
    KernelOrders, MirrorChildTest,
    ::testing::Values(
        KernelOrder{"before_6_15_listener_cookie", true, false, false},
        KernelOrder{"before_6_15_fresh_cookie", false, true, false},
        KernelOrder{"from_6_15_own_cookie", false, false, true}),
    [](const ::testing::TestParamInfo<KernelOrder>& info) {
      return std::string(info.param.name);
    });

// Classic-tracepoint ids are per incarnation, given by the BPF side at
// LISTEN->SYN_RECV: the child's first id is already its own.
TEST(MirrorChildClassicTest, IncarnationIdNamesTheChildFromItsFirstEvent) {
  Mirror m(kBigTable);
  Sock listener(kListenerCookie, kPort);
  m.Apply(InProcess(StateChange(listener, S::kClose, S::kListen, kT0), 700,
                    "nginx", 9));
  Sock child(200, kPort, 0);
  child.skaddr = 0xffff888100c0d000ULL;
  m.Apply(StateChange(child, S::kListen, S::kSynRecv, kT0 + kSec));

  ASSERT_NE(m.Find(200), nullptr);
  EXPECT_EQ(m.Find(Mirror::ProvisionalChildId(child.skaddr)), nullptr);
  EXPECT_EQ(m.Find(200)->role, Role::kServer);
  EXPECT_EQ(CountOf(m, kNetns, S::kListen), 1);
}

}  // namespace
