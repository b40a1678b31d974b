#include "tcpstated/http_metrics.h"

#include <cstddef>
#include <string>

#include "tcpstated/metric_family.h"

namespace tcpstated {
namespace {

using prometheus::MetricType;

constexpr FamilySpec kDropped = {
    "tcpstated_http_connections_dropped_total",
    "HTTP connections closed without an answer: overload (the connection "
    "cap was reached and the oldest unfinished connection made room), "
    "per_source (that address already held its share), timeout (no "
    "complete request, or the response not taken, in time), queue_full "
    "(every worker busy).",
    MetricType::Counter};
constexpr FamilySpec kAuthRefused = {
    "tcpstated_http_auth_refused_total",
    "Requests refused by basic authentication: invalid (missing, malformed "
    "or wrong credentials, 401), rate_limited (the source's budget of "
    "failed logins is used up, 429), busy (another password check was "
    "running, 429).",
    MetricType::Counter};

// One sample per value of the enum `Reason` (which ends in kCount), every
// one even at zero, labelled reason="name(value)".
template <typename Reason, typename NameOf, typename CountOf>
prometheus::MetricFamily ByReason(const FamilySpec& spec, NameOf name_of,
                                  CountOf count_of) {
  prometheus::MetricFamily family = NewFamily(spec);
  for (size_t i = 0; i < static_cast<size_t>(Reason::kCount); ++i) {
    const auto reason = static_cast<Reason>(i);
    AddSample(family, {{"reason", std::string(name_of(reason))}},
              static_cast<double>(count_of(reason)));
  }
  return family;
}

}  // namespace

std::vector<prometheus::MetricFamily> HttpServerMetrics(
    const HttpServer& server) {
  using Drop = HttpServer::Drop;
  using AuthRefusal = HttpServer::AuthRefusal;
  return {ByReason<Drop>(kDropped, HttpServer::DropName,
                         [&server](Drop d) { return server.dropped(d); }),
          ByReason<AuthRefusal>(
              kAuthRefused, HttpServer::AuthRefusalName,
              [&server](AuthRefusal r) { return server.auth_refused(r); })};
}

}  // namespace tcpstated
