// tracking.full_reconcile_interval: the safety dump's interval, apart from
// the 30-s reconcile_interval that SPEC.md fixes (issue 15, item 4).

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "config_test_support.h"
#include "tcpstated/config.h"

namespace tcpstated {
namespace {

using std::chrono::milliseconds;

std::string YamlError(const std::string& yaml) {
  return ErrorOf([&] { ParseConfigYaml(yaml); });
}

TEST(FullReconcileIntervalTest, UnsetIsTenMinutes) {
  const Config c = ParseConfigYaml("");
  EXPECT_FALSE(c.tracking.full_reconcile_interval.has_value());
  EXPECT_EQ(FullReconcileInterval(c.tracking), milliseconds(600000));
}

TEST(FullReconcileIntervalTest, UnsetFollowsALongerReconcileInterval) {
  // A reconcile interval over 10 min alone must stay valid, and the safety
  // dump cannot come more often than it.
  const Config c = ParseConfigYaml("tracking:\n  reconcile_interval: 1h\n");
  EXPECT_EQ(FullReconcileInterval(c.tracking), milliseconds(3600000));
}

TEST(FullReconcileIntervalTest, SetIsTaken) {
  const Config c = ParseConfigYaml(
      "tracking:\n  reconcile_interval: 1s\n  full_reconcile_interval: 2s\n");
  ASSERT_TRUE(c.tracking.full_reconcile_interval.has_value());
  EXPECT_EQ(*c.tracking.full_reconcile_interval, milliseconds(2000));
  EXPECT_EQ(FullReconcileInterval(c.tracking), milliseconds(2000));
}

TEST(FullReconcileIntervalTest, EqualToReconcileIntervalIsAccepted) {
  const Config c =
      ParseConfigYaml("tracking:\n  full_reconcile_interval: 30s\n");
  EXPECT_EQ(FullReconcileInterval(c.tracking), milliseconds(30000));
}

TEST(FullReconcileIntervalTest, BelowReconcileIntervalIsOneError) {
  const std::string message =
      YamlError("tracking:\n  full_reconcile_interval: 10s\n");
  EXPECT_NE(message.find("tracking.full_reconcile_interval:"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("at least tracking.reconcile_interval"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("10000 ms"), std::string::npos) << message;
}

TEST(FullReconcileIntervalTest, ZeroIsRejected) {
  const std::string message =
      YamlError("tracking:\n  full_reconcile_interval: 0s\n");
  EXPECT_NE(message.find("tracking.full_reconcile_interval:"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("greater than 0"), std::string::npos) << message;
}

TEST(FullReconcileIntervalTest, BadDurationsNameTheKey) {
  for (const char* value : {"-5m", "10", "5x", "{m: 10}", "\"\""}) {
    const std::string message = YamlError(
        std::string("tracking:\n  full_reconcile_interval: ") + value + "\n");
    EXPECT_EQ(message.find("tracking.full_reconcile_interval:"), 0u)
        << value << ": " << message;
  }
}

TEST(FullReconcileIntervalTest, ValidateConfigChecksAssembledValues) {
  // The same rule when the value did not come from YAML.
  Config c;
  c.tracking.reconcile_interval = milliseconds(60000);
  c.tracking.full_reconcile_interval = milliseconds(59999);
  EXPECT_NE(ErrorOf([&] {
              ValidateConfig(c);
            }).find("tracking.full_reconcile_interval"),
            std::string::npos);
  c.tracking.full_reconcile_interval = milliseconds(60000);
  EXPECT_NO_THROW(ValidateConfig(c));
}

}  // namespace
}  // namespace tcpstated
