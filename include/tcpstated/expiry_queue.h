// Deadlines of the mirror's timewait entries, earliest first.
//
// Nearly every deadline is its event's time plus the same 60 s, and events
// come in time order, so deadlines arrive already sorted: those go to the
// back of a ring (O(1), sequential memory), and only the few that arrive
// out of order (events of CPUs slightly apart, a namespace's shorter
// tcp_fin_timeout) go to a binary heap. The earliest is the earlier of the
// ring's front and the heap's top. A single heap of a million entries cost
// a cache miss per level on every pop (about 20 of them per expired
// socket); the ring costs none.
//
// Thread-safety: none (the mirror's lock covers it).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace tcpstated {

class ExpiryQueue {
 public:
  struct Item {
    uint64_t at_ns;
    uint64_t id;
    bool operator>(const Item& o) const { return at_ns > o.at_ns; }
  };

  bool empty() const { return ring_size_ == 0 && heap_.empty(); }
  size_t size() const { return ring_size_ + heap_.size(); }

  void Push(uint64_t at_ns, uint64_t id) {
    if (ring_size_ == 0 || at_ns >= RingBack().at_ns) {
      if (ring_size_ == ring_.size()) Grow();
      ring_[(head_ + ring_size_) & (ring_.size() - 1)] = Item{at_ns, id};
      ++ring_size_;
    } else {
      heap_.push_back(Item{at_ns, id});
      std::push_heap(heap_.begin(), heap_.end(), std::greater<Item>());
    }
  }

  // The earliest deadline; the queue must not be empty.
  const Item& Top() const { return FromRing() ? ring_[head_] : heap_.front(); }

  // The ring's k-th item from its front, or null if it holds fewer: the
  // deadlines that come next (nearly all of them are in the ring), whose
  // sockets Mirror::Expire starts loading ahead.
  const Item* RingAhead(size_t k) const {
    if (k >= ring_size_) return nullptr;
    return &ring_[(head_ + k) & (ring_.size() - 1)];
  }

  void Pop() {
    if (FromRing()) {
      head_ = (head_ + 1) & (ring_.size() - 1);
      --ring_size_;
    } else {
      std::pop_heap(heap_.begin(), heap_.end(), std::greater<Item>());
      heap_.pop_back();
    }
  }

 private:
  static constexpr size_t kMinRing = 1024;

  bool FromRing() const {
    if (ring_size_ == 0) return false;
    return heap_.empty() || ring_[head_].at_ns <= heap_.front().at_ns;
  }
  const Item& RingBack() const {
    return ring_[(head_ + ring_size_ - 1) & (ring_.size() - 1)];
  }
  void Grow() {
    std::vector<Item> bigger(std::max(kMinRing, ring_.size() * 2));
    for (size_t i = 0; i < ring_size_; ++i) {
      bigger[i] = ring_[(head_ + i) & (ring_.size() - 1)];
    }
    ring_.swap(bigger);
    head_ = 0;
  }

  std::vector<Item> ring_;  // capacity a power of two (or 0)
  size_t head_ = 0;
  size_t ring_size_ = 0;
  std::vector<Item> heap_;  // min-heap by at_ns
};

}  // namespace tcpstated
