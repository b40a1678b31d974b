// The web configuration's YAML (web_config.h), through the same strict walk
// as the main configuration. Reading the file and checking the files it
// names are command_line_test.cpp's (config_files.h).
#include "tcpstated/web_config.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config_test_support.h"

namespace tcpstated {
namespace {

constexpr const char* kHash =
    "$2y$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234";

std::string WebError(const std::string& yaml) {
  return ErrorOf([&] { ParseWebConfig(yaml, "/etc/tcpstated"); });
}

TEST(ParseWebConfigTest, EmptyMeansPlainHttpWithoutUsers) {
  for (const char* text :
       {"", "---\n", "tls_server_config:\n", "basic_auth_users: ~\n"}) {
    const WebConfig web = ParseWebConfig(text, "/etc/tcpstated");
    EXPECT_FALSE(web.tls) << text;
    EXPECT_TRUE(web.users.empty()) << text;
  }
}

TEST(ParseWebConfigTest, FullExample) {
  const WebConfig web = ParseWebConfig(
      std::string("tls_server_config:\n"
                  "  cert_file: tls.crt\n"
                  "  key_file: /abs/tls.key\n"
                  "  min_version: TLS13\n"
                  "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n"
                  "  client_auth_type: RequireAndVerifyClientCert\n"
                  "  client_ca_file: ca/clients.crt\n"
                  "basic_auth_users:\n"
                  "  prometheus: ") +
          kHash + "\n  1234: '" + kHash + "'\n",
      "/etc/tcpstated");
  EXPECT_TRUE(web.tls);
  EXPECT_EQ(web.cert_file, "/etc/tcpstated/tls.crt");
  EXPECT_EQ(web.key_file, "/abs/tls.key");
  EXPECT_EQ(web.client_ca_file, "/etc/tcpstated/ca/clients.crt");
  EXPECT_TRUE(web.tls13_only);
  EXPECT_EQ(web.cipher_suites,
            std::vector<std::string>{"ECDHE-RSA-AES128-GCM-SHA256"});
  EXPECT_EQ(web.client_auth, WebConfig::ClientAuth::kRequireAndVerify);
  ASSERT_EQ(web.users.size(), 2u);
  EXPECT_EQ(web.users.at("prometheus"), kHash);
  // A user name is a map key, not a typed value.
  EXPECT_EQ(web.users.at("1234"), kHash);
}

struct WebErrorCase {
  const char* name;
  std::string yaml;
  const char* message;
};

void PrintTo(const WebErrorCase& c, std::ostream* os) { *os << c.name; }

class WebConfigErrorTest : public testing::TestWithParam<WebErrorCase> {};

TEST_P(WebConfigErrorTest, OneLineNamingTheKey) {
  EXPECT_EQ(WebError(GetParam().yaml), GetParam().message);
}

const std::string kTls = "tls_server_config:\n  cert_file: a\n  key_file: b\n";

INSTANTIATE_TEST_SUITE_P(
    Cases, WebConfigErrorTest,
    testing::Values(
        WebErrorCase{"UnknownTopLevelKey", "tls_config: {}\n",
                     "web config: unknown key \"tls_config\""},
        WebErrorCase{"UnknownNestedKey", kTls + "  ciphers: []\n",
                     "web config: unknown key \"tls_server_config.ciphers\""},
        WebErrorCase{
            "DuplicateKey", kTls + "  key_file: c\n",
            "web config: duplicate key \"tls_server_config.key_file\""},
        WebErrorCase{"NotAMap", "- a\n",
                     "web config: expected a map at the top level, got a "
                     "sequence"},
        WebErrorCase{"SectionNotAMap", "tls_server_config: yes\n",
                     "web config: tls_server_config: expected a map, got "
                     "string \"yes\""},
        WebErrorCase{"SyntaxError", "tls_server_config: [\n",
                     "web config: YAML syntax error at line 2, column 1: end "
                     "of sequence flow not found"},
        WebErrorCase{"TwoDocuments", "basic_auth_users: {}\n---\na: 1\n",
                     "web config: expected one YAML document, found 2"},
        WebErrorCase{"NumberForPath",
                     "tls_server_config:\n  cert_file: 5\n  key_file: b\n",
                     "web config: tls_server_config.cert_file: expected a "
                     "string, got integer 5"},
        WebErrorCase{"MissingKey", "tls_server_config:\n  cert_file: a\n",
                     "web config: tls_server_config: needs both cert_file and "
                     "key_file"},
        WebErrorCase{"OldTls", kTls + "  min_version: TLS11\n",
                     "web config: tls_server_config.min_version: \"TLS11\" is "
                     "not TLS12 or TLS13 (older versions are not offered)"},
        WebErrorCase{"UnknownSuite", kTls + "  cipher_suites: [RC4]\n",
                     "web config: tls_server_config.cipher_suites: unknown TLS "
                     "1.2 suite \"RC4\" (use Go's names, e.g. "
                     "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"},
        WebErrorCase{"EmptySuites", kTls + "  cipher_suites: []\n",
                     "web config: tls_server_config.cipher_suites: empty list "
                     "(omit the key for the default)"},
        WebErrorCase{"SuitesNotAList", kTls + "  cipher_suites: X\n",
                     "web config: tls_server_config.cipher_suites: expected a "
                     "list of strings, got string \"X\""},
        WebErrorCase{"BadClientAuth", kTls + "  client_auth_type: Always\n",
                     "web config: tls_server_config.client_auth_type: "
                     "\"Always\" is not NoClientCert, RequestClientCert, "
                     "RequireAnyClientCert, VerifyClientCertIfGiven or "
                     "RequireAndVerifyClientCert"},
        WebErrorCase{"VerifyWithoutCa",
                     kTls + "  client_auth_type: VerifyClientCertIfGiven\n",
                     "web config: tls_server_config.client_auth_type: "
                     "verifies client certificates and needs client_ca_file"},
        WebErrorCase{"CaWithoutClientAuth", kTls + "  client_ca_file: c\n",
                     "web config: tls_server_config.client_ca_file: is set but "
                     "client_auth_type is NoClientCert"},
        WebErrorCase{"UsersNotAMap", "basic_auth_users: [a]\n",
                     "web config: basic_auth_users: expected a map, got a "
                     "sequence"},
        WebErrorCase{"NotBcrypt", "basic_auth_users:\n  u: secret\n",
                     "web config: basic_auth_users.u: not a bcrypt hash ($2a$, "
                     "$2b$ or $2y$)"},
        WebErrorCase{"HashNotAString", "basic_auth_users:\n  u: 12\n",
                     "web config: basic_auth_users.u: expected a string, got "
                     "integer 12"},
        WebErrorCase{
            "ColonInUser",
            std::string("basic_auth_users:\n  \"a:b\": ") + kHash + "\n",
            "web config: basic_auth_users: bad user name \"a:b\""},
        WebErrorCase{
            "NewlineInUser",
            std::string("basic_auth_users:\n  \"a\\nb\": ") + kHash + "\n",
            "web config: basic_auth_users: bad user name \"a\\nb\""},
        WebErrorCase{
            "ControlCharacterInUser",
            std::string("basic_auth_users:\n  \"a\\x07b\": ") + kHash + "\n",
            "web config: basic_auth_users: bad user name \"a\\x07b\""},
        WebErrorCase{"HttpServerConfig", "http_server_config: {}\n",
                     "web config: http_server_config: not supported by "
                     "tcpstated"}),
    [](const testing::TestParamInfo<WebErrorCase>& info) {
      return std::string(info.param.name);
    });

}  // namespace
}  // namespace tcpstated
