// Unit tests of tcpstated::Detectors and BuildDetectorMetrics: CLOSE_WAIT
// grouping and leaks, SYN floods per listener (half-open ratio, SYN-ACK
// retransmit rate, SYN cookies under pressure), ephemeral port exhaustion per
// destination, TIME_WAIT buckets per namespace, series bounds with the
// "other" fold, start/clear lines, counter resets and the exposition.

#include "tcpstated/detectors.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tcpstated/event.h"
#include "tcpstated/kernel_settings.h"
#include "tcpstated/tcp_state.h"

namespace tcpstated {
namespace {

using Labels = std::map<std::string, std::string>;

constexpr uint32_t kHost = 4026531840u;
constexpr uint32_t kOtherNs = 4026532001u;

DetectorConfig Config(size_t max_series = 50) {
  DetectorConfig c;
  c.max_series_per_metric = max_series;
  return c;
}

CloseWaitSocket Cw(std::string comm, std::string unit, Role role, uint16_t port,
                   double age, uint32_t netns = kHost) {
  CloseWaitSocket s;
  s.netns = netns;
  s.comm = std::move(comm);
  s.unit = std::move(unit);
  s.role = role;
  s.port = port;
  s.age_seconds = age;
  return s;
}

ListenerInput Listener(uint16_t port, uint32_t half_open, uint32_t queue,
                       uint32_t limit, uint64_t retrans = 0,
                       uint32_t netns = kHost) {
  ListenerInput l;
  l.netns = netns;
  l.port = port;
  l.half_open = half_open;
  l.accept_queue = queue;
  l.accept_limit = limit;
  l.synack_retransmits_total = retrans;
  return l;
}

// A namespace whose ephemeral range holds `ports` ports.
NetnsInput Netns(uint32_t netns, std::string name, uint32_t ports = 1000) {
  NetnsInput n;
  n.netns = netns;
  n.name = std::move(name);
  n.have_settings = true;
  n.settings.port_range_lo = 32768;
  n.settings.port_range_hi = 32768 + ports - 1;
  n.settings.max_tw_buckets = 10000;
  return n;
}

Address V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  Address x{};
  x[0] = a;
  x[1] = b;
  x[2] = c;
  x[3] = d;
  return x;
}

DestinationInput Dest(Address daddr, uint16_t dport, uint64_t used,
                      uint32_t netns = kHost) {
  DestinationInput d;
  d.netns = netns;
  d.saddr = V4(10, 0, 0, 1);
  d.daddr = daddr;
  d.dport = dport;
  d.ports_used = used;
  return d;
}

const Series* Find(const std::vector<Series>& series, const Labels& labels) {
  for (const auto& s : series) {
    if (s.labels == labels) return &s;
  }
  return nullptr;
}

double Value(const std::vector<Series>& series, const Labels& labels) {
  const Series* s = Find(series, labels);
  return s == nullptr ? -1 : s->value;
}

double Sum(const std::vector<Series>& series) {
  double total = 0;
  for (const auto& s : series) total += s.value;
  return total;
}

size_t CountContaining(const std::vector<std::string>& lines,
                       const std::string& needle) {
  return static_cast<size_t>(
      std::count_if(lines.begin(), lines.end(), [&needle](const auto& l) {
        return l.find(needle) != std::string::npos;
      }));
}

Labels CwLabels(const std::string& comm, const std::string& unit,
                const std::string& role, uint16_t port,
                uint32_t netns = kHost) {
  return {{"netns", std::to_string(netns)},
          {"comm", comm},
          {"unit", unit},
          {"role", role},
          {"port", std::to_string(port)}};
}

Labels LnLabels(uint16_t port, uint32_t netns = kHost) {
  return {{"netns", std::to_string(netns)}, {"port", std::to_string(port)}};
}

const Labels kCwOther = {{"netns", "other"},
                         {"comm", "other"},
                         {"unit", "other"},
                         {"role", "other"},
                         {"port", "other"}};
const Labels kLnOther = {{"netns", "other"}, {"port", "other"}};
const Labels kDestOther = {{"netns", "other"},
                           {"saddr", "other"},
                           {"daddr", "other"},
                           {"dport", "other"}};

// ---- CLOSE_WAIT --------------------------------------------------------

TEST(CloseWait, GroupsByNamespaceOwnerRoleAndPort) {
  Detectors d(Config());
  DetectorInputs in;
  in.close_wait = {
      Cw("java", "app.service", Role::kServer, 8080, 10),
      Cw("java", "app.service", Role::kServer, 8080, 90),
      Cw("java", "app.service", Role::kServer, 8080, 30),
      Cw("java", "app.service", Role::kClient, 5432, 5),
      Cw("java", "app.service", Role::kServer, 8080, 1, kOtherNs),
  };
  auto r = d.Evaluate(in, 100);
  ASSERT_EQ(r.close_wait_sockets.size(), 3u);
  auto server = CwLabels("java", "app.service", "server", 8080);
  EXPECT_EQ(Value(r.close_wait_sockets, server), 3);
  EXPECT_EQ(Value(r.close_wait_leaked_sockets, server), 1);
  EXPECT_EQ(Value(r.close_wait_oldest_seconds, server), 90);
  auto client = CwLabels("java", "app.service", "client", 5432);
  EXPECT_EQ(Value(r.close_wait_sockets, client), 1);
  EXPECT_EQ(Value(r.close_wait_leaked_sockets, client), 0);
  EXPECT_EQ(Value(r.close_wait_oldest_seconds, client), 5);
  EXPECT_EQ(Value(r.close_wait_sockets,
                  CwLabels("java", "app.service", "server", 8080, kOtherNs)),
            1);
}

TEST(CloseWait, LeakThresholdIsStrictlyLongerThan) {
  DetectorConfig c = Config();
  c.close_wait_leak_after_seconds = 60;
  Detectors d(c);
  DetectorInputs in;
  in.close_wait = {Cw("a", "", Role::kServer, 80, 60.0)};
  auto r = d.Evaluate(in, 1);
  EXPECT_EQ(Sum(r.close_wait_leaked_sockets), 0);
  EXPECT_TRUE(r.started.empty());
  in.close_wait = {Cw("a", "", Role::kServer, 80, 60.001)};
  r = d.Evaluate(in, 2);
  EXPECT_EQ(Sum(r.close_wait_leaked_sockets), 1);
  EXPECT_EQ(CountContaining(r.started, "CLOSE_WAIT leak started"), 1u);
}

TEST(CloseWait, FoldsBeyondMaxSeriesIntoOneOtherSeries) {
  Detectors d(Config(50));
  DetectorInputs in;
  uint64_t total = 0, leaked = 0;
  for (int port = 1; port <= 120; ++port) {
    // Ports 1..50 have more sockets than the rest, so they are kept.
    int n = port <= 50 ? 3 : 1;
    for (int i = 0; i < n; ++i) {
      double age = port == 120 ? 500 : 70.0 * i;
      in.close_wait.push_back(Cw("svc", "svc.service", Role::kServer,
                                 static_cast<uint16_t>(port), age));
      ++total;
      if (age > 60) ++leaked;
    }
  }
  auto r = d.Evaluate(in, 1);
  ASSERT_EQ(r.close_wait_sockets.size(), 51u);
  ASSERT_EQ(r.close_wait_leaked_sockets.size(), 51u);
  ASSERT_EQ(r.close_wait_oldest_seconds.size(), 51u);
  EXPECT_EQ(Sum(r.close_wait_sockets), static_cast<double>(total));
  EXPECT_EQ(Sum(r.close_wait_leaked_sockets), static_cast<double>(leaked));
  EXPECT_EQ(Value(r.close_wait_sockets, kCwOther), 70);
  EXPECT_EQ(Value(r.close_wait_leaked_sockets, kCwOther), 1);
  EXPECT_EQ(Value(r.close_wait_oldest_seconds, kCwOther), 500);
  // The "other" series comes last; the kept ones are the 50 largest.
  EXPECT_EQ(r.close_wait_sockets.back().labels, kCwOther);
  for (int port = 1; port <= 50; ++port) {
    EXPECT_EQ(
        Value(r.close_wait_sockets, CwLabels("svc", "svc.service", "server",
                                             static_cast<uint16_t>(port))),
        3);
  }
}

TEST(CloseWait, NoOtherSeriesWhenWithinBound) {
  Detectors d(Config(5));
  DetectorInputs in;
  for (uint16_t port = 1; port <= 5; ++port) {
    in.close_wait.push_back(Cw("a", "u", Role::kClient, port, 1));
  }
  auto r = d.Evaluate(in, 1);
  EXPECT_EQ(r.close_wait_sockets.size(), 5u);
  EXPECT_EQ(Find(r.close_wait_sockets, kCwOther), nullptr);
}

TEST(CloseWait, TiesBrokenByOldestAgeThenLabels) {
  Detectors d(Config(2));
  DetectorInputs in;
  in.close_wait = {
      Cw("b", "", Role::kServer, 1, 10),  // same count, older: kept
      Cw("a", "", Role::kServer, 2, 5),   // same count and age: label order
      Cw("c", "", Role::kServer, 3, 5),
  };
  auto r = d.Evaluate(in, 1);
  ASSERT_EQ(r.close_wait_sockets.size(), 3u);
  EXPECT_EQ(r.close_wait_sockets[0].labels, CwLabels("a", "", "server", 2));
  EXPECT_EQ(r.close_wait_sockets[1].labels, CwLabels("b", "", "server", 1));
  EXPECT_EQ(r.close_wait_sockets[2].labels, kCwOther);
  EXPECT_EQ(r.close_wait_sockets[2].value, 1);
}

TEST(CloseWait, ThreeMetricsShareTheKeptSet) {
  Detectors d(Config(3));
  DetectorInputs in;
  for (uint16_t port = 1; port <= 10; ++port) {
    for (int i = 0; i < port; ++i) {
      in.close_wait.push_back(Cw("x", "y", Role::kServer, port, 100.0 - port));
    }
  }
  auto r = d.Evaluate(in, 1);
  ASSERT_EQ(r.close_wait_sockets.size(), 4u);
  for (size_t i = 0; i < r.close_wait_sockets.size(); ++i) {
    EXPECT_EQ(r.close_wait_sockets[i].labels,
              r.close_wait_leaked_sockets[i].labels);
    EXPECT_EQ(r.close_wait_sockets[i].labels,
              r.close_wait_oldest_seconds[i].labels);
  }
  EXPECT_EQ(Value(r.close_wait_sockets, CwLabels("x", "y", "server", 10)), 10);
  EXPECT_EQ(Value(r.close_wait_oldest_seconds, kCwOther), 99);
}

TEST(CloseWait, LeakStartedAndClearedLinesAppearOnce) {
  Detectors d(Config());
  DetectorInputs leaking;
  for (int i = 0; i < 5; ++i) {
    leaking.close_wait.push_back(
        Cw("nginx", "nginx.service", Role::kServer, 443, 120));
  }
  leaking.close_wait.push_back(Cw("curl", "", Role::kClient, 80, 300));
  leaking.close_wait.push_back(Cw("young", "", Role::kClient, 81, 1));
  auto r = d.Evaluate(leaking, 1);
  ASSERT_EQ(r.started.size(), 1u);
  EXPECT_NE(r.started[0].find("CLOSE_WAIT leak started: 6 leaked sockets"),
            std::string::npos)
      << r.started[0];
  EXPECT_NE(r.started[0].find("comm=nginx unit=nginx.service port=443 (5)"),
            std::string::npos)
      << r.started[0];
  // The largest group is named first; unknown units show as "?".
  EXPECT_LT(r.started[0].find("nginx"), r.started[0].find("curl"));
  EXPECT_NE(r.started[0].find("comm=curl unit=? port=80 (1)"),
            std::string::npos);
  EXPECT_EQ(r.started[0].find("young"), std::string::npos);

  r = d.Evaluate(leaking, 2);
  EXPECT_TRUE(r.started.empty());
  EXPECT_TRUE(r.cleared.empty());

  DetectorInputs healthy;
  healthy.close_wait.push_back(Cw("young", "", Role::kClient, 81, 1));
  r = d.Evaluate(healthy, 3);
  EXPECT_TRUE(r.started.empty());
  ASSERT_EQ(r.cleared.size(), 1u);
  EXPECT_NE(r.cleared[0].find("CLOSE_WAIT leak cleared"), std::string::npos);
  r = d.Evaluate(healthy, 4);
  EXPECT_TRUE(r.cleared.empty());
}

TEST(CloseWait, LabelValuesAreCleanedBeforeGrouping) {
  Detectors d(Config());
  DetectorInputs in;
  // Out-of-range roles label as "unknown" and so group with kUnknown.
  in.close_wait = {Cw("a", "", static_cast<Role>(77), 1, 1),
                   Cw("a", "", Role::kUnknown, 1, 1),
                   // Invalid UTF-8 and control bytes become '?'.
                   Cw("b\xff", "", Role::kClient, 2, 1),
                   Cw("b\n", "", Role::kClient, 2, 1),
                   Cw("caf\xc3\xa9", "", Role::kClient, 3, 1),
                   // Overlong "/" (C0 AF) and a UTF-16 surrogate half.
                   Cw("\xc0\xaf", "\xed\xa0\x80", Role::kClient, 4, 1)};
  auto r = d.Evaluate(in, 1);
  ASSERT_EQ(r.close_wait_sockets.size(), 4u);
  EXPECT_EQ(Value(r.close_wait_sockets, CwLabels("a", "", "unknown", 1)), 2);
  EXPECT_EQ(Value(r.close_wait_sockets, CwLabels("??", "???", "client", 4)), 1);
  EXPECT_EQ(Value(r.close_wait_sockets, CwLabels("b?", "", "client", 2)), 2);
  EXPECT_EQ(
      Value(r.close_wait_sockets, CwLabels("caf\xc3\xa9", "", "client", 3)), 1);
}

TEST(CloseWait, NegativeOrNanAgesCountAsZero) {
  Detectors d(Config());
  DetectorInputs in;
  in.close_wait = {
      Cw("a", "", Role::kServer, 1, -5),
      Cw("a", "", Role::kServer, 1, std::numeric_limits<double>::quiet_NaN())};
  auto r = d.Evaluate(in, 1);
  auto labels = CwLabels("a", "", "server", 1);
  EXPECT_EQ(Value(r.close_wait_sockets, labels), 2);
  EXPECT_EQ(Value(r.close_wait_leaked_sockets, labels), 0);
  EXPECT_EQ(Value(r.close_wait_oldest_seconds, labels), 0);
}

// ---- SYN floods --------------------------------------------------------

TEST(SynFlood, HalfOpenRatioBoundary) {
  Detectors d(Config());
  DetectorInputs in;
  in.listeners = {Listener(80, 512, 0, 1024), Listener(81, 511, 0, 1024),
                  // 0.55 * 100 rounds above 55 in floating point; 55/100
                  // must still reach a 0.55 ratio, 54/100 not.
                  Listener(82, 55, 0, 100), Listener(83, 54, 0, 100)};
  auto r = d.Evaluate(in, 1);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(80)), 1);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(81)), 0);
  EXPECT_EQ(Value(r.listen_syn_recv_sockets, LnLabels(80)), 512);
  EXPECT_EQ(Value(r.listen_accept_queue_limit, LnLabels(80)), 1024);

  DetectorConfig c = Config();
  c.syn_flood_half_open_ratio = 0.55;
  Detectors d2(c);
  r = d2.Evaluate(in, 1);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(82)), 1);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(83)), 0);
}

