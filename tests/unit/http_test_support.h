// Clients, servers and certificates for the HTTP server's tests: raw
// sockets so that tests control every byte and every stall.
#pragma once

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

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tcpstated/http_server.h"

namespace tcpstated::http_test {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
namespace fs = std::filesystem;

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

inline Response ParseResponse(const std::string& raw) {
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
inline int Connect(int family, int port) {
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

inline bool SendAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n =
        send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

inline std::string ReadToEnd(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

// Sends `request` as is and returns all the server sends back.
inline std::string ExchangeRaw(int port, const std::string& request,
                               int family = AF_INET) {
  const int fd = Connect(family, port);
  if (fd < 0) return "<connect failed>";
  SendAll(fd, request);
  std::string out = ReadToEnd(fd);
  close(fd);
  return out;
}

inline std::string Request(const std::string& method, const std::string& target,
                           const std::string& extra_headers = "") {
  return method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n" +
         extra_headers + "\r\n";
}

inline Response Get(int port, const std::string& target,
                    const std::string& extra_headers = "",
                    int family = AF_INET) {
  return ParseResponse(
      ExchangeRaw(port, Request("GET", target, extra_headers), family));
}

inline bool HaveIpv6Loopback() {
  const int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  close(fd);
  return ok;
}

inline std::string Base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(in.data()),
                      static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// /metrics answers `metrics`, /healthz "ok".
inline std::vector<HttpRoute> TestRoutes(std::string metrics = "up 1\n") {
  std::vector<HttpRoute> routes;
  routes.push_back({"/metrics", false, [metrics](const HttpRequest&) {
                      HttpResponse r;
                      r.content_type =
                          "text/plain; version=0.0.4; charset=utf-8";
                      r.body = metrics;
                      return r;
                    }});
  routes.push_back({"/healthz", false, [](const HttpRequest&) {
                      HttpResponse r;
                      r.body = "ok\n";
                      return r;
                    }});
  return routes;
}

// A server that is started at once.
class Server : public HttpServer {
 public:
  explicit Server(const std::string& address,
                  std::vector<HttpRoute> routes = TestRoutes(),
                  const WebConfig& web = WebConfig(),
                  HttpLimits limits = HttpLimits())
      : HttpServer(address, web, limits) {
    Start(std::move(routes));
  }
};

// ---- Basic authentication ------------------------------------------------

inline WebConfig AuthConfig() {
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

inline std::string AuthHeader(const std::string& user,
                              const std::string& password) {
  return "Authorization: Basic " + Base64(user + ":" + password) + "\r\n";
}

// A self-signed CA certificate for localhost, 127.0.0.1 and ::1 with a
// fresh RSA key; `serial` tells certificates apart.
inline void MakeSelfSigned(long serial, EVP_PKEY** key_out, X509** cert_out) {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  EXPECT_NE(key, nullptr);
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
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
       {std::pair<int, const char*>{NID_basic_constraints, "critical,CA:TRUE"},
        {NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    EXPECT_NE(ext, nullptr);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  EXPECT_GT(X509_sign(cert, key, EVP_sha256()), 0);
  *key_out = key;
  *cert_out = cert;
}

inline void WritePem(const std::string& cert_file, const std::string& key_file,
                     X509* cert, EVP_PKEY* key) {
  FILE* f = std::fopen(cert_file.c_str(), "w");
  PEM_write_X509(f, cert);
  std::fclose(f);
  f = std::fopen(key_file.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

// A self-signed certificate for localhost, 127.0.0.1 and ::1, written once
// for all TLS tests.
class HttpServerTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char pattern[] = "/tmp/tcpstated-http-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
    MakeSelfSigned(1, &key, &cert);
    ASSERT_NE(cert, nullptr);
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
    long serial = 0;  // of the server's certificate
  };
  struct TlsClient {
    int min_version = 0;
    int max_version = 0;
    int family = AF_INET;
    std::string cipher_list;  // TLS 1.2 suites offered; empty: default
    std::string cert_file;    // client certificate, if any
    std::string key_file;
    std::string ca_file;  // trusted for the server; empty: our cert_file_
  };

  // Connects with TLS (verifying the server against our certificate),
  // sends `request`, reads to the end.
  static TlsResult TlsExchange(int port, const std::string& request,
                               int min_version = 0, int max_version = 0,
                               int family = AF_INET) {
    TlsClient client;
    client.min_version = min_version;
    client.max_version = max_version;
    client.family = family;
    return TlsExchangeWith(port, request, client);
  }

  static TlsResult TlsExchangeWith(int port, const std::string& request,
                                   const TlsClient& client) {
    const int min_version = client.min_version;
    const int max_version = client.max_version;
    const int family = client.family;
    TlsResult result;
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    // Level 0 so that the client offers old versions when asked to, and the
    // refusal is the server's.
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_min_proto_version(ctx, min_version);
    SSL_CTX_set_max_proto_version(ctx, max_version);
    SSL_CTX_load_verify_locations(
        ctx,
        client.ca_file.empty() ? cert_file_.c_str() : client.ca_file.c_str(),
        nullptr);
    if (!client.cipher_list.empty()) {
      SSL_CTX_set_cipher_list(ctx, client.cipher_list.c_str());
    }
    if (!client.cert_file.empty()) {
      SSL_CTX_use_certificate_file(ctx, client.cert_file.c_str(),
                                   SSL_FILETYPE_PEM);
      SSL_CTX_use_PrivateKey_file(ctx, client.key_file.c_str(),
                                  SSL_FILETYPE_PEM);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    const int fd = Connect(family, port);
    SSL* ssl = SSL_new(ctx);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
                                  family == AF_INET ? "127.0.0.1" : "::1");
    SSL_set_fd(ssl, fd);
    if (fd >= 0 && SSL_connect(ssl) == 1) {
      result.handshake_ok = true;
      result.protocol = SSL_get_version(ssl);
      if (X509* peer = SSL_get1_peer_certificate(ssl)) {
        result.serial = ASN1_INTEGER_get(X509_get_serialNumber(peer));
        X509_free(peer);
      }
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

  inline static std::string dir_;
  inline static std::string cert_file_;
  inline static std::string key_file_;
  inline static std::string other_key_file_;
  inline static std::string encrypted_key_file_;
};

}  // namespace tcpstated::http_test
