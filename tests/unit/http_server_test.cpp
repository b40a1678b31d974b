#include "tcpstated/http_server.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tcpstated/http_request.h"

namespace tcpstated {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using Status = HttpParseResult::Status;
namespace fs = std::filesystem;

// How long stopping the server may take while clients stall. The design
// target is under 100 ms (typically a few ms); the margin is for loaded CI
// machines running sanitizers. What matters is that it is nowhere near the
// 10 s I/O deadlines that a stalled client would otherwise cost.
constexpr milliseconds kStopBudget(250);

// ---- The request parser --------------------------------------------------

constexpr char kGoodRequest[] =
    "GET /metrics?name=x HTTP/1.1\r\n"
    "Host: localhost:9640\r\n"
    "User-Agent: Prometheus/2.45.0\r\n"
    "Accept:   text/plain  \r\n"
    "authorization: Basic dTpw\r\n"
    "\r\n";

TEST(HttpRequestParserTest, ParsesAGoodRequest) {
  const HttpParseResult r = ParseHttpRequest(kGoodRequest);
  ASSERT_EQ(r.status, Status::kComplete) << r.error;
  EXPECT_EQ(r.head_bytes, sizeof(kGoodRequest) - 1);
  EXPECT_EQ(r.request.method, "GET");
  EXPECT_EQ(r.request.target, "/metrics?name=x");
  EXPECT_EQ(r.request.path, "/metrics");
  EXPECT_EQ(r.request.minor_version, 1);
  ASSERT_EQ(r.request.headers.size(), 4u);
  ASSERT_NE(r.request.Header("accept"), nullptr);
  EXPECT_EQ(*r.request.Header("accept"), "text/plain");
}

TEST(HttpRequestParserTest, HeaderLookupIgnoresCase) {
  const HttpParseResult r = ParseHttpRequest(kGoodRequest);
  ASSERT_EQ(r.status, Status::kComplete) << r.error;
  for (const char* name : {"Authorization", "AUTHORIZATION", "authorization"}) {
    ASSERT_NE(r.request.Header(name), nullptr) << name;
    EXPECT_EQ(*r.request.Header(name), "Basic dTpw");
  }
  EXPECT_EQ(r.request.Header("Cookie"), nullptr);
  EXPECT_EQ(r.request.Header("Authorizatio"), nullptr);
}

TEST(HttpRequestParserTest, StripsTheQueryString) {
  struct Case {
    const char* target;
    const char* path;
  };
  for (const Case& c :
       {Case{"/", "/"}, Case{"/?", "/"}, Case{"/metrics?a=1&b=2", "/metrics"},
        Case{"/a?b?c", "/a"}, Case{"/healthz", "/healthz"}}) {
    const HttpParseResult r =
        ParseHttpRequest(std::string("GET ") + c.target + " HTTP/1.0\r\n\r\n");
    ASSERT_EQ(r.status, Status::kComplete) << c.target << ": " << r.error;
    EXPECT_EQ(r.request.target, c.target);
    EXPECT_EQ(r.request.path, c.path);
    EXPECT_EQ(r.request.minor_version, 0);
  }
}

TEST(HttpRequestParserTest, EveryProperPrefixIsIncomplete) {
  const std::string request = kGoodRequest;
  for (size_t n = 0; n < request.size(); ++n) {
    const HttpParseResult r = ParseHttpRequest(request.substr(0, n));
    EXPECT_EQ(r.status, Status::kIncomplete) << n << ": " << r.error;
  }
}

TEST(HttpRequestParserTest, BytesAfterTheHeadAreNotPartOfIt) {
  const std::string request =
      "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n";
  const HttpParseResult r = ParseHttpRequest(request + "body");
  ASSERT_EQ(r.status, Status::kComplete) << r.error;
  EXPECT_EQ(r.head_bytes, request.size());
  EXPECT_EQ(r.request.method, "POST");
}

TEST(HttpRequestParserTest, RejectsMalformedRequests) {
  const std::vector<std::string> bad = {
      // Request line.
      "\r\n",
      "GET\r\n\r\n",
      "GET /\r\n\r\n",             // no version
      "GET / \r\n\r\n",            // empty version
      " GET / HTTP/1.0\r\n\r\n",   // no method
      "GET  / HTTP/1.0\r\n\r\n",   // two spaces
      "GET / HTTP/1.0 \r\n\r\n",   // trailing space
      "GET / HTTP/1.0 x\r\n\r\n",  // extra word
      "GET / HTTP/2.0\r\n\r\n",    // not 1.x
      "GET / HTTP/1.10\r\n\r\n",   // not 1.x
      "GET / http/1.0\r\n\r\n",    // case-sensitive name
      "GET / HTTP/1.x\r\n\r\n",
      "G(T / HTTP/1.0\r\n\r\n",                 // not a token
      "GET metrics HTTP/1.0\r\n\r\n",           // target without '/'
      "GET http://h/metrics HTTP/1.0\r\n\r\n",  // absolute-form
      "OPTIONS * HTTP/1.0\r\n\r\n",             // asterisk-form
      "GET /a#b HTTP/1.0\r\n\r\n",              // fragment
      "GET /\x7f HTTP/1.0\r\n\r\n",             // DEL in the target
      "GET /\xc3\xa9 HTTP/1.0\r\n\r\n",         // non-ASCII target
      "GET /\tx HTTP/1.0\r\n\r\n",
      // Line ends.
      "GET / HTTP/1.0\n\n",
      "GET / HTTP/1.0\r\nA: b\n\r\n",
      "GET / HTTP/1.0\r\n\n",
      "GET / HTTP/1.0\r\nA: b\rc\r\n\r\n",
      "GET / HTTP/1.0\r\r\n\r\n",
      // Header fields.
      "GET / HTTP/1.0\r\nNoColon\r\n\r\n",
      "GET / HTTP/1.0\r\n: empty name\r\n\r\n",
      "GET / HTTP/1.0\r\nName : space before colon\r\n\r\n",
      "GET / HTTP/1.0\r\nNa me: x\r\n\r\n",
      "GET / HTTP/1.0\r\nA: b\r\n folded\r\n\r\n",  // obs-fold
      "GET / HTTP/1.0\r\nA: b\r\n\tfolded\r\n\r\n",
      "GET / HTTP/1.0\r\nA: b\x01\r\n\r\n",
      "GET / HTTP/1.0\r\nA: b\x7f\r\n\r\n",
      // Host: required by 1.1, never twice; Authorization never twice.
      "GET / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
      "GET / HTTP/1.0\r\nAuthorization: a\r\nAUTHORIZATION: b\r\n\r\n",
  };
  for (const std::string& request : bad) {
    const HttpParseResult r = ParseHttpRequest(request);
    EXPECT_EQ(r.status, Status::kBad) << "accepted: " << request;
    EXPECT_FALSE(r.error.empty());
  }
}

TEST(HttpRequestParserTest, RejectsNulBytesAnywhere) {
  const std::string request = "GET / HTTP/1.0\r\nA: b\r\n\r\n";
  for (size_t i = 0; i < request.size(); ++i) {
    std::string with_nul = request;
    with_nul[i] = '\0';
    EXPECT_EQ(ParseHttpRequest(with_nul).status, Status::kBad) << i;
    // Also before the head is complete.
    EXPECT_EQ(ParseHttpRequest(with_nul.substr(0, i + 1)).status, Status::kBad)
        << i;
  }
}

TEST(HttpRequestParserTest, RefusesAnotherProtocolAtOnce) {
  // The start of a TLS ClientHello: refused without waiting for a line end.
  EXPECT_EQ(ParseHttpRequest("\x16\x03\x01\x02").status, Status::kBad);
  EXPECT_EQ(ParseHttpRequest("SSH-2.0-OpenSSH_9.2p1 Debian").status,
            Status::kBad);
  EXPECT_EQ(ParseHttpRequest("GET /a\x01").status, Status::kBad);
  EXPECT_EQ(ParseHttpRequest("GET  ").status, Status::kBad);
  EXPECT_EQ(ParseHttpRequest("GET / HTTP/2").status, Status::kBad);
  EXPECT_EQ(ParseHttpRequest("GET / HTTP/1.1x").status, Status::kBad);
  EXPECT_EQ(ParseHttpRequest("GET / HTTP/1.0\r\nA: b\rx").status, Status::kBad);
  // A method in progress is still fine.
  EXPECT_EQ(ParseHttpRequest("GE").status, Status::kIncomplete);
  EXPECT_EQ(ParseHttpRequest("GET /").status, Status::kIncomplete);
  EXPECT_EQ(ParseHttpRequest("GET / HT").status, Status::kIncomplete);
  EXPECT_EQ(ParseHttpRequest("GET / HTTP/1.1").status, Status::kIncomplete);
  EXPECT_EQ(ParseHttpRequest("SSH-2.0-OpenSSH").status, Status::kIncomplete);
  EXPECT_EQ(ParseHttpRequest("GET / HTTP/1.0\r").status, Status::kIncomplete);
}

TEST(HttpRequestParserTest, EnforcesTheHeadSizeLimit) {
  const std::string start = "GET / HTTP/1.0\r\nX: ";
  const std::string end = "\r\n\r\n";
  // Exactly the limit: fine.
  std::string request =
      start +
      std::string(kMaxRequestHeadBytes - start.size() - end.size(), 'a') + end;
  ASSERT_EQ(request.size(), kMaxRequestHeadBytes);
  EXPECT_EQ(ParseHttpRequest(request).status, Status::kComplete);
  // One more byte: bad, complete or not.
  request =
      start +
      std::string(kMaxRequestHeadBytes + 1 - start.size() - end.size(), 'a') +
      end;
  EXPECT_EQ(ParseHttpRequest(request).status, Status::kBad);
  EXPECT_EQ(ParseHttpRequest(request.substr(0, kMaxRequestHeadBytes)).status,
            Status::kBad);
  EXPECT_EQ(
      ParseHttpRequest(request.substr(0, kMaxRequestHeadBytes - 1)).status,
      Status::kIncomplete);
  // A smaller limit applies the same way.
  EXPECT_EQ(ParseHttpRequest("GET / HTTP/1.0\r\n\r\n", 17).status,
            Status::kBad);
  EXPECT_EQ(ParseHttpRequest("GET / HTTP/1.0\r\n\r\n", 18).status,
            Status::kComplete);
}

TEST(HttpRequestParserTest, LimitsTheNumberOfHeaderFields) {
  std::string request = "GET / HTTP/1.0\r\n";
  for (size_t i = 0; i < kMaxRequestHeaderFields; ++i) request += "A: b\r\n";
  EXPECT_EQ(ParseHttpRequest(request + "\r\n").status, Status::kComplete);
  EXPECT_EQ(ParseHttpRequest(request + "A: b\r\n\r\n").status, Status::kBad);
}

// ---- Listen addresses ----------------------------------------------------

TEST(ParseListenAddressTest, AcceptsTheDocumentedForms) {
  ListenAddress a = ParseListenAddress(":9640");
  EXPECT_EQ(a.family, ListenAddress::Family::kAny);
  EXPECT_EQ(a.port, 9640);
  a = ParseListenAddress("127.0.0.1:0");
  EXPECT_EQ(a.family, ListenAddress::Family::kIpv4);
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 0);
  a = ParseListenAddress("localhost:65535");
  EXPECT_EQ(a.family, ListenAddress::Family::kIpv4);
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 65535);
  a = ParseListenAddress("[::1]:9640");
  EXPECT_EQ(a.family, ListenAddress::Family::kIpv6);
  EXPECT_EQ(a.host, "::1");
  a = ParseListenAddress("[::]:1");
  EXPECT_EQ(a.family, ListenAddress::Family::kIpv6);
  EXPECT_EQ(a.host, "::");
}

