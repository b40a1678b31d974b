// ListenerIndex, and the mirror's use of it: an accepted child inherits the
// owner of the listener it came from, whatever other sockets do on its port.
#include "tcpstated/listener_index.h"

#include <gtest/gtest.h>

#include "mirror_test_events.h"
#include "tcpstated/mirror.h"

namespace tcpstated {
namespace {

using test::Ip;
using test::kNetns;
using test::kOtherNetns;
using test::kSec;
using test::kT0;
using test::Sock;
using S = TcpState;

const Address kAny{};

TEST(ListenerIndex, RemovingOneListenerKeepsTheOthersOnItsPort) {
  ListenerIndex index;
  index.Add(kNetns, 80, kAny, 1);
  index.Add(kNetns, 80, kAny, 2);  // a listen() that will fail
  EXPECT_EQ(index.Find(kNetns, 80, kAny), 1u);
  index.Remove(kNetns, 80, 2);
  EXPECT_EQ(index.Find(kNetns, 80, kAny), 1u);
  EXPECT_TRUE(index.HasPort(kNetns, 80));
  index.Remove(kNetns, 80, 1);
  EXPECT_EQ(index.Find(kNetns, 80, kAny), 0u);
  EXPECT_FALSE(index.HasPort(kNetns, 80));
  EXPECT_EQ(index.size(), 0u);
}

TEST(ListenerIndex, ExactAddressThenWildcardThenAnyOnThePort) {
  ListenerIndex index;
  const Address lo = Ip(AF_INET, "127.0.0.1");
  const Address other = Ip(AF_INET, "127.0.0.2");
  const Address v6 = Ip(AF_INET6, "::1");
  index.Add(kNetns, 80, v6, 3);
  index.Add(kNetns, 80, lo, 1);
  EXPECT_EQ(index.Find(kNetns, 80, lo), 1u);
  // Nothing bound there nor on the wildcard: any listener on the port.
  EXPECT_EQ(index.Find(kNetns, 80, other), 3u);
  index.Add(kNetns, 80, kAny, 2);
  EXPECT_EQ(index.Find(kNetns, 80, other), 2u);
  EXPECT_EQ(index.Find(kNetns, 80, lo), 1u);
  EXPECT_EQ(index.Find(kNetns, 80, v6), 3u);
  // Namespaces and ports are apart.
  EXPECT_EQ(index.Find(kOtherNetns, 80, lo), 0u);
  EXPECT_EQ(index.Find(kNetns, 81, lo), 0u);
  EXPECT_EQ(index.size(), 3u);
}

TEST(ListenerIndex, AddingAnIdAgainMovesItInsteadOfDuplicatingIt) {
  ListenerIndex index;
  const Address lo = Ip(AF_INET, "127.0.0.1");
  index.Add(kNetns, 80, kAny, 1);
  index.Add(kNetns, 80, lo, 1);
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.Find(kNetns, 80, lo), 1u);
  index.Remove(kNetns, 80, 1);
  EXPECT_FALSE(index.HasPort(kNetns, 80));
  index.Remove(kNetns, 80, 1);  // gone already: nothing happens
  EXPECT_EQ(index.size(), 0u);
}

constexpr uint16_t kPort = 8080;

// listen() as the kernel reports it, in the owner's process.
void Listen(Mirror& m, const Sock& s, uint32_t tgid, const char* comm,
            uint64_t ts) {
  m.Apply(test::InProcess(test::StateChange(s, S::kClose, S::kListen, ts), tgid,
                          comm));
}

// The first event of a child accepted on `port`, from softirq context.
const SocketEntry* Accept(Mirror& m, uint64_t id, const Address& local,
                          uint64_t ts) {
  Sock child(id, kPort, 51000 + static_cast<uint16_t>(id));
  child.saddr = local;
  child.daddr = Ip(AF_INET, "127.0.0.9");
  m.Apply(test::StateChange(child, S::kListen, S::kSynRecv, ts));
  return m.Find(id);
}

TEST(MirrorListeners, FailedListenOnABusyPortLeavesTheListenersOwner) {
  Mirror m(test::kBigTable);
  Sock real(100, kPort);
  Listen(m, real, 700, "nginx", kT0);
  // Another process's socket bound to the port (SO_REUSEADDR while nobody
  // listened) calls listen(): EADDRINUSE, CLOSE -> LISTEN -> CLOSE.
  Sock failed(200, kPort);
  Listen(m, failed, 800, "intruder", kT0 + kSec);
  m.Apply(test::InProcess(
      test::StateChange(failed, S::kListen, S::kClose, kT0 + kSec), 800,
      "intruder"));

  const SocketEntry* child = Accept(m, 300, kAny, kT0 + 2 * kSec);
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->role, Role::kServer);
  ASSERT_NE(m.OwnerOf(*child), nullptr);
  EXPECT_EQ(m.OwnerOf(*child)->comm, "nginx");
  EXPECT_EQ(m.OwnerOf(*child)->tgid, 700u);
}

TEST(MirrorListeners, ChildInheritsTheOwnerOfTheListenerOnItsAddress) {
  Mirror m(test::kBigTable);
  const Address a = Ip(AF_INET, "127.0.0.1");
  const Address b = Ip(AF_INET, "127.0.0.2");
  Sock on_a(100, kPort);
  on_a.saddr = a;
  Sock on_b(200, kPort);
  on_b.saddr = b;
  Listen(m, on_a, 700, "api", kT0);
  Listen(m, on_b, 800, "admin", kT0);

  const SocketEntry* to_b = Accept(m, 300, b, kT0 + kSec);
  ASSERT_NE(to_b, nullptr);
  ASSERT_NE(m.OwnerOf(*to_b), nullptr);
  EXPECT_EQ(m.OwnerOf(*to_b)->comm, "admin");
  const SocketEntry* to_a = Accept(m, 400, a, kT0 + kSec);
  ASSERT_NE(to_a, nullptr);
  ASSERT_NE(m.OwnerOf(*to_a), nullptr);
  EXPECT_EQ(m.OwnerOf(*to_a)->comm, "api");
}

}  // namespace
}  // namespace tcpstated
