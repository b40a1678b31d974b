#include "tcpstated/owner_scan_misses.h"

namespace tcpstated {

std::unordered_set<uint32_t> OwnerScanMisses::ToScan(
    const std::unordered_set<uint32_t>& wanted, uint64_t now_ns) {
  for (auto it = retry_at_.begin(); it != retry_at_.end();) {
    if (now_ns >= it->second) {
      it = retry_at_.erase(it);
    } else {
      ++it;
    }
  }
  std::unordered_set<uint32_t> out;
  for (uint32_t inode : wanted) {
    if (retry_at_.count(inode) == 0) out.insert(inode);
  }
  return out;
}

void OwnerScanMisses::Record(const std::unordered_set<uint32_t>& scanned,
                             const std::unordered_set<uint32_t>& found,
                             bool complete, uint64_t now_ns) {
  const uint64_t retry_at =
      now_ns + (complete ? retry_after_ns_ : retry_after_ns_ / 5);
  for (uint32_t inode : scanned) {
    if (retry_at_.size() >= kMaxMisses) return;
    if (found.count(inode) == 0) retry_at_.emplace(inode, retry_at);
  }
}

}  // namespace tcpstated
