#include "tcpstated/web_ui.h"

#include <gtest/gtest.h>

#include <string>

#include "http_test_support.h"
#include "tcpstated/http_server.h"
#include "tcpstated/web_assets.h"

namespace tcpstated {
namespace {

std::string Serve(const std::string& path, WebUiResponse* out) {
  return ServeWebUi(
             path, [] { return std::string("{\"api_version\":1}"); }, out)
             ? out->body
             : std::string("(not served)");
}

TEST(WebUi, ServesThePageItsFilesAndTheApi) {
  WebUiResponse r;
  EXPECT_NE(Serve("/", &r).find("<svg id=\"diagram\""), std::string::npos);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_NE(Serve("/ui/app.js", &r).find("/api/v1/state"), std::string::npos);
  EXPECT_EQ(r.content_type, "text/javascript; charset=utf-8");
  EXPECT_NE(Serve("/ui/app.css", &r).find("--invalid"), std::string::npos);
  EXPECT_EQ(r.content_type, "text/css; charset=utf-8");
  EXPECT_EQ(Serve(kStateApiPath, &r), "{\"api_version\":1}");
  EXPECT_EQ(r.content_type, "application/json");
}

TEST(WebUi, OtherPathsAreNotOurs) {
  WebUiResponse r;
  for (const char* path : {"/metrics", "/ui/", "/ui/app.jsx", "/index.html",
                           "/api/v1/state/", "/api/v2/state", ""}) {
    EXPECT_FALSE(ServeWebUi(
        path, [] { return std::string(); }, &r))
        << path;
  }
}

TEST(WebUi, EveryAnswerForbidsOtherOrigins) {
  for (size_t i = 0; i < kWebAssetCount; ++i) {
    WebUiResponse r;
    Serve(std::string(kWebAssets[i].path), &r);
    EXPECT_NE(r.headers.find("Content-Security-Policy: default-src 'none'; "
                             "script-src 'self'"),
              std::string::npos);
    EXPECT_EQ(r.headers.find("unsafe"), std::string::npos);
    EXPECT_EQ(r.headers.back(), '\n');
  }
}

// Nothing in the page names another host: no absolute or scheme-relative
// URL anywhere (the SVG namespace URI is an identifier, never fetched), no
// @import.
TEST(WebUi, FilesReferenceOnlyTheirOwnOrigin) {
  for (size_t i = 0; i < kWebAssetCount; ++i) {
    const std::string body(kWebAssets[i].body);
    const std::string path(kWebAssets[i].path);
    for (const char* bad :
         {"=\"//", "='//", "(//", "(\"//", "('//", "@import", "`//"}) {
      EXPECT_EQ(body.find(bad), std::string::npos) << path << ": " << bad;
    }
    for (size_t at = body.find("://"); at != std::string::npos;
         at = body.find("://", at + 1)) {
      const size_t from = at >= 5 ? at - 5 : 0;
      const std::string url = body.substr(from, 32);
      EXPECT_NE(url.find("http://www.w3.org/2000/svg"), std::string::npos)
          << path << ": " << url;
    }
  }
}

using http_test::AuthConfig;
using http_test::ExchangeRaw;

// The page and its API sit behind the server's basic auth like /metrics
// ("prometheus:s3cret", a cost-4 bcrypt: the plumbing is under test).
TEST(WebUi, ServedThroughTheServersAuthentication) {
  const WebConfig web = AuthConfig();
  // The same routes the daemon registers for the page (Daemon::Routes).
  auto page = [](const HttpRequest& req) {
    WebUiResponse r;
    HttpResponse out;
    if (!ServeWebUi(
            req.path, [] { return std::string("{}"); }, &r)) {
      out.status = 404;
      return out;
    }
    out.content_type = r.content_type;
    out.body = r.body;
    out.extra_headers = r.headers;
    return out;
  };
  std::vector<HttpRoute> routes;
  for (const char* path : {"/", "/ui/app.js", "/api/v1/state"}) {
    routes.push_back({path, false, page});
  }
  HttpServer server("127.0.0.1:0", web);
  server.Start(std::move(routes));
  for (const char* path : {"/", "/ui/app.js", "/api/v1/state"}) {
    const std::string head = std::string("GET ") + path +
                             " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
    EXPECT_EQ(
        ExchangeRaw(server.port(), head + "\r\n").rfind("HTTP/1.1 401", 0), 0u)
        << path;
    // "prometheus:s3cret" in base64.
    const std::string ok = ExchangeRaw(
        server.port(),
        head + "Authorization: Basic cHJvbWV0aGV1czpzM2NyZXQ=\r\n\r\n");
    EXPECT_EQ(ok.rfind("HTTP/1.1 200", 0), 0u) << path;
    EXPECT_NE(ok.find("\r\nContent-Security-Policy: default-src 'none';"),
              std::string::npos)
        << path;
  }
}

}  // namespace
}  // namespace tcpstated
