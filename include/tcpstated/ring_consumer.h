// The ring-buffer consumer thread: waits for kernel events on every ring (one
// epoll), decodes them and applies them to the mirror in batches under the
// mirror's lock. With several rings it merges them by timestamp
// (tcpstated/ring_merge.h says why that keeps each socket's order).
//
// Thread-safety: Start/Stop from the owning thread; heartbeat and
// decode_errors may be read from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "tcpstated/mirror.h"
#include "tcpstated/ring_merge.h"
#include "tcpstated/ring_watermark.h"

struct ring_buffer;

namespace tcpstated {

class RingConsumer {
 public:
  // `ring_fds`: the event rings (at least one). `mirror` is guarded by
  // `mirror_mutex`. The consumer drains the rings without it and applies
  // what it drained under it, buffering (bounded) while another thread
  // holds it. Throws std::runtime_error if a ring cannot be mapped.
  RingConsumer(const std::vector<int>& ring_fds, Mirror* mirror,
               std::mutex* mirror_mutex);
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
  // Records applied before the merge's watermark allowed, because the held
  // records reached their bound within one drain: their sockets' order is
  // not guaranteed (the next reconcile repairs what it broke).
  uint64_t unmerged_events() const { return unmerged_events_.load(); }

 private:
  // What libbpf hands HandleRecord: the consumer and the record's ring.
  struct RingContext {
    RingConsumer* self;
    size_t ring;
  };
  static int HandleRecord(void* ctx, void* data, size_t size);
  void Hold(size_t ring, const Event& event);
  void Run();
  void Consume();
  void DrainAndMerge();
  void MapPositions(const std::vector<int>& ring_fds);
  void UnmapPositions();
  // A ring's consumer (page 0) or producer (page 1) position.
  uint64_t Position(size_t ring, size_t page) const;

  struct ring_buffer* ring_ = nullptr;
  std::vector<RingContext> contexts_;  // one per ring; never reallocated
  // Only with several rings; consumer thread only.
  std::unique_ptr<RingMerge> merge_;
  std::unique_ptr<RingWatermark> watermark_;
  std::vector<void*> positions_;  // per ring: its first two pages, read-only
  size_t page_size_ = 0;
  Mirror* mirror_;
  std::mutex* mutex_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> heartbeat_ns_{0};
  std::atomic<uint64_t> decode_errors_{0};
  std::atomic<uint64_t> poll_errors_{0};
  std::atomic<uint64_t> unmerged_events_{0};
  // Decoded events not yet applied (the mirror was busy); consumer thread
  // only, in ring order (merged order with several rings).
  std::vector<Event> pending_;
  void ApplyPendingLocked();
  // Flush requests: tickets handed out and tickets served.
  std::mutex flush_mutex_;
  std::condition_variable flush_cv_;
  uint64_t flush_requested_ = 0;  // guarded by flush_mutex_
  uint64_t flush_done_ = 0;       // guarded by flush_mutex_
};

}  // namespace tcpstated
