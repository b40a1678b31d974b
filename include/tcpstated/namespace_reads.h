// One batch of per-namespace reads: for each network namespace a cycle
// needs, a sock_diag dump, its sysctls and its TcpExt counters, all taken in
// one visit. One short-lived helper thread enters the namespaces in turn, so
// a cycle costs one thread however many namespaces it reads, and nothing is
// held between cycles: the namespace's descriptor is closed as soon as the
// thread is inside, the netlink socket when the dump is done, and the thread
// leaves the namespace when it exits. No descriptor or socket of tcpstated
// keeps a dead namespace alive, and descriptors in use stay at a handful
// whatever the number of namespaces.
//
// Thread-safety: ReadNamespaces may be called from any thread; it never
// changes the namespace of the calling thread.
//
// What throws: ReadNamespaces throws std::system_error only if the helper
// thread cannot be started, and std::bad_alloc; a namespace that cannot be
// entered or read is reported in its result.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tcpstated/drift_check.h"
#include "tcpstated/kernel_settings.h"
#include "tcpstated/netns.h"
#include "tcpstated/sock_diag.h"

namespace tcpstated {

// What one cycle wants from one namespace.
struct NamespaceRequest {
  NetnsHandle handle;      // opened by path, checked against its inode
  uint32_t dump_mask = 0;  // sock_diag state bits; 0: no dump
  bool dump_tcp_info = false;
  bool read_settings = false;  // TcpSettings (eight sysctls)
  bool read_counters = false;  // TcpExt counters (/proc/thread-self/net)
  bool read_sockstat = false;  // socket totals (drift_check.h)
  // Read the files only if the dump found a socket: at start-up every
  // namespace is dumped once, and one without sockets is left at that.
  bool files_only_if_sockets = false;
};

struct NamespaceResult {
  uint32_t inode = 0;
  // 0 once inside; otherwise the errno of open() (ENOENT, or ESTALE when
  // the path now names another namespace: it is gone or has moved) or of
  // setns() (EPERM without CAP_SYS_ADMIN). Nothing else is filled then.
  int enter_error = 0;
  uint64_t cookie = 0;  // SO_NETNS_COOKIE; 0 if the kernel lacks it
  bool dumped = false;  // `sockets` holds a complete dump
  std::vector<DiagSocket> sockets;
  std::optional<TcpSettings> settings;
  std::optional<TcpExtCounters> counters;
  std::optional<SocketTotals> sockstat;
  // One line per read that failed (dump, sysctls, netstat), for the log.
  std::vector<std::string> failures;
};

// Visits each request's namespace in order and returns one result per
// request, in the same order.
std::vector<NamespaceResult> ReadNamespaces(
    const std::vector<NamespaceRequest>& requests);

}  // namespace tcpstated