TEST(SynFlood, FullAcceptQueueAloneIsNotAFlood) {
  // A slow application fills its accept queue; without half-open pressure,
  // retransmits or cookies that is ListenOverflows, not a SYN flood.
  Detectors d(Config());
  DetectorInputs in;
  NetnsInput ns = Netns(kHost, "host");
  ns.have_counters = true;
  in.namespaces = {ns};
  in.listeners = {Listener(80, 0, 128, 128)};
  d.Evaluate(in, 1);
  in.namespaces[0].counters.ListenOverflows = 1000;
  auto r = d.Evaluate(in, 2);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(80)), 0);
  EXPECT_EQ(Value(r.listen_accept_queue_length, LnLabels(80)), 128);
}

TEST(SynFlood, NoRatioVerdictWithoutLimitOrHalfOpen) {
  DetectorConfig c = Config();
  c.syn_flood_half_open_ratio = 0;  // anything >= 0 would match
  Detectors d(c);
  DetectorInputs in;
  in.listeners = {Listener(80, 100, 0, 0), Listener(81, 0, 0, 128)};
  auto r = d.Evaluate(in, 1);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(80)), 0);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(81)), 0);
}

TEST(SynFlood, RetransmitRateNeedsTwoEvaluations) {
  Detectors d(Config());  // 100/s
  DetectorInputs in;
  in.listeners = {Listener(443, 1, 0, 1024, 1000000)};
  auto r = d.Evaluate(in, 10);
  // First evaluation: no baseline, rate 0 whatever the total.
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(443)), 0);
  EXPECT_EQ(Value(r.synack_retransmits_total, LnLabels(443)), 1000000);

  in.listeners = {Listener(443, 1, 0, 1024, 1000500)};  // 500 in 5 s: 100/s
  r = d.Evaluate(in, 15);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(443)), 0);

  in.listeners = {Listener(443, 1, 0, 1024, 1001505)};  // 1005 in 5 s: 201/s
  r = d.Evaluate(in, 20);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(443)), 1);
  ASSERT_EQ(r.started.size(), 1u);
  EXPECT_NE(r.started[0].find("201.0/s"), std::string::npos) << r.started[0];
  EXPECT_NE(r.started[0].find("port=443"), std::string::npos);

  in.listeners = {Listener(443, 1, 0, 1024, 1001605)};  // 20/s
  r = d.Evaluate(in, 25);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(443)), 0);
  EXPECT_EQ(CountContaining(r.cleared, "SYN flood cleared"), 1u);
}

