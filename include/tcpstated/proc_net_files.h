// Reads the calling thread's network namespace's TCP sysctls and TcpExt
// counters from /proc and hands the text to the pure parsers of
// kernel_settings.h.
//
// Both /proc/sys/net and /proc/thread-self/net are resolved through the
// network namespace of the calling *thread*, so these functions describe
// whichever namespace the caller is in: wrap them in RunInNetns (netns.h) to
// read another one. (/proc/net and /proc/self/net follow the thread-group
// leader instead and would give the wrong namespace there.)
//
// Thread-safety: reentrant, no state.
//
// What throws: std::system_error naming the file when it cannot be read, and
// what the parser throws (std::invalid_argument).
#pragma once

#include "tcpstated/drift_check.h"
#include "tcpstated/kernel_settings.h"

namespace tcpstated {

// The eight sysctls of /proc/sys/net/{ipv4,core}/ that TcpSettings holds.
TcpSettings ReadTcpSettings();

// /proc/thread-self/net/netstat.
TcpExtCounters ReadNetstat();

// /proc/thread-self/net/sockstat and sockstat6 (absent without IPv6).
SocketTotals ReadSockstat();

}  // namespace tcpstated
