#include "tcpstated/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "tcpstated/listen_address.h"
#include "tcpstated/yaml_fields.h"

namespace tcpstated {
namespace {

using std::chrono::milliseconds;

constexpr uint64_t kMinRingBufferBytes = 4096;
constexpr uint64_t kMaxRingBufferBytes = uint64_t{1} << 30;
// A CPU writes to ring (CPU number % rings): more rings than CPUs are never
// created, so this only bounds what a configuration may say.
constexpr uint64_t kMaxRingBuffers = 1024;
// The rings' total: a bound on locked memory that still takes any one ring
// the old single-ring bound allowed, times the default count.
constexpr uint64_t kMaxRingBytesInAll = uint64_t{4} << 30;
constexpr uint64_t kMaxTrackedSockets = 100000000;
constexpr uint64_t kMaxSeriesPerMetric = 10000;

constexpr const char* kLogLevels[] = {"trace", "debug", "info", "warn",
                                      "error"};

[[noreturn]] void Fail(const std::string& key, const std::string& problem) {
  FailKey(key, problem);
}

std::string Quote(std::string_view text) { return QuoteForMessage(text); }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAsciiLetter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsDigit);
}

std::string FormatDouble(double value) {
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof(buf), value);
  if (result.ec != std::errc()) return "?";
  return std::string(buf, result.ptr);
}

struct DurationUnit {
  const char* name;
  int64_t ms;
};
// Prometheus' units, largest first; a duration must use them in this order.
constexpr DurationUnit kDurationUnits[] = {
    {"y", int64_t{365} * 24 * 3600 * 1000},
    {"w", int64_t{7} * 24 * 3600 * 1000},
    {"d", int64_t{24} * 3600 * 1000},
    {"h", int64_t{3600} * 1000},
    {"m", int64_t{60} * 1000},
    {"s", 1000},
    {"ms", 1},
};

// Formats in the same syntax ParseDuration accepts, so that an error message
// can be pasted back into the file.
std::string FormatDuration(milliseconds value) {
  int64_t ms = value.count();
  if (ms == 0) return "0s";
  std::string out;
  uint64_t rest = static_cast<uint64_t>(ms);
  if (ms < 0) {
    out += '-';
    rest = 0 - rest;
  }
  for (const DurationUnit& unit : kDurationUnits) {
    const auto unit_ms = static_cast<uint64_t>(unit.ms);
    if (rest >= unit_ms) {
      out += std::to_string(rest / unit_ms) + unit.name;
      rest %= unit_ms;
    }
  }
  return out;
}

void ValidateRange(const std::string& key, uint64_t value, uint64_t min,
                   uint64_t max) {
  if (value < min || value > max) {
    Fail(key, std::to_string(value) + " is out of range [" +
                  std::to_string(min) + ", " + std::to_string(max) + "]");
  }
}

void ValidateRatio(const std::string& key, double value) {
  // Written so that NaN fails too.
  if (!(value > 0 && value <= 1)) {
    Fail(key, FormatDouble(value) + " is out of range (0, 1]");
  }
}

void ValidatePositiveDuration(const std::string& key, milliseconds value) {
  if (value.count() <= 0) {
    Fail(key, "must be greater than 0, got " + FormatDuration(value));
  }
}

// A sequence of host names: letters, digits, '-', '.', or an IP literal
// (IPv6 in brackets, as in a Host header).
std::vector<std::string> GetHostList(const std::string& key,
                                     const YAML::Node& node) {
  if (ClassifyYaml(node) != YamlKind::kNull && !node.IsSequence()) {
    FailExpected(key, "a list of host names", node);
  }
  std::vector<std::string> hosts;
  for (std::string host : GetStringList(key, node)) {
    const bool ok = !host.empty() && host.size() <= 253 &&
                    host.find_first_not_of(
                        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
                        "VWXYZ0123456789-.[]:") == std::string::npos;
    if (!ok) Fail(key, "not a host name: " + Quote(host));
    for (char& c : host) c = static_cast<char>(std::tolower(c));
    hosts.push_back(host);
  }
  return hosts;
}

