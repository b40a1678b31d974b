// Ages that survive a restart: what the mirror hands to the state file
// (state_file.h) and takes back from it after the seeding dump.
#include <algorithm>
#include <queue>
#include <unordered_map>

#include "daemon/core/mirror/mirror_table_inl.h"
#include "tcpstated/mirror.h"

namespace tcpstated {
namespace {

// What a restart would lose first: a CLOSE_WAIT leak's age (the leak
// detector's input), then FIN_WAIT2 and ESTABLISHED ages (peer liveness).
int SaveRank(TcpState state) {
  switch (state) {
    case TcpState::kCloseWait:
      return 0;
    case TcpState::kFinWait2:
      return 1;
    case TcpState::kEstablished:
      return 2;
    default:
      return -1;
  }
}

// The kernel's clocks tick in jiffies and the dump is a little older than
// `now`: a saved time this close to a tcp_info bound still agrees with it.
constexpr uint64_t kTcpInfoSlackNs = 2 * kNsPerSec;

// A CLOSE_WAIT socket entered its state when the peer's FIN arrived: after
// the last data it received (a bare FIN does not count as data) and no
// later than the last ACK (the FIN carried one). A saved time outside
// those bounds belongs to another socket that had the same 4-tuple.
bool AgreesWithTcpInfo(const DiagSocket& d, uint64_t entered_ns,
                       uint64_t now_ns) {
  if (d.last_ack_ms == kNoTcpInfo || d.last_data_recv_ms == kNoTcpInfo) {
    return false;
  }
  const uint64_t ms = 1000000ULL;
  const uint64_t data_ns = static_cast<uint64_t>(d.last_data_recv_ms) * ms;
  const uint64_t ack_ns = static_cast<uint64_t>(d.last_ack_ms) * ms;
  const uint64_t earliest = now_ns - std::min(now_ns, data_ns);
  const uint64_t latest = now_ns - std::min(now_ns, ack_ns);
  return entered_ns + kTcpInfoSlackNs >= earliest &&
         entered_ns <= latest + kTcpInfoSlackNs;
}

TupleKey KeyOfSaved(const SavedSocket& s) {
  return TupleKey{s.netns, s.sport, s.dport, s.saddr, s.daddr};
}

}  // namespace

std::vector<SavedSocket> Mirror::SavedSockets(size_t max,
                                              bool ids_are_cookies) const {
  // The `max` best by (rank, age), in a heap whose top is the worst kept:
  // a table of a million sockets costs no more memory than the file.
  auto better = [](const SavedSocket& a, const SavedSocket& b) {
    const int ra = SaveRank(a.state), rb = SaveRank(b.state);
    if (ra != rb) return ra < rb;
    return a.entered_ns < b.entered_ns;
  };
  std::priority_queue<SavedSocket, std::vector<SavedSocket>, decltype(better)>
      kept(better);
  if (max == 0) return {};
  table_.ForEach([&](const SocketEntry& e) {
    if (SaveRank(e.state) < 0 || (e.flags & kEntryTimewaitSock) != 0 ||
        e.sport == 0 || e.dport == 0 || IsProvisionalId(e.id)) {
      return;
    }
    SavedSocket s;
    s.netns = e.netns;
    s.netns_cookie = NetnsCookie(e.netns);
    s.cookie = ids_are_cookies ? e.id : 0;
    s.state = e.state;
    s.ipv6 = (e.flags & kEntryIpv6) != 0;
    s.saddr = e.saddr;
    s.daddr = e.daddr;
    s.sport = e.sport;
    s.dport = e.dport;
    s.entered_ns = e.entered_ns;
    s.lower_bound = (e.flags & kEntryAgeUnknown) != 0;
    if (kept.size() < max) {
      kept.push(s);
    } else if (better(s, kept.top())) {
      kept.pop();
      kept.push(s);
    }
  });
  std::vector<SavedSocket> out;
  out.reserve(kept.size());
  while (!kept.empty()) {
    out.push_back(kept.top());
    kept.pop();
  }
  std::reverse(out.begin(), out.end());
  return out;
}

Mirror::RestoreStats Mirror::RestoreSavedAges(
    const std::vector<SavedSocket>& saved,
    const std::unordered_map<uint32_t, std::vector<DiagSocket>>&
        close_wait_dumps,
    uint64_t now_ns) {
  RestoreStats stats;
  std::unordered_map<TupleKey, const SavedSocket*, TupleKeyHash> by_tuple;
  by_tuple.reserve(saved.size());
  for (const SavedSocket& s : saved) {
    if (SaveRank(s.state) >= 0) by_tuple.emplace(KeyOfSaved(s), &s);
  }
  stats.saved = saved.size();
  if (by_tuple.empty()) return stats;
  std::unordered_map<TupleKey, const DiagSocket*, TupleKeyHash> tcp_info;
  for (const auto& [netns, sockets] : close_wait_dumps) {
    for (const DiagSocket& d : sockets) {
      if (d.state != TcpState::kCloseWait) continue;
      tcp_info.emplace(TupleKey{netns, d.sport, d.dport, d.saddr, d.daddr}, &d);
    }
  }
  // Only what the mirror could not observe itself (seeded or adopted) is
  // taken from the file; collected first, as updating moves nothing but
  // keeps the walk simple.
  std::vector<std::pair<uint64_t, const SavedSocket*>> matches;
  table_.ForEach([&](const SocketEntry& e) {
    if ((e.flags & kEntryAgeUnknown) == 0) return;
    auto it = by_tuple.find(KeyOf(e));
    if (it != by_tuple.end()) matches.emplace_back(e.id, it->second);
  });
  for (const auto& [id, s] : matches) {
    SocketEntry* e = table_.Find(id);
    if (e == nullptr) continue;
    const uint64_t netns_cookie = NetnsCookie(e->netns);
    // The same namespace (its inode may name a new one), the same socket
    // (when the file knows its cookie), still in the same state, and not
    // in the future.
    if (e->state != s->state || (s->cookie != 0 && s->cookie != e->id) ||
        (s->netns_cookie != 0 && netns_cookie != 0 &&
         s->netns_cookie != netns_cookie) ||
        s->entered_ns > now_ns) {
      stats.rejected++;
      continue;
    }
    if (e->state == TcpState::kCloseWait) {
      auto d = tcp_info.find(KeyOf(*e));
      if (d == tcp_info.end() ||
          !AgreesWithTcpInfo(*d->second, s->entered_ns, now_ns)) {
        stats.rejected++;
        continue;
      }
    }
    if (s->lower_bound) {
      // Still a bound, but the earlier one holds: the kernel's own grows
      // back towards now with every keepalive ACK.
      e->entered_ns = std::min(e->entered_ns, s->entered_ns);
    } else {
      e->entered_ns = s->entered_ns;
      e->flags &= static_cast<uint8_t>(~(kEntryAgeUnknown | kEntryAgeAsked));
    }
    stats.restored++;
  }
  return stats;
}

}  // namespace tcpstated
