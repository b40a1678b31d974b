// Unit tests of the ages the mirror keeps across a restart
// (mirror_saved_ages.cpp): which entry times it hands to the state file,
// and the rules by which a new mirror takes them back after its seeding
// dump: the same namespace, socket and state, and in CLOSE_WAIT a time
// that agrees with the kernel's tcp_info.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "mirror_test_events.h"
#include "tcpstated/mirror.h"
#include "tcpstated/state_file.h"

namespace {

using tcpstated::DiagSocket;
using tcpstated::kEntryAgeUnknown;
using tcpstated::Mirror;
using tcpstated::SavedSocket;
using tcpstated::test::Ip;
using tcpstated::test::kBigTable;
using tcpstated::test::kNetns;
using tcpstated::test::kSec;
using tcpstated::test::kT0;
using tcpstated::test::Walk;
using S = tcpstated::TcpState;
using Dumps = std::unordered_map<uint32_t, std::vector<DiagSocket>>;

constexpr uint64_t kMs = 1000000ULL;
constexpr uint64_t kNetnsCookie = 77;
// The restart: the first daemon ran from kT0; the second seeds at kSeed.
constexpr uint64_t kSeed = kT0 + 1000 * kSec;

struct Sock : tcpstated::test::Sock {
  Sock(uint64_t id_in, uint16_t sport_in, uint16_t dport_in)
      : tcpstated::test::Sock(id_in, sport_in, dport_in) {
    saddr = Ip(AF_INET, "192.0.2.1");
    daddr = Ip(AF_INET, "192.0.2.2");
    netns_cookie = kNetnsCookie;
  }
};

DiagSocket Diag(const Sock& s, S state) {
  return tcpstated::test::Diag(s, s.id, state);
}

// A new mirror seeded from one dump of kNetns at kSeed.
void Seed(Mirror& m, const std::vector<DiagSocket>& sockets) {
  Mirror::NamespaceDump dump;
  dump.netns = kNetns;
  dump.netns_cookie = kNetnsCookie;
  dump.sockets = &sockets;
  m.Reconcile({dump}, kSeed - kSec, kSeed, /*seeding=*/true);
}

// tcp_info of a CLOSE_WAIT socket, `since_*` seconds before kSeed.
DiagSocket WithInfo(DiagSocket d, double since_data_s, double since_ack_s) {
  d.last_data_recv_ms = static_cast<uint32_t>(since_data_s * 1000);
  d.last_ack_ms = static_cast<uint32_t>(since_ack_s * 1000);
  return d;
}

SavedSocket Saved(const Sock& s, S state, uint64_t entered_ns,
                  bool lower_bound = false) {
  SavedSocket r;
  r.netns = s.netns;
  r.netns_cookie = kNetnsCookie;
  r.cookie = s.id;
  r.state = state;
  r.saddr = s.saddr;
  r.daddr = s.daddr;
  r.sport = s.sport;
  r.dport = s.dport;
  r.entered_ns = entered_ns;
  r.lower_bound = lower_bound;
  return r;
}

TEST(MirrorSavedAgesTest, SavesCloseWaitFirstThenFinWait2ThenEstablished) {
  Mirror m(kBigTable);
  Sock cw(1, 8080, 40001), fw2(2, 40002, 443), est(3, 40003, 443),
      listener(4, 8080, 0), old_est(5, 40005, 443);
  Walk(m, old_est, {S::kClose, S::kSynSent, S::kEstablished}, kT0);
  Walk(m, est, {S::kClose, S::kSynSent, S::kEstablished}, kT0 + 10 * kSec);
  Walk(m, fw2,
       {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2},
       kT0 + 20 * kSec);
  Walk(m, cw, {S::kClose, S::kSynSent, S::kEstablished, S::kCloseWait},
       kT0 + 30 * kSec);
  Walk(m, listener, {S::kClose, S::kListen}, kT0);

  std::vector<SavedSocket> all = m.SavedSockets(10, /*ids_are_cookies=*/true);
  ASSERT_EQ(all.size(), 4u);  // not the listener
  EXPECT_EQ(all[0].cookie, 1u);
  EXPECT_EQ(all[0].state, S::kCloseWait);
  EXPECT_EQ(all[0].netns_cookie, kNetnsCookie);
  EXPECT_FALSE(all[0].lower_bound);
  EXPECT_EQ(all[1].cookie, 2u);
  EXPECT_EQ(all[2].cookie, 5u);  // the older ESTABLISHED first
  EXPECT_EQ(all[3].cookie, 3u);

  // Capped: the leak's age is the last thing given up.
  std::vector<SavedSocket> two = m.SavedSockets(2, /*ids_are_cookies=*/false);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].state, S::kCloseWait);
  EXPECT_EQ(two[1].state, S::kFinWait2);
  // Classic-tracepoint ids are not cookies: not written as such.
  EXPECT_EQ(two[0].cookie, 0u);
  EXPECT_TRUE(m.SavedSockets(0, true).empty());
}

