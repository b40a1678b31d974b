// The 64-bit finaliser the flat hash tables mask into a power-of-two slot
// count (splitmix64's): every input bit reaches the low bits. Socket cookies
// are sequential, socket addresses aligned, and std::hash of a key struct
// keeps low bits nearly constant (it is made for prime-sized buckets).
#pragma once

#include <cstdint>

namespace tcpstated {

inline uint64_t MixBits(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace tcpstated
