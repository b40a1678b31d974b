#include "tcpstated/tls_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>

namespace tcpstated {
namespace {

// Forward secrecy (ECDHE) and authenticated encryption (GCM, ChaCha20-
// Poly1305) only: what Mozilla's "intermediate" profile offers for TLS 1.2.
// Every TLS 1.3 suite already has both.
constexpr char kDefaultTls12Suites[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

struct OpenSslError {
  unsigned long code = 0;
  std::string reason = "unknown error";
};

// The most recent OpenSSL error on this thread; clears the thread's queue.
OpenSslError LastOpenSslError() {
  OpenSslError error;
  error.code = ERR_peek_last_error();
  const char* reason =
      error.code != 0 ? ERR_reason_error_string(error.code) : nullptr;
  if (reason != nullptr) error.reason = reason;
  ERR_clear_error();
  return error;
}

void UseCertificateAndKey(SSL_CTX* ctx, const WebConfig& web) {
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

void ConfigureClientCertificates(SSL_CTX* ctx, const WebConfig& web) {
  using ClientAuth = WebConfig::ClientAuth;
  if (!web.client_ca_file.empty()) {
    ERR_clear_error();
    STACK_OF(X509_NAME)* names =
        SSL_load_client_CA_file(web.client_ca_file.c_str());
    if (names == nullptr ||
        SSL_CTX_load_verify_locations(ctx, web.client_ca_file.c_str(),
                                      nullptr) != 1) {
      if (names != nullptr) sk_X509_NAME_pop_free(names, X509_NAME_free);
      throw HttpError("cannot use client CA file \"" + web.client_ca_file +
                      "\": " + LastOpenSslError().reason);
    }
    SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
  }
  // Go's "any" types ask for a certificate but accept whatever comes.
  auto accept_any = [](int, X509_STORE_CTX*) -> int { return 1; };
  switch (web.client_auth) {
    case ClientAuth::kNone:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
      break;
    case ClientAuth::kRequest:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any);
      break;
    case ClientAuth::kRequireAny:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                         accept_any);
      break;
    case ClientAuth::kVerifyIfGiven:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
      break;
    case ClientAuth::kRequireAndVerify:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                         nullptr);
      break;
  }
  // One context serves every connection; the id only scopes session
  // resumption, which OpenSSL refuses with client certificates without it.
  static const unsigned char kSessionId[] = "tcpstated";
  SSL_CTX_set_session_id_context(ctx, kSessionId, sizeof(kSessionId) - 1);
}

}  // namespace

TlsContext MakeTlsContext(const WebConfig& web) {
  if (!web.tls) return nullptr;
  TlsContext ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (ctx == nullptr) {
    throw HttpError("cannot set up TLS: " + LastOpenSslError().reason);
  }
  SSL_CTX* raw = ctx.get();
  SSL_CTX_set_min_proto_version(
      raw, web.tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
  // Client-initiated renegotiation only costs us CPU; compression leaks
  // secrets (CRIME). Partial writes let the event loop send a large body
  // as the socket takes it.
  SSL_CTX_set_options(raw, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(
      raw, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  std::string suites;
  for (const std::string& suite : web.cipher_suites) {
    suites += (suites.empty() ? "" : ":") + suite;
  }
  ERR_clear_error();
  if (SSL_CTX_set_cipher_list(
          raw, suites.empty() ? kDefaultTls12Suites : suites.c_str()) != 1) {
    throw HttpError("cannot use tls_server_config.cipher_suites: " +
                    LastOpenSslError().reason);
  }
  UseCertificateAndKey(raw, web);
  ConfigureClientCertificates(raw, web);
  return ctx;
}

}  // namespace tcpstated