milliseconds GetDuration(const std::string& key, const YAML::Node& node) {
  const YamlKind kind = ClassifyYaml(node);
  // A bare integer reaches ParseDuration too, which accepts 0 and explains
  // that anything else needs a unit.
  if (kind != YamlKind::kString && kind != YamlKind::kInt) {
    FailExpected(key, "a duration such as \"30s\"", node);
  }
  return ParseDuration(key, node.Scalar());
}

void ApplyYaml(const YAML::Node& root, Config& config) {
  const std::vector<YamlField> web = {
      {"listen_address",
       [&config](const std::string& k, const YAML::Node& n) {
         config.web.listen_address = GetString(k, n);
       }},
      {"telemetry_path",
       [&config](const std::string& k, const YAML::Node& n) {
         config.web.telemetry_path = GetString(k, n);
       }},
      {"config_file",
       [&config](const std::string& k, const YAML::Node& n) {
         config.web.config_file = GetString(k, n);
       }},
      {"debug_sockets",
       [&config](const std::string& k, const YAML::Node& n) {
         config.web.debug_sockets = GetBool(k, n);
       }},
      {"allowed_hosts",
       [&config](const std::string& k, const YAML::Node& n) {
         config.web.allowed_hosts = GetHostList(k, n);
       }},
  };
  const std::vector<YamlField> log = {
      {"level",
       [&config](const std::string& k, const YAML::Node& n) {
         config.log.level = GetString(k, n);
         ValidateLogLevel(k, config.log.level);
       }},
      {"format",
       [&config](const std::string& k, const YAML::Node& n) {
         config.log.format = ParseLogFormat(k, GetString(k, n));
       }},
  };
  const std::vector<YamlField> bpf = {
      {"attach",
       [&config](const std::string& k, const YAML::Node& n) {
         config.bpf.attach = ParseAttachMode(k, GetString(k, n));
       }},
      {"ring_buffer_bytes",
       [&config](const std::string& k, const YAML::Node& n) {
         config.bpf.ring_buffer_bytes = GetUint(k, n);
       }},
      {"ring_buffers",
       [&config](const std::string& k, const YAML::Node& n) {
         config.bpf.ring_buffers = GetUint(k, n);
       }},
  };
  const std::vector<YamlField> tracking = {
      {"max_tracked_sockets",
       [&config](const std::string& k, const YAML::Node& n) {
         config.tracking.max_tracked_sockets = GetUint(k, n);
       }},
      {"reconcile_interval",
       [&config](const std::string& k, const YAML::Node& n) {
         config.tracking.reconcile_interval = GetDuration(k, n);
       }},
      {"max_series_per_metric",
       [&config](const std::string& k, const YAML::Node& n) {
         config.tracking.max_series_per_metric = GetUint(k, n);
       }},
      {"full_reconcile_interval",
       [&config](const std::string& k, const YAML::Node& n) {
         config.tracking.full_reconcile_interval = GetDuration(k, n);
       }},
  };
  const std::vector<YamlField> detectors = {
      {"close_wait_leak_after",
       [&config](const std::string& k, const YAML::Node& n) {
         config.detectors.close_wait_leak_after = GetDuration(k, n);
       }},
      {"syn_flood_half_open_ratio",
       [&config](const std::string& k, const YAML::Node& n) {
         config.detectors.syn_flood_half_open_ratio = GetNumber(k, n);
       }},
      {"synack_retransmit_rate",
       [&config](const std::string& k, const YAML::Node& n) {
         config.detectors.synack_retransmit_rate = GetNumber(k, n);
       }},
      {"port_exhaustion_ratio",
       [&config](const std::string& k, const YAML::Node& n) {
         config.detectors.port_exhaustion_ratio = GetNumber(k, n);
       }},
      {"time_wait_buckets_ratio",
       [&config](const std::string& k, const YAML::Node& n) {
         config.detectors.time_wait_buckets_ratio = GetNumber(k, n);
       }},
      {"connect_failure_rate",
       [&config](const std::string& k, const YAML::Node& n) {
         config.detectors.connect_failure_rate = GetNumber(k, n);
       }},
      {"reset_rate",
       [&config](const std::string& k, const YAML::Node& n) {
         config.detectors.reset_rate = GetNumber(k, n);
       }},
      {"fin_wait2_stuck_after",
       [&config](const std::string& k, const YAML::Node& n) {
         config.detectors.fin_wait2_stuck_after = GetDuration(k, n);
       }},
      {"idle_after",
       [&config](const std::string& k, const YAML::Node& n) {
         config.detectors.idle_after = GetDuration(k, n);
       }},
      {"dead_peer_retries",
       [&config](const std::string& k, const YAML::Node& n) {
         config.detectors.dead_peer_retries = GetUint(k, n);
       }},
  };
  const std::vector<YamlField> state = {
      {"directory",
       [&config](const std::string& k, const YAML::Node& n) {
         config.state.directory = GetString(k, n);
       }},
      {"save_interval",
       [&config](const std::string& k, const YAML::Node& n) {
         config.state.save_interval = GetDuration(k, n);
       }},
  };
  auto section = [](const std::vector<YamlField>& fields) {
    return [&fields](const std::string& k, const YAML::Node& n) {
      WalkYamlMap("config", k, n, fields);
    };
  };
  const std::vector<YamlField> top = {
      {"web", section(web)},
      {"log", section(log)},
      {"bpf", section(bpf)},
      {"tracking", section(tracking)},
      {"detectors", section(detectors)},
      {"state", section(state)},
  };
  WalkYamlMap("config", "", root, top);
}

}  // namespace

