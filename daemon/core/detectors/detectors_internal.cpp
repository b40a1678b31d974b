#include "daemon/core/detectors/detectors_internal.h"

#include <cstdio>
#include <limits>
#include <utility>

namespace tcpstated::detectors_internal {

uint64_t SatAdd(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b
             ? std::numeric_limits<uint64_t>::max()
             : a + b;
}

size_t SatMul(size_t a, size_t b) {
  if (a != 0 && b > std::numeric_limits<size_t>::max() / a) {
    return std::numeric_limits<size_t>::max();
  }
  return a * b;
}

bool ReachesRatio(uint64_t value, uint64_t limit, double ratio) {
  if (value == 0 || limit == 0) return false;
  return D(value) / D(limit) >= ratio;
}

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

std::string Short(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

std::string Percent(uint64_t value, uint64_t limit) {
  return limit == 0 ? "-" : Fixed(100.0 * D(value) / D(limit), 0) + "%";
}

std::string LabelValue(std::string_view in) {
  std::string out;
  out.reserve(std::min(in.size(), kMaxLabelBytes));
  size_t i = 0;
  while (i < in.size()) {
    auto byte = [&in](size_t k) { return static_cast<unsigned char>(in[k]); };
    unsigned char c = byte(i);
    size_t len = c < 0x80             ? 1
                 : (c & 0xE0) == 0xC0 ? 2
                 : (c & 0xF0) == 0xE0 ? 3
                 : (c & 0xF8) == 0xF0 ? 4
                                      : 0;
    bool ok = len > 0 && len <= in.size() - i;
    for (size_t k = 1; ok && k < len; ++k) ok = (byte(i + k) & 0xC0) == 0x80;
    if (ok && len == 1) ok = c >= 0x20 && c != 0x7F;
    if (ok && len == 2) ok = c >= 0xC2;  // no overlong forms
    if (ok && len == 3) {
      unsigned char c1 = byte(i + 1);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
    }
    if (ok && len == 4) {
      unsigned char c1 = byte(i + 1);
      ok = c <= 0xF4 && !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    size_t take = ok ? len : 1;
    if (out.size() + take > kMaxLabelBytes) break;
    if (ok) {
      out.append(in.substr(i, len));
    } else {
      out.push_back('?');
    }
    i += take;
  }
  return out;
}

Series MakeSeries(std::map<std::string, std::string> labels, double value) {
  Series s;
  s.labels = std::move(labels);
  s.value = value;
  return s;
}

std::string NetnsText(uint32_t netns, const NamespaceMap& namespaces) {
  std::string out = "netns=" + std::to_string(netns);
  auto it = namespaces.find(netns);
  if (it != namespaces.end() && !it->second->name.empty()) {
    out += " (" + LabelValue(it->second->name) + ")";
  }
  return out;
}

std::string Endpoint(const Address& address, bool ipv6, uint16_t port) {
  std::string a = FormatAddress(address, ipv6);
  return (ipv6 ? "[" + a + "]" : a) + ":" + std::to_string(port);
}

}  // namespace tcpstated::detectors_internal
