#include "tcpstated/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string_view>
#include <utility>

namespace tcpstated {
namespace {

// spdlog's %v is not JSON-escaped; this flag (%*) is. The text format uses
// it too: a quote or a newline in a message must not end its msg="...".
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

}  // namespace

std::unique_ptr<spdlog::formatter> MakeLogFormatter(LogFormat format,
                                                    bool journal) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<JsonEscapedMessage>('*');
  if (format == LogFormat::kJson) {
    formatter->set_pattern(
        journal ? R"({"level":"%l","msg":"%*"})"
                : R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","msg":"%*"})");
  } else {
    formatter->set_pattern(journal ? "level=%l msg=\"%*\""
                                   : "ts=%Y-%m-%dT%H:%M:%S.%e%z level=%l "
                                     "msg=\"%*\"");
  }
  return formatter;
}

void SetUpLogging(const Config& config) {
  auto logger = std::make_shared<spdlog::logger>(
      "tcpstated", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  // journald stamps every line itself; a second timestamp is noise.
  const bool journal = std::getenv("JOURNAL_STREAM") != nullptr;
  logger->set_formatter(MakeLogFormatter(config.log.format, journal));
  logger->set_level(spdlog::level::from_str(config.log.level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace tcpstated
