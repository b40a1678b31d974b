#include "tcpstated/state_api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "tcpstated/transition_table.h"

namespace tcpstated {
namespace {

using Json = nlohmann::json;

constexpr uint32_t kHost = 4026531840u;
constexpr uint32_t kTest = 4026532999u;

Series S(std::map<std::string, std::string> labels, double value) {
  return Series{std::move(labels), value};
}

StateInputs Sample() {
  StateInputs in;
  StateCounts host{};
  host[StateIndex(TcpState::kEstablished)] = 7;
  host[StateIndex(TcpState::kListen)] = 2;
  StateCounts test{};
  test[StateIndex(TcpState::kCloseWait)] = 3;
  test[StateIndex(TcpState::kListen)] = 1;
  test[StateIndex(TcpState::kTimeWait)] = -1;  // never shown below zero
  in.snapshot.sockets = {{kHost, host}, {kTest, test}};
  in.snapshot.kernel.transitions[StateIndex(TcpState::kEstablished)]
                                [StateIndex(TcpState::kCloseWait)] = 5;
  in.snapshot
      .invalid[StateIndex(TcpState::kSynRecv)][StateIndex(TcpState::kListen)] =
      2;
  in.snapshot.mirror.events[static_cast<size_t>(Source::kStateChange)] = 40;
  in.snapshot.kernel.lost[static_cast<size_t>(Source::kStateChange)] = 3;
  in.snapshot.kernel.missed[static_cast<size_t>(Source::kStateChange)] = 1;
  in.snapshot.mirror.resyncs = 4;
  in.snapshot.mirror.tracked = 13;
  in.snapshot.mirror.limit = 1000;
  in.snapshot.version = "0.1.0";
  in.snapshot.attach = "tp_btf";
  DetectionReport& r = in.report;
  r.netns_info = {S({{"netns", std::to_string(kTest)}, {"name", "blue"}}, 1),
                  S({{"netns", std::to_string(kHost)}, {"name", "host"}}, 1)};
  const std::map<std::string, std::string> owner = {
      {"netns", std::to_string(kTest)},
      {"comm", "leaky"},
      {"unit", "leaky.service"},
      {"role", "server"},
      {"port", "8080"}};
  const std::map<std::string, std::string> quiet = {
      {"netns", std::to_string(kHost)},
      {"comm", "fine"},
      {"unit", ""},
      {"role", "client"},
      {"port", "443"}};
  r.close_wait_sockets = {S(owner, 3), S(quiet, 1)};
  r.close_wait_leaked_sockets = {S(owner, 2), S(quiet, 0)};
  r.close_wait_oldest_seconds = {S(owner, 75.5), S(quiet, 1)};
  const std::map<std::string, std::string> listener = {
      {"netns", std::to_string(kTest)}, {"port", "80"}};
  r.syn_flood_active = {S(listener, 1)};
  r.listen_syn_recv_sockets = {S(listener, 90)};
  r.listen_accept_queue_limit = {S(listener, 128)};
  const std::map<std::string, std::string> dest = {
      {"netns", std::to_string(kTest)},
      {"saddr", "192.0.2.1"},
      {"daddr", "192.0.2.2"},
      {"dport", "5432"}};
  r.port_exhaustion_active = {S(dest, 1)};
  r.ephemeral_ports_used = {S(dest, 25000)};
  r.ephemeral_ports_available = {S({{"netns", std::to_string(kTest)}}, 28232)};
  in.reconciles = 3;
  in.last_reconcile_age_seconds = 12.5;
  in.now_ns = 5'000'000'000;
  in.debug_sockets = true;
  return in;
}

TEST(StateApi, ReportsCountsTransitionsDetectionsAndHealth) {
  const Json j = Json::parse(BuildStateJson(Sample()));
  EXPECT_EQ(j["api_version"], 1);
  EXPECT_EQ(j["now_ms"], 5000);
  EXPECT_EQ(j["debug_sockets"], true);
  EXPECT_EQ(j["tcpstated"]["attach"], "tp_btf");
  EXPECT_EQ(j["tcpstated"]["telemetry_path"], "/metrics");

  ASSERT_EQ(j["namespaces"].size(), 2u);
  EXPECT_EQ(j["namespaces"][0]["name"], "host");  // the host first
  EXPECT_EQ(j["namespaces"][0]["states"]["established"], 7);
  const Json& test = j["namespaces"][1];
  EXPECT_EQ(test["netns"], kTest);
  EXPECT_EQ(test["name"], "blue");
  EXPECT_EQ(test["states"]["close_wait"], 3);
  EXPECT_EQ(test["states"]["time_wait"], 0);
  EXPECT_EQ(test["states"].size(), kReportedStates.size());
  EXPECT_EQ(j["namespaces_omitted"], 0);

  // Every legal transition, taken or not, so a client can grey the others.
  EXPECT_EQ(j["transitions"].size(), LegalTransitions().size());
  bool found = false;
  for (const Json& t : j["transitions"]) {
    if (t["from"] == "established" && t["to"] == "close_wait") {
      EXPECT_EQ(t["count"], 5);
      found = true;
    }
  }
  EXPECT_TRUE(found);
  ASSERT_EQ(j["invalid_transitions"].size(), 1u);
  EXPECT_EQ(j["invalid_transitions"][0]["from"], "syn_recv");
  EXPECT_EQ(j["invalid_transitions"][0]["to"], "listen");
  EXPECT_EQ(j["invalid_transitions"][0]["count"], 2);

  // Only leaked owners, joined with their totals and ages.
  const Json& leaks = j["detections"]["close_wait_leaks"];
  ASSERT_EQ(leaks.size(), 1u);
  EXPECT_EQ(leaks[0]["comm"], "leaky");
  EXPECT_EQ(leaks[0]["unit"], "leaky.service");
  EXPECT_EQ(leaks[0]["role"], "server");
  EXPECT_EQ(leaks[0]["port"], 8080);
  EXPECT_EQ(leaks[0]["netns"], kTest);
  EXPECT_EQ(leaks[0]["leaked"], 2);
  EXPECT_EQ(leaks[0]["sockets"], 3);
  EXPECT_DOUBLE_EQ(leaks[0]["oldest_seconds"].get<double>(), 75.5);
  const Json& floods = j["detections"]["syn_floods"];
  ASSERT_EQ(floods.size(), 1u);
  EXPECT_EQ(floods[0]["port"], 80);
  EXPECT_EQ(floods[0]["half_open"], 90);
  EXPECT_EQ(floods[0]["queue_limit"], 128);
  const Json& ports = j["detections"]["port_exhaustion"];
  ASSERT_EQ(ports.size(), 1u);
  EXPECT_EQ(ports[0]["daddr"], "192.0.2.2");
  EXPECT_EQ(ports[0]["ports_used"], 25000);
  EXPECT_EQ(ports[0]["ports_available"], 28232);

  const Json& h = j["health"];
  EXPECT_EQ(h["events"], 40);
  EXPECT_EQ(h["events_lost"], 3);
  EXPECT_EQ(h["events_missed"], 1);
  EXPECT_EQ(h["resyncs"], 4);
  EXPECT_EQ(h["tracked_sockets"], 13);
  EXPECT_EQ(h["reconciles"], 3);
  EXPECT_DOUBLE_EQ(h["last_reconcile_age_seconds"].get<double>(), 12.5);
}

TEST(StateApi, NoReconcileYetIsNull) {
  StateInputs in = Sample();
  in.last_reconcile_age_seconds = -1;
  EXPECT_TRUE(
      Json::parse(BuildStateJson(in))["health"]["last_reconcile_age_seconds"]
          .is_null());
}

TEST(StateApi, FoldedSeriesKeepTheirOtherLabel) {
  StateInputs in = Sample();
  in.report.close_wait_leaked_sockets.push_back(S({{"netns", "other"},
                                                   {"comm", "other"},
                                                   {"unit", "other"},
                                                   {"role", "other"},
                                                   {"port", "other"}},
                                                  9));
  const Json j = Json::parse(BuildStateJson(in));
  const Json& leaks = j["detections"]["close_wait_leaks"];
  ASSERT_EQ(leaks.size(), 2u);
  EXPECT_EQ(leaks[0]["leaked"], 9);  // largest first
  EXPECT_EQ(leaks[0]["netns"], "other");
  EXPECT_EQ(leaks[0]["port"], "other");
}

// Aggregates and owners only: nothing names a socket's own port or address.
void ExpectNoSocketKeys(const Json& j) {
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      EXPECT_NE(key, "sport");
      EXPECT_NE(key, "id");
      EXPECT_NE(key, "cookie");
      EXPECT_NE(key, "pid");
      ExpectNoSocketKeys(value);
    }
  } else if (j.is_array()) {
    for (const Json& v : j) ExpectNoSocketKeys(v);
  }
}

