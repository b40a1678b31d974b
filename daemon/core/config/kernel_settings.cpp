#include "tcpstated/kernel_settings.h"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace tcpstated {
namespace {

constexpr std::string_view kWhitespace = " \t\n\r\v\f";

std::string_view Trim(std::string_view text) {
  size_t first = text.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  size_t last = text.find_last_not_of(kWhitespace);
  return text.substr(first, last - first + 1);
}

std::vector<std::string_view> SplitWhitespace(std::string_view text) {
  std::vector<std::string_view> tokens;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t start = text.find_first_not_of(kWhitespace, pos);
    if (start == std::string_view::npos) break;
    size_t end = text.find_first_of(kWhitespace, start);
    if (end == std::string_view::npos) end = text.size();
    tokens.push_back(text.substr(start, end - start));
    pos = end;
  }
  return tokens;
}

// A bounded, printable excerpt of untrusted text for an error message, so a
// fuzzed megabyte of binary never ends up in a log line.
std::string Quote(std::string_view text) {
  constexpr size_t kMax = 32;
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < kMax; ++i) {
    char c = text[i];
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  if (text.size() > kMax) out += "...";
  out += "'";
  return out;
}

// Strict decimal: digits and nothing else (no sign, no spaces); false on
// overflow.
bool ParseUnsigned(std::string_view text, uint64_t* value) {
  if (text.empty()) return false;
  uint64_t result = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (result > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
      return false;
    }
    result = result * 10 + digit;
  }
  *value = result;
  return true;
}

// As ParseUnsigned with an optional leading '-'.
bool ParseSigned(std::string_view text, int64_t* value) {
  bool negative = !text.empty() && text.front() == '-';
  if (negative) text.remove_prefix(1);
  uint64_t magnitude = 0;
  if (!ParseUnsigned(text, &magnitude)) return false;
  constexpr uint64_t kMaxMagnitude =
      static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (magnitude > kMaxMagnitude + (negative ? 1 : 0)) return false;
  // Two's complement negation via unsigned arithmetic: defined for INT64_MIN.
  *value = negative ? static_cast<int64_t>(0 - magnitude)
                    : static_cast<int64_t>(magnitude);
  return true;
}

[[noreturn]] void Invalid(std::string_view sysctl, const std::string& what) {
  throw std::invalid_argument(std::string(sysctl) + ": " + what);
}

// Maps a sysctl file name to the dotted name an operator types.
std::string SysctlName(std::string_view file) {
  return (file == "somaxconn" ? "net.core." : "net.ipv4.") + std::string(file);
}

const std::string& Lookup(const std::map<std::string, std::string>& files,
                          const char* file) {
  auto it = files.find(file);
  if (it == files.end()) Invalid(SysctlName(file), "missing");
  return it->second;
}

// One integer within [min, max] (the kernel's own bounds for that sysctl).
int64_t IntegerSysctl(const std::map<std::string, std::string>& files,
                      const char* file, int64_t min, int64_t max) {
  const std::string& raw = Lookup(files, file);
  int64_t value = 0;
  if (!ParseSigned(Trim(raw), &value)) {
    Invalid(SysctlName(file), "not an integer: " + Quote(raw));
  }
  if (value < min || value > max) {
    Invalid(SysctlName(file), "out of range [" + std::to_string(min) + ", " +
                                  std::to_string(max) +
                                  "]: " + std::to_string(value));
  }
  return value;
}

// proc_dointvec sysctls accept any int, negatives included; the kernel
// treats a negative limit like 0 (every timewait socket overflows, the SYN
// backlog floor applies, the FIN timeout floor applies).
uint32_t NonNegativeIntSysctl(const std::map<std::string, std::string>& files,
                              const char* file) {
  int64_t value =
      IntegerSysctl(files, file, std::numeric_limits<int32_t>::min(),
                    std::numeric_limits<int32_t>::max());
  return value < 0 ? 0 : static_cast<uint32_t>(value);
}

uint32_t Port(std::string_view text, const char* file) {
  uint64_t value = 0;
  if (!ParseUnsigned(text, &value) || value > 65535) {
    Invalid(SysctlName(file), "not a port number: " + Quote(text));
  }
  return static_cast<uint32_t>(value);
}

