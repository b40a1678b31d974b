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

#include "http_test_support.h"
#include "tcpstated/http_request.h"

namespace tcpstated {
namespace {

using namespace http_test;  // NOLINT: the test helpers

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

// ---- Plain HTTP ----------------------------------------------------------

TEST(HttpServerTest, ServesTheMetricsPath) {
  Server server("127.0.0.1:0", TestRoutes());
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

TEST(HttpServerTest, RoutesByExactPath) {
  std::vector<HttpRoute> routes = TestRoutes();
  std::atomic<bool> healthy{true};
  routes.push_back({"/custom/<path>", false, [&](const HttpRequest& request) {
                      HttpResponse r;
                      r.status = healthy ? 200 : 503;
                      r.body = request.target + "\n";
                      return r;
                    }});
  Server server("127.0.0.1:0", routes);
  Response r = Get(server.port(), "/custom/<path>?a=b");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "/custom/<path>?a=b\n");
  EXPECT_EQ(r.Header("content-type"), "text/plain; charset=utf-8");
  healthy = false;
  EXPECT_EQ(Get(server.port(), "/custom/<path>").status, 503);
  EXPECT_EQ(Get(server.port(), "/").status, 404);
}

TEST(HttpServerTest, UnknownPathsAre404) {
  Server server("127.0.0.1:0", TestRoutes());
  for (const char* target : {"/metrics/", "/metricsx", "/Metrics", "/%6detrics",
                             "/healthz/x", "//", "/index.html"}) {
    const Response r = Get(server.port(), target);
    EXPECT_EQ(r.status, 404) << target;
    EXPECT_EQ(r.Header("content-length"), std::to_string(r.body.size()));
  }
}

TEST(HttpServerTest, OtherMethodsAre405) {
  Server server("127.0.0.1:0", TestRoutes());
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
  Server server("127.0.0.1:0", TestRoutes("up 1\n"));
  const std::string raw =
      ExchangeRaw(server.port(), Request("HEAD", "/metrics"));
  const Response r = ParseResponse(raw);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-length"), "5");
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(raw.substr(raw.size() - 4), "\r\n\r\n");
}

TEST(HttpServerTest, GarbageIs400) {
  Server server("127.0.0.1:0", TestRoutes());
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
  Server server("127.0.0.1:0", TestRoutes());
  const Clock::time_point start = Clock::now();
  const std::string raw = ExchangeRaw(
      server.port(),
      std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
  EXPECT_LT(Clock::now() - start, milliseconds(2000));
  const Response r = ParseResponse(raw);
  EXPECT_TRUE(raw.empty() || r.status == 400) << raw;
}

TEST(HttpServerTest, ReadsARequestArrivingInPieces) {
  Server server("127.0.0.1:0", TestRoutes());
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
  Server server("127.0.0.1:0", TestRoutes(metrics));
  const Response r = Get(server.port(), "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body == metrics) << r.body.size() << " of " << metrics.size();
}

TEST(HttpServerTest, HandlerExceptionsAre500) {
  std::vector<HttpRoute> routes;
  routes.push_back({"/metrics", false, [](const HttpRequest&) -> HttpResponse {
                      throw std::runtime_error("render failed");
                    }});
  routes.push_back({"/healthz", false,
                    [](const HttpRequest&) -> HttpResponse { throw 42; }});
  routes.push_back({"/empty", false, nullptr});
  Server server("127.0.0.1:0", routes);
  EXPECT_EQ(Get(server.port(), "/metrics").status, 500);
  EXPECT_EQ(Get(server.port(), "/healthz").status, 500);
  EXPECT_EQ(Get(server.port(), "/empty").status, 500);
}

TEST(HttpServerTest, ServesIpv6Loopback) {
  if (!HaveIpv6Loopback()) GTEST_SKIP() << "no IPv6 loopback here";
  Server server("[::1]:0", TestRoutes());
  EXPECT_EQ(Get(server.port(), "/metrics", "", AF_INET6).status, 200);
  EXPECT_EQ(Connect(AF_INET, server.port()), -1) << "IPv6 only";
}

TEST(HttpServerTest, EmptyHostListensOnIpv4AndIpv6) {
  Server server(":0", TestRoutes());
  EXPECT_EQ(Get(server.port(), "/metrics", "", AF_INET).status, 200);
  if (HaveIpv6Loopback()) {
    EXPECT_EQ(Get(server.port(), "/metrics", "", AF_INET6).status, 200);
  }
}

TEST(HttpServerTest, LocalhostMeansIpv4Loopback) {
  Server server("localhost:0", TestRoutes());
  EXPECT_EQ(Get(server.port(), "/metrics").status, 200);
}

TEST(HttpServerTest, DestructorReturnsQuicklyWhileClientsStall) {
  auto server = std::make_unique<Server>("127.0.0.1:0", TestRoutes());
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
    Server server(address, TestRoutes());
    ADD_FAILURE() << "no HttpError";
  } catch (const HttpError& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot listen on " + address +
                  ": Address already in use (is another process using the "
                  "port? set --web.listen-address)");
  }
  // All addresses includes this one.
  try {
    Server server(":" + std::to_string(ntohs(a.sin_port)), TestRoutes());
    ADD_FAILURE() << "no HttpError";
  } catch (const HttpError& e) {
    EXPECT_NE(std::string(e.what()).find("Address already in use"),
              std::string::npos);
  }
  close(fd);
}

TEST(HttpServerTest, UnavailableAddressThrows) {
  // TEST-NET-1: assigned to no interface here.
  EXPECT_THROW(Server("192.0.2.1:0"), HttpError);
  EXPECT_THROW(Server("example.com:0"), HttpError);
}

// ---- Basic authentication ------------------------------------------------

TEST(HttpServerTest, BasicAuthGuardsEveryPath) {
  Server server("127.0.0.1:0", TestRoutes(), AuthConfig());
  for (const char* target : {"/metrics", "/healthz", "/", "/nonexistent"}) {
    Response r = Get(server.port(), target);
    EXPECT_EQ(r.status, 401) << target;
    EXPECT_EQ(r.Header("www-authenticate"), "Basic realm=\"tcpstated\"");
    EXPECT_EQ(r.Header("cache-control"), "no-store");
  }
  EXPECT_EQ(
      Get(server.port(), "/metrics", AuthHeader("prometheus", "wrong")).status,
      401);
  EXPECT_EQ(
      Get(server.port(), "/metrics", AuthHeader("nobody", "s3cret")).status,
      401);
  EXPECT_EQ(
      Get(server.port(), "/metrics", "Authorization: Bearer x\r\n").status,
      401);
  EXPECT_EQ(
      ParseResponse(ExchangeRaw(server.port(), Request("POST", "/metrics")))
          .status,
      401);

  const std::string good = AuthHeader("prometheus", "s3cret");
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

TEST_F(HttpServerTlsTest, ServesOverTls) {
  Server server("127.0.0.1:0", TestRoutes(), Tls());
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
  Server server("127.0.0.1:0", TestRoutes(metrics), Tls());
  const Response r =
      ParseResponse(TlsExchange(server.port(), Request("GET", "/metrics")).raw);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body == metrics) << r.body.size() << " of " << metrics.size();
}

TEST_F(HttpServerTlsTest, ServesOverTlsOnIpv6) {
  if (!HaveIpv6Loopback()) GTEST_SKIP() << "no IPv6 loopback here";
  Server server("[::1]:0", TestRoutes(), Tls());
  const TlsResult t =
      TlsExchange(server.port(), Request("GET", "/metrics"), 0, 0, AF_INET6);
  ASSERT_TRUE(t.handshake_ok);
  EXPECT_EQ(ParseResponse(t.raw).status, 200);
}

TEST_F(HttpServerTlsTest, RefusesOldProtocolVersions) {
  Server server("127.0.0.1:0", TestRoutes(), Tls());
  EXPECT_FALSE(TlsExchange(server.port(), Request("GET", "/metrics"),
                           TLS1_VERSION, TLS1_1_VERSION)
                   .handshake_ok);
  Server tls13("127.0.0.1:0", TestRoutes(), Tls(true));
  EXPECT_FALSE(TlsExchange(tls13.port(), Request("GET", "/metrics"),
                           TLS1_2_VERSION, TLS1_2_VERSION)
                   .handshake_ok);
  EXPECT_TRUE(TlsExchange(tls13.port(), Request("GET", "/metrics"),
                          TLS1_3_VERSION, TLS1_3_VERSION)
                  .handshake_ok);
}

TEST_F(HttpServerTlsTest, PlainHttpToTheTlsPortFails) {
  Server server("127.0.0.1:0", TestRoutes(), Tls());
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
  auto server = std::make_unique<Server>("127.0.0.1:0", TestRoutes(), Tls());
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
  Server server("127.0.0.1:0", TestRoutes(), web);
  EXPECT_EQ(
      ParseResponse(TlsExchange(server.port(), Request("GET", "/metrics")).raw)
          .status,
      401);
  EXPECT_EQ(
      ParseResponse(TlsExchange(server.port(),
                                Request("GET", "/metrics",
                                        AuthHeader("prometheus", "s3cret")))
                        .raw)
          .status,
      200);
}

TEST_F(HttpServerTlsTest, UnusableCertificatesThrowNamingTheFile) {
  auto error = [](const WebConfig& web) -> std::string {
    try {
      Server server("127.0.0.1:0", TestRoutes(), web);
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
