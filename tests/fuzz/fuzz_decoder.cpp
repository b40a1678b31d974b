// libFuzzer target: ring-buffer records (bpf/tcpstated_abi.h) through
// DecodeEvent, and sequences of decoded events through the Mirror, its
// TIME_WAIT ageing and the metric families a scrape builds from it.
//
// Input layout:
//   - the whole input is handed to DecodeEvent once (only 128 bytes, the
//     long record, and 56, the short one, decode);
//   - the input is also cut into records of TCPSTATED_EVENT_SIZE (128)
//     bytes, each decoded and, if valid, applied to one Mirror in order;
//     after each event the mirror is expired at the latest timestamp seen
//     (a monotonic "now", as the daemon does) and checked;
//   - the size % 128 bytes left at the end, if any, tune the run:
//       tail[0]  the mirror's table bound, tail[0] % 65 (0..64); 64 without
//                a tail, so small bounds exercise eviction with few records
//       tail[1]  tcp_fin_timeout in seconds of the first record's netns
//
// Nothing may crash (ASan/UBSan), and the mirror's incrementally kept
// aggregates must agree with its table after every event: per-namespace
// state counts, the CLOSE_WAIT index, the per-destination books, owner
// references, event counters, the table bound, the timewait flags as
// mirror.h documents them, and, after expiring at the end of time, no
// timewait socket and no FIN_WAIT2 orphan left. A violated invariant
// aborts with its name (a finding).
//
// FUZZ_DECODER_TRACE=1 prints each event and the table after it, to read a
// reproducer: FUZZ_DECODER_TRACE=1 fuzz-decoder crash-<hash>.
// FUZZ_LENIENT=1 skips the timewait state/substate checks (a past finding,
// fixed: FIN_WAIT2 -> CLOSE on a socket the mirror held in another state, e.g.
// after a lost event, left it flagged as a timewait socket in that state).

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "bpf/tcpstated_abi.h"
#include "tcpstated/event.h"
#include "tcpstated/metrics.h"
#include "tcpstated/mirror.h"
#include "tcpstated/tcp_state.h"

namespace {

using tcpstated::DecodeError;
using tcpstated::Event;
using tcpstated::Mirror;
using tcpstated::SocketEntry;
using tcpstated::TcpState;

constexpr size_t kRecordSize = TCPSTATED_EVENT_SIZE;
static_assert(sizeof(tcpstated_event) == kRecordSize);
constexpr size_t kDefaultTableBound = 64;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_decoder: invariant violated: %s\n", what);
  std::abort();
}

// FUZZ_DECODER_TRACE=1: print every event and the mirror's table after it
// (for reading a reproducer: fuzz-decoder <file>).
bool Tracing() {
  static const bool tracing = [] {
    const char* env = std::getenv("FUZZ_DECODER_TRACE");
    return env != nullptr && env[0] == '1';
  }();
  return tracing;
}

// FUZZ_LENIENT=1: skip the semantic checks of timewait entries (state vs.
// substate flags), to look for other findings should that one regress.
bool Lenient() {
  static const bool lenient = [] {
    const char* env = std::getenv("FUZZ_LENIENT");
    return env != nullptr && env[0] == '1';
  }();
  return lenient;
}

void TraceEvent(size_t index, const Event& e) {
  std::fprintf(stderr,
               "event %zu: ts=%llu id=%#llx netns=%u cookie=%llu %s %s->%s "
               "%u->%u%s%s%s tgid=%u\n",
               index, static_cast<unsigned long long>(e.ts_ns),
               static_cast<unsigned long long>(e.id), e.netns,
               static_cast<unsigned long long>(e.netns_cookie),
               std::string(tcpstated::SourceName(e.source)).c_str(),
               std::string(tcpstated::StateKernelName(e.oldstate)).c_str(),
               std::string(tcpstated::StateKernelName(e.newstate)).c_str(),
               e.sport, e.dport, e.ipv6 ? " ipv6" : "",
               e.process_context ? " ctx" : "", e.peer_fin ? " peer_fin" : "",
               e.tgid);
}

void TraceTable(const tcpstated::Mirror& m) {
  m.ForEach([](const tcpstated::SocketEntry& s) {
    std::fprintf(stderr,
                 "    id=%#llx %s entered=%llu netns=%u %u->%u role=%s "
                 "flags=%#x owner=%u\n",
                 static_cast<unsigned long long>(s.id),
                 std::string(tcpstated::StateKernelName(s.state)).c_str(),
                 static_cast<unsigned long long>(s.entered_ns), s.netns,
                 s.sport, s.dport,
                 std::string(tcpstated::RoleName(s.role)).c_str(), s.flags,
                 s.owner);
  });
}

