#include "tcpstated/web_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tcpstated/config.h"
#include "tcpstated/yaml_fields.h"

namespace tcpstated {
namespace {

std::string Resolve(const std::string& path, const std::string& base_dir) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  return base_dir + "/" + path;
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
    FailKey(key, QuoteForMessage(value, 64) +
                     " is not NoClientCert, RequestClientCert, "
                     "RequireAnyClientCert, VerifyClientCertIfGiven or "
                     "RequireAndVerifyClientCert");
  }
  return it->second;
}

std::vector<std::string> ParseCipherSuites(const std::string& key,
                                           const YAML::Node& node) {
  std::vector<std::string> suites;
  for (const std::string& name : GetStringList(key, node)) {
    const auto it = CipherSuiteNames().find(name);
    if (it == CipherSuiteNames().end()) {
      FailKey(key, "unknown TLS 1.2 suite " + QuoteForMessage(name, 64) +
                       " (use Go's names, e.g. "
                       "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)");
    }
    suites.push_back(it->second);
  }
  if (suites.empty()) FailKey(key, "empty list (omit the key for the default)");
  return suites;
}

void ApplyTlsServerConfig(const std::string& base_dir, const YAML::Node& node,
                          WebConfig& config) {
  auto path = [&](std::string* out) {
    return [out, &base_dir](const std::string& k, const YAML::Node& n) {
      *out = Resolve(GetString(k, n), base_dir);
    };
  };
  const std::vector<YamlField> fields = {
      {"cert_file", path(&config.cert_file)},
      {"key_file", path(&config.key_file)},
      {"client_ca_file", path(&config.client_ca_file)},
      {"cipher_suites",
       [&config](const std::string& k, const YAML::Node& n) {
         config.cipher_suites = ParseCipherSuites(k, n);
       }},
      {"client_auth_type",
       [&config](const std::string& k, const YAML::Node& n) {
         config.client_auth = ParseClientAuth(k, GetString(k, n));
       }},
      {"min_version",
       [&config](const std::string& k, const YAML::Node& n) {
         const std::string version = GetString(k, n);
         if (version != "TLS12" && version != "TLS13") {
           FailKey(k, QuoteForMessage(version, 64) +
                          " is not TLS12 or TLS13 (older versions are not "
                          "offered)");
         }
         config.tls13_only = version == "TLS13";
       }},
  };
  WalkYamlMap("", "tls_server_config", node, fields);
  if (config.cert_file.empty() || config.key_file.empty()) {
    FailKey("tls_server_config", "needs both cert_file and key_file");
  }
  using ClientAuth = WebConfig::ClientAuth;
  const bool verifies = config.client_auth == ClientAuth::kVerifyIfGiven ||
                        config.client_auth == ClientAuth::kRequireAndVerify;
  if (verifies && config.client_ca_file.empty()) {
    FailKey("tls_server_config.client_auth_type",
            "verifies client certificates and needs client_ca_file");
  }
  // As exporter-toolkit: a CA that nothing uses is a mistake.
  if (!config.client_ca_file.empty() &&
      config.client_auth == ClientAuth::kNone) {
    FailKey("tls_server_config.client_ca_file",
            "is set but client_auth_type is NoClientCert");
  }
  config.tls = true;
}

void ApplyBasicAuthUsers(const YAML::Node& node, WebConfig& config) {
  if (ClassifyYaml(node) == YamlKind::kNull) return;
  if (!node.IsMap()) FailExpected("basic_auth_users", "a map", node);
  for (const auto& entry : node) {
    // Copies: yaml-cpp's iterator hands out a temporary proxy.
    const YAML::Node name = entry.first;
    const YAML::Node value = entry.second;
    // A user name is a map key, not a typed value: 1234 is a name too.
    if (!name.IsScalar()) {
      FailExpected("basic_auth_users", "user names as keys", name);
    }
    const std::string user = name.Scalar();
    // RFC 7617 allows neither a colon nor a control character in a user-id
    // (and a control character would break the error's one line).
    const bool control = std::any_of(user.begin(), user.end(), [](char c) {
      return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
    });
    if (user.empty() || user.find(':') != std::string::npos || control) {
      FailKey("basic_auth_users", "bad user name " + QuoteForMessage(user));
    }
    const std::string key = "basic_auth_users." + user;
    const std::string hash = GetString(key, value);
    if (hash.rfind("$2a$", 0) != 0 && hash.rfind("$2b$", 0) != 0 &&
        hash.rfind("$2y$", 0) != 0) {
      FailKey(key, "not a bcrypt hash ($2a$, $2b$ or $2y$)");
    }
    if (!config.users.emplace(user, hash).second) {
      FailKey("basic_auth_users", "duplicate user " + QuoteForMessage(user));
    }
  }
}

}  // namespace

WebConfig ParseWebConfig(const std::string& yaml_text,
                         const std::string& base_dir) {
  WebConfig config;
  try {
    const std::vector<YamlField> top = {
        {"tls_server_config",
         [&](const std::string&, const YAML::Node& n) {
           if (ClassifyYaml(n) != YamlKind::kNull) {
             ApplyTlsServerConfig(base_dir, n, config);
           }
         }},
        {"basic_auth_users",
         [&config](const std::string&, const YAML::Node& n) {
           ApplyBasicAuthUsers(n, config);
         }},
        {"http_server_config",
         [](const std::string& k, const YAML::Node&) {
           FailKey(k, "not supported by tcpstated");
         }},
    };
    WalkYamlMap("", "", LoadSingleDocument(yaml_text, ""), top);
  } catch (const ConfigError& e) {
    throw ConfigError(std::string("web config: ") + e.what());
  }
  return config;
}

}  // namespace tcpstated
