// The ring-buffer consumer thread: waits for kernel events, decodes them and
// applies them to the mirror in batches under the mirror's lock.
//
// Thread-safety: Start/Stop from the owning thread; heartbeat and
// decode_errors may be read from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "tcpstated/mirror.h"

struct ring_buffer;

namespace tcpstated {

class RingConsumer {
 public:
  // `mirror` is guarded by `mirror_mutex`. The consumer drains the ring
  // without it and applies what it drained under it, buffering (bounded)
  // while another thread holds it.
  RingConsumer(int ring_fd, Mirror* mirror, std::mutex* mirror_mutex);
  ~RingConsumer();
  RingConsumer(const RingConsumer&) = delete;
  RingConsumer& operator=(const RingConsumer&) = delete;

  void Start();
  void Stop();  // joins; idempotent

  // Returns once every event the kernel had sent when it was called is
  // applied to the mirror (the consumer thread does it, within one poll
  // interval), or after `timeout`, or when the consumer stops; says which.
  // Any thread but the consumer's, never with the mirror's lock held.
  bool Flush(std::chrono::milliseconds timeout);

  // CLOCK_MONOTONIC ns of the consumer loop's last turn (for /healthz and
  // the systemd watchdog): a stuck consumer stops advancing it.
  uint64_t heartbeat_ns() const { return heartbeat_ns_.load(); }
  uint64_t decode_errors() const { return decode_errors_.load(); }
  // Errors from the ring buffer itself (other than EINTR).
  uint64_t poll_errors() const { return poll_errors_.load(); }

 private:
  static int HandleRecord(void* ctx, void* data, size_t size);
  void Run();

  struct ring_buffer* ring_ = nullptr;
  Mirror* mirror_;
  std::mutex* mutex_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> heartbeat_ns_{0};
  std::atomic<uint64_t> decode_errors_{0};
  std::atomic<uint64_t> poll_errors_{0};
  // Decoded events not yet applied (the mirror was busy); consumer thread
  // only, in ring order.
  std::vector<Event> pending_;
  void ApplyPendingLocked();
  // Flush requests: tickets handed out and tickets served.
  std::mutex flush_mutex_;
  std::condition_variable flush_cv_;
  uint64_t flush_requested_ = 0;  // guarded by flush_mutex_
  uint64_t flush_done_ = 0;       // guarded by flush_mutex_
};

}  // namespace tcpstated
