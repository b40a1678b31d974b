// The state file's text format (state_file.h): written by the daemon,
// read back at start-up from a disk anything may have happened to, so the
// parser trusts nothing and stops at the first problem.
#include "tcpstated/state_file.h"

#include <algorithm>
#include <charconv>
#include <optional>

namespace tcpstated {
namespace {

constexpr std::string_view kMagic = "tcpstated-state";
constexpr char kHex[] = "0123456789abcdef";

void AppendHex(std::string* out, const Address& a) {
  for (uint8_t b : a) {
    out->push_back(kHex[b >> 4]);
    out->push_back(kHex[b & 0xf]);
  }
}

bool ValidBootId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

// Splits a line into at most `max` space-separated words; false if it has
// more, or empty words (two spaces in a row).
bool Split(std::string_view line, std::vector<std::string_view>* words,
           size_t max) {
  words->clear();
  size_t start = 0;
  while (start <= line.size()) {
    size_t end = line.find(' ', start);
    if (end == std::string_view::npos) end = line.size();
    if (end == start || words->size() == max) return false;
    words->push_back(line.substr(start, end - start));
    start = end + 1;
  }
  return true;
}

template <typename T>
bool Number(std::string_view word, T* out) {
  if (word.empty() || word.size() > 20) return false;
  T v{};
  auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), v);
  if (ec != std::errc() || end != word.data() + word.size()) return false;
  *out = v;
  return true;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool HexAddress(std::string_view word, Address* out) {
  if (word.size() != out->size() * 2) return false;
  for (size_t i = 0; i < out->size(); ++i) {
    int hi = HexDigit(word[2 * i]);
    int lo = HexDigit(word[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

bool ParseSocket(const std::vector<std::string_view>& w, SavedSocket* s) {
  // s netns netns_cookie cookie state family saddr sport daddr dport
  //   entered exact|lower
  if (w.size() != 12 || w[0] != "s") return false;
  unsigned state = 0;
  if (!Number(w[1], &s->netns) || !Number(w[2], &s->netns_cookie) ||
      !Number(w[3], &s->cookie) || !Number(w[4], &state) ||
      !HexAddress(w[6], &s->saddr) || !Number(w[7], &s->sport) ||
      !HexAddress(w[8], &s->daddr) || !Number(w[9], &s->dport) ||
      !Number(w[10], &s->entered_ns)) {
    return false;
  }
  std::optional<TcpState> st = StateFromNumber(state);
  if (!st) return false;
  s->state = *st;
  if (w[5] != "4" && w[5] != "6") return false;
  s->ipv6 = w[5] == "6";
  if (w[11] != "exact" && w[11] != "lower") return false;
  s->lower_bound = w[11] == "lower";
  return true;
}

}  // namespace

std::string FormatStateFile(const StateFile& file) {
  const size_t n = std::min(file.sockets.size(), kMaxStateEntries);
  std::string out;
  out.reserve(64 + n * 128);
  out += std::string(kMagic) + " " + std::to_string(kStateFileVersion) + "\n";
  out +=
      "boot " + (ValidBootId(file.boot_id) ? file.boot_id : "unknown") + "\n";
  out += "written " + std::to_string(file.written_ns) + "\n";
  out += "entries " + std::to_string(n) + "\n";
  // Up to 100,000 records every save: appended in place, no temporaries.
  auto number = [&out](uint64_t v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    (void)ec;  // 24 bytes hold any uint64_t
    out.append(buf, end);
    out.push_back(' ');
  };
  for (size_t i = 0; i < n; ++i) {
    const SavedSocket& s = file.sockets[i];
    out += "s ";
    number(s.netns);
    number(s.netns_cookie);
    number(s.cookie);
    number(static_cast<unsigned>(s.state));
    out += s.ipv6 ? "6 " : "4 ";
    AppendHex(&out, s.saddr);
    out.push_back(' ');
    number(s.sport);
    AppendHex(&out, s.daddr);
    out.push_back(' ');
    number(s.dport);
    number(s.entered_ns);
    out += s.lower_bound ? "lower\n" : "exact\n";
  }
  out += "end\n";
  return out;
}

bool ParseStateFile(std::string_view text, StateFile* out, std::string* error) {
  auto fail = [error](std::string why) {
    *error = std::move(why);
    return false;
  };
  if (text.size() > kMaxStateFileBytes) {
    return fail("larger than " + std::to_string(kMaxStateFileBytes) + " bytes");
  }
  StateFile file;
  std::vector<std::string_view> words;
  size_t expected = 0;
  size_t line_no = 0;
  bool ended = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) {
      return fail("truncated: line " + std::to_string(line_no + 1) +
                  " has no end of line");
    }
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    auto where = [line_no] { return "line " + std::to_string(line_no); };
    if (ended) return fail(where() + ": text after \"end\"");
    if (line.size() > kMaxStateLineBytes || !Split(line, &words, 12)) {
      return fail(where() + ": not a record");
    }
    if (line_no == 1) {
      int version = 0;
      if (words.size() != 2 || words[0] != kMagic) {
        return fail("not a tcpstated state file");
      }
      if (!Number(words[1], &version) || version != kStateFileVersion) {
        return fail("version " + std::string(words[1]) + ", expected " +
                    std::to_string(kStateFileVersion));
      }
    } else if (line_no == 2) {
      if (words.size() != 2 || words[0] != "boot") {
        return fail(where() + ": expected \"boot <id>\"");
      }
      file.boot_id = std::string(words[1]);
    } else if (line_no == 3) {
      if (words.size() != 2 || words[0] != "written" ||
          !Number(words[1], &file.written_ns)) {
        return fail(where() + ": expected \"written <ns>\"");
      }
    } else if (line_no == 4) {
      if (words.size() != 2 || words[0] != "entries" ||
          !Number(words[1], &expected)) {
        return fail(where() + ": expected \"entries <n>\"");
      }
      if (expected > kMaxStateEntries) {
        return fail(where() + ": " + std::to_string(expected) +
                    " entries, more than " + std::to_string(kMaxStateEntries));
      }
      file.sockets.reserve(expected);
    } else if (words.size() == 1 && words[0] == "end") {
      ended = true;
    } else {
      SavedSocket s;
      if (file.sockets.size() == expected || !ParseSocket(words, &s)) {
        return fail(where() + ": not a socket record");
      }
      file.sockets.push_back(s);
    }
  }
  if (!ended) return fail("truncated: no \"end\" line");
  if (file.sockets.size() != expected) {
    return fail("truncated: " + std::to_string(file.sockets.size()) + " of " +
                std::to_string(expected) + " entries");
  }
  *out = std::move(file);
  return true;
}

}  // namespace tcpstated
