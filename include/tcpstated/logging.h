// The daemon's one logger: spdlog to stderr, as logfmt-style text or JSON
// lines (log.format), without a timestamp under journald (JOURNAL_STREAM),
// which stamps every line itself.
//
// Thread-safety: SetUpLogging once from main before any thread starts; the
// formatter is then used by spdlog under its own lock.
#pragma once

#include <spdlog/formatter.h>

#include <memory>

#include "tcpstated/config.h"

namespace tcpstated {

// The line format: JSON-escapes the message when `format` is kJson, and
// leaves the timestamp out when `journal` is set.
std::unique_ptr<spdlog::formatter> MakeLogFormatter(LogFormat format,
                                                    bool journal);

// Makes the default spdlog logger the one `config.log` asks for.
void SetUpLogging(const Config& config);

}  // namespace tcpstated
