// tcpstated-bench: what the daemon's event path and its scrape cost on one
// core, measured with Google Benchmark.
//
// BM_Mirror<Scenario>/<live sockets> replays a pre-generated stream of raw
// ring-buffer records (struct tcpstated_event, exactly as the BPF side
// writes them) through what RingConsumer::HandleRecord does for each record:
// DecodeEvent + Mirror::Apply (which maintains every aggregate the metrics
// are built from, and feeds the daemon's observer, ConnectionOutcomes, the
// connects and resets per destination and port), with the consumer's lock
// released and retaken every 4096 records and Mirror::Expire run after each
// batch, as Daemon::Tick would. One benchmark iteration is one batch of 4096
// records; items_per_second is events per second on one core.
//
// The table is at steady state before timing starts: it holds the given
// number of live sockets (long-lived ESTABLISHED connections, plus, in the
// scenarios that leave TIME_WAIT behind, about half of it in inferred
// TIME_WAIT entries that Expire ages out as the stream's clock advances).
// Each pass over the stream gets fresh socket cookies and a later clock
// (rewritten with the timer paused), so every pass is new connections.
//
// Counters: allocs_per_event (operator new calls per event in the timed
// region), tracked (table size at the end), resyncs and invalid (both 0 when
// the stream is a faithful kernel sequence), evictions.
//
// BM_MirrorScrape/<live sockets>: one /metrics rendering as
// Daemon::RenderMetrics does it (snapshot copied out of the mirror, sorted,
// BuildMetrics, TextSerializer), to show that it does not depend on the
// number of sockets.

#include <benchmark/benchmark.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bpf/tcpstated_abi.h"
#include "tcpstated/connection_outcomes.h"
#include "tcpstated/event.h"
#include "tcpstated/metrics.h"
#include "tcpstated/mirror.h"
#include "tcpstated/tcp_state.h"

// ---- Allocation counter: every operator new in this process -------------
//
// GCC flags free() of what its (replaced) operator new returned once both
// are inlined; they are the malloc/free pair here, so that is intended.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {
std::atomic<uint64_t> g_allocs{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

using tcpstated::Mirror;

constexpr uint64_t kSec = tcpstated::kNsPerSec;
constexpr uint32_t kNetns = 4026531840;  // init_net's inode number
constexpr uint64_t kNetnsCookie = 1;
constexpr uint16_t kServicePort = 8080;
constexpr uint64_t kListenerId = 1ULL << 60;
constexpr uint64_t kPrefillIdBase = 1ULL << 56;
// Records per lock hold in RingConsumer (kRecordsPerLockHold): one
// benchmark iteration.
constexpr size_t kBatch = 4096;
// Records per pass over the pre-generated stream: 3.5 MiB, the size of the
// daemon's default ring buffer (4 MiB), so the records come from the cache
// levels the kernel's fresh writes would be in, not from DRAM. Each pass is
// rewritten (fresh cookies, later clock) with the timer paused.
constexpr size_t kStreamRecords = 1 << 15;
// Connections in flight at once: their events interleave in the stream.
constexpr size_t kInFlight = 64;

enum : uint8_t {
  kEst = TCPSTATED_TCP_ESTABLISHED,
  kSynSent = TCPSTATED_TCP_SYN_SENT,
  kSynRecv = TCPSTATED_TCP_SYN_RECV,
  kFinWait1 = TCPSTATED_TCP_FIN_WAIT1,
  kFinWait2 = TCPSTATED_TCP_FIN_WAIT2,
  kClose = TCPSTATED_TCP_CLOSE,
  kCloseWait = TCPSTATED_TCP_CLOSE_WAIT,
  kLastAck = TCPSTATED_TCP_LAST_ACK,
  kListen = TCPSTATED_TCP_LISTEN,
};

// One endpoint of a connection, as the BPF side fills its records.
struct Endpoint {
  uint64_t id;
  uint32_t saddr, daddr;  // network byte order
  uint16_t sport, dport;
};

uint32_t Ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  uint8_t bytes[4] = {a, b, c, d};
  uint32_t v;
  std::memcpy(&v, bytes, 4);
  return v;
}