void ParsePortRange(const std::string& raw, TcpSettings* settings) {
  constexpr const char* kFile = "ip_local_port_range";
  std::vector<std::string_view> tokens = SplitWhitespace(raw);
  if (tokens.size() != 2) {
    Invalid(SysctlName(kFile), "expected two ports: " + Quote(raw));
  }
  uint32_t lo = Port(tokens[0], kFile);
  uint32_t hi = Port(tokens[1], kFile);
  // The kernel's own bounds: 1..65535 and low <= high.
  if (lo == 0 || lo > hi) {
    Invalid(SysctlName(kFile), "not a range: " + Quote(raw));
  }
  settings->port_range_lo = lo;
  settings->port_range_hi = hi;
}

// "" or "8080,9000-9100": proc_do_large_bitmap's format.
void ParseReservedPorts(const std::string& raw, TcpSettings* settings) {
  constexpr const char* kFile = "ip_local_reserved_ports";
  std::string_view text = Trim(raw);
  settings->reserved_ports.clear();
  if (text.empty()) return;
  size_t pos = 0;
  for (;;) {
    size_t comma = text.find(',', pos);
    std::string_view item = Trim(text.substr(
        pos, comma == std::string_view::npos ? std::string_view::npos
                                             : comma - pos));
    size_t dash = item.find('-');
    uint32_t first = 0;
    uint32_t last = 0;
    if (dash == std::string_view::npos) {
      first = last = Port(item, kFile);
    } else {
      first = Port(Trim(item.substr(0, dash)), kFile);
      last = Port(Trim(item.substr(dash + 1)), kFile);
      if (first > last) {
        Invalid(SysctlName(kFile), "range backwards: " + Quote(item));
      }
    }
    settings->reserved_ports.emplace_back(first, last);
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
}

struct CounterField {
  std::string_view name;
  uint64_t TcpExtCounters::*member;
};

constexpr CounterField kCounterFields[] = {
    {"ListenOverflows", &TcpExtCounters::ListenOverflows},
    {"ListenDrops", &TcpExtCounters::ListenDrops},
    {"TCPReqQFullDrop", &TcpExtCounters::TCPReqQFullDrop},
    {"TCPReqQFullDoCookies", &TcpExtCounters::TCPReqQFullDoCookies},
    {"SyncookiesSent", &TcpExtCounters::SyncookiesSent},
    {"SyncookiesRecv", &TcpExtCounters::SyncookiesRecv},
    {"SyncookiesFailed", &TcpExtCounters::SyncookiesFailed},
    {"TCPTimeWaitOverflow", &TcpExtCounters::TCPTimeWaitOverflow},
    {"TW", &TcpExtCounters::TW},
    {"TWRecycled", &TcpExtCounters::TWRecycled},
    {"TWKilled", &TcpExtCounters::TWKilled},
    {"EmbryonicRsts", &TcpExtCounters::EmbryonicRsts},
};

[[noreturn]] void BadNetstat(const std::string& what) {
  throw std::invalid_argument("netstat: " + what);
}

// "Section: a b c" -> section and the tokens after the colon.
void SplitNetstatLine(std::string_view line, size_t number,
                      std::string_view* section,
                      std::vector<std::string_view>* tokens) {
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    BadNetstat("line " + std::to_string(number) + ": no 'Section:' prefix");
  }
  *section = line.substr(0, colon);
  if (section->find_first_of(kWhitespace) != std::string_view::npos) {
    BadNetstat("line " + std::to_string(number) + ": bad section name " +
               Quote(*section));
  }
  *tokens = SplitWhitespace(line.substr(colon + 1));
}

}  // namespace

TcpSettings ParseTcpSettings(const std::map<std::string, std::string>& files) {
  TcpSettings settings;
  ParsePortRange(Lookup(files, "ip_local_port_range"), &settings);
  ParseReservedPorts(Lookup(files, "ip_local_reserved_ports"), &settings);
  settings.max_tw_buckets = NonNegativeIntSysctl(files, "tcp_max_tw_buckets");
  settings.tw_reuse =
      static_cast<int>(IntegerSysctl(files, "tcp_tw_reuse", 0, 2));
  settings.fin_timeout_s = NonNegativeIntSysctl(files, "tcp_fin_timeout");
  // proc_dointvec_minmax with a floor of 0.
  settings.somaxconn = static_cast<uint32_t>(IntegerSysctl(
      files, "somaxconn", 0, std::numeric_limits<int32_t>::max()));
  settings.max_syn_backlog = NonNegativeIntSysctl(files, "tcp_max_syn_backlog");
  // A u8 without bounds: any non-zero value enables cookies.
  settings.syncookies =
      static_cast<int>(IntegerSysctl(files, "tcp_syncookies", 0, 255));
  return settings;
}

