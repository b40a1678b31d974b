#include "tcpstated/config_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "tcpstated/scoped_fd.h"
#include "tcpstated/yaml_fields.h"

namespace tcpstated {
namespace {

// A configuration file is a few hundred bytes; the cap only keeps a path
// such as /dev/zero from eating memory forever.
constexpr size_t kMaxConfigFileBytes = size_t{16} << 20;

// strerror() is not thread-safe; the overloads absorb the difference
// between the GNU and XSI strerror_r.
[[maybe_unused]] std::string StrerrorResult(const char* result,
                                            const char* /*buf*/) {
  return result;
}
[[maybe_unused]] std::string StrerrorResult(int result, const char* buf) {
  return result == 0 ? std::string(buf) : std::string("Unknown error");
}
std::string ErrnoMessage(int err) {
  char buf[256] = {};
  return StrerrorResult(strerror_r(err, buf, sizeof(buf)), buf);
}

// `what` names the file in the message ("config file", "web config file").
[[noreturn]] void FailFile(const std::string& what, const std::string& path,
                           const std::string& problem) {
  throw ConfigError(what + " " + QuoteForMessage(path, 4096) + ": " + problem);
}

std::string ReadConfigText(const std::string& what, const std::string& path) {
  // open() would silently stop at an embedded NUL and read another file.
  if (path.find('\0') != std::string::npos) {
    FailFile(what, path, ErrnoMessage(EINVAL));
  }
  ScopedFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) FailFile(what, path, ErrnoMessage(errno));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) FailFile(what, path, ErrnoMessage(errno));
  if (S_ISDIR(st.st_mode)) FailFile(what, path, ErrnoMessage(EISDIR));
  std::string text;
  char buf[8192];
  while (true) {
    const ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      FailFile(what, path, ErrnoMessage(errno));
    }
    if (n == 0) return text;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxConfigFileBytes) {
      FailFile(
          what, path,
          "larger than " + std::to_string(kMaxConfigFileBytes >> 20) + " MiB");
    }
  }
}

void RequireReadable(const std::string& path, const std::string& key) {
  if (access(path.c_str(), R_OK) != 0) {
    throw ConfigError("web config: " + key + ": cannot read " +
                      QuoteForMessage(path, 4096) + ": " + ErrnoMessage(errno));
  }
}

}  // namespace

Config LoadConfigFile(const std::string& path) {
  return ParseConfigYaml(ReadConfigText("config file", path));
}

WebConfig LoadWebConfig(const std::string& path) {
  const std::string text = ReadConfigText("web config file", path);
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : path.substr(0, slash);
  WebConfig config = ParseWebConfig(text, dir.empty() ? "/" : dir);
  if (config.tls) {
    RequireReadable(config.cert_file, "tls_server_config.cert_file");
    RequireReadable(config.key_file, "tls_server_config.key_file");
    if (!config.client_ca_file.empty()) {
      RequireReadable(config.client_ca_file,
                      "tls_server_config.client_ca_file");
    }
  }
  return config;
}

}  // namespace tcpstated
