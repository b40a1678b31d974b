#include "tcpstated/http_metrics.h"

#include <string>

namespace tcpstated {

std::vector<prometheus::MetricFamily> HttpServerMetrics(
    const HttpServer& server) {
  using prometheus::MetricType;
  prometheus::MetricFamily dropped;
  dropped.name = "tcpstated_http_connections_dropped_total";
  dropped.help =
      "HTTP connections closed without an answer: overload (the connection "
      "cap was reached and the oldest unfinished connection made room), "
      "per_source (that address already held its share), timeout (no "
      "complete request, or the response not taken, in time), queue_full "
      "(every worker busy).";
  dropped.type = MetricType::Counter;
  for (int i = 0; i < static_cast<int>(HttpServer::Drop::kCount); ++i) {
    const auto drop = static_cast<HttpServer::Drop>(i);
    dropped.metric.emplace_back();
    dropped.metric.back().label = {
        {"reason", std::string(HttpServer::DropName(drop))}};
    dropped.metric.back().counter.value =
        static_cast<double>(server.dropped(drop));
  }
  prometheus::MetricFamily refused;
  refused.name = "tcpstated_http_auth_refused_total";
  refused.help =
      "Requests refused by basic authentication: invalid (missing, malformed "
      "or wrong credentials, 401), rate_limited (the source's budget of "
      "failed logins is used up, 429), busy (another password check was "
      "running, 429).";
  refused.type = MetricType::Counter;
  for (int i = 0; i < static_cast<int>(HttpServer::AuthRefusal::kCount); ++i) {
    const auto refusal = static_cast<HttpServer::AuthRefusal>(i);
    refused.metric.emplace_back();
    refused.metric.back().label = {
        {"reason", std::string(HttpServer::AuthRefusalName(refusal))}};
    refused.metric.back().counter.value =
        static_cast<double>(server.auth_refused(refusal));
  }
  return {std::move(dropped), std::move(refused)};
}

}  // namespace tcpstated
