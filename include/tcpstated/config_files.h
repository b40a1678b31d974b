// The configuration files on disk: read (bounded, one clear error naming
// the path), then parsed by the pure parsers of config.h and web_config.h.
// This is the only place either configuration touches the file system.
//
// Thread-safety: reentrant, no state.
#pragma once

#include <string>

#include "tcpstated/config.h"
#include "tcpstated/web_config.h"

namespace tcpstated {

// Reads and parses --config.file. A missing, unreadable or oversized file
// is a ConfigError naming the path; its content's errors name the key.
Config LoadConfigFile(const std::string& path);

// Reads and parses --web.config.file (relative paths inside it resolve
// against its directory), then checks that the certificate, key and client
// CA it names can be read. Throws ConfigError naming the file or the key.
WebConfig LoadWebConfig(const std::string& path);

}  // namespace tcpstated
