// The command line and the configuration files: CLI11 flags with their
// validators, --config.file read from disk, and the web config file.
#include "tcpstated/command_line.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "config_test_support.h"
#include "tcpstated/config_files.h"

namespace tcpstated {
namespace {

namespace fs = std::filesystem;

// Each test gets its own directory so that parallel test runs (ctest -j)
// cannot trip over each other's files.
class FileTest : public testing::Test {
 protected:
  void SetUp() override {
    std::random_device random;
    for (int attempt = 0; attempt < 100 && dir_.empty(); ++attempt) {
      const fs::path candidate =
          fs::temp_directory_path() /
          ("tcpstated-config-test-" + std::to_string(getpid()) + "-" +
           std::to_string(random()));
      std::error_code ec;
      if (fs::create_directory(candidate, ec)) dir_ = candidate;
    }
    ASSERT_FALSE(dir_.empty()) << "could not create a temporary directory";
  }

  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  std::string Write(const std::string& name, const std::string& contents) {
    const fs::path path = dir_ / name;
    std::ofstream out(path, std::ios::binary);
    out << contents;
    out.close();
    EXPECT_TRUE(out.good()) << path;
    return path.string();
  }

  static CommandLine Parse(std::vector<std::string> args) {
    args.insert(args.begin(), "tcpstated");
    std::vector<const char*> argv;
    for (const std::string& arg : args) argv.push_back(arg.c_str());
    argv.push_back(nullptr);
    return ParseCommandLine(static_cast<int>(args.size()), argv.data());
  }

  static std::string ParseError(std::vector<std::string> args) {
    return ErrorOf([&] { Parse(args); });
  }