tcpstated_event Record(uint8_t source, const Endpoint& ep, uint8_t oldstate,
                       uint8_t newstate, uint8_t flags) {
  tcpstated_event r;
  std::memset(&r, 0, sizeof(r));
  r.source = source;
  r.id = ep.id;
  r.skaddr = 0xffff888200000000ULL + (ep.id & 0xffffff) * 0x800;
  r.netns = kNetns;
  r.netns_cookie = kNetnsCookie;
  r.sport = ep.sport;
  r.dport = ep.dport;
  std::memcpy(r.saddr, &ep.saddr, 4);
  std::memcpy(r.daddr, &ep.daddr, 4);
  std::memcpy(r.saddr4, &ep.saddr, 4);
  std::memcpy(r.daddr4, &ep.daddr, 4);
  r.oldstate = oldstate;
  r.newstate = newstate;
  r.flags = flags | TCPSTATED_F_COOKIE;
  if (flags & TCPSTATED_F_PROCESS_CTX) {
    r.tgid = 4242;
    r.pid = 4242;
    r.cgroup_id = 0x1f00;
    std::memcpy(r.comm, "storm", 6);
  }
  return r;
}

// The length the BPF side sends the record with: the short head for IPv4
// outside process context, the long record otherwise.
size_t RecordSize(const tcpstated_event& r) {
  return (r.flags & (TCPSTATED_F_IPV6 | TCPSTATED_F_PROCESS_CTX)) != 0
             ? sizeof(tcpstated_event)
             : sizeof(tcpstated_event_head);
}

tcpstated_event State(const Endpoint& ep, uint8_t from, uint8_t to,
                      uint8_t flags = 0) {
  return Record(TCPSTATED_SRC_STATE, ep, from, to, flags);
}

constexpr uint8_t kProc = TCPSTATED_F_PROCESS_CTX;
constexpr uint8_t kPeerFin = TCPSTATED_F_PEER_FIN;

// ---- Lifecycles, in the order the kernel emits their events -------------
//
// Orders checked against bpftrace on this kernel (6.18) for loopback pairs:
// a client that closes first becomes an orphan FIN_WAIT2 timewait socket at
// once (5->7 without SOCK_DONE) and is promoted to TIME_WAIT when the server
// closes (8->9); an SO_LINGER 0 close emits 1->7 first, then the peer's
// tcp_receive_reset and 1->7, and its own tcp_send_reset (state CLOSE) last.

enum class Scenario {
  kClient,    // connect() to a remote server, close first, peer FIN seen
  kServer,    // accept() from a remote client that closes first
  kReset,     // remote client resets an accepted connection
  kLoopback,  // both ends local, as storm.c: half graceful, half RST
};

struct Connection {
  std::vector<tcpstated_event> events;
  size_t next = 0;
};

// Client of a remote service: 7->2->1->4->5->7 (peer FIN arrived while in
// FIN_WAIT2: straight to TIME_WAIT). (tcp_destroy_sock is not sent.)
void ClientLifecycle(Endpoint c, std::vector<tcpstated_event>* out) {
  Endpoint early = c;
  early.sport = 0;  // 7->2 fires before the ephemeral port is chosen
  out->push_back(State(early, kClose, kSynSent, kProc));
  out->push_back(State(c, kSynSent, kEst));
  out->push_back(State(c, kEst, kFinWait1, kProc));
  out->push_back(State(c, kFinWait1, kFinWait2));
  out->push_back(State(c, kFinWait2, kClose, kPeerFin));
}

