// RingWatermark (tcpstated/ring_watermark.h): how far the merge may release
// when rings are drained completely, and when one is blocked by a record
// still being written.
#include "tcpstated/ring_watermark.h"

#include <gtest/gtest.h>

namespace tcpstated {
namespace {

TEST(RingWatermarkTest, NothingBeforeTheFirstDrain) {
  RingWatermark w(2);
  EXPECT_EQ(w.watermark_ns(), 0u);
}

TEST(RingWatermarkTest, IsTheTurnsClockWhenEveryRingWasDrainedPastIt) {
  RingWatermark w(2);
  w.Observe(0, 100, 64);
  w.Observe(1, 100, 128);
  w.Drained(0, 64);
  w.Drained(1, 192);  // records reserved after the observation were read too
  EXPECT_EQ(w.watermark_ns(), 100u);
}

TEST(RingWatermarkTest, ABlockedRingKeepsItAtItsLastReachedObservation) {
  RingWatermark w(2);
  w.Observe(0, 100, 64);
  w.Observe(1, 100, 64);
  w.Drained(0, 64);
  w.Drained(1, 64);
  ASSERT_EQ(w.watermark_ns(), 100u);
  // Ring 1's record at 64 is still being written: its consumer stays there.
  w.Observe(0, 200, 128);
  w.Observe(1, 200, 128);
  w.Drained(0, 128);
  w.Drained(1, 64);
  EXPECT_EQ(w.watermark_ns(), 100u);
  w.Observe(0, 300, 192);
  w.Observe(1, 300, 192);
  w.Drained(0, 192);
  w.Drained(1, 128);  // committed: read up to the 200 observation
  EXPECT_EQ(w.watermark_ns(), 200u);
  w.Observe(0, 400, 192);
  w.Observe(1, 400, 256);
  w.Drained(0, 192);
  w.Drained(1, 256);
  EXPECT_EQ(w.watermark_ns(), 400u);
}

TEST(RingWatermarkTest, StaysLowWhenABlockedRingOutlastsItsObservations) {
  RingWatermark w(2);
  w.Observe(0, 10, 0);
  w.Observe(1, 10, 0);
  w.Drained(0, 0);
  w.Drained(1, 0);
  ASSERT_EQ(w.watermark_ns(), 10u);
  // Ring 0 blocked at 8 for many turns: its old observations are dropped,
  // and the watermark never passes one it did not reach.
  for (uint64_t t = 20; t < 2000; t += 10) {
    w.Observe(0, t, 64);
    w.Observe(1, t, 64);
    w.Drained(0, 8);
    w.Drained(1, 64);
    ASSERT_EQ(w.watermark_ns(), 10u);
  }
  w.Observe(0, 5000, 64);
  w.Observe(1, 5000, 64);
  w.Drained(0, 64);
  w.Drained(1, 64);
  EXPECT_EQ(w.watermark_ns(), 5000u);
}

}  // namespace
}  // namespace tcpstated
