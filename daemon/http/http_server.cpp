#include "tcpstated/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string_view>
#include <system_error>

#include "daemon/http/http_connection.h"
#include "tcpstated/listen_socket.h"
#include "tcpstated/privileges.h"

namespace tcpstated {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kWarningInterval = std::chrono::minutes(1);

constexpr char kUnauthorizedHeaders[] =
    "WWW-Authenticate: Basic realm=\"tcpstated\"\r\n";

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
    case 429:
      return "Too Many Requests";
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

// The bytes on the wire; without the body for HEAD.
std::string Serialize(const HttpResponse& response, bool head_only) {
  std::string out =
      "HTTP/1.1 " + std::to_string(response.status) + " " +
      ReasonPhrase(response.status) + "\r\nDate: " + HttpDate() +
      "\r\nContent-Type: " + response.content_type +
      "\r\nContent-Length: " + std::to_string(response.body.size()) +
      "\r\nCache-Control: no-store\r\n"
      "Connection: close\r\n"
      "X-Content-Type-Options: nosniff\r\n" +
      response.extra_headers + "\r\n";
  if (!head_only) out += response.body;
  return out;
}

HttpResponse Plain(int status, std::string body,
                   std::string extra_headers = "") {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  response.extra_headers = std::move(extra_headers);
  return response;
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

// True if a rate-limited warning may be logged now (and records that).
bool WarningDue(std::atomic<int64_t>* last) {
  const int64_t now = Clock::now().time_since_epoch().count();
  int64_t previous = last->load();
  const auto interval =
      std::chrono::duration_cast<Clock::duration>(kWarningInterval).count();
  if (previous != 0 && now - previous < interval) return false;
  return last->compare_exchange_strong(previous, now);
}

// The peer's address as a key for the per-source caps (IPv4-mapped IPv6
// addresses as plain IPv4), and whether it is on the loopback interface.
std::pair<std::string, bool> DescribePeer(const sockaddr_storage& peer) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (peer.ss_family == AF_INET) {
    const auto& in4 = reinterpret_cast<const sockaddr_in&>(peer);
    inet_ntop(AF_INET, &in4.sin_addr, text, sizeof(text));
    return {text, (ntohl(in4.sin_addr.s_addr) >> 24) == 127};
  }
  if (peer.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(peer);
    if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
      in_addr in4{};
      std::memcpy(&in4, &in6.sin6_addr.s6_addr[12], sizeof(in4));
      inet_ntop(AF_INET, &in4, text, sizeof(text));
      return {text, in6.sin6_addr.s6_addr[12] == 127};
    }
    inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof(text));
    return {text, IN6_IS_ADDR_LOOPBACK(&in6.sin6_addr) != 0};
  }
  return {text, false};
}

// The host part of a Host header value ("name:port", "[v6]:port"), lower
// case.
std::string HostName(std::string_view value) {
  const size_t bracket = value.rfind(']');
  const size_t colon = value.rfind(':');
  if (colon != std::string_view::npos &&
      (bracket == std::string_view::npos || colon > bracket)) {
    value = value.substr(0, colon);
  }
  std::string host(value);
  for (char& c : host) c = static_cast<char>(std::tolower(c));
  return host;
}

bool HostAllowed(const std::string* host,
                 const std::vector<std::string>& allowed) {
  if (allowed.empty()) return true;
  if (host == nullptr) return false;
  return std::find(allowed.begin(), allowed.end(), HostName(*host)) !=
         allowed.end();
}

std::atomic<int64_t> last_drop_warning{0};
std::atomic<int64_t> last_accept_warning{0};

}  // namespace

const char* HttpServer::DropName(Drop drop) {
  switch (drop) {
    case Drop::kOverload:
      return "overload";
    case Drop::kPerSource:
      return "per_source";
    case Drop::kTimeout:
      return "timeout";
    case Drop::kQueueFull:
      return "queue_full";
    case Drop::kCount:
      break;
  }
  return "unknown";
}

