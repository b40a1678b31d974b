// /debug/sockets: the sockets behind a detection, for incident response.
//
//   /debug/sockets?state=close_wait&limit=100[&netns=4026531840]
//
// Lists the oldest matching sockets first (4-tuple, state, age, role, owner,
// netns) as JSON; at most `limit` (default 100, at most 1000) of them, with
// the number that matched, so the output is bounded whatever the table holds.
//
// The scan never holds the mirror's lock for long: it copies the matching
// sockets a slice of the table at a time (the lock is taken per slice, so
// the event consumer waits microseconds, not a whole scan), keeps only the
// `limit` oldest, and builds the JSON after letting go. The JSON is always
// valid: strings from the kernel (process names can hold any bytes) are
// escaped, and bytes that are not UTF-8 become U+FFFD.
//
// Thread-safety: ParseDebugQuery and DebugSocketsJson are pure;
// CollectDebugSockets takes `mutex` (the mirror's) for each slice.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "tcpstated/mirror.h"

namespace tcpstated {

struct DebugQuery {
  bool any_state = true;
  TcpState state = TcpState::kCloseWait;
  size_t limit = 100;
  bool any_netns = true;
  uint32_t netns = 0;
};

inline constexpr size_t kDebugSocketsMaxLimit = 1000;

// Parses the query string; false with a one-line `error` on an unknown
// parameter, state or a bad number.
bool ParseDebugQuery(const std::string& query, DebugQuery* out,
                     std::string* error);

// One matching socket, copied out of the mirror.
struct DebugRow {
  uint64_t id = 0;
  uint32_t netns = 0;
  TcpState state = TcpState::kClose;
  bool timewait_socket = false;
  std::string local;  // "addr:port", "[v6]:port"
  std::string remote;
  Role role = Role::kUnknown;
  uint64_t entered_ns = 0;
  bool age_is_lower_bound = false;
  bool has_owner = false;
  uint32_t pid = 0;
  std::string comm;  // as the kernel had it: any bytes
};

struct DebugSnapshot {
  uint64_t matched = 0;
  std::vector<DebugRow> rows;  // the `limit` oldest, oldest first
};

// Table slots scanned per hold of the lock.
inline constexpr size_t kDebugSocketsSliceSlots = 4096;

// Copies the matching sockets out of `mirror`, holding `mutex` for one
// slice of the table at a time.
DebugSnapshot CollectDebugSockets(const Mirror& mirror, std::mutex& mutex,
                                  const DebugQuery& query);

// The JSON document for a snapshot, ages at `now_ns` (CLOCK_MONOTONIC).
std::string DebugSocketsJson(const DebugSnapshot& snapshot, uint64_t now_ns);

}  // namespace tcpstated