// Accepted from a remote client that closes first: 10->3->1->8->9->7.
void ServerLifecycle(Endpoint s, std::vector<tcpstated_event>* out) {
  out->push_back(State(s, kListen, kSynRecv));
  out->push_back(State(s, kSynRecv, kEst));
  out->push_back(State(s, kEst, kCloseWait));
  out->push_back(State(s, kCloseWait, kLastAck, kProc));
  out->push_back(State(s, kLastAck, kClose));
}

// Accepted, then reset by the remote client: receive_reset, then 1->7.
void ResetLifecycle(Endpoint s, std::vector<tcpstated_event>* out) {
  out->push_back(State(s, kListen, kSynRecv));
  out->push_back(State(s, kSynRecv, kEst));
  out->push_back(Record(TCPSTATED_SRC_RECV_RESET, s, kEst, 0, 0));
  out->push_back(State(s, kEst, kClose));
}

// A loopback pair, client closing first, gracefully.
void LoopbackGraceful(Endpoint c, Endpoint s,
                      std::vector<tcpstated_event>* out) {
  Endpoint early = c;
  early.sport = 0;
  out->push_back(State(early, kClose, kSynSent, kProc));
  out->push_back(State(c, kSynSent, kEst));
  out->push_back(State(s, kListen, kSynRecv));
  out->push_back(State(s, kSynRecv, kEst));
  out->push_back(State(c, kEst, kFinWait1, kProc));
  out->push_back(State(s, kEst, kCloseWait));
  out->push_back(State(c, kFinWait1, kFinWait2));
  out->push_back(State(c, kFinWait2, kClose));  // orphan: FIN_WAIT2 substate
  out->push_back(State(s, kCloseWait, kLastAck, kProc));  // promotes it
  out->push_back(State(s, kLastAck, kClose));
}

// A loopback pair, client closing with SO_LINGER 0.
void LoopbackReset(Endpoint c, Endpoint s, std::vector<tcpstated_event>* out) {
  Endpoint early = c;
  early.sport = 0;
  out->push_back(State(early, kClose, kSynSent, kProc));
  out->push_back(State(c, kSynSent, kEst));
  out->push_back(State(s, kListen, kSynRecv));
  out->push_back(State(s, kSynRecv, kEst));
  out->push_back(State(c, kEst, kClose));
  out->push_back(Record(TCPSTATED_SRC_RECV_RESET, s, kEst, 0, 0));
  out->push_back(State(s, kEst, kClose));
  out->push_back(Record(TCPSTATED_SRC_SEND_RESET, c, kClose, 0, 0));
}

// Inferred TIME_WAIT entries one connection leaves behind.
double TimeWaitPerConnection(Scenario s) {
  switch (s) {
    case Scenario::kClient:
      return 1.0;
    case Scenario::kLoopback:
      return 0.5;
    default:
      return 0.0;
  }
}

// A pass over the stream: about kStreamRecords records of whole
// connections, kInFlight of them interleaved at any time.
struct Stream {
  std::vector<tcpstated_event> records;
  uint64_t ids_used = 0;  // cookies per pass (the rewrite offset)
  uint64_t duration = 0;  // stream clock per pass, ns
  size_t connections = 0;
};

