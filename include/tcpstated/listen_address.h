// The endpoint's listen address, "[host]:port": the one parser, used by the
// configuration (which also refuses port 0) and the HTTP server (whose
// tests ask for an ephemeral port). Opening the socket is listen_socket.h.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "tcpstated/http_error.h"

namespace tcpstated {

// A parsed "[host]:port": the empty host (all addresses), an IPv4 literal,
// "localhost" (127.0.0.1) or a bracketed IPv6 literal ("[::1]:9640"); port
// 0-65535, 0 asking for an ephemeral port.
struct ListenAddress {
  enum class Family { kAny, kIpv4, kIpv6 };
  Family family = Family::kAny;
  std::string host;  // numeric, without brackets; empty for kAny
  uint16_t port = 0;
};

// Throws HttpError naming the address when it is malformed.
ListenAddress ParseListenAddress(const std::string& listen_address);

}  // namespace tcpstated
