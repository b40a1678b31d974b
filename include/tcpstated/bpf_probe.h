// The kernel edge: opens, configures, loads and attaches tcpstated's BPF
// programs (through the bpftool-generated skeleton), and reads the in-kernel
// counters. The only class that knows about the skeleton.
//
// Thread-safety: Load/Attach from one thread at start-up; the Read*
// functions may then be called from any thread concurrently with the ring
// buffer consumer.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tcpstated/config.h"
#include "tcpstated/event.h"
#include "tcpstated/metrics.h"

struct tcpstated_bpf;  // the bpftool-generated skeleton
struct ring_buffer;

namespace tcpstated {

// A start-up failure with an actionable one-line message.
class ProbeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class BpfProbe {
 public:
  struct Options {
    AttachMode attach = AttachMode::kAuto;
    uint64_t ring_buffer_bytes = 4u << 20;  // each ring's
    // Rings the CPUs share out by CPU number (at most one per CPU).
    uint32_t ring_buffers = 2;
    // Bound of the classic-tracepoint incarnation map.
    uint64_t max_tracked_sockets = 1000000;
  };

  // Checks privileges and prerequisites, loads and attaches. Throws
  // ProbeError saying what is missing and how to fix it.
  explicit BpfProbe(const Options& options);
  ~BpfProbe();
  BpfProbe(const BpfProbe&) = delete;
  BpfProbe& operator=(const BpfProbe&) = delete;

  // The mode actually attached: kTpBtf or kTracepoint.
  AttachMode mode() const { return mode_; }
  // The event rings, in ring order; owned by the probe.
  std::vector<int> ring_buffer_fds() const;

  // Sums the per-CPU counters. Never throws; on a failed lookup the
  // affected counters read as zero and `ok` is false.
  KernelCounters ReadCounters(bool* ok = nullptr) const;

 private:
  void LoadAndAttach(AttachMode mode);
  // Sets the ring count and sizes before load (creating the rings when
  // there are several); returns the count. Throws ProbeError.
  uint32_t ConfigureRings();
  // The event rings, before load; FillRings puts them in the program's
  // array after it (returns 0 or -errno).
  void CreateRings(uint32_t rings);
  int FillRings();
  void Destroy();

  Options options_;
  AttachMode mode_ = AttachMode::kAuto;
  struct tcpstated_bpf* skel_ = nullptr;
  std::vector<int> ring_fds_;  // with several rings only (else `events`)
  int ncpus_ = 0;
};

// Checks that the process may load tracing BPF programs; throws ProbeError
// naming the missing capabilities.
void CheckBpfPrivileges();

}  // namespace tcpstated
