#include "tcpstated/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string_view>
#include <utility>

namespace tcpstated {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kWorkers = 4;
// Connections accepted but not yet picked up by a worker. Prometheus opens
// one per scrape; beyond this something is wrong and queueing more would
// only make every client time out.
constexpr size_t kMaxPending = 64;
// For the TLS handshake and the request head together, and again for the
// response: a client too slow for either is dropped.
constexpr auto kRequestTimeout = std::chrono::seconds(10);
constexpr auto kResponseTimeout = std::chrono::seconds(10);
// How long, and how much, to read after answering before closing (see
// Connection::Close).
constexpr auto kLingerTimeout = std::chrono::seconds(1);
constexpr size_t kLingerBytes = 64 * 1024;
constexpr auto kWarningInterval = std::chrono::minutes(1);

constexpr char kMetricsType[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr char kTextType[] = "text/plain; charset=utf-8";

// True if a rate-limited warning may be logged now (and records that).
bool WarningDue(std::optional<Clock::time_point>* last) {
  const Clock::time_point now = Clock::now();
  if (last->has_value() && now - **last < kWarningInterval) return false;
  *last = now;
  return true;
}

// The most recent OpenSSL error on this thread, for messages; clears the
// thread's error queue.
struct OpenSslError {
  unsigned long code = 0;
  std::string reason = "unknown error";
};

OpenSslError LastOpenSslError() {
  OpenSslError error;
  error.code = ERR_peek_last_error();
  const char* reason =
      error.code != 0 ? ERR_reason_error_string(error.code) : nullptr;
  if (reason != nullptr) error.reason = reason;
  ERR_clear_error();
  return error;
}

enum class Wait { kReady, kTimeout, kStop };

// Waits until `fd` has `events`, the deadline passes or the server stops
// (`stop_fd` readable). Errors and hang-ups count as ready: the next read
// or write reports them.
Wait WaitFor(int fd, short events, int stop_fd, Clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Wait::kTimeout;
    pollfd fds[2] = {{stop_fd, POLLIN, 0}, {fd, events, 0}};
    const int n = poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR) return Wait::kTimeout;
    if (n <= 0) continue;
    if (fds[0].revents != 0) return Wait::kStop;
    if (fds[1].revents != 0) return Wait::kReady;
  }
}