// The story of the issue: a leak seen entering CLOSE_WAIT 900 s before the
// restart, with keepalive ACKs every few seconds since. tcp_info alone would
// make it 3 s old; the saved time agrees with tcp_info and is taken back.
TEST(MirrorSavedAgesTest, ALeakKeepsItsAgeThroughARestartWithKeepalive) {
  Sock leak(11, 8080, 40001);
  Mirror first(kBigTable);
  const uint64_t fin_at = Walk(
      first, leak, {S::kClose, S::kSynSent, S::kEstablished, S::kCloseWait},
      kSeed - 902 * kSec);
  tcpstated::StateFile file;
  file.boot_id = "b";
  file.sockets = first.SavedSockets(10, true);
  tcpstated::StateFile read;
  std::string error;
  ASSERT_TRUE(tcpstated::ParseStateFile(tcpstated::FormatStateFile(file), &read,
                                        &error))
      << error;

  Mirror second(kBigTable);
  Seed(second, {Diag(leak, S::kCloseWait)});
  ASSERT_TRUE(second.Find(11)->flags & kEntryAgeUnknown);
  // Data last arrived just before the FIN; the last ACK 3 s ago.
  Dumps info = {{kNetns, {WithInfo(Diag(leak, S::kCloseWait), 900.5, 3)}}};
  Mirror::RestoreStats r = second.RestoreSavedAges(read.sockets, info, kSeed);
  EXPECT_EQ(r.saved, 1u);
  EXPECT_EQ(r.restored, 1u);
  EXPECT_EQ(r.rejected, 0u);
  EXPECT_EQ(second.Find(11)->entered_ns, fin_at);
  EXPECT_FALSE(second.Find(11)->flags & kEntryAgeUnknown);
  // Known now: the kernel is not asked for a (younger) bound any more.
  EXPECT_TRUE(second.NamespacesWithUnknownCloseWaitAges().empty());
  EXPECT_EQ(second.AgeCloseWaitFromKernel(info, kSeed), 0u);
  EXPECT_EQ(second.Find(11)->entered_ns, fin_at);
}

TEST(MirrorSavedAgesTest, CloseWaitTimesMustAgreeWithTcpInfo) {
  Sock reused(1, 8080, 40001), late(2, 8080, 40002), no_info(3, 8080, 40003),
      edge(4, 8080, 40004);
  Mirror m(kBigTable);
  Seed(m, {Diag(reused, S::kCloseWait), Diag(late, S::kCloseWait),
           Diag(no_info, S::kCloseWait), Diag(edge, S::kCloseWait)});
  const uint64_t saved_at = kSeed - 600 * kSec;
  Dumps info = {{kNetns,
                 {// Data 100 s ago: a CLOSE_WAIT of 600 s is another socket
                  // that had this 4-tuple (and the same cookie, were the
                  // file from another boot).
                  WithInfo(Diag(reused, S::kCloseWait), 100, 100),
                  // An ACK 700 s ago at the latest: the FIN cannot be
                  // younger than that.
                  WithInfo(Diag(late, S::kCloseWait), 800, 700),
                  Diag(no_info, S::kCloseWait),
                  // Within the 2 s of slack on both bounds.
                  WithInfo(Diag(edge, S::kCloseWait), 598.5, 601.5)}}};
  Mirror::RestoreStats r =
      m.RestoreSavedAges({Saved(reused, S::kCloseWait, saved_at),
                          Saved(late, S::kCloseWait, saved_at),
                          Saved(no_info, S::kCloseWait, saved_at),
                          Saved(edge, S::kCloseWait, saved_at)},
                         info, kSeed);
  EXPECT_EQ(r.restored, 1u);
  EXPECT_EQ(r.rejected, 3u);
  EXPECT_EQ(m.Find(1)->entered_ns, kSeed);
  EXPECT_EQ(m.Find(2)->entered_ns, kSeed);
  EXPECT_EQ(m.Find(3)->entered_ns, kSeed);
  EXPECT_EQ(m.Find(4)->entered_ns, saved_at);
}

