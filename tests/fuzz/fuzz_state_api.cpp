// libFuzzer target: BuildStateJson (tcpstated/state_api.h), the /api/v1/state
// answer, from any namespaces, counts, counters and detection series.
//
// The input is read as a stream: each byte picks what comes next (a
// namespace with its twelve counts, a netns_info name, a series of one of the
// detection families with labels of any bytes, counters), so every label may
// hold any bytes and every number any value. The answer must always be valid
// JSON, within kStateJsonMaxBytes, with the bounded lists within their
// bounds.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "tcpstated/state_api.h"

namespace {

using namespace tcpstated;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_state_api: invariant violated: %s\n", what);
  std::abort();
}

void Check(bool ok, const char* what) {
  if (!ok) Fail(what);
}

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool done() const { return p_ >= end_; }
  uint8_t Byte() { return done() ? 0 : *p_++; }
  uint64_t U64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | Byte();
    return v;
  }
  // A length byte, then that many bytes.
  std::string Text() {
    size_t n = Byte();
    std::string s;
    while (n-- > 0 && !done()) s.push_back(static_cast<char>(Byte()));
    return s;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

std::vector<Series>* Family(DetectionReport& r, uint8_t which) {
  std::vector<Series>* families[] = {
      &r.close_wait_sockets,         &r.close_wait_leaked_sockets,
      &r.close_wait_oldest_seconds,  &r.listen_syn_recv_sockets,
      &r.listen_accept_queue_length, &r.listen_accept_queue_limit,
      &r.synack_retransmits_total,   &r.syn_flood_active,
      &r.ephemeral_ports_available,  &r.ephemeral_ports_used,
      &r.port_exhaustion_active,     &r.netns_info};
  return families[which % (sizeof(families) / sizeof(families[0]))];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  StateInputs s;
  while (!in.done()) {
    const uint8_t op = in.Byte();
    switch (op % 5) {
      case 0: {
        StateCounts c{};
        for (auto& v : c) v = static_cast<int64_t>(in.U64());
        s.snapshot.sockets.emplace_back(static_cast<uint32_t>(in.U64()), c);
        break;
      }
      case 1: {
        const uint8_t from = in.Byte() % kStateSlots;
        const uint8_t to = in.Byte() % kStateSlots;
        s.snapshot.kernel.transitions[from][to] = in.U64();
        s.snapshot.invalid[to][from] = in.U64();
        break;
      }
      case 2:
      case 3: {
        Series series;
        const uint8_t labels = in.Byte() % 9;
        static const char* kKeys[] = {"netns", "comm",  "unit",  "role", "port",
                                      "saddr", "daddr", "dport", "name"};
        for (uint8_t i = 0; i < labels; ++i) {
          series.labels[kKeys[in.Byte() % 9]] = in.Text();
        }
        uint64_t bits = in.U64();
        std::memcpy(&series.value, &bits, sizeof(bits));  // NaN, inf too
        Family(s.report, in.Byte())->push_back(std::move(series));
        break;
      }
      default:
        s.snapshot.mirror.events[in.Byte() % kSourceCount] = in.U64();
        s.snapshot.kernel.lost[in.Byte() % kSourceCount] = in.U64();
        s.snapshot.version = in.Text();
        s.telemetry_path = in.Text();
        s.now_ns = in.U64();
        uint64_t bits = in.U64();
        std::memcpy(&s.last_reconcile_age_seconds, &bits, sizeof(bits));
    }
  }
  const std::string out = BuildStateJson(s);
  Check(out.size() <= kStateJsonMaxBytes, "answer over kStateJsonMaxBytes");
  const nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  Check(!j.is_discarded(), "answer is not valid JSON");
  Check(j["api_version"] == kStateApiVersion, "api_version");
  Check(j["namespaces"].size() <= kStateMaxNamespaces, "namespaces bound");
  for (const char* d : {"close_wait_leaks", "syn_floods", "port_exhaustion"}) {
    Check(j["detections"][d].size() <= kStateMaxRows, "rows bound");
  }
  return 0;
}
