#include "tcpstated/debug_sockets.h"

#include <gtest/gtest.h>

#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
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

// The JSON document for `query` at `now_ns`, parsed (throws if invalid).
nlohmann::json Query(const Mirror& m, const std::string& query,
                     uint64_t now_ns) {
  DebugQuery q;
  std::string error;
  EXPECT_TRUE(ParseDebugQuery(query, &q, &error)) << error;
  std::mutex mutex;
  return nlohmann::json::parse(
      DebugSocketsJson(CollectDebugSockets(m, mutex, q), now_ns));
}

TEST(DebugSockets, OldestFirstAndBounded) {
  Mirror m(1000);
  for (uint64_t id = 1; id <= 10; ++id) CloseWait(m, id, id * kNsPerSec);
  const nlohmann::json json =
      Query(m, "state=close_wait&limit=3", 100 * kNsPerSec);
  EXPECT_EQ(json["matched"], 10);
  EXPECT_EQ(json["truncated"], true);
  // The three oldest, oldest first: ids 1, 2, 3.
  ASSERT_EQ(json["sockets"].size(), 3u) << json;
  for (uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(json["sockets"][i]["id"], i + 1) << json;
  }
  const nlohmann::json& first = json["sockets"][0];
  EXPECT_DOUBLE_EQ(first["age_seconds"].get<double>(), 99.0);
  EXPECT_EQ(first["local"], "127.0.0.1:40001");
  EXPECT_EQ(first["remote"], "127.0.0.1:80");
  EXPECT_EQ(first["role"], "client");
  EXPECT_EQ(first["state"], "close_wait");
  EXPECT_EQ(first["netns"], kNetns);
  EXPECT_FALSE(first.contains("comm"));
}

TEST(DebugSockets, FiltersByStateAndNamespace) {
  Mirror m(1000);
  CloseWait(m, 1, kNsPerSec);
  m.Apply(Change(2, TcpState::kClose, TcpState::kListen, 5, 8080, 0));
  nlohmann::json json = Query(m, "state=listen", 10 * kNsPerSec);
  EXPECT_EQ(json["matched"], 1);
  ASSERT_EQ(json["sockets"].size(), 1u);
  EXPECT_EQ(json["sockets"][0]["state"], "listen");
  json = Query(m, "netns=1", 10 * kNsPerSec);
  EXPECT_EQ(json["matched"], 0);
  EXPECT_EQ(json["truncated"], false);
  EXPECT_TRUE(json["sockets"].empty());
}

TEST(DebugSockets, ScansATableLargerThanASliceOnce) {
  // Several slices: every socket counted once, the oldest still first.
  Mirror m(20000);
  const uint64_t n = 3 * kDebugSocketsSliceSlots;
  for (uint64_t id = 1; id <= n; ++id) CloseWait(m, id, (n + 10 - id) * 10);
  const nlohmann::json json = Query(m, "limit=2", n * 100);
  EXPECT_EQ(json["matched"], n);
  ASSERT_EQ(json["sockets"].size(), 2u);
  EXPECT_EQ(json["sockets"][0]["id"], n);
  EXPECT_EQ(json["sockets"][1]["id"], n - 1);
}

TEST(DebugSockets, AnyProcessNameGivesValidJson) {
  // A thread can name itself anything with prctl(PR_SET_NAME): quotes,
  // control characters, bytes that are not UTF-8.
  const std::string names[] = {
      "nginx",        "a\"b\\c", std::string("\x01\x1f\x7f", 3),
      "\xff\xfe\x80", "caf\xc3", "\xe2\x82",
      "ok\xc3\xa9"};
  Mirror m(1000);
  uint64_t id = 1;
  for (const std::string& name : names) {
    CloseWait(m, id, id * kNsPerSec);
    Owner owner;
    owner.tgid = static_cast<uint32_t>(1000 + id);
    owner.comm = name;
    m.SetOwner(id, owner);
    ++id;
  }
  const nlohmann::json json = Query(m, "", 100 * kNsPerSec);
  ASSERT_EQ(json["sockets"].size(), std::size(names));
  for (size_t i = 0; i < std::size(names); ++i) {
    const nlohmann::json& s = json["sockets"][i];
    EXPECT_EQ(s["pid"], 1001 + i);
    const std::string comm = s["comm"];
    if (i < 3 || i == 6) {
      EXPECT_EQ(comm, names[i]);  // valid UTF-8 comes back as it was
    } else {
      EXPECT_NE(comm.find("\xef\xbf\xbd"), std::string::npos) << i;  // U+FFFD
    }
  }
}

}  // namespace
}  // namespace tcpstated
