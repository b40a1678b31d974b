// Socket ownership from /proc: which process holds a socket inode, and which
// systemd unit that process runs in. The BPF side only sees the "current"
// process at connect/listen/close; a socket leaked in CLOSE_WAIT is held by
// whoever still has it open, which only the /proc/<pid>/fd table can tell.
//
// Thread-safety: UnitFromCgroupPath is pure and may be called from any
// thread. OwnerResolver is NOT thread-safe (it keeps a cache): use one
// instance per thread, or serialize calls on a shared one. Distinct
// instances share nothing.
//
// What throws: nothing, except std::bad_alloc. Unreadable, vanished or
// malformed /proc entries are skipped or reported as "not found".
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace tcpstated {

// The innermost systemd unit in a cgroup path: the last component that is a
// unit name ending in .service, .scope, .socket, .mount, .swap or .timer
// (slices are not owners; components below the unit, such as a service's
// own sub-cgroups, are skipped). Accepts the bare path
// ("/system.slice/nginx.service"), a whole /proc/<pid>/cgroup line
// ("0::/system.slice/nginx.service", trailing newline allowed) and the
// kernel's " (deleted)" suffix for a removed cgroup. Components that are not
// valid systemd unit names (characters outside [A-Za-z0-9:_.@\-], longer
// than 255 bytes, empty stem) never match, so arbitrary bytes cannot leak
// into a metric label. Returns "" if there is no unit ("/", "/kubepods/...").
std::string UnitFromCgroupPath(std::string_view cgroup_path);

struct ProcessInfo {
  uint32_t tgid = 0;
  std::string comm;  // /proc/<tgid>/comm without the newline; may be ""
  std::string unit;  // UnitFromCgroupPath of the cgroup v2 path; may be ""
};

class OwnerResolver {
 public:
  // Bound of the Describe cache; when full it is cleared (entries are cheap
  // to rebuild, and a full cache means pids are churning anyway).
  static constexpr size_t kMaxCachedProcesses = 65536;

  // `proc_root` exists for tests (a fake tree); the daemon uses "/proc".
  // Nothing is read until the first call.
  explicit OwnerResolver(std::string proc_root = "/proc");

  // Maps each socket inode in `inodes` that some process holds open to that
  // process, by reading the /proc/<tgid>/fd/* links ("socket:[12345]") in one
  // pass for the whole set. Only thread-group leaders are scanned (threads
  // share their leader's descriptor table). When several processes hold one
  // socket (inherited across fork, passed over SCM_RIGHTS), the lowest tgid
  // wins. Processes that vanish or deny access are skipped silently.
  //
  // Bounded: stops after examining `max_fds` descriptors or after `budget`
  // of wall time. `*complete` (if given) is set to true when every process
  // was scanned or every inode was found, false when a bound stopped the
  // scan or `proc_root` could not be listed. The result then holds what was
  // found so far; pids are scanned in ascending order, so every inode found
  // already has its lowest holder, and the missing ones are held (if at all)
  // only by processes not scanned.
  //
  // The bounds cover the descriptor scan; describing the owners found comes
  // on top (a few small reads per distinct owner, fewer when cached).
  // ProcessInfo comes from Describe(); an owner that exits before it can be
  // described keeps its tgid with empty comm and unit.
  //
  // Needs root (or CAP_SYS_PTRACE + CAP_DAC_READ_SEARCH) to see other users'
  // processes. Blind spot: a process whose thread-group leader has exited
  // while other threads live on shows an empty /proc/<tgid>/fd, so its
  // sockets are not found. Cost: about 2 us per descriptor plus ~30 us per
  // process (measured on 6.18), all in the kernel's /proc code.
  std::unordered_map<uint32_t, ProcessInfo> ResolveInodes(
      const std::unordered_set<uint32_t>& inodes, bool* complete = nullptr,
      size_t max_fds = 4000000,
      std::chrono::milliseconds budget = std::chrono::milliseconds(2000));

  // comm and systemd unit of the live process `tgid`, or nullopt if it is
  // gone (or its /proc entry cannot be read). Cached by tgid together with
  // the process start time (field 22 of /proc/<tgid>/stat), so a recycled
  // pid is never described as the process that used to have it; each call
  // still reads /proc/<tgid>/stat to check that.
  std::optional<ProcessInfo> Describe(uint32_t tgid);

 private:
  // ResolveInodes' last step: each inode of `owner_of` (inode -> tgid) with
  // its owner described.
  std::unordered_map<uint32_t, ProcessInfo> DescribeOwners(
      const std::unordered_map<uint32_t, uint32_t>& owner_of);

  struct CacheEntry {
    uint64_t start_time = 0;  // clock ticks after boot
    ProcessInfo info;
  };

  std::string proc_root_;
  std::unordered_map<uint32_t, CacheEntry> cache_;
};

}  // namespace tcpstated
