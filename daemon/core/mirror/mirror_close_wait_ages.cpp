// CLOSE_WAIT ages from the kernel: a socket the mirror adopted or seeded
// in CLOSE_WAIT has no observed entry time, but its tcp_info says when the
// peer's last ACK (its FIN) arrived.
#include <algorithm>
#include <unordered_set>

#include "daemon/core/mirror/mirror_table_inl.h"
#include "tcpstated/mirror.h"

namespace tcpstated {
namespace {

bool CloseWaitAgeToAsk(const SocketEntry& entry) {
  return (entry.flags & (kEntryAgeUnknown | kEntryAgeAsked)) ==
         kEntryAgeUnknown;
}

}  // namespace

std::vector<uint32_t> Mirror::NamespacesWithUnknownCloseWaitAges() const {
  std::unordered_set<uint32_t> found;
  ForEachCloseWait([&found](const SocketEntry& entry) {
    if (CloseWaitAgeToAsk(entry)) found.insert(entry.netns);
  });
  return {found.begin(), found.end()};
}

size_t Mirror::AgeCloseWaitFromKernel(
    const std::unordered_map<uint32_t, std::vector<DiagSocket>>& dumps,
    uint64_t now_ns) {
  size_t aged = 0;
  for (const auto& [netns, sockets] : dumps) {
    for (const DiagSocket& d : sockets) {
      if (d.state != TcpState::kCloseWait || d.last_ack_ms == kNoTcpInfo) {
        continue;
      }
      SocketEntry* entry = table_.Find(d.cookie);
      if (entry == nullptr || entry->netns != netns ||
          entry->state != TcpState::kCloseWait || !CloseWaitAgeToAsk(*entry)) {
        continue;
      }
      const uint64_t since = static_cast<uint64_t>(d.last_ack_ms) * 1000000ULL;
      entry->entered_ns =
          std::min(entry->entered_ns, now_ns - std::min(now_ns, since));
      entry->flags |= kEntryAgeAsked;
      aged++;
    }
  }
  // The rest were not in the replies (an incarnation id, or closed since):
  // not asked again at every reconcile.
  std::vector<uint64_t> rest;
  ForEachCloseWait([&](const SocketEntry& entry) {
    if (CloseWaitAgeToAsk(entry) && dumps.count(entry.netns) != 0) {
      rest.push_back(entry.id);
    }
  });
  for (uint64_t id : rest) {
    if (SocketEntry* entry = table_.Find(id)) entry->flags |= kEntryAgeAsked;
  }
  return aged;
}

}  // namespace tcpstated
