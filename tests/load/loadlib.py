"""Shared pieces of tcpstated's load scripts (storm.py, scale.py): a private
network namespace that this process enters (so every byte of traffic,
scrapes included, stays on that namespace's loopback), the storm.c helper,
the real daemon, /proc readings and a Prometheus text parser.

Python standard library only; root. Namespaces are named tcpstated-test-*,
and are removed even on failure. Every wait is bounded in time.
"""

import atexit
import contextlib
import ctypes
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
STORM_C = os.path.join(HERE, "storm.c")
CLONE_NEWNET = 0x40000000
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

_libc = ctypes.CDLL(None, use_errno=True)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def run(cmd, check=True, timeout=60, **kw):
    return subprocess.run(cmd, check=check, timeout=timeout,
                          capture_output=True, text=True, **kw)


def install_signal_handlers():
    """SIGTERM/SIGHUP unwind like Ctrl-C, so every `finally` cleans up."""
    def handler(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, handler)


def machine_line():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return "machine: %d CPUs, %s, kernel %s; load average %s" % (
        os.cpu_count(), model, os.uname().release, loadavg())


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def compile_storm():
    """storm.c -> /tmp/tcpstated-storm-<hash of source>, reused if present."""
    with open(STORM_C, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    out = "/tmp/tcpstated-storm-%s" % digest
    if not os.path.exists(out):
        cc = os.environ.get("CC", "cc")
        tmp = out + ".%d" % os.getpid()
        run([cc, "-O2", "-Wall", "-pthread", "-o", tmp, STORM_C], timeout=120)
        os.rename(tmp, out)
    return out


def prologue(script):
    """What every load script does first: signals unwind like Ctrl-C, root
    is required, storm.c is compiled, the machine is described. Returns the
    storm binary."""
    install_signal_handlers()
    if os.geteuid() != 0:
        sys.exit("%s needs root (namespaces, BPF)" % script)
    binary = compile_storm()
    print(machine_line())
    return binary


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: " + os.strerror(e))


class Netns:
    """A private network namespace with its loopback up, entered by this
    process's main thread while the `with` block runs (children started
    from it inherit it). Left and deleted on exit, failure included."""

    def __init__(self, tag, sysctls=None):
        self.name = "tcpstated-test-%s-%d" % (tag, os.getpid())
        self.sysctls = sysctls or {}
        self.home_fd = None

    def __enter__(self):
        run(["ip", "netns", "del", self.name], check=False)
        run(["ip", "netns", "add", self.name])
        try:
            self.exec(["ip", "link", "set", "lo", "up"])
            for key, value in self.sysctls.items():
                self.exec(["sysctl", "-q", "-w", "%s=%s" % (key, value)])
            self.inode = os.stat("/run/netns/" + self.name).st_ino
            self.home_fd = os.open("/proc/self/ns/net", os.O_RDONLY)
            fd = os.open("/run/netns/" + self.name, os.O_RDONLY)
            try:
                _setns(fd)
            finally:
                os.close(fd)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.home_fd is not None:
            try:
                _setns(self.home_fd)
            finally:
                os.close(self.home_fd)
                self.home_fd = None
        run(["ip", "netns", "del", self.name], check=False)

    def exec(self, cmd, check=True, timeout=60):
        return run(["ip", "netns", "exec", self.name] + cmd, check=check,
                   timeout=timeout)


def free_port():
    """A free TCP port on the current namespace's loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nice_preexec(nice):
    def f():
        if nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
    return f


# ---- /proc ----------------------------------------------------------------

def proc_cpu_ticks(pid):
    """utime + stime of a process (all its threads), in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def proc_cpu_ns_schedstat(pid):
    """CPU time of a process's live threads from schedstat, in ns."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def proc_runqueue_wait_ns(pid):
    """Time a process's live threads spent runnable but waiting for a CPU
    (schedstat's second field), in ns: how long the scheduler kept them
    from running."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def proc_involuntary_switches(pid):
    """Involuntary context switches of a process's live threads (each a
    preemption)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith("nonvoluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def proc_thread_schedstat(pid):
    """{thread name: (CPU ns, run-queue wait ns)} of a process's live
    threads, summed over threads of the same name."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                cpu, wait = (int(x) for x in f.read().split()[:2])
        except (FileNotFoundError, ProcessLookupError):
            continue
        c0, w0 = out.get(name, (0, 0))
        out[name] = (c0 + cpu, w0 + wait)
    return out


def irq_work_interrupts():
    """Host-wide IRQ work interrupts so far (/proc/interrupts "IWI"): a
    ring-buffer submit that wakes its consumer raises one. Other work on the
    host raises them too."""
    with open("/proc/interrupts") as f:
        for line in f:
            if line.strip().startswith("IWI:"):
                return sum(int(x) for x in line.split()[1:] if x.isdigit())
    return 0


def proc_ctx_switches(pid):
    """Voluntary context switches of a process's live threads (each is a
    wait that ended in a wake-up)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def proc_rss_by_mapping(pid):
    """RSS split by mapping kind: {"heap", "anon", "file", "other"} bytes,
    plus "largest_anon": the RSS of the three largest anonymous mappings."""
    out = {"heap": 0, "anon": 0, "file": 0, "other": 0}
    anon = []
    kind = "other"
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                fields = line.split()
                path = fields[5] if len(fields) > 5 else ""
                if path == "[heap]":
                    kind = "heap"
                elif path == "":
                    kind = "anon"
                elif path.startswith("/"):
                    kind = "file"
                else:
                    kind = "other"
            elif first == "Rss:":
                b = int(line.split()[1]) * 1024
                out[kind] += b
                if kind == "anon":
                    anon.append(b)
    out["largest_anon"] = sorted(anon, reverse=True)[:3]
    return out


def bpf_attached(pid):
    """True once a process holds a BPF link or a perf event (an attached
    BPF program)."""
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target in ("anon_inode:bpf_link", "anon_inode:[perf_event]"):
                return True
    except FileNotFoundError:
        pass
    return False


# ---- BPF program run-time statistics ----------------------------------------

SYS_BPF = 321  # x86_64
BPF_ENABLE_STATS = 32
BPF_STATS_RUN_TIME = 0


def enable_bpf_stats():
    """Turns on the kernel's BPF run-time statistics (run_time_ns, run_cnt
    per program) for as long as the returned descriptor stays open; they go
    off again when it is closed (or this process exits). Global while on:
    every program run pays two clock reads. None if refused."""
    attr = (ctypes.c_uint32 * 2)(BPF_STATS_RUN_TIME, 0)
    fd = _libc.syscall(SYS_BPF, BPF_ENABLE_STATS, ctypes.byref(attr),
                       ctypes.sizeof(attr))
    return fd if fd >= 0 else None


def bpf_prog_stats(pid):
    """(run_time_ns, run_cnt) summed over the BPF programs a process holds
    (from /proc/<pid>/fdinfo; zero unless statistics are on)."""
    run_ns = run_cnt = 0
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except FileNotFoundError:
        return 0, 0
    for fd in fds:
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) != \
                    "anon_inode:bpf-prog":
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                for line in f:
                    if line.startswith("run_time_ns:"):
                        run_ns += int(line.split()[1])
                    elif line.startswith("run_cnt:"):
                        run_cnt += int(line.split()[1])
        except OSError:
            continue
    return run_ns, run_cnt


def bpf_prog_ids(pid):
    """Ids of the BPF programs a process holds (from /proc/<pid>/fdinfo)."""
    ids = []
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except FileNotFoundError:
        return ids
    for fd in fds:
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) != \
                    "anon_inode:bpf-prog":
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.append(int(line.split()[1]))
        except OSError:
            continue
    return ids


def bpf_prog_stats_by_name(pid):
    """{program name: (run_time_ns, run_cnt)} of the programs a process
    holds. fdinfo has no names, so one `bpftool prog show` maps ids to names
    (bpftool truncates names to 15 characters, as the kernel stores them)."""
    ids = set(bpf_prog_ids(pid))
    if not ids:
        return {}
    out = run(["bpftool", "-j", "prog", "show"], check=False, timeout=30)
    if out.returncode != 0:
        return {}
    stats = {}
    for prog in json.loads(out.stdout or "[]"):
        if prog.get("id") in ids:
            name = prog.get("name", "id%d" % prog["id"])
            ns, cnt = stats.get(name, (0, 0))
            stats[name] = (ns + prog.get("run_time_ns", 0),
                           cnt + prog.get("run_cnt", 0))
    return stats


# ---- Prometheus text ------------------------------------------------------

# One Prometheus text parser (and RSS reader) for every test tier: the
# integration harness's.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
from harness import parse_metrics, rss_bytes as proc_rss_bytes  # noqa: E402,F401


def metric_sum(samples, name):
    return sum(v for (n, _), v in samples.items() if n == name)


def http_get(port, path, timeout=120):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                timeout=timeout) as r:
        return r.read()


def timed_get(port, path, timeout=120):
    t0 = time.perf_counter()
    body = http_get(port, path, timeout)
    return time.perf_counter() - t0, body


# ---- the daemon ------------------------------------------------------------

def with_state_directory(config_text, state_dir):
    """The daemon's YAML with state.directory set to state_dir, unless the
    caller's text has a state section of its own."""
    text = config_text or ""
    if re.search(r"^state:", text, re.M):
        return text
    if text and not text.endswith("\n"):
        text += "\n"
    return text + "state:\n  directory: %s\n" % json.dumps(state_dir)


class Daemon:
    """The real tcpstated, listening on the current namespace's loopback."""

    def __init__(self, binary, config="", nice=0, workdir=None,
                 own_session=False):
        self.binary = binary
        # A session of its own is an autogroup of its own (with
        # kernel.sched_autogroup_enabled), as a systemd service has a cgroup
        # of its own: the scheduler then shares CPU between the daemon and
        # the rest as groups, not thread by thread.
        self.own_session = own_session
        self.config_text = config
        self.nice = nice
        self.dir = workdir or tempfile.mkdtemp(prefix="tcpstated-load-")
        if workdir is None:
            atexit.register(shutil.rmtree, self.dir, True)
        # A state directory of the run's own (kept across this object's
        # restarts, removed at exit): the default, /var/lib/tcpstated, is
        # the host's, and a load run must neither write it nor take ages
        # back from it.
        self.state_dir = tempfile.mkdtemp(prefix="tcpstated-load-state-")
        atexit.register(shutil.rmtree, self.state_dir, True)
        self.proc = None
        self.port = None
        self.start_seconds = None

    def start(self, timeout=120):
        self.port = free_port()
        config = os.path.join(self.dir, "tcpstated.yaml")
        with open(config, "w") as f:
            f.write(with_state_directory(self.config_text, self.state_dir))
        self.log_path = os.path.join(self.dir, "daemon-%d.log" % time.time_ns())
        self.log = open(self.log_path, "w")
        t0 = time.perf_counter()
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [self.binary, "--config.file", config,
             "--web.listen-address", "127.0.0.1:%d" % self.port,
             "--log.level", "info"],
            stdout=self.log, stderr=subprocess.STDOUT,
            preexec_fn=nice_preexec(self.nice),
            start_new_session=self.own_session)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("tcpstated exited with %d:\n%s" %
                                   (self.proc.returncode, self.log_text()))
            try:
                http_get(self.port, "/healthz", timeout=5)
                self.start_seconds = time.perf_counter() - t0
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("tcpstated did not become healthy in %d s" % timeout)

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()[-20000:]

    def seeded_line(self):
        """(sockets, seconds) from the "seeded the mirror" log line."""
        m = re.search(r"seeded the mirror from the kernel: (\d+) sockets in "
                      r"(\d+) namespaces \(([\d.]+) s\)", self.log_text())
        return (int(m.group(1)), float(m.group(3))) if m else (None, None)

    @property
    def pid(self):
        return self.proc.pid

    def metrics(self):
        return parse_metrics(http_get(self.port, "/metrics").decode())

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "log", None) and not self.log.closed:
            self.log.close()


def stop_process(proc, sig=signal.SIGTERM, timeout=20):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec="%.0f"):
    return "n/a" if x is None else spec % x


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
