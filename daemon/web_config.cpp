#include "tcpstated/web_config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "tcpstated/config.h"

namespace tcpstated {
namespace {

std::string Scalar(const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar()) {
    throw ConfigError("web config: " + key + ": expected a string");
  }
  return node.Scalar();
}

std::string Resolve(const std::string& path, const std::string& base_dir) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  return base_dir + "/" + path;
}

void RequireReadable(const std::string& path, const std::string& key) {
  if (access(path.c_str(), R_OK) != 0) {
    throw ConfigError("web config: " + key + ": cannot read \"" + path +
                      "\": " + std::strerror(errno));
  }
}

// exporter-toolkit takes Go's names; OpenSSL has its own. Only suites with
// a Go name are listed; TLS 1.3 suites are not configurable there either.
const std::map<std::string, std::string>& CipherSuiteNames() {
  static const std::map<std::string, std::string> names = {
      {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
       "ECDHE-ECDSA-AES128-GCM-SHA256"},
      {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
      {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
       "ECDHE-ECDSA-AES256-GCM-SHA384"},
      {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
      {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
       "ECDHE-ECDSA-CHACHA20-POLY1305"},
      {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
       "ECDHE-RSA-CHACHA20-POLY1305"},
      {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
      {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
      {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
      {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
      {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"},
      {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"},
      {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"},
      {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"},
  };
  return names;
}

WebConfig::ClientAuth ParseClientAuth(const std::string& key,
                                      const std::string& value) {
  using ClientAuth = WebConfig::ClientAuth;
  static const std::map<std::string, ClientAuth> kTypes = {
      {"NoClientCert", ClientAuth::kNone},
      {"RequestClientCert", ClientAuth::kRequest},
      {"RequireAnyClientCert", ClientAuth::kRequireAny},
      {"VerifyClientCertIfGiven", ClientAuth::kVerifyIfGiven},
      {"RequireAndVerifyClientCert", ClientAuth::kRequireAndVerify},
  };
  const auto it = kTypes.find(value);
  if (it == kTypes.end()) {
    throw ConfigError("web config: " + key + ": \"" + value.substr(0, 64) +
                      "\" is not NoClientCert, RequestClientCert, "
                      "RequireAnyClientCert, VerifyClientCertIfGiven or "
                      "RequireAndVerifyClientCert");
  }
  return it->second;
}

std::vector<std::string> ParseCipherSuites(const YAML::Node& node,
                                           const std::string& key) {
  if (!node.IsSequence()) {
    throw ConfigError("web config: " + key + ": expected a list");
  }
  std::vector<std::string> suites;
  for (const YAML::Node& item : node) {
    const std::string name = Scalar(item, key);
    const auto it = CipherSuiteNames().find(name);
    if (it == CipherSuiteNames().end()) {
      throw ConfigError("web config: " + key + ": unknown TLS 1.2 suite \"" +
                        name.substr(0, 64) +
                        "\" (use Go's names, e.g. "
                        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)");
    }
    suites.push_back(it->second);
  }
  if (suites.empty()) {
    throw ConfigError("web config: " + key +
                      ": empty list (omit the key for the default)");
  }
  return suites;
}

}  // namespace

WebConfig ParseWebConfig(const std::string& yaml_text,
                         const std::string& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError("web config: not valid YAML: " + e.msg + " (line " +
                      std::to_string(e.mark.line + 1) + ")");
  }
  WebConfig config;
  if (root.IsNull()) return config;
  if (!root.IsMap()) throw ConfigError("web config: expected a mapping");
  for (const auto& kv : root) {
    std::string key = kv.first.as<std::string>();
    const YAML::Node& value = kv.second;
    if (key == "tls_server_config") {
      if (value.IsNull()) continue;
      if (!value.IsMap()) {
        throw ConfigError("web config: tls_server_config: expected a mapping");
      }
      for (const auto& t : value) {
        std::string k = t.first.as<std::string>();
        std::string full = "tls_server_config." + k;
        if (k == "cert_file") {
          config.cert_file = Resolve(Scalar(t.second, full), base_dir);
        } else if (k == "key_file") {
          config.key_file = Resolve(Scalar(t.second, full), base_dir);
        } else if (k == "cipher_suites") {
          config.cipher_suites = ParseCipherSuites(t.second, full);
        } else if (k == "client_auth_type") {
          config.client_auth = ParseClientAuth(full, Scalar(t.second, full));
        } else if (k == "client_ca_file") {
          config.client_ca_file = Resolve(Scalar(t.second, full), base_dir);
        } else if (k == "min_version") {
          std::string v = Scalar(t.second, full);
          if (v == "TLS13") {
            config.tls13_only = true;
          } else if (v != "TLS12") {
            throw ConfigError("web config: " + full + ": \"" + v +
                              "\" is not TLS12 or TLS13 (older versions "
                              "are not offered)");
          }
        } else {
          throw ConfigError("web config: unknown key \"" + full + "\"");
        }
      }
      if (config.cert_file.empty() || config.key_file.empty()) {
        throw ConfigError(
            "web config: tls_server_config needs both cert_file and key_file");
      }
      RequireReadable(config.cert_file, "tls_server_config.cert_file");
      RequireReadable(config.key_file, "tls_server_config.key_file");
      using ClientAuth = WebConfig::ClientAuth;
      const bool verifies = config.client_auth == ClientAuth::kVerifyIfGiven ||
                            config.client_auth == ClientAuth::kRequireAndVerify;
      if (verifies && config.client_ca_file.empty()) {
        throw ConfigError(
            "web config: tls_server_config.client_auth_type verifies client "
            "certificates and needs client_ca_file");
      }
      if (!config.client_ca_file.empty()) {
        // As exporter-toolkit: a CA that nothing uses is a mistake.
        if (config.client_auth == ClientAuth::kNone) {
          throw ConfigError(
              "web config: tls_server_config.client_ca_file is set but "
              "client_auth_type is NoClientCert");
        }
        RequireReadable(config.client_ca_file,
                        "tls_server_config.client_ca_file");
      }
      config.tls = true;
    } else if (key == "basic_auth_users") {
      if (value.IsNull()) continue;
      if (!value.IsMap()) {
        throw ConfigError("web config: basic_auth_users: expected a mapping");
      }
      for (const auto& u : value) {
        std::string user = u.first.as<std::string>();
        std::string hash = Scalar(u.second, "basic_auth_users." + user);
        if (hash.rfind("$2a$", 0) != 0 && hash.rfind("$2b$", 0) != 0 &&
            hash.rfind("$2y$", 0) != 0) {
          throw ConfigError("web config: basic_auth_users." + user +
                            ": not a bcrypt hash ($2a$, $2b$ or $2y$)");
        }
        if (user.empty() || user.find(':') != std::string::npos) {
          throw ConfigError("web config: basic_auth_users: bad user name \"" +
                            user + "\"");
        }
        config.users[user] = hash;
      }
    } else if (key == "http_server_config") {
      throw ConfigError(
          "web config: http_server_config is not supported by tcpstated");
    } else {
      throw ConfigError("web config: unknown key \"" + key + "\"");
    }
  }
  return config;
}

WebConfig LoadWebConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw ConfigError("web config file \"" + path +
                      "\": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  return ParseWebConfig(text.str(), dir.empty() ? "/" : dir);
}

}  // namespace tcpstated
