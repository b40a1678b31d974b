// The kernel's own view, beside the event stream: every network namespace
// on the host, a sock_diag dump of each (timewait and request sockets, LISTEN
// queues, sockets older than the daemon), their TcpExt counters and sysctls,
// and the owners of sockets found in a dump. It seeds the mirror at start-up,
// reconciles it periodically, and runs the detectors.
//
// Thread-safety: Seed() from the main thread before Start(); then one
// background thread does the work, taking the mirror's mutex only to apply
// results. Metrics() may be called from any thread.
#pragma once

#include <prometheus/metric_family.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "tcpstated/detectors.h"
#include "tcpstated/kernel_settings.h"
#include "tcpstated/mirror.h"
#include "tcpstated/netns.h"
#include "tcpstated/owners.h"
#include "tcpstated/sock_diag.h"

namespace tcpstated {

class KernelView {
 public:
  struct Options {
    std::chrono::milliseconds reconcile_interval{30000};
    // Detectors, LISTEN/SYN_RECV dumps, counters and sysctls.
    std::chrono::milliseconds detector_interval{5000};
    DetectorConfig detectors;
  };

  KernelView(Options options, Mirror* mirror, std::mutex* mirror_mutex);
  ~KernelView();
  KernelView(const KernelView&) = delete;
  KernelView& operator=(const KernelView&) = delete;

  // Discovers the namespaces and seeds the mirror from a full dump of each.
  // Throws std::runtime_error if even the daemon's own namespace cannot be
  // dumped (sock_diag unavailable: CONFIG_INET_DIAG).
  void Seed();
  void Start();
  void Stop();  // idempotent

  // Applies new detector thresholds and intervals (SIGHUP).
  void Reconfigure(const Options& options);
  // Called before a reconcile compares its dump with the mirror, without
  // the mirror's lock: applies the events still on their way (the ring
  // consumer's Flush), so that the dump is compared with a mirror as new
  // as itself. Set once, before Start().
  void set_event_drain(std::function<void()> drain) {
    event_drain_ = std::move(drain);
  }

  // Detector families, tcpstated_netns_info, reconcile corrections.
  std::vector<prometheus::MetricFamily> Metrics() const;

  // Runs one cycle now (tests and start-up).
  void RunCycle(bool full_reconcile, bool seeding);

 private:
  struct Namespace {
    NetnsHandle handle;
    int fd = -1;
    std::unique_ptr<SockDiagClient> diag;
    int missing = 0;  // consecutive discoveries that did not find it
    bool have_settings = false;
    TcpSettings settings;
    bool have_counters = false;
    TcpExtCounters counters;
    std::vector<ListenerInput> listeners;
  };

  void Run();
  void Discover();
  void ReadNamespace(Namespace& ns);
  // Entry times of CLOSE_WAIT sockets the mirror only knows from a dump,
  // from the kernel's tcp_info (Mirror::AgeCloseWaitFromKernel). Returns
  // the number of failed dumps.
  uint64_t AgeCloseWaitFromKernel();
  void CloseNamespace(Namespace& ns);

  Options options_;
  Mirror* mirror_;
  std::mutex* mirror_mutex_;
  NetnsRegistry registry_;
  OwnerResolver owners_;
  Detectors detectors_;
  std::map<uint32_t, Namespace> namespaces_;  // worker thread only

  mutable std::mutex report_mutex_;  // guards the fields below
  DetectionReport report_;
  std::array<uint64_t, kStateSlots> corrections_{};
  uint64_t diag_errors_ = 0;
  uint64_t reconciles_ = 0;
  double last_reconcile_seconds_ = 0;

  std::mutex wake_mutex_;  // guards stop_ and the pending options
  std::condition_variable wake_;
  bool stop_ = false;
  bool have_pending_options_ = false;
  Options pending_options_;
  std::function<void()> event_drain_;
  std::thread thread_;
};

}  // namespace tcpstated
