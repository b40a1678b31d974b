#include "tcpstated/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace tcpstated {
namespace {

using std::chrono::milliseconds;

constexpr uint64_t kMinRingBufferBytes = 4096;
constexpr uint64_t kMaxRingBufferBytes = uint64_t{1} << 30;
constexpr uint64_t kMaxTrackedSockets = 100000000;
constexpr uint64_t kMaxSeriesPerMetric = 10000;
// A configuration file is a few hundred bytes; the cap only keeps a path
// such as /dev/zero from eating memory forever.
constexpr size_t kMaxConfigFileBytes = size_t{16} << 20;

constexpr const char* kLogLevels[] = {"trace", "debug", "info", "warn",
                                      "error"};

[[noreturn]] void Fail(const std::string& key, const std::string& problem) {
  throw ConfigError(key + ": " + problem);
}

// Escapes everything that would break the one-line contract or confuse a
// terminal, and truncates so that a pasted blob cannot flood the log.
std::string Escape(std::string_view text, size_t max_len = 100) {
  std::string out;
  const bool truncated = text.size() > max_len;
  if (truncated) text = text.substr(0, max_len);
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\x";
          out += kHex[u >> 4];
          out += kHex[u & 0xf];
        } else {
          out += c;
        }
    }
  }
  if (truncated) out += "...";
  return out;
}

std::string Quote(std::string_view text, size_t max_len = 100) {
  return "\"" + Escape(text, max_len) + "\"";
}

// CLI11 and yaml-cpp messages occasionally span lines; the caller prints
// exactly one.
std::string OneLine(std::string_view text) {
  std::string out;
  bool pending_space = false;
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

// strerror() is not thread-safe and the header promises pure functions; the
// overloads absorb the difference between the GNU and XSI strerror_r.
[[maybe_unused]] std::string StrerrorResult(const char* result,
                                            const char* /*buf*/) {
  return result;
}
[[maybe_unused]] std::string StrerrorResult(int result, const char* buf) {
  return result == 0 ? std::string(buf) : std::string("Unknown error");
}
std::string ErrnoMessage(int err) {
  char buf[256] = {};
  return StrerrorResult(strerror_r(err, buf, sizeof(buf)), buf);
}

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

// ---------------------------------------------------------------------------
// Field validators shared by the YAML path and the flag path, so that the
// same value gets the same message whichever way it arrived; only the key
// differs ("web.listen_address" or "--web.listen-address").

bool IsIpv4Literal(std::string_view host) {
  int octets = 0;
  size_t pos = 0;
  while (true) {
    const size_t start = pos;
    while (pos < host.size() && IsDigit(host[pos])) ++pos;
    const size_t len = pos - start;
    // Leading zeros are rejected because some resolvers read them as octal.
    if (len == 0 || len > 3 || (len > 1 && host[start] == '0')) return false;
    if (std::stoi(std::string(host.substr(start, len))) > 255) return false;
    ++octets;
    if (pos == host.size()) break;
    if (host[pos] != '.' || octets == 4) return false;
    ++pos;
  }
  return octets == 4;
}

void ValidateListenAddress(const std::string& key, const std::string& addr) {
  const size_t colon = addr.rfind(':');
  if (colon == std::string::npos) {
    Fail(key, Quote(addr) +
                  " is not of the form [host]:port (e.g. \":9640\" or "
                  "\"127.0.0.1:9640\")");
  }
  const std::string_view host = std::string_view(addr).substr(0, colon);
  const std::string_view port = std::string_view(addr).substr(colon + 1);
  if (!AllDigits(port) || port.size() > 5 || std::stoi(std::string(port)) < 1 ||
      std::stoi(std::string(port)) > 65535) {
    Fail(key, "invalid port " + Quote(port) + " in " + Quote(addr) +
                  " (want 1-65535)");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    in6_addr v6{};
    std::string literal(host.substr(1, host.size() - 2));
    if (inet_pton(AF_INET6, literal.c_str(), &v6) == 1) return;
  }
  if (!host.empty() && host != "localhost" && !IsIpv4Literal(host)) {
    Fail(key, "invalid host " + Quote(host) + " in " + Quote(addr) +
                  " (want empty for all addresses, \"localhost\", an IPv4 "
                  "address or a bracketed IPv6 address)");
  }
}

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

// ---------------------------------------------------------------------------
// YAML scalars. yaml-cpp does not resolve plain scalars to types, so this
// applies the YAML 1.2 core schema itself: without it, 8080 and "8080" would
// be indistinguishable and a quoted number or a bare duration would slip
// through.

enum class ScalarKind { kNull, kBool, kInt, kFloat, kString, kBadTag };

constexpr std::string_view kStrTag = "tag:yaml.org,2002:str";
constexpr std::string_view kIntTag = "tag:yaml.org,2002:int";
constexpr std::string_view kFloatTag = "tag:yaml.org,2002:float";
constexpr std::string_view kBoolTag = "tag:yaml.org,2002:bool";
constexpr std::string_view kNullTag = "tag:yaml.org,2002:null";

bool IsCoreInt(std::string_view s) {
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
    const bool hex = s[1] == 'x';
    return std::all_of(s.begin() + 2, s.end(), [hex](char c) {
      return hex ? std::isxdigit(static_cast<unsigned char>(c)) != 0
                 : (c >= '0' && c <= '7');
    });
  }
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  return AllDigits(s);
}