TEST(SynFlood, RetransmitCounterDecreaseResetsBaseline) {
  Detectors d(Config());
  DetectorInputs in;
  in.listeners = {Listener(443, 0, 0, 128, 5000)};
  d.Evaluate(in, 0);
  in.listeners = {Listener(443, 0, 0, 128, 10)};  // listener recreated
  auto r = d.Evaluate(in, 1);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(443)), 0);
  EXPECT_TRUE(r.started.empty());
  in.listeners = {Listener(443, 0, 0, 128, 110)};  // 100 in 1 s: not above
  r = d.Evaluate(in, 2);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(443)), 0);
  in.listeners = {Listener(443, 0, 0, 128, 311)};  // 201 in 1 s
  r = d.Evaluate(in, 3);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(443)), 1);
}

TEST(SynFlood, ClockThatDoesNotAdvanceGivesNoRate) {
  Detectors d(Config());
  DetectorInputs in;
  in.listeners = {Listener(443, 0, 0, 128, 0)};
  d.Evaluate(in, 5);
  in.listeners = {Listener(443, 0, 0, 128, 100000)};
  auto r = d.Evaluate(in, 5);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(443)), 0);
  r = d.Evaluate(in, std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(443)), 0);
}

DetectorInputs CookieRound(uint64_t cookies_sent, ListenerInput listener) {
  DetectorInputs in;
  NetnsInput ns = Netns(kHost, "host");
  ns.have_counters = true;
  ns.counters.SyncookiesSent = cookies_sent;
  in.namespaces = {ns};
  in.listeners = {listener};
  return in;
}

