#include "tcpstated/http_server.h"

#include <civetweb.h>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

namespace tcpstated {
namespace {

// civetweb reports start-up errors only through its log callback; keep the
// last one to put in our own message.
std::mutex g_start_error_mutex;
std::string g_start_error;

int LogMessage(const mg_connection*, const char* message) {
  std::lock_guard<std::mutex> lock(g_start_error_mutex);
  g_start_error = message != nullptr ? message : "";
  return 1;  // handled: civetweb must not print to stderr itself
}

void Send(mg_connection* conn, int status, const char* status_text,
          const char* content_type, const std::string& body) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\n"
            "Content-Type: %s\r\n"
            "Content-Length: %zu\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n\r\n",
            status, status_text, content_type, body.size());
  const mg_request_info* info = mg_get_request_info(conn);
  if (info == nullptr || std::strcmp(info->request_method, "HEAD") != 0) {
    mg_write(conn, body.data(), body.size());
  }
}

bool MethodAllowed(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  if (info != nullptr && (std::strcmp(info->request_method, "GET") == 0 ||
                          std::strcmp(info->request_method, "HEAD") == 0)) {
    return true;
  }
  Send(conn, 405, "Method Not Allowed", "text/plain; charset=utf-8",
       "only GET and HEAD are allowed\n");
  return false;
}

}  // namespace

std::string CivetwebListenSpec(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    throw HttpError("listen address \"" + address +
                    "\" is not of the form [host]:port");
  }
  std::string host = address.substr(0, colon);
  std::string port = address.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535) {
    throw HttpError("listen address \"" + address + "\" has a bad port");
  }
  if (host.empty()) return port;
  if (host == "localhost") host = "127.0.0.1";
  return host + ":" + port;
}

HttpServer::HttpServer(const std::string& listen_address,
                       const std::string& telemetry_path, Handlers handlers)
    : telemetry_path_(telemetry_path), handlers_(std::move(handlers)) {
  static std::once_flag init;
  std::call_once(init, [] { mg_init_library(0); });
  std::string ports = CivetwebListenSpec(listen_address);
  // Where a connection reaches our own listener (to wake it on stop).
  std::string host = ports.find(':') == std::string::npos
                         ? "127.0.0.1"
                         : ports.substr(0, ports.rfind(':'));
  if (inet_pton(AF_INET, host.c_str(), &wake_address_) != 1) {
    throw HttpError("listen address \"" + listen_address +
                    "\" is not an IPv4 address");
  }
  const char* options[] = {"listening_ports", ports.c_str(), "num_threads", "4",
                           // A stalled scraper is dropped, not waited for.
                           "request_timeout_ms", "10000", "enable_keep_alive",
                           "no", nullptr};
  mg_callbacks callbacks{};
  callbacks.log_message = LogMessage;
  {
    std::lock_guard<std::mutex> lock(g_start_error_mutex);
    g_start_error.clear();
  }
  ctx_ = mg_start(&callbacks, this, options);
  if (ctx_ == nullptr) {
    std::lock_guard<std::mutex> lock(g_start_error_mutex);
    std::string why = g_start_error.empty() ? "unknown error" : g_start_error;
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) {
      why.pop_back();
    }
    throw HttpError("cannot listen on " + listen_address + ": " + why +
                    " (is another process using the port? set "
                    "--web.listen-address)");
  }
  std::string metrics_uri = telemetry_path_ + "$";
  mg_set_request_handler(ctx_, metrics_uri.c_str(), HandleMetrics, this);
  mg_set_request_handler(ctx_, "/healthz$", HandleHealth, this);
  mg_set_request_handler(ctx_, "/$", HandleRoot, this);
}

HttpServer::~HttpServer() {
  if (ctx_ == nullptr) return;
  // civetweb's master thread polls its listening socket for up to two
  // seconds before it notices the stop flag; a connection wakes it at once.
  int port = this->port();
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    mg_stop(ctx_);
    stopped = true;
  });
  for (int i = 0; i < 20 && !stopped && port > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = wake_address_;
    connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    close(fd);
  }
  stopper.join();
}

int HttpServer::port() const {
  mg_server_port ports[4] = {};
  int n = mg_get_server_ports(ctx_, 4, ports);
  return n > 0 ? ports[0].port : -1;
}

int HttpServer::HandleMetrics(mg_connection* conn, void* self) {
  if (!MethodAllowed(conn)) return 405;
  auto* server = static_cast<HttpServer*>(self);
  Send(conn, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
       server->handlers_.metrics());
  return 200;
}

int HttpServer::HandleHealth(mg_connection* conn, void* self) {
  if (!MethodAllowed(conn)) return 405;
  auto* server = static_cast<HttpServer*>(self);
  std::string detail;
  bool ok = server->handlers_.health(&detail);
  Send(conn, ok ? 200 : 503, ok ? "OK" : "Service Unavailable",
       "text/plain; charset=utf-8", detail + "\n");
  return ok ? 200 : 503;
}

int HttpServer::HandleRoot(mg_connection* conn, void* self) {
  if (!MethodAllowed(conn)) return 405;
  auto* server = static_cast<HttpServer*>(self);
  std::string body =
      "<!DOCTYPE html>\n<html><head><title>tcpstated</title></head><body>\n"
      "<h1>tcpstated</h1>\n<p>TCP connection-state exporter.</p>\n<ul>\n"
      "<li><a href=\"" +
      server->telemetry_path_ +
      "\">Metrics</a></li>\n"
      "<li><a href=\"/healthz\">Health</a></li>\n</ul>\n</body></html>\n";
  Send(conn, 200, "OK", "text/html; charset=utf-8", body);
  return 200;
}

}  // namespace tcpstated
