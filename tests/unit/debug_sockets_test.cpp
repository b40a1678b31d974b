#include "tcpstated/debug_sockets.h"

#include <gtest/gtest.h>

#include <string>

namespace tcpstated {
namespace {

constexpr uint32_t kNetns = 4026532000u;

Event Change(uint64_t id, TcpState from, TcpState to, uint64_t ts,
             uint16_t sport, uint16_t dport) {
  Event e;
  e.id = id;
  e.netns = kNetns;
  e.ts_ns = ts;
  e.oldstate = from;
  e.newstate = to;
  e.sport = sport;
  e.dport = dport;
  e.saddr = {127, 0, 0, 1};
  e.daddr = {127, 0, 0, 1};
  return e;
}

// A client that reached CLOSE_WAIT at `ts`.
void CloseWait(Mirror& m, uint64_t id, uint64_t ts) {
  uint16_t port = static_cast<uint16_t>(40000 + id);
  m.Apply(Change(id, TcpState::kClose, TcpState::kSynSent, ts - 2, 0, 80));
  m.Apply(
      Change(id, TcpState::kSynSent, TcpState::kEstablished, ts - 1, port, 80));
  m.Apply(
      Change(id, TcpState::kEstablished, TcpState::kCloseWait, ts, port, 80));
}

TEST(DebugQuery, Parses) {
  DebugQuery q;
  std::string error;
  ASSERT_TRUE(ParseDebugQuery("state=close_wait&limit=5&netns=7", &q, &error));
  EXPECT_FALSE(q.any_state);
  EXPECT_EQ(q.state, TcpState::kCloseWait);
  EXPECT_EQ(q.limit, 5u);
  EXPECT_FALSE(q.any_netns);
  EXPECT_EQ(q.netns, 7u);
  ASSERT_TRUE(ParseDebugQuery("", &q, &error));
  EXPECT_TRUE(q.any_state);
  EXPECT_EQ(q.limit, 100u);
}

TEST(DebugQuery, RejectsBadInput) {
  DebugQuery q;
  std::string error;
  for (const char* bad :
       {"state=nope", "limit=0", "limit=1001", "limit=x", "netns=-1", "foo=1",
        "limit=99999999999999999999", "netns=4294967296"}) {
    error.clear();
    EXPECT_FALSE(ParseDebugQuery(bad, &q, &error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
    EXPECT_EQ(error.find('\n'), std::string::npos) << bad;
  }
}

TEST(DebugSockets, OldestFirstAndBounded) {
  Mirror m(1000);
  for (uint64_t id = 1; id <= 10; ++id) CloseWait(m, id, id * kNsPerSec);
  DebugQuery q;
  std::string error;
  ASSERT_TRUE(ParseDebugQuery("state=close_wait&limit=3", &q, &error));
  std::string json = DebugSockets(m, q, 100 * kNsPerSec);
  EXPECT_NE(json.find("\"matched\":10"), std::string::npos) << json;
  EXPECT_NE(json.find("\"truncated\":true"), std::string::npos) << json;
  // The three oldest, oldest first: ids 1, 2, 3.
  size_t a = json.find("\"id\":1,");
  size_t b = json.find("\"id\":2,");
  size_t c = json.find("\"id\":3,");
  ASSERT_NE(a, std::string::npos) << json;
  ASSERT_NE(b, std::string::npos) << json;
  ASSERT_NE(c, std::string::npos) << json;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(json.find("\"id\":4,"), std::string::npos);
  EXPECT_NE(json.find("\"age_seconds\":99.000"), std::string::npos) << json;
  EXPECT_NE(json.find("\"local\":\"127.0.0.1:40001\""), std::string::npos);
  EXPECT_NE(json.find("\"remote\":\"127.0.0.1:80\""), std::string::npos);
  EXPECT_NE(json.find("\"role\":\"client\""), std::string::npos);
}

TEST(DebugSockets, FiltersByStateAndNamespace) {
  Mirror m(1000);
  CloseWait(m, 1, kNsPerSec);
  m.Apply(Change(2, TcpState::kClose, TcpState::kListen, 5, 8080, 0));
  DebugQuery q;
  std::string error;
  ASSERT_TRUE(ParseDebugQuery("state=listen", &q, &error));
  std::string json = DebugSockets(m, q, 10 * kNsPerSec);
  EXPECT_NE(json.find("\"matched\":1,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"state\":\"listen\""), std::string::npos);
  ASSERT_TRUE(ParseDebugQuery("netns=1", &q, &error));
  json = DebugSockets(m, q, 10 * kNsPerSec);
  EXPECT_NE(json.find("\"matched\":0,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"sockets\":[]"), std::string::npos) << json;
}

}  // namespace
}  // namespace tcpstated
