// The state of an unfinished reconcile (Mirror::StartReconcile ..
// FinishReconcile): private to the mirror, in a header of its own because
// the mirror's constructor and destructor need it complete.
#pragma once

#include <unordered_map>
#include <utility>
#include <vector>

#include "tcpstated/mirror.h"

namespace tcpstated {

struct Mirror::ReconcileJob {
  enum class Phase { kMatch, kIndex, kSeed, kSweep, kDone };
  std::vector<NamespaceDump> dumps;
  uint64_t dump_start_ns = 0;
  uint64_t now_ns = 0;
  bool seeding = false;
  uint8_t epoch = 0;
  std::unordered_map<uint32_t, const NamespaceDump*> by_netns;
  std::unordered_map<uint32_t, std::vector<uint16_t>> listening;
  Phase phase = Phase::kMatch;
  // kMatch: position in dumps; request sockets of the current namespace.
  size_t dump_index = 0;
  size_t socket_index = 0;
  uint64_t request_sockets = 0;
  // Dump sockets no cookie matched, for the 4-tuple pass and seeding.
  std::vector<std::pair<const DiagSocket*, uint32_t>> unmatched;
  size_t unmatched_index = 0;
  // kIndex: unconfirmed entries whose id is not the kernel's cookie (the
  // classic-tracepoint mode's incarnation ids), by 4-tuple.
  std::unordered_map<TupleKey, uint64_t, TupleKeyHash> by_tuple;
  // kIndex and kSweep: the next table slot, and the table's capacity when
  // the walk began (a rehash reorders the slots: the walk starts over).
  size_t slot = 0;
  size_t walk_capacity = 0;
  // kSweep: entries moved behind `slot` while the walk was paused
  // (Mirror::NoteMoved), looked at once the walk is done.
  std::vector<uint64_t> sweep_again;
  ReconcileStats stats;

  void Correct(TcpState state) {
    if (!seeding) stats.corrections[StateIndex(state)]++;
  }
};

}  // namespace tcpstated
