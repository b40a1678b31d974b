#include "tcpstated/privileged_runner.h"

#include <pthread.h>

#include <exception>
#include <utility>

namespace tcpstated {

PrivilegedRunner::PrivilegedRunner() {
  thread_ = std::thread([this] { Main(); });
}

PrivilegedRunner::~PrivilegedRunner() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void PrivilegedRunner::Run(const std::function<void()>& job) {
  std::lock_guard<std::mutex> one_at_a_time(run_mutex_);
  std::unique_lock<std::mutex> lock(mutex_);
  job_ = &job;
  const uint64_t ticket = ++started_;
  changed_.notify_all();
  changed_.wait(lock, [&] { return finished_ >= ticket; });
  job_ = nullptr;
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void PrivilegedRunner::Main() {
  pthread_setname_np(pthread_self(), "privileged");
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stopping_ || started_ > finished_; });
    // Finish a job already handed over before stopping: its caller waits.
    if (started_ == finished_) return;
    const std::function<void()>* job = job_;
    lock.unlock();
    std::exception_ptr error;
    try {
      (*job)();
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    error_ = error;
    ++finished_;
    changed_.notify_all();
  }
}

}  // namespace tcpstated