TEST(SynFlood, CookiesAloneDoNotFlag) {
  Detectors d(Config());
  d.Evaluate(CookieRound(100, Listener(80, 0, 3, 128)), 1);
  auto r = d.Evaluate(CookieRound(5000, Listener(80, 0, 3, 128)), 2);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(80)), 0);
  EXPECT_TRUE(r.started.empty());
}

TEST(SynFlood, CookiesFlagAListenerWithHalfOpenRequests) {
  Detectors d(Config());
  d.Evaluate(CookieRound(100, Listener(80, 2, 0, 128)), 1);
  auto r = d.Evaluate(CookieRound(101, Listener(80, 2, 0, 128)), 2);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(80)), 1);
  ASSERT_EQ(r.started.size(), 1u);
  EXPECT_NE(r.started[0].find("SYN cookies"), std::string::npos);
  // Cookies stopped: the flood clears even though requests remain.
  r = d.Evaluate(CookieRound(101, Listener(80, 2, 0, 128)), 3);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(80)), 0);
  EXPECT_EQ(r.cleared.size(), 1u);
}

TEST(SynFlood, CookiesFlagAListenerWithAFullAcceptQueue) {
  Detectors d(Config());
  DetectorInputs in = CookieRound(0, Listener(80, 0, 128, 128));
  in.namespaces[0].counters.TCPReqQFullDoCookies = 10;
  d.Evaluate(in, 1);
  in.namespaces[0].counters.TCPReqQFullDoCookies = 11;
  auto r = d.Evaluate(in, 2);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(80)), 1);
}

TEST(SynFlood, CookieCountersFirstRoundAndResetGiveNoSignal) {
  Detectors d(Config());
  // First round: a large total is history, not a flood.
  auto r = d.Evaluate(CookieRound(1000000, Listener(80, 5, 0, 128)), 1);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(80)), 0);
  // Namespace recreated: counters restart low.
  r = d.Evaluate(CookieRound(3, Listener(80, 5, 0, 128)), 2);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(80)), 0);
  r = d.Evaluate(CookieRound(4, Listener(80, 5, 0, 128)), 3);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(80)), 1);
  // Recreated again: SyncookiesSent restarts while TCPReqQFullDoCookies,
  // 0 before, now reads 1. Any decrease means a new baseline, no verdict.
  DetectorInputs in = CookieRound(1, Listener(80, 5, 0, 128));
  in.namespaces[0].counters.TCPReqQFullDoCookies = 1;
  r = d.Evaluate(in, 4);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(80)), 0);
}

TEST(SynFlood, StartAndClearLinesExactlyOnceAndWhenListenerGoes) {
  Detectors d(Config());
  DetectorInputs flooded;
  flooded.listeners = {Listener(80, 900, 0, 1024), Listener(81, 0, 0, 1024)};
  auto r = d.Evaluate(flooded, 1);
  ASSERT_EQ(r.started.size(), 1u);
  EXPECT_EQ(CountContaining(r.started, "SYN flood started"), 1u);
  EXPECT_NE(r.started[0].find("900 half-open (limit 1024)"), std::string::npos)
      << r.started[0];
  for (double t = 2; t < 5; ++t) {
    r = d.Evaluate(flooded, t);
    EXPECT_TRUE(r.started.empty());
    EXPECT_TRUE(r.cleared.empty());
  }
  DetectorInputs gone;
  gone.listeners = {Listener(81, 0, 0, 1024)};
  r = d.Evaluate(gone, 5);
  ASSERT_EQ(r.cleared.size(), 1u);
  EXPECT_NE(r.cleared[0].find("port=80"), std::string::npos);
  EXPECT_NE(r.cleared[0].find("gone"), std::string::npos);
  r = d.Evaluate(gone, 6);
  EXPECT_TRUE(r.cleared.empty());
}

TEST(SynFlood, ListenersFoldIntoOtherWithSums) {
  Detectors d(Config(50));
  DetectorInputs in;
  uint64_t half_open = 0, queue = 0, limit = 0, retrans = 0;
  for (uint16_t port = 1; port <= 60; ++port) {
    // Ports 51..60 have the fewest half-open requests; port 55 is flooded.
    uint32_t h = port <= 50 ? 1000 - port : (port == 55 ? 9 : 1);
    uint32_t l = port == 55 ? 10 : 4096;
    in.listeners.push_back(Listener(port, h, 2, l, port));
    half_open += h;
    queue += 2;
    limit += l;
    retrans += port;
  }
  auto r = d.Evaluate(in, 1);
  for (const auto* metric :
       {&r.listen_syn_recv_sockets, &r.listen_accept_queue_length,
        &r.listen_accept_queue_limit, &r.synack_retransmits_total,
        &r.syn_flood_active}) {
    ASSERT_EQ(metric->size(), 51u);
    EXPECT_EQ(metric->back().labels, kLnOther);
  }
  EXPECT_EQ(Sum(r.listen_syn_recv_sockets), static_cast<double>(half_open));
  EXPECT_EQ(Sum(r.listen_accept_queue_length), static_cast<double>(queue));
  EXPECT_EQ(Sum(r.listen_accept_queue_limit), static_cast<double>(limit));
  EXPECT_EQ(Sum(r.synack_retransmits_total), static_cast<double>(retrans));
  EXPECT_EQ(Value(r.syn_flood_active, kLnOther), 1);
  EXPECT_EQ(Value(r.listen_syn_recv_sockets, LnLabels(50)), 950);
  // The flooded listener is folded but still reported by its start line.
  EXPECT_EQ(CountContaining(r.started, "port=55"), 1u);
}

