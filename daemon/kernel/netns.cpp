#include "tcpstated/netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "tcpstated/scoped_fd.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71  // Linux 5.14; older libc headers lack it
#endif

namespace tcpstated {
namespace {

// NET_NS_INIT_INO (uapi linux/nsfs.h, 6.18): older kernels allocate the
// initial namespace's inode dynamically, from 0xF0000000 up, so this value
// names nothing else there.
constexpr uint32_t kInitialNetnsInode = 0xEFFFFFF9u;

// Name sources, best first: a lower value wins when two sources name the
// same namespace.
enum class Source { kHost = 0, kIpNetns = 1, kMount = 2, kPid = 3 };

struct Candidate {
  Source source = Source::kPid;
  std::string name;
  std::string path;
};

// Whole small file (mountinfo, comm), read with plain read() so that a file
// that vanishes mid-way just returns false. `dirfd` may be AT_FDCWD.
bool ReadSmallFile(int dirfd, const std::string& path, std::string* out,
                   size_t limit = 16 * 1024 * 1024) {
  ScopedFd fd(openat(dirfd, path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) return false;
  out->clear();
  char buffer[16384];
  for (;;) {
    ssize_t n = read(fd.get(), buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) return true;
    out->append(buffer, static_cast<size_t>(n));
    if (out->size() > limit) return false;
  }
}

// Opens `path` and checks that it is a network namespace, and the one with
// `expected_inode` unless that is 0. On success returns the descriptor and
// stores the inode; on failure -1 with errno (EINVAL: not a network
// namespace; ESTALE: another one).
int OpenNamespace(int dirfd, const std::string& path, uint32_t expected_inode,
                  uint32_t* inode) {
  // O_NONBLOCK: a FIFO planted where a namespace was expected must not hang
  // discovery in open(). Cleared below, nsfs descriptors never block anyway.
  ScopedFd fd(openat(dirfd, path.c_str(),
                     O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) return -1;
  // NS_GET_NSTYPE (4.11) fails with ENOTTY on anything but nsfs, which also
  // rejects a stale /run/netns file whose bind mount is gone.
  int type = ioctl(fd.get(), NS_GET_NSTYPE);
  if (type != CLONE_NEWNET) {
    errno = EINVAL;
    return -1;
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return -1;
  uint32_t found = static_cast<uint32_t>(st.st_ino);
  if (expected_inode != 0 && found != expected_inode) {
    errno = ESTALE;
    return -1;
  }
  if (fcntl(fd.get(), F_SETFL, 0) != 0) return -1;
  if (inode != nullptr) *inode = found;
  return fd.release();
}

bool IsAllDigits(const char* s) {
  if (*s == '\0') return false;
  for (; *s != '\0'; ++s) {
    if (*s < '0' || *s > '9') return false;
  }
  return true;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string UnescapeMountPath(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && field[i + 1] >= '0' &&
        field[i + 1] <= '3' && field[i + 2] >= '0' && field[i + 2] <= '7' &&
        field[i + 3] >= '0' && field[i + 3] <= '7') {
      out.push_back(static_cast<char>((field[i + 1] - '0') * 64 +
                                      (field[i + 2] - '0') * 8 +
                                      (field[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

// "net:[4026531840]" -> 4026531840; false for other namespace types.
bool ParseNetRoot(std::string_view root, uint32_t* inode) {
  constexpr std::string_view kPrefix = "net:[";
  if (root.size() < kPrefix.size() + 2 ||
      root.substr(0, kPrefix.size()) != kPrefix || root.back() != ']') {
    return false;
  }
  std::string_view digits =
      root.substr(kPrefix.size(), root.size() - kPrefix.size() - 1);
  uint64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
    if (value > UINT32_MAX) return false;
  }
  *inode = static_cast<uint32_t>(value);
  return !digits.empty();
}

void Offer(std::map<uint32_t, Candidate>* candidates, uint32_t inode,
           Candidate candidate) {
  auto [it, inserted] = candidates->emplace(inode, candidate);
  if (inserted) return;
  Candidate& current = it->second;
  if (candidate.source < current.source ||
      (candidate.source == current.source && candidate.name < current.name)) {
    current = std::move(candidate);
  }
}

void ScanRunNetns(const std::string& run_netns,
                  std::map<uint32_t, Candidate>* candidates) {
  ScopedDir dir(opendir(run_netns.c_str()));
  if (dir.get() == nullptr) return;  // no `ip netns` ever run: normal
  while (dirent* entry = readdir(dir.get())) {
    std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    // nsfs inodes are regular files; skip anything else without opening it.
    struct stat st;
    if (fstatat(dirfd(dir.get()), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) !=
            0 ||
        !S_ISREG(st.st_mode)) {
      continue;
    }
    uint32_t inode = 0;
    ScopedFd fd(OpenNamespace(dirfd(dir.get()), entry->d_name, 0, &inode));
    if (fd.get() < 0) continue;  // stale entry or another namespace type
    Offer(candidates, inode,
          Candidate{Source::kIpNetns, std::string(name),
                    run_netns + "/" + std::string(name)});
  }
}

void ScanMounts(const std::string& proc_root,
                std::map<uint32_t, Candidate>* candidates) {
  std::string text;
  if (!ReadSmallFile(AT_FDCWD, proc_root + "/self/mountinfo", &text)) return;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    start = end + 1;
    // id parent major:minor root mount-point options [optional...] - fstype
    std::vector<std::string_view> fields;
    size_t pos = 0;
    while (pos < line.size()) {
      size_t space = line.find(' ', pos);
      if (space == std::string_view::npos) space = line.size();
      if (space > pos) fields.push_back(line.substr(pos, space - pos));
      pos = space + 1;
    }
    size_t dash = 6;
    while (dash < fields.size() && fields[dash] != "-") ++dash;
    if (dash + 1 >= fields.size() || fields[dash + 1] != "nsfs") continue;
    // For nsfs the root field names the namespace: "net:[inode]".
    uint32_t inode = 0;
    if (!ParseNetRoot(fields[3], &inode)) continue;
    // /run/netns mounts are listed here too; no need to open them again.
    auto known = candidates->find(inode);
    if (known != candidates->end() && known->second.source < Source::kMount) {
      continue;
    }
    std::string path = UnescapeMountPath(fields[4]);
    // Check that the path still reaches it (not overmounted since).
    ScopedFd fd(OpenNamespace(AT_FDCWD, path, inode, nullptr));
    if (fd.get() < 0) continue;
    Offer(candidates, inode, Candidate{Source::kMount, path, path});
  }
}

// Names every namespace not named by a better source after the lowest pid in
// it. Returns how many pid entries were examined.
size_t ScanPids(const std::string& proc_root,
                std::map<uint32_t, Candidate>* candidates, bool* limit_hit) {
  ScopedDir dir(opendir(proc_root.c_str()));
  if (dir.get() == nullptr) {
    throw std::system_error(errno, std::system_category(),
                            "opendir(" + proc_root + ")");
  }
  int proc_fd = dirfd(dir.get());
  // (inode, pid) of processes in namespaces without a better name yet.
  std::vector<std::pair<uint32_t, pid_t>> unnamed;
  size_t scanned = 0;
  *limit_hit = false;
  while (dirent* entry = readdir(dir.get())) {
    if (!IsAllDigits(entry->d_name)) continue;
    if (scanned == NetnsRegistry::kMaxScannedPids) {
      *limit_hit = true;
      break;
    }
    ++scanned;
    std::string link = std::string(entry->d_name) + "/ns/net";
    struct stat st;
    // Fails for a process that exited (ENOENT), a zombie (no namespaces
    // left, ENOENT) or one we may not ptrace (EACCES): all skipped.
    if (fstatat(proc_fd, link.c_str(), &st, 0) != 0) continue;
    uint32_t inode = static_cast<uint32_t>(st.st_ino);
    auto it = candidates->find(inode);
    if (it != candidates->end() && it->second.source != Source::kPid) continue;
    unnamed.emplace_back(
        inode, static_cast<pid_t>(std::strtol(entry->d_name, nullptr, 10)));
  }
  std::sort(unnamed.begin(), unnamed.end());
  for (size_t i = 0; i < unnamed.size();) {
    size_t group_end = i;
    while (group_end < unnamed.size() &&
           unnamed[group_end].first == unnamed[i].first) {
      ++group_end;
    }
    uint32_t inode = unnamed[i].first;
    // Lowest pid first; a process that exited since, or whose pid was
    // reused by a process elsewhere, gives way to the next.
    for (size_t j = i; j < group_end; ++j) {
      std::string pid = std::to_string(unnamed[j].second);
      std::string comm;
      if (!ReadSmallFile(proc_fd, pid + "/comm", &comm, 4096)) continue;
      if (!comm.empty() && comm.back() == '\n') comm.pop_back();
      struct stat st;
      if (fstatat(proc_fd, (pid + "/ns/net").c_str(), &st, 0) != 0 ||
          static_cast<uint32_t>(st.st_ino) != inode) {
        continue;
      }
      Offer(candidates, inode,
            Candidate{Source::kPid, "pid:" + pid + ":" + comm,
                      proc_root + "/" + pid + "/ns/net"});
      break;
    }
    i = group_end;
  }
  return scanned;
}

// Whether /proc/<pid> is a kernel thread (PF_KTHREAD in the flags field of
// its stat, the 9th, counted after the parenthesised comm that may hold
// spaces).
bool IsKernelThread(const std::string& proc_root, const char* pid) {
  constexpr uint64_t kPfKthread = 0x00200000;
  std::string stat;
  if (!ReadSmallFile(AT_FDCWD, proc_root + "/" + pid + "/stat", &stat, 4096)) {
    return false;
  }
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return false;
  // After ")": state ppid pgrp session tty_nr tpgid flags.
  const char* cursor = stat.c_str() + paren + 1;
  for (int field = 0; field < 6; ++field) {
    while (*cursor == ' ') ++cursor;
    while (*cursor != ' ' && *cursor != '\0') ++cursor;
  }
  char* end = nullptr;
  uint64_t flags = std::strtoull(cursor, &end, 10);
  return end != cursor && (flags & kPfKthread) != 0;
}

// The initial ("host") namespace. PID 1's, as `ip netns` and most tools
// assume; if PID 1 cannot be examined (a hardened init that even root may
// not ptrace, as on the development VM), that of kthreadd (pid 2): kernel
// threads always run in the initial namespaces. Returns false if neither
// is visible, e.g. in a PID namespace of a container.
bool FindHost(const std::string& proc_root, uint32_t* inode,
              std::string* path) {
  for (const char* pid : {"1", "2"}) {
    if (pid[0] == '2' && !IsKernelThread(proc_root, pid)) break;
    std::string link = proc_root + "/" + pid + "/ns/net";
    struct stat st;
    if (stat(link.c_str(), &st) == 0) {
      *inode = static_cast<uint32_t>(st.st_ino);
      *path = link;
      return true;
    }
  }
  return false;
}

// Host first, then ascending inode (`handles` is already sorted by inode).
void SortHostFirst(std::vector<NetnsHandle>* handles, uint32_t host_inode) {
  std::stable_partition(handles->begin(), handles->end(),
                        [host_inode](const NetnsHandle& handle) {
                          return host_inode != 0 && handle.inode == host_inode;
                        });
}

// Every namespace the sources can name, each under the best name found.
// Returns the host's inode, 0 if it could not be told.
uint32_t CollectCandidates(const std::string& proc_root,
                           const std::string& run_netns,
                           std::map<uint32_t, Candidate>* candidates,
                           DiscoverStats* stats) {
  std::string host_path;
  uint32_t host_inode = 0;
  if (FindHost(proc_root, &host_inode, &host_path)) {
    Offer(candidates, host_inode, Candidate{Source::kHost, "host", host_path});
  }
  ScanRunNetns(run_netns, candidates);
  ScanMounts(proc_root, candidates);
  stats->pids_scanned =
      ScanPids(proc_root, candidates, &stats->pid_limit_reached);
  // Linux 6.18 gives the initial namespace a fixed inode: recognise it even
  // when neither pid 1 nor pid 2 could tell (then it keeps the path that
  // found it).
  if (host_inode == 0) {
    auto it = candidates->find(kInitialNetnsInode);
    if (it != candidates->end()) {
      host_inode = kInitialNetnsInode;
      it->second.source = Source::kHost;
      it->second.name = "host";
    }
  }
  return host_inode;
}

NetnsHandle TakeHandle(uint32_t inode, Candidate& candidate) {
  NetnsHandle handle;
  handle.inode = inode;
  handle.name = std::move(candidate.name);
  handle.path = std::move(candidate.path);
  return handle;
}

// Every candidate was checked when it was found (opened or stat()ed):
// nothing more to open, and no thread to start.
std::vector<NetnsHandle> TakeHandles(
    std::map<uint32_t, Candidate>* candidates) {
  std::vector<NetnsHandle> handles;
  handles.reserve(candidates->size());
  for (auto& [inode, candidate] : *candidates) {
    handles.push_back(TakeHandle(inode, candidate));
  }
  return handles;
}

// Sets handle->cookie from inside its namespace (the calling thread moves
// into it). False when the namespace is gone since it was seen (the process
// exited, the mount was removed, the pid was reused): useless as a handle.
// A namespace that is there but whose cookie cannot be read is kept with
// cookie 0, and counted.
bool ReadCookie(NetnsHandle* handle, DiscoverStats* stats) {
  ScopedFd fd(OpenNetns(*handle));
  if (fd.get() < 0) {
    if (errno == ENOENT || errno == ESRCH || errno == ESTALE ||
        errno == EINVAL) {
      return false;
    }
    ++stats->cookie_failures;  // e.g. EACCES: kept, cookie 0
  } else if (setns(fd.get(), CLONE_NEWNET) != 0) {
    ++stats->cookie_failures;  // no CAP_SYS_ADMIN over it
  } else {
    try {
      handle->cookie = CurrentNetnsCookie();
    } catch (const std::system_error&) {
      ++stats->cookie_failures;  // no socket could be made in there
    }
  }
  return true;
}

// One helper thread enters each namespace in turn to read its cookie:
// one thread for all of them rather than one each, and the caller's
// threads never move. Descriptors are opened one at a time so that a host
// with thousands of namespaces does not run into RLIMIT_NOFILE.
std::vector<NetnsHandle> TakeHandlesWithCookies(
    std::map<uint32_t, Candidate>* candidates, DiscoverStats* stats) {
  std::vector<NetnsHandle> handles;
  handles.reserve(candidates->size());
  std::exception_ptr failure;
  std::thread helper([&] {
    try {
      for (auto& [inode, candidate] : *candidates) {
        NetnsHandle handle = TakeHandle(inode, candidate);
        if (ReadCookie(&handle, stats)) handles.push_back(std::move(handle));
      }
    } catch (...) {
      failure = std::current_exception();  // std::bad_alloc
    }
  });
  helper.join();
  if (failure) std::rethrow_exception(failure);
  return handles;
}

}  // namespace

NetnsRegistry::NetnsRegistry(std::string proc_root, std::string run_netns)
    : proc_root_(std::move(proc_root)), run_netns_(std::move(run_netns)) {}

std::vector<NetnsHandle> NetnsRegistry::Discover(DiscoverStats* stats,
                                                 bool read_cookies) const {
  std::map<uint32_t, Candidate> candidates;
  DiscoverStats local;
  const uint32_t host_inode =
      CollectCandidates(proc_root_, run_netns_, &candidates, &local);
  std::vector<NetnsHandle> handles =
      read_cookies ? TakeHandlesWithCookies(&candidates, &local)
                   : TakeHandles(&candidates);
  SortHostFirst(&handles, host_inode);
  if (stats != nullptr) *stats = local;
  return handles;
}

int OpenNetns(const NetnsHandle& handle) {
  return OpenNamespace(AT_FDCWD, handle.path, handle.inode, nullptr);
}

uint64_t CurrentNetnsCookie() {
  // AF_UNIX: present in every namespace, unlike IPv4/IPv6 which may be
  // disabled; the cookie is the namespace's, whatever the family.
  ScopedFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    throw std::system_error(errno, std::system_category(), "socket(AF_UNIX)");
  }
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  if (getsockopt(fd.get(), SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0) {
    if (errno == ENOPROTOOPT) return 0;
    throw std::system_error(errno, std::system_category(),
                            "getsockopt(SO_NETNS_COOKIE)");
  }
  return cookie;
}

uint32_t CurrentNetnsInode() {
  // thread-self, not self: after setns only this thread is in the namespace.
  struct stat st;
  if (stat("/proc/thread-self/ns/net", &st) != 0) return 0;
  return static_cast<uint32_t>(st.st_ino);
}

void RunInNetnsThread(int netns_fd, const std::function<void()>& body) {
  int setns_error = 0;
  std::exception_ptr failure;
  // setns() moves only the calling thread; this one dies right after, so no
  // thread of the caller ever runs in the other namespace.
  std::thread helper([&] {
    if (setns(netns_fd, CLONE_NEWNET) != 0) {
      setns_error = errno;
      return;
    }
    try {
      body();
    } catch (...) {
      failure = std::current_exception();
    }
  });
  helper.join();
  if (setns_error != 0) {
    throw std::system_error(setns_error, std::system_category(),
                            "setns(CLONE_NEWNET)");
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace tcpstated
