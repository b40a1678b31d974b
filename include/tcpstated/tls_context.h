// The server side of TLS for the endpoint, built from a WebConfig: the
// certificate and key, protocol versions, cipher suites and client
// certificates (mTLS).
//
// Thread-safety: the returned context is immutable once built and may be
// shared by connections on any thread (OpenSSL reference-counts it).
#pragma once

#include <memory>

#include "tcpstated/http_error.h"
#include "tcpstated/web_config.h"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace tcpstated {

using TlsContext = std::shared_ptr<ssl_ctx_st>;

// Reads the certificate, key and client CA files now. Throws HttpError
// naming the file at fault (unreadable, not PEM, key not matching the
// certificate, encrypted key). Null when `web.tls` is false.
TlsContext MakeTlsContext(const WebConfig& web);

}  // namespace tcpstated
