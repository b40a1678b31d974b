#include "tcpstated/debug_sockets.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <queue>
#include <vector>

namespace tcpstated {
namespace {

void AppendJsonString(std::string* out, std::string_view text) {
  out->push_back('"');
  for (char c : text) {
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          *out += buf;
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

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

std::string DebugSockets(const Mirror& mirror, const DebugQuery& query,
                         uint64_t now_ns) {
  // The `limit` oldest: a max-heap on entered_ns keeps the oldest seen so
  // far in O(matches log limit) time and O(limit) memory.
  auto newer = [](const SocketEntry* a, const SocketEntry* b) {
    return a->entered_ns < b->entered_ns;
  };
  std::priority_queue<const SocketEntry*, std::vector<const SocketEntry*>,
                      decltype(newer)>
      oldest(newer);
  uint64_t matched = 0;
  auto consider = [&](const SocketEntry& s) {
    if (!query.any_netns && s.netns != query.netns) return;
    if (!query.any_state && s.state != query.state) return;
    matched++;
    oldest.push(&s);
    if (oldest.size() > query.limit) oldest.pop();
  };
  if (!query.any_state && query.state == TcpState::kCloseWait) {
    mirror.ForEachCloseWait(consider);
  } else {
    mirror.ForEach(consider);
  }
  std::vector<const SocketEntry*> rows;
  while (!oldest.empty()) {
    rows.push_back(oldest.top());
    oldest.pop();
  }
  std::reverse(rows.begin(), rows.end());

  std::string out =
      "{\"matched\":" + std::to_string(matched) +
      ",\"truncated\":" + (matched > rows.size() ? "true" : "false") +
      ",\"sockets\":[";
  for (size_t i = 0; i < rows.size(); ++i) {
    const SocketEntry& s = *rows[i];
    bool ipv6 = (s.flags & kEntryIpv6) != 0;
    double age = now_ns > s.entered_ns
                     ? static_cast<double>(now_ns - s.entered_ns) / 1e9
                     : 0.0;
    char age_text[32];
    std::snprintf(age_text, sizeof(age_text), "%.3f", age);
    if (i > 0) out += ",";
    out += "{\"id\":" + std::to_string(s.id);
    out += ",\"netns\":" + std::to_string(s.netns);
    out += ",\"state\":";
    AppendJsonString(&out, StateName(s.state));
    out += ",\"timewait_socket\":";
    out += (s.flags & kEntryTimewaitSock) ? "true" : "false";
    out += ",\"local\":";
    AppendJsonString(&out, Endpoint(s.saddr, ipv6, s.sport));
    out += ",\"remote\":";
    AppendJsonString(&out, Endpoint(s.daddr, ipv6, s.dport));
    out += ",\"role\":";
    AppendJsonString(&out, RoleName(s.role));
    out += ",\"age_seconds\":";
    out += age_text;
    // Ages of sockets adopted mid-state or seeded from a dump count from
    // then: a lower bound.
    out += ",\"age_is_lower_bound\":";
    out += (s.flags & kEntryAgeUnknown) ? "true" : "false";
    if (const Owner* owner = mirror.OwnerOf(s)) {
      out += ",\"pid\":" + std::to_string(owner->tgid) + ",\"comm\":";
      AppendJsonString(&out, owner->comm);
    }
    out += "}";
  }
  out += "]}\n";
  return out;
}

}  // namespace tcpstated
