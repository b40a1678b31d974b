// The state file on disk (state_file.h has its format): read once at
// start-up, written periodically and at shutdown, atomically (a temporary
// file, fsync, rename, fsync of the directory), so a crash or a full disk
// leaves the previous file, never half of one.
//
// Failures never stop the daemon: a missing directory is created, a file
// that cannot be used gets one warning and is ignored, a write that fails
// is logged once (until one succeeds again) and counted.
//
// Thread-safety: Load and Save from one thread at a time; the counters
// may be read from any thread.
#pragma once

#include <prometheus/metric_family.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "tcpstated/state_file.h"

namespace tcpstated {

class StateStore {
 public:
  // `directory` empty: persistence is off (Load returns nothing, Save does
  // nothing).
  explicit StateStore(std::string directory);

  bool enabled() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

  // The saved sockets, if the file exists, is valid and was written in
  // this boot; otherwise none (with one log line saying why).
  std::vector<SavedSocket> Load();
  // Replaces the file with `sockets`. Returns false if it could not.
  bool Save(std::vector<SavedSocket> sockets, uint64_t now_ns);

  // tcpstated_state_file_* families.
  std::vector<prometheus::MetricFamily> Metrics() const;

 private:
  bool Write(const std::string& text, std::string* error) const;

  std::string directory_;
  std::string path_;
  std::string boot_id_;
  bool failing_ = false;  // the last Save failed (and said so)
  std::atomic<uint64_t> write_errors_{0};
  std::atomic<uint64_t> saved_sockets_{0};
};

}  // namespace tcpstated
