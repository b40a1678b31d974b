#include "tcpstated/bpf_probe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/capability.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <string>
#include <vector>

#include "bpf/tcpstated_abi.h"
#include "tcpstated_bpf.skel.h"

namespace tcpstated {
namespace {

constexpr int kCapPerfmon = 38;  // CAP_PERFMON, Linux 5.8
constexpr int kCapBpf = 39;      // CAP_BPF, Linux 5.8

int LibbpfPrint(enum libbpf_print_level level, const char* format,
                va_list args) {
  if (level == LIBBPF_DEBUG && !spdlog::should_log(spdlog::level::trace)) {
    return 0;
  }
  // Verifier logs run to many kilobytes: format into a growing buffer.
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (n <= 0) return 0;
  std::string line(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(line.data(), line.size(), format, args);
  line.resize(static_cast<size_t>(n));
  while (!line.empty() && line.back() == '\n') line.pop_back();
  // libbpf's warnings are expected while auto mode probes for tp_btf; our
  // own error message says what failed, so they go to debug.
  spdlog::debug("{}", line);
  return 0;
}

std::string ErrnoText(int err) {
  if (err < 0) err = -err;
  return std::strerror(err);
}

bool HasEffectiveCap(int cap) {
  __user_cap_header_struct header{};
  __user_cap_data_struct data[2] = {};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  if (syscall(SYS_capget, &header, data) != 0) return false;
  return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

}  // namespace

void CheckBpfPrivileges() {
  constexpr int kCapSysAdmin = 21;
  if (HasEffectiveCap(kCapSysAdmin)) return;
  std::vector<std::string> missing;
  if (!HasEffectiveCap(kCapBpf)) missing.push_back("CAP_BPF");
  if (!HasEffectiveCap(kCapPerfmon)) missing.push_back("CAP_PERFMON");
  if (missing.empty()) return;
  std::string names;
  for (const auto& m : missing) names += (names.empty() ? "" : " and ") + m;
  throw ProbeError(
      "missing capabilities " + names +
      " (or CAP_SYS_ADMIN) needed to load tracing BPF programs: run as root "
      "or grant them, e.g. AmbientCapabilities=CAP_BPF CAP_PERFMON in the "
      "systemd unit");
}

BpfProbe::BpfProbe(const Options& options) : options_(options) {
  libbpf_set_print(LibbpfPrint);
  CheckBpfPrivileges();
  ncpus_ = libbpf_num_possible_cpus();
  if (ncpus_ <= 0) {
    throw ProbeError("cannot read the number of possible CPUs: " +
                     ErrnoText(ncpus_));
  }
  const bool have_btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
  if (!have_btf) {
    throw ProbeError(
        "no kernel BTF at /sys/kernel/btf/vmlinux: tcpstated's CO-RE "
        "programs need a kernel built with CONFIG_DEBUG_INFO_BTF=y (both the "
        "tp_btf mode and the classic-tracepoint fallback relocate against "
        "it)");
  }
  switch (options.attach) {
    case AttachMode::kTpBtf:
    case AttachMode::kTracepoint:
      LoadAndAttach(options.attach);
      break;
    case AttachMode::kAuto:
      try {
        LoadAndAttach(AttachMode::kTpBtf);
      } catch (const ProbeError& e) {
        spdlog::warn(
            "tp_btf attach failed ({}); falling back to classic "
            "tracepoints",
            e.what());
        LoadAndAttach(AttachMode::kTracepoint);
      }
      break;
  }
}

BpfProbe::~BpfProbe() { Destroy(); }

void BpfProbe::Destroy() {
  for (int fd : ring_fds_) close(fd);
  ring_fds_.clear();
  if (skel_ != nullptr) {
    tcpstated_bpf__destroy(skel_);
    skel_ = nullptr;
  }
}

void BpfProbe::LoadAndAttach(AttachMode mode) {
  Destroy();
  skel_ = tcpstated_bpf__open();
  if (skel_ == nullptr) {
    throw ProbeError("cannot open the BPF object: " + ErrnoText(errno));
  }
  const bool btf = mode == AttachMode::kTpBtf;
  struct bpf_program* btf_progs[] = {
      skel_->progs.btf_set_state, skel_->progs.btf_receive_reset,
      skel_->progs.btf_send_reset, skel_->progs.btf_retransmit_synack,
      skel_->progs.btf_syn_retrans};
  // tp_destroy_sock sends no event: it only ends an skaddr's incarnation.
  // Cookies need no such end, so tp_btf mode has no destroy program.
  struct bpf_program* tp_progs[] = {
      skel_->progs.tp_set_state,         skel_->progs.tp_receive_reset,
      skel_->progs.tp_send_reset,        skel_->progs.tp_destroy_sock,
      skel_->progs.tp_retransmit_synack, skel_->progs.tp_syn_retrans};
  for (auto* p : btf_progs) bpf_program__set_autoload(p, btf);
  for (auto* p : tp_progs) bpf_program__set_autoload(p, !btf);

  const uint32_t rings = ConfigureRings();
  // The incarnation map is only used by classic tracepoints; in tp_btf mode
  // it shrinks to one entry.
  const uint64_t n =
      btf ? 1 : std::min<uint64_t>(options_.max_tracked_sockets, 1u << 24);
  int err =
      bpf_map__set_max_entries(skel_->maps.incarnations,
                               static_cast<uint32_t>(std::max<uint64_t>(n, 1)));
  if (err != 0) {
    Destroy();
    throw ProbeError("cannot size BPF maps: " + ErrnoText(err));
  }

  err = tcpstated_bpf__load(skel_);
  if (err != 0) {
    Destroy();
    if (err == -EPERM) {
      throw ProbeError(
          "the kernel refused to load BPF programs (" + ErrnoText(err) +
          "): needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN), and "
          "kernel.unprivileged_bpf_disabled does not apply to root; check "
          "lockdown (cat /sys/kernel/security/lockdown)");
    }
    throw ProbeError(std::string("cannot load the ") +
                     (btf ? "tp_btf" : "tracepoint") +
                     " BPF programs: " + ErrnoText(err) +
                     " (run with --log.level=debug for the verifier log)");
  }
  err = rings > 1 ? FillRings() : 0;
  if (err != 0) {
    Destroy();
    throw ProbeError("cannot fill the BPF ring array: " + ErrnoText(err));
  }
  err = tcpstated_bpf__attach(skel_);
  if (err != 0) {
    Destroy();
    if (!btf && (err == -ENOENT || err == -ENOTDIR)) {
      throw ProbeError(
          "cannot attach classic tracepoints (" + ErrnoText(err) +
          "): tracefs is not mounted or the kernel lacks the sock/tcp "
          "tracepoints; mount it with 'mount -t tracefs nodev "
          "/sys/kernel/tracing'");
    }
    throw ProbeError(std::string("cannot attach the ") +
                     (btf ? "tp_btf" : "tracepoint") +
                     " programs: " + ErrnoText(err) +
                     (btf ? " (the kernel may lack tp_btf support for "
                            "sock:inet_sock_set_state; try "
                            "bpf.attach: tracepoint)"
                          : ""));
  }
  mode_ = mode;
}

uint32_t BpfProbe::ConfigureRings() {
  // A CPU writes to ring (CPU number % rings): more rings than CPUs would
  // never be written to.
  const uint32_t rings =
      std::min<uint32_t>(std::max<uint32_t>(options_.ring_buffers, 1),
                         static_cast<uint32_t>(ncpus_));
  skel_->rodata->ring_count = rings;
  // Wake the consumer when an eighth of a ring is waiting; otherwise it
  // picks events up at its next poll (RingConsumer's poll interval). Each
  // CPU counts what it sent since its own last wake-up, so the eighth is
  // shared out among the CPUs writing to that ring.
  const uint64_t cpus_per_ring =
      (static_cast<uint64_t>(ncpus_) + rings - 1) / rings;
  skel_->rodata->wakeup_bytes = std::max<uint64_t>(
      options_.ring_buffer_bytes / 8 / cpus_per_ring, TCPSTATED_EVENT_SIZE);
  // One ring is `events` itself; several are `rings`' and `events` keeps
  // one unused page (bpf/tcpstated.bpf.c says why).
  int err = bpf_map__set_max_entries(
      skel_->maps.events,
      static_cast<uint32_t>(rings == 1 ? options_.ring_buffer_bytes
                                       : sysconf(_SC_PAGESIZE)));
  if (err == 0) err = bpf_map__set_max_entries(skel_->maps.rings, rings);
  if (err == 0 && rings > 1) {
    // The first ring is the template the verifier checks the programs'
    // ring calls against.
    CreateRings(rings);
    err = bpf_map__set_inner_map_fd(skel_->maps.rings, ring_fds_[0]);
  }
  if (err != 0) {
    Destroy();
    throw ProbeError("cannot size the BPF ring buffers: " + ErrnoText(err));
  }
  return rings;
}

std::vector<int> BpfProbe::ring_buffer_fds() const {
  if (ring_fds_.empty()) return {bpf_map__fd(skel_->maps.events)};
  return ring_fds_;
}

void BpfProbe::CreateRings(uint32_t rings) {
  for (uint32_t i = 0; i < rings; ++i) {
    const std::string name = "tcpst_ring" + std::to_string(i);
    int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, name.c_str(), 0, 0,
                            static_cast<uint32_t>(options_.ring_buffer_bytes),
                            nullptr);
    if (fd < 0) {
      Destroy();
      throw ProbeError("cannot create ring buffer " + std::to_string(i + 1) +
                       " of " + std::to_string(rings) + " (" +
                       std::to_string(options_.ring_buffer_bytes) +
                       " bytes each): " + ErrnoText(fd) +
                       " (lower bpf.ring_buffers or bpf.ring_buffer_bytes)");
    }
    ring_fds_.push_back(fd);
  }
}

int BpfProbe::FillRings() {
  const int outer = bpf_map__fd(skel_->maps.rings);
  for (uint32_t i = 0; i < ring_fds_.size(); ++i) {
    if (bpf_map_update_elem(outer, &i, &ring_fds_[i], BPF_ANY) != 0) {
      return -errno;
    }
  }
  return 0;
}

KernelCounters BpfProbe::ReadCounters(bool* ok) const {
  KernelCounters c;
  bool all_ok = true;
  std::vector<uint64_t> values(static_cast<size_t>(ncpus_));
  auto sum = [&](int fd, uint32_t key) -> uint64_t {
    if (bpf_map_lookup_elem(fd, &key, values.data()) != 0) {
      all_ok = false;
      return 0;
    }
    uint64_t total = 0;
    for (uint64_t v : values) total += v;
    return total;
  };
  int transitions_fd = bpf_map__fd(skel_->maps.transitions);
  for (uint32_t from = 1; from < kStateSlots; ++from) {
    for (uint32_t to = 1; to < kStateSlots; ++to) {
      c.transitions[from][to] =
          sum(transitions_fd, from * TCPSTATED_STATE_SLOTS + to);
    }
  }
  int lost_fd = bpf_map__fd(skel_->maps.source_lost);
  for (uint32_t s = 0; s < kSourceCount; ++s) c.lost[s] = sum(lost_fd, s);
  // The kernel skips a tracing program's run when a BPF program is already
  // running on that CPU (an interrupt fired the tracepoint meanwhile). For
  // classic tracepoints that guard is shared with every kprobe and
  // tracepoint program on the host (another tool's, e.g. bpftrace), for
  // tp_btf it is per program. tp_destroy_sock sends no event: a skipped
  // run only leaves a stale incarnation entry, which the LRU map recycles.
  const std::pair<const struct bpf_program*, Source> programs[] = {
      {skel_->progs.btf_set_state, Source::kStateChange},
      {skel_->progs.btf_receive_reset, Source::kReceiveReset},
      {skel_->progs.btf_send_reset, Source::kSendReset},
      {skel_->progs.btf_retransmit_synack, Source::kSynackRetrans},
      {skel_->progs.btf_syn_retrans, Source::kSynRetrans},
      {skel_->progs.tp_set_state, Source::kStateChange},
      {skel_->progs.tp_receive_reset, Source::kReceiveReset},
      {skel_->progs.tp_send_reset, Source::kSendReset},
      {skel_->progs.tp_retransmit_synack, Source::kSynackRetrans},
      {skel_->progs.tp_syn_retrans, Source::kSynRetrans},
  };
  for (const auto& [program, source] : programs) {
    int fd = bpf_program__fd(program);
    if (fd < 0) continue;  // the other attach mode's program: not loaded
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
      all_ok = false;
      continue;
    }
    // Kernels before 5.12 have no such field: it stays 0.
    c.missed[static_cast<size_t>(source)] += info.recursion_misses;
  }
  if (ok != nullptr) *ok = all_ok;
  return c;
}

}  // namespace tcpstated