TEST(ParseListenAddressTest, RejectsMalformedAddressesNamingThem) {
  for (const char* bad :
       {"", "9640", ":", ":x", ":-1", ":65536", ":123456", ": 1", "h:1",
        "example.com:9640", "1.2.3:9640", "1.2.3.4.5:1", "::1:9640", "[::1]",
        "[::1:9640", "::1]:9640", "[]:1", "[1.2.3.4]:1", "[fe80::1%lo]:1"}) {
    try {
      ParseListenAddress(bad);
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const HttpError& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("\"") + bad + "\""),
                std::string::npos)
          << e.what();
    }
  }
}

// ---- Clients for the real server -----------------------------------------

struct Response {
  int status = 0;                              // 0: no HTTP response
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it != headers.end() ? it->second : "<absent>";
  }
};

Response ParseResponse(const std::string& raw) {
  Response r;
  const size_t end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return r;
  r.status = std::atoi(raw.c_str() + 9);
  r.body = raw.substr(end + 4);
  size_t pos = raw.find("\r\n") + 2;
  while (pos < end) {
    const size_t eol = raw.find("\r\n", pos);
    const std::string line = raw.substr(pos, eol - pos);
    const size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(c));
    r.headers[name] = line.substr(colon + 2);
    pos = eol + 2;
  }
  return r;
}

