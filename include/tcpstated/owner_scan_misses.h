// Socket inodes that a /proc scan found no holder for, so that the next
// reconciles do not scan every process's descriptors again for them. Such
// a socket is held by nothing this daemon can see: a listener the kernel
// opened for itself (nfsd, ksmbd: an inode, no descriptor), or a process
// whose descriptors the daemon may not read (an LSM, a sandbox's pid 1).
// Before, one such listener made every full reconcile read every descriptor of
// every process on the host (docs/performance.md section 10); now it is looked
// for again after `retry_after`, when an owner may have appeared (a descriptor
// passed with SCM_RIGHTS, a process that started since).
//
// A scan stopped by its bounds (a host with millions of descriptors) read
// the lowest pids only, the same ones at every try: its misses are retried
// sooner (retry_after / 5), in case the bound was hit by a passing load.
//
// Pure: the caller scans /proc and keeps the clock. Thread-safety: none
// (the kernel view's worker owns it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <unordered_set>

namespace tcpstated {

class OwnerScanMisses {
 public:
  explicit OwnerScanMisses(uint64_t retry_after_ns)
      : retry_after_ns_(retry_after_ns) {}

  // Of `wanted`, the inodes to look for now: all but those whose miss is
  // not due for a retry yet. Due misses are forgotten, so the set holds at
  // most the unattributed sockets of one retry interval (and at most
  // kMaxMisses: beyond, a miss is simply looked for again).
  std::unordered_set<uint32_t> ToScan(
      const std::unordered_set<uint32_t>& wanted, uint64_t now_ns);

  // After a scan for `scanned` that found the holders of `found`: the
  // others are misses from now, until retry_after (or retry_after / 5 if
  // the scan was not `complete`).
  void Record(const std::unordered_set<uint32_t>& scanned,
              const std::unordered_set<uint32_t>& found, bool complete,
              uint64_t now_ns);

  size_t size() const { return retry_at_.size(); }

  static constexpr size_t kMaxMisses = 65536;

 private:
  uint64_t retry_after_ns_;
  std::unordered_map<uint32_t, uint64_t> retry_at_;  // inode -> when
};

}  // namespace tcpstated
