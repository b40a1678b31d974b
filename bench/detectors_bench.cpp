// BM_DetectorsDestinations/<destinations>: one detector cycle
// (Detectors::Evaluate) over that many (source, destination, port) books of
// one namespace, nothing else in the inputs: what the kernel view pays every
// 5 s for the port-exhaustion detector. 50 is scale.py's idle sockets (one
// destination per holder); 2,000 and 20,000 a busy host's (other engineers'
// storms put thousands in the loaded profile of docs/performance.md,
// section 16). A tenth of the destinations hold most of the range (active);
// items_per_second is destinations per second on one core.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "tcpstated/detectors.h"

namespace {

using tcpstated::DestinationInput;
using tcpstated::DetectorConfig;
using tcpstated::DetectorInputs;
using tcpstated::Detectors;
using tcpstated::NetnsInput;

DetectorInputs Inputs(uint32_t destinations) {
  DetectorInputs in;
  NetnsInput ns;
  ns.netns = 7;
  ns.name = "bench";
  ns.have_settings = true;
  ns.settings.port_range_lo = 32768;
  ns.settings.port_range_hi = 60999;
  in.namespaces.push_back(ns);
  // Spread over addresses and ports in a scrambled order, as a hash map
  // of the mirror's would hand them over.
  for (uint32_t i = 0; i < destinations; ++i) {
    const uint32_t k = (i * 2654435761u) % destinations;
    DestinationInput d;
    d.netns = 7;
    d.saddr = {10, 0, 0, static_cast<uint8_t>(1 + k % 4)};
    d.daddr = {198, 51, static_cast<uint8_t>(k / 4 / 250 % 250),
               static_cast<uint8_t>(k / 4 % 250)};
    d.dport = static_cast<uint16_t>(443 + k % 4);
    d.ports_used = k % 10 == 0 ? 25000 : 1 + k % 300;
    in.destinations.push_back(d);
  }
  return in;
}

void BM_DetectorsDestinations(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  const DetectorInputs inputs = Inputs(n);
  Detectors detectors{DetectorConfig{}};
  double now = 0;
  for (auto _ : state) {
    auto report = detectors.Evaluate(inputs, now += 5);
    benchmark::DoNotOptimize(report);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * n);
}
BENCHMARK(BM_DetectorsDestinations)->Arg(50)->Arg(2000)->Arg(20000);

}  // namespace
