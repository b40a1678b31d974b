#include "tcpstated/state_store.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "tcpstated/metric_family.h"
#include "tcpstated/scoped_fd.h"

namespace tcpstated {
namespace {

constexpr const char* kFileName = "sockets.state";

// Times in the file are CLOCK_MONOTONIC: they mean something only within
// the boot that wrote them.
std::string ReadBootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

std::string Errno(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

bool WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

StateStore::StateStore(std::string directory)
    : directory_(std::move(directory)) {
  if (directory_.empty()) return;
  boot_id_ = ReadBootId();
  if (::mkdir(directory_.c_str(), 0700) != 0 && errno != EEXIST) {
    spdlog::warn(
        "state.directory {}: {}; ages learned will not survive a "
        "restart",
        directory_, std::strerror(errno));
    return;
  }
  path_ = directory_ + "/" + kFileName;
}

std::vector<SavedSocket> StateStore::Load() {
  if (!enabled()) return {};
  ScopedFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    if (errno == ENOENT) {
      spdlog::info(
          "no state file {} yet: ages start from what the kernel "
          "tells",
          path_);
    } else {
      spdlog::warn("state file {} ignored: {}", path_, std::strerror(errno));
    }
    return {};
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<uint64_t>(st.st_size) > kMaxStateFileBytes) {
    spdlog::warn(
        "state file {} ignored: not a regular file of at most {} "
        "bytes",
        path_, kMaxStateFileBytes);
    return {};
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::read(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  text.resize(done);
  StateFile file;
  std::string error;
  if (!ParseStateFile(text, &file, &error)) {
    spdlog::warn("state file {} ignored: {}", path_, error);
    return {};
  }
  if (boot_id_.empty() || file.boot_id != boot_id_) {
    spdlog::info("state file {} is from another boot: ignored", path_);
    return {};
  }
  spdlog::info("state file {}: {} socket ages to check against the kernel",
               path_, file.sockets.size());
  return std::move(file.sockets);
}

bool StateStore::Save(std::vector<SavedSocket> sockets, uint64_t now_ns) {
  if (!enabled()) return true;
  StateFile file;
  file.boot_id = boot_id_;
  file.written_ns = now_ns;
  file.sockets = std::move(sockets);
  std::string error;
  if (!Write(FormatStateFile(file), &error)) {
    write_errors_++;
    if (!failing_) {
      spdlog::warn(
          "cannot write the state file {}: {}; retrying at each "
          "save (tcpstated_state_file_write_errors_total)",
          path_, error);
    }
    failing_ = true;
    return false;
  }
  if (failing_) spdlog::info("state file {} written again", path_);
  failing_ = false;
  saved_sockets_ = std::min(file.sockets.size(), kMaxStateEntries);
  return true;
}

bool StateStore::Write(const std::string& text, std::string* error) const {
  // Its own name: two daemons (tests, a stray second instance) never write
  // into each other's temporary file.
  const std::string tmp = path_ + ".tmp." + std::to_string(::getpid());
  {
    ScopedFd fd(::open(tmp.c_str(),
                       O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                       0600));
    if (fd.get() < 0) {
      *error = Errno("open " + tmp);
      return false;
    }
    if (!WriteAll(fd.get(), text) || ::fsync(fd.get()) != 0) {
      *error = Errno("write " + tmp);
      ::unlink(tmp.c_str());
      return false;
    }
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    *error = Errno("rename " + tmp);
    ::unlink(tmp.c_str());
    return false;
  }
  // The rename itself is durable only once the directory is.
  ScopedFd dir(::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() >= 0) ::fsync(dir.get());
  return true;
}

std::vector<prometheus::MetricFamily> StateStore::Metrics() const {
  static const FamilySpec kWriteErrors = {
      "tcpstated_state_file_write_errors_total",
      "Saves of the state file (state.directory) that failed: the ages "
      "learned since the last good save would not survive a restart.",
      prometheus::MetricType::Counter};
  static const FamilySpec kSaved = {
      "tcpstated_state_file_sockets",
      "Socket ages in the state file at its last save (at most 100000: "
      "CLOSE_WAIT first, then FIN_WAIT2, then ESTABLISHED, oldest first).",
      prometheus::MetricType::Gauge};
  std::vector<prometheus::MetricFamily> out;
  if (!enabled()) return out;
  out.push_back(NewFamily(kWriteErrors));
  AddSample(out.back(), {}, static_cast<double>(write_errors_.load()));
  out.push_back(NewFamily(kSaved));
  AddSample(out.back(), {}, static_cast<double>(saved_sockets_.load()));
  return out;
}

}  // namespace tcpstated