TEST(SynFlood, SocketsSharingAPortMakeOneSeriesJudgedPerSocket) {
  Detectors d(Config());
  DetectorInputs in;
  // IPv4 and IPv6 listeners on port 80: 100/128 on one is a flood even if
  // the sum (100/256) is not.
  in.listeners = {Listener(80, 100, 1, 128, 7), Listener(80, 0, 2, 128, 3)};
  auto r = d.Evaluate(in, 1);
  ASSERT_EQ(r.listen_syn_recv_sockets.size(), 1u);
  EXPECT_EQ(Value(r.listen_syn_recv_sockets, LnLabels(80)), 100);
  EXPECT_EQ(Value(r.listen_accept_queue_length, LnLabels(80)), 3);
  EXPECT_EQ(Value(r.listen_accept_queue_limit, LnLabels(80)), 256);
  EXPECT_EQ(Value(r.synack_retransmits_total, LnLabels(80)), 10);
  EXPECT_EQ(Value(r.syn_flood_active, LnLabels(80)), 1);
}

// ---- Namespaces and TIME_WAIT buckets -----------------------------------

TEST(Namespaces, SeriesFollowCountersAndSettings) {
  Detectors d(Config());
  DetectorInputs in;
  NetnsInput counters_only;
  counters_only.netns = kOtherNs;
  counters_only.name = "blue";
  counters_only.have_counters = true;
  counters_only.counters.SyncookiesSent = 1;
  counters_only.counters.ListenOverflows = 2;
  counters_only.counters.ListenDrops = 3;
  counters_only.counters.TCPReqQFullDrop = 4;
  counters_only.counters.TCPTimeWaitOverflow = 5;
  NetnsInput settings_only = Netns(kHost, "host", 28232);
  settings_only.settings.max_tw_buckets = 262144;
  in.namespaces = {counters_only, settings_only};
  auto r = d.Evaluate(in, 1);
  Labels other = {{"netns", std::to_string(kOtherNs)}};
  Labels host = {{"netns", std::to_string(kHost)}};
  EXPECT_EQ(r.syncookies_sent_total.size(), 1u);
  EXPECT_EQ(Value(r.syncookies_sent_total, other), 1);
  EXPECT_EQ(Value(r.listen_overflows_total, other), 2);
  EXPECT_EQ(Value(r.listen_drops_total, other), 3);
  EXPECT_EQ(Value(r.syn_queue_full_drops_total, other), 4);
  EXPECT_EQ(Value(r.time_wait_overflows_total, other), 5);
  EXPECT_EQ(r.ephemeral_ports_available.size(), 1u);
  EXPECT_EQ(Value(r.ephemeral_ports_available, host), 28232);
  EXPECT_EQ(Value(r.time_wait_limit, host), 262144);
  ASSERT_EQ(r.netns_info.size(), 2u);
  // Sorted by inode: the host first.
  EXPECT_EQ(r.netns_info[0].labels,
            (Labels{{"netns", std::to_string(kHost)}, {"name", "host"}}));
  EXPECT_EQ(r.netns_info[1].labels,
            (Labels{{"netns", std::to_string(kOtherNs)}, {"name", "blue"}}));
  EXPECT_EQ(Sum(r.netns_info), 2);
}

TEST(Namespaces, DuplicateInodeFirstEntryWins) {
  Detectors d(Config());
  DetectorInputs in;
  in.namespaces = {Netns(kHost, "host"), Netns(kHost, "again")};
  auto r = d.Evaluate(in, 1);
  ASSERT_EQ(r.netns_info.size(), 1u);
  EXPECT_EQ(r.netns_info[0].labels.at("name"), "host");
}

TEST(Namespaces, CappedAtTenTimesMaxSeries) {
  Detectors d(Config(1));
  DetectorInputs in;
  for (uint32_t i = 0; i < 15; ++i) {
    NetnsInput ns = Netns(kHost + i, "ns" + std::to_string(i));
    ns.have_counters = true;
    in.namespaces.push_back(ns);
  }
  auto r = d.Evaluate(in, 1);
  EXPECT_EQ(r.netns_info.size(), 10u);
  EXPECT_EQ(r.syncookies_sent_total.size(), 10u);
  EXPECT_EQ(r.time_wait_limit.size(), 10u);
  EXPECT_EQ(r.netns_info[0].labels.at("netns"), std::to_string(kHost));
}

TEST(TimeWaitBuckets, StartAndClearAtTheRatio) {
  Detectors d(Config());  // 0.8
  DetectorInputs in;
  in.namespaces = {Netns(kHost, "host")};  // max_tw_buckets 10000
  in.namespaces[0].timewait_sockets = 7999;
  auto r = d.Evaluate(in, 1);
  EXPECT_TRUE(r.started.empty());
  in.namespaces[0].timewait_sockets = 8000;
  r = d.Evaluate(in, 2);
  ASSERT_EQ(r.started.size(), 1u);
  EXPECT_NE(r.started[0].find("TIME_WAIT bucket"), std::string::npos);
  EXPECT_NE(r.started[0].find("8000"), std::string::npos);
  EXPECT_NE(r.started[0].find("(host)"), std::string::npos);
  r = d.Evaluate(in, 3);
  EXPECT_TRUE(r.started.empty());
  in.namespaces[0].timewait_sockets = 100;
  r = d.Evaluate(in, 4);
  EXPECT_EQ(CountContaining(r.cleared, "TIME_WAIT bucket"), 1u);
  r = d.Evaluate(in, 5);
  EXPECT_TRUE(r.cleared.empty());

  // Without settings or with a zero limit there is no verdict.
  in.namespaces[0].timewait_sockets = 100000;
  in.namespaces[0].settings.max_tw_buckets = 0;
  r = d.Evaluate(in, 6);
  EXPECT_TRUE(r.started.empty());
}

