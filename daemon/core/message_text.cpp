#include "tcpstated/message_text.h"

namespace tcpstated {

std::string QuoteForMessage(std::string_view text, size_t max_len) {
  return "\"" + EscapeForMessage(text, max_len) + "\"";
}

std::string EscapeForMessage(std::string_view text, size_t max_len) {
  std::string out;
  const bool truncated = text.size() > max_len;
  if (truncated) text = text.substr(0, max_len);
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\x";
          out += kHex[u >> 4];
          out += kHex[u & 0xf];
        } else {
          out += c;
        }
    }
  }
  if (truncated) out += "...";
  return out;
}

std::string OneLine(std::string_view text) {
  std::string out;
  bool pending_space = false;
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

}  // namespace tcpstated
