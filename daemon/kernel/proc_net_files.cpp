#include "tcpstated/proc_net_files.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <string>
#include <system_error>

#include "tcpstated/scoped_fd.h"

namespace tcpstated {
namespace {

int OpenForReading(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    throw std::system_error(errno, std::system_category(), "open " + path);
  }
  return fd;
}

[[noreturn]] void ThrowRead(int error, const std::string& path) {
  throw std::system_error(error, std::system_category(), "read " + path);
}

// A sysctl handler prints the whole value into the buffer of the first
// read() and returns EOF for any later offset (proc_dointvec and
// proc_do_large_bitmap both check *ppos), so reading in chunks would
// truncate silently. Instead: pread() at offset 0, and if the buffer came
// back full, again from 0 with a larger one. Starting small matters: the
// kernel allocates (and zeroes) as many bytes as asked for.
std::string ReadSysctl(const std::string& path) {
  // Every other port reserved, the longest possible list, prints ~190 KB.
  constexpr size_t kLimit = 1024 * 1024;
  ScopedFd fd(OpenForReading(path));
  std::string text(512, '\0');
  for (;;) {
    ssize_t n = pread(fd.get(), text.data(), text.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowRead(errno, path);
    }
    if (static_cast<size_t>(n) < text.size()) {
      text.resize(static_cast<size_t>(n));
      return text;
    }
    if (text.size() >= kLimit) ThrowRead(EFBIG, path);
    text.resize(text.size() * 4);
  }
}

// A seq_file (/proc/.../net/netstat) may return short reads before the
// end: read until EOF. `missing_ok`: a file that does not exist reads as
// empty (sockstat6 on a kernel without IPv6).
std::string ReadSeqFile(const std::string& path, bool missing_ok = false) {
  constexpr size_t kLimit = 16 * 1024 * 1024;
  if (missing_ok && access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
    return std::string();
  }
  ScopedFd fd(OpenForReading(path));
  std::string text;
  char buffer[16384];
  for (;;) {
    ssize_t n = read(fd.get(), buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowRead(errno, path);
    }
    if (n == 0) return text;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kLimit) ThrowRead(EFBIG, path);
  }
}

}  // namespace

TcpSettings ReadTcpSettings() {
  // /proc/sys/net resolves through the reading thread's namespace, so this
  // works on a RunInNetns helper thread.
  static constexpr const char* kIpv4Files[] = {
      "ip_local_port_range", "ip_local_reserved_ports", "tcp_max_tw_buckets",
      "tcp_tw_reuse",        "tcp_fin_timeout",         "tcp_max_syn_backlog",
      "tcp_syncookies",
  };
  std::map<std::string, std::string> files;
  for (const char* file : kIpv4Files) {
    files[file] = ReadSysctl(std::string("/proc/sys/net/ipv4/") + file);
  }
  files["somaxconn"] = ReadSysctl("/proc/sys/net/core/somaxconn");
  return ParseTcpSettings(files);
}

TcpExtCounters ReadNetstat() {
  // thread-self: /proc/net and /proc/self/net show the thread-group leader's
  // namespace, not that of a thread that setns()ed (checked on 6.18).
  return ParseNetstat(ReadSeqFile("/proc/thread-self/net/netstat"));
}

SocketTotals ReadSockstat() {
  return ParseSockstat(
      ReadSeqFile("/proc/thread-self/net/sockstat"),
      ReadSeqFile("/proc/thread-self/net/sockstat6", /*missing_ok=*/true));
}

}  // namespace tcpstated
