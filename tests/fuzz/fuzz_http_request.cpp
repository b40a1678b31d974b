// libFuzzer target: the HTTP request-head parser (tcpstated/http_request.h),
// which sees every byte a client sends before anything else does.
//
// The contract under test: ParseHttpRequest never reads out of bounds
// (ASan), throws nothing but std::bad_alloc, and its answers are
// consistent: a complete head fits the limit and parses the same when cut
// at head_bytes; a proper prefix of a complete head is incomplete, never
// bad (the server must not refuse a request because it arrived in pieces);
// the parsed fields hold only what the grammar allows.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tcpstated/http_request.h"

namespace {

using tcpstated::HttpParseResult;
using Status = HttpParseResult::Status;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_http_request: invariant violated: %s\n", what);
  std::abort();
}

bool IsToken(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f ||
        std::string_view("\"(),/:;<=>?@[\\]{}").find(c) !=
            std::string_view::npos) {
      return false;
    }
  }
  return true;
}

void CheckComplete(std::string_view data, const HttpParseResult& r,
                   size_t limit) {
  const tcpstated::HttpRequest& q = r.request;
  if (r.head_bytes == 0 || r.head_bytes > data.size()) {
    Fail("head_bytes outside the data");
  }
  if (r.head_bytes > limit) Fail("head longer than the limit");
  if (data.substr(0, r.head_bytes).find('\0') != std::string_view::npos) {
    Fail("NUL accepted");
  }
  if (data.substr(r.head_bytes - 4, 4) != "\r\n\r\n") {
    Fail("head does not end with CRLFCRLF");
  }
  if (!IsToken(q.method)) Fail("method is not a token");
  if (q.target.empty() || q.target[0] != '/') Fail("target without '/'");
  if (q.path.empty() || q.path[0] != '/') Fail("path without '/'");
  if (q.target.compare(0, q.path.size(), q.path) != 0) {
    Fail("path is not a prefix of the target");
  }
  if (q.path.find('?') != std::string::npos) Fail("query left in the path");
  if (q.minor_version < 0 || q.minor_version > 9) Fail("bad minor version");
  if (q.headers.size() > tcpstated::kMaxRequestHeaderFields) {
    Fail("too many header fields");
  }
  for (const auto& [name, value] : q.headers) {
    if (!IsToken(name)) Fail("header name is not a token");
    for (char c : value) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) Fail("control in a value");
    }
    if (!value.empty() && (value.front() == ' ' || value.back() == ' ' ||
                           value.front() == '\t' || value.back() == '\t')) {
      Fail("value not trimmed");
    }
    if (q.Header(name) == nullptr) Fail("Header() misses a field");
  }
  if (q.minor_version >= 1 && q.Header("host") == nullptr) {
    Fail("HTTP/1.1 without Host accepted");
  }

  // Cut at head_bytes: the same request.
  const HttpParseResult cut =
      tcpstated::ParseHttpRequest(data.substr(0, r.head_bytes), limit);
  if (cut.status != Status::kComplete || cut.head_bytes != r.head_bytes ||
      cut.request.method != q.method || cut.request.target != q.target ||
      cut.request.headers != q.headers) {
    Fail("result changes when cut at head_bytes");
  }
  // Any proper prefix: incomplete. Checking a few keeps this linear.
  for (size_t n : {size_t{0}, r.head_bytes / 3, r.head_bytes / 2,
                   r.head_bytes - 2, r.head_bytes - 1}) {
    const HttpParseResult prefix =
        tcpstated::ParseHttpRequest(data.substr(0, n), limit);
    if (prefix.status != Status::kIncomplete) {
      Fail("a prefix of a complete head is not incomplete");
    }
  }
}

void FuzzOne(std::string_view data, size_t limit) {
  const HttpParseResult r = tcpstated::ParseHttpRequest(data, limit);
  switch (r.status) {
    case Status::kComplete:
      CheckComplete(data, r, limit);
      break;
    case Status::kIncomplete:
      // The server reads more only while the limit is not reached.
      if (data.size() >= limit) Fail("incomplete at the limit");
      if (!r.request.method.empty() || !r.request.headers.empty()) {
        Fail("incomplete result carries a request");
      }
      break;
    case Status::kBad:
      if (r.error.empty()) Fail("bad without a reason");
      if (r.error.find('\n') != std::string::npos) Fail("multi-line reason");
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  FuzzOne(text, tcpstated::kMaxRequestHeadBytes);
  // A small limit too, so that inputs reach it often.
  FuzzOne(text, 64);
  return 0;
}