// A connected blocking TCP socket with I/O timeouts, or -1.
int Connect(int family, int port) {
  const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  int rc = -1;
  if (family == AF_INET) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  } else {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<uint16_t>(port));
    a.sin6_addr = in6addr_loopback;
    rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  if (rc != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n =
        send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string ReadToEnd(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

// Sends `request` as is and returns all the server sends back.
std::string ExchangeRaw(int port, const std::string& request,
                        int family = AF_INET) {
  const int fd = Connect(family, port);
  if (fd < 0) return "<connect failed>";
  SendAll(fd, request);
  std::string out = ReadToEnd(fd);
  close(fd);
  return out;
}

std::string Request(const std::string& method, const std::string& target,
                    const std::string& extra_headers = "") {
  return method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n" +
         extra_headers + "\r\n";
}

Response Get(int port, const std::string& target,
             const std::string& extra_headers = "", int family = AF_INET) {
  return ParseResponse(
      ExchangeRaw(port, Request("GET", target, extra_headers), family));
}

bool HaveIpv6Loopback() {
  const int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  close(fd);
  return ok;
}

std::string Base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(in.data()),
                      static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

HttpServer::Handlers TestHandlers(std::string metrics = "up 1\n") {
  HttpServer::Handlers handlers;
  handlers.metrics = [metrics] { return metrics; };
  handlers.health = [](std::string* detail) {
    *detail = "ok";
    return true;
  };
  return handlers;
}

// ---- Plain HTTP ----------------------------------------------------------

TEST(HttpServerTest, ServesTheMetricsPath) {
  HttpServer server("127.0.0.1:0", "/metrics", TestHandlers());
  ASSERT_GT(server.port(), 0);
  const Response r = Get(server.port(), "/metrics?x=1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "up 1\n");
  EXPECT_EQ(r.Header("content-type"),
            "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.Header("content-length"), "5");
  EXPECT_EQ(r.Header("cache-control"), "no-store");
  EXPECT_EQ(r.Header("connection"), "close");
  // HTTP/1.0 needs no Host.
  EXPECT_EQ(
      ParseResponse(ExchangeRaw(server.port(), "GET /metrics HTTP/1.0\r\n\r\n"))
          .status,
      200);
}

TEST(HttpServerTest, ServesHealthAndTheLandingPage) {
  HttpServer::Handlers handlers = TestHandlers();
  std::atomic<bool> healthy{true};
  handlers.health = [&](std::string* detail) {
    *detail = healthy ? "ok" : "ring buffer stalled";
    return healthy.load();
  };
  HttpServer server("127.0.0.1:0", "/custom/<path>", handlers);
  Response r = Get(server.port(), "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok\n");
  healthy = false;
  r = Get(server.port(), "/healthz");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "ring buffer stalled\n");
  EXPECT_EQ(r.Header("content-type"), "text/plain; charset=utf-8");

  r = Get(server.port(), "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(r.body.find("href=\"/custom/&lt;path&gt;\""), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("href=\"/healthz\""), std::string::npos);
  EXPECT_EQ(Get(server.port(), "/custom/<path>").status, 200);
}

TEST(HttpServerTest, UnknownPathsAre404) {
  HttpServer server("127.0.0.1:0", "/metrics", TestHandlers());
  for (const char* target : {"/metrics/", "/metricsx", "/Metrics", "/%6detrics",
                             "/healthz/x", "//", "/index.html"}) {
    const Response r = Get(server.port(), target);
    EXPECT_EQ(r.status, 404) << target;
    EXPECT_EQ(r.Header("content-length"), std::to_string(r.body.size()));
  }
}

TEST(HttpServerTest, OtherMethodsAre405) {
  HttpServer server("127.0.0.1:0", "/metrics", TestHandlers());
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "get"}) {
    const Response r =
        ParseResponse(ExchangeRaw(server.port(), Request(method, "/metrics")));
    EXPECT_EQ(r.status, 405) << method;
    EXPECT_EQ(r.Header("allow"), "GET, HEAD") << method;
  }
  // A body the server never reads must not turn the answer into a reset.
  const std::string body(200000, 'x');
  const Response r = ParseResponse(ExchangeRaw(
      server.port(),
      Request("POST", "/metrics",
              "Content-Length: " + std::to_string(body.size()) + "\r\n") +
          body));
  EXPECT_EQ(r.status, 405);
}