void Check(bool ok, const char* what) {
  if (!ok) Fail(what);
}

bool ValidState(unsigned n) { return n >= 1 && n <= 13; }

// DecodeEvent against the ABI: the verdict and every field.
DecodeError DecodeAndCheck(const uint8_t* data, size_t size, Event* out) {
  Event e;
  const DecodeError error = tcpstated::DecodeEvent(data, size, &e);
  const bool short_form = size == sizeof(tcpstated_event_head);
  if (size != kRecordSize && !short_form) {
    Check(error == DecodeError::kBadSize, "wrong size not refused");
    return error;
  }
  // A short record is the long one's head; what it lacks reads as zero,
  // its IPv4 addresses as the first bytes of the long ones.
  tcpstated_event raw;
  std::memset(&raw, 0, sizeof(raw));
  std::memcpy(&raw, data, size);
  if (short_form) {
    std::memcpy(raw.saddr, raw.saddr4, sizeof(raw.saddr4));
    std::memcpy(raw.daddr, raw.daddr4, sizeof(raw.daddr4));
  }
  if (raw.source >= TCPSTATED_SRC_COUNT) {
    Check(error == DecodeError::kBadSource, "bad source not refused");
    return error;
  }
  if (!ValidState(raw.oldstate) ||
      (raw.source == TCPSTATED_SRC_STATE && !ValidState(raw.newstate))) {
    Check(error == DecodeError::kBadState, "bad state not refused");
    return error;
  }
  if (short_form &&
      (raw.flags & (TCPSTATED_F_IPV6 | TCPSTATED_F_PROCESS_CTX)) != 0) {
    Check(error == DecodeError::kBadSize,
          "short record with long-record flags not refused");
    return error;
  }
  Check(error == DecodeError::kNone, "valid record refused");
  // The owner's fields are only the owner's in process context.
  if ((raw.flags & TCPSTATED_F_PROCESS_CTX) == 0) {
    raw.cgroup_id = 0;
    raw.tgid = 0;
    raw.pid = 0;
  }
  Check(e.ts_ns == raw.ts_ns && e.id == raw.id && e.skaddr == raw.skaddr &&
            e.cgroup_id == raw.cgroup_id &&
            e.netns_cookie == raw.netns_cookie && e.netns == raw.netns &&
            e.tgid == raw.tgid && e.pid == raw.pid && e.sport == raw.sport &&
            e.dport == raw.dport,
        "scalar field not copied");
  Check(std::memcmp(e.saddr.data(), raw.saddr, 16) == 0 &&
            std::memcmp(e.daddr.data(), raw.daddr, 16) == 0,
        "address not copied");
  Check(static_cast<unsigned>(e.source) == raw.source, "source not copied");
  Check(static_cast<unsigned>(e.oldstate) == raw.oldstate,
        "oldstate not copied");
  const unsigned want_new =
      ValidState(raw.newstate) ? raw.newstate : raw.oldstate;
  Check(static_cast<unsigned>(e.newstate) == want_new, "newstate wrong");
  Check(e.ipv6 == ((raw.flags & TCPSTATED_F_IPV6) != 0) &&
            e.process_context == ((raw.flags & TCPSTATED_F_PROCESS_CTX) != 0) &&
            e.peer_fin == ((raw.flags & TCPSTATED_F_PEER_FIN) != 0) &&
            e.id_is_cookie == ((raw.flags & TCPSTATED_F_COOKIE) != 0) &&
            e.sock_error == ((raw.flags & TCPSTATED_F_SOCK_ERR) != 0),
        "flags not decoded");
  if (e.process_context) {
    Check(std::memcmp(e.comm.data(), raw.comm, e.comm.size() - 1) == 0 &&
              e.comm.back() == '\0',
          "comm not copied or not terminated");
  } else {
    Check(std::all_of(e.comm.begin(), e.comm.end(),
                      [](char c) { return c == '\0'; }),
          "comm set without process context");
  }
  *out = e;
  return error;
}

struct Tally {
  uint64_t applied = 0;
  uint64_t decode_errors = 0;
  uint64_t invalid_hook_calls = 0;
  tcpstated::TransitionMatrix kernel_transitions{};  // what the BPF side counts
};

bool IsTimewait(const SocketEntry& s) {
  return (s.flags & tcpstated::kEntryTimewaitSock) != 0;
}

// The table's entries (at most the bound, 64), collected in one pass so that
// the checks below stay cheap: they run after every event.
std::vector<const SocketEntry*> Entries(const Mirror& m) {
  std::vector<const SocketEntry*> entries;
  m.ForEach([&](const SocketEntry& s) { entries.push_back(&s); });
  return entries;
}

