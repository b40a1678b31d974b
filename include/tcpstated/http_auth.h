// HTTP basic authentication against bcrypt hashes, built so that a flood of
// guesses costs the attacker more than it costs us:
// - a cache of recent successes, so a scraper pays for bcrypt once, not on
//   every scrape. It is keyed by an HMAC of user and password under a key
//   drawn at random per process: it holds neither, and a memory dump or a
//   timing probe of the cache reveals nothing reusable;
// - an unknown user costs one bcrypt at the cost of the most expensive
//   configured hash, so timing does not tell which names exist;
// - per-source failure budgets (FailureLimiter) that the server consults
//   before it spends a bcrypt.
// The server also runs at most one Verify at a time (see http_server.h).
//
// Thread-safety: every method may be called concurrently.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

namespace tcpstated {

class BasicAuth {
 public:
  using Clock = std::chrono::steady_clock;

  // `users`: name -> bcrypt hash ($2a$, $2b$, $2y$), as parsed from the web
  // config. Empty: authentication is off.
  explicit BasicAuth(std::map<std::string, std::string> users);

  bool required() const { return !users_.empty(); }

  struct Claim {
    std::string user;
    std::string password;
    std::string key;  // HMAC-SHA256 of user:password, the cache key
  };
  enum class Check {
    kAllowed,    // these credentials verified recently
    kMalformed,  // no header, another scheme, bad base64, NUL, no colon
    kNeedsHash,  // well-formed; Verify decides
  };
  // The cheap part (microseconds): parses an Authorization value
  // ("Basic <base64>", scheme case-insensitive) and looks in the cache.
  Check Precheck(const std::string* authorization, Claim* claim) const;
  // The expensive part (one bcrypt, tens to hundreds of milliseconds).
  // Remembers a success.
  bool Verify(const Claim& claim);

 private:
  bool CacheHas(const std::string& key) const;
  void Remember(const std::string& key);

  std::map<std::string, std::string> users_;
  std::string costliest_hash_;  // what an unknown user is checked against
  std::string hmac_key_;        // random, per process
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Clock::time_point> cache_;  // -> expiry
};

// Per source address, a budget of failed logins: a burst, then one more per
// refill interval. Bounded in memory whatever the number of sources.
class FailureLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr double kBurst = 5;
  static constexpr std::chrono::seconds kRefill{2};
  static constexpr size_t kMaxSources = 4096;

  // True if `source` may try (again) now.
  bool Allowed(const std::string& source, Clock::time_point now);
  void RecordFailure(const std::string& source, Clock::time_point now);

 private:
  struct Bucket {
    double tokens = kBurst;
    Clock::time_point updated;
  };
  Bucket& Refilled(const std::string& source, Clock::time_point now);

  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace tcpstated
