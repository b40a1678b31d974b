// libFuzzer target: the state file (tcpstated/state_file.h), read back at
// start-up from a disk anything may have happened to.
//
// ParseStateFile must never throw or crash; what it accepts must be within
// the cap, and must survive FormatStateFile and a second parse unchanged
// (what the daemon writes back after a restart is what it read).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tcpstated/state_file.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_state_file: invariant violated: %s\n", what);
    std::abort();
  }
}

bool Same(const tcpstated::SavedSocket& a, const tcpstated::SavedSocket& b) {
  return a.netns == b.netns && a.netns_cookie == b.netns_cookie &&
         a.cookie == b.cookie && a.state == b.state && a.ipv6 == b.ipv6 &&
         a.saddr == b.saddr && a.daddr == b.daddr && a.sport == b.sport &&
         a.dport == b.dport && a.entered_ns == b.entered_ns &&
         a.lower_bound == b.lower_bound;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  tcpstated::StateFile file;
  std::string error;
  if (!tcpstated::ParseStateFile(text, &file, &error)) {
    Check(!error.empty(), "refused without a reason");
    return 0;
  }
  Check(file.sockets.size() <= tcpstated::kMaxStateEntries, "over the cap");
  const std::string again = tcpstated::FormatStateFile(file);
  tcpstated::StateFile reread;
  Check(tcpstated::ParseStateFile(again, &reread, &error),
        "its own output refused");
  Check(reread.written_ns == file.written_ns, "written_ns changed");
  Check(reread.sockets.size() == file.sockets.size(), "records lost");
  for (size_t i = 0; i < file.sockets.size(); ++i) {
    Check(Same(reread.sockets[i], file.sockets[i]), "a record changed");
  }
  return 0;
}
