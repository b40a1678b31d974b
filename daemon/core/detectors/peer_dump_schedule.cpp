#include "tcpstated/peer_dump_schedule.h"

#include <algorithm>

namespace tcpstated {
namespace {

constexpr double kFinWait2Fraction = 0.1;
// A quarter, not a tenth: the idle judgment needs tcp_info for every
// connection on the host (~3 s of CPU at a million with the walk), and an
// hour's threshold flagged at 1h10m rather than 1h06m tells an SRE the same.
constexpr double kEstablishedFraction = 0.25;
// The dead-peer judgment, at most 5 min: a peer that dies under keepalive
// shows as dead from its dead_peer_retries-th unanswered probe until the kernel
// resets the connection, (tcp_keepalive_probes - retries) x tcp_keepalive_intvl
// = 450-525 s at the default sysctls. A judgment every 5 min sees every such
// peer at least once; every 10 min (the safety dump's) missed about one in
// eight.
constexpr double kEstablishedMaxSeconds = 300;

uint64_t Clamp(double seconds, uint64_t lo_ns, uint64_t hi_ns) {
  const double ns = seconds * 1e9;
  if (!(ns > static_cast<double>(lo_ns))) return lo_ns;  // NaN too
  if (ns >= static_cast<double>(hi_ns)) return hi_ns;
  return std::max(lo_ns, static_cast<uint64_t>(ns));
}

uint64_t Ns(std::chrono::milliseconds ms) {
  return ms.count() > 0 ? static_cast<uint64_t>(ms.count()) * 1000000ULL : 0;
}

}  // namespace

PeerDumpIntervals PeerDumpIntervalsFor(double fin_wait2_stuck_after_seconds,
                                       double idle_after_seconds,
                                       std::chrono::milliseconds detector,
                                       std::chrono::milliseconds full) {
  PeerDumpIntervals i;
  i.detector_ns = Ns(detector);
  i.full_ns = std::max(i.detector_ns, Ns(full));
  i.fin_wait2_ns = Clamp(fin_wait2_stuck_after_seconds * kFinWait2Fraction,
                         i.detector_ns, i.full_ns);
  i.established_ns = Clamp(std::min(idle_after_seconds * kEstablishedFraction,
                                    kEstablishedMaxSeconds),
                           i.detector_ns, i.full_ns);
  i.idle_ns = Clamp(idle_after_seconds * kEstablishedFraction, i.detector_ns,
                    i.full_ns);
  return i;
}

PeerDumpsDue PeerDumpSchedule::FullDumpServes(
    uint64_t now_ns, const PeerDumpIntervals& i) const {
  PeerDumpsDue served;
  served.established = true;
  served.idle = now_ns + i.detector_ns >= next_idle_ns_;
  served.fin_wait2 = served.idle;  // tcp_info is there for them too
  return served;
}

PeerDumpsDue PeerDumpSchedule::DueNow(uint64_t now_ns,
                                      const PeerDumpIntervals& i) const {
  PeerDumpsDue due;
  due.fin_wait2 = now_ns >= next_fin_wait2_ns_;
  due.established =
      i.established_ns < i.full_ns && now_ns >= next_established_ns_;
  due.idle = i.idle_ns < i.full_ns && now_ns >= next_idle_ns_;
  // What the dump brings anyway: ESTABLISHED rows for the idle judgment,
  // and tcp_info on them when FIN_WAIT2 sockets ask for it.
  if (due.idle) due.established = true;
  if (due.established && due.fin_wait2) due.idle = true;
  return due;
}

void PeerDumpSchedule::Ran(PeerDumpsDue ran, uint64_t now_ns,
                           const PeerDumpIntervals& i) {
  if (ran.fin_wait2) next_fin_wait2_ns_ = now_ns + i.fin_wait2_ns;
  if (ran.established) next_established_ns_ = now_ns + i.established_ns;
  if (ran.idle) next_idle_ns_ = now_ns + i.idle_ns;
}

}  // namespace tcpstated
