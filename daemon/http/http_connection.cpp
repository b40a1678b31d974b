#include "daemon/http/http_connection.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "tcpstated/http_request.h"
#include "tcpstated/http_server.h"

namespace tcpstated {
namespace {

using Clock = std::chrono::steady_clock;

// How long, and how much, to read after answering before closing (see
// HttpServer::Drain).
constexpr auto kLingerTimeout = std::chrono::seconds(1);
constexpr size_t kLingerBytes = 64 * 1024;

// What OpenSSL asks for after a call on `ssl` returned `ret`: EPOLLIN or
// EPOLLOUT, 0 for a failure.
uint32_t SslWants(SSL* ssl, int ret) {
  const int error = SSL_get_error(ssl, ret);
  ERR_clear_error();
  if (error == SSL_ERROR_WANT_READ) return EPOLLIN;
  if (error == SSL_ERROR_WANT_WRITE) return EPOLLOUT;
  return 0;
}

}  // namespace

bool HttpServer::Advance(Connection* c) {
  using Phase = Connection::Phase;
  // Each step runs when the connection is in its phase, and the next one
  // when it has finished it; kWaiting is with a thread, nothing to do.
  Progress progress = Progress::kPhaseDone;
  if (c->phase == Phase::kHandshake) progress = Handshake(c);
  if (progress == Progress::kPhaseDone && c->phase == Phase::kHead) {
    progress = ReadRequest(c);
  }
  if (progress == Progress::kPhaseDone && c->phase == Phase::kWrite) {
    progress = WriteResponse(c);
  }
  if (progress == Progress::kPhaseDone && c->phase == Phase::kDrain) {
    progress = Drain(c);
  }
  return progress != Progress::kGone;
}

HttpServer::Progress HttpServer::AwaitSsl(Connection* c, int ret) {
  const uint32_t wants = SslWants(c->ssl, ret);
  if (wants == 0) {
    CloseConnection(c);
    return Progress::kGone;
  }
  Watch(c, wants);
  return Progress::kWaiting;
}

HttpServer::Progress HttpServer::Handshake(Connection* c) {
  ERR_clear_error();
  const int ret = SSL_accept(c->ssl);
  // Plain HTTP to the TLS port, an old protocol version, a client
  // certificate refused: nothing to answer, AwaitSsl closes.
  if (ret != 1) return AwaitSsl(c, ret);
  c->phase = Connection::Phase::kHead;
  return Progress::kPhaseDone;
}

HttpServer::Progress HttpServer::ReadRequest(Connection* c) {
  for (;;) {
    char buf[4096];
    ssize_t n = 0;
    uint32_t wants = EPOLLIN;
    if (c->ssl != nullptr) {
      ERR_clear_error();
      size_t got = 0;
      const int ret = SSL_read_ex(c->ssl, buf, sizeof(buf), &got);
      n = ret == 1 ? static_cast<ssize_t>(got) : -1;
      if (ret != 1) wants = SslWants(c->ssl, ret);
    } else {
      n = recv(c->fd, buf, sizeof(buf), 0);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        wants = 0;
      }
    }
    if (n == 0 || (n < 0 && wants == 0)) {
      CloseConnection(c);  // gone before asking anything: nobody to answer
      return Progress::kGone;
    }
    if (n < 0) {
      Watch(c, wants);
      return Progress::kWaiting;
    }
    c->in.append(buf, static_cast<size_t>(n));
    const HttpParseResult parsed = ParseHttpRequest(c->in);
    if (parsed.status != HttpParseResult::Status::kIncomplete) {
      OnRequest(c, parsed);  // may close c
      return Progress::kGone;
    }
  }
}

HttpServer::Progress HttpServer::WriteResponse(Connection* c) {
  while (c->sent < c->out.size()) {
    const char* data = c->out.data() + c->sent;
    const size_t size = c->out.size() - c->sent;
    if (c->ssl != nullptr) {
      ERR_clear_error();
      size_t written = 0;
      const int ret = SSL_write_ex(c->ssl, data, size, &written);
      if (ret == 1) {
        c->sent += written;
        continue;
      }
      return AwaitSsl(c, ret);
    }
    // MSG_NOSIGNAL: a client gone away must not raise SIGPIPE.
    const ssize_t n = send(c->fd, data, size, MSG_NOSIGNAL);
    if (n >= 0) {
      c->sent += static_cast<size_t>(n);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      Watch(c, EPOLLOUT);
      return Progress::kWaiting;
    } else if (errno != EINTR) {
      CloseConnection(c);
      return Progress::kGone;
    }
  }
  // Closing a socket with unread input (a request body, a pipelined
  // request) makes the kernel send a reset, which can destroy the
  // response before the client has read it; so send our end of stream
  // and read until the client closes too, for a short while.
  if (c->ssl != nullptr) {
    ERR_clear_error();
    SSL_shutdown(c->ssl);  // sends close_notify; no wait for the client's
    ERR_clear_error();
  }
  shutdown(c->fd, SHUT_WR);
  c->phase = Connection::Phase::kDrain;
  c->deadline = Clock::now() + kLingerTimeout;
  return Progress::kPhaseDone;
}

HttpServer::Progress HttpServer::Drain(Connection* c) {
  for (;;) {
    char buf[4096];
    const ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
    if (n > 0) {
      c->drained += static_cast<size_t>(n);
      if (c->drained < kLingerBytes) continue;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      Watch(c, EPOLLIN);
      return Progress::kWaiting;
    }
    CloseConnection(c);  // end of stream, an error or enough: done
    return Progress::kGone;
  }
}

}  // namespace tcpstated
