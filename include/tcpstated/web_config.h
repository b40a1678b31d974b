// The --web.config.file, in the Prometheus exporter-toolkit format: TLS for
// the endpoint and HTTP basic authentication with bcrypt password hashes.
//
//   tls_server_config:
//     cert_file: /etc/tcpstated/tls.crt   # relative paths: to this file
//     key_file: /etc/tcpstated/tls.key
//     min_version: TLS12                  # TLS12 (default) or TLS13
//   basic_auth_users:
//     prometheus: $2y$10$...              # bcrypt, e.g. htpasswd -nBC 10
//
// Parsing is strict like the main configuration: unknown keys, wrong types
// and missing files are one-line ConfigErrors naming the key.
//
// Thread-safety: a parsed WebConfig is immutable; CheckBasicAuth may be
// called concurrently.
#pragma once

#include <map>
#include <string>

namespace tcpstated {

struct WebConfig {
  bool tls = false;
  std::string cert_file;  // absolute after parsing
  std::string key_file;
  bool tls13_only = false;
  std::map<std::string, std::string> users;  // name -> bcrypt hash
};

// Parses the YAML text of a web config whose file lives in `base_dir`.
// Throws ConfigError naming the key.
WebConfig ParseWebConfig(const std::string& yaml_text,
                         const std::string& base_dir);
// Reads and parses `path`; throws ConfigError naming the file or key.
WebConfig LoadWebConfig(const std::string& path);

// Checks an Authorization header value ("Basic base64(user:password)")
// against the users, with the system's crypt (libxcrypt: bcrypt $2a/$2b/
// $2y). False for anything malformed. No users configured: always true.
bool CheckBasicAuth(const WebConfig& config, const char* authorization);

}  // namespace tcpstated
