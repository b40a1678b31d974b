// /debug/sockets: the sockets behind a detection, for incident response.
//
//   /debug/sockets?state=close_wait&limit=100[&netns=4026531840]
//
// Lists the oldest matching sockets first (4-tuple, state, age, role, owner,
// netns) as JSON; at most `limit` (default 100, at most 1000) of them, with
// the number that matched, so the output is bounded whatever the table holds.
//
// Thread-safety: pure functions; the caller holds the mirror's lock while
// calling DebugSockets.
#pragma once

#include <cstdint>
#include <string>

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

// JSON listing of the matching sockets at `now_ns` (CLOCK_MONOTONIC).
std::string DebugSockets(const Mirror& mirror, const DebugQuery& query,
                         uint64_t now_ns);

}  // namespace tcpstated