Stream Generate(Scenario scenario, uint64_t ns_per_connection) {
  Stream stream;
  stream.records.reserve(kStreamRecords + 64);
  std::mt19937_64 rng(42);
  std::vector<Connection> flight(kInFlight);
  uint64_t next_id = 1;
  uint32_t conn = 0;
  const uint32_t local = Ip4(127, 0, 0, 1);
  auto start = [&](Connection* c) {
    c->events.clear();
    c->next = 0;
    uint16_t eph = static_cast<uint16_t>(32768 + conn % 28232);
    // Remote peers: 64 addresses of TEST-NET-2 (documentation range).
    uint32_t remote = Ip4(198, 51, 100, static_cast<uint8_t>(1 + conn % 64));
    switch (scenario) {
      case Scenario::kClient:
        ClientLifecycle({next_id++, local, remote, eph, 443}, &c->events);
        break;
      case Scenario::kServer:
        ServerLifecycle({next_id++, local, remote, kServicePort, eph},
                        &c->events);
        break;
      case Scenario::kReset:
        ResetLifecycle({next_id++, local, remote, kServicePort, eph},
                       &c->events);
        break;
      case Scenario::kLoopback: {
        Endpoint client{next_id++, local, local, eph, kServicePort};
        Endpoint server{next_id++, local, local, kServicePort, eph};
        if (conn % 2 == 0) {
          LoopbackGraceful(client, server, &c->events);
        } else {
          LoopbackReset(client, server, &c->events);
        }
        break;
      }
    }
    conn++;
  };
  for (Connection& c : flight) start(&c);
  size_t active = flight.size();
  bool starting = true;
  size_t per_connection = flight[0].events.size();
  uint64_t ns_per_event =
      std::max<uint64_t>(1, ns_per_connection / per_connection);
  uint64_t clock = 0;
  while (active > 0) {
    size_t pick = rng() % flight.size();
    Connection& c = flight[pick];
    if (c.next >= c.events.size()) continue;
    tcpstated_event r = c.events[c.next++];
    clock += ns_per_event;
    r.ts_ns = clock;
    stream.records.push_back(r);
    if (c.next == c.events.size()) {
      if (starting &&
          stream.records.size() + 2 * kInFlight * 12 < kStreamRecords) {
        start(&c);
      } else {
        starting = false;
        active--;
      }
    }
  }
  stream.ids_used = next_id;
  stream.duration = clock + ns_per_event;
  stream.connections = conn;
  return stream;
}

// A mirror at steady state with `live` sockets, and the stream to feed it.
struct Setup {
  Scenario scenario;
  size_t live;
  // The observer the daemon gives its mirror (default series bound);
  // declared first so that it outlives the mirror that points to it.
  std::unique_ptr<tcpstated::ConnectionOutcomes> outcomes;
  std::unique_ptr<Mirror> mirror;
  Stream stream;
  uint64_t pass = 0;  // passes applied so far (the rewrite offset)
  size_t cursor = 0;  // next record of the current pass
  std::vector<tcpstated::Event> pending;  // the consumer's decoded batch
};

void Prefill(Mirror* m, size_t established, uint64_t ts) {
  // The service's listener, owned by a process (children inherit it).
  Endpoint listener{kListenerId, Ip4(127, 0, 0, 1), 0, kServicePort, 0};
  tcpstated::Event e;
  tcpstated_event r = State(listener, kClose, kListen, kProc);
  r.ts_ns = ts;
  tcpstated::DecodeEvent(&r, sizeof(r), &e);
  m->Apply(e);
  // Long-lived connections: half clients, half accepted.
  for (size_t i = 0; i < established; ++i) {
    uint64_t id = kPrefillIdBase + i;
    uint16_t port = static_cast<uint16_t>(1024 + i % 60000);
    uint32_t remote = Ip4(203, 0, 113, static_cast<uint8_t>(i / 60000 % 250));
    if (i % 2 == 0) {
      Endpoint c{id, Ip4(127, 0, 0, 1), remote, port, 5432};
      Endpoint early = c;
      early.sport = 0;
      for (const tcpstated_event& x :
           {State(early, kClose, kSynSent, kProc), State(c, kSynSent, kEst)}) {
        tcpstated_event y = x;
        y.ts_ns = ts;
        tcpstated::DecodeEvent(&y, sizeof(y), &e);
        m->Apply(e);
      }
    } else {
      Endpoint s{id, Ip4(127, 0, 0, 1), remote, kServicePort, port};
      for (const tcpstated_event& x :
           {State(s, kListen, kSynRecv), State(s, kSynRecv, kEst)}) {
        tcpstated_event y = x;
        y.ts_ns = ts;
        tcpstated::DecodeEvent(&y, sizeof(y), &e);
        m->Apply(e);
      }
    }
  }
}

