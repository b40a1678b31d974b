#include "tcpstated/config.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "config_test_support.h"

namespace tcpstated {
namespace {

using std::chrono::milliseconds;

std::string YamlError(const std::string& yaml) {
  return ErrorOf([&] { ParseConfigYaml(yaml); });
}

// The defaults are part of the interface (SPEC "Configuration file"), so they
// are spelled out here rather than taken from Config{}.
TEST(ConfigDefaultsTest, MatchSpec) {
  const Config c;
  EXPECT_EQ(c.web.listen_address, ":9640");
  EXPECT_EQ(c.web.telemetry_path, "/metrics");
  EXPECT_EQ(c.web.config_file, "");
  EXPECT_EQ(c.log.level, "info");
  EXPECT_EQ(c.log.format, LogFormat::kText);
  EXPECT_EQ(c.bpf.attach, AttachMode::kAuto);
  EXPECT_EQ(c.bpf.ring_buffer_bytes, 4194304u);
  EXPECT_EQ(c.bpf.ring_buffers, 1u);
  EXPECT_EQ(c.tracking.max_tracked_sockets, 1000000u);
  EXPECT_EQ(c.tracking.reconcile_interval, milliseconds(30000));
  EXPECT_EQ(c.tracking.max_series_per_metric, 50u);
  EXPECT_EQ(c.detectors.close_wait_leak_after, milliseconds(60000));
  EXPECT_EQ(c.detectors.syn_flood_half_open_ratio, 0.5);
  EXPECT_EQ(c.detectors.synack_retransmit_rate, 100);
  EXPECT_EQ(c.detectors.port_exhaustion_ratio, 0.8);
  EXPECT_EQ(c.detectors.time_wait_buckets_ratio, 0.8);
  EXPECT_NO_THROW(ValidateConfig(c));
}

class EmptyYamlTest : public testing::TestWithParam<std::string> {};

TEST_P(EmptyYamlTest, GivesDefaults) {
  ExpectSameConfig(ParseConfigYaml(GetParam()), Config{});
}

INSTANTIATE_TEST_SUITE_P(
    Inputs, EmptyYamlTest,
    testing::Values("", "\n", "# only a comment\n", "---\n", "~\n",
                    "web:\nlog:\nbpf:\ntracking:\ndetectors:\n", "{}\n",
                    "---\n...\n"));

// Mirrors the commented block in SPEC.md, so that shipping that block as the
// default config file cannot break.
TEST(ParseConfigYamlTest, SpecExampleGivesDefaults) {
  const std::string yaml = R"(web:
  listen_address: ":9640"
  telemetry_path: /metrics
  config_file: ""              # exporter-toolkit style TLS / basic auth
log:
  level: info                  # trace|debug|info|warn|error
  format: text                 # text|json
bpf:
  attach: auto                 # auto|tp_btf|tracepoint
  ring_buffer_bytes: 4194304   # power of two, at least one page
tracking:
  max_tracked_sockets: 1000000
  reconcile_interval: 30s
  max_series_per_metric: 50
detectors:
  close_wait_leak_after: 60s
  syn_flood_half_open_ratio: 0.5
  synack_retransmit_rate: 100  # per second, per listener
  port_exhaustion_ratio: 0.8
  time_wait_buckets_ratio: 0.8
)";
  ExpectSameConfig(ParseConfigYaml(yaml), Config{});
}

TEST(ParseConfigYamlTest, EveryKeyRoundTrips) {
  const std::string yaml = R"(web:
  listen_address: "127.0.0.1:9999"
  telemetry_path: /custom/metrics
  config_file: /etc/tcpstated/web.yml
log:
  level: debug
  format: json
bpf:
  attach: tracepoint
  ring_buffer_bytes: 0x10000
  ring_buffers: 4
tracking:
  max_tracked_sockets: 12345
  reconcile_interval: 1m30s
  max_series_per_metric: 7
detectors:
  close_wait_leak_after: 500ms
  syn_flood_half_open_ratio: 0.25
  synack_retransmit_rate: 2.5
  port_exhaustion_ratio: 1
  time_wait_buckets_ratio: .9
)";
  const Config c = ParseConfigYaml(yaml);
  EXPECT_EQ(c.web.listen_address, "127.0.0.1:9999");
  EXPECT_EQ(c.web.telemetry_path, "/custom/metrics");
  EXPECT_EQ(c.web.config_file, "/etc/tcpstated/web.yml");
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.format, LogFormat::kJson);
  EXPECT_EQ(c.bpf.attach, AttachMode::kTracepoint);
  EXPECT_EQ(c.bpf.ring_buffer_bytes, 65536u);
  EXPECT_EQ(c.bpf.ring_buffers, 4u);
  EXPECT_EQ(c.tracking.max_tracked_sockets, 12345u);
  EXPECT_EQ(c.tracking.reconcile_interval, milliseconds(90000));
  EXPECT_EQ(c.tracking.max_series_per_metric, 7u);
  EXPECT_EQ(c.detectors.close_wait_leak_after, milliseconds(500));
  EXPECT_EQ(c.detectors.syn_flood_half_open_ratio, 0.25);
  EXPECT_EQ(c.detectors.synack_retransmit_rate, 2.5);
  EXPECT_EQ(c.detectors.port_exhaustion_ratio, 1.0);
  EXPECT_EQ(c.detectors.time_wait_buckets_ratio, 0.9);
}

