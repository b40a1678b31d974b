// TCP states as the kernel numbers them, their metric label names, and the
// socket roles the mirror assigns.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tcpstated {

enum class TcpState : uint8_t {
  kEstablished = 1,
  kSynSent = 2,
  kSynRecv = 3,
  kFinWait1 = 4,
  kFinWait2 = 5,
  kTimeWait = 6,
  kClose = 7,
  kCloseWait = 8,
  kLastAck = 9,
  kListen = 10,
  kClosing = 11,
  kNewSynRecv = 12,
  kBoundInactive = 13,
};

// Array size for per-state tables indexed by the kernel number (0 unused).
inline constexpr size_t kStateSlots = 14;

// The twelve states that tcpstated reports (BOUND_INACTIVE is not a
// connection state and never appears in metrics).
inline constexpr std::array<TcpState, 12> kReportedStates = {
    TcpState::kSynSent,  TcpState::kSynRecv,   TcpState::kEstablished,
    TcpState::kFinWait1, TcpState::kFinWait2,  TcpState::kTimeWait,
    TcpState::kClose,    TcpState::kCloseWait, TcpState::kLastAck,
    TcpState::kListen,   TcpState::kClosing,   TcpState::kNewSynRecv,
};

// Label value: "established", "syn_sent", ... ("unknown" out of range).
std::string_view StateName(TcpState state);
// Kernel-style upper-case name for logs: "ESTABLISHED", "SYN_SENT", ...
std::string_view StateKernelName(TcpState state);
// A kernel state number (1..13) as a TcpState, or nullopt.
std::optional<TcpState> StateFromNumber(unsigned number);

inline constexpr size_t StateIndex(TcpState state) {
  return static_cast<size_t>(state);
}

enum class Role : uint8_t {
  kUnknown = 0,  // adopted mid-life: no connect()/listen()/accept seen
  kClient = 1,   // went through connect()
  kServer = 2,   // accepted from a listener
  kListener = 3,
};

std::string_view RoleName(Role role);

}  // namespace tcpstated
