#include "tcpstated/listen_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "tcpstated/message_text.h"

namespace tcpstated {

ListenAddress ParseListenAddress(const std::string& address) {
  auto fail = [&](const std::string& why) {
    throw HttpError("listen address " + QuoteForMessage(address) + " " + why);
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) fail("is not of the form [host]:port");
  const std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535) {
    fail("has a bad port (want 0-65535)");
  }
  ListenAddress result;
  result.port = static_cast<uint16_t>(std::stoul(port));
  if (host.empty()) return result;
  if (host.front() == '[') {
    in6_addr unused{};
    if (host.size() < 3 || host.back() != ']' ||
        inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &unused) !=
            1) {
      fail("has a bad IPv6 address (want e.g. \"[::1]:9640\")");
    }
    result.family = ListenAddress::Family::kIpv6;
    result.host = host.substr(1, host.size() - 2);
    return result;
  }
  result.family = ListenAddress::Family::kIpv4;
  result.host = host == "localhost" ? "127.0.0.1" : host;
  if (host.find(':') != std::string::npos) {
    fail("needs brackets around an IPv6 address (e.g. \"[::1]:9640\")");
  }
  in_addr unused{};
  if (inet_pton(AF_INET, result.host.c_str(), &unused) != 1) {
    fail(
        "has a host that is not an IP address (want empty for all "
        "addresses, \"localhost\", an IPv4 address or a bracketed IPv6 "
        "address)");
  }
  return result;
}

}  // namespace tcpstated