TEST(HttpServerTest, HeadSendsHeadersOnly) {
  HttpServer server("127.0.0.1:0", "/metrics", TestHandlers("up 1\n"));
  const std::string raw =
      ExchangeRaw(server.port(), Request("HEAD", "/metrics"));
  const Response r = ParseResponse(raw);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-length"), "5");
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(raw.substr(raw.size() - 4), "\r\n\r\n");
}

TEST(HttpServerTest, GarbageIs400) {
  HttpServer server("127.0.0.1:0", "/metrics", TestHandlers());
  for (const std::string& garbage :
       {std::string("hello\r\n\r\n"), std::string("GET /metrics\r\n\r\n"),
        std::string("GET /metrics HTTP/1.1\r\n\r\n"),  // no Host
        std::string("GET /metrics HTTP/1.0\r\nA: b\r\n c\r\n\r\n"),
        std::string("GET /metrics HTTP/1.0\r\nX: ") + std::string(9000, 'a') +
            "\r\n\r\n",
        std::string("\0\0\0\0", 4)}) {
    const Response r = ParseResponse(ExchangeRaw(server.port(), garbage));
    EXPECT_EQ(r.status, 400) << garbage.substr(0, 40);
  }
}

TEST(HttpServerTest, TlsHelloToThePlainPortIsRefusedAtOnce) {
  HttpServer server("127.0.0.1:0", "/metrics", TestHandlers());
  const Clock::time_point start = Clock::now();
  const std::string raw = ExchangeRaw(
      server.port(),
      std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
  EXPECT_LT(Clock::now() - start, milliseconds(2000));
  const Response r = ParseResponse(raw);
  EXPECT_TRUE(raw.empty() || r.status == 400) << raw;
}

TEST(HttpServerTest, ReadsARequestArrivingInPieces) {
  HttpServer server("127.0.0.1:0", "/metrics", TestHandlers());
  const int fd = Connect(AF_INET, server.port());
  ASSERT_GE(fd, 0);
  const std::string request = Request("GET", "/metrics");
  for (char c : request) {
    ASSERT_TRUE(SendAll(fd, std::string(1, c)));
    std::this_thread::sleep_for(milliseconds(2));
  }
  EXPECT_EQ(ParseResponse(ReadToEnd(fd)).status, 200);
  close(fd);
}

TEST(HttpServerTest, SendsLargeBodiesWhole) {
  std::string metrics;
  while (metrics.size() < 8 * 1024 * 1024) {
    metrics +=
        "tcpstated_metric{n=\"" + std::to_string(metrics.size()) + "\"} 1\n";
  }
  HttpServer server("127.0.0.1:0", "/metrics", TestHandlers(metrics));
  const Response r = Get(server.port(), "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body == metrics) << r.body.size() << " of " << metrics.size();
}

TEST(HttpServerTest, HandlerExceptionsAre500) {
  HttpServer::Handlers handlers;
  handlers.metrics = []() -> std::string {
    throw std::runtime_error("render failed");
  };
  handlers.health = [](std::string*) -> bool { throw 42; };
  HttpServer server("127.0.0.1:0", "/metrics", handlers);
  EXPECT_EQ(Get(server.port(), "/metrics").status, 500);
  EXPECT_EQ(Get(server.port(), "/healthz").status, 500);
  // Empty handlers too.
  HttpServer empty("127.0.0.1:0", "/metrics", HttpServer::Handlers());
  EXPECT_EQ(Get(empty.port(), "/metrics").status, 500);
}

TEST(HttpServerTest, ServesIpv6Loopback) {
  if (!HaveIpv6Loopback()) GTEST_SKIP() << "no IPv6 loopback here";
  HttpServer server("[::1]:0", "/metrics", TestHandlers());
  EXPECT_EQ(Get(server.port(), "/metrics", "", AF_INET6).status, 200);
  EXPECT_EQ(Connect(AF_INET, server.port()), -1) << "IPv6 only";
}

TEST(HttpServerTest, EmptyHostListensOnIpv4AndIpv6) {
  HttpServer server(":0", "/metrics", TestHandlers());
  EXPECT_EQ(Get(server.port(), "/metrics", "", AF_INET).status, 200);
  if (HaveIpv6Loopback()) {
    EXPECT_EQ(Get(server.port(), "/metrics", "", AF_INET6).status, 200);
  }
}

TEST(HttpServerTest, LocalhostMeansIpv4Loopback) {
  HttpServer server("localhost:0", "/metrics", TestHandlers());
  EXPECT_EQ(Get(server.port(), "/metrics").status, 200);
}

TEST(HttpServerTest, StalledClientsDoNotBlockOthers) {
  HttpServer server("127.0.0.1:0", "/metrics", TestHandlers());
  // Three of the four workers each held by a client that sends nothing or
  // half a request.
  std::vector<int> stalled;
  for (const char* partial : {"", "GET /metrics HT", "G"}) {
    const int fd = Connect(AF_INET, server.port());
    ASSERT_GE(fd, 0);
    SendAll(fd, partial);
    stalled.push_back(fd);
  }
  std::this_thread::sleep_for(milliseconds(100));
  const Clock::time_point start = Clock::now();
  EXPECT_EQ(Get(server.port(), "/metrics").status, 200);
  EXPECT_LT(Clock::now() - start, milliseconds(1000));
  for (int fd : stalled) close(fd);
}

TEST(HttpServerTest, DestructorReturnsQuicklyWhileClientsStall) {
  auto server =
      std::make_unique<HttpServer>("127.0.0.1:0", "/metrics", TestHandlers());
  std::vector<int> stalled;
  for (int i = 0; i < 8; ++i) {  // more than the workers: some queued
    stalled.push_back(Connect(AF_INET, server->port()));
    ASSERT_GE(stalled.back(), 0);
  }
  SendAll(stalled[0], "GET /metrics HTTP/1.1\r\n");
  std::this_thread::sleep_for(milliseconds(100));
  const Clock::time_point start = Clock::now();
  server.reset();
  EXPECT_LT(Clock::now() - start, kStopBudget)
      << std::chrono::duration_cast<milliseconds>(Clock::now() - start).count()
      << " ms";
  // The server closed the stalled connections.
  for (int fd : stalled) {
    EXPECT_EQ(ReadToEnd(fd), "");
    close(fd);
  }
}

TEST(HttpServerTest, ClosesConnectionsBeyondTheQueue) {
  auto server =
      std::make_unique<HttpServer>("127.0.0.1:0", "/metrics", TestHandlers());
  // 4 workers busy and 64 queued; the rest are closed at once.
  std::vector<int> fds;
  for (int i = 0; i < 4 + 64 + 8; ++i) {
    fds.push_back(Connect(AF_INET, server->port()));
    ASSERT_GE(fds.back(), 0);
    // Let the workers take the first four before the queue fills.
    if (i == 3) std::this_thread::sleep_for(milliseconds(100));
  }
  const Clock::time_point deadline = Clock::now() + milliseconds(3000);
  while (server->dropped_connections() < 8 && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(server->dropped_connections(), 8u);
  // The last one was closed without an answer.
  pollfd p{fds.back(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 1000), 1);
  EXPECT_EQ(ReadToEnd(fds.back()), "");
  const Clock::time_point start = Clock::now();
  server.reset();
  EXPECT_LT(Clock::now() - start, kStopBudget);
  for (int fd : fds) close(fd);
}

TEST(HttpServerTest, PortInUseThrowsNamingTheAddress) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t length = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length);
  const std::string address = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  try {
    HttpServer server(address, "/metrics", TestHandlers());
    ADD_FAILURE() << "no HttpError";
  } catch (const HttpError& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot listen on " + address +
                  ": Address already in use (is another process using the "
                  "port? set --web.listen-address)");
  }
  // All addresses includes this one.
  try {
    HttpServer server(":" + std::to_string(ntohs(a.sin_port)), "/metrics",
                      TestHandlers());
    ADD_FAILURE() << "no HttpError";
  } catch (const HttpError& e) {
    EXPECT_NE(std::string(e.what()).find("Address already in use"),
              std::string::npos);
  }
  close(fd);
}

