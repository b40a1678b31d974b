// Wires the pieces together: the BPF probe, the ring-buffer consumer, the
// mirror and its lock, and the HTTP endpoint with its routes.
//
// Thread-safety: construct, Tick and destroy from the main thread; the HTTP
// handlers run on the HTTP server's threads and the consumer on its own.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tcpstated/bpf_probe.h"
#include "tcpstated/config.h"
#include "tcpstated/connection_outcomes.h"
#include "tcpstated/http_server.h"
#include "tcpstated/kernel_view.h"
#include "tcpstated/metrics.h"
#include "tcpstated/mirror.h"
#include "tcpstated/privileged_runner.h"
#include "tcpstated/ring_consumer.h"
#include "tcpstated/state_store.h"

namespace tcpstated {

class Daemon {
 public:
  // Reads the web config and binds the listen address first (so a port in
  // use fails before any BPF program is loaded), then loads and attaches,
  // starts the consumer, seeds the mirror from the kernel's socket dump, and
  // starts serving: when it returns the daemon is ready. Throws ConfigError,
  // ProbeError, HttpError or std::runtime_error (one actionable line) on
  // start-up failure.
  explicit Daemon(const Config& config);
  ~Daemon();

  // Periodic work from the main loop: ageing of inferred TIME_WAIT, the
  // connect-failure and reset detections.
  void Tick();

  // Whether the event consumer is alive (advanced within the last few
  // seconds): the systemd watchdog and /healthz both ask this.
  bool Healthy(std::string* detail) const;

  std::string RenderMetrics() const;
  // /api/v1/state (state_api.h).
  std::string RenderState(const std::string& telemetry_path,
                          bool debug_sockets) const;

  // SIGHUP: applies what can change at run time (log level, detector
  // thresholds, reconcile interval, series bound, and the web config file's
  // users, certificate and TLS settings) and warns about settings that need
  // a restart. The caller has already validated `config`. A web config
  // that cannot be used is refused with a log line naming the file or key,
  // and the running one stays.
  void Reconfigure(const Config& config);
  AttachMode attach_mode() const { return probe_->mode(); }

 private:
  // What a scrape and the state API report, copied under the mirror's lock.
  Snapshot TakeSnapshot() const;
  std::vector<HttpRoute> Routes() const;
  HttpResponse DebugSocketsResponse(const HttpRequest& request) const;
  void ReloadWebConfig(const std::string& path);

  // Connect failures and resets (connection_outcomes.h): the books are fed
  // by the mirror under its lock; Tick evaluates them.
  void EvaluateOutcomes();
  // Writes the ages worth keeping across a restart (state_store.h).
  void SaveState();

  Config config_;
  mutable std::mutex mirror_mutex_;
  ConnectionOutcomes outcomes_;  // outlives mirror_, which points to it
  Mirror mirror_;
  OutcomeDetectors outcome_detectors_;  // main thread (Tick)
  mutable std::mutex outcome_mutex_;    // guards outcome_report_
  OutcomeReport outcome_report_;
  std::unique_ptr<BpfProbe> probe_;
  std::unique_ptr<RingConsumer> consumer_;
  std::unique_ptr<KernelView> kernel_view_;
  std::unique_ptr<PrivilegedRunner> privileged_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<StateStore> state_store_;
  uint64_t last_state_save_ns_ = 0;  // main thread (Tick)
};

}  // namespace tcpstated