const char* HttpServer::AuthRefusalName(AuthRefusal refusal) {
  switch (refusal) {
    case AuthRefusal::kInvalid:
      return "invalid";
    case AuthRefusal::kRateLimited:
      return "rate_limited";
    case AuthRefusal::kBusy:
      return "busy";
    case AuthRefusal::kCount:
      break;
  }
  return "unknown";
}

HttpServer::HttpServer(const std::string& listen_address, const WebConfig& web,
                       HttpLimits limits)
    : listen_address_(listen_address), limits_(limits) {
  const ListenAddress address = ParseListenAddress(listen_address_);
  // Certificates first: a bad one must not leave a bound port behind, even
  // briefly.
  auto settings = std::make_shared<Settings>();
  settings->tls = MakeTlsContext(web);
  settings->auth = std::make_shared<BasicAuth>(web.users);
  settings_ = std::move(settings);
  listen_fd_ = ListenOn(address, listen_address_);
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  if (getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &length) !=
      0) {
    const int error = errno;
    close(listen_fd_);
    throw HttpError("cannot listen on " + listen_address_ +
                    ": getsockname: " + std::strerror(error));
  }
  port_ = ntohs(bound.ss_family == AF_INET6
                    ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                    : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

HttpServer::~HttpServer() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_changed_.notify_all();
  if (stop_fd_ >= 0) {
    const uint64_t one = 1;
    // Cannot fail short of a full counter, which one write never makes.
    [[maybe_unused]] ssize_t n = write(stop_fd_, &one, sizeof(one));
  }
  for (std::thread& thread : threads_) thread.join();
  for (auto& [fd, c] : connections_) {
    SSL_free(c->ssl);
    close(fd);
  }
  for (int fd : {listen_fd_, stop_fd_, wake_fd_, epoll_fd_}) {
    if (fd >= 0) close(fd);
  }
}

void HttpServer::Start(std::vector<HttpRoute> routes) {
  routes_ = std::move(routes);
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (stop_fd_ < 0 || wake_fd_ < 0 || epoll_fd_ < 0) {
    throw HttpError("cannot serve on " + listen_address_ + ": " +
                    std::strerror(errno));
  }
  for (int fd : {listen_fd_, stop_fd_, wake_fd_}) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event);
  }
  const int count = 2 + limits_.workers;
  threads_.emplace_back([this] {
    if (EnterThread("http-loop")) LoopMain();
  });
  threads_.emplace_back([this] {
    if (EnterThread("http-auth")) AuthMain();
  });
  for (int i = 0; i < limits_.workers; ++i) {
    threads_.emplace_back([this] {
      if (EnterThread("http-worker")) WorkerMain();
    });
  }
  std::unique_lock<std::mutex> lock(mutex_);
  work_changed_.wait(
      lock, [&] { return threads_ready_ == count || !thread_error_.empty(); });
  if (!thread_error_.empty()) {
    throw HttpError("cannot serve on " + listen_address_ + ": " +
                    thread_error_);
  }
}

bool HttpServer::EnterThread(const char* name) {
  pthread_setname_np(pthread_self(), name);
  // OpenSSL writes with write(2), which raises SIGPIPE when the client has
  // gone; blocked in this thread (the mask is per thread) it is EPIPE.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  std::string error;
  try {
    DropAllCapabilitiesOfThisThread();
  } catch (const std::system_error& e) {
    error = std::string("cannot drop capabilities: ") + e.what();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (error.empty()) {
      ++threads_ready_;
    } else if (thread_error_.empty()) {
      thread_error_ = error;
    }
  }
  work_changed_.notify_all();
  return error.empty();
}

void HttpServer::Reload(const WebConfig& web) {
  auto settings = std::make_shared<Settings>();
  settings->tls = MakeTlsContext(web);  // throws, naming the file
  settings->auth = std::make_shared<BasicAuth>(web.users);
  std::lock_guard<std::mutex> lock(settings_mutex_);
  settings_ = std::move(settings);
}

