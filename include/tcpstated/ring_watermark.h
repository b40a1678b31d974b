// How far the merge of several rings may go: the watermark below which every
// record whose socket's earlier records could still be unread is ruled out.
//
// A ring's consumer cannot read past a record still being written (reserved,
// not yet committed), and records committed behind it wait. Such a blocked
// record p was reserved after the first unread one, q; a later record of p's
// socket, r, possibly in another ring, is stamped after p's commit. So r may
// be released only if it was stamped before q's reservation. That moment is
// bounded from below by observations: the clock read as X, then the ring's
// producer position P. If the consumer later got to c >= P, every record
// reserved before X was read, and q (at c) was reserved after X. The
// watermark is the latest such X of each ring, the earliest over the rings:
// this turn's clock reading when every ring was drained past the positions
// observed with it, an earlier one while a ring is blocked.
//
// Thread-safety: none; one consumer thread owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace tcpstated {

class RingWatermark {
 public:
  explicit RingWatermark(size_t rings);

  // Before the drain: CLOCK_MONOTONIC was read as `now_ns`, then `ring`'s
  // producer position as `producer_pos`.
  void Observe(size_t ring, uint64_t now_ns, uint64_t producer_pos);
  // After the drain: `ring`'s consumer position.
  void Drained(size_t ring, uint64_t consumer_pos);
  // Records stamped before this may be released (0 before any drain).
  uint64_t watermark_ns() const;

 private:
  struct Observation {
    uint64_t now_ns;
    uint64_t producer_pos;
  };
  // Per ring: observations the consumer has not yet drained past, oldest
  // first (bounded: dropping the oldest only keeps the watermark lower).
  std::vector<std::deque<Observation>> pending_;
  std::vector<uint64_t> safe_ns_;  // per ring: the latest X drained past
};

}  // namespace tcpstated