// Field validators shared by the YAML path and the flag path, so that the
// same value gets the same message whichever way it arrived; only the key
// differs ("web.listen_address" or "--web.listen-address").

void ValidateTelemetryPath(const std::string& key, const std::string& path) {
  if (path.empty() || path[0] != '/') {
    Fail(key, Quote(path) + " must start with \"/\"");
  }
  if (path == "/") Fail(key, "\"/\" is reserved for the landing page");
  if (path == "/healthz") {
    Fail(key, "\"/healthz\" is reserved for the health check");
  }
  for (char c : path) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '?' || c == '#') {
      Fail(key, Quote(path) +
                    " is not a plain URL path (no spaces, control "
                    "characters, '?' or '#')");
    }
  }
}

void ValidateLogLevel(const std::string& key, const std::string& level) {
  for (const char* name : kLogLevels) {
    if (level == name) return;
  }
  Fail(key, "invalid log level " + Quote(level) +
                " (want trace, debug, info, warn or error)");
}

LogFormat ParseLogFormat(const std::string& key, const std::string& text) {
  if (text == "text") return LogFormat::kText;
  if (text == "json") return LogFormat::kJson;
  Fail(key, "invalid log format " + Quote(text) + " (want text or json)");
}

AttachMode ParseAttachMode(const std::string& key, const std::string& text) {
  if (text == "auto") return AttachMode::kAuto;
  if (text == "tp_btf") return AttachMode::kTpBtf;
  if (text == "tracepoint") return AttachMode::kTracepoint;
  Fail(key, "invalid attach mode " + Quote(text) +
                " (want auto, tp_btf or tracepoint)");
}

void ValidateListenAddress(const std::string& key, const std::string& text) {
  ListenAddress address;
  try {
    address = ParseListenAddress(text);
  } catch (const HttpError& e) {
    Fail(key, e.what());
  }
  // The one difference from the endpoint's own parser (which tests use
  // with an ephemeral port): the daemon must be found by Prometheus.
  if (address.port == 0) {
    Fail(key, "port 0 in " + Quote(text) +
                  " would pick a random port that no scrape configuration "
                  "can name (want 1-65535)");
  }
}

