#include "tcpstated/state_api.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>
#include <vector>

#include "tcpstated/transition_table.h"

namespace tcpstated {
namespace {

using Json = nlohmann::ordered_json;
using Labels = std::map<std::string, std::string>;

// Labels come from process names and unit names: any bytes. Cut them (dump
// replaces invalid UTF-8, so a cut inside a character is harmless).
std::string Label(const Labels& labels, const char* key) {
  auto it = labels.find(key);
  if (it == labels.end()) return std::string();
  return it->second.substr(0, kStateMaxLabelBytes);
}

// netns and port labels are numbers; "other" (the folded rest) is not.
Json NumberOrText(const std::string& text) {
  if (!text.empty() && text.size() <= 10 &&
      text.find_first_not_of("0123456789") == std::string::npos) {
    return Json(std::stoull(text));
  }
  return Json(text.substr(0, kStateMaxLabelBytes));
}

double ValueOf(const std::vector<Series>& series, const Labels& labels) {
  for (const Series& s : series) {
    if (s.labels == labels) return s.value;
  }
  return 0;
}

// Series of `active` with a value above zero, largest `order` first, at
// most kStateMaxRows.
std::vector<const Series*> Active(const std::vector<Series>& active,
                                  const std::vector<Series>& order) {
  std::vector<const Series*> out;
  for (const Series& s : active) {
    if (s.value > 0) out.push_back(&s);
  }
  // NaN last, so that the comparison stays a strict weak order.
  auto key = [&](const Series* s) {
    const double v = ValueOf(order, s->labels);
    return std::isnan(v) ? -std::numeric_limits<double>::infinity() : v;
  };
  std::stable_sort(
      out.begin(), out.end(),
      [&](const Series* a, const Series* b) { return key(a) > key(b); });
  if (out.size() > kStateMaxRows) out.resize(kStateMaxRows);
  return out;
}

// Series values are doubles; a count is whole and never below zero (and a
// cast of a double beyond uint64_t would be undefined).
uint64_t Count(double value) {
  if (!(value > 0)) return 0;
  if (value >= 18446744073709551615.0) return UINT64_MAX;
  return static_cast<uint64_t>(value);
}

Json Namespaces(const StateInputs& in, size_t* omitted) {
  std::map<uint32_t, std::string> names;
  for (const Series& s : in.report.netns_info) {
    auto netns = NumberOrText(Label(s.labels, "netns"));
    if (netns.is_number_unsigned() && netns.get<uint64_t>() <= UINT32_MAX) {
      names[netns.get<uint32_t>()] = Label(s.labels, "name");
    }
  }
  struct Row {
    uint32_t netns;
    bool host;
    double total;  // for the order only: sums of int64 may not fit one
    StateCounts counts;
  };
  std::map<uint32_t, Row> rows;
  for (const auto& [netns, name] : names) {
    rows[netns] = Row{netns, name == "host", 0, StateCounts{}};
  }
  for (const auto& [netns, counts] : in.snapshot.sockets) {
    Row& row = rows[netns];
    auto name = names.find(netns);
    row.netns = netns;
    row.host = name != names.end() && name->second == "host";
    row.counts = counts;
    row.total = 0;
    for (TcpState state : kReportedStates) {
      row.total +=
          static_cast<double>(std::max<int64_t>(0, counts[StateIndex(state)]));
    }
  }
  std::vector<Row> sorted;
  for (auto& [netns, row] : rows) sorted.push_back(row);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Row& a, const Row& b) {
                     if (a.host != b.host) return a.host;
                     return a.total > b.total;
                   });
  *omitted = sorted.size() > kStateMaxNamespaces
                 ? sorted.size() - kStateMaxNamespaces
                 : 0;
  if (sorted.size() > kStateMaxNamespaces) sorted.resize(kStateMaxNamespaces);
  Json out = Json::array();
  for (const Row& row : sorted) {
    Json states = Json::object();
    for (TcpState state : kReportedStates) {
      states[std::string(StateName(state))] =
          std::max<int64_t>(0, row.counts[StateIndex(state)]);
    }
    auto name = names.find(row.netns);
    out.push_back({{"netns", row.netns},
                   {"name", name != names.end() ? name->second : ""},
                   {"states", std::move(states)}});
  }
  return out;
}

Json Transitions(const TransitionMatrix& counts, bool legal_always) {
  std::array<std::array<bool, kStateSlots>, kStateSlots> legal{};
  for (const auto& [from, to] : LegalTransitions()) {
    legal[StateIndex(from)][StateIndex(to)] = true;
  }
  Json out = Json::array();
  for (size_t from = 1; from < kStateSlots; ++from) {
    for (size_t to = 1; to < kStateSlots; ++to) {
      const uint64_t n = counts[from][to];
      if (n == 0 && !(legal_always && legal[from][to])) continue;
      out.push_back({{"from", StateName(static_cast<TcpState>(from))},
                     {"to", StateName(static_cast<TcpState>(to))},
                     {"count", n}});
    }
  }
  return out;
}