// Moves the stream to its next pass: fresh cookies, a later clock.
void NextPass(Setup* s) {
  for (tcpstated_event& r : s->stream.records) {
    r.id += s->stream.ids_used;
    r.ts_ns += s->stream.duration;
  }
  s->pass++;
  s->cursor = 0;
}

// Applies records [cursor, cursor + n) as the ring consumer does: each
// record decoded into the pending buffer as libbpf hands it over, then the
// buffer applied under the lock, then Expire as Daemon::Tick would.
inline void ApplyBatch(Setup* s, std::mutex* mu, size_t n) {
  const tcpstated_event* records = s->stream.records.data();
  Mirror* m = s->mirror.get();
  std::vector<tcpstated::Event>& pending = s->pending;
  for (size_t i = 0; i < n; ++i) {
    const tcpstated_event* r = &records[s->cursor + i];
    pending.emplace_back();
    if (tcpstated::DecodeEvent(r, RecordSize(*r), &pending.back()) !=
        tcpstated::DecodeError::kNone) {
      pending.pop_back();
    }
  }
  s->cursor += n;
  std::lock_guard<std::mutex> lock(*mu);
  m->ApplyBatch(pending.data(), pending.size());
  if (!pending.empty()) m->Expire(pending.back().ts_ns);
  pending.clear();
}

// Time the stream's clock starts at (the "monotonic" clock of the records).
constexpr uint64_t kT0 = 1000 * kSec;

std::unique_ptr<Setup> Build(Scenario scenario, size_t live) {
  auto s = std::make_unique<Setup>();
  s->scenario = scenario;
  s->live = live;
  double tw = TimeWaitPerConnection(scenario);
  size_t established = tw > 0 ? live / 2 : live;
  // Clock per connection so that the TIME_WAIT population at steady state
  // (60 s of connections) is the other half of `live`.
  uint64_t ns_per_conn =
      tw > 0 ? static_cast<uint64_t>(60.0 * kSec * tw / (live - established))
             : 10000;
  s->stream = Generate(scenario, ns_per_conn);
  for (tcpstated_event& r : s->stream.records) r.ts_ns += kT0;
  // Room for the live sockets and the connections in flight, no evictions.
  s->mirror = std::make_unique<Mirror>(std::max<size_t>(2 * live, 1000000));
  s->outcomes = std::make_unique<tcpstated::ConnectionOutcomes>(50);
  s->mirror->set_observer(s->outcomes.get());
  Prefill(s->mirror.get(), established, kT0 - kSec);
  // Warm up to steady state: one whole pass, and where TIME_WAIT entries
  // are left behind, more than 60 s of stream (their turnover).
  std::mutex mu;
  uint64_t warm_until = kT0 + 70 * kSec;
  do {
    while (s->cursor + kBatch <= s->stream.records.size()) {
      ApplyBatch(s.get(), &mu, kBatch);
    }
    ApplyBatch(s.get(), &mu, s->stream.records.size() - s->cursor);
    NextPass(s.get());
  } while (tw > 0 && s->stream.records.front().ts_ns < warm_until);
  return s;
}

// Built once per (scenario, size) and kept for the life of the process:
// Google Benchmark calls a benchmark function again for each iteration
// count and repetition (interleaved with the others under
// --benchmark_enable_random_interleaving), setting up 1M sockets takes
// seconds, and the mirror simply continues at steady state. All of them
// together hold well under 1 GiB.
Setup* Get(Scenario scenario, size_t live) {
  static std::vector<std::unique_ptr<Setup>> cache;
  for (auto& s : cache) {
    if (s->scenario == scenario && s->live == live) return s.get();
  }
  cache.push_back(Build(scenario, live));
  return cache.back().get();
}

