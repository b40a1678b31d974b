#include "tcpstated/logging.h"

#include <gtest/gtest.h>
#include <spdlog/details/log_msg.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace tcpstated {
namespace {

std::string FormatLine(LogFormat format, bool journal,
                       const std::string& message) {
  const std::unique_ptr<spdlog::formatter> formatter =
      MakeLogFormatter(format, journal);
  const spdlog::details::log_msg msg("tcpstated", spdlog::level::warn, message);
  spdlog::memory_buf_t line;
  formatter->format(msg, line);
  return std::string(line.data(), line.size());
}

// What a thread name, a peer's bytes or a file name can put in a message.
const std::string kAwkward = "a \"quoted\" \\path\\\nsecond\tline\x01\x1f end";

TEST(LoggingTest, JsonLinesParseBackToTheMessage) {
  for (bool journal : {false, true}) {
    const std::string line = FormatLine(LogFormat::kJson, journal, kAwkward);
    ASSERT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line: " << line;
    const nlohmann::json parsed = nlohmann::json::parse(line);
    EXPECT_EQ(parsed.at("msg"), kAwkward);
    EXPECT_EQ(parsed.at("level"), "warning");
    // journald stamps lines itself.
    EXPECT_EQ(parsed.contains("ts"), !journal);
  }
}

TEST(LoggingTest, TextLinesKeepTheMessageOnOneQuotedLine) {
  const std::string line = FormatLine(LogFormat::kText, true, kAwkward);
  EXPECT_EQ(line,
            "level=warning msg=\"a \\\"quoted\\\" \\\\path\\\\\\nsecond"
            "\\u0009line\\u0001\\u001f end\"\n");
  EXPECT_EQ(FormatLine(LogFormat::kText, false, "x").rfind("ts=", 0), 0u);
}

}  // namespace
}  // namespace tcpstated
