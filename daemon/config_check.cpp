#include "tcpstated/config_check.h"

#include "tcpstated/config_files.h"
#include "tcpstated/tls_context.h"

namespace tcpstated {

void CheckConfigForStart(const Config& config) {
  if (config.web.config_file.empty()) return;
  const WebConfig web = LoadWebConfig(config.web.config_file);
  // LoadWebConfig only proves the files can be read; a key that does not
  // match its certificate, or an encrypted one, fails here as at a start.
  MakeTlsContext(web);
}

}  // namespace tcpstated
