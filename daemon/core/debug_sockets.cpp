#include "tcpstated/debug_sockets.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_set>
#include <vector>

namespace tcpstated {
namespace {

bool ParseNumber(std::string_view text, uint64_t* value) {
  if (text.empty()) return false;
  auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), *value);
  return ec == std::errc() && end == text.data() + text.size();
}

std::string Endpoint(const Address& address, bool ipv6, uint16_t port) {
  std::string host = FormatAddress(address, ipv6);
  return ipv6 ? "[" + host + "]:" + std::to_string(port)
              : host + ":" + std::to_string(port);
}

}  // namespace

bool ParseDebugQuery(const std::string& query, DebugQuery* out,
                     std::string* error) {
  DebugQuery q;
  size_t pos = 0;
  while (pos <= query.size() && !query.empty()) {
    size_t amp = query.find('&', pos);
    std::string_view pair(
        query.data() + pos,
        (amp == std::string::npos ? query.size() : amp) - pos);
    pos = amp == std::string::npos ? query.size() + 1 : amp + 1;
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (key == "state") {
      bool found = false;
      for (TcpState s : kReportedStates) {
        if (StateName(s) == value) {
          q.state = s;
          q.any_state = false;
          found = true;
        }
      }
      if (!found && value != "all") {
        *error = "unknown state \"" + std::string(value).substr(0, 32) +
                 "\" (use a tcpstated_sockets state label, or all)";
        return false;
      }
    } else if (key == "limit") {
      uint64_t n = 0;
      if (!ParseNumber(value, &n) || n == 0 || n > kDebugSocketsMaxLimit) {
        *error = "limit must be 1-" + std::to_string(kDebugSocketsMaxLimit);
        return false;
      }
      q.limit = static_cast<size_t>(n);
    } else if (key == "netns") {
      uint64_t n = 0;
      if (!ParseNumber(value, &n) || n > UINT32_MAX) {
        *error = "netns must be a namespace inode number";
        return false;
      }
      q.netns = static_cast<uint32_t>(n);
      q.any_netns = false;
    } else {
      *error = "unknown parameter \"" + std::string(key).substr(0, 32) +
               "\" (state, limit, netns)";
      return false;
    }
  }
  *out = q;
  return true;
}

DebugSnapshot CollectDebugSockets(const Mirror& mirror, std::mutex& mutex,
                                  const DebugQuery& query) {
  // The `limit` oldest: a max-heap on entered_ns keeps the oldest seen so
  // far in O(matches log limit) time and O(limit) memory.
  auto newer = [](const DebugRow& a, const DebugRow& b) {
    return a.entered_ns < b.entered_ns;
  };
  std::priority_queue<DebugRow, std::vector<DebugRow>, decltype(newer)> oldest(
      newer);
  // Between slices an entry can move (rehash, erase); it is listed once.
  std::unordered_set<uint64_t> seen;
  DebugSnapshot snapshot;
  size_t cursor = 0;
  do {
    std::lock_guard<std::mutex> lock(mutex);
    cursor = mirror.ForEachInSlots(
        cursor, kDebugSocketsSliceSlots, [&](const SocketEntry& s) {
          if (!query.any_netns && s.netns != query.netns) return;
          if (!query.any_state && s.state != query.state) return;
          if (!seen.insert(s.id).second) return;
          snapshot.matched++;
          if (oldest.size() >= query.limit &&
              s.entered_ns >= oldest.top().entered_ns) {
            return;  // newer than all we keep: skip the copies
          }
          const bool ipv6 = (s.flags & kEntryIpv6) != 0;
          DebugRow row;
          row.id = s.id;
          row.netns = s.netns;
          row.state = s.state;
          row.timewait_socket = (s.flags & kEntryTimewaitSock) != 0;
          row.local = Endpoint(s.saddr, ipv6, s.sport);
          row.remote = Endpoint(s.daddr, ipv6, s.dport);
          row.role = s.role;
          row.entered_ns = s.entered_ns;
          row.age_is_lower_bound = (s.flags & kEntryAgeUnknown) != 0;
          if (const Owner* owner = mirror.OwnerOf(s)) {
            row.has_owner = true;
            row.pid = owner->tgid;
            row.comm = owner->comm;
          }
          oldest.push(std::move(row));
          if (oldest.size() > query.limit) oldest.pop();
        });
  } while (cursor != 0);
  while (!oldest.empty()) {
    snapshot.rows.push_back(oldest.top());
    oldest.pop();
  }
  std::reverse(snapshot.rows.begin(), snapshot.rows.end());
  return snapshot;
}

std::string DebugSocketsJson(const DebugSnapshot& snapshot, uint64_t now_ns) {
  nlohmann::json sockets = nlohmann::json::array();
  for (const DebugRow& row : snapshot.rows) {
    const double age = now_ns > row.entered_ns
                           ? static_cast<double>(now_ns - row.entered_ns) / 1e9
                           : 0.0;
    nlohmann::json socket = {
        {"id", row.id},
        {"netns", row.netns},
        {"state", std::string(StateName(row.state))},
        {"timewait_socket", row.timewait_socket},
        {"local", row.local},
        {"remote", row.remote},
        {"role", std::string(RoleName(row.role))},
        {"age_seconds", std::round(age * 1000) / 1000},
        // Ages of sockets adopted mid-state or seeded from a dump count
        // from then: a lower bound.
        {"age_is_lower_bound", row.age_is_lower_bound},
    };
    if (row.has_owner) {
      socket["pid"] = row.pid;
      socket["comm"] = row.comm;
    }
    sockets.push_back(std::move(socket));
  }
  const nlohmann::json document = {
      {"matched", snapshot.matched},
      {"truncated", snapshot.matched > snapshot.rows.size()},
      {"sockets", std::move(sockets)},
  };
  // replace: bytes that are not UTF-8 (a process can name itself anything
  // with prctl(PR_SET_NAME)) become U+FFFD instead of an exception.
  return document.dump(-1, ' ', false,
                       nlohmann::json::error_handler_t::replace) +
         "\n";
}

}  // namespace tcpstated
