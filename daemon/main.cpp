// tcpstated: parse the configuration, set up logging, load and attach,
// serve, wait for signals. Nothing else happens here.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>

#include "tcpstated/command_line.h"
#include "tcpstated/config.h"
#include "tcpstated/config_check.h"
#include "tcpstated/daemon.h"
#include "tcpstated/logging.h"
#include "tcpstated/version.h"

namespace {

// --config.check: the configuration as a start would check it, without
// the kernel or the network (see config_check.h). The exit status.
int CheckConfig(const tcpstated::Config& config) {
  try {
    tcpstated::CheckConfigForStart(config);
    std::printf("tcpstated: configuration OK\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tcpstated: %s\n", e.what());
    return 2;
  }
}

// Signals are taken synchronously by Serve; they are blocked before any
// thread starts so that every thread inherits the mask.
sigset_t BlockSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// Ticks the daemon every second until SIGINT or SIGTERM; SIGHUP reloads the
// configuration from the same command line.
void Serve(tcpstated::Daemon& daemon, const sigset_t& signals, int argc,
           char** argv) {
  uint64_t watchdog_usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
  for (;;) {
    timespec timeout{1, 0};
    int sig = sigtimedwait(&signals, nullptr, &timeout);
    if (sig == SIGINT || sig == SIGTERM) {
      spdlog::info("received {}, stopping", strsignal(sig));
      return;
    }
    if (sig == SIGHUP) {
      // The same flags over a re-read file; an invalid file changes nothing.
      try {
        tcpstated::CommandLine reloaded =
            tcpstated::ParseCommandLine(argc, argv);
        daemon.Reconfigure(reloaded.config);
      } catch (const tcpstated::ConfigError& e) {
        spdlog::error(
            "SIGHUP: configuration refused, keeping the running "
            "one: {}",
            e.what());
      }
    }
    daemon.Tick();
    std::string detail;
    if (watchdog && daemon.Healthy(&detail)) sd_notify(0, "WATCHDOG=1");
  }
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
  tcpstated::SetUpLogging(cli.config);
  if (cli.config_check) return CheckConfig(cli.config);

  const sigset_t signals = BlockSignals();
  std::unique_ptr<tcpstated::Daemon> daemon;
  try {
    daemon = std::make_unique<tcpstated::Daemon>(cli.config);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  spdlog::info("tcpstated {} ready", tcpstated::kVersion);
  sd_notify(0, "READY=1");
  Serve(*daemon, signals, argc, argv);
  sd_notify(0, "STOPPING=1");
  daemon.reset();
  spdlog::info("stopped");
  return 0;
}
