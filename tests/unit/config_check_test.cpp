// --config.check's checks beyond the command line: the web config file and
// its TLS files, loaded as a start would load them.
#include "tcpstated/config_check.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "http_test_support.h"

namespace tcpstated {
namespace {

namespace fs = std::filesystem;
using http_test::MakeSelfSigned;
using http_test::WritePem;

class ConfigCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/tcpstated-config-check-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A web config file naming `cert` and `key` (written as PEM), returned
  // as a Config that points at it.
  Config WithTls(X509* cert, EVP_PKEY* key) {
    WritePem(dir_ + "/cert.pem", dir_ + "/key.pem", cert, key);
    std::ofstream(dir_ + "/web.yml") << "tls_server_config:\n"
                                        "  cert_file: cert.pem\n"
                                        "  key_file: key.pem\n";
    Config config;
    config.web.config_file = dir_ + "/web.yml";
    return config;
  }

  static std::string Error(const Config& config) {
    try {
      CheckConfigForStart(config);
    } catch (const std::exception& e) {
      return e.what();
    }
    return "no error";
  }

  std::string dir_;
};

TEST_F(ConfigCheckTest, DefaultsPass) {
  EXPECT_EQ(Error(Config()), "no error");
}

TEST_F(ConfigCheckTest, MatchingCertificateAndKeyPass) {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  MakeSelfSigned(1, &key, &cert);
  EXPECT_EQ(Error(WithTls(cert, key)), "no error");
  X509_free(cert);
  EVP_PKEY_free(key);
}

// Both files are readable, so the web config parses: only loading them as
// the server does shows the key belongs to another certificate.
TEST_F(ConfigCheckTest, KeyOfAnotherCertificateFailsNamingTheKey) {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  MakeSelfSigned(1, &key, &cert);
  EVP_PKEY* other = EVP_RSA_gen(2048);
  const std::string error = Error(WithTls(cert, other));
  EXPECT_NE(error.find("does not match"), std::string::npos) << error;
  EXPECT_NE(error.find(dir_ + "/key.pem"), std::string::npos) << error;
  X509_free(cert);
  EVP_PKEY_free(key);
  EVP_PKEY_free(other);
}

TEST_F(ConfigCheckTest, MissingWebConfigFileFailsNamingIt) {
  Config config;
  config.web.config_file = dir_ + "/missing.yml";
  const std::string error = Error(config);
  EXPECT_NE(error.find(config.web.config_file), std::string::npos) << error;
}

}  // namespace
}  // namespace tcpstated