uint64_t HttpServer::dropped(Drop drop) const {
  return dropped_[static_cast<size_t>(drop)].load();
}

uint64_t HttpServer::auth_refused(AuthRefusal refusal) const {
  return auth_refused_[static_cast<size_t>(refusal)].load();
}

// ---- The event loop ------------------------------------------------------

void HttpServer::LoopMain() {
  epoll_event events[64];
  for (;;) {
    // Wake for the nearest deadline; connections waiting for a handler
    // have none.
    Clock::time_point next = Clock::now() + std::chrono::seconds(1);
    for (const auto& [fd, c] : connections_) {
      if (c->phase != Connection::Phase::kWaiting) {
        next = std::min(next, c->deadline);
      }
    }
    const auto wait =
        std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now());
    const int n = epoll_wait(epoll_fd_, events, 64,
                             static_cast<int>(std::max<int64_t>(
                                 0, static_cast<int64_t>(wait.count()))));
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == stop_fd_) return;
      if (fd == wake_fd_) {
        TakeFinished();
      } else if (fd == listen_fd_) {
        AcceptAll();
      } else if (auto it = connections_.find(fd); it != connections_.end()) {
        Advance(it->second.get());
      }
    }
    ExpireConnections();
  }
}

void HttpServer::AcceptAll() {
  // Take what the backlog holds, but return to the other events now and
  // then.
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage peer{};
    socklen_t length = sizeof(peer);
    const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer),
                           &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      auto [source, loopback] = DescribePeer(peer);
      Admit(fd, source, loopback);
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    // A connection that died in the backlog, or (Linux) a pending network
    // error handed to accept: try the next one.
    if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO ||
        errno == ENETDOWN || errno == ENETUNREACH || errno == EHOSTDOWN ||
        errno == EHOSTUNREACH || errno == ENONET || errno == ENOPROTOOPT ||
        errno == EOPNOTSUPP) {
      continue;
    }
    // Out of descriptors or memory: the connection stays in the backlog
    // and would be reported again at once; pause instead of spinning.
    if (WarningDue(&last_accept_warning)) {
      spdlog::warn("HTTP: cannot accept connections: {}", std::strerror(errno));
    }
    usleep(100 * 1000);
    return;
  }
}

void HttpServer::Admit(int fd, const std::string& source, bool loopback) {
  auto drop = [&](Drop why) {
    close(fd);
    const uint64_t total = ++dropped_[static_cast<size_t>(why)];
    if (WarningDue(&last_drop_warning)) {
      spdlog::warn(
          "HTTP: closed a connection from {} unanswered ({}; {} so far for "
          "this reason)",
          source, DropName(why), total);
    }
  };
  // At a cap, make room by closing the oldest connection that has not sent
  // a complete request yet (of this source at its cap, of anyone at the
  // total cap): a client that is slow on purpose loses its place, a scraper
  // that sends its request at once keeps getting in, even from the same
  // address. Only when every connection is past its request is the new
  // one refused.
  const auto held = per_source_.find(source);
  const bool source_full =
      held != per_source_.end() && held->second >= limits_.max_per_source;
  if (source_full || connections_.size() >= limits_.max_connections) {
    const Drop why = source_full ? Drop::kPerSource : Drop::kOverload;
    Connection* oldest = nullptr;
    for (const auto& [other_fd, c] : connections_) {
      if ((c->phase == Connection::Phase::kHandshake ||
           c->phase == Connection::Phase::kHead) &&
          (!source_full || c->source == source) &&
          (oldest == nullptr || c->accepted < oldest->accepted)) {
        oldest = c.get();
      }
    }
    if (oldest == nullptr) {
      drop(why);
      return;
    }
    ++dropped_[static_cast<size_t>(why)];
    CloseConnection(oldest);
  }
  auto c = std::make_unique<Connection>();
  c->fd = fd;
  c->source = source;
  c->loopback = loopback;
  {
    std::lock_guard<std::mutex> lock(settings_mutex_);
    c->settings = settings_;
  }
  c->accepted = Clock::now();
  c->deadline = c->accepted + limits_.head_timeout;
  c->phase = Connection::Phase::kHead;
  if (c->settings->tls != nullptr) {
    c->ssl = SSL_new(c->settings->tls.get());
    if (c->ssl == nullptr || SSL_set_fd(c->ssl, fd) != 1) {
      ERR_clear_error();
      SSL_free(c->ssl);
      close(fd);
      return;
    }
    c->phase = Connection::Phase::kHandshake;
  }
  ++per_source_[source];
  Connection* raw = c.get();
  connections_.emplace(fd, std::move(c));
  Watch(raw, EPOLLIN);
  Advance(raw);  // the request may already be there
}

