#include "tcpstated/tcp_state.h"

namespace tcpstated {
namespace {

struct StateNames {
  std::string_view label;
  std::string_view kernel;
};

constexpr std::array<StateNames, kStateSlots> kNames = {{
    {"unknown", "UNKNOWN"},
    {"established", "ESTABLISHED"},
    {"syn_sent", "SYN_SENT"},
    {"syn_recv", "SYN_RECV"},
    {"fin_wait1", "FIN_WAIT1"},
    {"fin_wait2", "FIN_WAIT2"},
    {"time_wait", "TIME_WAIT"},
    {"close", "CLOSE"},
    {"close_wait", "CLOSE_WAIT"},
    {"last_ack", "LAST_ACK"},
    {"listen", "LISTEN"},
    {"closing", "CLOSING"},
    {"new_syn_recv", "NEW_SYN_RECV"},
    {"bound_inactive", "BOUND_INACTIVE"},
}};

}  // namespace

std::string_view StateName(TcpState state) {
  size_t i = StateIndex(state);
  return i < kNames.size() ? kNames[i].label : kNames[0].label;
}

std::string_view StateKernelName(TcpState state) {
  size_t i = StateIndex(state);
  return i < kNames.size() ? kNames[i].kernel : kNames[0].kernel;
}

std::optional<TcpState> StateFromNumber(unsigned number) {
  if (number < 1 || number >= kStateSlots) return std::nullopt;
  return static_cast<TcpState>(number);
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kClient:
      return "client";
    case Role::kServer:
      return "server";
    case Role::kListener:
      return "listener";
    case Role::kUnknown:
      break;
  }
  return "unknown";
}

}  // namespace tcpstated