// One accepted, non-blocking socket, with TLS on top if configured. Every
// operation takes a deadline and gives up early when the server stops.
class Connection {
 public:
  Connection(int fd, SSL_CTX* ctx, int stop_fd) : fd_(fd), stop_fd_(stop_fd) {
    if (ctx == nullptr) return;
    ssl_ = SSL_new(ctx);
    if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1) failed_ = true;
  }
  ~Connection() {
    SSL_free(ssl_);
    close(fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs the server side of the TLS handshake, if any.
  bool Handshake(Clock::time_point deadline) {
    if (failed_) return false;
    if (ssl_ == nullptr) return true;
    for (;;) {
      ERR_clear_error();  // SSL_get_error looks at the thread's queue
      const int ret = SSL_accept(ssl_);
      if (ret == 1) return true;
      if (!WaitForSsl(ret, deadline)) {
        // E.g. "http request" for plain HTTP sent to the TLS port, or
        // "unsupported protocol" for TLS 1.1.
        const OpenSslError error = LastOpenSslError();
        spdlog::debug("HTTP: TLS handshake failed: {}",
                      error.code != 0 ? error.reason
                                      : "client too slow, gone or stopping");
        return false;
      }
    }
  }

  // Returns the number of bytes read into `buf`, 0 at the end of the
  // stream, or -1 on an error, at the deadline or when stopping.
  ssize_t Read(char* buf, size_t size, Clock::time_point deadline) {
    if (failed_) return -1;
    for (;;) {
      if (ssl_ != nullptr) {
        ERR_clear_error();
        size_t got = 0;
        const int ret = SSL_read_ex(ssl_, buf, size, &got);
        if (ret == 1) return static_cast<ssize_t>(got);
        if (SSL_get_error(ssl_, ret) == SSL_ERROR_ZERO_RETURN) return 0;
        if (!WaitForSsl(ret, deadline)) return -1;
        continue;
      }
      const ssize_t n = recv(fd_, buf, size, 0);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if ((errno != EAGAIN && errno != EWOULDBLOCK) ||
          WaitFor(fd_, POLLIN, stop_fd_, deadline) != Wait::kReady) {
        failed_ = true;
        return -1;
      }
    }
  }

  // Writes all of `data`; false on an error, at the deadline or when
  // stopping.
  bool Write(std::string_view data, Clock::time_point deadline) {
    if (failed_) return false;
    while (!data.empty()) {
      if (ssl_ != nullptr) {
        ERR_clear_error();
        size_t written = 0;
        // After WANT_WRITE OpenSSL requires the retry to pass the same
        // buffer and length; `data` changes only on success.
        const int ret = SSL_write_ex(ssl_, data.data(), data.size(), &written);
        if (ret == 1) {
          data.remove_prefix(written);
        } else if (!WaitForSsl(ret, deadline)) {
          return false;
        }
        continue;
      }
      // MSG_NOSIGNAL: a client gone away must not raise SIGPIPE.
      const ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n >= 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (errno == EINTR) continue;
      if ((errno != EAGAIN && errno != EWOULDBLOCK) ||
          WaitFor(fd_, POLLOUT, stop_fd_, deadline) != Wait::kReady) {
        failed_ = true;
        return false;
      }
    }
    return true;
  }

  // Ends the connection after a response. Closing a socket with unread
  // input (a request body, a pipelined request) makes the kernel send a
  // reset, which can destroy the response before the client has read it;
  // so send our end of stream and read until the client closes too, for a
  // short while.
  void Close(Clock::time_point deadline) {
    if (failed_) return;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      SSL_shutdown(ssl_);  // sends close_notify; no wait for the client's
    }
    shutdown(fd_, SHUT_WR);
    char buf[4096];
    size_t drained = 0;
    while (drained < kLingerBytes) {
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n > 0) {
        drained += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (WaitFor(fd_, POLLIN, stop_fd_, deadline) != Wait::kReady) return;
      } else {
        return;  // end of stream or an error: done either way
      }
    }
  }

 private:
  // After an SSL call returned `ret`: waits for what OpenSSL needs to
  // continue. False when the connection cannot continue.
  bool WaitForSsl(int ret, Clock::time_point deadline) {
    const int error = SSL_get_error(ssl_, ret);
    short events = 0;
    if (error == SSL_ERROR_WANT_READ) events = POLLIN;
    if (error == SSL_ERROR_WANT_WRITE) events = POLLOUT;
    if (events == 0 ||
        WaitFor(fd_, events, stop_fd_, deadline) != Wait::kReady) {
      // Also keeps Close() from calling SSL_shutdown, which OpenSSL
      // forbids after a fatal error.
      failed_ = true;
      return false;
    }
    return true;
  }

  int fd_;
  int stop_fd_;
  SSL* ssl_ = nullptr;
  bool failed_ = false;
};

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

// An RFC 9110 IMF-fixdate, built by hand because strftime's names follow
// the locale.
std::string HttpDate() {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed",
                                          "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr",
                                            "May", "Jun", "Jul", "Aug",
                                            "Sep", "Oct", "Nov", "Dec"};
  const time_t now = time(nullptr);
  tm t{};
  gmtime_r(&now, &t);
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                kDays[t.tm_wday % 7], t.tm_mday, kMonths[t.tm_mon % 12],
                t.tm_year + 1900, t.tm_hour, t.tm_min, t.tm_sec);
  return buf;
}

std::string HtmlEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// An exception message for the log: one line, printable, bounded.
std::string Printable(const char* text) {
  std::string out;
  for (const char* p = text; *p != '\0' && out.size() < 200; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    out += c >= 0x20 && c < 0x7f ? *p : '?';
  }
  return out;
}

int OpenListener(const sockaddr* address, socklen_t length, bool dual_stack,
                 int* error) {
  const int fd =
      socket(address->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = errno;
    return -1;
  }
  // A restarted daemon must not have to wait for the previous one's
  // TIME_WAIT connections to expire.
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (dual_stack) {
    // Explicitly, not from net.ipv6.bindv6only: IPv4 clients must reach
    // us through the same socket.
    const int zero = 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  }
  if (bind(fd, address, length) != 0 || listen(fd, SOMAXCONN) != 0) {
    *error = errno;
    close(fd);
    return -1;
  }
  return fd;
}