TEST(StateApi, HoldsNoSocketIdentities) {
  ExpectNoSocketKeys(Json::parse(BuildStateJson(Sample())));
}

TEST(StateApi, AnyLabelBytesGiveValidJson) {
  StateInputs in = Sample();
  in.report.close_wait_leaked_sockets[0].labels["comm"] =
      std::string("\xff\xfe\"\\\n\x01</script>", 15);
  in.report.close_wait_sockets[0].labels["comm"] =
      in.report.close_wait_leaked_sockets[0].labels["comm"];
  in.report.close_wait_oldest_seconds[0].labels["comm"] =
      in.report.close_wait_leaked_sockets[0].labels["comm"];
  in.report.netns_info[0].labels["name"] = "\xc3";  // a cut UTF-8 sequence
  const Json j = Json::parse(BuildStateJson(in));
  EXPECT_EQ(j["detections"]["close_wait_leaks"][0]["sockets"], 3);
  EXPECT_EQ(j["namespaces"][1]["name"], "\xef\xbf\xbd");  // U+FFFD
}

TEST(StateApi, KeepsTheHostAndTheMostPopulatedNamespaces) {
  StateInputs in;
  for (uint32_t i = 0; i < kStateMaxNamespaces + 10; ++i) {
    StateCounts c{};
    c[StateIndex(TcpState::kEstablished)] = i;
    in.snapshot.sockets.emplace_back(1000 + i, c);
  }
  in.snapshot.sockets.emplace_back(kHost, StateCounts{});  // empty, listed
  in.report.netns_info.push_back(
      S({{"netns", std::to_string(kHost)}, {"name", "host"}}, 1));
  const Json j = Json::parse(BuildStateJson(in));
  ASSERT_EQ(j["namespaces"].size(), kStateMaxNamespaces);
  EXPECT_EQ(j["namespaces_omitted"], 11);
  EXPECT_EQ(j["namespaces"][0]["name"], "host");
  EXPECT_EQ(j["namespaces"][1]["states"]["established"],
            kStateMaxNamespaces + 9);
  EXPECT_EQ(j["namespaces"].back()["states"]["established"], 11);
}

