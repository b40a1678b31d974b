#include "tcpstated/command_line.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tcpstated/config_files.h"
#include "tcpstated/yaml_fields.h"

namespace tcpstated {
namespace {

// CLI11 treats "--flag=" as a flag without a value, but an explicit empty
// value is how one clears a file setting (--web.config.file=), as kingpin
// allows; "--flag" "" is accepted, so rewrite to that.
std::vector<std::string> CollectArgs(int argc, const char* const* argv) {
  std::vector<std::string> args;
  bool after_terminator = false;
  for (int i = 1; argv != nullptr && i < argc && argv[i] != nullptr; ++i) {
    std::string arg = argv[i];
    if (arg == "--") after_terminator = true;
    if (!after_terminator && arg.size() > 3 && arg.compare(0, 2, "--") == 0 &&
        arg.find('=') == arg.size() - 1) {
      arg.pop_back();
      args.push_back(arg);
      args.emplace_back();
    } else {
      args.push_back(arg);
    }
  }
  // CLI11 consumes its argument vector from the back.
  std::reverse(args.begin(), args.end());
  return args;
}

void RejectExtras(const std::vector<std::string>& extras) {
  bool after_terminator = false;
  for (const std::string& arg : extras) {
    if (arg == "--" && !after_terminator) {
      after_terminator = true;
      continue;
    }
    if (!after_terminator && arg.size() > 1 && arg[0] == '-') {
      throw ConfigError("unknown flag " +
                        EscapeForMessage(arg.substr(0, arg.find('='))));
    }
    throw ConfigError("unexpected argument " + QuoteForMessage(arg) +
                      " (tcpstated takes no positional arguments)");
  }
}

// A CLI11 validator from one of config.h's field checks: CLI11 prefixes the
// flag's name, so the check runs with an empty key.
CLI::Validator FieldCheck(void (*check)(const std::string&, const std::string&),
                          const char* what) {
  return CLI::Validator(
      [check](std::string& value) -> std::string {
        try {
          check("", value);
        } catch (const ConfigError& e) {
          return e.what();
        }
        return "";
      },
      what);
}

void CheckLogFormat(const std::string& key, const std::string& text) {
  ParseLogFormat(key, text);
}

// The flags' values, and their options to ask whether they were given (a
// flag given overrides the config file, even with the default's value).
struct Flags {
  std::string config_file;
  std::string listen_address;
  std::string telemetry_path;
  std::string web_config_file;
  std::string log_level;
  std::string log_format;
  bool config_check = false;
  bool version = false;
  CLI::Option* config_file_option = nullptr;
  CLI::Option* listen_address_option = nullptr;
  CLI::Option* telemetry_path_option = nullptr;
  CLI::Option* web_config_file_option = nullptr;
  CLI::Option* log_level_option = nullptr;
  CLI::Option* log_format_option = nullptr;
  CLI::Option* version_option = nullptr;
};

// The flag table: each flag with its help text and the same check as its
// YAML key.
void AddFlags(CLI::App& app, Flags& flags) {
  flags.config_file_option =
      app.add_option("--config.file", flags.config_file,
                     "YAML configuration file; flags override its values.")
          ->type_name("FILE")
          ->check(CLI::ExistingFile);
  app.add_flag("--config.check", flags.config_check,
               "Check the configuration file and flags as a start would "
               "(without loading BPF or opening a socket), then exit: 0 if "
               "valid, 2 with one error line if not.");
  flags.listen_address_option =
      app.add_option("--web.listen-address", flags.listen_address,
                     "Address to listen on for the web interface and "
                     "telemetry (default \":9640\").")
          ->type_name("ADDRESS")
          ->check(FieldCheck(ValidateListenAddress, ""));
  flags.telemetry_path_option =
      app.add_option("--web.telemetry-path", flags.telemetry_path,
                     "Path under which to expose metrics (default "
                     "\"/metrics\").")
          ->type_name("PATH")
          ->check(FieldCheck(ValidateTelemetryPath, ""));
  flags.web_config_file_option =
      app.add_option("--web.config.file", flags.web_config_file,
                     "Exporter-toolkit web configuration file (TLS, basic "
                     "authentication).")
          ->type_name("FILE");
  flags.log_level_option =
      app.add_option("--log.level", flags.log_level,
                     "Only log messages with the given severity or above: "
                     "trace, debug, info, warn, error (default info).")
          ->type_name("LEVEL")
          ->check(FieldCheck(ValidateLogLevel, ""));
  flags.log_format_option =
      app.add_option("--log.format", flags.log_format,
                     "Output format of log messages: text or json (default "
                     "text).")
          ->type_name("FORMAT")
          ->check(FieldCheck(CheckLogFormat, ""));
  flags.version_option = app.add_flag("--version", flags.version,
                                      "Print version information and exit.");
}

// Parses argv into `flags`; the answer when it is --help or --version,
// nothing when the configuration is to be built.
std::optional<CommandLine> ParseFlags(CLI::App& app, const Flags& flags,
                                      int argc, const char* const* argv) {
  CommandLine answer;
  try {
    std::vector<std::string> args = CollectArgs(argc, argv);
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    // Help wins over unknown flags, bad values and the config file: someone
    // asking for it is likely to have got the rest wrong.
    answer.show_help = true;
    answer.help_text = app.help();
    return answer;
  } catch (const CLI::ParseError& e) {
    // CLI11 validates values before it looks at --help and --version; both
    // still win, as promised.
    if (app.get_help_ptr()->count() > 0) {
      answer.show_help = true;
      answer.help_text = app.help();
      return answer;
    }
    if (flags.version_option->count() > 0) {
      answer.show_version = true;
      return answer;
    }
    throw ConfigError(OneLine(e.what()));
  }
  if (flags.version) {
    answer.show_version = true;
    return answer;
  }
  return std::nullopt;
}

// The config file's settings (or the defaults), the flags given on top,
// validated as a whole.
Config BuildConfig(const Flags& flags) {
  Config config;
  if (flags.config_file_option->count() > 0) {
    config = LoadConfigFile(flags.config_file);
  }
  if (flags.listen_address_option->count() > 0) {
    config.web.listen_address = flags.listen_address;
  }
  if (flags.telemetry_path_option->count() > 0) {
    config.web.telemetry_path = flags.telemetry_path;
  }
  if (flags.web_config_file_option->count() > 0) {
    config.web.config_file = flags.web_config_file;
  }
  if (flags.log_level_option->count() > 0) {
    config.log.level = flags.log_level;
  }
  if (flags.log_format_option->count() > 0) {
    config.log.format = ParseLogFormat("--log.format", flags.log_format);
  }
  ValidateConfig(config);
  return config;
}

CommandLine ParseCommandLineOrThrow(int argc, const char* const* argv) {
  CLI::App app(
      "Watches every TCP connection through eBPF and exports connection-state "
      "pathologies (CLOSE_WAIT leaks, SYN floods, TIME_WAIT port exhaustion) "
      "as Prometheus metrics.",
      "tcpstated");
  // Extras are reported by RejectExtras in a shorter form than CLI11's.
  app.allow_extras();
  Flags flags;
  AddFlags(app, flags);
  if (std::optional<CommandLine> answer = ParseFlags(app, flags, argc, argv)) {
    return std::move(*answer);
  }
  RejectExtras(app.remaining());
  CommandLine result;
  result.config = BuildConfig(flags);
  result.config_check = flags.config_check;
  return result;
}

}  // namespace

CommandLine ParseCommandLine(int argc, const char* const* argv) {
  try {
    return ParseCommandLineOrThrow(argc, argv);
  } catch (const ConfigError&) {
    throw;
  } catch (const CLI::Error& e) {
    // Only construction errors get here, i.e. a bug in the option table.
    throw ConfigError("command line: " + OneLine(e.what()));
  }
}

}  // namespace tcpstated
