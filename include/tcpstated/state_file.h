// The state file: what the daemon learned about sockets that the kernel
// does not keep for it, so that a restart does not forget it. Today that is
// when each CLOSE_WAIT and FIN_WAIT2 socket entered its state: the kernel's
// tcp_info only bounds it (tcpi_last_ack_recv, which every keepalive ACK
// resets), and a leak whose age restarts at each restart is never flagged.
//
// A socket is named by what the kernel keeps stable across the daemon's
// restart: its namespace (inode and cookie), its cookie and its 4-tuple.
// Times are CLOCK_MONOTONIC, valid only within one boot: the file carries
// the boot id and is ignored after a reboot (no socket survives one).
//
// The text format, one record per line, fields separated by one space:
//   tcpstated-state 1
//   boot <boot id>
//   written <monotonic ns>
//   entries <n>
//   s <netns> <netns cookie> <cookie> <state> <4|6> <saddr hex32> <sport>
//     <daddr hex32> <dport> <entered ns> <exact|lower>     (one line each)
//   end
// "end" and the count catch a truncated file.
//
// Pure: no I/O (the daemon's state_store.cpp reads and writes the file).
// Thread-safety: the functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tcpstated/event.h"
#include "tcpstated/tcp_state.h"

namespace tcpstated {

// Bounds: the file is at most this many records (the rest are not saved:
// the oldest ages are kept, see Mirror::SavedSockets), and a file longer
// than kMaxStateFileBytes is refused unread.
inline constexpr size_t kMaxStateEntries = 100000;
inline constexpr size_t kMaxStateLineBytes = 160;
inline constexpr size_t kMaxStateFileBytes =
    (kMaxStateEntries + 8) * kMaxStateLineBytes;
inline constexpr int kStateFileVersion = 1;

struct SavedSocket {
  uint32_t netns = 0;         // namespace inode
  uint64_t netns_cookie = 0;  // 0 if unknown
  uint64_t cookie = 0;        // socket cookie; 0 if unknown
  TcpState state = TcpState::kClose;
  bool ipv6 = false;
  Address saddr{};
  Address daddr{};
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint64_t entered_ns = 0;  // CLOCK_MONOTONIC
  // The daemon never saw the socket enter its state: entered_ns is only the
  // latest it can have been (from tcp_info).
  bool lower_bound = false;
};

struct StateFile {
  std::string boot_id;  // /proc/sys/kernel/random/boot_id, no spaces
  uint64_t written_ns = 0;
  std::vector<SavedSocket> sockets;
};

// The file's text. Sockets beyond kMaxStateEntries are left out; a boot id
// with whitespace is written as "unknown".
std::string FormatStateFile(const StateFile& file);

// Parses the text FormatStateFile writes. Returns false with a one-line
// reason in *error for anything else: another version, a truncated or
// corrupt file, more than kMaxStateEntries records, an oversized text.
// Never throws.
bool ParseStateFile(std::string_view text, StateFile* out, std::string* error);

}  // namespace tcpstated