// Binds and listens on `address`; throws HttpError naming `text`.
int Listen(const ListenAddress& address, const std::string& text) {
  int error = 0;
  int fd = -1;
  if (address.family != ListenAddress::Family::kIpv4) {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(address.port);
    in6.sin6_addr = in6addr_any;
    if (address.family == ListenAddress::Family::kIpv6) {
      inet_pton(AF_INET6, address.host.c_str(), &in6.sin6_addr);
    }
    fd = OpenListener(reinterpret_cast<const sockaddr*>(&in6), sizeof(in6),
                      address.family == ListenAddress::Family::kAny, &error);
  }
  // All addresses on a host without IPv6 (disabled at boot, or no usable
  // address): IPv4 only.
  if (address.family == ListenAddress::Family::kIpv4 ||
      (address.family == ListenAddress::Family::kAny && fd < 0 &&
       (error == EAFNOSUPPORT || error == EADDRNOTAVAIL))) {
    sockaddr_in in4{};
    in4.sin_family = AF_INET;
    in4.sin_port = htons(address.port);
    in4.sin_addr.s_addr = htonl(INADDR_ANY);
    if (address.family == ListenAddress::Family::kIpv4) {
      inet_pton(AF_INET, address.host.c_str(), &in4.sin_addr);
    }
    fd = OpenListener(reinterpret_cast<const sockaddr*>(&in4), sizeof(in4),
                      false, &error);
  }
  if (fd >= 0) return fd;
  std::string hint;
  if (error == EADDRINUSE) {
    hint = " (is another process using the port? set --web.listen-address)";
  } else if (error == EACCES) {
    hint =
        " (ports below 1024 need CAP_NET_BIND_SERVICE; set "
        "--web.listen-address)";
  } else if (error == EADDRNOTAVAIL) {
    hint = " (no local interface has this address; set --web.listen-address)";
  }
  throw HttpError("cannot listen on " + text + ": " + std::strerror(error) +
                  hint);
}

// Sets up the server side of TLS from the web config; throws HttpError
// naming the file at fault.
void ConfigureTls(SSL_CTX* ctx, const WebConfig& web) {
  SSL_CTX_set_min_proto_version(
      ctx, web.tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
  // Client-initiated renegotiation only costs us CPU; compression leaks
  // secrets (CRIME).
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  // An encrypted key would make OpenSSL prompt on the terminal of a
  // daemon; refuse it instead.
  SSL_CTX_set_default_passwd_cb(
      ctx, [](char*, int, int, void*) -> int { return 0; });
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, web.cert_file.c_str()) != 1) {
    throw HttpError("cannot use TLS certificate \"" + web.cert_file +
                    "\": " + LastOpenSslError().reason);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, web.key_file.c_str(),
                                  SSL_FILETYPE_PEM) != 1) {
    const OpenSslError error = LastOpenSslError();
    if (ERR_GET_LIB(error.code) == ERR_LIB_X509 &&
        ERR_GET_REASON(error.code) == X509_R_KEY_VALUES_MISMATCH) {
      throw HttpError("TLS key \"" + web.key_file +
                      "\" does not match the certificate \"" + web.cert_file +
                      "\"");
    }
    std::string hint;
    if (ERR_GET_LIB(error.code) == ERR_LIB_PEM &&
        ERR_GET_REASON(error.code) == PEM_R_BAD_PASSWORD_READ) {
      hint = " (the key is encrypted; tcpstated needs it unencrypted)";
    }
    throw HttpError("cannot use TLS key \"" + web.key_file +
                    "\": " + error.reason + hint);
  }
  // Covers keys that OpenSSL did not compare while loading.
  if (SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    throw HttpError("TLS key \"" + web.key_file +
                    "\" does not match the certificate \"" + web.cert_file +
                    "\"");
  }
}

}  // namespace

struct HttpServer::Response {
  int status = 200;
  std::string content_type = kTextType;
  std::string body;
  std::string extra_headers;  // whole lines, each ending in CRLF

  // The bytes on the wire; without the body for HEAD.
  std::string Serialize(bool head_only) const {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " +
                      ReasonPhrase(status) + "\r\nDate: " + HttpDate() +
                      "\r\nContent-Type: " + content_type +
                      "\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\nCache-Control: no-store\r\n"
                      "Connection: close\r\n"
                      "X-Content-Type-Options: nosniff\r\n" +
                      extra_headers + "\r\n";
    if (!head_only) out += body;
    return out;
  }
};

void HttpServer::SslCtxDeleter::operator()(ssl_ctx_st* ctx) const {
  SSL_CTX_free(ctx);
}

