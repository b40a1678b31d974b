// tcpstated: parse the configuration, set up logging, load and attach,
// serve, wait for signals. Nothing else happens here.
#include <signal.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>

#include "tcpstated/bpf_probe.h"
#include "tcpstated/command_line.h"
#include "tcpstated/config.h"
#include "tcpstated/daemon.h"
#include "tcpstated/version.h"

namespace {

// spdlog's %v is not JSON-escaped; this flag (%*) is.
class JsonEscapedMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    for (char c : msg.payload) {
      switch (c) {
        case '"':
          dest.append(std::string_view("\\\""));
          break;
        case '\\':
          dest.append(std::string_view("\\\\"));
          break;
        case '\n':
          dest.append(std::string_view("\\n"));
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            int n = std::snprintf(buf, sizeof(buf), "\\u%04x", c);
            dest.append(buf, buf + n);
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

void SetUpLogging(const tcpstated::Config& config) {
  auto logger = std::make_shared<spdlog::logger>(
      "tcpstated", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  // journald stamps every line itself; a second timestamp is noise.
  const bool journal = std::getenv("JOURNAL_STREAM") != nullptr;
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<JsonEscapedMessage>('*');
  if (config.log.format == tcpstated::LogFormat::kJson) {
    formatter->set_pattern(
        journal ? R"({"level":"%l","msg":"%*"})"
                : R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","msg":"%*"})");
  } else {
    formatter->set_pattern(journal ? "level=%l msg=\"%*\""
                                   : "ts=%Y-%m-%dT%H:%M:%S.%e%z level=%l "
                                     "msg=\"%*\"");
  }
  logger->set_formatter(std::move(formatter));
  logger->set_level(spdlog::level::from_str(config.log.level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace

int main(int argc, char** argv) {
  tcpstated::CommandLine cli;
  try {
    cli = tcpstated::ParseCommandLine(argc, argv);
  } catch (const tcpstated::ConfigError& e) {
    std::fprintf(stderr, "tcpstated: %s\n", e.what());
    return 2;
  }
  if (cli.show_help) {
    std::fputs(cli.help_text.c_str(), stdout);
    return 0;
  }
  if (cli.show_version) {
    std::fputs(tcpstated::kVersionText, stdout);
    return 0;
  }
  SetUpLogging(cli.config);

  if (cli.config_check) {
    // Also proves the BPF programs load and attach here; nothing else starts.
    try {
      tcpstated::BpfProbe::Options options;
      options.attach = cli.config.bpf.attach;
      options.ring_buffer_bytes = cli.config.bpf.ring_buffer_bytes;
      options.max_tracked_sockets = cli.config.tracking.max_tracked_sockets;
      tcpstated::BpfProbe probe(options);
      std::printf(
          "tcpstated: configuration OK; BPF programs load and attach "
          "in %s mode\n",
          tcpstated::AttachModeName(probe.mode()));
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tcpstated: %s\n", e.what());
      return 2;
    }
  }

  // Signals are taken synchronously by the main loop below; block them
  // before any thread starts so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<tcpstated::Daemon> daemon;
  try {
    daemon = std::make_unique<tcpstated::Daemon>(cli.config);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  spdlog::info("tcpstated {} ready", tcpstated::kVersion);
  sd_notify(0, "READY=1");

  uint64_t watchdog_usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
  for (;;) {
    timespec timeout{1, 0};
    int sig = sigtimedwait(&signals, nullptr, &timeout);
    if (sig == SIGINT || sig == SIGTERM) {
      spdlog::info("received {}, stopping", strsignal(sig));
      break;
    }
    if (sig == SIGHUP) {
      // The same flags over a re-read file; an invalid file changes nothing.
      try {
        tcpstated::CommandLine reloaded =
            tcpstated::ParseCommandLine(argc, argv);
        daemon->Reconfigure(reloaded.config);
      } catch (const tcpstated::ConfigError& e) {
        spdlog::error(
            "SIGHUP: configuration refused, keeping the running "
            "one: {}",
            e.what());
      }
    }
    daemon->Tick();
    std::string detail;
    if (watchdog && daemon->Healthy(&detail)) sd_notify(0, "WATCHDOG=1");
  }
  sd_notify(0, "STOPPING=1");
  daemon.reset();
  spdlog::info("stopped");
  return 0;
}
