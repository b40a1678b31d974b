// The transitions Linux emits for TCP full sockets through
// sock:inet_sock_set_state (see shared/reference). Anything else is an
// invalid transition.
//
// Thread-safety: pure functions over constant data.
#pragma once

#include <utility>
#include <vector>

#include "tcpstated/tcp_state.h"

namespace tcpstated {

bool IsLegalTransition(TcpState from, TcpState to);

// Every legal (from, to) pair, in a stable order (for always-present series).
const std::vector<std::pair<TcpState, TcpState>>& LegalTransitions();

}  // namespace tcpstated
