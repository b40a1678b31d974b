// The daemon's one clock: CLOCK_MONOTONIC in nanoseconds, the clock the
// kernel's bpf_ktime_get_ns() reads, so event times and user-space "now"
// compare directly.
//
// Thread-safety: any thread.
#pragma once

#include <cstdint>

namespace tcpstated {

uint64_t MonotonicNowNs();

}  // namespace tcpstated
