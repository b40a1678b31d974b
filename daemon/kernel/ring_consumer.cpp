#include "tcpstated/ring_consumer.h"

#include <bpf/libbpf.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
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

RingConsumer::RingConsumer(const std::vector<int>& ring_fds, Mirror* mirror,
                           std::mutex* mutex)
    : mirror_(mirror), mutex_(mutex) {
  if (ring_fds.empty()) throw std::runtime_error("no ring buffer to consume");
  contexts_.reserve(ring_fds.size());
  for (size_t i = 0; i < ring_fds.size(); ++i) {
    contexts_.push_back({this, i});
    int err = 0;
    if (i == 0) {
      ring_ = ring_buffer__new(ring_fds[i], &RingConsumer::HandleRecord,
                               &contexts_[i], nullptr);
      if (ring_ == nullptr) err = errno;
    } else {
      err = -ring_buffer__add(ring_, ring_fds[i], &RingConsumer::HandleRecord,
                              &contexts_[i]);
    }
    if (err != 0) {
      if (ring_ != nullptr) ring_buffer__free(ring_);
      throw std::runtime_error(
          "cannot map ring buffer " + std::to_string(i + 1) + " of " +
          std::to_string(ring_fds.size()) + ": " + std::strerror(err));
    }
  }
  if (ring_fds.size() > 1) {
    merge_ = std::make_unique<RingMerge>(ring_fds.size());
    watermark_ = std::make_unique<RingWatermark>(ring_fds.size());
    MapPositions(ring_fds);
  }
  heartbeat_ns_ = MonotonicNowNs();
}

void RingConsumer::MapPositions(const std::vector<int>& ring_fds) {
  // The kernel lets the first pages be mapped read-only: page 0 holds the
  // consumer position (libbpf's mapping writes it), page 1 the producer's.
  const size_t len = 2 * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  page_size_ = len / 2;
  for (int fd : ring_fds) {
    void* map = mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
      const int err = errno;
      UnmapPositions();
      ring_buffer__free(ring_);
      throw std::runtime_error(
          std::string("cannot map a ring buffer's positions: ") +
          std::strerror(err));
    }
    positions_.push_back(map);
  }
}

void RingConsumer::UnmapPositions() {
  for (void* map : positions_) munmap(map, 2 * page_size_);
  positions_.clear();
}

uint64_t RingConsumer::Position(size_t ring, size_t page) const {
  const auto* pos = reinterpret_cast<const uint64_t*>(
      static_cast<const char*>(positions_[ring]) + page * page_size_);
  return __atomic_load_n(pos, __ATOMIC_ACQUIRE);
}

void RingConsumer::DrainAndMerge() {
  // Observed before the drain: the clock, then (not before it) each ring's
  // producer position. RingWatermark says why.
  const uint64_t now_ns = MonotonicNowNs();
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (size_t i = 0; i < positions_.size(); ++i) {
    watermark_->Observe(i, now_ns, Position(i, 1));
  }
  Consume();
  for (size_t i = 0; i < positions_.size(); ++i) {
    watermark_->Drained(i, Position(i, 0));
  }
  merge_->Release(watermark_->watermark_ns(), &pending_);
}

void RingConsumer::Consume() {
  int consumed = ring_buffer__consume(ring_);
  if (consumed < 0) {
    poll_errors_++;
    spdlog::warn("ring buffer consume failed: {}", std::strerror(-consumed));
  }
}

RingConsumer::~RingConsumer() {
  Stop();
  UnmapPositions();
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
  const auto* context = static_cast<const RingContext*>(ctx);
  RingConsumer* self = context->self;
  Event event;
  DecodeError err = DecodeEvent(data, size, &event);
  if (err != DecodeError::kNone) {
    self->decode_errors_++;
    SPDLOG_DEBUG("dropping malformed ring record ({} bytes): {}", size,
                 DecodeErrorName(err));
    return 0;
  }
  if (self->merge_ != nullptr) {
    self->Hold(context->ring, event);
    return 0;
  }
  if (self->pending_.size() >= kMaxPendingEvents) {
    std::lock_guard<std::mutex> lock(*self->mutex_);
    self->ApplyPendingLocked();
  }
  self->pending_.push_back(event);
  return 0;
}

void RingConsumer::Hold(size_t ring, const Event& event) {
  // Released records wait in pending_ while the mirror is busy, bounded as
  // with one ring: they are in order, so applying them now is safe.
  if (pending_.size() >= kMaxPendingEvents) {
    std::lock_guard<std::mutex> lock(*mutex_);
    ApplyPendingLocked();
  }
  // Held records (one drain's) have the same bound. Only a drain that never
  // ends (the rings refilled faster than they are read) reaches it: no
  // watermark is safe before the drain ends, so what is held is applied in
  // stamp order as it is, counted.
  if (merge_->held() >= kMaxPendingEvents) {
    const size_t before = pending_.size();
    merge_->Release(UINT64_MAX, &pending_);
    if (unmerged_events_.fetch_add(pending_.size() - before) == 0) {
      spdlog::warn(
          "ring merge: {} events applied before their watermark (the rings "
          "refilled during one drain); counted in "
          "tcpstated_events_unmerged_total",
          pending_.size() - before);
    }
    std::lock_guard<std::mutex> lock(*mutex_);
    ApplyPendingLocked();
  }
  merge_->Add(ring, event);
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
    // With several rings, the merge's clock is read after the flush
    // tickets, so their events are stamped before it (and released, unless
    // a ring is blocked behind a record still being written, as one ring
    // would be).
    if (merge_ != nullptr) {
      DrainAndMerge();
    } else {
      Consume();
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
