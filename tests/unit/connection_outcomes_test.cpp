// Connect failures per destination and resets per port, fed through the
// mirror's observer seam exactly as the daemon feeds them.
#include "tcpstated/connection_outcomes.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <map>
#include <string>

#include "mirror_test_events.h"
#include "tcpstated/bounded_book.h"
#include "tcpstated/config.h"

namespace tcpstated {
namespace {

using test::InProcess;
using test::Ip;
using test::kNetns;
using test::kSec;
using test::kT0;
using test::Reset;
using test::Sock;
using test::StateChange;

constexpr uint16_t kEphemeral = 40000;

struct Fixture {
  explicit Fixture(size_t max_series = 50)
      : outcomes(max_series), mirror(1000) {
    mirror.set_observer(&outcomes);
  }
  ConnectionOutcomes outcomes;
  Mirror mirror;
};

Sock Client(uint64_t id, const char* daddr, uint16_t dport,
            uint16_t sport = kEphemeral) {
  Sock s(id, sport, dport);
  s.saddr = Ip(AF_INET, "127.0.0.1");
  s.daddr = Ip(AF_INET, daddr);
  return s;
}

// connect(): CLOSE -> SYN_SENT in the caller's process.
void Connect(Mirror& m, const Sock& s, uint64_t ts) {
  m.Apply(InProcess(StateChange(s, TcpState::kClose, TcpState::kSynSent, ts),
                    100, "client"));
}

void FailConnect(Mirror& m, const Sock& s, uint64_t ts, uint8_t sk_err) {
  Event e = StateChange(s, TcpState::kSynSent, TcpState::kClose, ts);
  e.sock_error = sk_err != 0;
  e.sk_err = sk_err;
  m.Apply(e);
}

const ConnectTally* TallyOf(const ConnectionOutcomes& o, const Sock& s) {
  const ConnectTally* found = nullptr;
  o.connects().book().ForEach(
      [&](const ConnectDestination& d, const ConnectTally& t) {
        if (d.netns == s.netns && d.daddr == s.daddr && d.dport == s.dport) {
          found = &t;
        }
      });
  return found;
}

uint64_t Failures(const ConnectionOutcomes& o, const Sock& s,
                  ConnectFailure reason) {
  const ConnectTally* t = TallyOf(o, s);
  return t == nullptr ? 0 : t->failures[static_cast<size_t>(reason)];
}

TEST(ConnectFailureTest, ReasonFromErrnoThenResetThenPort) {
  EXPECT_EQ(ClassifyConnectFailure(ECONNREFUSED, false, 1),
            ConnectFailure::kRefused);
  EXPECT_EQ(ClassifyConnectFailure(ETIMEDOUT, true, 1),
            ConnectFailure::kTimedOut);
  EXPECT_EQ(ClassifyConnectFailure(EHOSTUNREACH, false, 1),
            ConnectFailure::kUnreachable);
  EXPECT_EQ(ClassifyConnectFailure(ENETUNREACH, false, 1),
            ConnectFailure::kUnreachable);
  EXPECT_EQ(ClassifyConnectFailure(EPROTO, false, 1), ConnectFailure::kError);
  EXPECT_EQ(ClassifyConnectFailure(255, false, 1), ConnectFailure::kError);
  EXPECT_EQ(ClassifyConnectFailure(0, true, 1), ConnectFailure::kRefused);
  EXPECT_EQ(ClassifyConnectFailure(0, false, 0), ConnectFailure::kNoLocalPort);
  EXPECT_EQ(ClassifyConnectFailure(0, false, 1), ConnectFailure::kAborted);
}

TEST(ConnectBookTest, EachFailurePathCountedOnceByReason) {
  Fixture f;
  const Sock a = Client(1, "192.0.2.1", 80);
  Connect(f.mirror, a, kT0);
  f.mirror.Apply(Reset(a, Source::kReceiveReset, TcpState::kSynSent, kT0 + 1));
  FailConnect(f.mirror, a, kT0 + 2, ECONNREFUSED);
  const Sock b = Client(2, "192.0.2.1", 80, kEphemeral + 1);
  Connect(f.mirror, b, kT0);
  FailConnect(f.mirror, b, kT0 + 3 * kSec, ETIMEDOUT);
  const Sock c = Client(3, "192.0.2.1", 80, kEphemeral + 2);
  Connect(f.mirror, c, kT0);
  FailConnect(f.mirror, c, kT0 + 4, 0);  // close() while connecting
  const Sock d = Client(4, "192.0.2.1", 80, kEphemeral + 3);
  Connect(f.mirror, d, kT0);
  FailConnect(f.mirror, d, kT0 + 5, EHOSTUNREACH);
  const Sock e = Client(5, "192.0.2.1", 80, 0);  // no port was free
  Connect(f.mirror, e, kT0);
  FailConnect(f.mirror, e, kT0 + 6, 0);

  EXPECT_EQ(Failures(f.outcomes, a, ConnectFailure::kRefused), 1u);
  EXPECT_EQ(Failures(f.outcomes, a, ConnectFailure::kTimedOut), 1u);
  EXPECT_EQ(Failures(f.outcomes, a, ConnectFailure::kAborted), 1u);
  EXPECT_EQ(Failures(f.outcomes, a, ConnectFailure::kUnreachable), 1u);
  EXPECT_EQ(Failures(f.outcomes, a, ConnectFailure::kNoLocalPort), 1u);
  EXPECT_EQ(TallyOf(f.outcomes, a)->failed(), 5u);
  EXPECT_EQ(TallyOf(f.outcomes, a)->established, 0u);
}

TEST(ConnectBookTest, HandshakeTimeFromSynSentToEstablished) {
  Fixture f;
  const Sock a = Client(1, "192.0.2.7", 443);
  Connect(f.mirror, a, kT0);
  f.mirror.Apply(StateChange(a, TcpState::kSynSent, TcpState::kEstablished,
                             kT0 + 2 * kSec / 1000));  // 2 ms
  const ConnectTally* t = TallyOf(f.outcomes, a);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->established, 1u);
  EXPECT_DOUBLE_EQ(t->latency_sum, 0.002);
  // 0.002 is in the 0.0025 bucket (index 3), not below it.
  EXPECT_EQ(t->buckets[3], 1u);
  EXPECT_EQ(t->failed(), 0u);
}

TEST(ConnectBookTest, NoHandshakeTimeForASocketAdoptedInSynSent) {
  Fixture f;
  const Sock a = Client(1, "192.0.2.7", 443);
  // First seen leaving SYN_SENT: when it entered is unknown.
  f.mirror.Apply(
      StateChange(a, TcpState::kSynSent, TcpState::kEstablished, kT0 + kSec));
  EXPECT_EQ(TallyOf(f.outcomes, a), nullptr);
  // A failure needs no history: the event says everything.
  const Sock b = Client(2, "192.0.2.7", 443, kEphemeral + 1);
  FailConnect(f.mirror, b, kT0 + kSec, ECONNREFUSED);
  EXPECT_EQ(Failures(f.outcomes, b, ConnectFailure::kRefused), 1u);
}

// An accepted connection on listening port 8080 of this namespace.
Sock Accepted(Mirror& m, uint64_t id, uint16_t peer_port) {
  Sock listener(1000, 8080, 0);
  if (m.Find(listener.id) == nullptr) {
    m.Apply(InProcess(
        StateChange(listener, TcpState::kClose, TcpState::kListen, kT0), 200,
        "server"));
  }
  Sock child(id, 8080, peer_port);
  m.Apply(StateChange(child, TcpState::kListen, TcpState::kSynRecv, kT0));
  m.Apply(StateChange(child, TcpState::kSynRecv, TcpState::kEstablished, kT0));
  return child;
}

uint64_t Resets(const ConnectionOutcomes& o, Role role, uint16_t port,
                bool sent, TcpState state) {
  uint64_t n = 0;
  o.resets().book().ForEach([&](const ResetKey& k, const ResetTally& t) {
    if (k.role == role && k.port == port) {
      n += t.counts[ResetTally::Slot(sent, state)];
    }
  });
  return n;
}

TEST(ResetBookTest, ReceivedResetChargedToTheListeningPort) {
  Fixture f;
  Sock child = Accepted(f.mirror, 1, 50000);
  f.mirror.Apply(
      Reset(child, Source::kReceiveReset, TcpState::kEstablished, kT0 + 1));
  Event close =
      StateChange(child, TcpState::kEstablished, TcpState::kClose, kT0 + 2);
  close.sock_error = true;
  close.sk_err = ECONNRESET;
  f.mirror.Apply(close);
  EXPECT_EQ(
      Resets(f.outcomes, Role::kServer, 8080, false, TcpState::kEstablished),
      1u);
  EXPECT_EQ(
      Resets(f.outcomes, Role::kServer, 8080, true, TcpState::kEstablished),
      0u);
}

TEST(ResetBookTest, ResetSentAfterCloseChargedToTheStateItLeft) {
  Fixture f;
  // SO_LINGER 0 / unread data: tcp_disconnect reports CLOSE, then sends.
  const Sock a = Client(7, "192.0.2.9", 5432);
  Connect(f.mirror, a, kT0);
  f.mirror.Apply(
      StateChange(a, TcpState::kSynSent, TcpState::kEstablished, kT0 + 1));
  f.mirror.Apply(InProcess(
      StateChange(a, TcpState::kEstablished, TcpState::kClose, kT0 + 2), 100,
      "client"));
  f.mirror.Apply(Reset(a, Source::kSendReset, TcpState::kClose, kT0 + 3));
  EXPECT_EQ(
      Resets(f.outcomes, Role::kClient, 5432, true, TcpState::kEstablished),
      1u);
  EXPECT_EQ(Resets(f.outcomes, Role::kClient, 5432, true, TcpState::kClose),
            0u);
}

TEST(ResetBookTest, UnknownSocketNamedByAKnownListener) {
  Fixture f;
  Accepted(f.mirror, 1, 50000);    // listener on 8080
  Sock stranger(99, 8080, 50001);  // predates us
  f.mirror.Apply(
      Reset(stranger, Source::kReceiveReset, TcpState::kCloseWait, kT0));
  EXPECT_EQ(
      Resets(f.outcomes, Role::kServer, 8080, false, TcpState::kCloseWait), 1u);
  Sock outbound(98, 40001, 6379);
  f.mirror.Apply(Reset(outbound, Source::kSendReset, TcpState::kFinWait1, kT0));
  EXPECT_EQ(Resets(f.outcomes, Role::kClient, 6379, true, TcpState::kFinWait1),
            1u);
}

TEST(ConnectionOutcomesTest, ADeadNamespaceIsForgotten) {
  Fixture f;
  Sock a = Client(1, "192.0.2.1", 80);
  a.netns_cookie = 7;
  Connect(f.mirror, a, kT0);
  FailConnect(f.mirror, a, kT0 + 1, ECONNREFUSED);
  f.mirror.Apply(Reset(a, Source::kReceiveReset, TcpState::kSynSent, kT0));
  EXPECT_EQ(f.outcomes.connects().book().size(), 1u);
  EXPECT_EQ(f.outcomes.resets().book().size(), 1u);
  // The inode comes back with a new namespace (another cookie).
  Sock b = Client(2, "192.0.2.1", 80);
  b.netns_cookie = 8;
  Connect(f.mirror, b, kT0 + 2);
  EXPECT_EQ(f.outcomes.connects().book().size(), 0u);
  EXPECT_EQ(f.outcomes.resets().book().size(), 0u);
  FailConnect(f.mirror, b, kT0 + 3, ETIMEDOUT);
  EXPECT_EQ(Failures(f.outcomes, b, ConnectFailure::kRefused), 0u);
  EXPECT_EQ(Failures(f.outcomes, b, ConnectFailure::kTimedOut), 1u);
}

struct Tally {
  uint64_t n = 0;
  void Add(const Tally& o) { n += o.n; }
};
struct IntHash {
  size_t operator()(int v) const { return static_cast<size_t>(v); }
};

TEST(BoundedBookTest, FoldsTheLeastRecentHalfKeepingTotalsExact) {
  BoundedBook<int, Tally, IntHash> book(4);
  for (int k = 0; k < 4; ++k) book.At(k, 10 + static_cast<uint64_t>(k)).n += 5;
  book.At(0, 100).n += 1;  // 0 is now the most recent
  book.At(9, 101).n += 7;  // full: the two oldest (1, 2) fold
  EXPECT_EQ(book.size(), 3u);
  EXPECT_EQ(book.other().n, 10u);
  EXPECT_EQ(book.folded_keys(), 2u);
  uint64_t total = book.other().n;
  book.ForEach([&](int, const Tally& t) { total += t.n; });
  EXPECT_EQ(total, 4u * 5 + 1 + 7);
}

std::map<std::string, double> Samples(const OutcomeReport& r,
                                      const std::string& family) {
  std::map<std::string, double> out;
  for (const auto& f : r.families) {
    if (f.name != family) continue;
    for (const auto& m : f.metric) {
      std::string key;
      for (const auto& l : m.label) key += l.name + "=" + l.value + ",";
      out[key] = f.type == prometheus::MetricType::Histogram
                     ? static_cast<double>(m.histogram.sample_count)
                 : f.type == prometheus::MetricType::Counter ? m.counter.value
                                                             : m.gauge.value;
    }
  }
  return out;
}

TEST(OutcomeDetectorsTest, SeriesBoundedAndFoldedExactly) {
  Fixture f;
  // Destination i fails i + 1 times.
  for (uint16_t i = 0; i < 5; ++i) {
    for (uint16_t j = 0; j <= i; ++j) {
      Sock s =
          Client(1 + i * 100u + j, "192.0.2.1", static_cast<uint16_t>(1000 + i),
                 static_cast<uint16_t>(kEphemeral + j));
      Connect(f.mirror, s, kT0);
      FailConnect(f.mirror, s, kT0 + 1, ECONNREFUSED);
    }
  }
  OutcomeConfig config;
  config.max_series_per_metric = 2;
  OutcomeDetectors detectors(config);
  OutcomeReport r =
      detectors.Evaluate(f.outcomes.connects(), f.outcomes.resets(), 1);
  auto failures = Samples(r, "tcpstated_connect_failures_total");
  const std::string ns = std::to_string(kNetns);
  EXPECT_EQ(failures.size(), 3u);
  EXPECT_EQ(
      (failures["daddr=192.0.2.1,dport=1004,netns=" + ns + ",reason=refused,"]),
      5);
  EXPECT_EQ(
      (failures["daddr=192.0.2.1,dport=1003,netns=" + ns + ",reason=refused,"]),
      4);
  EXPECT_EQ(failures["daddr=other,dport=other,netns=other,reason=refused,"],
            3 + 2 + 1);
}

TEST(OutcomeDetectorsTest, FailingStartsAboveTheRateAndClears) {
  Fixture f;
  OutcomeConfig config;
  config.connect_failure_rate = 1;
  OutcomeDetectors detectors(config);
  const auto evaluate = [&](double now) {
    return detectors.Evaluate(f.outcomes.connects(), f.outcomes.resets(), now);
  };
  EXPECT_TRUE(evaluate(100).started.empty());  // the baseline
  for (uint16_t j = 0; j < 6; ++j) {
    Sock s = Client(10 + j, "198.51.100.4", 8443,
                    static_cast<uint16_t>(kEphemeral + j));
    Connect(f.mirror, s, kT0);
    FailConnect(f.mirror, s, kT0 + 1, ETIMEDOUT);
  }
  // Sooner than the evaluation interval: no rate yet.
  EXPECT_TRUE(evaluate(101).started.empty());
  OutcomeReport r = evaluate(105);  // 6 failures in 5 s: 1.2/s
  ASSERT_EQ(r.started.size(), 1u);
  EXPECT_NE(r.started[0].find("198.51.100.4:8443"), std::string::npos);
  EXPECT_NE(r.started[0].find("timed_out 6"), std::string::npos);
  const std::string ns = std::to_string(kNetns);
  EXPECT_EQ((Samples(r, "tcpstated_connect_failing_active")
                 ["daddr=198.51.100.4,dport=8443,netns=" + ns + ","]),
            1);
  r = evaluate(110);
  ASSERT_EQ(r.cleared.size(), 1u);
  EXPECT_TRUE(r.started.empty());
  EXPECT_EQ((Samples(r, "tcpstated_connect_failing_active")
                 ["daddr=198.51.100.4,dport=8443,netns=" + ns + ","]),
            0);
}

TEST(OutcomeDetectorsTest, ResetStormPerPort) {
  Fixture f;
  OutcomeConfig config;
  config.reset_rate = 2;
  OutcomeDetectors detectors(config);
  detectors.Evaluate(f.outcomes.connects(), f.outcomes.resets(), 0);
  for (uint16_t i = 0; i < 10; ++i) {
    Sock child = Accepted(f.mirror, 1 + i, static_cast<uint16_t>(50000 + i));
    f.mirror.Apply(
        Reset(child, Source::kReceiveReset, TcpState::kEstablished, kT0 + 1));
  }
  OutcomeReport r =
      detectors.Evaluate(f.outcomes.connects(), f.outcomes.resets(), 5);
  ASSERT_EQ(r.started.size(), 1u);
  EXPECT_NE(r.started[0].find("server port 8080"), std::string::npos);
  EXPECT_NE(r.started[0].find("10 received, 0 sent"), std::string::npos);
  const std::string ns = std::to_string(kNetns);
  EXPECT_EQ((Samples(r, "tcpstated_resets_total")
                 ["direction=received,netns=" + ns +
                  ",port=8080,role=server,state=established,"]),
            10);
  EXPECT_EQ((Samples(r, "tcpstated_resets_active")["netns=" + ns +
                                                   ",port=8080,role=server,"]),
            1);
}

// A reset for a segment that reached no socket, as the BPF side sends it.
Event NoSocketReset(uint16_t local_port, uint64_t ts) {
  Event e;
  e.source = Source::kSendReset;
  e.ts_ns = ts;
  e.netns = kNetns;
  e.sport = local_port;
  e.dport = kEphemeral;
  e.oldstate = TcpState::kClose;
  e.newstate = TcpState::kClose;
  e.no_socket = true;
  return e;
}

TEST(OutcomeDetectorsTest, NoSocketResetsPerLocalPortApartAndFolded) {
  Fixture f;
  // Port 9000 + i is probed i + 1 times; nothing listens on any of them.
  for (uint16_t i = 0; i < 4; ++i) {
    for (uint16_t j = 0; j <= i; ++j) {
      f.mirror.Apply(
          NoSocketReset(static_cast<uint16_t>(9000 + i), kT0 + i * 10 + j));
    }
  }
  OutcomeConfig config;
  config.max_series_per_metric = 2;
  OutcomeDetectors detectors(config);
  OutcomeReport r =
      detectors.Evaluate(f.outcomes.connects(), f.outcomes.resets(), 1);
  const std::string ns = std::to_string(kNetns);
  auto no_socket = Samples(r, "tcpstated_resets_no_socket_total");
  EXPECT_EQ(no_socket.size(), 3u);
  EXPECT_EQ((no_socket["netns=" + ns + ",port=9003,"]), 4);
  EXPECT_EQ((no_socket["netns=" + ns + ",port=9002,"]), 3);
  EXPECT_EQ(no_socket["netns=other,port=other,"], 2 + 1);
  // Not a connection's reset: tcpstated_resets_total and the mirror's
  // table are untouched.
  EXPECT_TRUE(Samples(r, "tcpstated_resets_total").empty());
  EXPECT_EQ(f.mirror.stats().tracked, 0u);

  // The namespace's ports go with it (the book itself folded none).
  f.outcomes.NamespaceGone(kNetns);
  r = detectors.Evaluate(f.outcomes.connects(), f.outcomes.resets(), 2);
  EXPECT_TRUE(Samples(r, "tcpstated_resets_no_socket_total").empty());
}

TEST(OutcomeConfigTest, ThresholdsParsedAndValidated) {
  const Config c = ParseConfigYaml(
      "detectors:\n  connect_failure_rate: 0.5\n  reset_rate: 20\n");
  EXPECT_EQ(c.detectors.connect_failure_rate, 0.5);
  EXPECT_EQ(c.detectors.reset_rate, 20);
  EXPECT_EQ(Config{}.detectors.connect_failure_rate, 1);
  EXPECT_EQ(Config{}.detectors.reset_rate, 10);
  for (const char* bad : {"connect_failure_rate: 0", "reset_rate: -1",
                          "reset_rate: .inf", "connect_failure_rate: .nan"}) {
    try {
      ParseConfigYaml(std::string("detectors:\n  ") + bad + "\n");
      ADD_FAILURE() << bad;
    } catch (const ConfigError& e) {
      const std::string key =
          std::string(bad).substr(0, std::string(bad).find(':'));
      EXPECT_NE(std::string(e.what()).find("detectors." + key + ":"),
                std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace tcpstated
