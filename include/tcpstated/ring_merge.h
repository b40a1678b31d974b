// Merges the records of several ring buffers into one order that keeps every
// socket's events in the order the kernel produced them (the watermark merge
// of docs/performance.md §14 and §19).
//
// Why a watermark on the kernel's timestamps is enough, and what it assumes:
//  - A socket's state changes, and its resets and retransmits, run under that
//    socket's lock (or its request socket's, or as the one softirq handling
//    the segment), and the BPF program reserves, stamps (bpf_ktime_get_ns,
//    CLOCK_MONOTONIC, read after the reserve) and commits its record before
//    it returns, i.e. before the kernel moves on. So a socket's later record
//    is stamped after its earlier one was committed.
//  - The consumer reads CLOCK_MONOTONIC as T, then drains every ring. A ring
//    is read in reservation order up to the first record still being written
//    (uncommitted); tcpstated/ring_watermark.h turns that into the watermark
//    W <= T: every record reserved before W was read. A held record stamped
//    before W had every earlier record of its socket committed, hence
//    reserved, before W: those were read, and are held too or were released
//    already. So the held records stamped before W can be released in
//    timestamp order, and the rest must wait for a later turn (the next one
//    unless a ring stays blocked).
//  - A record read late (committed after the drain, or blocked behind one
//    that was) arrives in a later turn stamped below an earlier watermark. Its
//    socket's later records are stamped after its commit, so none of them
//    was released before it: it may simply follow the next turn's order.
//  - Equal stamps keep arrival order (earlier turns, then ring 0, 1, ...; each
//    ring in its own order). A socket's two records cannot share a stamp:
//    between them lie the first's commit and the second's reserve.
// Assumed: bpf_ktime_get_ns and userspace's CLOCK_MONOTONIC are the same
// clock, consistent across CPUs (the kernel's requirement for a monotonic
// clock); every record is stamped after its reservation (fill_head, after
// bpf_ringbuf_reserve). Records of
// different sockets have no order to keep, and had none with one ring:
// where two sockets' events race (a timewait socket answering a segment
// before the full socket it replaced reports its CLOSE; a SYN-ACK retransmit
// as the child is made; a reset to a segment that found no socket just after
// the socket was unhashed), one ring orders them by reservation and the merge
// by stamp, each arbitrary within that window.
//
// Thread-safety: none; one consumer thread owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tcpstated/event.h"

namespace tcpstated {

class RingMerge {
 public:
  explicit RingMerge(size_t rings);

  // A record drained from `ring` (< rings), in that ring's order.
  void Add(size_t ring, const Event& event) {
    incoming_[ring].push_back(event);
  }
  // Records added and not yet released.
  size_t held() const;

  // Appends to `out`, in timestamp order, every held record stamped before
  // `watermark_ns` (RingWatermark's); keeps the rest, in order, for a later
  // call. UINT64_MAX releases everything.
  void Release(uint64_t watermark_ns, std::vector<Event>* out);

 private:
  // Held from earlier calls, sorted, all stamped at or after their
  // watermark.
  std::vector<Event> held_;
  std::vector<std::vector<Event>> incoming_;  // per ring, arrival order
  std::vector<Event> next_held_;              // scratch of Release
};

}  // namespace tcpstated