std::chrono::milliseconds ParseDuration(const std::string& key,
                                        const std::string& text) {
  const std::string example = " (e.g. \"500ms\", \"30s\", \"5m\", \"1h30m\")";
  if (text.empty()) Fail(key, "empty duration" + example);
  if (text[0] == '-') Fail(key, "negative duration " + Quote(text));
  if (AllDigits(text)) {
    // Prometheus accepts a bare "0" and nothing else without a unit.
    if (text.find_first_not_of('0') == std::string::npos) {
      return milliseconds(0);
    }
    Fail(key, "duration " + Quote(text) + " has no unit" + example);
  }
  constexpr int64_t kMax = std::numeric_limits<milliseconds::rep>::max();
  int64_t total = 0;
  size_t next_unit = 0;  // index into kDurationUnits; enforces the order
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t digits_start = pos;
    while (pos < text.size() && IsDigit(text[pos])) ++pos;
    const size_t unit_start = pos;
    while (pos < text.size() && IsAsciiLetter(text[pos])) ++pos;
    if (digits_start == unit_start || unit_start == pos) {
      Fail(key, "invalid duration " + Quote(text) + example);
    }
    const std::string_view unit_name =
        std::string_view(text).substr(unit_start, pos - unit_start);
    size_t unit = 0;
    while (unit < std::size(kDurationUnits) &&
           unit_name != kDurationUnits[unit].name) {
      ++unit;
    }
    if (unit == std::size(kDurationUnits)) {
      Fail(key, "unknown unit " + Quote(unit_name) + " in duration " +
                    Quote(text) + " (want y, w, d, h, m, s or ms)");
    }
    if (unit < next_unit) {
      Fail(key, "invalid duration " + Quote(text) +
                    ": units must appear once each, largest first");
    }
    next_unit = unit + 1;
    uint64_t count = 0;
    const auto parsed = std::from_chars(text.data() + digits_start,
                                        text.data() + unit_start, count);
    const auto unit_ms = static_cast<uint64_t>(kDurationUnits[unit].ms);
    if (parsed.ec != std::errc() ||
        count > (static_cast<uint64_t>(kMax - total)) / unit_ms) {
      Fail(key, "duration " + Quote(text) + " is out of range");
    }
    total += static_cast<int64_t>(count * unit_ms);
  }
  return milliseconds(total);
}

Config ParseConfigYaml(const std::string& yaml_text) {
  Config config;
  ApplyYaml(LoadSingleDocument(yaml_text, "config"), config);
  ValidateConfig(config);
  return config;
}

namespace {

void ValidateFullReconcileInterval(const Config::Tracking& tracking) {
  const auto& full = tracking.full_reconcile_interval;
  if (!full) return;
  ValidatePositiveDuration("tracking.full_reconcile_interval", *full);
  // The safety dump cannot come more often than the check it backs up.
  if (*full < tracking.reconcile_interval) {
    Fail("tracking.full_reconcile_interval",
         "must be at least tracking.reconcile_interval (" +
             std::to_string(tracking.reconcile_interval.count()) +
             " ms), got " + std::to_string(full->count()) + " ms");
  }
}

void ValidateRings(const Config::Bpf& bpf) {
  const uint64_t ring = bpf.ring_buffer_bytes;
  if (ring < kMinRingBufferBytes) {
    Fail("bpf.ring_buffer_bytes",
         std::to_string(ring) + " is below the minimum of " +
             std::to_string(kMinRingBufferBytes) + " (one page)");
  }
  if (ring > kMaxRingBufferBytes) {
    Fail("bpf.ring_buffer_bytes",
         std::to_string(ring) + " is above the maximum of " +
             std::to_string(kMaxRingBufferBytes) + " (1 GiB)");
  }
  // The kernel's BPF ring buffer only accepts power-of-two sizes.
  if ((ring & (ring - 1)) != 0) {
    Fail("bpf.ring_buffer_bytes",
         std::to_string(ring) + " is not a power of two");
  }

  ValidateRange("bpf.ring_buffers", bpf.ring_buffers, 1, kMaxRingBuffers);
  // Every ring is locked memory.
  if (bpf.ring_buffers * ring > kMaxRingBytesInAll) {
    Fail("bpf.ring_buffers",
         std::to_string(bpf.ring_buffers) + " rings of " +
             std::to_string(ring) + " bytes are above the maximum of " +
             std::to_string(kMaxRingBytesInAll) + " bytes (4 GiB) in all");
  }
}

}  // namespace

