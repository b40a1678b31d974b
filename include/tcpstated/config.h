// Daemon configuration: the Config value, its YAML text (through the strict
// walk of yaml_fields.h) and the validation shared with the command-line
// flags (command_line.h; reading files is config_files.h). Parsing is
// strict: every problem is a ConfigError whose message names the key (or
// flag) and what is wrong with it, in one line.
//
// Thread-safety: the functions are pure; a Config is a plain value.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace tcpstated {

// One line naming the key and the problem. Callers print what() and exit 2.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class AttachMode { kAuto, kTpBtf, kTracepoint };
enum class LogFormat { kText, kJson };

struct Config {
  struct Web {
    std::string listen_address = ":9640";
    std::string telemetry_path = "/metrics";
    std::string config_file;  // exporter-toolkit style TLS / basic auth
    // /debug/sockets lists every connection of the host (pid, process,
    // 4-tuple, namespace): off unless asked for, and then served only to
    // clients on the loopback interface.
    bool debug_sockets = false;
    // Host header values (without the port, lower case) the endpoint
    // answers; empty: any. Set it to stop DNS rebinding, where a web page
    // makes a browser on the host send requests to 127.0.0.1 under the
    // page's own name.
    std::vector<std::string> allowed_hosts;
  } web;
  struct Log {
    std::string level = "info";  // trace|debug|info|warn|error
    LogFormat format = LogFormat::kText;
  } log;
  struct Bpf {
    AttachMode attach = AttachMode::kAuto;
    uint64_t ring_buffer_bytes = 4u << 20;  // each ring's; power of two
    // Rings the CPUs share by CPU number modulo the count (at most one per
    // CPU is created); 1..1024, at most 4 GiB of rings in all. One by
    // default: two rings did not pay on a quiet 2-CPU machine
    // (docs/performance.md §22); hosts with many CPUs may measure otherwise.
    uint64_t ring_buffers = 1;
  } bpf;
  struct Tracking {
    uint64_t max_tracked_sockets = 1000000;
    // How often each namespace is checked against the kernel: its socket
    // totals at least this often (every detector cycle), and a dump of a
    // namespace that disagrees.
    std::chrono::milliseconds reconcile_interval{30000};
    // The safety dump of every namespace when nothing disagreed and no
    // event was lost. Unset: 10 min, or reconcile_interval if longer
    // (FullReconcileInterval); set: at least reconcile_interval.
    std::optional<std::chrono::milliseconds> full_reconcile_interval;
    uint64_t max_series_per_metric = 50;
  } tracking;
  struct Detectors {
    std::chrono::milliseconds close_wait_leak_after{60000};
    double syn_flood_half_open_ratio = 0.5;
    double synack_retransmit_rate = 100;  // per second, per listener
    double port_exhaustion_ratio = 0.8;
    double time_wait_buckets_ratio = 0.8;
    double connect_failure_rate = 1;  // per second, per destination
    double reset_rate = 10;           // per second, per port
    std::chrono::milliseconds fin_wait2_stuck_after{300000};
    std::chrono::milliseconds idle_after{3600000};
    uint64_t dead_peer_retries = 3;  // unanswered probes / retransmissions
  } detectors;
  struct State {
    // Where the ages the daemon learned are kept across a restart
    // (state_store.h); empty: nowhere. An absolute path.
    std::string directory = "/var/lib/tcpstated";
    // How often it is saved (and at shutdown): what a crash can lose.
    std::chrono::milliseconds save_interval{60000};
  } state;
};

// Parses a Prometheus-style duration ("500ms", "30s", "5m", "1h", "1h30m").
// Throws ConfigError (naming `key`) on anything else, including negative or
// empty values. Zero is accepted here; callers decide whether it is allowed.
std::chrono::milliseconds ParseDuration(const std::string& key,
                                        const std::string& text);

// Parses YAML text into a Config starting from the defaults. Unknown keys,
// wrong types and out-of-range values throw ConfigError naming the key
// (dotted path, e.g. "bpf.ring_buffer_bytes").
Config ParseConfigYaml(const std::string& yaml_text);

// Validates cross-field constraints and value ranges of an assembled Config
// (after flags were applied). Throws ConfigError naming the key.
void ValidateConfig(const Config& config);

// The safety interval in effect: tracking.full_reconcile_interval, or when
// unset 10 min (kDefaultFullReconcileInterval), never below
// reconcile_interval.
inline constexpr std::chrono::milliseconds kDefaultFullReconcileInterval{
    600000};
std::chrono::milliseconds FullReconcileInterval(
    const Config::Tracking& tracking);

const char* AttachModeName(AttachMode mode);
const char* LogFormatName(LogFormat format);

// One field each, shared by the YAML keys and the flags so that the same
// value gets the same message whichever way it came; `key` is what the
// message names ("web.listen_address" or "--web.listen-address"). Each
// throws ConfigError.
// "[host]:port" as ParseListenAddress (listen_address.h) reads it, port
// 1-65535.
void ValidateListenAddress(const std::string& key, const std::string& text);
// A plain URL path starting with "/", not "/" or "/healthz".
void ValidateTelemetryPath(const std::string& key, const std::string& path);
// trace, debug, info, warn or error.
void ValidateLogLevel(const std::string& key, const std::string& level);
LogFormat ParseLogFormat(const std::string& key, const std::string& text);
AttachMode ParseAttachMode(const std::string& key, const std::string& text);

}  // namespace tcpstated