// The largest answer the bounds allow: namespaces, rows and labels all at
// their limits, every label byte one that JSON escapes at six bytes.
TEST(StateApi, WorstCaseStaysUnderTheBound) {
  StateInputs in;
  const std::string nasty(1000, '\x01');
  for (uint32_t i = 0; i < 3 * kStateMaxNamespaces; ++i) {
    StateCounts c{};
    for (TcpState s : kReportedStates) c[StateIndex(s)] = INT64_MAX;
    in.snapshot.sockets.emplace_back(1000 + i, c);
    in.report.netns_info.push_back(
        S({{"netns", std::to_string(1000 + i)}, {"name", nasty}}, 1));
  }
  for (auto& row : in.snapshot.kernel.transitions) row.fill(UINT64_MAX);
  for (auto& row : in.snapshot.invalid) row.fill(UINT64_MAX);
  for (int i = 0; i < 10 * static_cast<int>(kStateMaxRows); ++i) {
    std::map<std::string, std::string> l = {
        {"netns", nasty + std::to_string(i)},
        {"comm", nasty},
        {"unit", nasty},
        {"role", nasty},
        {"port", nasty},
        {"saddr", nasty},
        {"daddr", nasty},
        {"dport", nasty}};
    for (auto* v :
         {&in.report.close_wait_leaked_sockets, &in.report.close_wait_sockets,
          &in.report.close_wait_oldest_seconds, &in.report.syn_flood_active,
          &in.report.listen_syn_recv_sockets, &in.report.port_exhaustion_active,
          &in.report.ephemeral_ports_used}) {
      v->push_back(S(l, 1e300));
    }
  }
  in.snapshot.version = nasty;
  in.snapshot.attach = nasty;
  in.telemetry_path = nasty;
  const std::string out = BuildStateJson(in);
  EXPECT_LE(out.size(), kStateJsonMaxBytes);
  const Json j = Json::parse(out);
  EXPECT_EQ(j["namespaces"].size(), kStateMaxNamespaces);
  EXPECT_EQ(j["namespaces_omitted"], 2 * kStateMaxNamespaces);
  EXPECT_EQ(j["detections"]["close_wait_leaks"].size(), kStateMaxRows);
  EXPECT_EQ(j["detections"]["syn_floods"].size(), kStateMaxRows);
  EXPECT_EQ(j["detections"]["port_exhaustion"].size(), kStateMaxRows);
  EXPECT_LE(
      j["detections"]["close_wait_leaks"][0]["comm"].get<std::string>().size(),
      kStateMaxLabelBytes);
}

