#include "tcpstated/ring_consumer.h"

#include <bpf/libbpf.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "tcpstated/event.h"
#include "tcpstated/monotonic_clock.h"

namespace tcpstated {
namespace {

// Decoded events held while the mirror is busy (a reconcile or a scrape
// holds its lock): the ring keeps being drained meanwhile, so a long
// reconcile does not overflow it. About 30 MB at the bound; beyond it the
// consumer waits for the lock as before.
constexpr size_t kMaxPendingEvents = 262144;
// Also the longest an event waits in the ring when no wake-up came.
constexpr int kPollTimeoutMs = 50;

}  // namespace

RingConsumer::RingConsumer(int ring_fd, Mirror* mirror, std::mutex* mutex)
    : mirror_(mirror), mutex_(mutex) {
  ring_ = ring_buffer__new(ring_fd, &RingConsumer::HandleRecord, this, nullptr);
  if (ring_ == nullptr) {
    throw std::runtime_error(std::string("cannot map the ring buffer: ") +
                             std::strerror(errno));
  }
  heartbeat_ns_ = MonotonicNowNs();
}

RingConsumer::~RingConsumer() {
  Stop();
  ring_buffer__free(ring_);
}

void RingConsumer::Start() {
  thread_ = std::thread([this] { Run(); });
}

void RingConsumer::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(flush_mutex_);
  flush_cv_.notify_all();
}

bool RingConsumer::Flush(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(flush_mutex_);
  const uint64_t ticket = ++flush_requested_;
  flush_cv_.wait_for(lock, timeout,
                     [&] { return flush_done_ >= ticket || stop_; });
  return flush_done_ >= ticket;
}

int RingConsumer::HandleRecord(void* ctx, void* data, size_t size) {
  auto* self = static_cast<RingConsumer*>(ctx);
  Event event;
  DecodeError err = DecodeEvent(data, size, &event);
  if (err != DecodeError::kNone) {
    self->decode_errors_++;
    SPDLOG_DEBUG("dropping malformed ring record ({} bytes): {}", size,
                 DecodeErrorName(err));
    return 0;
  }
  if (self->pending_.size() >= kMaxPendingEvents) {
    std::lock_guard<std::mutex> lock(*self->mutex_);
    self->ApplyPendingLocked();
  }
  self->pending_.push_back(event);
  return 0;
}

void RingConsumer::ApplyPendingLocked() {
  mirror_->ApplyBatch(pending_.data(), pending_.size());
  pending_.clear();
  // A storm's buffer is given back once it is no longer needed.
  if (pending_.capacity() > 4 * 4096) pending_.shrink_to_fit();
}

void RingConsumer::Run() {
  // Named for per-thread CPU and scheduling figures (docs/performance.md).
  pthread_setname_np(pthread_self(), "ring-consumer");
  int epfd = ring_buffer__epoll_fd(ring_);
  epoll_event ev{};
  while (!stop_) {
    int n = epoll_wait(epfd, &ev, 1, kPollTimeoutMs);
    heartbeat_ns_ = MonotonicNowNs();
    if (n < 0) {
      if (errno != EINTR) {
        poll_errors_++;
        spdlog::warn("ring buffer wait failed: {}", std::strerror(errno));
      }
      continue;
    }
    // Consume on timeouts too: the BPF side only wakes us once a batch is
    // waiting, so smaller amounts are picked up here, at most one poll
    // interval late. Draining needs no lock; applying does, and waits for
    // the next turn if the mirror is busy.
    // Tickets taken before this consume are served by it: what the kernel
    // had sent by then is in the ring now.
    uint64_t requested, done;
    {
      std::lock_guard<std::mutex> lock(flush_mutex_);
      requested = flush_requested_;
      done = flush_done_;
    }
    int consumed = ring_buffer__consume(ring_);
    if (consumed < 0) {
      poll_errors_++;
      spdlog::warn("ring buffer consume failed: {}", std::strerror(-consumed));
    }
    if (!pending_.empty()) {
      // A flush waits for the lock; otherwise the next turn will do.
      std::unique_lock<std::mutex> lock(*mutex_, std::defer_lock);
      if (requested > done) {
        lock.lock();
      } else {
        lock.try_lock();
      }
      if (lock.owns_lock()) ApplyPendingLocked();
    }
    if (requested > done) {
      std::lock_guard<std::mutex> lock(flush_mutex_);
      flush_done_ = requested;
      flush_cv_.notify_all();
    }
  }
}

}  // namespace tcpstated