  fs::path dir_;
};

TEST_F(FileTest, LoadsFile) {
  const std::string path = Write("c.yml", "log:\n  level: warn\n");
  EXPECT_EQ(LoadConfigFile(path).log.level, "warn");
}

TEST_F(FileTest, EmptyFileGivesDefaults) {
  ExpectSameConfig(LoadConfigFile(Write("empty.yml", "")), Config{});
}

TEST_F(FileTest, MissingFileNamesPath) {
  const std::string path = (dir_ / "nope.yml").string();
  EXPECT_EQ(ErrorOf([&] { LoadConfigFile(path); }),
            "config file \"" + path + "\": No such file or directory");
}

TEST_F(FileTest, DirectoryNamesPath) {
  const std::string message = ErrorOf([&] { LoadConfigFile(dir_.string()); });
  EXPECT_NE(message.find("config file \"" + dir_.string() + "\""),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("Is a directory"), std::string::npos) << message;
}

TEST_F(FileTest, BadFileContentNamesKey) {
  const std::string path = Write("bad.yml", "bpf:\n  foo: 1\n");
  EXPECT_EQ(ErrorOf([&] { LoadConfigFile(path); }),
            "config: unknown key \"bpf.foo\"");
}

TEST_F(FileTest, NoArgumentsGiveDefaults) {
  const CommandLine cl = Parse({});
  ExpectSameConfig(cl.config, Config{});
  EXPECT_FALSE(cl.show_help);
  EXPECT_FALSE(cl.show_version);
  EXPECT_FALSE(cl.config_check);
}

TEST_F(FileTest, NullArgvIsNoArguments) {
  ExpectSameConfig(ParseCommandLine(0, nullptr).config, Config{});
}

TEST_F(FileTest, FlagsOverrideFile) {
  const std::string path = Write("c.yml", R"(web:
  listen_address: "127.0.0.1:1111"
  telemetry_path: /from-file
  config_file: /from/file.yml
log:
  level: error
  format: text
tracking:
  max_series_per_metric: 9
)");
  const CommandLine cl = Parse(
      {"--config.file", path, "--web.listen-address=:2222",
       "--web.telemetry-path", "/from-flag",
       "--web.config.file=", "--log.level=trace", "--log.format", "json"});
  EXPECT_EQ(cl.config.web.listen_address, ":2222");
  EXPECT_EQ(cl.config.web.telemetry_path, "/from-flag");
  EXPECT_EQ(cl.config.web.config_file, "");
  EXPECT_EQ(cl.config.log.level, "trace");
  EXPECT_EQ(cl.config.log.format, LogFormat::kJson);
  // Not overridden: comes from the file.
  EXPECT_EQ(cl.config.tracking.max_series_per_metric, 9u);
}

TEST_F(FileTest, FileValuesSurviveWhenFlagsAbsent) {
  const std::string path =
      Write("c.yml", "web:\n  listen_address: \"127.0.0.1:1111\"\n");
  const CommandLine cl = Parse({"--config.file=" + path, "--log.level=debug"});
  EXPECT_EQ(cl.config.web.listen_address, "127.0.0.1:1111");
  EXPECT_EQ(cl.config.log.level, "debug");
}

TEST_F(FileTest, FlagsWithoutFile) {
  const CommandLine cl = Parse({"--web.config.file", "/etc/web.yml"});
  EXPECT_EQ(cl.config.web.config_file, "/etc/web.yml");
  EXPECT_EQ(cl.config.web.listen_address, ":9640");
}

TEST_F(FileTest, ConfigCheck) {
  const std::string path = Write("c.yml", "log: {format: json}\n");
  const CommandLine cl = Parse({"--config.file", path, "--config.check"});
  EXPECT_TRUE(cl.config_check);
  EXPECT_EQ(cl.config.log.format, LogFormat::kJson);
}

TEST_F(FileTest, ConfigCheckStillFailsOnBadFile) {
  const std::string path = Write("c.yml", "log: {format: xml}\n");
  EXPECT_NE(
      ParseError({"--config.file", path, "--config.check"}).find("log.format:"),
      std::string::npos);
}

TEST_F(FileTest, MissingConfigFileFlagNamesPath) {
  const std::string path = (dir_ / "missing.yml").string();
  EXPECT_EQ(ParseError({"--config.file", path}),
            "--config.file: File does not exist: " + path);
}

TEST_F(FileTest, VersionWinsOverBadFlagValue) {
  CommandLine cl;
  ASSERT_NO_THROW(cl = Parse({"--log.level=loud", "--version"}));
  EXPECT_TRUE(cl.show_version);
}

TEST_F(FileTest, ListenAddressPortZeroIsRefused) {
  // The endpoint's parser takes port 0 (an ephemeral port, for tests); the
  // daemon's configuration does not, whichever way it comes.
  EXPECT_NE(ParseError({"--web.listen-address=:0"})
                .find("--web.listen-address: port 0 in \":0\""),
            std::string::npos);
}

TEST_F(FileTest, WebConfigFileResolvesPathsAndChecksThem) {
  Write("tls.crt", "not parsed here");
  Write("tls.key", "not parsed here");
  const std::string path = Write("web.yml",
                                 "tls_server_config:\n  cert_file: tls.crt\n"
                                 "  key_file: tls.key\n");
  const WebConfig web = LoadWebConfig(path);
  EXPECT_TRUE(web.tls);
  EXPECT_EQ(web.cert_file, (dir_ / "tls.crt").string());

  const std::string missing_key =
      Write("web2.yml",
            "tls_server_config:\n  cert_file: tls.crt\n"
            "  key_file: gone.key\n");
  EXPECT_EQ(ErrorOf([&] { LoadWebConfig(missing_key); }),
            "web config: tls_server_config.key_file: cannot read \"" +
                (dir_ / "gone.key").string() + "\": No such file or directory");
}

TEST_F(FileTest, WebConfigFileErrors) {
  const std::string missing = (dir_ / "none.yml").string();
  EXPECT_EQ(ErrorOf([&] { LoadWebConfig(missing); }),
            "web config file \"" + missing + "\": No such file or directory");
  EXPECT_EQ(ErrorOf([&] { LoadWebConfig(dir_.string()); }),
            "web config file \"" + dir_.string() + "\": Is a directory");
  const std::string bad = Write("bad.yml", "basic_auth_users: [x]\n");
  EXPECT_EQ(ErrorOf([&] { LoadWebConfig(bad); }),
            "web config: basic_auth_users: expected a map, got a sequence");
}

TEST_F(FileTest, Help) {
  for (const char* flag : {"--help", "-h"}) {
    CommandLine cl;
    ASSERT_NO_THROW(cl = Parse({flag}));
    EXPECT_TRUE(cl.show_help);
    EXPECT_NE(cl.help_text.find("--web.listen-address"), std::string::npos)
        << cl.help_text;
    EXPECT_NE(cl.help_text.find("--config.file"), std::string::npos);
  }
}

TEST_F(FileTest, HelpAndVersionDoNotLoadConfig) {
  const std::string missing = (dir_ / "missing.yml").string();
  CommandLine cl;
  ASSERT_NO_THROW(cl = Parse({"--config.file", missing, "--help"}));
  EXPECT_TRUE(cl.show_help);
  ASSERT_NO_THROW(cl = Parse({"--version", "--config.file", missing}));
  EXPECT_TRUE(cl.show_version);
  EXPECT_FALSE(cl.show_help);
}

TEST_F(FileTest, HelpWinsOverBadFlagValue) {
  CommandLine cl;
  ASSERT_NO_THROW(cl = Parse({"--log.level=loud", "--help"}));
  EXPECT_TRUE(cl.show_help);
}

struct FlagErrorCase {
  const char* name;
  std::vector<std::string> args;
  const char* fragment;
};

void PrintTo(const FlagErrorCase& c, std::ostream* os) { *os << c.name; }

class FlagErrorTest : public testing::TestWithParam<FlagErrorCase> {};

TEST_P(FlagErrorTest, OneLineNamingTheFlag) {
  const std::vector<std::string> args = GetParam().args;
  const std::string message = ErrorOf([&] {
    std::vector<const char*> argv = {"tcpstated"};
    for (const std::string& arg : args) argv.push_back(arg.c_str());
    ParseCommandLine(static_cast<int>(argv.size()), argv.data());
  });
  EXPECT_NE(message.find(GetParam().fragment), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, FlagErrorTest,
    testing::Values(
        FlagErrorCase{"UnknownFlag", {"--foo"}, "unknown flag --foo"},
        FlagErrorCase{
            "UnknownFlagWithValue", {"--foo=bar"}, "unknown flag --foo"},
        FlagErrorCase{"UnknownShortFlag", {"-x"}, "unknown flag -x"},
        FlagErrorCase{"UnderscoreSpelling",
                      {"--web.listen_address=:1"},
                      "unknown flag --web.listen_address"},
        FlagErrorCase{"Positional", {"extra"}, "unexpected argument \"extra\""},
        FlagErrorCase{"PositionalAfterTerminator",
                      {"--", "--log.level"},
                      "unexpected argument \"--log.level\""},
        // CLI11's own words for its own checks.
        FlagErrorCase{"MissingValue",
                      {"--log.level"},
                      "--log.level: 1 required LEVEL missing"},
        FlagErrorCase{"EmptyValueIsNotMissing",
                      {"--log.level="},
                      "--log.level: invalid log level \"\""},
        FlagErrorCase{"RepeatedFlag",
                      {"--log.level=info", "--log.level=debug"},
                      "--log.level: At Most 1 required but received 2"},
        FlagErrorCase{"BadLogLevel",
                      {"--log.level", "loud"},
                      "--log.level: invalid log level \"loud\""},
        FlagErrorCase{"BadLogFormat", {"--log.format=xml"}, "--log.format:"},
        FlagErrorCase{"BadListenAddress",
                      {"--web.listen-address", "9640"},
                      "--web.listen-address:"},
        FlagErrorCase{"BadTelemetryPath",
                      {"--web.telemetry-path=/healthz"},
                      "--web.telemetry-path:"},
        FlagErrorCase{"BadBoolValue",
                      {"--config.check=maybe"},
                      "Could not convert: --config.check = maybe"},
        FlagErrorCase{"ConfigFileIsDirectory",
                      {"--config.file", "/"},
                      "--config.file: File is actually a directory: /"}),
    [](const testing::TestParamInfo<FlagErrorCase>& case_info) {
      return std::string(case_info.param.name);
    });

}  // namespace
}  // namespace tcpstated
