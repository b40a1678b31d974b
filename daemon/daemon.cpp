#include "tcpstated/daemon.h"

#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "tcpstated/metrics.h"
#include "tcpstated/version.h"

namespace tcpstated {
namespace {

// The consumer wakes at least every 100 ms; this much silence means stuck.
constexpr uint64_t kConsumerStallNs = 5 * kNsPerSec;

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
  consumer_ = std::make_unique<RingConsumer>(probe_->ring_buffer_fd(), &mirror_,
                                             &mirror_mutex_);
  consumer_->Start();
  HttpServer::Handlers handlers;
  handlers.metrics = [this] { return RenderMetrics(); };
  handlers.health = [this](std::string* detail) { return Healthy(detail); };
  http_ = std::make_unique<HttpServer>(config.web.listen_address,
                                       config.web.telemetry_path, handlers);
  spdlog::info("serving metrics on {}{}", config.web.listen_address,
               config.web.telemetry_path);
}

Daemon::~Daemon() {
  // Stop serving first (handlers use everything else), then the consumer,
  // then detach.
  http_.reset();
  SPDLOG_DEBUG("HTTP server stopped");
  if (consumer_) consumer_->Stop();
  consumer_.reset();
  SPDLOG_DEBUG("event consumer stopped");
  probe_.reset();
  SPDLOG_DEBUG("BPF programs detached");
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
  std::sort(s.sockets.begin(), s.sockets.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, BuildMetrics(s));
  return out.str();
}

}  // namespace tcpstated
