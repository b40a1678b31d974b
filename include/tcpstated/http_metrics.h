// The HTTP endpoint's own metric families: connections it closed without an
// answer and requests that basic authentication refused, by reason.
//
// Thread-safety: reads the server's atomic counters; any thread.
#pragma once

#include <prometheus/metric_family.h>

#include <vector>

#include "tcpstated/http_server.h"

namespace tcpstated {

std::vector<prometheus::MetricFamily> HttpServerMetrics(
    const HttpServer& server);

}  // namespace tcpstated
