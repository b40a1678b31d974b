// The command line: CLI11 flags, validated with the same field checks as the
// YAML keys (config.h), applied on top of --config.file (read through
// config_files.h). Every problem is one ConfigError line naming the flag.
//
// Thread-safety: reentrant, no state.
#pragma once

#include <string>

#include "tcpstated/config.h"

namespace tcpstated {

struct CommandLine {
  Config config;
  bool show_version = false;
  bool show_help = false;
  bool config_check = false;  // --config.check: check (config_check.h), exit
  std::string help_text;      // filled when show_help is set
};

// Parses argv. Unknown or malformed flags throw ConfigError with one line.
// Loads --config.file when given, then applies the flags on top of it, then
// runs ValidateConfig. --help and --version win over every other problem.
CommandLine ParseCommandLine(int argc, const char* const* argv);

}  // namespace tcpstated
