// Unit tests of tcpstated::FinWait2Detector: full sockets grouped by owner
// and peer, stuck past the threshold, orphans apart, the "other" fold,
// start/clear lines and the families.

#include "tcpstated/fin_wait2_detector.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace tcpstated {
namespace {

using Labels = std::map<std::string, std::string>;
constexpr uint32_t kNs = 4026531840u;

FinWait2Socket Full(std::string comm, uint8_t last_octet, uint16_t dport,
                    double age) {
  FinWait2Socket s;
  s.netns = kNs;
  s.comm = std::move(comm);
  s.unit = "app.service";
  s.daddr = {198, 51, 100, last_octet};
  s.dport = dport;
  s.age_seconds = age;
  return s;
}

FinWait2Socket Orphan(uint32_t netns) {
  FinWait2Socket s;
  s.netns = netns;
  s.orphan = true;
  s.age_seconds = 1000;  // old, yet never stuck
  return s;
}

double ValueOf(const std::vector<Series>& series, const Labels& labels) {
  for (const Series& s : series) {
    if (s.labels == labels) return s.value;
  }
  ADD_FAILURE() << "no series with the labels";
  return -1;
}

Labels Group(const std::string& comm, const std::string& daddr,
             uint16_t dport) {
  return {{"netns", std::to_string(kNs)},
          {"comm", comm},
          {"unit", "app.service"},
          {"daddr", daddr},
          {"dport", std::to_string(dport)}};
}

TEST(FinWait2DetectorTest, GroupsByOwnerAndPeerWithTheOldest) {
  FinWait2Detector detector;
  FinWait2Config config;
  config.stuck_after_seconds = 10;
  FinWait2Report r = detector.Evaluate(
      {Full("client", 1, 80, 5), Full("client", 1, 80, 20),
       Full("client", 2, 80, 30), Orphan(kNs), Orphan(kNs), Orphan(7)},
      config);
  ASSERT_EQ(r.sockets.size(), 2u);
  const Labels a = Group("client", "198.51.100.1", 80);
  const Labels b = Group("client", "198.51.100.2", 80);
  EXPECT_EQ(ValueOf(r.sockets, a), 2);
  EXPECT_EQ(ValueOf(r.stuck_sockets, a), 1);
  EXPECT_EQ(ValueOf(r.oldest_seconds, a), 20);
  EXPECT_EQ(ValueOf(r.sockets, b), 1);
  EXPECT_EQ(ValueOf(r.stuck_sockets, b), 1);
  EXPECT_EQ(ValueOf(r.orphan_sockets, {{"netns", std::to_string(kNs)}}), 2);
  EXPECT_EQ(ValueOf(r.orphan_sockets, {{"netns", "7"}}), 1);
  ASSERT_EQ(r.started.size(), 1u);
  EXPECT_NE(r.started[0].find("2 sockets"), std::string::npos) << r.started[0];
  EXPECT_NE(r.started[0].find("peer=198.51.100.2:80"), std::string::npos)
      << r.started[0];
}

// A socket exactly at the threshold is not stuck yet; the line comes once,
// and the clear line when the last stuck socket goes.
TEST(FinWait2DetectorTest, StartsOnceAndClears) {
  FinWait2Detector detector;
  FinWait2Config config;
  config.stuck_after_seconds = 10;
  FinWait2Report r = detector.Evaluate({Full("c", 1, 80, 10)}, config);
  EXPECT_TRUE(r.started.empty());
  EXPECT_EQ(r.stuck_sockets.at(0).value, 0);
  r = detector.Evaluate({Full("c", 1, 80, 10.5)}, config);
  EXPECT_EQ(r.started.size(), 1u);
  r = detector.Evaluate({Full("c", 1, 80, 11)}, config);
  EXPECT_TRUE(r.started.empty());
  EXPECT_TRUE(r.cleared.empty());
  // Orphans never start it.
  r = detector.Evaluate({Orphan(kNs)}, config);
  ASSERT_EQ(r.cleared.size(), 1u);
  EXPECT_TRUE(r.sockets.empty());
  r = detector.Evaluate({Orphan(kNs)}, config);
  EXPECT_TRUE(r.started.empty());
  EXPECT_TRUE(r.cleared.empty());
}

// Beyond max_series_per_metric the smallest groups are summed under
// "other": sums stay exact and the oldest age is kept.
TEST(FinWait2DetectorTest, FoldsIntoOther) {
  FinWait2Detector detector;
  FinWait2Config config;
  config.stuck_after_seconds = 100;
  config.max_series_per_metric = 2;
  std::vector<FinWait2Socket> in;
  for (int i = 0; i < 3; ++i) in.push_back(Full("big", 1, 80, 1));
  for (int i = 0; i < 2; ++i) in.push_back(Full("mid", 2, 80, 1));
  in.push_back(Full("small", 3, 80, 500));
  in.push_back(Full("tiny", 4, 443, 2));
  FinWait2Report r = detector.Evaluate(in, config);
  // The stuck group ranks first, then by count.
  ASSERT_EQ(r.sockets.size(), 3u);
  EXPECT_EQ(ValueOf(r.sockets, Group("small", "198.51.100.3", 80)), 1);
  EXPECT_EQ(ValueOf(r.sockets, Group("big", "198.51.100.1", 80)), 3);
  Labels other = {{"netns", "other"},
                  {"comm", "other"},
                  {"unit", "other"},
                  {"daddr", "other"},
                  {"dport", "other"}};
  EXPECT_EQ(ValueOf(r.sockets, other), 3);
  EXPECT_EQ(ValueOf(r.oldest_seconds, other), 2);
  double total = 0;
  for (const Series& s : r.sockets) total += s.value;
  EXPECT_EQ(total, 7);
}

TEST(FinWait2DetectorTest, CleansLabelsAndIgnoresBadAges) {
  FinWait2Detector detector;
  FinWait2Socket s = Full(std::string("a\x01\xff", 3), 1, 80, -5);
  s.daddr[5] = 9;  // IPv4: bytes beyond the fourth do not split groups
  FinWait2Report r = detector.Evaluate(
      {s, Full(std::string("a\x01\xff", 3), 1, 80, 0)}, FinWait2Config{});
  ASSERT_EQ(r.sockets.size(), 1u);
  EXPECT_EQ(r.sockets[0].labels.at("comm"), "a??");
  EXPECT_EQ(r.sockets[0].value, 2);
  EXPECT_EQ(r.oldest_seconds[0].value, 0);
}

TEST(FinWait2DetectorTest, EveryFamilyPresentWhenEmpty) {
  auto families = FinWait2Metrics(FinWait2Report{});
  ASSERT_EQ(families.size(), 4u);
  for (const auto& f : families) {
    EXPECT_EQ(f.name.rfind("tcpstated_fin_wait2_", 0), 0u) << f.name;
    EXPECT_FALSE(f.help.empty());
  }
}

}  // namespace
}  // namespace tcpstated