TEST(TimeWaitBuckets, NamespaceGoneClears) {
  Detectors d(Config());
  DetectorInputs in;
  in.namespaces = {Netns(kOtherNs, "blue")};
  in.namespaces[0].timewait_sockets = 9000;
  auto r = d.Evaluate(in, 1);
  EXPECT_EQ(r.started.size(), 1u);
  r = d.Evaluate(DetectorInputs{}, 2);
  ASSERT_EQ(r.cleared.size(), 1u);
  EXPECT_NE(r.cleared[0].find("gone"), std::string::npos);
}

// ---- Ephemeral port exhaustion ------------------------------------------

TEST(PortExhaustion, RatioBoundary) {
  Detectors d(Config());  // 0.8
  DetectorInputs in;
  in.namespaces = {Netns(kHost, "host", 1000)};
  in.destinations = {Dest(V4(192, 0, 2, 1), 443, 799),
                     Dest(V4(192, 0, 2, 2), 443, 800)};
  auto r = d.Evaluate(in, 1);
  Labels a = {{"netns", std::to_string(kHost)},
              {"saddr", "10.0.0.1"},
              {"daddr", "192.0.2.1"},
              {"dport", "443"}};
  Labels b = a;
  b["daddr"] = "192.0.2.2";
  EXPECT_EQ(Value(r.ephemeral_ports_used, a), 799);
  EXPECT_EQ(Value(r.port_exhaustion_active, a), 0);
  EXPECT_EQ(Value(r.ephemeral_ports_used, b), 800);
  EXPECT_EQ(Value(r.port_exhaustion_active, b), 1);
  ASSERT_EQ(r.started.size(), 1u);
  EXPECT_NE(r.started[0].find("10.0.0.1 -> 192.0.2.2:443"), std::string::npos)
      << r.started[0];
  EXPECT_NE(r.started[0].find("800 of 1000"), std::string::npos);

  // 0.56 * 100 rounds above 56 in floating point: 56 of 100 still counts.
  DetectorConfig c = Config();
  c.port_exhaustion_ratio = 0.56;
  Detectors d2(c);
  in.namespaces = {Netns(kHost, "host", 100)};
  in.destinations = {Dest(V4(192, 0, 2, 1), 443, 55),
                     Dest(V4(192, 0, 2, 2), 443, 56)};
  r = d2.Evaluate(in, 1);
  ASSERT_EQ(r.port_exhaustion_active.size(), 2u);
  EXPECT_EQ(r.port_exhaustion_active[0].value, 0);
  EXPECT_EQ(r.port_exhaustion_active[1].value, 1);
}

TEST(PortExhaustion, AvailableIsRangeMinusReservedPorts) {
  Detectors d(Config());
  DetectorInputs in;
  NetnsInput ns = Netns(kHost, "host", 1000);  // 32768..33767
  // 10 reserved inside the range, overlapping ranges counted once, and a
  // range outside the ephemeral one that does not count.
  ns.settings.reserved_ports = {{33000, 33004}, {33003, 33009}, {40000, 40010}};
  in.namespaces = {ns};
  in.destinations = {Dest(V4(192, 0, 2, 1), 80, 791),
                     Dest(V4(192, 0, 2, 2), 80, 792)};  // 0.8 * 990
  auto r = d.Evaluate(in, 1);
  EXPECT_EQ(
      Value(r.ephemeral_ports_available, {{"netns", std::to_string(kHost)}}),
      990);
  ASSERT_EQ(r.port_exhaustion_active.size(), 2u);
  EXPECT_EQ(r.port_exhaustion_active[0].value, 0);
  EXPECT_EQ(r.port_exhaustion_active[1].value, 1);
}

TEST(PortExhaustion, UsedNeverExceedsTheRange) {
  // A port counted twice by the mirror (a timewait socket the kernel ended
  // without an event) must not make a ratio above 1.
  Detectors d(Config());
  DetectorInputs in;
  in.namespaces = {Netns(kHost, "host", 10)};
  in.destinations = {Dest(V4(192, 0, 2, 1), 80, 18)};
  auto r = d.Evaluate(in, 1);
  ASSERT_EQ(r.ephemeral_ports_used.size(), 1u);
  EXPECT_EQ(r.ephemeral_ports_used[0].value, 10);
  ASSERT_EQ(r.port_exhaustion_active.size(), 1u);
  EXPECT_EQ(r.port_exhaustion_active[0].value, 1);
  ASSERT_EQ(r.started.size(), 1u);
  EXPECT_NE(r.started[0].find("10 of 10"), std::string::npos) << r.started[0];
}

TEST(PortExhaustion, NoVerdictWithoutNamespaceSettings) {
  Detectors d(Config());
  DetectorInputs in;
  NetnsInput ns = Netns(kHost, "host", 1000);
  ns.have_settings = false;
  in.namespaces = {ns};
  in.destinations = {Dest(V4(192, 0, 2, 1), 80, 100000),
                     Dest(V4(192, 0, 2, 1), 81, 100000, kOtherNs)};
  auto r = d.Evaluate(in, 1);
  EXPECT_EQ(r.ephemeral_ports_used.size(), 2u);
  EXPECT_EQ(Sum(r.port_exhaustion_active), 0);
  EXPECT_TRUE(r.started.empty());
}

TEST(PortExhaustion, StartAndClearOnceWithIpv6Labels) {
  Detectors d(Config());
  DetectorInputs in;
  in.namespaces = {Netns(kHost, "host", 100)};
  DestinationInput v6;
  v6.netns = kHost;
  v6.ipv6 = true;
  v6.saddr[15] = 1;                     // ::1
  v6.daddr = {0x20, 0x01, 0x0d, 0xb8};  // 2001:db8::
  v6.daddr[15] = 7;
  v6.dport = 8443;
  v6.ports_used = 95;
  in.destinations = {v6};
  auto r = d.Evaluate(in, 1);
  Labels l = {{"netns", std::to_string(kHost)},
              {"saddr", "::1"},
              {"daddr", "2001:db8::7"},
              {"dport", "8443"}};
  EXPECT_EQ(Value(r.port_exhaustion_active, l), 1);
  ASSERT_EQ(r.started.size(), 1u);
  EXPECT_NE(r.started[0].find("::1 -> [2001:db8::7]:8443"), std::string::npos)
      << r.started[0];
  r = d.Evaluate(in, 2);
  EXPECT_TRUE(r.started.empty());
  in.destinations[0].ports_used = 10;
  r = d.Evaluate(in, 3);
  ASSERT_EQ(r.cleared.size(), 1u);
  EXPECT_NE(r.cleared[0].find("10 of 100"), std::string::npos);
  in.destinations[0].ports_used = 99;
  r = d.Evaluate(in, 4);
  EXPECT_EQ(r.started.size(), 1u);
  r = d.Evaluate(DetectorInputs{}, 5);
  EXPECT_EQ(r.cleared.size(), 1u);
}

