#include "tcpstated/daemon.h"

#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>
#include <sys/utsname.h>

#include <sstream>
#include <system_error>

#include "tcpstated/debug_sockets.h"
#include "tcpstated/metrics.h"
#include "tcpstated/privileges.h"
#include "tcpstated/version.h"

namespace tcpstated {
namespace {

// The consumer wakes at least every 100 ms; this much silence means stuck.
constexpr uint64_t kConsumerStallNs = 5 * kNsPerSec;

KernelView::Options KernelViewOptions(const Config& config) {
  KernelView::Options o;
  o.reconcile_interval = config.tracking.reconcile_interval;
  DetectorConfig& d = o.detectors;
  d.close_wait_leak_after_seconds =
      static_cast<double>(config.detectors.close_wait_leak_after.count()) /
      1000.0;
  d.syn_flood_half_open_ratio = config.detectors.syn_flood_half_open_ratio;
  d.synack_retransmit_rate = config.detectors.synack_retransmit_rate;
  d.port_exhaustion_ratio = config.detectors.port_exhaustion_ratio;
  d.time_wait_buckets_ratio = config.detectors.time_wait_buckets_ratio;
  d.max_series_per_metric = config.tracking.max_series_per_metric;
  // Detection should not lag the reconcile: at most every 5 s.
  o.detector_interval = std::min<std::chrono::milliseconds>(
      o.reconcile_interval, std::chrono::milliseconds(5000));
  return o;
}

// uname -r: read once, the running kernel does not change under us.
const std::string& KernelRelease() {
  static const std::string release = [] {
    struct utsname u {};
    return uname(&u) == 0 ? std::string(u.release) : std::string("unknown");
  }();
  return release;
}

}  // namespace

Daemon::Daemon(const Config& config)
    : config_(config), mirror_(config.tracking.max_tracked_sockets) {
  mirror_.set_invalid_transition_hook([](const Event& e) {
    SPDLOG_DEBUG(
        "invalid transition {} -> {} on socket id={:#x} netns={} {}:{} -> "
        "{}:{}",
        StateKernelName(e.oldstate), StateKernelName(e.newstate), e.id, e.netns,
        FormatAddress(e.saddr, e.ipv6), e.sport, FormatAddress(e.daddr, e.ipv6),
        e.dport);
    (void)e;
  });
  BpfProbe::Options options;
  options.attach = config.bpf.attach;
  options.ring_buffer_bytes = config.bpf.ring_buffer_bytes;
  options.max_tracked_sockets = config.tracking.max_tracked_sockets;
  probe_ = std::make_unique<BpfProbe>(options);
  spdlog::info("attached BPF programs in {} mode",
               AttachModeName(probe_->mode()));
  // Before any thread exists: capabilities are per thread, and every thread
  // created from here on inherits the reduced sets.
  try {
    spdlog::info("dropped capabilities; keeping {}",
                 DropCapabilitiesExcept(CapabilitiesKeptAfterAttach()));
  } catch (const std::system_error& e) {
    throw std::runtime_error(std::string("cannot drop capabilities: ") +
                             e.what());
  }
  consumer_ = std::make_unique<RingConsumer>(probe_->ring_buffer_fd(), &mirror_,
                                             &mirror_mutex_);
  consumer_->Start();
  kernel_view_ = std::make_unique<KernelView>(KernelViewOptions(config),
                                              &mirror_, &mirror_mutex_);
  kernel_view_->set_event_drain(
      [this] { consumer_->Flush(std::chrono::seconds(1)); });
  kernel_view_->Seed();
  kernel_view_->Start();
  HttpServer::Handlers handlers;
  handlers.metrics = [this] { return RenderMetrics(); };
  handlers.health = [this](std::string* detail) { return Healthy(detail); };
  handlers.debug_sockets = [this](const std::string& query, int* status) {
    DebugQuery q;
    std::string error;
    if (!ParseDebugQuery(query, &q, &error)) {
      *status = 400;
      return error + "\n";
    }
    std::lock_guard<std::mutex> lock(mirror_mutex_);
    return DebugSockets(mirror_, q, MonotonicNowNs());
  };
  WebConfig web;
  if (!config.web.config_file.empty()) {
    web = LoadWebConfig(config.web.config_file);
  }
  http_ = std::make_unique<HttpServer>(
      config.web.listen_address, config.web.telemetry_path, handlers, web);
  spdlog::info("serving metrics on {}{}", config.web.listen_address,
               config.web.telemetry_path);
}

Daemon::~Daemon() {
  // Stop serving first (handlers use everything else), then the consumer,
  // then detach.
  http_.reset();
  SPDLOG_DEBUG("HTTP server stopped");
  if (kernel_view_) kernel_view_->Stop();
  if (consumer_) consumer_->Stop();
  consumer_.reset();
  SPDLOG_DEBUG("event consumer stopped");
  probe_.reset();
  SPDLOG_DEBUG("BPF programs detached");
}

void Daemon::Reconfigure(const Config& config) {
  auto restart_needed = [](const char* key) {
    spdlog::warn("SIGHUP: {} changed; it takes effect only after a restart",
                 key);
  };
  if (config.web.listen_address != config_.web.listen_address) {
    restart_needed("web.listen_address");
  }
  if (config.web.telemetry_path != config_.web.telemetry_path) {
    restart_needed("web.telemetry_path");
  }
  if (config.web.config_file != config_.web.config_file) {
    restart_needed("web.config_file");
  }
  if (config.bpf.attach != config_.bpf.attach) restart_needed("bpf.attach");
  if (config.bpf.ring_buffer_bytes != config_.bpf.ring_buffer_bytes) {
    restart_needed("bpf.ring_buffer_bytes");
  }
  if (config.tracking.max_tracked_sockets !=
      config_.tracking.max_tracked_sockets) {
    restart_needed("tracking.max_tracked_sockets");
  }
  spdlog::default_logger()->set_level(
      spdlog::level::from_str(config.log.level));
  kernel_view_->Reconfigure(KernelViewOptions(config));
  config_ = config;
  spdlog::info("SIGHUP: configuration reloaded");
}

void Daemon::Tick() {
  uint64_t now = MonotonicNowNs();
  std::lock_guard<std::mutex> lock(mirror_mutex_);
  mirror_.Expire(now);
}

bool Daemon::Healthy(std::string* detail) const {
  uint64_t now = MonotonicNowNs();
  uint64_t beat = consumer_->heartbeat_ns();
  if (now > beat && now - beat > kConsumerStallNs) {
    *detail = "event consumer stalled for " +
              std::to_string((now - beat) / kNsPerSec) + " s";
    return false;
  }
  *detail = "ok";
  return true;
}

std::string Daemon::RenderMetrics() const {
  Snapshot s;
  {
    std::lock_guard<std::mutex> lock(mirror_mutex_);
    s.sockets.assign(mirror_.counts().begin(), mirror_.counts().end());
    s.invalid = mirror_.invalid_transitions();
    s.durations = mirror_.durations();
    s.mirror = mirror_.stats();
  }
  bool ok = true;
  s.kernel = probe_->ReadCounters(&ok);
  if (!ok) spdlog::warn("could not read some in-kernel counters");
  s.decode_errors = consumer_->decode_errors();
  s.version = kVersion;
  s.attach = AttachModeName(probe_->mode());
  s.kernel_release = KernelRelease();
  std::sort(s.sockets.begin(), s.sockets.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<prometheus::MetricFamily> families = BuildMetrics(s);
  for (auto& f : kernel_view_->Metrics()) families.push_back(std::move(f));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace tcpstated
