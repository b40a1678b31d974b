// The HTTP endpoint: a small HTTP/1.1 server of our own, with TLS from
// OpenSSL, built to keep answering scrapes while someone attacks it.
//
// One event-loop thread (epoll) accepts connections, runs TLS handshakes
// and reads request heads, all non-blocking, with a deadline counted from
// accept; it caps connections per source address and in total (when full,
// the oldest connection that has not yet sent a complete request makes
// room). Only complete requests leave the loop: with basic auth, requests
// whose credentials were verified recently go straight to the workers; the
// others go to a single authentication thread (so at most one bcrypt runs
// at a time; when it is busy the request is answered 429 at once) or are
// refused (401; 429 once a source has used up its failure budget). Workers
// (4) only run handlers; the loop writes their responses, again with a
// deadline, so no client can hold a worker. Each connection carries one
// request (Connection: close). Everything refused or timed out is counted.
//
// Every server thread runs without any capability and with NO_NEW_PRIVS
// (see privileges.h): handlers must not need privileges.
//
// Thread-safety: construction, Start, Reload and destruction from one
// thread; route handlers are called concurrently from worker threads and
// must be thread-safe; the accessors from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tcpstated/http_auth.h"
#include "tcpstated/http_error.h"
#include "tcpstated/http_request.h"
#include "tcpstated/listen_address.h"
#include "tcpstated/tls_context.h"
#include "tcpstated/web_config.h"

namespace tcpstated {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string extra_headers;  // whole lines, each ending in CRLF
};

// One path the server answers. Every route gets the same TLS and basic-auth
// rules; `loopback_only` routes also answer 404 to clients that are not on
// the loopback interface, as if they did not exist.
struct HttpRoute {
  std::string path;  // exact match, without the query string
  bool loopback_only = false;
  // Called for GET and HEAD only; may throw (the client gets a 500).
  std::function<HttpResponse(const HttpRequest&)> handle;
};

struct HttpLimits {
  std::chrono::milliseconds head_timeout{5000};  // handshake + head
  std::chrono::milliseconds response_timeout{10000};
  size_t max_connections = 256;
  size_t max_per_source = 16;
  int workers = 4;
  size_t max_queued = 64;  // complete requests waiting for a worker
  // Host header names (lower case, without the port) answered; others get
  // 400 before authentication. Empty: any.
  std::vector<std::string> allowed_hosts;
};

class HttpServer {
 public:
  // Why a connection was closed without an answer.
  enum class Drop {
    kOverload,   // the total cap was reached: the oldest unfinished went
    kPerSource,  // its source address already had its share
    kTimeout,    // no complete request, or the response not taken, in time
    kQueueFull,  // every worker busy and the queue full
    kCount,
  };
  static const char* DropName(Drop drop);
  // Why a request was refused by basic authentication.
  enum class AuthRefusal {
    kInvalid,      // missing, malformed or wrong credentials (401)
    kRateLimited,  // the source's failure budget is used up (429)
    kBusy,         // another password check is running (429)
    kCount,
  };
  static const char* AuthRefusalName(AuthRefusal refusal);

  // Binds and listens now (connections wait in the backlog until Start).
  // `listen_address` is "[host]:port" (see ParseListenAddress; empty host:
  // all IPv6 and IPv4 addresses). With web.tls the port speaks only TLS;
  // with web.users every route requires basic authentication. Throws
  // HttpError naming the address when it cannot listen (port in use, bad
  // address), or naming the file when a certificate or key is unusable.
  explicit HttpServer(const std::string& listen_address,
                      const WebConfig& web = WebConfig(),
                      HttpLimits limits = HttpLimits());
  // Stops accepting, abandons connections, and waits only for handlers
  // already running.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Starts the threads; each drops its capabilities before it touches a
  // connection. Throws HttpError if a thread cannot.
  void Start(std::vector<HttpRoute> routes);

  // Swaps in a new web configuration (users, certificate and key, TLS
  // settings) for the connections accepted from now on, atomically: on an
  // HttpError (naming the file) the running one stays. The auth cache
  // starts empty, so a revoked password stops working at once.
  void Reload(const WebConfig& web);

  // The TCP port actually bound (useful with port 0 in tests).
  int port() const { return port_; }
  uint64_t dropped(Drop drop) const;
  uint64_t auth_refused(AuthRefusal refusal) const;

 private:
  // What a connection is served with, fixed when it is accepted.
  struct Settings {
    TlsContext tls;
    std::shared_ptr<BasicAuth> auth;
  };
  struct Connection;
  struct Job {
    int fd = -1;
    HttpRequest request;
    bool loopback = false;
    std::string source;
    std::shared_ptr<const Settings> settings;
    BasicAuth::Claim claim;
  };

  void LoopMain();
  void AuthMain();
  void WorkerMain();
  // Runs in each new thread before anything else; false (with the error
  // reported to Start) if the thread cannot drop its privileges.
  bool EnterThread(const char* name);

  // Event-loop side (loop thread only).
  void AcceptAll();
  void Admit(int fd, const std::string& source, bool loopback);
  // Moves `c` forward as far as its socket allows; false once `c` is
  // closed or handed on (do not touch it then).
  bool Advance(Connection* c);
  // Advance's steps, one a phase of a connection.
  enum class Progress {
    kPhaseDone,  // on to the next phase
    kWaiting,    // watched for what the socket needs next
    kGone,       // closed or handed on: do not touch it
  };
  Progress Handshake(Connection* c);
  Progress ReadRequest(Connection* c);
  Progress WriteResponse(Connection* c);
  Progress Drain(Connection* c);
  // After an OpenSSL call on `c` returned `ret` (not success): watches for
  // what OpenSSL wants next, or closes `c` when the call failed.
  Progress AwaitSsl(Connection* c, int ret);
  void OnRequest(Connection* c, const HttpParseResult& parsed);
  void Answer(Connection* c, const HttpResponse& response, bool head_only);
  void Watch(Connection* c, uint32_t events);
  void CloseConnection(Connection* c);
  void ExpireConnections();
  void TakeFinished();

  // Hand-offs between threads.
  bool PostToWorkers(Job job);  // false when the queue is full
  void Finish(int fd, std::string bytes);
  HttpResponse Route(const HttpRequest& request, bool loopback) const;

  std::string listen_address_;
  HttpLimits limits_;
  std::vector<HttpRoute> routes_;  // fixed by Start
  int listen_fd_ = -1;
  int port_ = 0;
  // eventfds: stop_fd_ becomes readable, and stays so, when stopping;
  // wake_fd_ tells the loop that finished responses are waiting.
  int stop_fd_ = -1;
  int wake_fd_ = -1;
  int epoll_fd_ = -1;

  std::mutex settings_mutex_;
  std::shared_ptr<const Settings> settings_;
  FailureLimiter failures_;

  // Loop thread only.
  std::unordered_map<int, std::unique_ptr<Connection>> connections_;
  std::unordered_map<std::string, size_t> per_source_;

  std::mutex mutex_;  // guards everything below
  std::condition_variable work_changed_;
  bool stopping_ = false;
  std::deque<Job> queue_;
  std::optional<Job> auth_job_;
  bool auth_busy_ = false;  // from posting until the bcrypt has finished
  std::vector<std::pair<int, std::string>> finished_;
  int threads_ready_ = 0;
  std::string thread_error_;

  std::array<std::atomic<uint64_t>, static_cast<size_t>(Drop::kCount)>
      dropped_{};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(AuthRefusal::kCount)>
      auth_refused_{};

  std::vector<std::thread> threads_;
};

}  // namespace tcpstated