bool IsInfOrNan(std::string_view s) {
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return true;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  return s == ".inf" || s == ".Inf" || s == ".INF";
}

bool IsCoreFloat(std::string_view s) {
  if (IsInfOrNan(s)) return true;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  size_t pos = 0;
  size_t mantissa_digits = 0;
  while (pos < s.size() && IsDigit(s[pos])) ++pos, ++mantissa_digits;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    while (pos < s.size() && IsDigit(s[pos])) ++pos, ++mantissa_digits;
  }
  if (mantissa_digits == 0) return false;
  if (pos < s.size() && (s[pos] == 'e' || s[pos] == 'E')) {
    ++pos;
    if (pos < s.size() && (s[pos] == '-' || s[pos] == '+')) ++pos;
    const size_t exponent_start = pos;
    while (pos < s.size() && IsDigit(s[pos])) ++pos;
    if (pos == exponent_start) return false;
  }
  return pos == s.size();
}

ScalarKind ResolvePlain(std::string_view s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") {
    return ScalarKind::kNull;
  }
  if (s == "true" || s == "True" || s == "TRUE" || s == "false" ||
      s == "False" || s == "FALSE") {
    return ScalarKind::kBool;
  }
  if (IsCoreInt(s)) return ScalarKind::kInt;
  if (IsCoreFloat(s)) return ScalarKind::kFloat;
  return ScalarKind::kString;
}

ScalarKind Classify(const YAML::Node& node) {
  if (node.IsNull()) return ScalarKind::kNull;
  const std::string& tag = node.Tag();
  // "!" is what yaml-cpp reports for quoted and block scalars.
  if (tag == "!" || tag == kStrTag) return ScalarKind::kString;
  const ScalarKind resolved = ResolvePlain(node.Scalar());
  if (tag == "?" || tag.empty()) return resolved;
  if (tag == kIntTag && resolved == ScalarKind::kInt) return resolved;
  if (tag == kFloatTag &&
      (resolved == ScalarKind::kFloat || resolved == ScalarKind::kInt)) {
    return ScalarKind::kFloat;
  }
  if (tag == kBoolTag && resolved == ScalarKind::kBool) return resolved;
  if (tag == kNullTag && resolved == ScalarKind::kNull) return resolved;
  return ScalarKind::kBadTag;
}

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Scalar:
      break;
  }
  const std::string& text = node.Scalar();
  switch (Classify(node)) {
    case ScalarKind::kNull:
      return "null";
    case ScalarKind::kBool:
      return "boolean " + text;
    case ScalarKind::kInt:
      return "integer " + Escape(text);
    case ScalarKind::kFloat:
      return "float " + Escape(text);
    case ScalarKind::kString:
      return "string " + Quote(text);
    case ScalarKind::kBadTag:
      break;
  }
  return "value " + Quote(text) + " tagged " + Quote(node.Tag());
}

[[noreturn]] void FailType(const std::string& key, const char* expected,
                           const YAML::Node& node) {
  if (node.IsScalar() && Classify(node) == ScalarKind::kBadTag) {
    Fail(key, "value " + Quote(node.Scalar()) +
                  " does not match its YAML tag " + Quote(node.Tag()));
  }
  Fail(key, std::string("expected ") + expected + ", got " + Describe(node));
}