TEST(PortExhaustion, DestinationsFoldIntoOtherWithSums) {
  Detectors d(Config(50));
  DetectorInputs in;
  // The host has 1000 ports, "blue" only 10: its small destination is folded
  // (fewest ports used) yet exhausted, and "other" reports it.
  in.namespaces = {Netns(kHost, "host", 1000), Netns(kOtherNs, "blue", 10)};
  uint64_t total = 0;
  for (uint8_t i = 1; i <= 120; ++i) {
    uint64_t used = 100u + i;
    in.destinations.push_back(Dest(V4(192, 0, 2, i), 443, used));
    total += used;
  }
  in.destinations.push_back(Dest(V4(192, 0, 2, 1), 443, 9, kOtherNs));
  total += 9;
  auto r = d.Evaluate(in, 1);
  ASSERT_EQ(r.ephemeral_ports_used.size(), 51u);
  ASSERT_EQ(r.port_exhaustion_active.size(), 51u);
  EXPECT_EQ(Sum(r.ephemeral_ports_used), static_cast<double>(total));
  EXPECT_EQ(r.ephemeral_ports_used.back().labels, kDestOther);
  EXPECT_EQ(r.port_exhaustion_active.back().labels, kDestOther);
  EXPECT_EQ(Value(r.port_exhaustion_active, kDestOther), 1);
  // Kept: the 50 largest, none of them exhausted.
  EXPECT_EQ(Sum(r.port_exhaustion_active), 1);
  EXPECT_EQ(r.ephemeral_ports_used.front().value, 171);
  EXPECT_EQ(CountContaining(r.started, "Ephemeral port exhaustion started"),
            1u);
}

TEST(PortExhaustion, Ipv4AddressesIgnoreUnusedBytes) {
  Detectors d(Config());
  DetectorInputs in;
  DestinationInput a = Dest(V4(192, 0, 2, 1), 443, 10);
  DestinationInput b = a;
  b.daddr[10] = 0xff;  // not part of an IPv4 address
  in.destinations = {a, b};
  auto r = d.Evaluate(in, 1);
  ASSERT_EQ(r.ephemeral_ports_used.size(), 1u);
  EXPECT_EQ(r.ephemeral_ports_used[0].value, 20);
}

// ---- Robustness and determinism -----------------------------------------

TEST(Detectors, ExtremeInputsSaturateWithoutThrowing) {
  DetectorConfig c = Config(0);  // everything folded
  Detectors d(c);
  DetectorInputs in;
  const uint64_t kMax = std::numeric_limits<uint64_t>::max();
  in.destinations = {Dest(V4(1, 1, 1, 1), 1, kMax),
                     Dest(V4(1, 1, 1, 2), 1, kMax)};
  in.listeners = {Listener(1, UINT32_MAX, UINT32_MAX, UINT32_MAX, kMax),
                  Listener(2, UINT32_MAX, UINT32_MAX, UINT32_MAX, kMax)};
  in.close_wait = {Cw(std::string(10000, 'x'), "", Role::kServer, 1,
                      std::numeric_limits<double>::infinity())};
  in.namespaces = {Netns(kHost, "host")};
  in.namespaces[0].settings.port_range_lo = 5;
  in.namespaces[0].settings.port_range_hi = 1;  // nothing available
  DetectionReport r;
  EXPECT_NO_THROW(r = d.Evaluate(in, 1));
  EXPECT_NO_THROW(r = d.Evaluate(in, -1e300));
  ASSERT_EQ(r.ephemeral_ports_used.size(), 1u);
  EXPECT_EQ(r.ephemeral_ports_used[0].value, static_cast<double>(kMax));
  EXPECT_EQ(r.port_exhaustion_active[0].value, 0);  // no range: no verdict
  EXPECT_EQ(r.listen_syn_recv_sockets.size(), 1u);
  EXPECT_TRUE(r.netns_info.empty());  // cap is 10 * 0
  EXPECT_EQ(Value(r.close_wait_sockets, kCwOther), 1);
  EXPECT_NO_THROW(BuildDetectorMetrics(r));
}

TEST(Detectors, OutputDoesNotDependOnInputOrder) {
  DetectorInputs in;
  for (uint16_t i = 0; i < 200; ++i) {
    in.close_wait.push_back(Cw("c" + std::to_string(i % 7), "u",
                               static_cast<Role>(i % 4),
                               static_cast<uint16_t>(i % 60), i));
    in.listeners.push_back(Listener(i, i % 13, i % 5, 128, i));
    in.destinations.push_back(
        Dest(V4(192, 0, 2, static_cast<uint8_t>(i)), 443, i % 17));
  }
  in.namespaces = {Netns(kHost, "host"), Netns(kOtherNs, "blue")};
  DetectorInputs reversed = in;
  std::reverse(reversed.close_wait.begin(), reversed.close_wait.end());
  std::reverse(reversed.listeners.begin(), reversed.listeners.end());
  std::reverse(reversed.destinations.begin(), reversed.destinations.end());
  std::reverse(reversed.namespaces.begin(), reversed.namespaces.end());
  Detectors a(Config(20)), b(Config(20));
  auto ra = a.Evaluate(in, 1);
  auto rb = b.Evaluate(reversed, 1);
  auto same = [](const std::vector<Series>& x, const std::vector<Series>& y) {
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (x[i].labels != y[i].labels || x[i].value != y[i].value) return false;
    }
    return true;
  };
  EXPECT_TRUE(same(ra.close_wait_sockets, rb.close_wait_sockets));
  EXPECT_TRUE(same(ra.close_wait_oldest_seconds, rb.close_wait_oldest_seconds));
  EXPECT_TRUE(same(ra.listen_syn_recv_sockets, rb.listen_syn_recv_sockets));
  EXPECT_TRUE(same(ra.ephemeral_ports_used, rb.ephemeral_ports_used));
  EXPECT_TRUE(same(ra.netns_info, rb.netns_info));
  EXPECT_EQ(ra.started, rb.started);
}