void HttpServer::Watch(Connection* c, uint32_t events) {
  if (c->watched == events) return;
  epoll_event event{};
  event.events = events;
  event.data.fd = c->fd;
  if (events == 0) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
  } else {
    epoll_ctl(epoll_fd_, c->watched == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd,
              &event);
  }
  c->watched = events;
}

void HttpServer::CloseConnection(Connection* c) {
  const int fd = c->fd;
  if (c->watched != 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  auto count = per_source_.find(c->source);
  if (count != per_source_.end() && --count->second == 0) {
    per_source_.erase(count);
  }
  SSL_free(c->ssl);
  close(fd);
  connections_.erase(fd);  // destroys *c
}

void HttpServer::ExpireConnections() {
  const Clock::time_point now = Clock::now();
  std::vector<Connection*> expired;
  for (const auto& [fd, c] : connections_) {
    if (c->phase != Connection::Phase::kWaiting && c->deadline <= now) {
      expired.push_back(c.get());
    }
  }
  for (Connection* c : expired) {
    // After the response, the drain is a courtesy, not a failure.
    if (c->phase != Connection::Phase::kDrain) {
      ++dropped_[static_cast<size_t>(Drop::kTimeout)];
    }
    CloseConnection(c);
  }
}

void HttpServer::OnRequest(Connection* c, const HttpParseResult& parsed) {
  if (parsed.status == HttpParseResult::Status::kBad) {
    spdlog::debug("HTTP: bad request: {}", parsed.error);
    Answer(c, Plain(400, "Bad Request\n"), false);
    return;
  }
  const bool head_only = parsed.request.method == "HEAD";
  if (!HostAllowed(parsed.request.Header("Host"), limits_.allowed_hosts)) {
    Answer(c, Plain(400, "Unknown Host\n"), head_only);
    return;
  }
  Job job;
  job.fd = c->fd;
  job.request = parsed.request;
  job.loopback = c->loopback;
  job.source = c->source;
  job.settings = c->settings;
  BasicAuth& auth = *c->settings->auth;
  // Before routing, so that 401 versus 404 does not reveal which paths
  // exist.
  if (auth.required()) {
    const BasicAuth::Check check =
        auth.Precheck(job.request.Header("Authorization"), &job.claim);
    if (check == BasicAuth::Check::kMalformed) {
      ++auth_refused_[static_cast<size_t>(AuthRefusal::kInvalid)];
      Answer(c, Plain(401, "Unauthorized\n", kUnauthorizedHeaders), head_only);
      return;
    }
    if (check == BasicAuth::Check::kNeedsHash) {
      if (!failures_.Allowed(c->source, Clock::now())) {
        ++auth_refused_[static_cast<size_t>(AuthRefusal::kRateLimited)];
        Answer(c,
               Plain(429, "Too many failed logins; try again later\n",
                     "Retry-After: 2\r\n"),
               head_only);
        return;
      }
      bool posted = false;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!auth_busy_) {
          auth_busy_ = true;
          auth_job_ = std::move(job);
          posted = true;
        }
      }
      if (!posted) {
        ++auth_refused_[static_cast<size_t>(AuthRefusal::kBusy)];
        Answer(c,
               Plain(429, "Another login is being checked; try again\n",
                     "Retry-After: 1\r\n"),
               head_only);
        return;
      }
      work_changed_.notify_all();
      c->phase = Connection::Phase::kWaiting;
      Watch(c, 0);
      return;
    }
  }
  c->phase = Connection::Phase::kWaiting;
  Watch(c, 0);
  if (!PostToWorkers(std::move(job))) {
    ++dropped_[static_cast<size_t>(Drop::kQueueFull)];
    CloseConnection(c);
  }
}

