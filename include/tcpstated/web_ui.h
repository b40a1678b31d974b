// The live page at / : the TCP state diagram, the active detections and
// tcpstated's health, refreshed every second from /api/v1/state.
//
// The page's HTML, CSS and script live in web/ and are compiled into the
// binary (cmake/EmbedFiles.cmake), so the daemon serves everything itself
// and the Content-Security-Policy can forbid every other origin: these
// hosts are often offline, and the page must not become a way to load
// someone else's script next to the metrics.
//
// Thread-safety: ServeWebUi is reentrant; `state_json` is called on the
// caller's thread.
#pragma once

#include <functional>
#include <string>

namespace tcpstated {

inline constexpr char kStateApiPath[] = "/api/v1/state";

// Same origin only: no inline script or style, no frames, no forms.
inline constexpr char kWebUiSecurityHeaders[] =
    "Content-Security-Policy: default-src 'none'; script-src 'self'; "
    "style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "X-Frame-Options: DENY\r\n";

struct WebUiResponse {
  std::string content_type;
  std::string body;
  std::string headers;  // whole lines, each ending in CRLF
};

// For "/", the page's assets and kStateApiPath (whose body comes from
// `state_json`): fills `out` and returns true. False for any other path.
bool ServeWebUi(const std::string& path,
                const std::function<std::string()>& state_json,
                WebUiResponse* out);

}  // namespace tcpstated
