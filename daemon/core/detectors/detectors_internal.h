// What the detectors share (detectors_internal, private to daemon/): the
// history kept between rounds, the namespaces of a round, saturating
// arithmetic, label cleaning and the texts of the log lines, and the entry
// point of each detector. Detectors::Evaluate (detectors.cpp) calls each
// detector in turn; each lives in a file of its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "tcpstated/detectors.h"
#include "tcpstated/socket_keys.h"

namespace tcpstated::detectors_internal {

// Longer label values are cut (comm is 15 bytes; units are paths).
inline constexpr size_t kMaxLabelBytes = 256;

uint64_t SatAdd(uint64_t a, uint64_t b);
size_t SatMul(size_t a, size_t b);
inline double D(uint64_t v) { return static_cast<double>(v); }
// value / limit >= ratio. Dividing keeps boundaries exact (800 / 1000 is the
// double nearest 0.8, like the configured 0.8), where ratio * limit may round
// above the integer (0.55 * 100 > 55).
bool ReachesRatio(uint64_t value, uint64_t limit, double ratio);
std::string Fixed(double v, int decimals);            // "%.*f"
std::string Short(double v);                          // "%g"
std::string Percent(uint64_t value, uint64_t limit);  // "80%", "-" if no limit
// Prometheus needs UTF-8 label values, but comm and unit names are bytes:
// invalid sequences and control characters become '?', and the value is cut
// at kMaxLabelBytes. Grouping uses the cleaned value, so two raw names that
// clean to the same label still make one series.
std::string LabelValue(std::string_view in);
Series MakeSeries(std::map<std::string, std::string> labels, double value);

struct CookieCounters {
  uint64_t sent = 0;        // SyncookiesSent
  uint64_t do_cookies = 0;  // TCPReqQFullDoCookies
};

// What Evaluate knows about the namespaces in this round: the first entry
// per inode wins (a duplicate would make duplicate series).
using NamespaceMap = std::map<uint32_t, const NetnsInput*>;

// "netns=4026531840 (host)".
std::string NetnsText(uint32_t netns, const NamespaceMap& namespaces);
// "192.0.2.1:80", "[2001:db8::1]:443".
std::string Endpoint(const Address& address, bool ipv6, uint16_t port);

// Everything Evaluate remembers between rounds. Only keys present in the
// latest round are kept, so it is bounded by the inputs.
struct History {
  bool have_previous = false;  // a previous round with a finite clock
  double previous_seconds = 0;
  std::map<ListenerKey, uint64_t> synack_retransmits;  // last totals
  std::map<uint32_t, CookieCounters> cookies;  // namespaces with counters
  // Active detections.
  bool close_wait_leak = false;
  std::set<ListenerKey> syn_floods;
  std::set<DestinationKey> port_exhaustion;
  std::set<uint32_t> time_wait_buckets;
};

// The detectors, each in its own file. Each reads this round's inputs and
// the previous round's history, writes its part of the next history, and
// adds its series and its started/cleared lines to the report.
void EvaluateCloseWait(const DetectorConfig& config,
                       const std::vector<CloseWaitSocket>& sockets,
                       bool was_leaking, bool* leaking,
                       DetectionReport* report);
void EvaluateListeners(const DetectorConfig& config,
                       const DetectorInputs& inputs,
                       const NamespaceMap& namespaces, const History& previous,
                       double elapsed, History* next, DetectionReport* report);
void EvaluateDestinations(const DetectorConfig& config,
                          const DetectorInputs& inputs,
                          const NamespaceMap& namespaces,
                          const History& previous, History* next,
                          DetectionReport* report);
void EvaluateNamespaces(const DetectorConfig& config,
                        const NamespaceMap& namespaces, const History& previous,
                        History* next, DetectionReport* report);

}  // namespace tcpstated::detectors_internal
