// Turns the peer-liveness dump (ESTABLISHED and FIN_WAIT2 sockets, with
// tcp_info or not, see KernelView) into the inputs of the FIN_WAIT2 and
// peer-liveness detectors. Pure: what the mirror knows of a socket (owner,
// role, time in its state) comes through a lookup the caller provides.
//
// Thread-safety: pure function (the lookup runs on the calling thread).
// What throws: std::bad_alloc, and whatever the lookup throws.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tcpstated/fin_wait2_detector.h"
#include "tcpstated/peer_liveness.h"
#include "tcpstated/sock_diag.h"
#include "tcpstated/tcp_state.h"

namespace tcpstated {

// What the mirror knows of a dumped socket.
struct KnownSocket {
  std::string comm;  // "" if unknown
  uint32_t tgid = 0;
  Role role = Role::kUnknown;
  double age_seconds = -1;  // in its current state; negative if unknown
};
using SocketLookup = std::function<KnownSocket(const DiagSocket&)>;

struct PeerSockets {
  std::vector<FinWait2Socket> fin_wait2;  // every one, orphans included
  // Only those the detectors can flag (idle longer than idle_after, or a
  // dead peer): a million quiet connections cost no lookup and no row.
  std::vector<EstablishedSocket> established;
};

// Appends the sockets of one namespace's dump to `out`. LISTEN sockets in
// the dump tell the role of connections the mirror cannot match: one on a
// local listening port was accepted (server), any other is a client. A
// FIN_WAIT2 socket is an orphan when it is a timewait socket or has no inode
// (no file refers to it). Its age is the larger of the mirror's and the time
// since the last ACK arrived (the peer's ACK of our FIN, unless it sent
// data since): both are lower bounds.
void ClassifyPeerSockets(const std::vector<DiagSocket>& dump,
                         const PeerLivenessConfig& liveness,
                         const SocketLookup& lookup, PeerSockets* out);

}  // namespace tcpstated