void RunStream(benchmark::State& state, Scenario scenario) {
  Setup* s = Get(scenario, static_cast<size_t>(state.range(0)));
  std::mutex mu;
  const auto before = s->mirror->stats();
  const uint64_t invalid_before = [&] {
    uint64_t n = 0;
    for (const auto& row : s->mirror->invalid_transitions())
      for (uint64_t v : row) n += v;
    return n;
  }();
  uint64_t allocs = 0;
  uint64_t events = 0;
  for (auto _ : state) {
    if (s->cursor + kBatch > s->stream.records.size()) {
      state.PauseTiming();
      ApplyBatch(s, &mu, s->stream.records.size() - s->cursor);
      NextPass(s);
      state.ResumeTiming();
    }
    uint64_t a0 = g_allocs.load(std::memory_order_relaxed);
    ApplyBatch(s, &mu, kBatch);
    allocs += g_allocs.load(std::memory_order_relaxed) - a0;
    events += kBatch;
  }
  state.SetItemsProcessed(static_cast<int64_t>(events));
  const auto after = s->mirror->stats();
  uint64_t invalid_after = 0;
  for (const auto& row : s->mirror->invalid_transitions())
    for (uint64_t v : row) invalid_after += v;
  state.counters["allocs_per_event"] =
      events ? static_cast<double>(allocs) / static_cast<double>(events) : 0;
  state.counters["tracked"] = static_cast<double>(after.tracked);
  state.counters["resyncs"] =
      static_cast<double>(after.resyncs - before.resyncs);
  state.counters["evictions"] =
      static_cast<double>(after.evictions - before.evictions);
  state.counters["invalid"] =
      static_cast<double>(invalid_after - invalid_before);
}

void BM_MirrorClientLifecycle(benchmark::State& state) {
  RunStream(state, Scenario::kClient);
}
void BM_MirrorServerLifecycle(benchmark::State& state) {
  RunStream(state, Scenario::kServer);
}
void BM_MirrorReset(benchmark::State& state) {
  RunStream(state, Scenario::kReset);
}
void BM_MirrorLoopbackStorm(benchmark::State& state) {
  RunStream(state, Scenario::kLoopback);
}

BENCHMARK(BM_MirrorClientLifecycle)->Arg(10000)->Arg(1000000);
BENCHMARK(BM_MirrorServerLifecycle)->Arg(10000)->Arg(1000000);
BENCHMARK(BM_MirrorReset)->Arg(10000)->Arg(1000000);
BENCHMARK(BM_MirrorLoopbackStorm)->Arg(10000)->Arg(1000000);

// DecodeEvent alone over the same records (the share of the event path
// that does not depend on the table).
void BM_MirrorDecodeOnly(benchmark::State& state) {
  std::vector<tcpstated_event> records;
  {
    Stream st = Generate(Scenario::kLoopback, 10000);
    size_t n = st.records.size() / kBatch * kBatch;
    records.assign(st.records.begin(), st.records.begin() + n);
  }
  size_t cursor = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < kBatch; ++i) {
      tcpstated::Event e;
      tcpstated::DecodeEvent(&records[cursor + i],
                             RecordSize(records[cursor + i]), &e);
      benchmark::DoNotOptimize(e);
    }
    cursor = (cursor + kBatch) % records.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kBatch);
}
BENCHMARK(BM_MirrorDecodeOnly);

// ---- Reconcile -------------------------------------------------------

// The kernel's dump of a mirror at steady state, as sock_diag would give it:
// every socket it tracks, same state, cookies as ids.
std::vector<tcpstated::DiagSocket> DumpOf(const Mirror& m) {
  std::vector<tcpstated::DiagSocket> dump;
  dump.reserve(m.stats().tracked);
  m.ForEach([&](const tcpstated::SocketEntry& s) {
    tcpstated::DiagSocket d;
    d.state = s.state;
    d.timewait = (s.flags & tcpstated::kEntryTimewaitSock) != 0;
    d.sport = s.sport;
    d.dport = s.dport;
    d.saddr = s.saddr;
    d.daddr = s.daddr;
    d.cookie = s.id;
    d.expires_ms = d.timewait ? 30000 : 0;
    dump.push_back(d);
  });
  return dump;
}