size_t CountNonTimewait(const Mirror& m) {
  size_t n = 0;
  m.ForEach([&](const SocketEntry& s) { n += IsTimewait(s) ? 0 : 1; });
  return n;
}

// The mirror's aggregates against its table. Returns how many entries are
// not timewait sockets.
size_t CheckMirror(const Mirror& m, size_t bound, const Tally& tally) {
  const tcpstated::MirrorStats stats = m.stats();
  Check(stats.limit == bound, "stats.limit is not the table bound");
  const std::vector<const SocketEntry*> entries = Entries(m);
  Check(stats.tracked == entries.size(),
        "stats.tracked differs from the table");
  Check(entries.size() <= bound, "table holds more than its bound");

  size_t close_wait = 0;
  size_t dest_counted = 0;
  size_t live = 0;
  for (const SocketEntry* e : entries) {
    const SocketEntry& s = *e;
    if (!IsTimewait(s)) ++live;
    Check(s.id != 0, "entry with id 0");
    Check(ValidState(static_cast<unsigned>(s.state)),
          "entry with a state outside 1..13");
    Check(m.Find(s.id) == &s, "entry not found by its own id");
    Check(m.counts().count(s.netns) == 1,
          "namespace with sockets missing from counts()");
    if (s.state == TcpState::kCloseWait) ++close_wait;
    if (s.flags & tcpstated::kEntryDestCounted) {
      ++dest_counted;
      Check(s.sport != 0 && s.dport != 0,
            "destination counted without both ports");
    }
    if (s.owner != 0) {
      const tcpstated::Owner* owner = m.OwnerOf(s);
      Check(owner != nullptr, "owner index out of the owner table");
      // Slots are cleared when their last reference goes: a cleared slot
      // still referenced means a reference was released twice.
      Check(owner->tgid != 0, "entry refers to a released owner slot");
    }
    if (s.flags & tcpstated::kEntryFinWait2Substate) {
      Check(IsTimewait(s), "FIN_WAIT2 substate without the timewait flag");
    }
    // mirror.h: a timewait socket is in TIME_WAIT or, in the FIN_WAIT2
    // substate, in FIN_WAIT2.
    if (IsTimewait(s) && !Lenient()) {
      const TcpState want = (s.flags & tcpstated::kEntryFinWait2Substate)
                                ? TcpState::kFinWait2
                                : TcpState::kTimeWait;
      Check(s.state == want,
            "timewait entry in a state other than its substate");
    }
    // TIME_WAIT is only ever inferred (or taken from a dump): such an entry
    // must be a timewait socket, or nothing ever ages it out.
    if (s.state == TcpState::kTimeWait && !Lenient()) {
      Check(IsTimewait(s), "TIME_WAIT entry without the timewait flag");
    }
  }

  // Per-namespace counts: exactly the table's (no request sockets here).
  for (const auto& [netns, counts] : m.counts()) {
    tcpstated::StateCounts want{};
    for (const SocketEntry* e : entries) {
      if (e->netns == netns) want[tcpstated::StateIndex(e->state)]++;
    }
    Check(counts == want, "state count differs from the table");
  }

  size_t visited = 0;
  m.ForEachCloseWait([&](const SocketEntry& s) {
    ++visited;
    Check(s.state == TcpState::kCloseWait,
          "CLOSE_WAIT index holds a socket in another state");
  });
  Check(visited == close_wait, "CLOSE_WAIT index misses sockets");

  uint64_t dest_total = 0;
  for (const auto& [key, n] : m.destinations()) {
    Check(n > 0, "destination with a zero count kept");
    uint64_t want = 0;
    for (const SocketEntry* e : entries) {
      if ((e->flags & tcpstated::kEntryDestCounted) && e->netns == key.netns &&
          e->dport == key.dport && e->saddr == key.saddr &&
          e->daddr == key.daddr) {
        ++want;
      }
    }
    Check(n == want, "destination count differs from the table");
    dest_total += n;
  }
  Check(dest_total == dest_counted, "counted destination missing");

  uint64_t events = 0;
  for (uint64_t n : stats.events) events += n;
  Check(events == tally.applied, "event counters differ from events applied");

  uint64_t invalid = 0;
  for (const auto& row : m.invalid_transitions()) {
    for (uint64_t n : row) invalid += n;
  }
  Check(invalid == tally.invalid_hook_calls,
        "invalid-transition hook calls differ from the matrix");

  for (const tcpstated::DurationHistogram& h : m.durations()) {
    uint64_t n = 0;
    for (uint64_t c : h.counts) n += c;
    Check(n == h.count, "histogram buckets differ from its count");
    Check(h.sum >= 0, "negative duration observed");
  }
  return live;
}

