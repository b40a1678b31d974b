#include "tcpstated/transition_table.h"

#include <array>

namespace tcpstated {
namespace {

using S = TcpState;

// From shared/reference/linux-tcp-state-transitions.md, "Transitions the
// kernel emits for TCP full sockets". Self-transitions are listed with the
// rest: the tracepoint does not check that the state changed.
const std::vector<std::pair<TcpState, TcpState>> kLegal = {
    // Active open.
    {S::kClose, S::kSynSent},
    {S::kSynSent, S::kEstablished},
    {S::kSynSent, S::kSynRecv},  // simultaneous open, connect to self
    {S::kSynSent, S::kClose},    // refused, unreachable, ports exhausted
    // Passive open: reported on the child, which copied LISTEN.
    {S::kListen, S::kSynRecv},
    {S::kSynRecv, S::kEstablished},
    {S::kSynRecv, S::kClose},
    {S::kSynRecv, S::kFinWait1},
    {S::kSynRecv, S::kCloseWait},
    // Listeners.
    {S::kClose, S::kListen},
    {S::kListen, S::kClose},
    {S::kClose, S::kClose},  // abort of a listener: LISTEN->CLOSE, CLOSE->CLOSE
    // Passive close.
    {S::kEstablished, S::kCloseWait},
    {S::kCloseWait, S::kLastAck},
    {S::kLastAck, S::kClose},
    // Active close.
    {S::kEstablished, S::kFinWait1},
    {S::kFinWait1, S::kFinWait2},
    {S::kFinWait1, S::kClosing},  // simultaneous close
    {S::kFinWait2, S::kClose},    // timewait hand-off, RST, linger timeout
    {S::kClosing, S::kClose},
    // Resets, timeouts and aborts from the remaining synchronized states.
    {S::kEstablished, S::kClose},
    {S::kFinWait1, S::kClose},
    {S::kCloseWait, S::kClose},
    // Self-transitions: close() after shutdown(SHUT_WR) sets the state the
    // socket is already in. No other X->X is emitted.
    {S::kFinWait1, S::kFinWait1},
    {S::kFinWait2, S::kFinWait2},
    {S::kClosing, S::kClosing},
    {S::kLastAck, S::kLastAck},
};

using Matrix = std::array<std::array<bool, kStateSlots>, kStateSlots>;

Matrix BuildMatrix() {
  Matrix m{};
  for (const auto& [from, to] : kLegal)
    m[StateIndex(from)][StateIndex(to)] = true;
  return m;
}

const Matrix kMatrix = BuildMatrix();

}  // namespace

bool IsLegalTransition(TcpState from, TcpState to) {
  size_t f = StateIndex(from);
  size_t t = StateIndex(to);
  return f < kStateSlots && t < kStateSlots && kMatrix[f][t];
}

const std::vector<std::pair<TcpState, TcpState>>& LegalTransitions() {
  return kLegal;
}

}  // namespace tcpstated