// A full reconcile of the loopback-storm mirror against a dump that agrees
// with it (the steady state): items_per_second is dump sockets compared per
// second. With slice=0 it runs in one piece, as the daemon did while holding
// the mirror's lock throughout; otherwise in slices of that many units as
// KernelView does it, and max_slice_ms is the longest the lock was held.
void BM_MirrorReconcile(benchmark::State& state) {
  Setup* s = Get(Scenario::kLoopback, static_cast<size_t>(state.range(0)));
  const size_t slice = static_cast<size_t>(state.range(1));
  Mirror& m = *s->mirror;
  std::vector<tcpstated::DiagSocket> dump = DumpOf(m);
  Mirror::NamespaceDump d;
  d.netns = kNetns;
  d.netns_cookie = kNetnsCookie;
  d.sockets = &dump;
  // The dump began after every event applied so far.
  const uint64_t now = s->stream.records.back().ts_ns + 1;
  double max_slice_ms = 0;
  uint64_t corrections = 0, slices = 0;
  for (auto _ : state) {
    m.BeginReconcile();
    Mirror::ReconcileStats stats;
    if (slice == 0) {
      stats = m.Reconcile({d}, now, now, /*seeding=*/false);
      slices++;
    } else {
      m.StartReconcile({d}, now, now, /*seeding=*/false);
      for (bool done = false; !done;) {
        auto t0 = std::chrono::steady_clock::now();
        done = m.ContinueReconcile(slice);
        std::chrono::duration<double, std::milli> took =
            std::chrono::steady_clock::now() - t0;
        max_slice_ms = std::max(max_slice_ms, took.count());
        slices++;
      }
      stats = m.FinishReconcile();
    }
    corrections += stats.added + stats.changed + stats.removed;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(dump.size()));
  state.counters["slices"] =
      static_cast<double>(slices) / static_cast<double>(state.iterations());
  if (slice != 0) state.counters["max_slice_ms"] = max_slice_ms;
  state.counters["corrections"] = static_cast<double>(corrections);
}
BENCHMARK(BM_MirrorReconcile)
    ->Args({10000, 0})
    ->Args({1000000, 0})
    ->Args({1000000, 65536})
    ->Unit(benchmark::kMillisecond);

// ---- Scrape ----------------------------------------------------------

void BM_MirrorScrape(benchmark::State& state) {
  // The loopback-storm mirror at steady state: `live` sockets, half of
  // them in TIME_WAIT, every aggregate populated.
  Setup* s = Get(Scenario::kLoopback, static_cast<size_t>(state.range(0)));
  const Mirror& m = *s->mirror;
  tcpstated::KernelCounters kernel;
  for (size_t i = 1; i < tcpstated::kStateSlots; ++i)
    for (size_t j = 1; j < tcpstated::kStateSlots; ++j)
      kernel.transitions[i][j] = 1000 * i + j;
  size_t bytes = 0;
  for (auto _ : state) {
    tcpstated::Snapshot snap;
    snap.sockets.assign(m.counts().begin(), m.counts().end());
    snap.invalid = m.invalid_transitions();
    snap.durations = m.durations();
    snap.mirror = m.stats();
    snap.kernel = kernel;
    snap.version = "0.1.0";
    snap.attach = "tp_btf";
    std::sort(snap.sockets.begin(), snap.sockets.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<prometheus::MetricFamily> families =
        tcpstated::BuildMetrics(snap);
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, families);
    bytes = out.str().size();
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["tracked"] = static_cast<double>(m.stats().tracked);
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_MirrorScrape)
    ->Arg(10000)
    ->Arg(1000000)
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
