// A strict parser for the head of an HTTP/1.x request (RFC 9112): the
// request line and the header fields up to the empty line. It is pure (no
// I/O, no globals) so that it can be unit-tested and fuzzed on its own; the
// server calls it again each time more bytes arrive.
//
// Only what a metrics endpoint needs is accepted: origin-form targets
// ("/path?query"), HTTP/1.0 and HTTP/1.1, CRLF line ends. Everything else is
// a bad request, decided as early as the bytes allow, so that a client
// speaking another protocol (a TLS ClientHello, binary junk) is refused at
// once instead of when the read deadline expires.
//
// Thread-safety: the functions are reentrant; an HttpRequest is a value.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tcpstated {

// Largest request head accepted, final CRLFCRLF included. Scrapers send a
// few hundred bytes; the limit bounds the memory a client can make us hold.
inline constexpr size_t kMaxRequestHeadBytes = 8192;
// More header fields than this is a bad request, even within the size.
inline constexpr size_t kMaxRequestHeaderFields = 100;

struct HttpRequest {
  std::string method;     // case-sensitive token, e.g. "GET"
  std::string target;     // as sent, e.g. "/metrics?x=1"
  std::string path;       // target without the query string, e.g. "/metrics"
  int minor_version = 0;  // HTTP/1.<minor_version>
  // In arrival order; names as sent, values without surrounding spaces.
  std::vector<std::pair<std::string, std::string>> headers;

  // The value of the header field `name` (compared case-insensitively), or
  // nullptr if absent. The parser refuses repeated Host and Authorization
  // fields, so for those the answer is unambiguous.
  const std::string* Header(std::string_view name) const;
};

struct HttpParseResult {
  enum class Status {
    kIncomplete,  // valid so far: read more bytes and parse again
    kComplete,    // `request` and `head_bytes` are set
    kBad,         // answer 400; `error` says why (for debug logs)
  };
  Status status = Status::kIncomplete;
  HttpRequest request;
  size_t head_bytes = 0;  // through the empty line; body bytes may follow
  std::string error;
};

// Parses the request head at the start of `data` (which may hold more
// than the head, or less). A head longer than `max_head_bytes` is bad.
HttpParseResult ParseHttpRequest(std::string_view data,
                                 size_t max_head_bytes = kMaxRequestHeadBytes);

}  // namespace tcpstated
