#include "tcpstated/daemon.h"

#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>
#include <sys/utsname.h>

#include <sstream>
#include <system_error>

#include "tcpstated/config_files.h"
#include "tcpstated/debug_sockets.h"
#include "tcpstated/http_metrics.h"
#include "tcpstated/metrics.h"
#include "tcpstated/monotonic_clock.h"
#include "tcpstated/privileges.h"
#include "tcpstated/state_api.h"
#include "tcpstated/version.h"
#include "tcpstated/web_assets.h"
#include "tcpstated/web_ui.h"

namespace tcpstated {
namespace {

// The consumer wakes at least every 100 ms; this much silence means stuck.
constexpr uint64_t kConsumerStallNs = 5 * kNsPerSec;

KernelView::Options KernelViewOptions(const Config& config) {
  KernelView::Options o;
  o.reconcile_interval = config.tracking.reconcile_interval;
  o.full_reconcile_interval = FullReconcileInterval(config.tracking);
  DetectorConfig& d = o.detectors;
  d.close_wait_leak_after_seconds =
      static_cast<double>(config.detectors.close_wait_leak_after.count()) /
      1000.0;
  d.syn_flood_half_open_ratio = config.detectors.syn_flood_half_open_ratio;
  d.synack_retransmit_rate = config.detectors.synack_retransmit_rate;
  d.port_exhaustion_ratio = config.detectors.port_exhaustion_ratio;
  d.time_wait_buckets_ratio = config.detectors.time_wait_buckets_ratio;
  d.max_series_per_metric = config.tracking.max_series_per_metric;
  o.fin_wait2.stuck_after_seconds =
      static_cast<double>(config.detectors.fin_wait2_stuck_after.count()) /
      1000.0;
  o.fin_wait2.max_series_per_metric = d.max_series_per_metric;
  o.peer_liveness.idle_after_seconds =
      static_cast<double>(config.detectors.idle_after.count()) / 1000.0;
  o.peer_liveness.dead_peer_retries =
      static_cast<unsigned>(config.detectors.dead_peer_retries);
  o.peer_liveness.max_series_per_metric = d.max_series_per_metric;
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

OutcomeConfig OutcomeOptions(const Config& config) {
  OutcomeConfig o;
  o.connect_failure_rate = config.detectors.connect_failure_rate;
  o.reset_rate = config.detectors.reset_rate;
  o.max_series_per_metric = config.tracking.max_series_per_metric;
  return o;
}

// Each invalid transition, reconcile correction and resync, with its socket,
// at debug level: what an engineer needs to find the path behind a counter.
void LogMirrorAnomaliesAtDebug(Mirror* mirror) {
  mirror->set_invalid_transition_hook([](const Event& e) {
    SPDLOG_DEBUG(
        "invalid transition {} -> {} on socket id={:#x} netns={} {}:{} -> "
        "{}:{}",
        StateKernelName(e.oldstate), StateKernelName(e.newstate), e.id, e.netns,
        FormatAddress(e.saddr, e.ipv6), e.sport, FormatAddress(e.daddr, e.ipv6),
        e.dport);
    (void)e;
  });
  mirror->set_correction_hook([](const Mirror::Correction& c) {
    const SocketEntry& s = *c.entry;
    const bool v6 = (s.flags & kEntryIpv6) != 0;
    SPDLOG_DEBUG(
        "reconcile {} socket id={:#x} netns={} {}:{} -> {}:{}: mirror {}{}, "
        "kernel {} (entered {} ns before now)",
        c.kind, s.id, s.netns, FormatAddress(s.saddr, v6), s.sport,
        FormatAddress(s.daddr, v6), s.dport, StateKernelName(c.mirror_state),
        (s.flags & kEntryTimewaitSock) ? " (timewait)" : "",
        StateKernelName(c.kernel_state),
        MonotonicNowNs() - std::min(MonotonicNowNs(), s.entered_ns));
    (void)s;
    (void)v6;
  });
  mirror->set_resync_hook([](const Event& e, TcpState had) {
    SPDLOG_DEBUG(
        "resync socket id={:#x} netns={} {}:{} -> {}:{}: event {} -> {}, "
        "mirror had {}",
        e.id, e.netns, FormatAddress(e.saddr, e.ipv6), e.sport,
        FormatAddress(e.daddr, e.ipv6), e.dport, StateKernelName(e.oldstate),
        StateKernelName(e.newstate), StateKernelName(had));
    (void)e;
    (void)had;
  });
}

}  // namespace

Daemon::Daemon(const Config& config)
    : config_(config),
      outcomes_(config.tracking.max_series_per_metric),
      mirror_(config.tracking.max_tracked_sockets),
      outcome_detectors_(OutcomeOptions(config)) {
  mirror_.set_observer(&outcomes_);
  // The listen address before anything is loaded: a port in use is one
  // line, and nothing was attached for nothing.
  WebConfig web;
  if (!config.web.config_file.empty()) {
    web = LoadWebConfig(config.web.config_file);
  }
  HttpLimits limits;
  limits.allowed_hosts = config.web.allowed_hosts;
  http_ = std::make_unique<HttpServer>(config.web.listen_address, web, limits);
  LogMirrorAnomaliesAtDebug(&mirror_);
  BpfProbe::Options options;
  options.attach = config.bpf.attach;
  options.ring_buffer_bytes = config.bpf.ring_buffer_bytes;
  options.ring_buffers = static_cast<uint32_t>(config.bpf.ring_buffers);
  options.max_tracked_sockets = config.tracking.max_tracked_sockets;
  probe_ = std::make_unique<BpfProbe>(options);
  spdlog::info("attached BPF programs in {} mode, {} event ring(s) of {} bytes",
               AttachModeName(probe_->mode()), probe_->ring_buffer_fds().size(),
               config.bpf.ring_buffer_bytes);
  // Before any thread exists: capabilities are per thread, and every thread
  // created from here on inherits the reduced sets (the HTTP threads then
  // drop the rest).
  try {
    spdlog::info("dropped capabilities; keeping {}",
                 DropCapabilitiesExcept(CapabilitiesKeptAfterAttach()));
  } catch (const std::system_error& e) {
    throw std::runtime_error(std::string("cannot drop capabilities: ") +
                             e.what());
  }
  consumer_ = std::make_unique<RingConsumer>(probe_->ring_buffer_fds(),
                                             &mirror_, &mirror_mutex_);
  consumer_->Start();
  kernel_view_ = std::make_unique<KernelView>(KernelViewOptions(config),
                                              &mirror_, &mirror_mutex_);
  kernel_view_->set_event_drain(
      [this] { consumer_->Flush(std::chrono::seconds(1)); });
  state_store_ = std::make_unique<StateStore>(config.state.directory);
  kernel_view_->set_saved_sockets(state_store_->Load());
  // Lost or missed events ask the kernel view for a reconcile of every
  // namespace (the drift check can only see a namespace's totals).
  kernel_view_->set_loss_counter([this] {
    KernelCounters k = probe_->ReadCounters();
    uint64_t n = 0;
    for (uint64_t v : k.lost) n += v;
    for (uint64_t v : k.missed) n += v;
    return n;
  });
  kernel_view_->Seed();
  last_state_save_ns_ = MonotonicNowNs();
  kernel_view_->Start();
  privileged_ = std::make_unique<PrivilegedRunner>();
  http_->Start(Routes());
  spdlog::info("serving metrics on {}{}{}", config.web.listen_address,
               config.web.telemetry_path,
               config.web.debug_sockets
                   ? " and /debug/sockets to loopback clients"
                   : "");
}

std::vector<HttpRoute> Daemon::Routes() const {
  std::vector<HttpRoute> routes;
  const std::string telemetry_path = config_.web.telemetry_path;
  routes.push_back({telemetry_path, false, [this](const HttpRequest&) {
                      HttpResponse r;
                      r.content_type =
                          "text/plain; version=0.0.4; charset=utf-8";
                      r.body = RenderMetrics();
                      return r;
                    }});
  routes.push_back({"/healthz", false, [this](const HttpRequest&) {
                      HttpResponse r;
                      r.status = Healthy(&r.body) ? 200 : 503;
                      r.body += "\n";
                      return r;
                    }});
  const bool debug = config_.web.debug_sockets;
  // The live page, its assets and its JSON (web_ui.h): aggregates and
  // owners only, so they follow /metrics' rules, not /debug/sockets'.
  auto page = [this, telemetry_path, debug](const HttpRequest& req) {
    WebUiResponse page;
    auto state = [&] { return RenderState(telemetry_path, debug); };
    HttpResponse r;
    if (!ServeWebUi(req.path, state, &page)) {
      r.status = 404;
      r.body = "not found\n";
      return r;
    }
    r.content_type = std::move(page.content_type);
    r.body = std::move(page.body);
    r.extra_headers = std::move(page.headers);
    return r;
  };
  routes.push_back({kStateApiPath, false, page});
  for (size_t i = 0; i < kWebAssetCount; ++i) {
    routes.push_back({std::string(kWebAssets[i].path), false, page});
  }
  if (debug) {
    // Every connection of the host, with pids and process names: loopback
    // clients only, on top of the endpoint's TLS and basic auth.
    routes.push_back({"/debug/sockets", true, [this](const HttpRequest& req) {
                        return DebugSocketsResponse(req);
                      }});
  }
  return routes;
}

HttpResponse Daemon::DebugSocketsResponse(const HttpRequest& request) const {
  HttpResponse r;
  const size_t q = request.target.find('?');
  DebugQuery query;
  std::string error;
  if (!ParseDebugQuery(
          q == std::string::npos ? std::string() : request.target.substr(q + 1),
          &query, &error)) {
    r.status = 400;
    r.body = error + "\n";
    return r;
  }
  const DebugSnapshot snapshot =
      CollectDebugSockets(mirror_, mirror_mutex_, query);
  r.content_type = "application/json";
  r.body = DebugSocketsJson(snapshot, MonotonicNowNs());
  return r;
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
  // The mirror is final now: what a restart would otherwise forget.
  try {
    if (probe_) SaveState();
  } catch (const std::exception& e) {
    spdlog::warn("state file not saved at shutdown: {}", e.what());
  }
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
  } else {
    ReloadWebConfig(config.web.config_file);
  }
  if (config.web.allowed_hosts != config_.web.allowed_hosts) {
    restart_needed("web.allowed_hosts");
  }
  if (config.web.debug_sockets != config_.web.debug_sockets) {
    restart_needed("web.debug_sockets");
  }
  if (config.bpf.attach != config_.bpf.attach) restart_needed("bpf.attach");
  if (config.bpf.ring_buffer_bytes != config_.bpf.ring_buffer_bytes) {
    restart_needed("bpf.ring_buffer_bytes");
  }
  if (config.bpf.ring_buffers != config_.bpf.ring_buffers) {
    restart_needed("bpf.ring_buffers");
  }
  if (config.tracking.max_tracked_sockets !=
      config_.tracking.max_tracked_sockets) {
    restart_needed("tracking.max_tracked_sockets");
  }
  if (config.state.directory != config_.state.directory) {
    restart_needed("state.directory");
  }
  spdlog::default_logger()->set_level(
      spdlog::level::from_str(config.log.level));
  kernel_view_->Reconfigure(KernelViewOptions(config));
  outcome_detectors_.set_config(OutcomeOptions(config));
  // Settings that need a restart keep their running values: the routes
  // read them.
  const Config::Web running_web = config_.web;
  config_ = config;
  config_.web = running_web;
  spdlog::info("SIGHUP: configuration reloaded");
}

void Daemon::ReloadWebConfig(const std::string& path) {
  if (path.empty()) return;
  try {
    http_->Reload(LoadWebConfig(path));
    spdlog::info("SIGHUP: web configuration {} reloaded", path);
  } catch (const std::exception& e) {
    spdlog::error(
        "SIGHUP: web configuration refused, keeping the running one: {}",
        e.what());
  }
}

void Daemon::Tick() {
  {
    uint64_t now = MonotonicNowNs();
    std::lock_guard<std::mutex> lock(mirror_mutex_);
    mirror_.Expire(now);
  }
  EvaluateOutcomes();
  const uint64_t now = MonotonicNowNs();
  const auto interval = std::chrono::duration_cast<std::chrono::nanoseconds>(
      config_.state.save_interval);
  if (now - last_state_save_ns_ >= static_cast<uint64_t>(interval.count())) {
    last_state_save_ns_ = now;
    SaveState();
  }
}

void Daemon::SaveState() {
  if (!state_store_ || !state_store_->enabled()) return;
  std::vector<SavedSocket> sockets;
  {
    std::lock_guard<std::mutex> lock(mirror_mutex_);
    sockets = mirror_.SavedSockets(kMaxStateEntries,
                                   probe_->mode() == AttachMode::kTpBtf);
  }
  state_store_->Save(std::move(sockets), MonotonicNowNs());
}

void Daemon::EvaluateOutcomes() {
  std::unique_ptr<ConnectBook> connects;
  std::unique_ptr<ResetBook> resets;
  try {
    // Copies (bounded by the books' key limits; each book is two flat
    // vectors, so a copy is a few allocations and memcpys, not one per
    // key): the evaluation then runs without holding up the event
    // consumer.
    std::lock_guard<std::mutex> lock(mirror_mutex_);
    connects = std::make_unique<ConnectBook>(outcomes_.connects());
    resets = std::make_unique<ResetBook>(outcomes_.resets());
  } catch (const std::bad_alloc&) {
    return;  // the previous report stays
  }
  OutcomeReport report = outcome_detectors_.Evaluate(
      *connects, *resets,
      static_cast<double>(MonotonicNowNs()) / static_cast<double>(kNsPerSec));
  for (const std::string& line : report.started) spdlog::warn("{}", line);
  for (const std::string& line : report.cleared) spdlog::info("{}", line);
  std::lock_guard<std::mutex> lock(outcome_mutex_);
  outcome_report_ = std::move(report);
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

Snapshot Daemon::TakeSnapshot() const {
  Snapshot s;
  {
    std::lock_guard<std::mutex> lock(mirror_mutex_);
    s.sockets.assign(mirror_.counts().begin(), mirror_.counts().end());
    s.invalid = mirror_.invalid_transitions();
    s.durations = mirror_.durations();
    s.mirror = mirror_.stats();
  }
  bool ok = true;
  // bpf() reads may need a capability this (HTTP worker) thread does not
  // have.
  privileged_->Run([&] { s.kernel = probe_->ReadCounters(&ok); });
  if (!ok) spdlog::warn("could not read some in-kernel counters");
  s.decode_errors = consumer_->decode_errors();
  s.unmerged_events = consumer_->unmerged_events();
  s.version = kVersion;
  s.attach = AttachModeName(probe_->mode());
  s.kernel_release = KernelRelease();
  std::sort(s.sockets.begin(), s.sockets.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return s;
}

std::string Daemon::RenderMetrics() const {
  std::vector<prometheus::MetricFamily> families = BuildMetrics(TakeSnapshot());
  for (auto& f : kernel_view_->Metrics()) families.push_back(std::move(f));
  {
    std::lock_guard<std::mutex> lock(outcome_mutex_);
    for (const auto& f : outcome_report_.families) families.push_back(f);
  }
  for (auto& f : HttpServerMetrics(*http_)) families.push_back(std::move(f));
  for (auto& f : state_store_->Metrics()) families.push_back(std::move(f));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

std::string Daemon::RenderState(const std::string& telemetry_path,
                                bool debug_sockets) const {
  StateInputs in;
  in.snapshot = TakeSnapshot();
  KernelView::Status status = kernel_view_->status();
  in.report = std::move(status.report);
  in.reconciles = status.reconciles;
  in.now_ns = MonotonicNowNs();
  if (status.last_reconcile_ns != 0 && in.now_ns >= status.last_reconcile_ns) {
    in.last_reconcile_age_seconds =
        static_cast<double>(in.now_ns - status.last_reconcile_ns) / 1e9;
  }
  in.last_reconcile_dump_seconds = status.last_reconcile_seconds;
  in.sock_diag_errors = status.diag_errors;
  in.debug_sockets = debug_sockets;
  in.telemetry_path = telemetry_path;
  return BuildStateJson(in);
}

}  // namespace tcpstated