void HttpServer::Answer(Connection* c, const HttpResponse& response,
                        bool head_only) {
  c->out = Serialize(response, head_only);
  c->sent = 0;
  c->phase = Connection::Phase::kWrite;
  c->deadline = Clock::now() + limits_.response_timeout;
  Advance(c);
}

void HttpServer::TakeFinished() {
  uint64_t count = 0;
  [[maybe_unused]] ssize_t n = read(wake_fd_, &count, sizeof(count));
  std::vector<std::pair<int, std::string>> finished;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    finished.swap(finished_);
  }
  for (auto& [fd, bytes] : finished) {
    const auto it = connections_.find(fd);
    if (it == connections_.end()) continue;
    Connection* c = it->second.get();
    c->out = std::move(bytes);
    c->sent = 0;
    c->phase = Connection::Phase::kWrite;
    c->deadline = Clock::now() + limits_.response_timeout;
    Advance(c);
  }
}

// ---- The other threads ---------------------------------------------------

void HttpServer::Finish(int fd, std::string bytes) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    finished_.emplace_back(fd, std::move(bytes));
  }
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

bool HttpServer::PostToWorkers(Job job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (queue_.size() >= limits_.max_queued) return false;
    queue_.push_back(std::move(job));
  }
  work_changed_.notify_all();
  return true;
}

void HttpServer::AuthMain() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_changed_.wait(lock,
                         [this] { return stopping_ || auth_job_.has_value(); });
      if (stopping_) return;
      job = std::move(*auth_job_);
      auth_job_.reset();
    }
    const bool ok = job.settings->auth->Verify(job.claim);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auth_busy_ = false;
    }
    const bool head_only = job.request.method == "HEAD";
    if (!ok) {
      failures_.RecordFailure(job.source, Clock::now());
      ++auth_refused_[static_cast<size_t>(AuthRefusal::kInvalid)];
      Finish(job.fd,
             Serialize(Plain(401, "Unauthorized\n", kUnauthorizedHeaders),
                       head_only));
      continue;
    }
    const int fd = job.fd;
    if (!PostToWorkers(std::move(job))) {
      ++dropped_[static_cast<size_t>(Drop::kQueueFull)];
      Finish(fd, Serialize(Plain(503, "Busy; try again\n"), head_only));
    }
  }
}

void HttpServer::WorkerMain() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_changed_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    const HttpResponse response = Route(job.request, job.loopback);
    Finish(job.fd, Serialize(response, job.request.method == "HEAD"));
  }
}

HttpResponse HttpServer::Route(const HttpRequest& request,
                               bool loopback) const {
  if (request.method != "GET" && request.method != "HEAD") {
    return Plain(405, "Only GET and HEAD are allowed\n",
                 "Allow: GET, HEAD\r\n");
  }
  const auto route =
      std::find_if(routes_.begin(), routes_.end(), [&](const HttpRoute& r) {
        return r.path == request.path && (loopback || !r.loopback_only);
      });
  if (route == routes_.end()) return Plain(404, "Not Found\n");
  try {
    return route->handle(request);
  } catch (const std::exception& e) {
    // The path is one of ours and the message is the handler's own; nothing
    // from the request is logged.
    spdlog::error("HTTP: handler for {} failed: {}", route->path,
                  Printable(e.what()));
  } catch (...) {
    spdlog::error("HTTP: handler for {} failed", route->path);
  }
  return Plain(500, "Internal Server Error\n");
}

}  // namespace tcpstated
