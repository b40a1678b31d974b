// libFuzzer target: /proc/net/netstat and the TCP sysctls
// (tcpstated/kernel_settings.h).
//
// The whole input goes to ParseNetstat. For ParseTcpSettings, the input's
// lines are the sysctl files' contents, in this order (the kernel ends each
// with a newline, so one is put back):
//   ip_local_port_range, ip_local_reserved_ports, tcp_max_tw_buckets,
//   tcp_tw_reuse, tcp_fin_timeout, somaxconn, tcp_max_syn_backlog,
//   tcp_syncookies
// Fewer lines leave keys missing; lines after the eighth are "name=value"
// entries of other files (ignored by the parser), or override one of the
// eight when the name is theirs.
//
// Both parsers may throw std::invalid_argument only; anything else escaping
// aborts (a finding). What they return must satisfy the header's ranges.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

#include "tcpstated/kernel_settings.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_netstat: invariant violated: %s\n", what);
  std::abort();
}

void Check(bool ok, const char* what) {
  if (!ok) Fail(what);
}

constexpr const char* kSysctls[] = {
    "ip_local_port_range", "ip_local_reserved_ports", "tcp_max_tw_buckets",
    "tcp_tw_reuse",        "tcp_fin_timeout",         "somaxconn",
    "tcp_max_syn_backlog", "tcp_syncookies",
};

void FuzzNetstat(const std::string& text) {
  try {
    tcpstated::ParseNetstat(text);
  } catch (const std::invalid_argument& e) {
    Check(std::string_view(e.what()).rfind("netstat: ", 0) == 0,
          "ParseNetstat error without its prefix");
  }
}

void FuzzTcpSettings(std::string_view text) {
  std::map<std::string, std::string> files;
  size_t line_number = 0;
  while (!text.empty()) {
    const size_t newline = text.find('\n');
    const std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view()
                                             : text.substr(newline + 1);
    if (line_number < std::size(kSysctls)) {
      files[kSysctls[line_number]] = std::string(line) + "\n";
    } else {
      const size_t equals = line.find('=');
      const std::string_view name = line.substr(0, equals);
      const std::string_view value = equals == std::string_view::npos
                                         ? std::string_view()
                                         : line.substr(equals + 1);
      files[std::string(name)] = std::string(value) + "\n";
    }
    ++line_number;
  }

  tcpstated::TcpSettings settings;
  try {
    settings = tcpstated::ParseTcpSettings(files);
  } catch (const std::invalid_argument& e) {
    Check(std::string_view(e.what()).rfind("net.", 0) == 0,
          "ParseTcpSettings error does not name the sysctl");
    return;
  }
  Check(settings.port_range_lo >= 1 &&
            settings.port_range_lo <= settings.port_range_hi &&
            settings.port_range_hi <= 65535,
        "port range outside 1 <= low <= high <= 65535");
  for (const auto& [first, last] : settings.reserved_ports) {
    Check(first <= last && last <= 65535, "bad reserved range accepted");
  }
  Check(settings.tw_reuse >= 0 && settings.tw_reuse <= 2,
        "tcp_tw_reuse outside 0..2");
  Check(settings.syncookies >= 0 && settings.syncookies <= 255,
        "tcp_syncookies outside 0..255");
  Check(settings.max_tw_buckets <= 0x7fffffffu &&
            settings.fin_timeout_s <= 0x7fffffffu &&
            settings.somaxconn <= 0x7fffffffu &&
            settings.max_syn_backlog <= 0x7fffffffu,
        "int sysctl beyond INT_MAX");
  const uint32_t available = tcpstated::EphemeralPortsAvailable(settings);
  Check(available <= settings.port_range_hi - settings.port_range_lo + 1,
        "more ephemeral ports available than the range holds");
  if (settings.reserved_ports.empty()) {
    Check(available == settings.port_range_hi - settings.port_range_lo + 1,
          "ports missing without reserved ports");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  FuzzNetstat(text);
  FuzzTcpSettings(text);
  return 0;
}
