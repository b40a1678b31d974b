// What one KernelView cycle carries from step to step (kernel_view.cpp's
// RunCycle), shared with the steps kept in files of their own
// (kernel_view_drift.cpp). Private to the kernel view.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tcpstated/kernel_view.h"

namespace tcpstated {

struct KernelView::Cycle {
  bool full = false;
  bool seeding = false;
  // Namespaces dumped for their drift (when not full), and whether this
  // cycle reconciles at all (full, or some).
  std::set<uint32_t> targets;
  bool reconcile = false;
  // The peer judgments the full dump serves, and whether it carries
  // tcp_info for them (PeerDumpSchedule::FullDumpServes).
  PeerDumpsDue peers_from_full;
  ReconcileReason reason = ReconcileReason::kSafety;
  // Events applied to the mirror per namespace before the reads.
  std::unordered_map<uint32_t, uint64_t> events_before;
  uint64_t loss_before = 0;  // events lost or missed, before the reads
  bool refresh = false;      // discovery and sysctls due (kRefreshInterval)
  std::map<uint32_t, Activity> activity;
  std::vector<NamespaceRequest> requests;
  std::vector<NamespaceResult> results;  // parallel to requests
  std::map<uint32_t, std::vector<DiagSocket>> dumps;
  std::unordered_set<uint32_t> settings_read;
  std::unordered_set<uint32_t> requests_counted;  // dumps with SYN_RECV
  uint64_t dump_start = 0;
  uint64_t dump_end = 0;
  uint64_t errors = 0;
  Mirror::ReconcileStats stats;
  std::vector<std::pair<uint64_t, uint32_t>> need_owner;   // id, inode
  std::unordered_map<uint32_t, ProcessInfo> owners_found;  // by inode
  // Copied out of the mirror for the detectors; close_wait_tgids is
  // parallel to inputs.close_wait (0: owner unknown).
  DetectorInputs inputs;
  std::vector<uint32_t> close_wait_tgids;
  std::vector<uint64_t> close_wait_cgroups;  // the owner's, from its event
  std::unordered_map<ListenerKey, uint64_t, ListenerKeyHash> synacks;
  std::unordered_map<uint32_t, uint64_t> timewait;
  DetectionReport report;
};

}  // namespace tcpstated
