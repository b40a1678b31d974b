// libFuzzer target: the YAML configuration file, the web configuration file
// and Prometheus durations (tcpstated/config.h, tcpstated/web_config.h).
//
// The contract under test: ParseConfigYaml, ParseWebConfig and ParseDuration
// throw nothing
// but tcpstated::ConfigError, whatever the text (apart from std::bad_alloc).
// Any other exception escapes this function and aborts the process, which
// libFuzzer reports as a crash. A Config that parses must also pass
// ValidateConfig again, and a duration must be non-negative and parse the
// same way twice.
//
// A past finding (yaml-cpp 0.7.0, Debian 12; upstream jbeder/yaml-cpp#1040):
// on some malformed streams, "," alone for one, YAML::LoadAll never returns
// and allocates until memory runs out. ParseConfigYaml now bounds the
// document loop itself and refuses such input with a ConfigError; should
// that regress, libFuzzer's timeout and RSS limit report it.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tcpstated/config.h"
#include "tcpstated/web_config.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_config: invariant violated: %s\n", what);
  std::abort();
}

void CheckOneLine(const tcpstated::ConfigError& error) {
  // The header promises one line naming the key: a newline in what() would
  // break the daemon's one-line start-up errors.
  const std::string message = error.what();
  if (message.empty()) Fail("empty ConfigError message");
  if (message.find('\n') != std::string::npos) {
    Fail("ConfigError message spans lines");
  }
}

void FuzzYaml(const std::string& text) {
  tcpstated::Config config;
  try {
    config = tcpstated::ParseConfigYaml(text);
  } catch (const tcpstated::ConfigError& error) {
    CheckOneLine(error);
    return;
  }
  // Outside the try: a ConfigError here means ParseConfigYaml returned a
  // Config that its own validation refuses.
  tcpstated::ValidateConfig(config);
  if (config.tracking.max_tracked_sockets == 0) Fail("max_tracked_sockets 0");
  if (config.tracking.reconcile_interval.count() <= 0) {
    Fail("reconcile_interval <= 0");
  }
}

void FuzzWebConfig(const std::string& text) {
  tcpstated::WebConfig web;
  try {
    web = tcpstated::ParseWebConfig(text, "/etc/tcpstated");
  } catch (const tcpstated::ConfigError& error) {
    CheckOneLine(error);
    if (std::string(error.what()).rfind("web config: ", 0) != 0) {
      Fail("ParseWebConfig error does not start with \"web config: \"");
    }
    return;
  }
  if (web.tls && (web.cert_file.empty() || web.key_file.empty())) {
    Fail("TLS accepted without a certificate and a key");
  }
  for (const auto& [user, hash] : web.users) {
    if (user.empty() || hash.rfind("$2", 0) != 0) Fail("bad user accepted");
  }
}

void FuzzDuration(const std::string& text) {
  std::chrono::milliseconds value{};
  try {
    value = tcpstated::ParseDuration("fuzz.duration", text);
  } catch (const tcpstated::ConfigError& error) {
    CheckOneLine(error);
    if (std::string(error.what()).rfind("fuzz.duration: ", 0) != 0) {
      Fail("ParseDuration error does not start with the key");
    }
    return;
  }
  if (value.count() < 0) Fail("negative duration accepted");
  if (tcpstated::ParseDuration("fuzz.duration", text) != value) {
    Fail("ParseDuration is not deterministic");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  FuzzYaml(text);
  FuzzWebConfig(text);
  FuzzDuration(text);
  // Durations are short: also try the first line alone, so that a YAML seed
  // starting with a duration exercises the unit parser.
  const size_t newline = text.find('\n');
  if (newline != std::string::npos) FuzzDuration(text.substr(0, newline));
  return 0;
}