TEST(MirrorSavedAgesTest, OnlyTheSameSocketInTheSameStateAndNamespace) {
  Sock moved(1, 40001, 443), other_cookie(2, 40002, 443),
      other_ns(3, 40003, 443), fw2(4, 40004, 443), gone(5, 40005, 443),
      future(6, 40006, 443);
  Mirror m(kBigTable);
  Seed(m, {Diag(moved, S::kLastAck), Diag(other_cookie, S::kFinWait2),
           Diag(other_ns, S::kFinWait2), Diag(fw2, S::kFinWait2),
           Diag(future, S::kFinWait2)});
  const uint64_t at = kSeed - 400 * kSec;
  SavedSocket wrong_cookie = Saved(other_cookie, S::kFinWait2, at);
  wrong_cookie.cookie = 99;
  SavedSocket wrong_ns = Saved(other_ns, S::kFinWait2, at);
  wrong_ns.netns_cookie = kNetnsCookie + 1;  // the inode names a new netns
  SavedSocket no_cookie = Saved(fw2, S::kFinWait2, at);
  no_cookie.cookie = 0;  // classic tracepoint: matched by 4-tuple
  Mirror::RestoreStats r =
      m.RestoreSavedAges({Saved(moved, S::kCloseWait, at), wrong_cookie,
                          wrong_ns, no_cookie, Saved(gone, S::kFinWait2, at),
                          Saved(future, S::kFinWait2, kSeed + kSec)},
                         {}, kSeed);
  EXPECT_EQ(r.saved, 6u);
  EXPECT_EQ(r.restored, 1u);
  EXPECT_EQ(r.rejected, 4u);  // `gone` matched nothing
  EXPECT_EQ(m.Find(4)->entered_ns, at);
  EXPECT_FALSE(m.Find(4)->flags & kEntryAgeUnknown);
  for (uint64_t id : {1, 2, 3, 6}) {
    EXPECT_EQ(m.Find(id)->entered_ns, kSeed) << id;
    EXPECT_TRUE(m.Find(id)->flags & kEntryAgeUnknown) << id;
  }
}

TEST(MirrorSavedAgesTest, ALowerBoundOnlyMovesTheEstimateEarlier) {
  Sock early(1, 8080, 40001), late(2, 8080, 40002);
  Mirror m(kBigTable);
  Seed(m, {Diag(early, S::kCloseWait), Diag(late, S::kCloseWait)});
  Dumps info = {{kNetns,
                 {WithInfo(Diag(early, S::kCloseWait), 500, 1),
                  WithInfo(Diag(late, S::kCloseWait), 500, 1)}}};
  m.RestoreSavedAges({Saved(early, S::kCloseWait, kSeed - 300 * kSec, true),
                      Saved(late, S::kCloseWait, kSeed + 0, true)},
                     info, kSeed);
  EXPECT_EQ(m.Find(1)->entered_ns, kSeed - 300 * kSec);
  EXPECT_EQ(m.Find(2)->entered_ns, kSeed);
  // Still bounds: flagged as such, and the kernel's own bound still
  // applies where it is earlier.
  EXPECT_TRUE(m.Find(1)->flags & kEntryAgeUnknown);
  EXPECT_TRUE(m.Find(2)->flags & kEntryAgeUnknown);
  Dumps later = {{kNetns,
                  {WithInfo(Diag(early, S::kCloseWait), 500, 1),
                   WithInfo(Diag(late, S::kCloseWait), 500, 450)}}};
  EXPECT_EQ(m.AgeCloseWaitFromKernel(later, kSeed), 2u);
  EXPECT_EQ(m.Find(1)->entered_ns, kSeed - 300 * kSec);
  EXPECT_EQ(m.Find(2)->entered_ns, kSeed - 450 * kSec);
}

TEST(MirrorSavedAgesTest, AgesTheMirrorObservedAreNotOverwritten) {
  Sock s(1, 40001, 443);
  Mirror m(kBigTable);
  const uint64_t at =
      Walk(m, s, {S::kClose, S::kSynSent, S::kEstablished}, kSeed - 5 * kSec);
  Mirror::RestoreStats r = m.RestoreSavedAges(
      {Saved(s, S::kEstablished, kSeed - 500 * kSec)}, {}, kSeed);
  EXPECT_EQ(r.restored, 0u);
  EXPECT_EQ(m.Find(1)->entered_ns, at);
}

}  // namespace
