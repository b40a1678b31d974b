#include "tcpstated/cgroup_units.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string_view>
#include <utility>
#include <vector>

#include "tcpstated/owners.h"
#include "tcpstated/scoped_fd.h"

namespace tcpstated {
CgroupUnits::CgroupUnits(std::string root,
                         std::chrono::milliseconds rescan_interval)
    : root_(std::move(root)), rescan_interval_(rescan_interval) {}

std::optional<std::string> CgroupUnits::UnitOf(uint64_t cgroup_id) {
  if (!walked_) Walk();
  if (!available_) return std::nullopt;
  auto it = units_.find(cgroup_id);
  if (it != units_.end()) return it->second;
  if (std::chrono::steady_clock::now() - last_walk_ >= rescan_interval_) {
    Walk();
    if (!available_) return std::nullopt;
    it = units_.find(cgroup_id);
    if (it != units_.end()) return it->second;
  }
  return std::string();
}

void CgroupUnits::Walk() {
  walked_ = true;
  last_walk_ = std::chrono::steady_clock::now();
  // Only a cgroup v2 hierarchy has cgroup.controllers at its root. A
  // hybrid host (systemd's cgroup v1 layout) mounts it at unified/; the
  // kernel's cgroup ids are those of that hierarchy. With neither, the pid
  // is all there is.
  int hierarchy = -1;
  for (const std::string& dir : {root_, root_ + "/unified"}) {
    ScopedFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() >= 0 &&
        faccessat(fd.get(), "cgroup.controllers", F_OK, 0) == 0) {
      hierarchy = fd.release();
      break;
    }
  }
  ScopedFd root(hierarchy);
  available_ = root.get() >= 0;
  if (!available_) return;
  std::unordered_map<uint64_t, std::string> units;

  // Depth-first over paths below the root, each opened relative to it when
  // its turn comes: a wide level (thousands of pod cgroups) costs strings,
  // not open descriptors.
  struct Pending {
    std::string path;  // "" for the root, else "/a/b"
    int depth;
  };
  std::vector<Pending> stack;
  stack.push_back({"", 0});
  while (!stack.empty() && units.size() < kMaxCgroups) {
    Pending dir = std::move(stack.back());
    stack.pop_back();
    const int fd =
        dir.path.empty()
            ? dup(root.get())
            : openat(root.get(), dir.path.c_str() + 1,
                     O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;  // removed meanwhile
    ScopedDir stream(fdopendir(fd));
    if (stream.get() == nullptr) {
      close(fd);
      continue;
    }
    struct stat st {};
    if (fstat(fd, &st) != 0) continue;
    units.emplace(static_cast<uint64_t>(st.st_ino),
                  UnitFromCgroupPath(dir.path.empty() ? "/" : dir.path));
    if (dir.depth >= kMaxDepth) continue;
    while (const dirent* entry = readdir(stream.get())) {
      if (entry->d_type != DT_DIR && entry->d_type != DT_UNKNOWN) continue;
      const std::string_view name = entry->d_name;
      if (name == "." || name == "..") continue;
      stack.push_back({dir.path + "/" + std::string(name), dir.depth + 1});
    }
  }
  units_ = std::move(units);
}

}  // namespace tcpstated
