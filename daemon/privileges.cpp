#include "tcpstated/privileges.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace tcpstated {
namespace {

constexpr int kCapSysPtrace = 19;
constexpr int kCapSysAdmin = 21;
constexpr int kCapDacReadSearch = 2;
constexpr int kLastCapCeiling = 63;

int LastCap() {
  // The kernel's highest capability number; capabilities above it do not
  // exist and PR_CAPBSET_DROP would fail with EINVAL.
  int last = 40;
  if (FILE* f = fopen("/proc/sys/kernel/cap_last_cap", "re")) {
    if (fscanf(f, "%d", &last) != 1) last = 40;
    fclose(f);
  }
  return last > kLastCapCeiling ? kLastCapCeiling : last;
}

}  // namespace

const std::vector<KeptCapability>& CapabilitiesKeptAfterAttach() {
  static const std::vector<KeptCapability> kept = {
      {kCapSysAdmin, "CAP_SYS_ADMIN",
       "setns() into network namespaces created later; bpf() reads of the "
       "in-kernel counters when kernel.unprivileged_bpf_disabled is set"},
      {kCapSysPtrace, "CAP_SYS_PTRACE",
       "open /proc/<pid>/ns/net and read /proc/<pid>/fd of other users' "
       "processes (namespace discovery, socket owners)"},
      {kCapDacReadSearch, "CAP_DAC_READ_SEARCH",
       "traverse /proc/<pid>/fd directories of other users' processes"},
  };
  return kept;
}

std::string DropCapabilitiesExcept(const std::vector<KeptCapability>& keep) {
  __user_cap_header_struct header{};
  __user_cap_data_struct data[2] = {};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  if (syscall(SYS_capget, &header, data) != 0) {
    throw std::system_error(errno, std::generic_category(), "capget");
  }
  uint64_t permitted =
      data[0].permitted | (static_cast<uint64_t>(data[1].permitted) << 32);
  uint64_t wanted = 0;
  for (const KeptCapability& k : keep) wanted |= 1ULL << k.number;
  wanted &= permitted;

  // The bounding set first: dropping from it needs CAP_SETPCAP, which goes
  // with the capset below.
  for (int cap = 0; cap <= LastCap(); ++cap) {
    if (wanted & (1ULL << cap)) continue;
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1 &&
        prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EPERM) {
      throw std::system_error(errno, std::generic_category(),
                              "prctl(PR_CAPBSET_DROP)");
    }
  }
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  for (int i = 0; i < 2; ++i) {
    uint32_t word = static_cast<uint32_t>(wanted >> (32 * i));
    data[i].effective = word;
    data[i].permitted = word;
    data[i].inheritable = 0;
  }
  if (syscall(SYS_capset, &header, data) != 0) {
    throw std::system_error(errno, std::generic_category(), "capset");
  }
  std::string kept;
  for (const KeptCapability& k : keep) {
    if ((wanted & (1ULL << k.number)) == 0) continue;
    kept +=
        (kept.empty() ? "" : ", ") + std::string(k.name) + " (" + k.why + ")";
  }
  return kept.empty() ? "no capabilities" : kept;
}

void DropAllCapabilitiesOfThisThread() {
  // Both calls act on the calling thread only: the kernel keeps credentials
  // per task, and the raw capset (unlike libcap's process-wide helpers)
  // does not broadcast to the other threads.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    throw std::system_error(errno, std::generic_category(),
                            "prctl(PR_SET_NO_NEW_PRIVS)");
  }
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_header_struct header{};
  __user_cap_data_struct data[2] = {};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;  // this thread
  if (syscall(SYS_capset, &header, data) != 0) {
    throw std::system_error(errno, std::generic_category(), "capset");
  }
}

}  // namespace tcpstated