TEST(Detectors, MoveKeepsStateAndMovedFromStillWorks) {
  Detectors a(Config());
  DetectorInputs in;
  in.listeners = {Listener(80, 900, 0, 1024)};
  EXPECT_EQ(a.Evaluate(in, 1).started.size(), 1u);
  Detectors b(std::move(a));
  EXPECT_TRUE(b.Evaluate(in, 2).started.empty());  // already active
  EXPECT_EQ(b.Evaluate(DetectorInputs{}, 3).cleared.size(), 1u);
  // The moved-from object starts afresh rather than crashing.
  EXPECT_EQ(a.Evaluate(in, 4).started.size(),
            1u);  // NOLINT(bugprone-use-after-move)
}

// ---- Exposition -----------------------------------------------------------

const std::vector<std::pair<std::string, prometheus::MetricType>> kFamilies = {
    {"tcpstated_close_wait_sockets", prometheus::MetricType::Gauge},
    {"tcpstated_close_wait_leaked_sockets", prometheus::MetricType::Gauge},
    {"tcpstated_close_wait_oldest_seconds", prometheus::MetricType::Gauge},
    {"tcpstated_close_wait_age_lower_bound_sockets",
     prometheus::MetricType::Gauge},
    {"tcpstated_listen_syn_recv_sockets", prometheus::MetricType::Gauge},
    {"tcpstated_listen_accept_queue_length", prometheus::MetricType::Gauge},
    {"tcpstated_listen_accept_queue_limit", prometheus::MetricType::Gauge},
    {"tcpstated_synack_retransmits_total", prometheus::MetricType::Counter},
    {"tcpstated_syn_flood_active", prometheus::MetricType::Gauge},
    {"tcpstated_syncookies_sent_total", prometheus::MetricType::Counter},
    {"tcpstated_listen_overflows_total", prometheus::MetricType::Counter},
    {"tcpstated_listen_drops_total", prometheus::MetricType::Counter},
    {"tcpstated_syn_queue_full_drops_total", prometheus::MetricType::Counter},
    {"tcpstated_time_wait_overflows_total", prometheus::MetricType::Counter},
    {"tcpstated_ephemeral_ports_used", prometheus::MetricType::Gauge},
    {"tcpstated_ephemeral_ports_available", prometheus::MetricType::Gauge},
    {"tcpstated_time_wait_limit", prometheus::MetricType::Gauge},
    {"tcpstated_port_exhaustion_active", prometheus::MetricType::Gauge},
    {"tcpstated_netns_info", prometheus::MetricType::Gauge},
};

TEST(DetectorMetrics, EveryFamilyPresentWithHelpAndType) {
  auto families = BuildDetectorMetrics(DetectionReport{});
  ASSERT_EQ(families.size(), kFamilies.size());
  for (size_t i = 0; i < kFamilies.size(); ++i) {
    const auto& f = families[i];
    EXPECT_EQ(f.name, kFamilies[i].first);
    EXPECT_EQ(f.type, kFamilies[i].second) << f.name;
    EXPECT_GT(f.help.size(), 30u) << f.name;
    EXPECT_EQ(f.help.find('\n'), std::string::npos) << f.name;
    bool total = f.name.size() > 6 &&
                 f.name.compare(f.name.size() - 6, 6, "_total") == 0;
    EXPECT_EQ(total, f.type == prometheus::MetricType::Counter) << f.name;
    EXPECT_TRUE(f.metric.empty());
  }
  // The HELP explains CLOSE_WAIT to an SRE.
  EXPECT_NE(families[0].help.find("close()"), std::string::npos);
}

TEST(DetectorMetrics, LabelSetsBoundedUniqueAndValuesCarried) {
  Detectors d(Config(50));
  DetectorInputs in;
  for (int i = 0; i < 3000; ++i) {
    uint16_t port = static_cast<uint16_t>(i);
    in.close_wait.push_back(
        Cw("p" + std::to_string(i % 200), "u", Role::kClient, port, i));
    in.listeners.push_back(Listener(port, static_cast<uint32_t>(i % 9), 1, 64,
                                    static_cast<uint64_t>(i)));
    Address daddr =
        V4(10, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i & 0xff), 1);
    in.destinations.push_back(Dest(daddr, 443, 1 + i % 50));
  }
  in.namespaces = {Netns(kHost, "host")};
  in.namespaces[0].have_counters = true;
  auto families = BuildDetectorMetrics(d.Evaluate(in, 1));
  ASSERT_EQ(families.size(), kFamilies.size());
  for (const auto& f : families) {
    EXPECT_LE(f.metric.size(), 51u) << f.name;
    std::set<std::vector<std::pair<std::string, std::string>>> seen;
    for (const auto& m : f.metric) {
      std::vector<std::pair<std::string, std::string>> labels;
      for (const auto& l : m.label) labels.emplace_back(l.name, l.value);
      EXPECT_TRUE(seen.insert(labels).second) << f.name << " duplicate";
    }
  }
  const auto& cw = families[0];
  ASSERT_EQ(cw.metric.size(), 51u);
  double total = 0;
  for (const auto& m : cw.metric) total += m.gauge.value;
  EXPECT_EQ(total, 3000);
  const auto& retrans =
      *std::find_if(families.begin(), families.end(), [](const auto& f) {
        return f.name == "tcpstated_synack_retransmits_total";
      });
  ASSERT_FALSE(retrans.metric.empty());
  double retrans_total = 0;
  for (const auto& m : retrans.metric) retrans_total += m.counter.value;
  EXPECT_EQ(retrans_total, 2999.0 * 3000 / 2);
  // The text format serialises it (label escaping, types, HELP).
  std::string text = prometheus::TextSerializer().Serialize(families);
  EXPECT_NE(text.find("# HELP tcpstated_netns_info"), std::string::npos);
  EXPECT_NE(text.find("# TYPE tcpstated_synack_retransmits_total counter"),
            std::string::npos);
  EXPECT_NE(text.find("tcpstated_netns_info{name=\"host\",netns=\"" +
                      std::to_string(kHost) + "\"} 1"),
            std::string::npos);
}

}  // namespace
}  // namespace tcpstated
