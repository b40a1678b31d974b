// libFuzzer target: the YAML configuration file and Prometheus durations
// (tcpstated/config.h).
//
// The contract under test: ParseConfigYaml and ParseDuration throw nothing
// but tcpstated::ConfigError, whatever the text (apart from std::bad_alloc).
// Any other exception escapes this function and aborts the process, which
// libFuzzer reports as a crash. A Config that parses must also pass
// ValidateConfig again, and a duration must be non-negative and parse the
// same way twice.
//
// Known finding (yaml-cpp 0.7.0, Debian 12; upstream jbeder/yaml-cpp#1040,
// fixed by PR #1318/#1319): on some malformed streams, "," alone for one,
// YAML::LoadAll never returns and allocates until memory runs out. Rather
// than wait for the timeout or the RSS limit, the harness first runs the
// same document loop with a bound and aborts with a clear message; with
// FUZZ_LENIENT=1 it skips such inputs instead. ParseConfigYaml now runs the
// same bounded check itself and refuses such input with a ConfigError.

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "tcpstated/config.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_config: invariant violated: %s\n", what);
  std::abort();
}

bool Lenient() {
  static const bool lenient = [] {
    const char* env = std::getenv("FUZZ_LENIENT");
    return env != nullptr && env[0] == '1';
  }();
  return lenient;
}

class IgnoreEvents : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// Runs the loop of YAML::LoadAll (HandleNextDocument until false) with a
// bound: every real document consumes input, so more documents than bytes
// means the parser is stuck on a token it never consumes.
bool LoadAllNeverEnds(const std::string& text) {
  std::istringstream in(text);
  try {
    YAML::Parser parser(in);
    IgnoreEvents events;
    for (size_t documents = 0; documents <= text.size() + 2; ++documents) {
      if (!parser.HandleNextDocument(events)) return false;
    }
    return true;
  } catch (const YAML::Exception&) {
    return false;
  }
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
  if (LoadAllNeverEnds(text)) {
    if (Lenient()) return;
    Fail(
        "YAML::LoadAll never returns on this input (yaml-cpp 0.7.0, "
        "jbeder/yaml-cpp#1040): ParseConfigYaml would allocate until memory "
        "runs out");
  }
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
  FuzzDuration(text);
  // Durations are short: also try the first line alone, so that a YAML seed
  // starting with a duration exercises the unit parser.
  const size_t newline = text.find('\n');
  if (newline != std::string::npos) FuzzDuration(text.substr(0, newline));
  return 0;
}
