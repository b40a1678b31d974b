// A thread that keeps the daemon's capabilities and runs short jobs for
// threads that have none: the HTTP workers ask it to read the in-kernel
// counters (bpf() map reads need CAP_SYS_ADMIN where
// kernel.unprivileged_bpf_disabled is set), so that no thread that handles
// network input needs a capability.
//
// Only code of the daemon is handed over (a function), never data from the
// network.
//
// Thread-safety: Run may be called from any thread; jobs run one at a time.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace tcpstated {

class PrivilegedRunner {
 public:
  // Starts the thread, which inherits the creating thread's capabilities.
  PrivilegedRunner();
  ~PrivilegedRunner();
  PrivilegedRunner(const PrivilegedRunner&) = delete;
  PrivilegedRunner& operator=(const PrivilegedRunner&) = delete;

  // Runs `job` on the privileged thread and returns when it has finished
  // (exceptions from it are rethrown here).
  void Run(const std::function<void()>& job);

 private:
  void Main();

  std::mutex run_mutex_;  // one caller at a time
  std::mutex mutex_;
  std::condition_variable changed_;
  const std::function<void()>* job_ = nullptr;
  std::exception_ptr error_;
  uint64_t started_ = 0;
  uint64_t finished_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace tcpstated