uint32_t EphemeralPortsAvailable(const TcpSettings& settings) {
  uint32_t lo = settings.port_range_lo;
  uint32_t hi = settings.port_range_hi;
  if (lo > hi) return 0;
  // Clip to the ephemeral range, then merge so overlaps count once.
  std::vector<std::pair<uint32_t, uint32_t>> clipped;
  for (auto [first, last] : settings.reserved_ports) {
    if (first > last) std::swap(first, last);
    if (last < lo || first > hi) continue;
    clipped.emplace_back(std::max(first, lo), std::min(last, hi));
  }
  std::sort(clipped.begin(), clipped.end());
  uint64_t reserved = 0;
  uint64_t covered_to = 0;  // one past the last port counted so far
  for (const auto& [first, last] : clipped) {
    uint64_t start = std::max<uint64_t>(first, covered_to);
    uint64_t end = static_cast<uint64_t>(last) + 1;
    if (end > start) reserved += end - start;
    covered_to = std::max(covered_to, end);
  }
  uint64_t size = static_cast<uint64_t>(hi) - lo + 1;
  return static_cast<uint32_t>(size - std::min(size, reserved));
}

TcpExtCounters ParseNetstat(const std::string& text) {
  // Collect the non-blank lines first; the format pairs them two by two.
  std::vector<std::pair<std::string_view, size_t>> lines;  // text, number
  std::string_view rest = text;
  size_t number = 0;
  while (!rest.empty()) {
    size_t newline = rest.find('\n');
    std::string_view line = rest.substr(0, newline);
    rest = newline == std::string_view::npos ? std::string_view()
                                             : rest.substr(newline + 1);
    ++number;
    if (!Trim(line).empty()) lines.emplace_back(line, number);
  }
  if (lines.empty()) BadNetstat("empty");

  TcpExtCounters counters;
  bool seen_tcpext = false;
  std::vector<std::string_view> names;
  std::vector<std::string_view> values;
  for (size_t i = 0; i < lines.size(); i += 2) {
    std::string_view section;
    SplitNetstatLine(lines[i].first, lines[i].second, &section, &names);
    if (i + 1 == lines.size()) {
      BadNetstat(Quote(section) + " header without a value line");
    }
    std::string_view value_section;
    SplitNetstatLine(lines[i + 1].first, lines[i + 1].second, &value_section,
                     &values);
    if (value_section != section) {
      BadNetstat("line " + std::to_string(lines[i + 1].second) +
                 ": values for " + Quote(value_section) + " after header " +
                 Quote(section));
    }
    if (names.size() != values.size()) {
      BadNetstat(Quote(section) + ": " + std::to_string(names.size()) +
                 " names but " + std::to_string(values.size()) + " values");
    }
    bool is_tcpext = section == "TcpExt";
    if (is_tcpext && seen_tcpext) BadNetstat("two TcpExt sections");
    seen_tcpext = seen_tcpext || is_tcpext;
    std::unordered_set<std::string_view> seen_names;
    for (size_t k = 0; k < names.size(); ++k) {
      uint64_t value = 0;
      if (!ParseUnsigned(values[k], &value)) {
        BadNetstat(Quote(section) + " " + Quote(names[k]) + ": not a number " +
                   Quote(values[k]));
      }
      if (!is_tcpext) continue;
      if (!seen_names.insert(names[k]).second) {
        BadNetstat("TcpExt " + Quote(names[k]) + " twice");
      }
      for (const CounterField& field : kCounterFields) {
        if (field.name == names[k]) counters.*field.member = value;
      }
    }
  }
  if (!seen_tcpext) BadNetstat("no TcpExt section");
  return counters;
}

}  // namespace tcpstated
