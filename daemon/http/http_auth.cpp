#include "tcpstated/http_auth.h"

#include <crypt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <stdexcept>
#include <utility>

namespace tcpstated {
namespace {

// A scraper keeps paying nothing for this long after one bcrypt; a changed
// password or removed user takes effect at once anyway, because a reload
// builds a new BasicAuth with an empty cache.
constexpr std::chrono::minutes kCacheLifetime(15);
// Only successes are cached, so only holders of valid credentials can fill
// it; the bound keeps even them from growing it without end.
constexpr size_t kMaxCached = 64;

bool DecodeBase64(std::string_view in, std::string* out) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (in.empty() || in.size() % 4 != 0) return false;
  uint32_t buffer = 0;
  int bits = 0;
  size_t padding = 0;
  for (char c : in) {
    if (c == '=') {
      if (++padding > 2) return false;
      continue;
    }
    const size_t v = kAlphabet.find(c);
    if (v == std::string_view::npos || padding > 0) return false;
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return true;
}

bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

// Compares without an early exit, so timing does not reveal the prefix.
bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

// The bcrypt cost of "$2y$NN$...", 0 if unreadable.
int BcryptCost(const std::string& hash) {
  if (hash.size() < 7 || hash[6] != '$') return 0;
  return std::atoi(hash.substr(4, 2).c_str());
}

}  // namespace

BasicAuth::BasicAuth(std::map<std::string, std::string> users)
    : users_(std::move(users)), hmac_key_(32, '\0') {
  for (const auto& [user, hash] : users_) {
    if (BcryptCost(hash) > BcryptCost(costliest_hash_)) costliest_hash_ = hash;
  }
  if (costliest_hash_.empty() && !users_.empty()) {
    costliest_hash_ = users_.begin()->second;
  }
  if (RAND_bytes(reinterpret_cast<unsigned char*>(hmac_key_.data()),
                 static_cast<int>(hmac_key_.size())) != 1) {
    throw std::runtime_error("cannot draw a random key for the auth cache");
  }
}

BasicAuth::Check BasicAuth::Precheck(const std::string* authorization,
                                     Claim* claim) const {
  if (authorization == nullptr) return Check::kMalformed;
  std::string_view value = *authorization;
  // RFC 9110: the scheme is case-insensitive, then one or more spaces.
  if (!StartsWithIgnoreCase(value, "Basic ")) return Check::kMalformed;
  value.remove_prefix(6);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  std::string decoded;
  if (!DecodeBase64(value, &decoded)) return Check::kMalformed;
  // crypt(3) stops at a NUL: "secret\0anything" would pass as "secret".
  if (decoded.find('\0') != std::string::npos) return Check::kMalformed;
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return Check::kMalformed;
  claim->user = decoded.substr(0, colon);
  claim->password = decoded.substr(colon + 1);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), hmac_key_.data(), static_cast<int>(hmac_key_.size()),
       reinterpret_cast<const unsigned char*>(decoded.data()), decoded.size(),
       mac, &length);
  claim->key.assign(reinterpret_cast<const char*>(mac), length);
  return CacheHas(claim->key) ? Check::kAllowed : Check::kNeedsHash;
}

bool BasicAuth::Verify(const Claim& claim) {
  const auto it = users_.find(claim.user);
  const bool known = it != users_.end();
  const std::string& hash = known ? it->second : costliest_hash_;
  crypt_data data{};
  const char* computed = crypt_r(claim.password.c_str(), hash.c_str(), &data);
  const bool match =
      known && computed != nullptr && ConstantTimeEquals(computed, hash);
  if (match) Remember(claim.key);
  return match;
}

bool BasicAuth::CacheHas(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = cache_.find(key);
  return it != cache_.end() && it->second > Clock::now();
}

void BasicAuth::Remember(const std::string& key) {
  const Clock::time_point now = Clock::now();
  std::lock_guard<std::mutex> lock(mutex_);
  if (cache_.size() >= kMaxCached && cache_.count(key) == 0) {
    auto oldest = cache_.begin();
    for (auto it = cache_.begin(); it != cache_.end(); ++it) {
      if (it->second < oldest->second) oldest = it;
    }
    cache_.erase(oldest);
  }
  cache_[key] = now + kCacheLifetime;
}

FailureLimiter::Bucket& FailureLimiter::Refilled(const std::string& source,
                                                 Clock::time_point now) {
  if (buckets_.size() >= kMaxSources && buckets_.count(source) == 0) {
    // Forget the sources whose budget is whole again; if an attack from
    // that many addresses leaves none, start over: the one-bcrypt-at-a-time
    // rule still bounds the cost.
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      const auto idle = std::chrono::duration<double>(now - it->second.updated);
      it = it->second.tokens + idle.count() / kRefill.count() >= kBurst
               ? buckets_.erase(it)
               : std::next(it);
    }
    if (buckets_.size() >= kMaxSources) buckets_.clear();
  }
  auto [it, added] = buckets_.try_emplace(source);
  Bucket& bucket = it->second;
  if (added) {
    bucket.updated = now;
    return bucket;
  }
  const std::chrono::duration<double> idle = now - bucket.updated;
  bucket.tokens =
      std::min(kBurst, bucket.tokens + idle.count() / kRefill.count());
  bucket.updated = now;
  return bucket;
}

bool FailureLimiter::Allowed(const std::string& source, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  return Refilled(source, now).tokens >= 1;
}

void FailureLimiter::RecordFailure(const std::string& source,
                                   Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  Bucket& bucket = Refilled(source, now);
  bucket.tokens = std::max(0.0, bucket.tokens - 1);
}

}  // namespace tcpstated
