// The systemd unit of a cgroup, by cgroup id: the id the BPF side captures
// with an event (bpf_get_current_cgroup_id(), the cgroup v2 id of the
// process that ran connect/listen/close). Looking the unit up by that id
// rather than by pid stays right after the process exits and its pid is
// reused: the id names the cgroup the socket was opened from.
//
// On cgroup v2 a cgroup's id is its directory's inode number in cgroupfs
// (kernfs hands out 64-bit ids as inode numbers), so the map is built by
// walking the hierarchy once and is rebuilt, at most once per
// `rescan_interval`, when an id is not found (a unit started since).
//
// Thread-safety: none; one instance per thread or a caller's lock.
// Throws only std::bad_alloc. An unreadable or absent hierarchy means
// "unknown" (nullopt), never an error.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

namespace tcpstated {

class CgroupUnits {
 public:
  // Bounds of one walk: a host with more cgroups than this is mapped in
  // part (the rest look like removed cgroups: unit unknown).
  static constexpr size_t kMaxCgroups = 200000;
  static constexpr int kMaxDepth = 32;

  // `root` is where cgroup v2 is mounted, or where a hybrid host mounts it
  // below as unified/ (tests pass a fake tree). Nothing is read until the
  // first call.
  explicit CgroupUnits(
      std::string root = "/sys/fs/cgroup",
      std::chrono::milliseconds rescan_interval = std::chrono::seconds(1));

  // The unit (UnitFromCgroupPath of the cgroup's path; "" if it is in no
  // unit, or if the cgroup no longer exists), or nullopt if `root` is not a
  // cgroup v2 hierarchy that could be walked: then only the pid can tell.
  std::optional<std::string> UnitOf(uint64_t cgroup_id);

  // Cgroups mapped by the last walk.
  size_t size() const { return units_.size(); }

 private:
  void Walk();

  std::string root_;
  std::chrono::milliseconds rescan_interval_;
  std::chrono::steady_clock::time_point last_walk_{};
  bool walked_ = false;
  bool available_ = false;
  std::unordered_map<uint64_t, std::string> units_;  // cgroup id -> unit
};

}  // namespace tcpstated