TEST(ParseConfigYamlTest, PartialSectionKeepsOtherDefaults) {
  const Config c = ParseConfigYaml("bpf:\n  attach: tp_btf\n");
  EXPECT_EQ(c.bpf.attach, AttachMode::kTpBtf);
  EXPECT_EQ(c.bpf.ring_buffer_bytes, Config{}.bpf.ring_buffer_bytes);
  EXPECT_EQ(c.web.listen_address, ":9640");
}

TEST(ParseConfigYamlTest, AcceptedListenAddresses) {
  for (const char* addr : {":1", ":65535", "0.0.0.0:9640", "localhost:9640",
                           "255.255.255.255:80"}) {
    EXPECT_EQ(
        ParseConfigYaml(std::string("web: {listen_address: \"") + addr + "\"}")
            .web.listen_address,
        addr);
  }
}

struct ErrorCase {
  const char* name;
  const char* yaml;
  // Every fragment must appear in the message; the first is usually the key.
  std::vector<const char*> fragments;
};

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

class YamlErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(YamlErrorTest, NamesTheKey) {
  const std::string message = YamlError(GetParam().yaml);
  for (const char* fragment : GetParam().fragments) {
    EXPECT_NE(message.find(fragment), std::string::npos)
        << "message: " << message << "\nmissing: " << fragment;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, YamlErrorTest,
    testing::Values(
        // Structure.
        ErrorCase{"UnknownNestedKey",
                  "bpf:\n  foo: 1\n",
                  {"config: unknown key \"bpf.foo\""}},
        ErrorCase{"UnknownTopLevelKey",
                  "webb:\n  listen_address: x\n",
                  {"config: unknown key \"webb\""}},
        ErrorCase{"MisspelledKey",
                  "web: {listen_adress: \":1\"}",
                  {"unknown key \"web.listen_adress\""}},
        ErrorCase{"TopLevelString",
                  "just a string\n",
                  {"config:", "expected a map", "string"}},
        ErrorCase{"TopLevelList",
                  "- a\n- b\n",
                  {"config:", "expected a map", "sequence"}},
        ErrorCase{"SectionIsScalar",
                  "web: 5\n",
                  {"web:", "expected a map", "integer 5"}},
        ErrorCase{"SectionIsList", "log: [a]\n", {"log:", "expected a map"}},
        ErrorCase{"NonScalarKey",
                  "web:\n  ? [a]\n  : 1\n",
                  {"web:", "keys must be strings"}},
        ErrorCase{"DuplicateKey",
                  "log: {level: info, level: debug}",
                  {"duplicate key \"log.level\""}},
        ErrorCase{"TwoDocuments",
                  "log: {}\n---\nbpf: {}\n",
                  {"config:", "one YAML document"}},
        ErrorCase{"SyntaxError",
                  "web:\n  listen_address: [\n",
                  {"config: YAML syntax error at line", "column"}},
        ErrorCase{"SyntaxErrorBadIndent",
                  "web:\n  a: b: c\n",
                  {"config: YAML syntax error at line 2, column"}},
        // Types.
        ErrorCase{"MapForScalar",
                  "web:\n  listen_address: {a: 1}\n",
                  {"web.listen_address:", "expected a string", "a map"}},
        ErrorCase{"ListForString",
                  "log:\n  level: [info]\n",
                  {"log.level:", "expected a string", "a sequence"}},
        ErrorCase{"NullLeaf",
                  "log:\n  level:\n",
                  {"log.level:", "expected a string", "null"}},
        ErrorCase{"IntegerForString",
                  "web:\n  telemetry_path: 123\n",
                  {"web.telemetry_path:", "expected a string", "integer"}},
        ErrorCase{"StringForInteger",
                  "bpf:\n  ring_buffer_bytes: abc\n",
                  {"bpf.ring_buffer_bytes:", "integer", "string \"abc\""}},
        ErrorCase{"QuotedNumberForInteger",
                  "tracking:\n  max_tracked_sockets: \"100\"\n",
                  {"tracking.max_tracked_sockets:", "integer", "string"}},
        ErrorCase{"FloatForInteger",
                  "tracking:\n  max_series_per_metric: 2.5\n",
                  {"tracking.max_series_per_metric:", "integer", "float"}},
        ErrorCase{"ExponentForInteger",
                  "bpf:\n  ring_buffer_bytes: 1e6\n",
                  {"bpf.ring_buffer_bytes:", "integer", "float"}},
        ErrorCase{"NegativeForUnsigned",
                  "tracking:\n  max_tracked_sockets: -5\n",
                  {"tracking.max_tracked_sockets:", "non-negative integer"}},
        ErrorCase{"IntegerOverflow",
                  "tracking:\n  max_tracked_sockets: 99999999999999999999\n",
                  {"tracking.max_tracked_sockets:", "too large"}},
        ErrorCase{"StringForRatio",
                  "detectors:\n  port_exhaustion_ratio: high\n",
                  {"detectors.port_exhaustion_ratio:", "expected a number"}},
        ErrorCase{
            "BoolForRatio",
            "detectors:\n  syn_flood_half_open_ratio: true\n",
            {"detectors.syn_flood_half_open_ratio:", "number", "boolean"}},
        ErrorCase{"MismatchedTag",
                  "log:\n  level: !!int info\n",
                  {"log.level:", "tag"}},
        ErrorCase{"CustomTag",
                  "log:\n  level: !custom info\n",
                  {"log.level:", "tag"}},
        // Enumerations.
        ErrorCase{
            "BadLogLevel", "log:\n  level: loud\n", {"log.level:", "\"loud\""}},
        ErrorCase{
            "LogLevelIsCaseSensitive", "log:\n  level: INFO\n", {"log.level:"}},
        ErrorCase{"BadLogFormat",
                  "log:\n  format: xml\n",
                  {"log.format:", "\"xml\""}},
        ErrorCase{"BadAttachMode",
                  "bpf:\n  attach: kprobe\n",
                  {"bpf.attach:", "\"kprobe\""}},
        // Durations.
        ErrorCase{"NegativeDuration",
                  "tracking:\n  reconcile_interval: -5s\n",
                  {"tracking.reconcile_interval: negative duration \"-5s\""}},
        ErrorCase{"UnitlessDuration",
                  "tracking:\n  reconcile_interval: 30\n",
                  {"tracking.reconcile_interval:", "no unit"}},
        ErrorCase{"QuotedUnitlessDuration",
                  "detectors:\n  close_wait_leak_after: \"30\"\n",
                  {"detectors.close_wait_leak_after:", "no unit"}},
        ErrorCase{"FloatDuration",
                  "detectors:\n  close_wait_leak_after: 1.5\n",
                  {"detectors.close_wait_leak_after:", "duration"}},
        ErrorCase{"UnknownUnitDuration",
                  "tracking:\n  reconcile_interval: 5x\n",
                  {"tracking.reconcile_interval:", "unknown unit \"x\""}},
        ErrorCase{"ZeroDuration",
                  "tracking:\n  reconcile_interval: 0s\n",
                  {"tracking.reconcile_interval:", "greater than 0"}},
        ErrorCase{"ZeroIntegerDuration",
                  "detectors:\n  close_wait_leak_after: 0\n",
                  {"detectors.close_wait_leak_after:", "greater than 0"}},
        ErrorCase{"MapDuration",
                  "tracking:\n  reconcile_interval: {s: 5}\n",
                  {"tracking.reconcile_interval:", "duration", "a map"}},
        // Ranges.
        ErrorCase{"RingNotPowerOfTwo",
                  "bpf:\n  ring_buffer_bytes: 5000\n",
                  {"bpf.ring_buffer_bytes: 5000 is not a power of two"}},
        ErrorCase{"RingTooSmall",
                  "bpf:\n  ring_buffer_bytes: 2048\n",
                  {"bpf.ring_buffer_bytes:", "2048", "minimum"}},
        ErrorCase{"RingZero",
                  "bpf:\n  ring_buffer_bytes: 0\n",
                  {"bpf.ring_buffer_bytes:"}},
        ErrorCase{"RingTooLarge",
                  "bpf:\n  ring_buffer_bytes: 2147483648\n",
                  {"bpf.ring_buffer_bytes:", "maximum"}},
        ErrorCase{"ZeroRings",
                  "bpf:\n  ring_buffers: 0\n",
                  {"bpf.ring_buffers:", "out of range"}},
        ErrorCase{"TooManyRings",
                  "bpf:\n  ring_buffers: 1025\n",
                  {"bpf.ring_buffers:", "out of range"}},
        ErrorCase{
            "RingsAboveFourGibibytesInAll",
            "bpf:\n  ring_buffers: 1024\n  ring_buffer_bytes: 8388608\n",
            {"bpf.ring_buffers:", "1024 rings of 8388608 bytes", "maximum"}},
        ErrorCase{"ZeroTrackedSockets",
                  "tracking:\n  max_tracked_sockets: 0\n",
                  {"tracking.max_tracked_sockets:", "out of range"}},
        ErrorCase{"TooManyTrackedSockets",
                  "tracking:\n  max_tracked_sockets: 100000001\n",
                  {"tracking.max_tracked_sockets:", "out of range"}},
        ErrorCase{"ZeroSeries",
                  "tracking:\n  max_series_per_metric: 0\n",
                  {"tracking.max_series_per_metric:", "out of range"}},
        ErrorCase{"TooManySeries",
                  "tracking:\n  max_series_per_metric: 10001\n",
                  {"tracking.max_series_per_metric:", "out of range"}},
        ErrorCase{"ZeroRate",
                  "detectors:\n  synack_retransmit_rate: 0\n",
                  {"detectors.synack_retransmit_rate:", "greater than 0"}},
        ErrorCase{"NegativeRate",
                  "detectors:\n  synack_retransmit_rate: -1.5\n",
                  {"detectors.synack_retransmit_rate:"}},
        ErrorCase{"InfiniteRate",
                  "detectors:\n  synack_retransmit_rate: .inf\n",
                  {"detectors.synack_retransmit_rate:", "finite"}},
        ErrorCase{"NanRatio",
                  "detectors:\n  port_exhaustion_ratio: .nan\n",
                  {"detectors.port_exhaustion_ratio:"}},
        // Web.
        ErrorCase{"PathWithoutSlash",
                  "web:\n  telemetry_path: metrics\n",
                  {"web.telemetry_path:", "must start with \"/\""}},
        ErrorCase{"PathIsRoot",
                  "web:\n  telemetry_path: /\n",
                  {"web.telemetry_path:"}},
        ErrorCase{"PathIsHealthz",
                  "web:\n  telemetry_path: /healthz\n",
                  {"web.telemetry_path:", "/healthz"}},
        ErrorCase{"PathWithSpace",
                  "web:\n  telemetry_path: \"/a b\"\n",
                  {"web.telemetry_path:"}},
        ErrorCase{"AddressWithoutPort",
                  "web:\n  listen_address: \"127.0.0.1\"\n",
                  {"web.listen_address:", "[host]:port"}},
        ErrorCase{"AddressPortZero",
                  "web:\n  listen_address: \":0\"\n",
                  {"web.listen_address:", "port"}},
        ErrorCase{"AddressPortTooLarge",
                  "web:\n  listen_address: \":65536\"\n",
                  {"web.listen_address:", "port"}},
        ErrorCase{"AddressPortNotNumber",
                  "web:\n  listen_address: \":http\"\n",
                  {"web.listen_address:", "port"}},
        ErrorCase{"AddressBadHost",
                  "web:\n  listen_address: \"example.com:9640\"\n",
                  {"web.listen_address:", "host"}},
        ErrorCase{"AddressBadIpv4",
                  "web:\n  listen_address: \"256.1.1.1:9640\"\n",
                  {"web.listen_address:", "host"}},
        ErrorCase{"AddressIpv4LeadingZero",
                  "web:\n  listen_address: \"127.0.0.01:9640\"\n",
                  {"web.listen_address:", "host"}},
        ErrorCase{"AddressNewlineStaysOneLine",
                  "web:\n  listen_address: \"a\\nb\"\n",
                  {"web.listen_address:", "\\n"}}),
    [](const testing::TestParamInfo<ErrorCase>& case_info) {
      return std::string(case_info.param.name);
    });

class RatioTest : public testing::TestWithParam<const char*> {};

TEST_P(RatioTest, RejectsOutsideZeroToOne) {
  const std::string key = GetParam();
  const std::string leaf = key.substr(key.find('.') + 1);
  for (const char* bad : {"0", "1.5", "-0.1", "0.0", "2"}) {
    const std::string message =
        YamlError("detectors:\n  " + leaf + ": " + bad + "\n");
    EXPECT_EQ(message.rfind(key + ": ", 0), 0u) << message;
  }
}

TEST_P(RatioTest, AcceptsOneAndSmallValues) {
  const std::string leaf =
      std::string(GetParam()).substr(std::string(GetParam()).find('.') + 1);
  EXPECT_NO_THROW(ParseConfigYaml("detectors:\n  " + leaf + ": 1\n"));
  EXPECT_NO_THROW(ParseConfigYaml("detectors:\n  " + leaf + ": 1.0\n"));
  EXPECT_NO_THROW(ParseConfigYaml("detectors:\n  " + leaf + ": 0.001\n"));
}

INSTANTIATE_TEST_SUITE_P(Keys, RatioTest,
                         testing::Values("detectors.syn_flood_half_open_ratio",
                                         "detectors.port_exhaustion_ratio",
                                         "detectors.time_wait_buckets_ratio"));

TEST(RingBufferTest, AcceptsPowersOfTwoInRange) {
  for (uint64_t bytes :
       {uint64_t{4096}, uint64_t{1} << 20, uint64_t{1} << 30}) {
    EXPECT_EQ(ParseConfigYaml(
                  "bpf: {ring_buffer_bytes: " + std::to_string(bytes) + "}")
                  .bpf.ring_buffer_bytes,
              bytes);
  }
}

struct DurationCase {
  const char* text;
  int64_t ms;
};

class DurationOkTest : public testing::TestWithParam<DurationCase> {};

TEST_P(DurationOkTest, Parses) {
  EXPECT_EQ(ParseDuration("k", GetParam().text), milliseconds(GetParam().ms))
      << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DurationOkTest,
    testing::Values(DurationCase{"500ms", 500}, DurationCase{"30s", 30000},
                    DurationCase{"5m", 300000}, DurationCase{"1h", 3600000},
                    DurationCase{"1h30m", 5400000},
                    DurationCase{"1d", 86400000},
                    DurationCase{"2w", 2 * 7 * 86400000LL},
                    DurationCase{"1y", 365 * 86400000LL},
                    DurationCase{"1h1m1s1ms", 3661001},
                    DurationCase{"1s500ms", 1500}, DurationCase{"0s", 0},
                    DurationCase{"0", 0}, DurationCase{"0ms", 0},
                    DurationCase{"90m", 5400000}));

struct BadDurationCase {
  const char* text;
  const char* fragment;
};

class DurationBadTest : public testing::TestWithParam<BadDurationCase> {};

TEST_P(DurationBadTest, NamesKey) {
  const std::string message =
      ErrorOf([] { ParseDuration("my.key", GetParam().text); });
  EXPECT_EQ(message.rfind("my.key: ", 0), 0u) << message;
  EXPECT_NE(message.find(GetParam().fragment), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DurationBadTest,
    testing::Values(BadDurationCase{"", "empty"},
                    BadDurationCase{"-5s", "negative duration \"-5s\""},
                    BadDurationCase{"-0s", "negative"},
                    BadDurationCase{"30", "no unit"},
                    BadDurationCase{"5x", "unknown unit"},
                    BadDurationCase{"5S", "unknown unit"},
                    BadDurationCase{"5sec", "unknown unit"},
                    BadDurationCase{"1.5s", "invalid duration"},
                    BadDurationCase{"s", "invalid duration"},
                    BadDurationCase{"1h30", "invalid duration"},
                    BadDurationCase{"5s5m", "largest first"},
                    BadDurationCase{"5s5s", "largest first"},
                    BadDurationCase{" 5s", "invalid duration"},
                    BadDurationCase{"5s ", "invalid duration"},
                    BadDurationCase{"+5s", "invalid duration"},
                    BadDurationCase{"5 s", "invalid duration"},
                    BadDurationCase{"99999999999999999999ms", "out of range"},
                    BadDurationCase{"9223372036854775807s", "out of range"},
                    BadDurationCase{"292471209y", "out of range"}));

TEST(DurationTest, LargestRepresentableValueParses) {
  EXPECT_EQ(ParseDuration("k", "9223372036854775807ms").count(),
            9223372036854775807LL);
}

TEST(ValidateConfigTest, RejectsProgrammaticMistakes) {
  Config c;
  c.tracking.reconcile_interval = milliseconds(0);
  EXPECT_NE(
      ErrorOf([&] { ValidateConfig(c); }).find("tracking.reconcile_interval:"),
      std::string::npos);
  c = Config{};
  c.detectors.close_wait_leak_after = milliseconds(-1);
  EXPECT_NE(ErrorOf([&] {
              ValidateConfig(c);
            }).find("detectors.close_wait_leak_after:"),
            std::string::npos);
  c = Config{};
  c.log.level = "verbose";
  EXPECT_NE(ErrorOf([&] { ValidateConfig(c); }).find("log.level:"),
            std::string::npos);
  c = Config{};
  c.bpf.ring_buffer_bytes = 4097;
  EXPECT_NE(ErrorOf([&] { ValidateConfig(c); }).find("bpf.ring_buffer_bytes"),
            std::string::npos);
}

TEST(NamesTest, AttachModeAndLogFormat) {
  EXPECT_STREQ(AttachModeName(AttachMode::kAuto), "auto");
  EXPECT_STREQ(AttachModeName(AttachMode::kTpBtf), "tp_btf");
  EXPECT_STREQ(AttachModeName(AttachMode::kTracepoint), "tracepoint");
  EXPECT_STREQ(LogFormatName(LogFormat::kText), "text");
  EXPECT_STREQ(LogFormatName(LogFormat::kJson), "json");
}

TEST(ParseConfigYamlTest, WebExposureKeys) {
  EXPECT_FALSE(Config().web.debug_sockets);
  EXPECT_TRUE(Config().web.allowed_hosts.empty());
  const Config c = ParseConfigYaml(
      "web:\n  debug_sockets: true\n"
      "  allowed_hosts: [LocalHost, 127.0.0.1, \"[::1]\"]\n");
  EXPECT_TRUE(c.web.debug_sockets);
  EXPECT_EQ(c.web.allowed_hosts,
            (std::vector<std::string>{"localhost", "127.0.0.1", "[::1]"}));
  EXPECT_NE(YamlError("web:\n  debug_sockets: yes\n").find("web.debug_sockets"),
            std::string::npos);
  EXPECT_NE(
      YamlError("web:\n  allowed_hosts: localhost\n").find("web.allowed_hosts"),
      std::string::npos);
  EXPECT_NE(
      YamlError("web:\n  allowed_hosts: [\"a b\"]\n").find("web.allowed_hosts"),
      std::string::npos);
}

// The peer-liveness keys (issue 14): SPEC defaults, parsing, and one clear
// error naming the key for a bad value.
TEST(ParseConfigYamlTest, PeerLivenessKeys) {
  Config d;
  EXPECT_EQ(d.detectors.fin_wait2_stuck_after, milliseconds(300000));
  EXPECT_EQ(d.detectors.idle_after, milliseconds(3600000));
  EXPECT_EQ(d.detectors.dead_peer_retries, 3u);
  Config c = ParseConfigYaml(
      "detectors:\n  fin_wait2_stuck_after: 2s\n  idle_after: 90m\n"
      "  dead_peer_retries: 255\n");
  EXPECT_EQ(c.detectors.fin_wait2_stuck_after, milliseconds(2000));
  EXPECT_EQ(c.detectors.idle_after, milliseconds(90 * 60000));
  EXPECT_EQ(c.detectors.dead_peer_retries, 255u);
  EXPECT_NE(YamlError("detectors:\n  fin_wait2_stuck_after: 0s\n")
                .find("detectors.fin_wait2_stuck_after:"),
            std::string::npos);
  EXPECT_NE(
      YamlError("detectors:\n  idle_after: 10\n").find("detectors.idle_after:"),
      std::string::npos);
  EXPECT_NE(YamlError("detectors:\n  dead_peer_retries: 0\n")
                .find("detectors.dead_peer_retries:"),
            std::string::npos);
  EXPECT_NE(YamlError("detectors:\n  dead_peer_retries: 256\n")
                .find("detectors.dead_peer_retries:"),
            std::string::npos);
}

}  // namespace
}  // namespace tcpstated
