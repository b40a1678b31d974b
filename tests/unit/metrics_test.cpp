#include "tcpstated/metrics.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <set>
#include <string>

namespace tcpstated {
namespace {

const prometheus::MetricFamily* FindFamily(
    const std::vector<prometheus::MetricFamily>& families,
    const std::string& name) {
  for (const auto& f : families) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string Label(const prometheus::ClientMetric& m, const std::string& name) {
  for (const auto& l : m.label) {
    if (l.name == name) return l.value;
  }
  return "";
}

TEST(Metrics, EveryStateIsPresentForEveryNamespace) {
  Snapshot s;
  StateCounts counts{};
  counts[StateIndex(TcpState::kCloseWait)] = 7;
  s.sockets = {{4026531840u, counts}, {4026532000u, StateCounts{}}};
  auto families = BuildMetrics(s);
  const auto* sockets = FindFamily(families, "tcpstated_sockets");
  ASSERT_NE(sockets, nullptr);
  EXPECT_EQ(sockets->metric.size(), 2 * kReportedStates.size());
  std::set<std::string> states;
  double close_wait = -1;
  for (const auto& m : sockets->metric) {
    states.insert(Label(m, "state"));
    if (Label(m, "netns") == "4026531840" &&
        Label(m, "state") == "close_wait") {
      close_wait = m.gauge.value;
    }
  }
  EXPECT_EQ(states.size(), 12u);
  EXPECT_TRUE(states.count("new_syn_recv"));
  EXPECT_FALSE(states.count("bound_inactive"));
  EXPECT_EQ(close_wait, 7);
}

TEST(Metrics, LegalTransitionsAlwaysPresentOthersOnlyWhenCounted) {
  Snapshot s;
  s.kernel.transitions[StateIndex(TcpState::kSynRecv)]
                      [StateIndex(TcpState::kListen)] = 3;
  auto families = BuildMetrics(s);
  const auto* t = FindFamily(families, "tcpstated_transitions_total");
  ASSERT_NE(t, nullptr);
  bool saw_illegal = false, saw_established = false;
  for (const auto& m : t->metric) {
    if (Label(m, "from") == "syn_recv" && Label(m, "to") == "listen") {
      saw_illegal = true;
      EXPECT_EQ(m.counter.value, 3);
    }
    if (Label(m, "from") == "syn_sent" && Label(m, "to") == "established") {
      saw_established = true;
      EXPECT_EQ(m.counter.value, 0);
    }
    EXPECT_NE(Label(m, "from"), "unknown");
  }
  EXPECT_TRUE(saw_illegal);
  EXPECT_TRUE(saw_established);
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Snapshot s;
  auto& h = s.durations[StateIndex(TcpState::kSynSent)];
  h.counts[0] = 2;                        // <= 1 ms
  h.counts[kDurationBuckets.size()] = 1;  // +Inf
  h.count = 3;
  h.sum = 100000.5;
  auto families = BuildMetrics(s);
  const auto* d = FindFamily(families, "tcpstated_state_duration_seconds");
  ASSERT_NE(d, nullptr);
  for (const auto& m : d->metric) {
    if (Label(m, "state") != "syn_sent") continue;
    ASSERT_EQ(m.histogram.bucket.size(), kDurationBuckets.size() + 1);
    EXPECT_EQ(m.histogram.bucket.front().cumulative_count, 2u);
    EXPECT_EQ(m.histogram.bucket[kDurationBuckets.size() - 1].cumulative_count,
              2u);
    EXPECT_EQ(m.histogram.bucket.back().cumulative_count, 3u);
    EXPECT_EQ(m.histogram.sample_count, 3u);
    return;
  }
  FAIL() << "no syn_sent histogram";
}

TEST(Metrics, EveryFamilyHasHelpAndCountersEndInTotal) {
  Snapshot s;
  s.version = "1.2.3";
  s.attach = "tp_btf";
  auto families = BuildMetrics(s);
  for (const auto& f : families) {
    EXPECT_FALSE(f.help.empty()) << f.name;
    EXPECT_EQ(f.name.rfind("tcpstated_", 0), 0u) << f.name;
    bool total = f.name.size() > 6 &&
                 f.name.compare(f.name.size() - 6, 6, "_total") == 0;
    EXPECT_EQ(f.type == prometheus::MetricType::Counter, total) << f.name;
  }
  const auto* build = FindFamily(families, "tcpstated_build_info");
  ASSERT_NE(build, nullptr);
  EXPECT_EQ(Label(build->metric.at(0), "version"), "1.2.3");
  EXPECT_EQ(Label(build->metric.at(0), "attach"), "tp_btf");
  std::string text = prometheus::TextSerializer().Serialize(families);
  EXPECT_NE(text.find("tcpstated_events_lost_total{source=\"tcp_send_reset\"}"),
            std::string::npos);
}

TEST(Metrics, KernelInfoNamesTheReleaseAndTheAttachMode) {
  Snapshot s;
  s.attach = "tracepoint";
  s.kernel_release = "6.1.0-28-cloud-amd64";
  auto families = BuildMetrics(s);
  const auto* kernel = FindFamily(families, "tcpstated_kernel_info");
  ASSERT_NE(kernel, nullptr);
  EXPECT_EQ(kernel->type, prometheus::MetricType::Gauge);
  ASSERT_EQ(kernel->metric.size(), 1u);
  EXPECT_EQ(Label(kernel->metric[0], "release"), "6.1.0-28-cloud-amd64");
  EXPECT_EQ(Label(kernel->metric[0], "attach"), "tracepoint");
  EXPECT_EQ(kernel->metric[0].gauge.value, 1);
}

TEST(Metrics, MissedRunsArePerSourceAndAlwaysPresent) {
  Snapshot s;
  s.kernel.missed[static_cast<size_t>(Source::kStateChange)] = 168;
  auto families = BuildMetrics(s);
  const auto* missed = FindFamily(families, "tcpstated_events_missed_total");
  ASSERT_NE(missed, nullptr);
  std::map<std::string, double> by_source;
  for (const auto& m : missed->metric) {
    by_source[Label(m, "source")] = m.counter.value;
  }
  EXPECT_EQ(by_source,
            (std::map<std::string, double>{{"inet_sock_set_state", 168},
                                           {"tcp_receive_reset", 0},
                                           {"tcp_send_reset", 0},
                                           {"tcp_retransmit_synack", 0},
                                           {"tcp_retransmit_skb", 0}}));
}

}  // namespace
}  // namespace tcpstated
