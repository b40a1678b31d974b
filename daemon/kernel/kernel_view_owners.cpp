// KernelView's owner lookups in /proc, for the sockets that the events never
// attributed (seeded from a dump, or accepted without a process context):
// the reconcile's CLOSE_WAIT and LISTEN sockets and the peer-liveness rows.
// A scan that finds no holder for an inode is remembered
// (OwnerScanMisses), so that a socket nobody visible holds (a kernel
// listener, a process whose descriptors are hidden) does not cost a scan of
// every descriptor on the host at every reconcile.

#include <unordered_map>
#include <unordered_set>

#include "tcpstated/kernel_view.h"
#include "tcpstated/monotonic_clock.h"

namespace tcpstated {

std::unordered_map<uint32_t, ProcessInfo> KernelView::FindOwners(
    const std::unordered_set<uint32_t>& inodes, bool* complete) {
  const uint64_t now = MonotonicNowNs();
  const std::unordered_set<uint32_t> scan = owner_misses_.ToScan(inodes, now);
  bool scanned_all = true;
  std::unordered_map<uint32_t, ProcessInfo> owners;
  if (!scan.empty()) owners = owners_.ResolveInodes(scan, &scanned_all);
  std::unordered_set<uint32_t> found;
  for (const auto& [inode, info] : owners) found.insert(inode);
  owner_misses_.Record(scan, found, scanned_all, now);
  if (complete != nullptr) *complete = scanned_all;
  return owners;
}

}  // namespace tcpstated