TEST(HttpServerTest, UnavailableAddressThrows) {
  // TEST-NET-1: assigned to no interface here.
  EXPECT_THROW(HttpServer("192.0.2.1:0", "/metrics", TestHandlers()),
               HttpError);
  EXPECT_THROW(HttpServer("example.com:0", "/metrics", TestHandlers()),
               HttpError);
}

// ---- Basic authentication ------------------------------------------------

WebConfig AuthConfig() {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  // Cost 4, the minimum: the test is about the plumbing, not the hash.
  EXPECT_NE(crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof(salt)),
            nullptr);
  crypt_data data{};
  const char* hash = crypt_r("s3cret", salt, &data);
  EXPECT_NE(hash, nullptr);
  WebConfig web;
  web.users["prometheus"] = hash;
  return web;
}

std::string BasicAuth(const std::string& user, const std::string& password) {
  return "Authorization: Basic " + Base64(user + ":" + password) + "\r\n";
}

TEST(HttpServerTest, BasicAuthGuardsEveryPath) {
  HttpServer server("127.0.0.1:0", "/metrics", TestHandlers(), AuthConfig());
  for (const char* target : {"/metrics", "/healthz", "/", "/nonexistent"}) {
    Response r = Get(server.port(), target);
    EXPECT_EQ(r.status, 401) << target;
    EXPECT_EQ(r.Header("www-authenticate"), "Basic realm=\"tcpstated\"");
    EXPECT_EQ(r.Header("cache-control"), "no-store");
  }
  EXPECT_EQ(
      Get(server.port(), "/metrics", BasicAuth("prometheus", "wrong")).status,
      401);
  EXPECT_EQ(
      Get(server.port(), "/metrics", BasicAuth("nobody", "s3cret")).status,
      401);
  EXPECT_EQ(
      Get(server.port(), "/metrics", "Authorization: Bearer x\r\n").status,
      401);
  EXPECT_EQ(
      ParseResponse(ExchangeRaw(server.port(), Request("POST", "/metrics")))
          .status,
      401);

  const std::string good = BasicAuth("prometheus", "s3cret");
  Response r = Get(server.port(), "/metrics", good);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "up 1\n");
  EXPECT_EQ(Get(server.port(), "/nonexistent", good).status, 404);
  EXPECT_EQ(ParseResponse(
                ExchangeRaw(server.port(), Request("POST", "/metrics", good)))
                .status,
            405);
}

