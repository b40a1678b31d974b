// Unit tests of tcpstated::PeerDumpSchedule: the peer dumps' intervals,
// and the full dump standing in for the ESTABLISHED dump (so that one walk
// of the host's sockets serves both) without an idle connection waiting
// longer than idle_after plus a quarter of it (at most 5 min, so that a peer
// dead under the default keepalive is judged before the kernel resets it),
// capped at the safety interval.

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
  EXPECT_EQ(d.detector_ns, 5 * kS);
  EXPECT_EQ(d.full_ns, 600 * kS);

  PeerDumpIntervals mid =
      PeerDumpIntervalsFor(300, 480, milliseconds(5000), milliseconds(600000));
  EXPECT_EQ(mid.established_ns, 120 * kS);  // a quarter of 8 min
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

  // A safety interval shorter than the cycle cannot make a dump more
  // frequent than the cycle.
  PeerDumpIntervals odd =
      PeerDumpIntervalsFor(300, 3600, milliseconds(5000), milliseconds(1000));
  EXPECT_EQ(odd.full_ns, 5 * kS);
  EXPECT_EQ(odd.established_ns, 5 * kS);
}

TEST(PeerDumpScheduleTest, FirstFullDumpServesBoth) {
  PeerDumpSchedule s;
  const PeerDumpIntervals d = Defaults();
  // The seed: nothing judged yet.
  EXPECT_TRUE(s.FullDumpServes(0, d));
  s.Ran({true, true}, 1 * kS, d);
  EXPECT_FALSE(s.FullDumpServes(2 * kS, d));
  // FIN_WAIT2 on its own cadence, ESTABLISHED on its own 5 min later.
  EXPECT_FALSE(s.DueNow(30 * kS, d).any());
  PeerDumpsDue due = s.DueNow(31 * kS, d);
  EXPECT_TRUE(due.fin_wait2);
  EXPECT_FALSE(due.established);
  EXPECT_FALSE(s.DueNow(300 * kS, d).established);
  EXPECT_TRUE(s.DueNow(301 * kS, d).established);
}

TEST(PeerDumpScheduleTest, EstablishedJudgmentRidesOnEverySafetyDumpWhenEqual) {
  // Safety interval 5 min: the ESTABLISHED judgment's interval equals it
  // and never runs on its own; every safety dump serves it.
  const PeerDumpIntervals d =
      PeerDumpIntervalsFor(300, 3600, milliseconds(5000), milliseconds(300000));
  PeerDumpSchedule s;
  s.Ran({true, true}, 0, d);
  EXPECT_FALSE(s.DueNow(10000 * kS, d).established);
  EXPECT_TRUE(s.FullDumpServes(300 * kS - 2 * kS, d));
}

TEST(PeerDumpScheduleTest, SafetyDumpServesEveryOtherJudgmentAtDefaults) {
  PeerDumpSchedule s;
  const PeerDumpIntervals d = Defaults();
  s.Ran({true, true}, 0, d);
  // The judgment at 5 min runs on its own; the next safety dump comes a
  // full interval after the last one started, which may be a little before
  // the judgment's interval has run out: it still serves (due within the
  // cycle).
  EXPECT_TRUE(s.DueNow(300 * kS, d).established);
  s.Ran({false, true}, 300 * kS, d);
  EXPECT_TRUE(s.FullDumpServes(600 * kS - 2 * kS, d));
  EXPECT_TRUE(s.FullDumpServes(600 * kS + 3 * kS, d));
  EXPECT_FALSE(s.FullDumpServes(600 * kS - 6 * kS, d));
}

TEST(PeerDumpScheduleTest, OverdueJudgmentTakesTheNextFullDumpOfAnyReason) {
  // Under lost events the full dumps come every 30 s and the safety dump's
  // timer keeps restarting: the judgment, once due, rides on the next.
  PeerDumpSchedule s;
  const PeerDumpIntervals d = Defaults();
  s.Ran({true, true}, 0, d);
  for (uint64_t t = 30; t < 295; t += 30) {
    EXPECT_FALSE(s.FullDumpServes(t * kS, d)) << t;
  }
  EXPECT_TRUE(s.FullDumpServes(310 * kS, d));
}

TEST(PeerDumpScheduleTest, ShortIdleAfterDumpsOnItsOwnCadence) {
  // idle_after 20 min: every 5 min on its own, the 10-min safety dump
  // serving it only when it falls due then.
  const PeerDumpIntervals d =
      PeerDumpIntervalsFor(300, 1200, milliseconds(5000), milliseconds(600000));
  EXPECT_EQ(d.established_ns, 300 * kS);
  PeerDumpSchedule s;
  s.Ran({true, true}, 0, d);
  EXPECT_FALSE(s.DueNow(299 * kS, d).established);
  EXPECT_TRUE(s.DueNow(300 * kS, d).established);
  s.Ran({false, true}, 300 * kS, d);
  EXPECT_FALSE(s.DueNow(301 * kS, d).established);
  EXPECT_FALSE(s.FullDumpServes(400 * kS, d));
  EXPECT_TRUE(s.FullDumpServes(597 * kS, d));
}

}  // namespace
}  // namespace tcpstated
