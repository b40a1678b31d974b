// The HTTP endpoint: the telemetry path, /healthz and a landing page at /,
// served by civetweb worker threads.
//
// Thread-safety: handlers are called concurrently from worker threads and
// must be thread-safe. Construction and destruction from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

struct mg_context;
struct mg_connection;

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
  };

  // Starts listening. `listen_address` is "[host]:port" (empty host: all
  // IPv4 addresses). Throws HttpError naming the address when it cannot
  // listen (port in use, bad address).
  HttpServer(const std::string& listen_address,
             const std::string& telemetry_path, Handlers handlers);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The TCP port actually bound (useful with port 0 in tests).
  int port() const;

 private:
  static int HandleMetrics(mg_connection* conn, void* self);
  static int HandleHealth(mg_connection* conn, void* self);
  static int HandleRoot(mg_connection* conn, void* self);

  std::string telemetry_path_;
  Handlers handlers_;
  mg_context* ctx_ = nullptr;
  uint32_t wake_address_ = 0;  // network order
};

// Converts "[host]:port" to civetweb's listening_ports syntax; throws
// HttpError on a malformed address.
std::string CivetwebListenSpec(const std::string& listen_address);

}  // namespace tcpstated
