// Least privilege: after the BPF programs are attached the daemon gives up
// every capability it no longer needs, in every set (effective, permitted,
// inheritable, ambient, bounding), so that neither it nor anything it could
// be tricked into executing can get them back.
//
// Thread-safety: capabilities are per thread on Linux. Call this before the
// process creates any other thread; threads created afterwards inherit the
// reduced sets.
#pragma once

#include <string>
#include <vector>

namespace tcpstated {

struct KeptCapability {
  int number;
  const char* name;
  const char* why;
};

// What the running daemon keeps, and why (also printed in the log).
const std::vector<KeptCapability>& CapabilitiesKeptAfterAttach();

// Drops every capability except `keep` (only those the process has). Returns
// a one-line description of what remains. Throws std::system_error if the
// kernel refuses.
std::string DropCapabilitiesExcept(const std::vector<KeptCapability>& keep);

// Empties every capability set of the calling thread only (effective,
// permitted, inheritable, ambient) and sets NO_NEW_PRIVS, so that neither
// this thread nor anything it could be tricked into executing holds or
// regains a capability; the other threads keep theirs. Threads that parse
// network input call this first. Throws std::system_error if the kernel
// refuses.
void DropAllCapabilitiesOfThisThread();

}  // namespace tcpstated
