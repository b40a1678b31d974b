// Network-namespace discovery: every network namespace this process can see,
// with the inode that labels metrics (`netns`, as in Event::netns and
// DiagSocket::netns), a human name for tcpstated_netns_info, a path that
// opens it (for sock_diag dumps and per-namespace sysctls) and its netns
// cookie (SO_NETNS_COOKIE, what bpf_get_netns_cookie() returns).
//
// A namespace is found through anything that holds it open and is visible
// from here: PID 1 (the "host"), `ip netns` bind mounts in /run/netns, other
// nsfs bind mounts listed in /proc/self/mountinfo, and the processes in
// /proc. Not found: namespaces held only by a socket or an open descriptor,
// by a non-leader thread that setns()ed, or only visible in another mount or
// PID namespace.
//
// Thread-safety: NetnsRegistry is immutable after construction; Discover()
// may be called from several threads at once. OpenNetns and RunInNetns are
// thread-safe; RunInNetns never changes the namespace of the calling thread.
//
// What throws: Discover() throws std::system_error only if `proc_root` itself
// cannot be listed or no helper thread can be started (a process that
// vanishes or denies access is skipped, a namespace that cannot be entered
// gets cookie 0). RunInNetns throws std::system_error if the namespace
// cannot be entered and rethrows whatever `f` throws. CurrentNetnsCookie
// throws std::system_error if no socket can be made. OpenNetns and
// CurrentNetnsInode do not throw. All may throw std::bad_alloc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace tcpstated {

struct NetnsHandle {
  uint32_t inode = 0;  // nsfs inode number: the `netns` metric label
  // SO_NETNS_COOKIE of a socket opened inside it (never reused, unlike the
  // inode); 0 if the kernel does not support it or the namespace could not
  // be entered.
  uint64_t cookie = 0;
  // "host" for the initial namespace (that of PID 1; see
  // NetnsRegistry::Discover for when PID 1 is out of reach); the `ip netns`
  // name for
  // /run/netns/NAME; the mount path for another nsfs bind mount; otherwise
  // "pid:<pid>:<comm>" of the lowest pid in it. Where several apply, the
  // first in that order wins (ties: the smallest name).
  std::string name;
  // Opens it: /proc/1/ns/net (or /proc/2/ns/net), /run/netns/NAME, the nsfs
  // mount point, or
  // /proc/PID/ns/net (prefixed with the registry's proc_root / run_netns).
  // A /proc/PID path goes stale when that process exits; OpenNetns notices.
  std::string path;
};

// Counts from one Discover() call, for logging.
struct DiscoverStats {
  size_t pids_scanned = 0;
  bool pid_limit_reached = false;  // more than kMaxScannedPids pids: the rest
                                   // were not looked at
  size_t cookie_failures = 0;      // namespaces that could not be entered
};

class NetnsRegistry {
 public:
  // At most this many /proc/<pid> entries are examined per Discover(), so a
  // fork bomb cannot make discovery unbounded.
  static constexpr size_t kMaxScannedPids = 100'000;

  // `proc_root` and `run_netns` exist for tests (a fake tree); the daemon
  // uses the defaults. Nothing is read until Discover().
  explicit NetnsRegistry(std::string proc_root = "/proc",
                         std::string run_netns = "/run/netns");

  // One handle per distinct namespace (deduplicated by inode), the host's
  // first, then by ascending inode. Namespaces that vanish during the scan
  // are dropped. With `read_cookies`, enters each namespace once, on one
  // short-lived helper thread, to read its cookie; needs CAP_SYS_ADMIN for
  // that (cookies are 0 without it). Without, nothing is entered and the
  // cookies stay 0: a namespace is then only opened (and closed) if it is an
  // nsfs mount, to check its type, which is what makes discovery cheap
  // enough to repeat for hundreds of idle namespaces. Needs CAP_SYS_PTRACE
  // / root to see other users' processes.
  // The host is PID 1's namespace; when PID 1 denies access even to root (a
  // hardened init), that of kthreadd (pid 2, a kernel thread, which always
  // lives in the initial namespace), path /proc/2/ns/net; failing both, on
  // Linux >= 6.18, whichever namespace has the fixed initial inode
  // 0xEFFFFFF9. No "host" if none of these is visible (e.g. in a container's
  // PID namespace: then the node's namespace is not seen at all).
  std::vector<NetnsHandle> Discover(DiscoverStats* stats = nullptr,
                                    bool read_cookies = true) const;

 private:
  std::string proc_root_;
  std::string run_netns_;
};

// Opens handle.path O_RDONLY|O_CLOEXEC. Returns the descriptor, or -1 with
// errno set: the open() error, EINVAL if the path is not a network
// namespace, or ESTALE if it now names a different namespace than
// handle.inode (a /proc/PID whose process exited and whose pid was reused,
// or a remounted path; not checked when handle.inode is 0).
int OpenNetns(const NetnsHandle& handle);

// Cookie of the calling thread's network namespace (SO_NETNS_COOKIE of a
// fresh AF_UNIX socket); 0 if the kernel lacks SO_NETNS_COOKIE (before 5.14).
// Throws std::system_error if no socket can be created.
uint64_t CurrentNetnsCookie();

// Inode of the calling thread's network namespace (/proc/thread-self/ns/net),
// 0 if it cannot be read.
uint32_t CurrentNetnsInode();

// Runs `body` on a new thread that first setns(netns_fd, CLONE_NEWNET)s,
// then joins it. Throws std::system_error (setns's errno) if the namespace
// cannot be entered, without running `body`; rethrows what `body` throws.
// The descriptor is not closed.
void RunInNetnsThread(int netns_fd, const std::function<void()>& body);

// Returns f() as evaluated inside the network namespace `netns_fd`: on a
// short-lived thread, so the caller's threads never change namespace (and
// thread_local state seen by `f` is the helper's, not the caller's). What is
// resolved through the current namespace at use (socket(), /proc/sys/net,
// /proc/thread-self/net) is that namespace's; /proc/self/net and /proc/net
// are NOT (they follow the thread-group leader). A socket created inside
// stays in that namespace after `f` returns. Throws as RunInNetnsThread.
// `f` must return void or a non-reference, move-constructible type.
template <typename F>
auto RunInNetns(int netns_fd, F&& f) -> std::invoke_result_t<F&> {
  using Result = std::invoke_result_t<F&>;
  static_assert(!std::is_reference_v<Result>,
                "RunInNetns: return a value, not a reference into the helper "
                "thread's frame");
  if constexpr (std::is_void_v<Result>) {
    RunInNetnsThread(netns_fd, [&f] { f(); });
  } else {
    std::optional<Result> result;
    RunInNetnsThread(netns_fd, [&f, &result] { result.emplace(f()); });
    return std::move(*result);
  }
}

}  // namespace tcpstated
