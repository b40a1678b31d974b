// A listening TCP socket on a parsed listen address.
//
// Thread-safety: reentrant.
#pragma once

#include <string>

#include "tcpstated/listen_address.h"

namespace tcpstated {

// Binds and listens on `address` (a non-blocking, close-on-exec socket;
// the empty host covers IPv6 and IPv4 in one socket, or IPv4 alone where
// the host has no IPv6). Throws HttpError naming `text`, with a hint for a
// port in use or a missing privilege.
int ListenOn(const ListenAddress& address, const std::string& text);

}  // namespace tcpstated