// A scrape: the snapshot the daemon builds, its metric families, and the
// text exposition.
void Scrape(const Mirror& m, const Tally& tally) {
  tcpstated::Snapshot s;
  s.sockets.assign(m.counts().begin(), m.counts().end());
  std::sort(s.sockets.begin(), s.sockets.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  s.invalid = m.invalid_transitions();
  s.durations = m.durations();
  s.mirror = m.stats();
  s.kernel.transitions = tally.kernel_transitions;
  s.decode_errors = tally.decode_errors;
  s.version = "fuzz";
  s.attach = "tp_btf";
  const std::vector<prometheus::MetricFamily> families =
      tcpstated::BuildMetrics(s);
  Check(!families.empty(), "no metric families");
  for (const prometheus::MetricFamily& f : families) {
    Check(!f.name.empty(), "metric family without a name");
    if (f.name == "tcpstated_sockets") {
      Check(f.metric.size() ==
                s.sockets.size() * tcpstated::kReportedStates.size(),
            "tcpstated_sockets: not one series per namespace and state");
      for (const auto& metric : f.metric) {
        Check(metric.gauge.value >= 0, "negative socket count exported");
      }
    }
    if (f.type == prometheus::MetricType::Histogram) {
      for (const auto& metric : f.metric) {
        uint64_t last = 0;
        for (const auto& bucket : metric.histogram.bucket) {
          Check(bucket.cumulative_count >= last, "histogram not cumulative");
          last = bucket.cumulative_count;
        }
        Check(last == metric.histogram.sample_count,
              "histogram +Inf bucket differs from its count");
      }
    }
  }
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, families);
  Check(!text.str().empty(), "empty exposition");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Event whole;
  DecodeAndCheck(data, size, &whole);
  Check(tcpstated::DecodeEvent(nullptr, kRecordSize, &whole) ==
            DecodeError::kBadSize,
        "null record not refused");

  const size_t records = size / kRecordSize;
  const uint8_t* tail = data + records * kRecordSize;
  const size_t tail_len = size % kRecordSize;
  const size_t bound = tail_len >= 1 ? tail[0] % 65 : kDefaultTableBound;

  Mirror mirror(bound);
  Tally tally;
  mirror.set_invalid_transition_hook(
      [&tally](const Event&) { tally.invalid_hook_calls++; });
  if (tail_len >= 2 && records >= 1) {
    tcpstated_event first;
    std::memcpy(&first, data, sizeof(first));
    mirror.SetFinTimeout(first.netns,
                         static_cast<uint64_t>(tail[1]) * tcpstated::kNsPerSec);
  }

  uint64_t now = 0;
  for (size_t i = 0; i < records; ++i) {
    Event e;
    if (DecodeAndCheck(data + i * kRecordSize, kRecordSize, &e) !=
        DecodeError::kNone) {
      tally.decode_errors++;
      continue;
    }
    if (e.source == tcpstated::Source::kStateChange) {
      tally.kernel_transitions[tcpstated::StateIndex(e.oldstate)]
                              [tcpstated::StateIndex(e.newstate)]++;
    }
    if (Tracing()) TraceEvent(i, e);
    mirror.Apply(e);
    tally.applied++;
    if (Tracing()) TraceTable(mirror);

    now = std::max(now, e.ts_ns);
    const size_t live_before = CountNonTimewait(mirror);
    mirror.Expire(now);
    Check(CheckMirror(mirror, bound, tally) == live_before,
          "Expire removed a socket that is not a timewait socket");
  }
  Scrape(mirror, tally);

  // The end of time: every timewait socket and FIN_WAIT2 orphan has aged.
  mirror.Expire(std::numeric_limits<uint64_t>::max());
  CheckMirror(mirror, bound, tally);
  mirror.ForEach([](const SocketEntry& s) {
    Check(!IsTimewait(s), "timewait socket survives expiry at the end of time");
  });
  uint64_t timewait_sockets = 0;
  for (const auto& [netns, n] : mirror.TimewaitSockets()) timewait_sockets += n;
  int64_t timewait_state = 0;
  for (const auto& [netns, counts] : mirror.counts()) {
    timewait_state += counts[tcpstated::StateIndex(TcpState::kTimeWait)];
  }
  Check(timewait_sockets == static_cast<uint64_t>(timewait_state),
        "FIN_WAIT2 orphans left after expiry at the end of time");
  Scrape(mirror, tally);
  return 0;
}
