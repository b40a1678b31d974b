#include "tcpstated/listen_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tcpstated/http_error.h"

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

}  // namespace tcpstated