// ---- TLS -----------------------------------------------------------------

// A self-signed certificate for localhost, 127.0.0.1 and ::1, written once
// for all TLS tests.
class HttpServerTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char pattern[] = "/tmp/tcpstated-http-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    EVP_PKEY* key = EVP_RSA_gen(2048);
    ASSERT_NE(key, nullptr);
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(
        name, "CN", MBSTRING_ASC,
        reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    for (auto [nid, value] :
         {std::pair<int, const char*>{NID_basic_constraints,
                                      "critical,CA:TRUE"},
          {NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"}}) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
      ASSERT_NE(ext, nullptr);
      X509_add_ext(cert, ext, -1);
      X509_EXTENSION_free(ext);
    }
    ASSERT_GT(X509_sign(cert, key, EVP_sha256()), 0);
    cert_file_ = dir_ + "/cert.pem";
    key_file_ = dir_ + "/key.pem";
    FILE* f = std::fopen(cert_file_.c_str(), "w");
    ASSERT_NE(f, nullptr);
    PEM_write_X509(f, cert);
    std::fclose(f);
    f = std::fopen(key_file_.c_str(), "w");
    ASSERT_NE(f, nullptr);
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    // A second key, matching no certificate.
    EVP_PKEY* other = EVP_RSA_gen(2048);
    other_key_file_ = dir_ + "/other.pem";
    f = std::fopen(other_key_file_.c_str(), "w");
    PEM_write_PrivateKey(f, other, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    EVP_PKEY_free(other);
    // The right key, encrypted.
    encrypted_key_file_ = dir_ + "/encrypted.pem";
    f = std::fopen(encrypted_key_file_.c_str(), "w");
    const char kPass[] = "passphrase";
    PEM_write_PrivateKey(f, key, EVP_aes_256_cbc(),
                         reinterpret_cast<const unsigned char*>(kPass),
                         sizeof(kPass) - 1, nullptr, nullptr);
    std::fclose(f);
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static WebConfig Tls(bool tls13_only = false) {
    WebConfig web;
    web.tls = true;
    web.cert_file = cert_file_;
    web.key_file = key_file_;
    web.tls13_only = tls13_only;
    return web;
  }

  struct TlsResult {
    bool handshake_ok = false;
    std::string protocol;
    std::string raw;
  };

  // Connects with TLS (verifying the server against our certificate),
  // sends `request`, reads to the end.
  static TlsResult TlsExchange(int port, const std::string& request,
                               int min_version = 0, int max_version = 0,
                               int family = AF_INET) {
    TlsResult result;
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    // Level 0 so that the client offers old versions when asked to, and the
    // refusal is the server's.
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_min_proto_version(ctx, min_version);
    SSL_CTX_set_max_proto_version(ctx, max_version);
    SSL_CTX_load_verify_locations(ctx, cert_file_.c_str(), nullptr);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    const int fd = Connect(family, port);
    SSL* ssl = SSL_new(ctx);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
                                  family == AF_INET ? "127.0.0.1" : "::1");
    SSL_set_fd(ssl, fd);
    if (fd >= 0 && SSL_connect(ssl) == 1) {
      result.handshake_ok = true;
      result.protocol = SSL_get_version(ssl);
      SSL_write(ssl, request.data(), static_cast<int>(request.size()));
      char buf[65536];
      for (;;) {
        const int n = SSL_read(ssl, buf, sizeof(buf));
        if (n <= 0) break;
        result.raw.append(buf, static_cast<size_t>(n));
      }
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (fd >= 0) close(fd);
    return result;
  }

  static std::string dir_;
  static std::string cert_file_;
  static std::string key_file_;
  static std::string other_key_file_;
  static std::string encrypted_key_file_;
};

std::string HttpServerTlsTest::dir_;
std::string HttpServerTlsTest::cert_file_;
std::string HttpServerTlsTest::key_file_;
std::string HttpServerTlsTest::other_key_file_;
std::string HttpServerTlsTest::encrypted_key_file_;

TEST_F(HttpServerTlsTest, ServesOverTls) {
  HttpServer server("127.0.0.1:0", "/metrics", TestHandlers(), Tls());
  const TlsResult t = TlsExchange(server.port(), Request("GET", "/metrics"));
  ASSERT_TRUE(t.handshake_ok);
  EXPECT_EQ(t.protocol, "TLSv1.3");
  const Response r = ParseResponse(t.raw);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "up 1\n");
  // TLS 1.2 is accepted by default.
  const TlsResult t12 = TlsExchange(server.port(), Request("GET", "/healthz"),
                                    TLS1_2_VERSION, TLS1_2_VERSION);
  ASSERT_TRUE(t12.handshake_ok);
  EXPECT_EQ(t12.protocol, "TLSv1.2");
  EXPECT_EQ(ParseResponse(t12.raw).status, 200);
}

TEST_F(HttpServerTlsTest, SendsLargeBodiesWholeOverTls) {
  std::string metrics;
  while (metrics.size() < 4 * 1024 * 1024) {
    metrics += "m{n=\"" + std::to_string(metrics.size()) + "\"} 1\n";
  }
  HttpServer server("127.0.0.1:0", "/metrics", TestHandlers(metrics), Tls());
  const Response r =
      ParseResponse(TlsExchange(server.port(), Request("GET", "/metrics")).raw);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body == metrics) << r.body.size() << " of " << metrics.size();
}

TEST_F(HttpServerTlsTest, ServesOverTlsOnIpv6) {
  if (!HaveIpv6Loopback()) GTEST_SKIP() << "no IPv6 loopback here";
  HttpServer server("[::1]:0", "/metrics", TestHandlers(), Tls());
  const TlsResult t =
      TlsExchange(server.port(), Request("GET", "/metrics"), 0, 0, AF_INET6);
  ASSERT_TRUE(t.handshake_ok);
  EXPECT_EQ(ParseResponse(t.raw).status, 200);
}

TEST_F(HttpServerTlsTest, RefusesOldProtocolVersions) {
  HttpServer server("127.0.0.1:0", "/metrics", TestHandlers(), Tls());
  EXPECT_FALSE(TlsExchange(server.port(), Request("GET", "/metrics"),
                           TLS1_VERSION, TLS1_1_VERSION)
                   .handshake_ok);
  HttpServer tls13("127.0.0.1:0", "/metrics", TestHandlers(), Tls(true));
  EXPECT_FALSE(TlsExchange(tls13.port(), Request("GET", "/metrics"),
                           TLS1_2_VERSION, TLS1_2_VERSION)
                   .handshake_ok);
  EXPECT_TRUE(TlsExchange(tls13.port(), Request("GET", "/metrics"),
                          TLS1_3_VERSION, TLS1_3_VERSION)
                  .handshake_ok);
}

TEST_F(HttpServerTlsTest, PlainHttpToTheTlsPortFails) {
  HttpServer server("127.0.0.1:0", "/metrics", TestHandlers(), Tls());
  const Clock::time_point start = Clock::now();
  const std::string raw =
      ExchangeRaw(server.port(), Request("GET", "/metrics"));
  EXPECT_NE(ParseResponse(raw).status, 200) << raw;
  EXPECT_EQ(raw.find("up 1"), std::string::npos);
  EXPECT_LT(Clock::now() - start, milliseconds(2000));
  // The server is still fine afterwards.
  EXPECT_EQ(
      ParseResponse(TlsExchange(server.port(), Request("GET", "/metrics")).raw)
          .status,
      200);
}

TEST_F(HttpServerTlsTest, StalledHandshakeDoesNotBlockOthers) {
  auto server = std::make_unique<HttpServer>("127.0.0.1:0", "/metrics",
                                             TestHandlers(), Tls());
  const int stalled = Connect(AF_INET, server->port());
  ASSERT_GE(stalled, 0);
  SendAll(stalled, std::string("\x16\x03\x01", 3));  // a third of a header
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(
      ParseResponse(TlsExchange(server->port(), Request("GET", "/metrics")).raw)
          .status,
      200);
  const Clock::time_point start = Clock::now();
  server.reset();
  EXPECT_LT(Clock::now() - start, kStopBudget);
  close(stalled);
}

TEST_F(HttpServerTlsTest, TlsWithBasicAuth) {
  WebConfig web = Tls();
  web.users = AuthConfig().users;
  HttpServer server("127.0.0.1:0", "/metrics", TestHandlers(), web);
  EXPECT_EQ(
      ParseResponse(TlsExchange(server.port(), Request("GET", "/metrics")).raw)
          .status,
      401);
  EXPECT_EQ(
      ParseResponse(
          TlsExchange(server.port(), Request("GET", "/metrics",
                                             BasicAuth("prometheus", "s3cret")))
              .raw)
          .status,
      200);
}

TEST_F(HttpServerTlsTest, UnusableCertificatesThrowNamingTheFile) {
  auto error = [](const WebConfig& web) -> std::string {
    try {
      HttpServer server("127.0.0.1:0", "/metrics", TestHandlers(), web);
    } catch (const HttpError& e) {
      return e.what();
    }
    return "no error";
  };
  WebConfig web = Tls();
  web.cert_file = dir_ + "/missing.pem";
  EXPECT_NE(error(web).find(web.cert_file), std::string::npos) << error(web);
  web = Tls();
  web.cert_file = key_file_;  // not a certificate
  EXPECT_NE(error(web).find(web.cert_file), std::string::npos) << error(web);
  web = Tls();
  web.key_file = cert_file_;  // not a key
  EXPECT_NE(error(web).find(web.key_file), std::string::npos) << error(web);
  web = Tls();
  web.key_file = other_key_file_;
  const std::string mismatch = error(web);
  EXPECT_NE(mismatch.find("does not match"), std::string::npos) << mismatch;
  EXPECT_NE(mismatch.find(other_key_file_), std::string::npos) << mismatch;
  // No prompt on the terminal: an error.
  web = Tls();
  web.key_file = encrypted_key_file_;
  const std::string encrypted = error(web);
  EXPECT_NE(encrypted.find(encrypted_key_file_), std::string::npos)
      << encrypted;
  EXPECT_NE(encrypted.find("encrypted"), std::string::npos) << encrypted;
}

}  // namespace
}  // namespace tcpstated
