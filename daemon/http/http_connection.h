// One connection of the HTTP server as its event loop drives it: the
// phases it goes through (TLS handshake, request head, waiting for a
// thread, response, drain) and the socket I/O of each, in
// http_connection.cpp. Private to daemon/http/: the server's threads,
// accept and routing are http_server.cpp.
//
// Thread-safety: a Connection belongs to the loop thread.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "tcpstated/http_server.h"

namespace tcpstated {

// One accepted socket, owned by the loop thread from accept to close.
struct HttpServer::Connection {
  enum class Phase {
    kHandshake,  // TLS handshake
    kHead,       // reading the request head
    kWaiting,    // with the auth thread or a worker; not watched
    kWrite,      // sending the response
    kDrain,      // response sent: reading until the client closes
  };
  int fd = -1;
  SSL* ssl = nullptr;
  std::string source;
  bool loopback = false;
  std::shared_ptr<const Settings> settings;
  Phase phase = Phase::kHead;
  std::chrono::steady_clock::time_point accepted;
  std::chrono::steady_clock::time_point deadline;
  uint32_t watched = 0;  // epoll events registered; 0: not registered
  std::string in;
  std::string out;
  size_t sent = 0;
  size_t drained = 0;
};

}  // namespace tcpstated
