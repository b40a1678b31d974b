// BM_OutcomesObserve/<destinations>: what the mirror's observer
// (ConnectionOutcomes: the connect and reset books) costs per event it is
// shown, alone. Each connection of the stream is the client side of
// storm.py's reset storm as the observer sees it: SYN_SENT -> ESTABLISHED
// (a connect book lookup), a received reset (a reset book lookup), the
// SO_LINGER 0 close (remembered) and the reset it then sends (matched to
// that close). Connections go round-robin over the given number of
// destinations (address, port): 32 is storm.py's, 2000 is more than the
// books' default bound (500 keys), so that every connect is a new key and
// the book keeps folding its oldest half (a proxy or scanner talking to
// many backends). One iteration is 4096 events; items_per_second is events
// per second on one core.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "tcpstated/connection_outcomes.h"
#include "tcpstated/event.h"
#include "tcpstated/mirror.h"

namespace {

using tcpstated::Event;
using tcpstated::Role;
using tcpstated::SocketEntry;
using tcpstated::Source;
using tcpstated::TcpState;

struct Step {
  Event event;
  SocketEntry before;
  bool has_before = true;
};

// One connection's four observed events, to destination `d`.
void AddConnection(uint32_t d, uint64_t id, uint64_t ts,
                   std::vector<Step>* out) {
  Event e;
  e.netns = 4026531840u;
  e.id = id;
  e.ts_ns = ts;
  e.sport = 40000;
  e.dport = static_cast<uint16_t>(1000 + d % 50000);
  e.daddr = {198, 51, 100, static_cast<uint8_t>(d / 50000)};
  SocketEntry before;
  before.id = id;
  before.role = Role::kClient;
  before.state = TcpState::kSynSent;
  before.entered_ns = ts - 200000;
  e.oldstate = TcpState::kSynSent;
  e.newstate = TcpState::kEstablished;
  out->push_back({e, before});
  before.state = TcpState::kEstablished;
  Event reset = e;
  reset.source = Source::kReceiveReset;
  reset.oldstate = TcpState::kEstablished;
  out->push_back({reset, before});
  Event close = e;
  close.oldstate = TcpState::kEstablished;
  close.newstate = TcpState::kClose;
  out->push_back({close, before});
  Event sent = e;
  sent.source = Source::kSendReset;
  sent.oldstate = TcpState::kClose;
  out->push_back({sent, before, false});
}

void BM_OutcomesObserve(benchmark::State& state) {
  const auto destinations = static_cast<uint32_t>(state.range(0));
  constexpr size_t kBatch = 4096;
  tcpstated::ConnectionOutcomes outcomes(50);  // the default series bound
  std::vector<Step> steps;
  uint64_t id = 1;
  uint64_t ts = 1000000000;
  uint32_t d = 0;
  for (auto _ : state) {
    state.PauseTiming();
    steps.clear();
    while (steps.size() < kBatch) {
      AddConnection(d, id++, ts, &steps);
      d = (d + 1) % destinations;
      ts += 1000;
    }
    state.ResumeTiming();
    for (const Step& s : steps) {
      outcomes.BeforeApply(s.event, s.has_before ? &s.before : nullptr, false);
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
  state.counters["folded_keys"] =
      static_cast<double>(outcomes.connects().book().folded_keys());
}
BENCHMARK(BM_OutcomesObserve)->Arg(32)->Arg(2000);

}  // namespace
