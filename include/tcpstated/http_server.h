// The HTTP endpoint: the telemetry path, /healthz and a landing page at /.
//
// A small HTTP/1.1 server of our own, with TLS from OpenSSL: one acceptor
// thread hands connections to a fixed pool of 4 worker threads through a
// bounded queue (64). Each connection carries one request (Connection:
// close). Every read and write has a deadline, so a slow or stalled client
// ties up one worker for at most 10 s (TLS handshake and request head
// together) + 10 s (response) + 1 s (draining before the close), and never
// anything else; when the queue is full, new connections are closed at once
// and counted.
//
// Thread-safety: handlers are called concurrently from worker threads and
// must be thread-safe; they are called only after a complete, valid and
// (with basic auth) authorised request has been read. Construction and
// destruction from one thread; port() and dropped_connections() from any.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tcpstated/http_request.h"
#include "tcpstated/web_config.h"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace tcpstated {

class HttpError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class HttpServer {
 public:
  struct Handlers {
    // Prometheus text exposition of the current metrics.
    std::function<std::string()> metrics;
    // true if healthy; `detail` says why not (or a short status).
    std::function<bool(std::string* detail)> health;
    // /debug/sockets: JSON for the query string (after '?'); sets *status
    // (200, or 400 with a one-line error body). Optional.
    std::function<std::string(const std::string& query, int* status)>
        debug_sockets;
    // More pages (the live page and its API, web_ui.h): for a path it
    // serves, sets the content type, body and extra header lines (each
    // ending in CRLF) and returns true. Optional.
    std::function<bool(const std::string& path, std::string* content_type,
                       std::string* body, std::string* headers)>
        pages;
  };

  // Starts listening. `listen_address` is "[host]:port" (see
  // ParseListenAddress; empty host: all IPv6 and IPv4 addresses). With
  // web.tls the port speaks only TLS (1.2 or newer, or 1.3 only); with
  // web.users every path requires basic authentication. Throws HttpError
  // naming the address when it cannot listen (port in use, bad address), or
  // naming the file when the certificate or key is unusable.
  HttpServer(const std::string& listen_address,
             const std::string& telemetry_path, Handlers handlers,
             WebConfig web = WebConfig());
  // Stops accepting, abandons connections still being read or written, and
  // waits only for handlers already running.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The TCP port actually bound (useful with port 0 in tests).
  int port() const;
  // Connections closed unanswered because the queue was full.
  uint64_t dropped_connections() const;

 private:
  struct Response;
  struct SslCtxDeleter {
    void operator()(ssl_ctx_st* ctx) const;
  };

  void AcceptLoop();
  // Queues an accepted connection for the workers, or closes it when the
  // queue is full.
  void Enqueue(int fd);
  void WorkerLoop();
  // Reads one request from `fd`, answers it and closes `fd`.
  void Serve(int fd);
  // The answer to a complete, valid request: auth, method, then path.
  Response Route(const HttpRequest& request);
  // Signals every thread, joins them and closes every descriptor; safe on
  // a partially constructed server.
  void Stop();

  std::string listen_address_;
  std::string telemetry_path_;
  Handlers handlers_;
  WebConfig web_;
  std::unique_ptr<ssl_ctx_st, SslCtxDeleter> ssl_ctx_;  // null without TLS
  int listen_fd_ = -1;
  // An eventfd that becomes readable, and stays so, when stopping: every
  // poll() in the server includes it, so no thread sleeps through a stop.
  int stop_fd_ = -1;
  int port_ = 0;

  std::mutex mutex_;
  std::condition_variable queue_changed_;
  std::deque<int> queue_;  // accepted, not yet picked up by a worker
  bool stopping_ = false;
  std::atomic<uint64_t> dropped_{0};
  // When the acceptor last warned (about drops, about accept failures):
  // at most once a minute each, so an overload does not flood the log.
  std::optional<std::chrono::steady_clock::time_point> last_drop_warning_;
  std::optional<std::chrono::steady_clock::time_point> last_accept_warning_;

  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

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