ListenAddress ParseListenAddress(const std::string& address) {
  auto fail = [&](const std::string& why) {
    throw HttpError("listen address \"" + address + "\" " + why);
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) fail("is not of the form [host]:port");
  const std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535) {
    fail("has a bad port (want 0-65535)");
  }
  ListenAddress result;
  result.port = static_cast<uint16_t>(std::stoul(port));
  if (host.empty()) return result;
  if (host.front() == '[') {
    in6_addr unused{};
    if (host.size() < 3 || host.back() != ']' ||
        inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &unused) !=
            1) {
      fail("has a bad IPv6 address (want e.g. \"[::1]:9640\")");
    }
    result.family = ListenAddress::Family::kIpv6;
    result.host = host.substr(1, host.size() - 2);
    return result;
  }
  result.family = ListenAddress::Family::kIpv4;
  result.host = host == "localhost" ? "127.0.0.1" : host;
  if (host.find(':') != std::string::npos) {
    fail("needs brackets around an IPv6 address (e.g. \"[::1]:9640\")");
  }
  in_addr unused{};
  if (inet_pton(AF_INET, result.host.c_str(), &unused) != 1) {
    fail(
        "has a host that is not an IP address (want empty for all "
        "addresses, \"localhost\", an IPv4 address or a bracketed IPv6 "
        "address)");
  }
  return result;
}

HttpServer::HttpServer(const std::string& listen_address,
                       const std::string& telemetry_path, Handlers handlers,
                       WebConfig web)
    : listen_address_(listen_address),
      telemetry_path_(telemetry_path),
      handlers_(std::move(handlers)),
      web_(std::move(web)) {
  const ListenAddress address = ParseListenAddress(listen_address_);
  // Certificates first: a bad one must not leave a bound port behind, even
  // briefly.
  if (web_.tls) {
    ssl_ctx_.reset(SSL_CTX_new(TLS_server_method()));
    if (ssl_ctx_ == nullptr) {
      throw HttpError("cannot set up TLS: " + LastOpenSslError().reason);
    }
    ConfigureTls(ssl_ctx_.get(), web_);
  }
  try {
    listen_fd_ = Listen(address, listen_address_);
    sockaddr_storage bound{};
    socklen_t length = sizeof(bound);
    if (getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &length) !=
        0) {
      throw HttpError("cannot listen on " + listen_address_ +
                      ": getsockname: " + std::strerror(errno));
    }
    port_ = ntohs(bound.ss_family == AF_INET6
                      ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                      : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0) {
      throw HttpError("cannot listen on " + listen_address_ +
                      ": eventfd: " + std::strerror(errno));
    }
    for (int i = 0; i < kWorkers; ++i) {
      workers_.emplace_back([this] { WorkerLoop(); });
    }
    acceptor_ = std::thread([this] { AcceptLoop(); });
  } catch (...) {
    Stop();
    throw;
  }
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  queue_changed_.notify_all();
  if (stop_fd_ >= 0) {
    const uint64_t one = 1;
    // Cannot fail short of a full counter, which one write never makes.
    [[maybe_unused]] ssize_t n = write(stop_fd_, &one, sizeof(one));
  }
  if (acceptor_.joinable()) acceptor_.join();
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  workers_.clear();
  for (int fd : queue_) close(fd);
  queue_.clear();
  if (listen_fd_ >= 0) close(listen_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
  listen_fd_ = -1;
  stop_fd_ = -1;
}

int HttpServer::port() const { return port_; }

uint64_t HttpServer::dropped_connections() const { return dropped_.load(); }

void HttpServer::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) continue;  // EINTR; nothing else applies
    if (fds[0].revents != 0) return;
    if (fds[1].revents == 0) continue;
    // Take what the backlog holds, but look at the stop fd now and then.
    for (int i = 0; i < 64; ++i) {
      const int fd =
          accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        Enqueue(fd);
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // A connection that died in the backlog, or (Linux) a pending network
      // error handed to accept: try the next one.
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO ||
          errno == ENETDOWN || errno == ENETUNREACH || errno == EHOSTDOWN ||
          errno == EHOSTUNREACH || errno == ENONET || errno == ENOPROTOOPT ||
          errno == EOPNOTSUPP) {
        continue;
      }
      // Out of descriptors or memory: the connection stays in the backlog
      // and poll() would report it again at once; pause instead of
      // spinning.
      if (WarningDue(&last_accept_warning_)) {
        spdlog::warn("HTTP: cannot accept connections: {}",
                     std::strerror(errno));
      }
      poll(&fds[0], 1, 100);
      break;
    }
  }
}

void HttpServer::Enqueue(int fd) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (queue_.size() < kMaxPending) {
      queue_.push_back(fd);
      queue_changed_.notify_one();
      return;
    }
  }
  close(fd);
  const uint64_t dropped = ++dropped_;
  if (WarningDue(&last_drop_warning_)) {
    spdlog::warn(
        "HTTP: {} connections already waiting; closed a new one unanswered "
        "({} so far)",
        kMaxPending, dropped);
  }
}

