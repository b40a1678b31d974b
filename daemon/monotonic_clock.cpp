#include "tcpstated/monotonic_clock.h"

#include <time.h>

namespace tcpstated {

uint64_t MonotonicNowNs() {
  constexpr uint64_t kNanosPerSecond = 1000000000;
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNanosPerSecond +
         static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace tcpstated