Json CloseWaitLeaks(const DetectionReport& r) {
  Json out = Json::array();
  for (const Series* s :
       Active(r.close_wait_leaked_sockets, r.close_wait_leaked_sockets)) {
    out.push_back(
        {{"netns", NumberOrText(Label(s->labels, "netns"))},
         {"comm", Label(s->labels, "comm")},
         {"unit", Label(s->labels, "unit")},
         {"role", Label(s->labels, "role")},
         {"port", NumberOrText(Label(s->labels, "port"))},
         {"leaked", Count(s->value)},
         {"sockets", Count(ValueOf(r.close_wait_sockets, s->labels))},
         {"oldest_seconds", ValueOf(r.close_wait_oldest_seconds, s->labels)}});
  }
  return out;
}

Json SynFloods(const DetectionReport& r) {
  Json out = Json::array();
  for (const Series* s :
       Active(r.syn_flood_active, r.listen_syn_recv_sockets)) {
    out.push_back(
        {{"netns", NumberOrText(Label(s->labels, "netns"))},
         {"port", NumberOrText(Label(s->labels, "port"))},
         {"half_open", Count(ValueOf(r.listen_syn_recv_sockets, s->labels))},
         {"accept_queue",
          Count(ValueOf(r.listen_accept_queue_length, s->labels))},
         {"queue_limit",
          Count(ValueOf(r.listen_accept_queue_limit, s->labels))},
         {"synack_retransmits",
          Count(ValueOf(r.synack_retransmits_total, s->labels))}});
  }
  return out;
}

Json PortExhaustion(const DetectionReport& r) {
  Json out = Json::array();
  for (const Series* s :
       Active(r.port_exhaustion_active, r.ephemeral_ports_used)) {
    const Labels netns = {{"netns", s->labels.count("netns") != 0
                                        ? s->labels.at("netns")
                                        : std::string()}};
    out.push_back(
        {{"netns", NumberOrText(Label(s->labels, "netns"))},
         {"saddr", Label(s->labels, "saddr")},
         {"daddr", Label(s->labels, "daddr")},
         {"dport", NumberOrText(Label(s->labels, "dport"))},
         {"ports_used", Count(ValueOf(r.ephemeral_ports_used, s->labels))},
         {"ports_available",
          Count(ValueOf(r.ephemeral_ports_available, netns))}});
  }
  return out;
}

Json Health(const StateInputs& in) {
  const Snapshot& s = in.snapshot;
  uint64_t events = 0, lost = 0, missed = 0;
  for (size_t i = 0; i < kSourceCount; ++i) {
    if (!IsSentSource(static_cast<Source>(i))) continue;
    events += s.mirror.events[i];
    lost += s.kernel.lost[i];
    missed += s.kernel.missed[i];
  }
  Json age = in.last_reconcile_age_seconds >= 0
                 ? Json(in.last_reconcile_age_seconds)
                 : Json(nullptr);
  return {{"events", events},
          {"events_lost", lost},
          {"events_missed", missed},
          {"decode_errors", s.decode_errors},
          {"resyncs", s.mirror.resyncs},
          {"evictions", s.mirror.evictions},
          {"tracked_sockets", s.mirror.tracked},
          {"tracked_sockets_limit", s.mirror.limit},
          {"reconciles", in.reconciles},
          {"last_reconcile_age_seconds", std::move(age)},
          {"last_reconcile_dump_seconds", in.last_reconcile_dump_seconds},
          {"sock_diag_errors", in.sock_diag_errors}};
}

}  // namespace

std::string BuildStateJson(const StateInputs& in) {
  size_t omitted = 0;
  Json namespaces = Namespaces(in, &omitted);
  Json doc = {
      {"api_version", kStateApiVersion},
      {"tcpstated",
       {{"version", in.snapshot.version.substr(0, kStateMaxLabelBytes)},
        {"attach", in.snapshot.attach.substr(0, kStateMaxLabelBytes)},
        {"telemetry_path", in.telemetry_path.substr(0, kStateMaxLabelBytes)}}},
      {"now_ms", in.now_ns / 1000000},
      {"debug_sockets", in.debug_sockets},
      {"namespaces", std::move(namespaces)},
      {"namespaces_omitted", omitted},
      {"transitions", Transitions(in.snapshot.kernel.transitions, true)},
      {"invalid_transitions", Transitions(in.snapshot.invalid, false)},
      {"detections",
       {{"close_wait_leaks", CloseWaitLeaks(in.report)},
        {"syn_floods", SynFloods(in.report)},
        {"port_exhaustion", PortExhaustion(in.report)}}},
      {"health", Health(in)}};
  return doc.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace tcpstated
