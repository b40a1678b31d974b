#include "tcpstated/http_request.h"

#include <algorithm>
#include <string>

namespace tcpstated {
namespace {

using Status = HttpParseResult::Status;
constexpr std::string_view::size_type kNpos = std::string_view::npos;

// RFC 9110 tchar: what a method or a field name may consist of.
bool IsTchar(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  if (c >= '0' && c <= '9') return true;
  if (c >= 'a' && c <= 'z') return true;
  if (c >= 'A' && c <= 'Z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(ch) != kNpos;
}

// Printable ASCII without space: an origin-form target never needs more
// (anything else arrives percent-encoded). '#' starts a fragment, which a
// client must not send.
bool IsTargetChar(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  return c > 0x20 && c < 0x7f && c != '#';
}

// RFC 9110 field-vchar, SP and HTAB; obs-text (0x80-0xff) is tolerated
// because it is opaque to us. Other control characters are not.
bool IsFieldValueChar(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

bool AllOf(std::string_view s, bool (*is)(char)) {
  return std::all_of(s.begin(), s.end(), is);
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

HttpParseResult Bad(std::string error) {
  HttpParseResult result;
  result.status = Status::kBad;
  result.error = std::move(error);
  return result;
}

// "METHOD SP target SP HTTP/1.x", single spaces. Returns an error message,
// empty on success.
std::string ParseRequestLine(std::string_view line, HttpRequest* request) {
  const size_t sp1 = line.find(' ');
  if (sp1 == kNpos) return "request line without a target";
  const std::string_view method = line.substr(0, sp1);
  if (method.empty()) return "request line without a method";
  if (!AllOf(method, IsTchar)) return "bad character in the method";
  const std::string_view rest = line.substr(sp1 + 1);
  const size_t sp2 = rest.find(' ');
  if (sp2 == kNpos) return "request line without an HTTP version";
  const std::string_view target = rest.substr(0, sp2);
  const std::string_view version = rest.substr(sp2 + 1);
  // Only origin-form: absolute-form is for proxies, asterisk-form for
  // OPTIONS, authority-form for CONNECT; none of them is for us.
  if (target.empty() || target.front() != '/') {
    return "request target does not start with '/'";
  }
  if (!AllOf(target, IsTargetChar)) {
    return "bad character in the request target";
  }
  static constexpr std::string_view kVersionPrefix = "HTTP/1.";
  if (version.size() != kVersionPrefix.size() + 1 ||
      version.substr(0, kVersionPrefix.size()) != kVersionPrefix ||
      version.back() < '0' || version.back() > '9') {
    return "not an HTTP/1.x request line";
  }
  request->method = std::string(method);
  request->target = std::string(target);
  request->path = std::string(target.substr(0, target.find('?')));
  request->minor_version = version.back() - '0';
  return "";
}

// Checks the start of a request line whose end has not arrived yet.
// Another protocol (a TLS ClientHello starts with 0x16) shows within a few
// bytes; there is no point in waiting for a line end that never comes.
std::string CheckRequestLinePrefix(std::string_view partial) {
  if (!partial.empty() && partial.back() == '\r') partial.remove_suffix(1);
  const size_t sp1 = partial.find(' ');
  if (!AllOf(partial.substr(0, sp1), IsTchar)) {
    return "request line does not start with a method";
  }
  if (sp1 == kNpos) return "";
  const std::string_view rest = partial.substr(sp1 + 1);
  const size_t sp2 = rest.find(' ');
  const std::string_view target = rest.substr(0, sp2);
  if (!target.empty() && target.front() != '/') {
    return "request target does not start with '/'";
  }
  if (!AllOf(target, IsTargetChar)) {
    return "bad character in the request target";
  }
  if (sp2 == kNpos) return "";
  if (target.empty()) return "request target does not start with '/'";
  const std::string_view version = rest.substr(sp2 + 1);
  static constexpr std::string_view kVersionPrefix = "HTTP/1.";
  const size_t n = std::min(version.size(), kVersionPrefix.size());
  if (version.size() > kVersionPrefix.size() + 1 ||
      version.substr(0, n) != kVersionPrefix.substr(0, n) ||
      (version.size() > kVersionPrefix.size() &&
       (version.back() < '0' || version.back() > '9'))) {
    return "not an HTTP/1.x request line";
  }
  return "";
}

// Refuses the start of a line whose end has not arrived yet when it can no
// longer become valid: a stray CR, a bad request line, a head over the
// limit (`data_size` bytes have arrived). Returns the error, empty if more
// bytes may still make it valid.
std::string CheckIncompleteLine(std::string_view partial,
                                bool have_request_line, size_t data_size,
                                size_t max_head_bytes) {
  const size_t cr = partial.find('\r');
  if (cr != kNpos && cr + 1 < partial.size()) return "CR not followed by LF";
  if (!have_request_line) {
    std::string error = CheckRequestLinePrefix(partial);
    if (!error.empty()) return error;
  }
  if (data_size >= max_head_bytes) {
    return "request head longer than " + std::to_string(max_head_bytes) +
           " bytes";
  }
  return "";
}

// One "name: value" line of the head, appended to request->headers.
// Returns an error message, empty on success.
std::string ParseHeaderField(std::string_view line, HttpRequest* request) {
  if (line.front() == ' ' || line.front() == '\t') {
    return "obsolete line folding in a header field";
  }
  if (request->headers.size() >= kMaxRequestHeaderFields) {
    return "more than " + std::to_string(kMaxRequestHeaderFields) +
           " header fields";
  }
  const size_t colon = line.find(':');
  if (colon == kNpos) return "header line without ':'";
  // No whitespace is allowed before the colon (RFC 9112 5.1): the field
  // name must be a token right up to it.
  const std::string_view name = line.substr(0, colon);
  if (name.empty()) return "empty header field name";
  if (!AllOf(name, IsTchar)) return "bad character in a header field name";
  const std::string_view value = TrimSpaces(line.substr(colon + 1));
  if (!AllOf(value, IsFieldValueChar)) {
    return "control character in a header field value";
  }
  // Two of these would leave the choice to us, and a front end might
  // have chosen the other one.
  for (std::string_view single : {"Host", "Authorization"}) {
    if (EqualsIgnoreCase(name, single) && request->Header(single) != nullptr) {
      return "repeated " + std::string(single) + " header field";
    }
  }
  request->headers.emplace_back(std::string(name), std::string(value));
  return "";
}

}  // namespace

const std::string* HttpRequest::Header(std::string_view name) const {
  for (const auto& [field, value] : headers) {
    if (EqualsIgnoreCase(field, name)) return &value;
  }
  return nullptr;
}

HttpParseResult ParseHttpRequest(std::string_view data, size_t max_head_bytes) {
  // Bytes beyond the limit can never belong to an acceptable head.
  const std::string_view view = data.substr(0, max_head_bytes);
  // NUL never belongs in a head; refusing it up front also means that no
  // parsed field holds one, so c_str() of a field is the whole field.
  if (view.find('\0') != kNpos) return Bad("NUL byte in the request head");

  HttpParseResult result;
  HttpRequest& request = result.request;
  bool have_request_line = false;
  size_t pos = 0;  // start of the current line
  for (;;) {
    const size_t lf = view.find('\n', pos);
    if (lf == kNpos) {
      std::string error = CheckIncompleteLine(
          view.substr(pos), have_request_line, data.size(), max_head_bytes);
      if (!error.empty()) return Bad(std::move(error));
      return HttpParseResult();  // kIncomplete, nothing half-filled
    }
    // Bare LF line ends are refused: different parsers disagreeing on them
    // is how request smuggling starts, and every real client sends CRLF.
    if (lf == pos || view[lf - 1] != '\r') {
      return Bad("line not terminated by CRLF");
    }
    const std::string_view line = view.substr(pos, lf - 1 - pos);
    pos = lf + 1;
    if (line.find('\r') != kNpos) return Bad("CR not followed by LF");
    if (have_request_line && line.empty()) break;  // end of the head
    std::string error = have_request_line ? ParseHeaderField(line, &request)
                                          : ParseRequestLine(line, &request);
    if (!error.empty()) return Bad(std::move(error));
    have_request_line = true;
  }
  if (request.minor_version >= 1 && request.Header("Host") == nullptr) {
    return Bad("HTTP/1.1 request without a Host header field");
  }
  result.status = Status::kComplete;
  result.head_bytes = pos;
  return result;
}

}  // namespace tcpstated
