// Untrusted text made safe for a one-line error or log message: a pasted
// blob, a file name with a newline or a library's multi-line message must
// neither break the one-line contract nor flood the log.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tcpstated {

// `text` with quotes, backslashes and control bytes escaped (\n, \x01, ...),
// cut at `max_len` bytes ("..." marks the cut).
std::string EscapeForMessage(std::string_view text, size_t max_len = 100);
// The same in double quotes.
std::string QuoteForMessage(std::string_view text, size_t max_len = 100);

// Collapses line breaks and runs of blanks: a library message on one line.
std::string OneLine(std::string_view text);

}  // namespace tcpstated