// Random label bytes and values, as a fuzzer would try: always parseable,
// always within the bound.
TEST(StateApi, RandomInputsParseAndStayBounded) {
  std::mt19937 rng(17);
  auto bytes = [&](size_t max) {
    std::string s(rng() % (max + 1), '\0');
    for (char& c : s) c = static_cast<char>(rng());
    return s;
  };
  for (int round = 0; round < 200; ++round) {
    StateInputs in;
    for (int i = 0, n = static_cast<int>(rng() % 8); i < n; ++i) {
      StateCounts c{};
      for (auto& v : c) v = static_cast<int64_t>(rng()) - (1 << 30);
      in.snapshot.sockets.emplace_back(rng(), c);
      in.report.netns_info.push_back(
          S({{"netns", rng() % 2 ? std::to_string(rng()) : bytes(12)},
             {"name", bytes(300)}},
            1));
    }
    for (int i = 0, n = static_cast<int>(rng() % 80); i < n; ++i) {
      std::map<std::string, std::string> l = {
          {"netns", bytes(12)}, {"comm", bytes(40)}, {"unit", bytes(300)},
          {"role", bytes(8)},   {"port", bytes(6)},  {"saddr", bytes(40)},
          {"daddr", bytes(40)}, {"dport", bytes(6)}};
      const double v = static_cast<double>(rng()) - 1e9;
      in.report.close_wait_leaked_sockets.push_back(S(l, v));
      in.report.syn_flood_active.push_back(S(l, v));
      in.report.port_exhaustion_active.push_back(S(l, v));
    }
    in.last_reconcile_age_seconds = static_cast<double>(rng()) - 1e9;
    const std::string out = BuildStateJson(in);
    ASSERT_LE(out.size(), kStateJsonMaxBytes);
    ASSERT_NO_THROW(Json::parse(out)) << round;
  }
}

}  // namespace
}  // namespace tcpstated
