// The one exception type of the HTTP endpoint's set-up: a line naming the
// address or file at fault, for the start-up error or the SIGHUP log line.
#pragma once

#include <stdexcept>

namespace tcpstated {

class HttpError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace tcpstated
