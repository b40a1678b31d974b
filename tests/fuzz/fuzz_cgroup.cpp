// libFuzzer target: UnitFromCgroupPath (tcpstated/owners.h), which turns a
// /proc/<pid>/cgroup path or line into a metric label value.
//
// Contract checked: it never throws; the unit returned is "" or a valid
// systemd unit name (1..255 bytes of [A-Za-z0-9:_.@\-] plus the '\' systemd
// uses for escapes, ending in a unit suffix with a non-empty stem) that
// appears in the first line of the input; it is a pure function of the first
// line (what follows a newline does not matter); and "/<unit>" gives the
// unit back. (A bare unit is not checked: "1:a:b.service" reads as a
// /proc/<pid>/cgroup line, as documented.)

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tcpstated/owners.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_cgroup: invariant violated: %s\n", what);
  std::abort();
}

void Check(bool ok, const char* what) {
  if (!ok) Fail(what);
}

bool UnitChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z') || c == ':' || c == '-' || c == '_' ||
         c == '.' || c == '@' || c == '\\';
}

bool HasUnitSuffix(std::string_view unit) {
  for (std::string_view suffix :
       {".service", ".scope", ".socket", ".mount", ".swap", ".timer"}) {
    if (unit.size() > suffix.size() &&
        unit.substr(unit.size() - suffix.size()) == suffix) {
      return true;
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string unit = tcpstated::UnitFromCgroupPath(input);
  if (unit.empty()) return 0;

  Check(unit.size() <= 255, "unit name longer than 255 bytes");
  Check(std::all_of(unit.begin(), unit.end(), UnitChar),
        "unit name with a character systemd does not allow");
  Check(HasUnitSuffix(unit), "unit name without a unit suffix");
  const std::string_view first_line = input.substr(0, input.find('\n'));
  Check(first_line.find(unit) != std::string_view::npos,
        "unit name not taken from the first line");
  Check(tcpstated::UnitFromCgroupPath(first_line) == unit,
        "result depends on what follows the first line");
  Check(tcpstated::UnitFromCgroupPath("/" + unit) == unit,
        "\"/<unit>\" does not give <unit>");
  return 0;
}
