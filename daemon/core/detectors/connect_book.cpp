#include "tcpstated/connect_book.h"

#include <cerrno>

namespace tcpstated {

std::string_view ConnectFailureName(ConnectFailure reason) {
  switch (reason) {
    case ConnectFailure::kRefused:
      return "refused";
    case ConnectFailure::kTimedOut:
      return "timed_out";
    case ConnectFailure::kUnreachable:
      return "unreachable";
    case ConnectFailure::kAborted:
      return "aborted";
    case ConnectFailure::kNoLocalPort:
      return "no_local_port";
    case ConnectFailure::kError:
      break;
  }
  return "error";
}

ConnectFailure ClassifyConnectFailure(uint8_t sk_err, bool reset_seen,
                                      uint16_t sport) {
  switch (sk_err) {
    case 0:
      break;
    case ECONNREFUSED:
      return ConnectFailure::kRefused;
    case ETIMEDOUT:
      return ConnectFailure::kTimedOut;
    case EHOSTUNREACH:
    case ENETUNREACH:
      return ConnectFailure::kUnreachable;
    default:
      return ConnectFailure::kError;
  }
  if (reset_seen) return ConnectFailure::kRefused;
  // tcp_v4_connect reports SYN_SENT before inet_hash_connect picks the
  // port, and CLOSE again when none is free.
  if (sport == 0) return ConnectFailure::kNoLocalPort;
  return ConnectFailure::kAborted;
}

size_t ConnectDestinationHash::operator()(const ConnectDestination& d) const {
  // The address as two words (a byte at a time was 16 multiplications per
  // connect).
  static const Address kNone{};
  return keys_detail::MixTuple(d.netns, d.ipv6 ? 1 : 0, d.dport, d.daddr,
                               kNone);
}

uint64_t ConnectTally::failed() const {
  uint64_t n = 0;
  for (uint64_t f : failures) n += f;
  return n;
}

void ConnectTally::Add(const ConnectTally& o) {
  for (size_t i = 0; i < failures.size(); ++i) failures[i] += o.failures[i];
  for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += o.buckets[i];
  latency_sum += o.latency_sum;
  established += o.established;
}

void ConnectBook::Observe(const Event& e, const SocketEntry* before) {
  if (e.source != Source::kStateChange || e.oldstate != TcpState::kSynSent) {
    return;
  }
  ConnectDestination key;
  key.netns = e.netns;
  key.dport = e.dport;
  key.ipv6 = e.ipv6;
  key.daddr = e.daddr;
  if (e.newstate == TcpState::kClose) {
    const bool reset_seen = before != nullptr &&
                            before->state == TcpState::kSynSent &&
                            (before->flags & kEntryResetSeen) != 0;
    ConnectFailure reason =
        ClassifyConnectFailure(e.sk_err, reset_seen, e.sport);
    book_.At(key, e.ts_ns).failures[static_cast<size_t>(reason)]++;
    return;
  }
  if (e.newstate != TcpState::kEstablished) return;  // simultaneous open
  // The latency needs the time connect() entered SYN_SENT: an entry that
  // was adopted mid-life or seeded from a dump does not know it.
  if (before == nullptr || before->state != TcpState::kSynSent ||
      (before->flags & kEntryAgeUnknown) != 0 || e.ts_ns < before->entered_ns) {
    return;
  }
  const double seconds =
      static_cast<double>(e.ts_ns - before->entered_ns) / 1e9;
  ConnectTally& t = book_.At(key, e.ts_ns);
  size_t i = 0;
  while (i < kConnectBuckets.size() && seconds > kConnectBuckets[i]) ++i;
  t.buckets[i]++;
  t.latency_sum += seconds;
  t.established++;
}

}  // namespace tcpstated