void HttpServer::WorkerLoop() {
  // OpenSSL writes to the socket with write(2), which raises SIGPIPE when
  // the client has gone. Blocking it in this thread (the mask is per
  // thread) turns that into EPIPE without touching the process's signal
  // dispositions.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  for (;;) {
    int fd = -1;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      queue_changed_.wait(lock,
                          [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      fd = queue_.front();
      queue_.pop_front();
    }
    Serve(fd);
  }
}

void HttpServer::Serve(int fd) {
  Connection connection(fd, ssl_ctx_.get(), stop_fd_);
  const Clock::time_point deadline = Clock::now() + kRequestTimeout;
  if (!connection.Handshake(deadline)) return;
  std::string head;
  HttpParseResult parsed;
  for (;;) {
    parsed = ParseHttpRequest(head);
    if (parsed.status != HttpParseResult::Status::kIncomplete) break;
    char buf[4096];
    const ssize_t n = connection.Read(buf, sizeof(buf), deadline);
    // Closed, failed, too slow or stopping: nobody to answer.
    if (n <= 0) return;
    head.append(buf, static_cast<size_t>(n));
  }
  Response response;
  bool head_only = false;
  if (parsed.status == HttpParseResult::Status::kBad) {
    spdlog::debug("HTTP: bad request: {}", parsed.error);
    response.status = 400;
    response.body = "Bad Request\n";
  } else {
    response = Route(parsed.request);
    head_only = parsed.request.method == "HEAD";
  }
  if (!connection.Write(response.Serialize(head_only),
                        Clock::now() + kResponseTimeout)) {
    return;
  }
  connection.Close(Clock::now() + kLingerTimeout);
}

HttpServer::Response HttpServer::Route(const HttpRequest& request) {
  Response response;
  // Before routing, so that 401 versus 404 does not reveal which paths
  // exist.
  if (!web_.users.empty()) {
    const std::string* authorization = request.Header("Authorization");
    if (!CheckBasicAuth(web_, authorization != nullptr ? authorization->c_str()
                                                       : nullptr)) {
      response.status = 401;
      response.body = "Unauthorized\n";
      response.extra_headers =
          "WWW-Authenticate: Basic realm=\"tcpstated\"\r\n";
      return response;
    }
  }
  if (request.method != "GET" && request.method != "HEAD") {
    response.status = 405;
    response.body = "Only GET and HEAD are allowed\n";
    response.extra_headers = "Allow: GET, HEAD\r\n";
    return response;
  }
  try {
    if (request.path == telemetry_path_) {
      response.content_type = kMetricsType;
      response.body = handlers_.metrics();
      return response;
    }
    if (request.path == "/healthz") {
      std::string detail;
      const bool healthy = handlers_.health(&detail);
      response.status = healthy ? 200 : 503;
      response.body = detail + "\n";
      return response;
    }
    if (request.path == "/debug/sockets" && handlers_.debug_sockets) {
      size_t q = request.target.find('?');
      std::string query =
          q == std::string::npos ? std::string() : request.target.substr(q + 1);
      int status = 200;
      response.body = handlers_.debug_sockets(query, &status);
      response.status = status;
      response.content_type =
          status == 200 ? "application/json" : "text/plain; charset=utf-8";
      return response;
    }
    if (handlers_.pages &&
        handlers_.pages(request.path, &response.content_type, &response.body,
                        &response.extra_headers)) {
      return response;
    }
    if (request.path == "/") {
      const std::string path = HtmlEscape(telemetry_path_);
      response.content_type = "text/html; charset=utf-8";
      response.body =
          "<!DOCTYPE html>\n<html><head><title>tcpstated</title></head>"
          "<body>\n<h1>tcpstated</h1>\n<p>TCP connection-state exporter.</p>"
          "\n<ul>\n<li><a href=\"" +
          path + "\">Metrics</a> (" + path +
          ")</li>\n<li><a href=\"/healthz\">Health</a> (/healthz)</li>\n"
          "<li><a href=\"/debug/sockets?state=close_wait&amp;limit=100\">"
          "Oldest CLOSE_WAIT sockets</a> (/debug/sockets)</li>\n"
          "</ul>\n</body></html>\n";
      return response;
    }
  } catch (const std::exception& e) {
    // The path is one of ours and the message is the handler's own; nothing
    // from the request is logged.
    spdlog::error("HTTP: handler for {} failed: {}", request.path,
                  Printable(e.what()));
    response = Response();
    response.status = 500;
    response.body = "Internal Server Error\n";
    return response;
  } catch (...) {
    spdlog::error("HTTP: handler for {} failed", request.path);
    response = Response();
    response.status = 500;
    response.body = "Internal Server Error\n";
    return response;
  }
  response.status = 404;
  response.body = "Not Found\n";
  return response;
}

}  // namespace tcpstated