std::string GetString(const std::string& key, const YAML::Node& node) {
  if (!node.IsScalar() || Classify(node) != ScalarKind::kString) {
    FailType(key, "a string", node);
  }
  return node.Scalar();
}

bool GetBool(const std::string& key, const YAML::Node& node) {
  if (!node.IsScalar() || Classify(node) != ScalarKind::kBool) {
    FailType(key, "true or false", node);
  }
  const char first = node.Scalar()[0];
  return first == 't' || first == 'T';
}

// A sequence of host names: letters, digits, '-', '.', or an IP literal
// (IPv6 in brackets, as in a Host header).
std::vector<std::string> GetHostList(const std::string& key,
                                     const YAML::Node& node) {
  if (node.IsNull()) return {};
  if (!node.IsSequence()) FailType(key, "a list of host names", node);
  std::vector<std::string> hosts;
  for (const YAML::Node& item : node) {
    std::string host = GetString(key, item);
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

struct CoreInt {
  bool negative = false;
  uint64_t magnitude = 0;
  bool overflow = false;
};

CoreInt ParseCoreInt(std::string_view s) {
  CoreInt out;
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
    base = s[1] == 'x' ? 16 : 8;
    s.remove_prefix(2);
  } else if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    out.negative = s[0] == '-';
    s.remove_prefix(1);
  }
  const auto result =
      std::from_chars(s.data(), s.data() + s.size(), out.magnitude, base);
  out.overflow = result.ec == std::errc::result_out_of_range;
  return out;
}

uint64_t GetUint(const std::string& key, const YAML::Node& node) {
  if (!node.IsScalar() || Classify(node) != ScalarKind::kInt) {
    FailType(key, "a non-negative integer", node);
  }
  const CoreInt value = ParseCoreInt(node.Scalar());
  if (value.negative && (value.magnitude != 0 || value.overflow)) {
    Fail(key, "expected a non-negative integer, got " + node.Scalar());
  }
  if (value.overflow) {
    Fail(key, "integer " + Escape(node.Scalar()) + " is too large");
  }
  return value.magnitude;
}

