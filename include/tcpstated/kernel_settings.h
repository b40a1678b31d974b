// Per-network-namespace TCP sysctls and TcpExt counters: the limits the
// detectors compare against (ephemeral port range, reserved ports,
// tcp_max_tw_buckets, SYN/accept queue limits) and the kernel's own drop and
// cookie counters (shared/reference/linux-tcp-state-transitions.md), parsed
// from the text the kernel prints. Reading the files is the edge's job
// (proc_net_files.h): this half is pure and belongs to the core library.
//
// Thread-safety: every function is reentrant and may be called from any
// thread; none keeps state.
//
// What throws: the Parse* functions throw std::invalid_argument naming the
// sysctl or the netstat section/field on malformed input (they are fuzzed:
// nothing else, apart from std::bad_alloc).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace tcpstated {

struct TcpSettings {
  // net.ipv4.ip_local_port_range, inclusive.
  uint32_t port_range_lo = 32768;
  uint32_t port_range_hi = 60999;
  // net.ipv4.ip_local_reserved_ports as inclusive [first, last] ranges, in
  // the kernel's order (sorted, merged); a single port is [p, p].
  std::vector<std::pair<uint32_t, uint32_t>> reserved_ports;
  // net.ipv4.tcp_max_tw_buckets; a negative kernel value (which makes every
  // timewait socket overflow) reads as 0.
  uint64_t max_tw_buckets = 0;
  int tw_reuse = 2;  // net.ipv4.tcp_tw_reuse: 0 off, 1 on, 2 loopback only
  // net.ipv4.tcp_fin_timeout in seconds; negative reads as 0 (the kernel
  // then uses its RTO-based floor either way).
  uint32_t fin_timeout_s = 60;
  uint32_t somaxconn = 4096;        // net.core.somaxconn
  uint32_t max_syn_backlog = 1024;  // net.ipv4.tcp_max_syn_backlog (< 0 -> 0)
  int syncookies = 1;  // net.ipv4.tcp_syncookies: 0 off, 1 on overflow,
                       // 2 always (any other non-zero value acts as 1)
};

// Builds settings from sysctl file contents keyed by file name:
// "ip_local_port_range", "ip_local_reserved_ports", "tcp_max_tw_buckets",
// "tcp_tw_reuse", "tcp_fin_timeout", "somaxconn", "tcp_max_syn_backlog",
// "tcp_syncookies" (other keys are ignored). Values are as the kernel prints
// them (surrounding whitespace allowed). Pure.
// Throws std::invalid_argument, naming the sysctl, for a missing key or a
// value the kernel could not have printed (not a decimal integer, out of
// range, port range low > high, reserved range first > last, ...).
TcpSettings ParseTcpSettings(const std::map<std::string, std::string>& files);

// Ports connect() may pick: the size of the ephemeral range minus the
// reserved ports inside it (overlapping reserved ranges counted once, the
// part of a range outside the ephemeral one ignored). 0 if low > high.
uint32_t EphemeralPortsAvailable(const TcpSettings& settings);

// The TcpExt counters the detectors use; a field absent from the kernel's
// table (older kernel) stays 0.
struct TcpExtCounters {
  uint64_t ListenOverflows = 0;       // accept queue full
  uint64_t ListenDrops = 0;           // every listener drop (superset)
  uint64_t TCPReqQFullDrop = 0;       // SYN queue full, no cookies: dropped
  uint64_t TCPReqQFullDoCookies = 0;  // SYN queue full, answered by cookie
  uint64_t SyncookiesSent = 0;
  uint64_t SyncookiesRecv = 0;
  uint64_t SyncookiesFailed = 0;
  uint64_t TCPTimeWaitOverflow = 0;  // tcp_max_tw_buckets reached
  uint64_t TW = 0;                   // timewait sockets that ran their course
  uint64_t TWRecycled = 0;           // reused by connect() (tcp_tw_reuse)
  uint64_t TWKilled = 0;
  uint64_t EmbryonicRsts = 0;
};

// Parses /proc/net/netstat: pairs of lines "Section: name name ..." /
// "Section: value value ...". Only TcpExt is used; every section is checked.
// Fields may come in any order, unknown fields are ignored, missing ones are
// 0. Pure. Throws std::invalid_argument with a short message when the text is
// malformed: no TcpExt section or two of them, a header without its value
// line, a value line whose section differs, counts that differ, a value that
// is not an unsigned 64-bit decimal, a field named twice in TcpExt.
TcpExtCounters ParseNetstat(const std::string& text);

}  // namespace tcpstated
