#include "tcpstated/listener_index.h"

#include <algorithm>

namespace tcpstated {

void ListenerIndex::Add(uint32_t netns, uint16_t port, const Address& saddr,
                        uint64_t id) {
  std::vector<Listener>& listeners = ports_[KeyOf(netns, port)];
  for (Listener& l : listeners) {
    if (l.id == id) {
      l.saddr = saddr;
      return;
    }
  }
  listeners.push_back({saddr, id});
  ++size_;
}

void ListenerIndex::Remove(uint32_t netns, uint16_t port, uint64_t id) {
  auto it = ports_.find(KeyOf(netns, port));
  if (it == ports_.end()) return;
  std::vector<Listener>& listeners = it->second;
  auto l = std::find_if(listeners.begin(), listeners.end(),
                        [id](const Listener& x) { return x.id == id; });
  if (l == listeners.end()) return;
  listeners.erase(l);
  --size_;
  if (listeners.empty()) ports_.erase(it);
}

uint64_t ListenerIndex::Find(uint32_t netns, uint16_t port,
                             const Address& saddr) const {
  auto it = ports_.find(KeyOf(netns, port));
  if (it == ports_.end()) return 0;
  const std::vector<Listener>& listeners = it->second;
  for (const Listener& l : listeners) {
    if (l.saddr == saddr) return l.id;
  }
  static const Address kWildcard{};
  for (const Listener& l : listeners) {
    if (l.saddr == kWildcard) return l.id;
  }
  return listeners.front().id;
}

bool ListenerIndex::HasPort(uint32_t netns, uint16_t port) const {
  return ports_.count(KeyOf(netns, port)) != 0;
}

}  // namespace tcpstated