double GetNumber(const std::string& key, const YAML::Node& node) {
  const ScalarKind kind =
      node.IsScalar() ? Classify(node) : ScalarKind::kString;
  if (!node.IsScalar() ||
      (kind != ScalarKind::kInt && kind != ScalarKind::kFloat)) {
    FailType(key, "a number", node);
  }
  std::string_view text = node.Scalar();
  if (kind == ScalarKind::kInt) {
    const CoreInt value = ParseCoreInt(text);
    if (value.overflow) Fail(key, "number " + Escape(text) + " is too large");
    const auto magnitude = static_cast<double>(value.magnitude);
    return value.negative ? -magnitude : magnitude;
  }
  if (IsInfOrNan(text)) {
    if (text.find("nan") != std::string_view::npos ||
        text.find("NaN") != std::string_view::npos ||
        text.find("NAN") != std::string_view::npos) {
      return std::numeric_limits<double>::quiet_NaN();
    }
    const double inf = std::numeric_limits<double>::infinity();
    return text[0] == '-' ? -inf : inf;
  }
  bool negative = false;
  if (text[0] == '-' || text[0] == '+') {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  double value = 0;
  const auto result = std::from_chars(text.data(), text.data() + text.size(),
                                      value, std::chars_format::general);
  if (result.ec != std::errc() || result.ptr != text.data() + text.size()) {
    Fail(key, "number " + Escape(node.Scalar()) + " is out of range");
  }
  return negative ? -value : value;
}

milliseconds GetDuration(const std::string& key, const YAML::Node& node) {
  const ScalarKind kind = node.IsScalar() ? Classify(node) : ScalarKind::kNull;
  // A bare integer reaches ParseDuration too, which accepts 0 and explains
  // that anything else needs a unit.
  if (!node.IsScalar() ||
      (kind != ScalarKind::kString && kind != ScalarKind::kInt)) {
    FailType(key, "a duration such as \"30s\"", node);
  }
  return ParseDuration(key, node.Scalar());
}

// One handler per allowed key; anything else is an unknown key, which is how
// a typo such as "listen_adress" gets caught instead of silently ignored.
struct Field {
  const char* name;
  std::function<void(const std::string& key, const YAML::Node& value)> set;
};

void WalkMap(const std::string& path, const YAML::Node& node,
             const std::vector<Field>& fields) {
  const std::string where = path.empty() ? "config" : path;
  // "web:" with everything below it commented out is an empty section.
  if (node.IsNull()) return;
  if (!node.IsMap()) {
    Fail(where, std::string("expected a map") +
                    (path.empty() ? " at the top level" : "") + ", got " +
                    Describe(node));
  }
  std::set<std::string> seen;
  for (const auto& entry : node) {
    // Copies: yaml-cpp's iterator hands out a temporary proxy, and a
    // reference into it dangles at the end of the statement.
    const YAML::Node key_node = entry.first;
    const YAML::Node value = entry.second;
    if (!key_node.IsScalar()) {
      Fail(where, "keys must be strings, got " + Describe(key_node));
    }
    const std::string& name = key_node.Scalar();
    const std::string key = path.empty() ? name : path + "." + name;
    if (!seen.insert(name).second) {
      Fail("config", "duplicate key " + Quote(key));
    }
    const auto field =
        std::find_if(fields.begin(), fields.end(),
                     [&name](const Field& f) { return name == f.name; });
    if (field == fields.end()) Fail("config", "unknown key " + Quote(key));
    field->set(key, value);
  }
}

void ApplyYaml(const YAML::Node& root, Config& config) {
  const std::vector<Field> web = {
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
  const std::vector<Field> log = {
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
  const std::vector<Field> bpf = {
      {"attach",
       [&config](const std::string& k, const YAML::Node& n) {
         config.bpf.attach = ParseAttachMode(k, GetString(k, n));
       }},
      {"ring_buffer_bytes",
       [&config](const std::string& k, const YAML::Node& n) {
         config.bpf.ring_buffer_bytes = GetUint(k, n);
       }},
  };
  const std::vector<Field> tracking = {
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
  };
  const std::vector<Field> detectors = {
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
  auto section = [](const std::vector<Field>& fields) {
    return [&fields](const std::string& k, const YAML::Node& n) {
      WalkMap(k, n, fields);
    };
  };
  const std::vector<Field> top = {
      {"web", section(web)},
      {"log", section(log)},
      {"bpf", section(bpf)},
      {"tracking", section(tracking)},
      {"detectors", section(detectors)},
  };
  WalkMap("", root, top);
}

// ---------------------------------------------------------------------------
// Files and the command line.

struct FileCloser {
  int fd;
  ~FileCloser() { close(fd); }
};

[[noreturn]] void FailFile(const std::string& path, int err) {
  throw ConfigError("config file " + Quote(path, 4096) + ": " +
                    ErrnoMessage(err));
}

// CLI11 treats "--flag=" as a flag without a value, but an explicit empty
// value is how one clears a file setting (--web.config.file=), as kingpin
// allows; "--flag" "" is accepted, so rewrite to that.
std::vector<std::string> CollectArgs(int argc, const char* const* argv) {
  std::vector<std::string> args;
  bool after_terminator = false;
  for (int i = 1; argv != nullptr && i < argc && argv[i] != nullptr; ++i) {
    std::string arg = argv[i];
    if (arg == "--") after_terminator = true;
    if (!after_terminator && arg.size() > 3 && arg.compare(0, 2, "--") == 0 &&
        arg.find('=') == arg.size() - 1) {
      arg.pop_back();
      args.push_back(arg);
      args.emplace_back();
    } else {
      args.push_back(arg);
    }
  }
  // CLI11 consumes its argument vector from the back.
  std::reverse(args.begin(), args.end());
  return args;
}

void RejectExtras(const std::vector<std::string>& extras) {
  bool after_terminator = false;
  for (const std::string& arg : extras) {
    if (arg == "--" && !after_terminator) {
      after_terminator = true;
      continue;
    }
    if (!after_terminator && arg.size() > 1 && arg[0] == '-') {
      throw ConfigError("unknown flag " + Escape(arg.substr(0, arg.find('='))));
    }
    throw ConfigError("unexpected argument " + Quote(arg) +
                      " (tcpstated takes no positional arguments)");
  }
}

// CLI11 2.x words these as "--log.level: 1 required LEVEL missing" and
// "--log.level: At Most 1 required but received 2", which read like internal
// diagnostics. Anything not recognised passes through unchanged, so a CLI11
// upgrade can only make the message less polished, never wrong.
std::string RewordArgumentMismatch(const std::string& message) {
  const size_t colon = message.find(": ");
  if (message.rfind("--", 0) != 0 || colon == std::string::npos) {
    return message;
  }
  const std::string flag = message.substr(0, colon);
  const std::string_view rest = std::string_view(message).substr(colon + 2);
  const std::string_view missing = " missing";
  if (rest.size() > missing.size() &&
      rest.substr(rest.size() - missing.size()) == missing) {
    return flag + ": missing value";
  }
  if (rest.rfind("At Most", 0) == 0) return flag + ": given more than once";
  return message;
}

// "Could not convert: --config.check = maybe" -> names the flag first, like
// every other error.
std::string RewordConversionError(const std::string& message) {
  const std::string_view prefix = "Could not convert: ";
  const size_t equals = message.find(" = ");
  if (message.rfind(prefix, 0) != 0 || equals == std::string::npos ||
      equals < prefix.size()) {
    return message;
  }
  return message.substr(prefix.size(), equals - prefix.size()) +
         ": invalid value " + Quote(message.substr(equals + 3));
}

struct Flags {
  std::string config_file;
  std::string listen_address;
  std::string telemetry_path;
  std::string web_config_file;
  std::string log_level;
  std::string log_format;
  bool config_check = false;
  bool version = false;
};

CommandLine ParseCommandLineOrThrow(int argc, const char* const* argv) {
  CommandLine result;
  Flags flags;
  CLI::App app(
      "Watches every TCP connection through eBPF and exports connection-state "
      "pathologies (CLOSE_WAIT leaks, SYN floods, TIME_WAIT port exhaustion) "
      "as Prometheus metrics.",
      "tcpstated");
  // Extras are reported by RejectExtras in a shorter form than CLI11's.
  app.allow_extras();
  CLI::Option* config_file =
      app.add_option("--config.file", flags.config_file,
                     "YAML configuration file; flags override its values.")
          ->type_name("FILE");
  app.add_flag("--config.check", flags.config_check,
               "Validate the configuration, print it and exit.");
  CLI::Option* listen_address =
      app.add_option("--web.listen-address", flags.listen_address,
                     "Address to listen on for the web interface and "
                     "telemetry (default \":9640\").")
          ->type_name("ADDRESS");
  CLI::Option* telemetry_path =
      app.add_option("--web.telemetry-path", flags.telemetry_path,
                     "Path under which to expose metrics (default "
                     "\"/metrics\").")
          ->type_name("PATH");
  CLI::Option* web_config_file =
      app.add_option("--web.config.file", flags.web_config_file,
                     "Exporter-toolkit web configuration file (TLS, basic "
                     "authentication).")
          ->type_name("FILE");
  CLI::Option* log_level =
      app.add_option("--log.level", flags.log_level,
                     "Only log messages with the given severity or above: "
                     "trace, debug, info, warn, error (default info).")
          ->type_name("LEVEL");
  CLI::Option* log_format =
      app.add_option("--log.format", flags.log_format,
                     "Output format of log messages: text or json (default "
                     "text).")
          ->type_name("FORMAT");
  app.add_flag("--version", flags.version,
               "Print version information and exit.");

  try {
    std::vector<std::string> args = CollectArgs(argc, argv);
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    // Help wins over unknown flags, bad values and the config file: someone
    // asking for it is likely to have got the rest wrong.
    result.show_help = true;
    result.help_text = app.help();
    return result;
  } catch (const CLI::ArgumentMismatch& e) {
    throw ConfigError(RewordArgumentMismatch(OneLine(e.what())));
  } catch (const CLI::ConversionError& e) {
    throw ConfigError(RewordConversionError(OneLine(e.what())));
  } catch (const CLI::ParseError& e) {
    throw ConfigError(OneLine(e.what()));
  }
  if (flags.version) {
    result.show_version = true;
    return result;
  }
  RejectExtras(app.remaining());

  // Flags are checked before the file is read so that a typo on the command
  // line is reported as such, under the flag's name.
  if (log_level->count() > 0) ValidateLogLevel("--log.level", flags.log_level);
  LogFormat format = LogFormat::kText;
  if (log_format->count() > 0) {
    format = ParseLogFormat("--log.format", flags.log_format);
  }
  if (listen_address->count() > 0) {
    ValidateListenAddress("--web.listen-address", flags.listen_address);
  }
  if (telemetry_path->count() > 0) {
    ValidateTelemetryPath("--web.telemetry-path", flags.telemetry_path);
  }

  Config config;
  if (config_file->count() > 0) config = LoadConfigFile(flags.config_file);
  if (listen_address->count() > 0) {
    config.web.listen_address = flags.listen_address;
  }
  if (telemetry_path->count() > 0) {
    config.web.telemetry_path = flags.telemetry_path;
  }
  if (web_config_file->count() > 0) {
    config.web.config_file = flags.web_config_file;
  }
  if (log_level->count() > 0) config.log.level = flags.log_level;
  if (log_format->count() > 0) config.log.format = format;
  ValidateConfig(config);

  result.config = std::move(config);
  result.config_check = flags.config_check;
  return result;
}

}  // namespace

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

namespace {

// Walks the YAML event stream without building nodes. yaml-cpp 0.7 can
// report empty documents forever on some inputs (a lone ","), so LoadAll
// would never return; every real document consumes input, so more documents
// than bytes means the parser is stuck.
class DocumentCounter : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

void CheckParserTerminates(const std::string& yaml_text) {
  std::istringstream in(yaml_text);
  YAML::Parser parser(in);
  DocumentCounter counter;
  const size_t limit = yaml_text.size() + 2;
  for (size_t n = 0; parser.HandleNextDocument(counter);) {
    if (++n > limit) {
      Fail("config", "not a YAML document (the YAML parser makes no progress)");
    }
  }
}

}  // namespace

Config ParseConfigYaml(const std::string& yaml_text) {
  Config config;
  try {
    CheckParserTerminates(yaml_text);
    std::vector<YAML::Node> documents = YAML::LoadAll(yaml_text);
    // An empty trailing document ("---" at the end) is harmless; two real
    // ones would leave it unclear which one applies.
    documents.erase(
        std::remove_if(documents.begin(), documents.end(),
                       [](const YAML::Node& doc) { return doc.IsNull(); }),
        documents.end());
    if (documents.size() > 1) {
      Fail("config", "expected one YAML document, found " +
                         std::to_string(documents.size()));
    }
    if (!documents.empty()) ApplyYaml(documents.front(), config);
  } catch (const YAML::ParserException& e) {
    std::string where;
    if (e.mark.line >= 0 && e.mark.column >= 0) {
      where = " at line " + std::to_string(e.mark.line + 1) + ", column " +
              std::to_string(e.mark.column + 1);
    }
    Fail("config", "YAML syntax error" + where + ": " + OneLine(e.msg));
  } catch (const YAML::Exception& e) {
    Fail("config", "YAML error: " + OneLine(e.what()));
  }
  ValidateConfig(config);
  return config;
}

Config LoadConfigFile(const std::string& path) {
  // open() would silently stop at an embedded NUL and read another file.
  if (path.find('\0') != std::string::npos) FailFile(path, EINVAL);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) FailFile(path, errno);
  const FileCloser closer{fd};
  struct stat st;
  if (fstat(fd, &st) != 0) FailFile(path, errno);
  if (S_ISDIR(st.st_mode)) FailFile(path, EISDIR);
  std::string text;
  char buf[8192];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      FailFile(path, errno);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxConfigFileBytes) {
      throw ConfigError("config file " + Quote(path, 4096) + ": larger than " +
                        std::to_string(kMaxConfigFileBytes >> 20) + " MiB");
    }
  }
  return ParseConfigYaml(text);
}

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

  const uint64_t ring = config.bpf.ring_buffer_bytes;
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

  ValidateRange("tracking.max_tracked_sockets",
                config.tracking.max_tracked_sockets, 1, kMaxTrackedSockets);
  ValidatePositiveDuration("tracking.reconcile_interval",
                           config.tracking.reconcile_interval);
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
  ValidatePositiveDuration("detectors.fin_wait2_stuck_after",
                           config.detectors.fin_wait2_stuck_after);
  ValidatePositiveDuration("detectors.idle_after", config.detectors.idle_after);
  // tcpi_probes and tcpi_retransmits are 8-bit counters.
  ValidateRange("detectors.dead_peer_retries",
                config.detectors.dead_peer_retries, 1, 255);
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

CommandLine ParseCommandLine(int argc, const char* const* argv) {
  try {
    return ParseCommandLineOrThrow(argc, argv);
  } catch (const ConfigError&) {
    throw;
  } catch (const CLI::Error& e) {
    // Only construction errors get here, i.e. a bug in the option table.
    throw ConfigError("command line: " + OneLine(e.what()));
  }
}

}  // namespace tcpstated
