// --config.check: everything a start checks of the configuration before it
// touches the kernel or the network, so that `systemctl reload` (and an
// operator before a restart) can refuse a file the daemon would refuse.
//
// Thread-safety: reentrant, no state.
#pragma once

#include "tcpstated/config.h"

namespace tcpstated {

// Checks what ParseCommandLine cannot see from the values alone: the web
// config file is read and parsed, and its TLS certificate, key and client CA
// are loaded and matched as the HTTP server's start would. Loads no BPF
// program, binds no socket and needs no privilege beyond reading the files
// (the running daemon holds the listen address; a reload must not need it).
// Throws ConfigError or HttpError with one line naming the file or key.
void CheckConfigForStart(const Config& config);

}  // namespace tcpstated
