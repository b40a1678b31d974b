#include "tcpstated/web_config.h"

#include <crypt.h>
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

std::string DecodeBase64(const std::string& in, bool* ok) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  size_t padding = 0;
  for (char c : in) {
    if (c == '=') {
      padding++;
      continue;
    }
    size_t v = kAlphabet.find(c);
    if (v == std::string::npos || padding > 0) {
      *ok = false;
      return "";
    }
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  *ok = padding <= 2 && (in.size() % 4) == 0;
  return out;
}

// Compares without an early exit, so timing does not reveal the prefix.
bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
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

bool CheckBasicAuth(const WebConfig& config, const char* authorization) {
  if (config.users.empty()) return true;
  if (authorization == nullptr) return false;
  std::string header(authorization);
  if (header.rfind("Basic ", 0) != 0) return false;
  bool ok = false;
  std::string decoded = DecodeBase64(header.substr(6), &ok);
  size_t colon = decoded.find(':');
  if (!ok || colon == std::string::npos) return false;
  std::string user = decoded.substr(0, colon);
  std::string password = decoded.substr(colon + 1);
  auto it = config.users.find(user);
  // An unknown user still pays for one hash, so timing does not tell
  // which user names exist.
  const std::string& hash =
      it != config.users.end() ? it->second : config.users.begin()->second;
  crypt_data data{};
  const char* computed = crypt_r(password.c_str(), hash.c_str(), &data);
  bool match = computed != nullptr && ConstantTimeEquals(computed, hash);
  return match && it != config.users.end();
}

}  // namespace tcpstated
