#include "tcpstated/owners.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <utility>
#include <vector>

#include "tcpstated/scoped_fd.h"

namespace tcpstated {
namespace {

constexpr std::string_view kUnitSuffixes[] = {".service", ".scope", ".socket",
                                              ".mount",   ".swap",  ".timer"};
// systemd's UNIT_NAME_MAX is 256 including the terminating NUL.
constexpr size_t kMaxUnitNameLength = 255;
// The kernel appends this to the cgroup v2 path of a removed cgroup (a
// process that outlived its unit's cgroup, e.g. a zombie being reaped).
constexpr std::string_view kDeletedSuffix = " (deleted)";

// How often (in descriptors) the wall-clock budget is checked inside one
// process: often enough that a process with a million descriptors cannot
// overrun it much, rarely enough that clock reads cost nothing.
constexpr size_t kClockCheckInterval = 1024;

// Upper bounds of what is read from small /proc files. stat is < 1 KiB (comm
// is at most 15 bytes); cgroup can list a dozen v1 hierarchies.
constexpr size_t kMaxStatBytes = 4096;
constexpr size_t kMaxCommBytes = 256;
constexpr size_t kMaxCgroupBytes = 64 * 1024;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Characters systemd allows in unit names (unit-name.c VALID_CHARS plus '@'
// for template instances). Spelled out rather than isalnum() so the locale
// cannot change the answer.
bool IsUnitNameChar(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         c == ':' || c == '-' || c == '_' || c == '.' || c == '\\' || c == '@';
}

bool IsUnitName(std::string_view component) {
  if (component.size() > kMaxUnitNameLength) return false;
  if (!std::all_of(component.begin(), component.end(), IsUnitNameChar)) {
    return false;
  }
  for (std::string_view suffix : kUnitSuffixes) {
    // Strictly longer: ".service" alone has no name.
    if (component.size() > suffix.size() &&
        component.substr(component.size() - suffix.size()) == suffix) {
      return true;
    }
  }
  return false;
}

// Parses an unsigned decimal that fits in uint64_t; rejects empty input,
// signs and overflow.
std::optional<uint64_t> ParseU64(std::string_view digits) {
  if (digits.empty() || digits.size() > 20) return std::nullopt;
  uint64_t value = 0;
  for (char c : digits) {
    if (!IsDigit(c)) return std::nullopt;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - d) / 10) return std::nullopt;
    value = value * 10 + d;
  }
  return value;
}

std::optional<uint32_t> ParseU32(std::string_view digits) {
  std::optional<uint64_t> value = ParseU64(digits);
  if (!value || *value > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(*value);
}

// The inode of a "socket:[12345]" fd link target; nullopt for anything else
// (files, pipes, anon inodes) and for inodes that do not fit the 32 bits the
// kernel's get_next_ino() hands out to sockets.
std::optional<uint32_t> SocketInodeFromLink(std::string_view target) {
  constexpr std::string_view kPrefix = "socket:[";
  if (target.size() < kPrefix.size() + 2 ||
      target.substr(0, kPrefix.size()) != kPrefix || target.back() != ']') {
    return std::nullopt;
  }
  return ParseU32(
      target.substr(kPrefix.size(), target.size() - kPrefix.size() - 1));
}

// Reads at most `max_bytes` of `name` (relative to `dir_fd`). False if it
// cannot be opened or read: for a /proc/<pid> directory that means the
// process is gone (ESRCH/ENOENT) or hidden from us (EACCES).
bool ReadSmallFile(int dir_fd, const char* name, size_t max_bytes,
                   std::string* out) {
  ScopedFd fd(openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) return false;
  out->clear();
  char buf[4096];
  while (out->size() < max_bytes) {
    const size_t want = std::min(sizeof(buf), max_bytes - out->size());
    const ssize_t n = read(fd.get(), buf, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  return true;
}

// Field 22 (starttime) of /proc/<pid>/stat. comm (field 2) is wrapped in
// parentheses but may itself contain spaces and ')', so fields are counted
// from the LAST ')', which the kernel always writes right after comm.
std::optional<uint64_t> StartTimeFromStat(std::string_view stat) {
  const size_t close_paren = stat.rfind(')');
  if (close_paren == std::string_view::npos) return std::nullopt;
  size_t pos = close_paren + 1;
  for (int field = 3; field <= 22; ++field) {
    while (pos < stat.size() && stat[pos] == ' ') ++pos;
    const size_t end = std::min(stat.find_first_of(" \n", pos), stat.size());
    if (end == pos) return std::nullopt;  // fewer than 22 fields
    if (field == 22) return ParseU64(stat.substr(pos, end - pos));
    pos = end;
  }
  return std::nullopt;  // not reached
}

// The systemd unit named by the contents of /proc/<pid>/cgroup: the cgroup
// v2 ("0::") line, or, on a pure cgroup v1 host, the name=systemd hierarchy.
std::string UnitFromCgroupFile(std::string_view contents) {
  std::string_view v1_systemd_path;
  bool have_v1 = false;
  while (!contents.empty()) {
    const size_t nl = contents.find('\n');
    const std::string_view line = contents.substr(0, nl);
    contents.remove_prefix(nl == std::string_view::npos ? contents.size()
                                                        : nl + 1);
    if (line.substr(0, 3) == "0::") return UnitFromCgroupPath(line.substr(3));
    // "ID:controllers:path"; the path may contain ':' itself.
    const size_t c1 = line.find(':');
    if (c1 == std::string_view::npos) continue;
    const size_t c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    if (!have_v1 && line.substr(c1 + 1, c2 - c1 - 1) == "name=systemd") {
      v1_systemd_path = line.substr(c2 + 1);
      have_v1 = true;
    }
  }
  return have_v1 ? UnitFromCgroupPath(v1_systemd_path) : std::string();
}

using Clock = std::chrono::steady_clock;

// The bounds of one ResolveInodes scan, spent across every process it reads.
class ScanBudget {
 public:
  ScanBudget(size_t max_fds, std::chrono::milliseconds time)
      : max_fds_(max_fds), deadline_(Clock::now() + time) {}

  // Before the next process: false once the time is up.
  bool StartProcess() {
    if (Clock::now() >= deadline_) hit_ = true;
    return !hit_;
  }
  // Before the next descriptor: false once either bound is reached.
  bool TakeDescriptor() {
    if (fds_seen_ == max_fds_) {
      hit_ = true;
      return false;
    }
    ++fds_seen_;
    if (fds_seen_ % kClockCheckInterval == 0 && Clock::now() >= deadline_) {
      hit_ = true;
    }
    return !hit_;
  }
  bool hit() const { return hit_; }

 private:
  const size_t max_fds_;
  const Clock::time_point deadline_;
  size_t fds_seen_ = 0;
  bool hit_ = false;
};

// The thread-group leaders listed in `proc`, in ascending order. /proc lists
// only those at its top level (tids are reachable by name but not listed),
// which is what we want: threads share the leader's descriptor table.
// Sorting lets the first holder found be the lowest tgid, so the scan can
// stop as soon as every inode has one. The kernel already lists in pid
// order; a fake tree in tests does not.
std::vector<uint32_t> ListTgids(DIR* proc) {
  std::vector<uint32_t> tgids;
  while (const dirent* entry = readdir(proc)) {
    if (std::optional<uint32_t> tgid = ParseU32(entry->d_name)) {
      if (*tgid != 0) tgids.push_back(*tgid);
    }
  }
  std::sort(tgids.begin(), tgids.end());
  return tgids;
}

// Adds to `owner_of` (inode -> tgid) each of `inodes` that process `tgid`
// holds and that has no owner yet. A process that exited meanwhile or denies
// access adds nothing.
void ScanProcessFds(int proc_fd, uint32_t tgid,
                    const std::unordered_set<uint32_t>& inodes,
                    std::unordered_map<uint32_t, uint32_t>& owner_of,
                    ScanBudget& budget) {
  char fd_dir_name[32];
  std::snprintf(fd_dir_name, sizeof(fd_dir_name), "%u/fd", tgid);
  // One openat per process instead of building absolute paths: the
  // directory descriptor also makes each readlinkat a single-component
  // lookup.
  const int fd_dir_fd =
      openat(proc_fd, fd_dir_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd_dir_fd < 0) return;  // exited meanwhile, or EACCES
  ScopedDir fd_dir(fdopendir(fd_dir_fd));
  if (fd_dir.get() == nullptr) {
    close(fd_dir_fd);
    return;
  }
  while (const dirent* entry = readdir(fd_dir.get())) {
    // Skips "." and ".."; descriptor names are all digits.
    if (entry->d_name[0] == '.') continue;
    if (entry->d_type != DT_LNK && entry->d_type != DT_UNKNOWN) continue;
    if (!budget.TakeDescriptor()) return;
    // "socket:[4294967295]" is 19 bytes; a longer target (a file path) is
    // truncated and then fails the parse, which is what we want.
    char target[64];
    const ssize_t n =
        readlinkat(fd_dir_fd, entry->d_name, target, sizeof(target));
    if (n <= 0 || static_cast<size_t>(n) >= sizeof(target)) continue;
    const std::optional<uint32_t> inode =
        SocketInodeFromLink(std::string_view(target, static_cast<size_t>(n)));
    if (!inode || inodes.count(*inode) == 0) continue;
    // emplace keeps the first holder: the lowest tgid.
    owner_of.emplace(*inode, tgid);
    if (owner_of.size() == inodes.size()) return;
  }
}

}  // namespace

std::string UnitFromCgroupPath(std::string_view path) {
  // One line only: a caller may hand over a line with its newline.
  path = path.substr(0, path.find('\n'));
  // Whitespace never ends a unit name (CRLF input, padded copies).
  while (!path.empty() &&
         (path.back() == '\r' || path.back() == ' ' || path.back() == '\t')) {
    path.remove_suffix(1);
  }
  if (path.size() >= kDeletedSuffix.size() &&
      path.substr(path.size() - kDeletedSuffix.size()) == kDeletedSuffix) {
    path.remove_suffix(kDeletedSuffix.size());
  }
  // A whole /proc/<pid>/cgroup line ("0::/a.service",
  // "1:name=systemd:/a.service"): drop "ID:controllers:". Paths start with
  // '/', so this cannot eat part of a real path.
  if (!path.empty() && IsDigit(path.front())) {
    const size_t c1 = path.find(':');
    const size_t c2 =
        c1 == std::string_view::npos ? c1 : path.find(':', c1 + 1);
    if (c2 != std::string_view::npos &&
        std::all_of(path.begin(), path.begin() + c1, IsDigit)) {
      path.remove_prefix(c2 + 1);
    }
  }
  // Innermost first: a service may delegate sub-cgroups below itself, and a
  // user@.service contains the app scopes the user's processes run in.
  while (!path.empty()) {
    const size_t slash = path.rfind('/');
    const std::string_view component =
        slash == std::string_view::npos ? path : path.substr(slash + 1);
    if (IsUnitName(component)) return std::string(component);
    if (slash == std::string_view::npos) break;
    path = path.substr(0, slash);
  }
  return std::string();
}

OwnerResolver::OwnerResolver(std::string proc_root)
    : proc_root_(std::move(proc_root)) {}

std::unordered_map<uint32_t, ProcessInfo> OwnerResolver::ResolveInodes(
    const std::unordered_set<uint32_t>& inodes, bool* complete, size_t max_fds,
    std::chrono::milliseconds budget) {
  ScanBudget scan_budget(max_fds, budget);
  if (complete != nullptr) *complete = false;
  if (inodes.empty()) {
    if (complete != nullptr) *complete = true;
    return {};
  }
  ScopedDir proc(opendir(proc_root_.c_str()));
  if (proc.get() == nullptr) return {};

  std::unordered_map<uint32_t, uint32_t> owner_of;  // inode -> tgid
  const int proc_fd = dirfd(proc.get());
  for (uint32_t tgid : ListTgids(proc.get())) {
    if (owner_of.size() == inodes.size()) break;
    if (!scan_budget.StartProcess()) break;
    ScanProcessFds(proc_fd, tgid, inodes, owner_of, scan_budget);
    if (scan_budget.hit()) break;
  }
  if (complete != nullptr) {
    *complete = !scan_budget.hit() || owner_of.size() == inodes.size();
  }
  return DescribeOwners(owner_of);
}

std::unordered_map<uint32_t, ProcessInfo> OwnerResolver::DescribeOwners(
    const std::unordered_map<uint32_t, uint32_t>& owner_of) {
  std::unordered_map<uint32_t, ProcessInfo> result;
  // Described once per process: one owner often holds many leaked sockets.
  std::unordered_map<uint32_t, ProcessInfo> described;
  for (const auto& [inode, tgid] : owner_of) {
    auto it = described.find(tgid);
    if (it == described.end()) {
      std::optional<ProcessInfo> info = Describe(tgid);
      if (!info) {
        info.emplace();
        info->tgid = tgid;
      }
      it = described.emplace(tgid, std::move(*info)).first;
    }
    result.emplace(inode, it->second);
  }
  return result;
}

std::optional<ProcessInfo> OwnerResolver::Describe(uint32_t tgid) {
  // Everything is read through one /proc/<tgid> directory descriptor: it
  // stays bound to the process it was opened for, so if that process exits
  // and the pid is recycled mid-way, the reads fail instead of mixing the
  // old process's start time with the new one's comm.
  const std::string dir = proc_root_ + "/" + std::to_string(tgid);
  ScopedFd dir_fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::string stat;
  if (tgid == 0 || dir_fd.get() < 0 ||
      !ReadSmallFile(dir_fd.get(), "stat", kMaxStatBytes, &stat)) {
    cache_.erase(tgid);
    return std::nullopt;
  }
  const std::optional<uint64_t> start_time = StartTimeFromStat(stat);
  if (start_time) {
    auto it = cache_.find(tgid);
    if (it != cache_.end() && it->second.start_time == *start_time) {
      return it->second.info;
    }
  }

  ProcessInfo info;
  info.tgid = tgid;
  if (!ReadSmallFile(dir_fd.get(), "comm", kMaxCommBytes, &info.comm)) {
    cache_.erase(tgid);
    return std::nullopt;
  }
  if (!info.comm.empty() && info.comm.back() == '\n') info.comm.pop_back();
  std::string cgroup;
  // An unreadable cgroup file leaves the unit unknown, not the process.
  if (ReadSmallFile(dir_fd.get(), "cgroup", kMaxCgroupBytes, &cgroup)) {
    info.unit = UnitFromCgroupFile(cgroup);
  }

  if (!start_time) {
    // Without a start time a recycled pid could not be told apart: answer
    // from what was just read, but do not cache it.
    cache_.erase(tgid);
    return info;
  }
  if (cache_.size() >= kMaxCachedProcesses && cache_.count(tgid) == 0) {
    cache_.clear();
  }
  cache_[tgid] = CacheEntry{*start_time, info};
  return info;
}

}  // namespace tcpstated
