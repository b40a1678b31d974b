// The --web.config.file, in the Prometheus exporter-toolkit format: TLS for
// the endpoint and HTTP basic authentication with bcrypt password hashes.
//
//   tls_server_config:
//     cert_file: /etc/tcpstated/tls.crt   # relative paths: to this file
//     key_file: /etc/tcpstated/tls.key
//     min_version: TLS12                  # TLS12 (default) or TLS13
//     cipher_suites:                      # TLS 1.2 suites, Go names;
//       - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256  # default: ECDHE + AEAD
//     client_auth_type: RequireAndVerifyClientCert  # default NoClientCert
//     client_ca_file: /etc/tcpstated/clients-ca.crt
//   basic_auth_users:
//     prometheus: $2y$10$...              # bcrypt, e.g. htpasswd -nBC 10
//
// Parsed through the same strict YAML walk as the main configuration
// (yaml_fields.h): unknown keys, wrong types (a quoted or typed value where
// a string is expected included) are one-line ConfigErrors naming the key.
// Reading the file and checking that the files it names can be read is
// LoadWebConfig's, in config_files.h.
//
// Thread-safety: a parsed WebConfig is a plain value.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace tcpstated {

struct WebConfig {
  bool tls = false;
  std::string cert_file;  // absolute after parsing
  std::string key_file;
  bool tls13_only = false;
  // OpenSSL names of the TLS 1.2 suites offered, in order; empty: the
  // forward-secret AEAD suites (ECDHE with AES-GCM or ChaCha20-Poly1305).
  // TLS 1.3 suites are all forward-secret AEAD and are not configurable,
  // as in exporter-toolkit.
  std::vector<std::string> cipher_suites;
  // exporter-toolkit's client_auth_type, named after Go's tls.ClientAuthType.
  enum class ClientAuth {
    kNone,              // NoClientCert
    kRequest,           // RequestClientCert: asked for, not checked
    kRequireAny,        // RequireAnyClientCert: required, not checked
    kVerifyIfGiven,     // VerifyClientCertIfGiven
    kRequireAndVerify,  // RequireAndVerifyClientCert
  };
  ClientAuth client_auth = ClientAuth::kNone;
  std::string client_ca_file;                // absolute after parsing
  std::map<std::string, std::string> users;  // name -> bcrypt hash
};

// Parses the YAML text of a web config whose file lives in `base_dir`
// (relative paths resolve against it). Pure. Throws ConfigError
// "web config: <key>: <problem>".
WebConfig ParseWebConfig(const std::string& yaml_text,
                         const std::string& base_dir);

}  // namespace tcpstated