void ValidateConfig(const Config& config) {
  ValidateListenAddress("web.listen_address", config.web.listen_address);
  ValidateTelemetryPath("web.telemetry_path", config.web.telemetry_path);
  if (config.web.config_file.find('\0') != std::string::npos) {
    Fail("web.config_file", "path contains a NUL byte");
  }
  ValidateLogLevel("log.level", config.log.level);
  if (std::string_view(LogFormatName(config.log.format)) == "unknown") {
    Fail("log.format", "invalid log format");
  }
  if (std::string_view(AttachModeName(config.bpf.attach)) == "unknown") {
    Fail("bpf.attach", "invalid attach mode");
  }

  ValidateRings(config.bpf);

  ValidateRange("tracking.max_tracked_sockets",
                config.tracking.max_tracked_sockets, 1, kMaxTrackedSockets);
  ValidatePositiveDuration("tracking.reconcile_interval",
                           config.tracking.reconcile_interval);
  ValidateFullReconcileInterval(config.tracking);
  ValidateRange("tracking.max_series_per_metric",
                config.tracking.max_series_per_metric, 1, kMaxSeriesPerMetric);

  ValidatePositiveDuration("detectors.close_wait_leak_after",
                           config.detectors.close_wait_leak_after);
  ValidateRatio("detectors.syn_flood_half_open_ratio",
                config.detectors.syn_flood_half_open_ratio);
  const double rate = config.detectors.synack_retransmit_rate;
  if (!(std::isfinite(rate) && rate > 0)) {
    Fail("detectors.synack_retransmit_rate",
         "must be a finite number greater than 0, got " + FormatDouble(rate));
  }
  ValidateRatio("detectors.port_exhaustion_ratio",
                config.detectors.port_exhaustion_ratio);
  ValidateRatio("detectors.time_wait_buckets_ratio",
                config.detectors.time_wait_buckets_ratio);
  for (auto [key, value] :
       {std::pair{"detectors.connect_failure_rate",
                  config.detectors.connect_failure_rate},
        std::pair{"detectors.reset_rate", config.detectors.reset_rate}}) {
    if (!(std::isfinite(value) && value > 0)) {
      Fail(key, "must be a finite number greater than 0, got " +
                    FormatDouble(value));
    }
  }
  ValidatePositiveDuration("detectors.fin_wait2_stuck_after",
                           config.detectors.fin_wait2_stuck_after);
  ValidatePositiveDuration("detectors.idle_after", config.detectors.idle_after);
  // tcpi_probes and tcpi_retransmits are 8-bit counters.
  ValidateRange("detectors.dead_peer_retries",
                config.detectors.dead_peer_retries, 1, 255);
  ValidatePositiveDuration("state.save_interval", config.state.save_interval);
  // Relative to the daemon's working directory would be a surprise under
  // systemd (it is /).
  const std::string& dir = config.state.directory;
  if (!dir.empty() && dir.front() != '/') {
    Fail("state.directory",
         "must be an absolute path (or \"\" to keep no state), got \"" + dir +
             "\"");
  }
  if (dir.find('\0') != std::string::npos || dir.size() > 1024) {
    Fail("state.directory", "is not a usable path");
  }
}

std::chrono::milliseconds FullReconcileInterval(
    const Config::Tracking& tracking) {
  if (tracking.full_reconcile_interval)
    return *tracking.full_reconcile_interval;
  return std::max(kDefaultFullReconcileInterval, tracking.reconcile_interval);
}

const char* AttachModeName(AttachMode mode) {
  switch (mode) {
    case AttachMode::kAuto:
      return "auto";
    case AttachMode::kTpBtf:
      return "tp_btf";
    case AttachMode::kTracepoint:
      return "tracepoint";
  }
  return "unknown";
}

const char* LogFormatName(LogFormat format) {
  switch (format) {
    case LogFormat::kText:
      return "text";
    case LogFormat::kJson:
      return "json";
  }
  return "unknown";
}

}  // namespace tcpstated
