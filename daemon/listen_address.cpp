#include "tcpstated/listen_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tcpstated {
namespace {

int OpenListener(const sockaddr* address, socklen_t length, bool dual_stack,
                 int* error) {
  const int fd =
      socket(address->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = errno;
    return -1;
  }
  // A restarted daemon must not have to wait for the previous one's
  // TIME_WAIT connections to expire.
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (dual_stack) {
    // Explicitly, not from net.ipv6.bindv6only: IPv4 clients must reach
    // us through the same socket.
    const int zero = 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  }
  if (bind(fd, address, length) != 0 || listen(fd, SOMAXCONN) != 0) {
    *error = errno;
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

int ListenOn(const ListenAddress& address, const std::string& text) {
  int error = 0;
  int fd = -1;
  if (address.family != ListenAddress::Family::kIpv4) {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(address.port);
    in6.sin6_addr = in6addr_any;
    if (address.family == ListenAddress::Family::kIpv6) {
      inet_pton(AF_INET6, address.host.c_str(), &in6.sin6_addr);
    }
    fd = OpenListener(reinterpret_cast<const sockaddr*>(&in6), sizeof(in6),
                      address.family == ListenAddress::Family::kAny, &error);
  }
  // All addresses on a host without IPv6 (disabled at boot, or no usable
  // address): IPv4 only.
  if (address.family == ListenAddress::Family::kIpv4 ||
      (address.family == ListenAddress::Family::kAny && fd < 0 &&
       (error == EAFNOSUPPORT || error == EADDRNOTAVAIL))) {
    sockaddr_in in4{};
    in4.sin_family = AF_INET;
    in4.sin_port = htons(address.port);
    in4.sin_addr.s_addr = htonl(INADDR_ANY);
    if (address.family == ListenAddress::Family::kIpv4) {
      inet_pton(AF_INET, address.host.c_str(), &in4.sin_addr);
    }
    fd = OpenListener(reinterpret_cast<const sockaddr*>(&in4), sizeof(in4),
                      false, &error);
  }
  if (fd >= 0) return fd;
  std::string hint;
  if (error == EADDRINUSE) {
    hint = " (is another process using the port? set --web.listen-address)";
  } else if (error == EACCES) {
    hint =
        " (ports below 1024 need CAP_NET_BIND_SERVICE; set "
        "--web.listen-address)";
  } else if (error == EADDRNOTAVAIL) {
    hint = " (no local interface has this address; set --web.listen-address)";
  }
  throw HttpError("cannot listen on " + text + ": " + std::strerror(error) +
                  hint);
}

ListenAddress ParseListenAddress(const std::string& address) {
  auto fail = [&](const std::string& why) {
    throw HttpError("listen address \"" + address + "\" " + why);
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
