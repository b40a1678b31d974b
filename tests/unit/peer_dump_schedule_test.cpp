// Unit tests of tcpstated::PeerDumpSchedule: the peer dumps' intervals,
// and the full dump standing in for the ESTABLISHED dump (so that one walk
// of the host's sockets serves both): dead peers judged at least every
// quarter of idle_after but at most every 5 min (so that a peer dead under
// the default keepalive is judged before the kernel resets it), from any
// dump (the row's timer), idle connections every quarter of idle_after
// from a dump with tcp_info, both capped at the safety interval.

#include "tcpstated/peer_dump_schedule.h"

#include <gtest/gtest.h>

#include <chrono>

namespace tcpstated {
namespace {

using std::chrono::milliseconds;

constexpr uint64_t kS = 1000000000ULL;

// The defaults: fin_wait2_stuck_after 300 s, idle_after 1 h, detector
// cycle 5 s, safety dump 10 min.
PeerDumpIntervals Defaults() {
  return PeerDumpIntervalsFor(300, 3600, milliseconds(5000),
                              milliseconds(600000));
}

TEST(PeerDumpScheduleTest, IntervalsAreFractionsOfTheThresholdsWithinBounds) {
  PeerDumpIntervals d = Defaults();
  EXPECT_EQ(d.fin_wait2_ns, 30 * kS);
  // A quarter of an hour, but at most 5 min: the default keepalive shows a
  // dead peer for 450-525 s before the kernel resets the connection.
  EXPECT_EQ(d.established_ns, 300 * kS);
  // Idle: a quarter of an hour, capped at the safety interval.
  EXPECT_EQ(d.idle_ns, 600 * kS);
  EXPECT_EQ(d.detector_ns, 5 * kS);
  EXPECT_EQ(d.full_ns, 600 * kS);

  PeerDumpIntervals mid =
      PeerDumpIntervalsFor(300, 480, milliseconds(5000), milliseconds(600000));
  EXPECT_EQ(mid.established_ns, 120 * kS);  // a quarter of 8 min
  EXPECT_EQ(mid.idle_ns, 120 * kS);
  // A safety interval under 5 min caps it further.
  PeerDumpIntervals often =
      PeerDumpIntervalsFor(300, 3600, milliseconds(5000), milliseconds(60000));
  EXPECT_EQ(often.established_ns, 60 * kS);

  // The integration tests' settings: thresholds of seconds, everything
  // every second.
  PeerDumpIntervals fast =
      PeerDumpIntervalsFor(2, 2, milliseconds(1000), milliseconds(1000));
  EXPECT_EQ(fast.fin_wait2_ns, kS);
  EXPECT_EQ(fast.established_ns, kS);
  EXPECT_EQ(fast.idle_ns, kS);

  // A safety interval shorter than the cycle cannot make a dump more
  // frequent than the cycle.
  PeerDumpIntervals odd =
      PeerDumpIntervalsFor(300, 3600, milliseconds(5000), milliseconds(1000));
  EXPECT_EQ(odd.full_ns, 5 * kS);
  EXPECT_EQ(odd.established_ns, 5 * kS);
}

constexpr PeerDumpsDue kAll{true, true, true};

TEST(PeerDumpScheduleTest, FirstFullDumpServesAll) {
  PeerDumpSchedule s;
  const PeerDumpIntervals d = Defaults();
  // The seed: nothing judged yet; it asks for tcp_info.
  PeerDumpsDue served = s.FullDumpServes(0, d);
  EXPECT_TRUE(served.fin_wait2);
  EXPECT_TRUE(served.established);
  EXPECT_TRUE(served.idle);
  EXPECT_TRUE(served.needs_tcp_info());
  s.Ran(kAll, 1 * kS, d);
  // A full dump soon after: dead peers from its rows, no tcp_info.
  served = s.FullDumpServes(2 * kS, d);
  EXPECT_TRUE(served.established);
  EXPECT_FALSE(served.needs_tcp_info());
  // FIN_WAIT2 on its own cadence, dead peers on their own 5 min later,
  // without tcp_info; idle connections never on their own (the safety
  // dump serves them).
  EXPECT_FALSE(s.DueNow(30 * kS, d).any());
  PeerDumpsDue due = s.DueNow(31 * kS, d);
  EXPECT_TRUE(due.fin_wait2);
  EXPECT_FALSE(due.established);
  EXPECT_FALSE(s.DueNow(300 * kS, d).established);
  s.Ran(due, 290 * kS, d);  // the last FIN_WAIT2 dump before 5 min
  due = s.DueNow(301 * kS, d);
  EXPECT_FALSE(due.fin_wait2);
  EXPECT_TRUE(due.established);
  EXPECT_FALSE(due.idle);
  EXPECT_FALSE(due.needs_tcp_info());
}

TEST(PeerDumpScheduleTest, TcpInfoForFinWait2AlsoJudgesIdle) {
  // A dump of FIN_WAIT2 and ESTABLISHED sockets carries tcp_info for both:
  // the idle judgment comes with it.
  PeerDumpSchedule s;
  const PeerDumpIntervals d = Defaults();
  s.Ran(kAll, 0, d);
  PeerDumpsDue due = s.DueNow(300 * kS, d);
  EXPECT_TRUE(due.fin_wait2);
  EXPECT_TRUE(due.established);
  EXPECT_TRUE(due.idle);
  s.Ran(due, 300 * kS, d);
  EXPECT_FALSE(s.FullDumpServes(600 * kS, d).idle);
  EXPECT_TRUE(s.FullDumpServes(896 * kS, d).idle);
}

TEST(PeerDumpScheduleTest, ShortIdleAfterJudgesIdleOnItsOwn) {
  // idle_after 8 min: idle judged every 2 min on its own, with tcp_info,
  // and dead peers with it.
  const PeerDumpIntervals d =
      PeerDumpIntervalsFor(300, 480, milliseconds(5000), milliseconds(600000));
  PeerDumpSchedule s;
  s.Ran(kAll, 0, d);
  s.Ran({true, false, false}, 110 * kS, d);  // FIN_WAIT2 on its cadence
  EXPECT_FALSE(s.DueNow(119 * kS, d).any());
  PeerDumpsDue due = s.DueNow(120 * kS, d);
  EXPECT_FALSE(due.fin_wait2);
  EXPECT_TRUE(due.idle);
  EXPECT_TRUE(due.established);
  EXPECT_TRUE(due.needs_tcp_info());
}

TEST(PeerDumpScheduleTest, EstablishedJudgmentRidesOnEverySafetyDumpWhenEqual) {
  // Safety interval 5 min: the ESTABLISHED judgments' intervals equal it
  // and never run on their own; every safety dump serves them.
  const PeerDumpIntervals d =
      PeerDumpIntervalsFor(300, 3600, milliseconds(5000), milliseconds(300000));
  PeerDumpSchedule s;
  s.Ran(kAll, 0, d);
  EXPECT_FALSE(s.DueNow(10000 * kS, d).established);
  EXPECT_FALSE(s.DueNow(10000 * kS, d).idle);
  EXPECT_TRUE(s.FullDumpServes(300 * kS - 2 * kS, d).idle);
}

TEST(PeerDumpScheduleTest, SafetyDumpServesEveryOtherJudgmentAtDefaults) {
  PeerDumpSchedule s;
  const PeerDumpIntervals d = Defaults();
  s.Ran(kAll, 0, d);
  // The dead-peer judgment at 5 min runs on its own; the next safety dump
  // comes a full interval after the last one started, which may be a
  // little before the idle judgment's interval has run out: it still asks
  // for tcp_info (due within the cycle).
  EXPECT_TRUE(s.DueNow(300 * kS, d).established);
  s.Ran({false, true, false}, 300 * kS, d);
  EXPECT_TRUE(s.FullDumpServes(600 * kS - 2 * kS, d).idle);
  EXPECT_TRUE(s.FullDumpServes(600 * kS + 3 * kS, d).idle);
  EXPECT_FALSE(s.FullDumpServes(600 * kS - 6 * kS, d).idle);
  EXPECT_TRUE(s.FullDumpServes(600 * kS - 6 * kS, d).established);
}

TEST(PeerDumpScheduleTest, OverdueJudgmentTakesTheNextFullDumpOfAnyReason) {
  // Under lost events the full dumps come every 30 s and the safety dump's
  // timer keeps restarting: each judges dead peers, and the idle judgment,
  // once due, rides on the next with tcp_info.
  PeerDumpSchedule s;
  const PeerDumpIntervals d = Defaults();
  s.Ran(kAll, 0, d);
  for (uint64_t t = 30; t < 595; t += 30) {
    PeerDumpsDue served = s.FullDumpServes(t * kS, d);
    EXPECT_TRUE(served.established) << t;
    EXPECT_FALSE(served.needs_tcp_info()) << t;
    s.Ran(served, t * kS, d);
    EXPECT_FALSE(s.DueNow(t * kS, d).established) << t;
  }
  EXPECT_TRUE(s.FullDumpServes(610 * kS, d).idle);
}

}  // namespace
}  // namespace tcpstated
