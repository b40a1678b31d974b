#!/usr/bin/env python3
"""End-to-end cost of watching TCP: bounded connection storms on a private
namespace's loopback, in alternating rounds, each mode a ratio to bare and to
the floor measured in the same run

  bare             nothing attached
  floor            empty tp_btf programs (a per-CPU counter only) on the
                   daemon's tracepoints ($TCPSTATED_FLOOR_BIN, built next to
                   the daemon as tcpstated-floor): the least any eBPF tool on
                   this path can cost
  tcpstated        the daemon with its default configuration ($TCPSTATED_BIN),
                   started and past its start-up before the storm
  tcpstated-prev   the same for another build (--prev-bin), e.g. main's, so
                   that the previous figure is measured in the same run
  tcpstated-start  the daemon started --start-delay s after the storm began:
                   what a (re)start costs a busy host (tcpstated-prev-start:
                   the same for --prev-bin)
  tcpstated-NAME   the daemon ($TCPSTATED_BIN) with a configuration of its
                   own (--variant NAME=YAML), e.g. another ring layout
  tcpstates        libbpf-tools' tcpstates, output to /dev/null
  bpftrace         a one-liner counting transitions in the kernel

Storms (--storms), each a table of its own; every storm runs --processes
client processes of --workers threads, each thread with its own listener
(4 x 8 = 32 listeners by default), so that the storm saturates every core:

  reset     every connection closed with SO_LINGER 0 (RST, no TIME_WAIT)
  timewait  every connection closed gracefully, client first (TIME_WAIT
            piles up)
  mixed     half and half (the single storm of earlier versions of this
            page, with one process: --processes 1 --workers nproc)
  start     the reset storm for --start-seconds, with the modes bare,
            tcpstated, tcpstated-start (and tcpstated-prev-start): the
            first seconds after a start

Each round runs storm.c (compiled with cc into /tmp), bounded by a connection
count and a time limit. Per round it prints connections/s and its ratios, the
storm's own CPU per connection (user + sys from wait4: the kernel's TCP work
and the BPF programs run in its context; unrelated load disturbs it less than
throughput), the tool's CPU per connection, the daemon's CPU per event
(/proc/<pid>/stat utime+stime over the events it applied, reconcile included
when the round spans one), events seen and lost, RSS, and with --bpf-stats
each BPF program's in-kernel ns per run (kernel.bpf_stats_enabled, names
from bpftool). Then per storm a markdown table of medians.

The round order rotates (ABCD, BCDA, ...) so that no mode always runs first
or last. Each tool runs in a session of its own, so that with
kernel.sched_autogroup_enabled it is scheduled as a group of its own, as a
service in its own cgroup is (--same-session: inside the storm's group, one
thread among its 32, which starves the ring consumer). --nice sets one nice
level for the storm, the daemon and the tools.

  TCPSTATED_BIN=build/tcpstated tests/load/storm.py --bpf-stats  # full run
  TCPSTATED_BIN=build/tcpstated tests/load/storm.py --quick      # CI, < 60 s

Root; Python standard library; cc; bpftool (for --bpf-stats names).
"""

import argparse
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loadlib  # noqa: E402
from loadlib import fmt, log, median  # noqa: E402

BPFTRACE_PROGRAM = ("tracepoint:sock:inet_sock_set_state "
                    "{ @[args->oldstate, args->newstate] = count(); }")
LISTEN_PORT = 60000  # listeners on 60000.., reserved from ephemerals
SYSCTLS = {
    "net.ipv4.ip_local_port_range": "1024 65535",
    "net.ipv4.ip_local_reserved_ports": "60000-60999",
}
MODES = ("bare", "floor", "tcpstated", "tcpstated-prev", "tcpstated-start",
         "tcpstated-prev-start", "tcpstates", "bpftrace")
# Storm name -> percentage of connections closed with RST.
STORMS = {"reset": 100, "timewait": 0, "mixed": 50, "start": 100}
DAEMON_MODES = ("tcpstated", "tcpstated-prev", "tcpstated-start",
                "tcpstated-prev-start")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds per mode (default 3)")
    p.add_argument("--connections", type=int, default=4000000,
                   help="connections per round, at most (default 4000000)")
    p.add_argument("--seconds", type=float, default=32,
                   help="time limit of a round's storm (default 32: each "
                   "tcpstated round then spans the daemon's first "
                   "reconcile, 30 s after it starts)")
    p.add_argument("--storms", default="reset,timewait,start",
                   help="comma-separated storms: reset, timewait, mixed, "
                   "start (default reset,timewait,start)")
    p.add_argument("--processes", type=int, default=4,
                   help="client processes per storm (default 4)")
    p.add_argument("--workers", type=int, default=8,
                   help="threads (each with a listener) per process "
                   "(default 8)")
    p.add_argument("--modes", default="bare,floor,tcpstated",
                   help="comma-separated modes for the reset, timewait and "
                   "mixed storms (default bare,floor,tcpstated); with "
                   "--prev-bin, tcpstated-prev is added")
    p.add_argument("--start-seconds", type=float, default=10,
                   help="time limit of the start storm's rounds (default 10)")
    p.add_argument("--start-delay", type=float, default=0.5,
                   help="seconds into the start storm at which "
                   "tcpstated-start launches the daemon (default 0.5)")
    p.add_argument("--same-session", action="store_true",
                   help="run the tools in the storm's session (and so, with "
                   "kernel.sched_autogroup_enabled, in its scheduling group, "
                   "one thread among its 32) instead of a session of their "
                   "own, as a service has a cgroup of its own")
    p.add_argument("--nice", type=int, default=0,
                   help="nice level of the storm and of every tool")
    p.add_argument("--warmup", type=float, default=5,
                   help="seconds of untimed storm first (TIME_WAIT steady)")
    p.add_argument("--bpf-stats", action="store_true",
                   help="turn on the kernel's BPF run-time statistics for "
                   "the run (global while on; adds two clock reads per "
                   "program run) and report each program's in-kernel ns per "
                   "run")
    p.add_argument("--tcpstated-bin", default=os.environ.get("TCPSTATED_BIN"))
    p.add_argument("--floor-bin",
                   default=os.environ.get("TCPSTATED_FLOOR_BIN"),
                   help="tcpstated-floor (default: next to --tcpstated-bin)")
    p.add_argument("--prev-bin", default=os.environ.get("TCPSTATED_PREV_BIN"),
                   help="another tcpstated build for the tcpstated-prev mode")
    p.add_argument("--daemon-config", default="",
                   help="YAML given to every tcpstated mode as its config "
                   "file (default: none, the defaults), e.g. "
                   "'tracking: {reconcile_interval: 1h}' to keep the full "
                   "reconcile out of the rounds and so measure the event "
                   "path alone")
    p.add_argument("--variant", action="append", default=[],
                   metavar="NAME=YAML",
                   help="an extra mode tcpstated-NAME: --tcpstated-bin with "
                   "YAML as its config file instead of --daemon-config, e.g. "
                   "'r2=bpf: {ring_buffers: 2}' (repeatable)")
    p.add_argument("--quick", action="store_true",
                   help="tiny run for CI: 1 round, 3000 connections, 2 s")
    a = p.parse_args()
    if a.quick:
        a.rounds, a.connections, a.seconds, a.warmup = 1, 3000, 2, 0.5
        a.start_seconds, a.processes, a.workers = 3, 2, 2
    if (a.rounds < 1 or a.connections < 1 or a.seconds <= 0 or
            a.workers < 1 or a.processes < 1 or a.start_seconds <= 0):
        p.error("--rounds, --connections, --seconds, --start-seconds, "
                "--workers, --processes must be > 0")
    if a.seconds > 600 or a.start_seconds > 600:
        p.error("--seconds and --start-seconds are bounded to 600")
    if a.processes * a.workers > 1000:
        p.error("at most 1000 listeners (--processes x --workers)")
    if a.workers > 256:
        p.error("--workers is bounded to 256 (storm.c)")
    if a.start_delay < 0 or a.start_delay >= a.start_seconds:
        p.error("--start-delay must be in [0, --start-seconds)")
    a.variants = {}
    for v in a.variant:
        name, sep, yaml = v.partition("=")
        if not sep or not re.fullmatch(r"[a-z0-9]+", name) or \
                "tcpstated-" + name in MODES:
            p.error("--variant wants NAME=YAML with NAME in [a-z0-9]+ and "
                    "not a mode's: %r" % v)
        a.variants["tcpstated-" + name] = yaml
    if not a.floor_bin and a.tcpstated_bin:
        a.floor_bin = os.path.join(os.path.dirname(a.tcpstated_bin),
                                   "tcpstated-floor")
    return a


class Tool:
    """One mode's observer: started before the storm (tcpstated-start: from
    inside it, see start()), stopped after."""

    def __init__(self, mode, args, workdir):
        self.mode = mode
        self.args = args
        self.workdir = workdir
        self.proc = None
        self.daemon = None

    def start(self):
        pre = loadlib.nice_preexec(self.args.nice)
        if self.mode in DAEMON_MODES or self.mode in self.args.variants:
            binary = (self.args.prev_bin
                      if self.mode.startswith("tcpstated-prev")
                      else self.args.tcpstated_bin)
            config = self.args.variants.get(self.mode,
                                            self.args.daemon_config)
            self.daemon = loadlib.Daemon(
                binary, config=config,
                nice=self.args.nice, workdir=self.workdir,
                own_session=not self.args.same_session).start()
            return
        if self.mode == "bare":
            return
        self.stderr = open(os.path.join(self.workdir, self.mode + ".err"),
                           "w+")
        if self.mode == "tcpstates":
            cmd = [shutil.which("tcpstates")]
        elif self.mode == "floor":
            cmd = [self.args.floor_bin]
        else:
            cmd = [shutil.which("bpftrace"), "-e", BPFTRACE_PROGRAM]
        # The floor stays attached until its stdin closes.
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stdin=subprocess.PIPE,
            stderr=self.stderr, preexec_fn=pre,
            start_new_session=not self.args.same_session)
        deadline = time.monotonic() + 60
        while not loadlib.bpf_attached(self.proc.pid):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("%s did not attach: %s" %
                                   (self.mode, self.err_text()))
            time.sleep(0.05)
        time.sleep(0.5)  # every program of the tool attached

    def err_text(self):
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()[-2000:]

    @property
    def pid(self):
        if self.daemon:
            return self.daemon.pid
        return self.proc.pid if self.proc else None

    def stop(self):
        if self.daemon:
            self.daemon.stop()
        if self.proc:
            # bpftrace prints its map on SIGINT; tcpstates and the floor stop
            # on it too.
            loadlib.stop_process(self.proc, signal.SIGINT)
            self.stderr.close()


def daemon_counters(daemon):
    m = daemon.metrics()

    def one(name, **labels):
        return m.get((name, frozenset(labels.items())), 0.0)

    return {
        "events": loadlib.metric_sum(m, "tcpstated_events_total"),
        "lost": loadlib.metric_sum(m, "tcpstated_events_lost_total"),
        "kernel": loadlib.metric_sum(m, "tcpstated_transitions_total"),
        "state_events": one("tcpstated_events_total",
                            source="inet_sock_set_state"),
        "state_lost": one("tcpstated_events_lost_total",
                          source="inet_sock_set_state"),
        "tracked": loadlib.metric_sum(m, "tcpstated_tracked_sockets"),
        "decode_errors": loadlib.metric_sum(
            m, "tcpstated_event_decode_errors_total"),
    }


def wait_drained(daemon, timeout=15):
    """Counters once the daemon has applied what the kernel produced: the
    kernel counts every transition before the ring buffer (since the
    programs were loaded), so applied + lost state events reach it when the
    ring is empty. Background traffic from other namespaces keeps a few
    events in flight; a backlog of at most 200 counts as drained."""
    deadline = time.monotonic() + timeout
    while True:
        c = daemon_counters(daemon)
        backlog = c["kernel"] - c["state_events"] - c["state_lost"]
        if backlog <= 200 or time.monotonic() > deadline:
            c["backlog"] = backlog
            return c
        time.sleep(0.1)


def run_storm(binary, args, rst_percent, seconds, during=None):
    """Runs --processes storm.c processes at once, each with --workers
    listeners on ports of its own; calls during() once they run. Returns the
    summed result lines plus the CPU they used (user + sys, from wait4: the
    kernel's TCP work and every BPF program run in their context)."""
    per_process = max(1, args.connections // args.processes)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    procs = []
    try:
        for p in range(args.processes):
            cmd = [binary, "storm", "--connections", str(per_process),
                   "--workers", str(args.workers), "--seconds", str(seconds),
                   "--port", str(LISTEN_PORT + p * args.workers),
                   "--rst-percent", str(rst_percent)]
            procs.append(subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, preexec_fn=loadlib.nice_preexec(args.nice)))
        if during:
            during()
        outs = []
        for proc in procs:
            out, err = proc.communicate(timeout=seconds + 60)
            if proc.returncode != 0:
                raise RuntimeError("storm failed: " + err)
            outs.append({k: float(v) for k, v in
                         (kv.split("=") for kv in out.split())})
    except subprocess.TimeoutExpired:
        raise RuntimeError("storm did not finish in time")
    finally:  # interrupted or failed: leave nothing running
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    # Only the storms are reaped in this window (tools are reaped after).
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = {"connections": sum(o["connections"] for o in outs),
              "errors": sum(o["errors"] for o in outs),
              "seconds": max(o["seconds"] for o in outs)}
    result["rate"] = result["connections"] / result["seconds"]
    result["cpu_s"] = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime -
                                                        ru0.ru_stime)
    return result


class LossSampler:
    """Scrapes the daemon every second during the storm and notes when
    tcpstated_events_lost_total grew, in seconds since the daemon started
    (its reconcile with the kernel's socket dump runs every 30 s)."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.windows = []  # (from s, to s, events lost)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        last_t, last = None, None
        while not self.done.wait(1.0):
            try:
                lost = daemon_counters(self.daemon)["lost"]
            except OSError:
                continue
            t = time.monotonic() - self.daemon.started_at
            if last is not None and lost > last:
                self.windows.append((last_t, t, lost - last))
            last_t, last = t, lost

    def stop(self):
        self.done.set()
        self.thread.join(timeout=30)


def program_stats_delta(before, after):
    """{program: (ns, runs)} that ran between two bpf_prog_stats_by_name."""
    out = {}
    for name, (ns, cnt) in after.items():
        ns0, cnt0 = before.get(name, (0, 0))
        if cnt > cnt0:
            out[name] = (ns - ns0, cnt - cnt0)
    return out


def one_round(mode, storm, binary, args, workdir):
    tool = Tool(mode, args, workdir)
    starting = mode.endswith("-start")
    seconds = args.start_seconds if storm == "start" else args.seconds
    zero = {"events": 0, "lost": 0, "kernel": 0, "state_events": 0}
    r = {"mode": mode}
    sampler = None
    pid = cpu0 = sched0 = ctx0 = None
    bpf0 = {}
    progs0 = {}

    def start_inside():
        # The daemon's whole life is inside the measured window: seeding, the
        # first owner scan and the first kernel-view cycle included.
        nonlocal pid
        time.sleep(args.start_delay)
        tool.start()
        pid = tool.pid

    try:
        if not starting:
            tool.start()
            pid = tool.pid
        before = zero
        if tool.daemon:
            before = wait_drained(tool.daemon, timeout=5)
        if pid:
            cpu0 = loadlib.proc_cpu_ticks(pid)
            sched0 = loadlib.proc_cpu_ns_schedstat(pid)
            ctx0 = loadlib.proc_ctx_switches(pid)
            wait0 = loadlib.proc_runqueue_wait_ns(pid)
            threads0 = loadlib.proc_thread_schedstat(pid)
            preempt0 = loadlib.proc_involuntary_switches(pid)
            bpf0 = loadlib.bpf_prog_stats(pid)
            if args.bpf_stats:
                progs0 = loadlib.bpf_prog_stats_by_name(pid)
        if tool.daemon:
            sampler = LossSampler(tool.daemon)
        iwi0 = loadlib.irq_work_interrupts()
        try:
            s = run_storm(binary, args, STORMS[storm], seconds,
                          during=start_inside if starting else None)
        finally:
            if sampler:
                sampler.stop()
        r["irq_work_per_conn"] = (loadlib.irq_work_interrupts() - iwi0) / max(
            1, s["connections"])
        if starting:
            cpu0, sched0, ctx0, bpf0 = 0, 0, 0, (0, 0)
            wait0 = preempt0 = 0
            threads0 = {}
        if sampler and sampler.windows:
            r["loss_windows"] = sampler.windows
        r.update(conns=s["connections"], rate=s["rate"], errors=s["errors"],
                 seconds=s["seconds"],
                 storm_us_per_conn=s["cpu_s"] * 1e6 / max(1, s["connections"]))
        if tool.daemon:
            after = wait_drained(tool.daemon)
            r["seen"] = after["events"] - before["events"]
            r["lost"] = after["lost"] - before["lost"]
            r["kernel"] = after["kernel"] - before["kernel"]
            r["state_seen"] = after["state_events"] - before["state_events"]
            r["tracked"] = after["tracked"]
            r["decode_errors"] = after["decode_errors"] - before.get(
                "decode_errors", 0)
        if pid:
            cpu_ns = ((loadlib.proc_cpu_ticks(pid) - cpu0) * 1e9 /
                      loadlib.CLK_TCK)
            sched_ns = loadlib.proc_cpu_ns_schedstat(pid) - sched0
            r["cpu_ms"] = cpu_ns / 1e6
            r["cpu_us_per_conn"] = cpu_ns / 1e3 / max(1, r["conns"])
            r["rss_mib"] = loadlib.proc_rss_bytes(pid) / 2**20
            r["runq_wait_ms"] = (loadlib.proc_runqueue_wait_ns(pid) -
                                 wait0) / 1e6
            r["preemptions"] = (loadlib.proc_involuntary_switches(pid) -
                                preempt0)
            # The two threads that matter, by name: the ring consumer (events
            # lost if it waits) and the kernel view (reconcile, /proc scans).
            threads1 = loadlib.proc_thread_schedstat(pid)
            for name in ("ring-consumer", "kernel-view"):
                if name in threads1:
                    c0, w0 = threads0.get(name, (0, 0))
                    c1, w1 = threads1[name]
                    r[name] = ((c1 - c0) / 1e6, (w1 - w0) / 1e6)
            # Where the rest went: every live thread by name (schedstat),
            # and the threads that ended in the round (the short-lived
            # helpers that enter a namespace for a dump or a read: only
            # /proc/<pid>/stat, which counts reaped threads, has them) as the
            # remainder, to a clock tick.
            r["threads_ms"] = {
                name: (c1 - threads0.get(name, (0, 0))[0]) / 1e6
                for name, (c1, _) in threads1.items()}
            r["threads_ms"]["(ended)"] = max(
                0.0, cpu_ns / 1e6 - sum(r["threads_ms"].values()))
            bpf1 = loadlib.bpf_prog_stats(pid)
            if bpf1[1] > bpf0[1]:
                runs = bpf1[1] - bpf0[1]
                r["bpf_ns_per_run"] = (bpf1[0] - bpf0[0]) / runs
                r["bpf_us_per_conn"] = (bpf1[0] - bpf0[0]) / 1e3 / max(
                    1, r["conns"])
            if args.bpf_stats:
                r["programs"] = {
                    name: ns / cnt for name, (ns, cnt) in program_stats_delta(
                        progs0, loadlib.bpf_prog_stats_by_name(pid)).items()}
            if tool.daemon and r["seen"] > 0:
                r["ns_per_event"] = cpu_ns / r["seen"]
                r["ns_per_event_sched"] = sched_ns / r["seen"]
                r["events_per_wakeup"] = r["seen"] / max(
                    1, loadlib.proc_ctx_switches(pid) - ctx0)
        if mode == "tcpstates":
            # libbpf-tools: "lost N events on CPU #c" per perf-buffer loss.
            r["tool_lost"] = sum(int(n) for n in re.findall(
                r"lost (\d+) events", tool.err_text()))
    finally:
        tool.stop()
    return r


def available_modes(args):
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if args.prev_bin and "tcpstated-prev" not in modes:
        modes.append("tcpstated-prev")
    modes += [v for v in args.variants if v not in modes]
    for m in modes:
        if m in args.variants:
            continue
        if m not in MODES or m.endswith("-start"):
            sys.exit("unknown mode %r (the -start modes belong to the start "
                     "storm)" % m if m.endswith("-start") else
                     "unknown mode %r" % m)
    out = []
    for m in modes:
        if (m == "tcpstated" or m in args.variants) and not (
                args.tcpstated_bin and
                                     os.access(args.tcpstated_bin, os.X_OK)):
            sys.exit("tcpstated mode needs TCPSTATED_BIN (or "
                     "--tcpstated-bin) pointing at the daemon")
        if m == "tcpstated-prev" and not os.access(args.prev_bin or "",
                                                   os.X_OK):
            sys.exit("tcpstated-prev needs --prev-bin (TCPSTATED_PREV_BIN)")
        if m == "floor" and not (args.floor_bin and
                                 os.access(args.floor_bin, os.X_OK)):
            sys.exit("floor mode needs tcpstated-floor (build target "
                     "tcpstated-floor; --floor-bin or TCPSTATED_FLOOR_BIN)")
        if m in ("tcpstates", "bpftrace") and not shutil.which(m):
            log("note: %s is not installed; skipping that mode "
                "(Debian: apt-get install %s)" %
                (m, "libbpf-tools" if m == "tcpstates" else "bpftrace"))
            continue
        out.append(m)
    if "bare" not in out:
        out.insert(0, "bare")
    return out


def storm_modes(storm, modes, args):
    """The start storm compares a start inside the storm with bare and with
    a daemon past its start-up."""
    if storm != "start":
        return modes
    out = ["bare", "tcpstated", "tcpstated-start"]
    if "tcpstated-prev" in modes:
        out.append("tcpstated-prev-start")
    return out


def print_round(storm, i, r, bare_median):
    ratio = (r["rate"] / bare_median) if bare_median else None
    parts = ["%s round %d %-20s" % (storm, i, r["mode"]),
             "conn/s=%.0f" % r["rate"],
             "ratio=%s" % fmt(ratio, "%.3f"),
             "conns=%d" % r["conns"],
             "storm_cpu=%.1fus/conn" % r["storm_us_per_conn"],
             "irq_work=%.3f/conn" % r["irq_work_per_conn"]]
    if r.get("errors"):
        parts.append("errors=%d" % r["errors"])
    if "cpu_ms" in r:
        parts.append("cpu=%.0fms (%.2f us/conn)" % (r["cpu_ms"],
                                                     r["cpu_us_per_conn"]))
    if "seen" in r:
        parts.append("events seen=%d lost=%d kernel_transitions=%d" %
                     (r["seen"], r["lost"], r["kernel"]))
        parts.append("ns/event=%s (schedstat %s)" %
                     (fmt(r.get("ns_per_event")),
                      fmt(r.get("ns_per_event_sched"))))
        parts.append("events/wakeup=%s" % fmt(r.get("events_per_wakeup"),
                                                "%.1f"))
        parts.append("tracked=%d" % r["tracked"])
        parts.append("run-queue wait=%.0fms preemptions=%d" %
                     (r["runq_wait_ms"], r["preemptions"]))
        for name in ("ring-consumer", "kernel-view"):
            if name in r:
                parts.append("%s cpu=%.0fms wait=%.0fms" % ((name,) + r[name]))
        if r.get("threads_ms"):
            parts.append("threads cpu ms: " + ", ".join(
                "%s %.0f" % kv for kv in sorted(r["threads_ms"].items(),
                                                key=lambda kv: -kv[1])))
    if "bpf_ns_per_run" in r:
        parts.append("bpf=%.0fns/run (%.2f us/conn)" %
                     (r["bpf_ns_per_run"], r["bpf_us_per_conn"]))
    if r.get("programs"):
        parts.append("programs: " + ", ".join(
            "%s %.0fns" % kv for kv in sorted(r["programs"].items())))
    if "rss_mib" in r:
        parts.append("rss=%.1fMiB" % r["rss_mib"])
    if "tool_lost" in r:
        parts.append("tcpstates lost=%d" % r["tool_lost"])
    if r.get("loss_windows"):
        parts.append("losses (s after daemon start): " + ", ".join(
            "%.0f-%.0f: %d" % w for w in r["loss_windows"]))
    print("  ".join(parts), flush=True)


def ratio(a, b, spec="%.3f"):
    return fmt(a / b if a is not None and b else None, spec)


def summary(storm, results, modes):
    def med(m, key):
        return median(r.get(key) for r in results if r["mode"] == m)

    bare, floor = med("bare", "rate"), med("floor", "rate")
    bare_cpu = med("bare", "storm_us_per_conn")
    lines = [
        "",
        "### storm `%s` (%d%% RST)" % (storm, STORMS[storm]),
        "",
        "| mode | rounds | connections/s | ratio to bare | ratio to floor "
        "| storm CPU µs/conn | tool CPU µs/conn | watching overhead: CPU "
        "per connection vs bare | daemon ns/event (stat; schedstat) "
        "| events/wake-up | run-queue wait ms: daemon; ring consumer; "
        "kernel view "
        "| IRQ work interrupts/conn | events seen / lost | RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    program_rows = []
    for m in modes:
        rs = [r for r in results if r["mode"] == m]
        rate, scpu = med(m, "rate"), med(m, "storm_us_per_conn")
        tcpu = med(m, "cpu_us_per_conn")
        overhead = None
        if bare_cpu and scpu is not None:
            overhead = (scpu + (tcpu or 0)) / bare_cpu - 1
        epw = med(m, "events_per_wakeup")
        if any("seen" in r for r in rs):
            events = "%d / %d" % (sum(r["seen"] for r in rs),
                                  sum(r["lost"] for r in rs))
            ns = "%s; %s" % (fmt(med(m, "ns_per_event")),
                             fmt(med(m, "ns_per_event_sched")))
        elif any("tool_lost" in r for r in rs):
            events = "? / %d (its perf buffer)" % sum(
                r["tool_lost"] for r in rs)
            ns = "–"
        else:
            events, ns = "–", "–"
        lines.append(
            "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s "
            "| %s |" %
            (m, len(rs), fmt(rate), ratio(rate, bare), ratio(rate, floor),
             fmt(scpu, "%.1f"), fmt(tcpu, "%.2f") if m != "bare" else "–",
             fmt(overhead * 100, "%+.1f %%") if m != "bare" and
             overhead is not None else "–", ns,
             fmt(epw, "%.1f") if epw else "–",
             "%s; %s; %s" % (
                 fmt(med(m, "runq_wait_ms")),
                 fmt(median(r["ring-consumer"][1] for r in rs
                            if "ring-consumer" in r)),
                 fmt(median(r["kernel-view"][1] for r in rs
                            if "kernel-view" in r)))
             if any("seen" in r for r in rs) else "–",
             fmt(med(m, "irq_work_per_conn"), "%.3f"), events,
             fmt(med(m, "rss_mib"), "%.1f") if m != "bare" else "–"))
        names = sorted({n for r in rs for n in r.get("programs", {})})
        for n in names:
            program_rows.append("| %s | %s | %s |" % (m, n, fmt(median(
                r.get("programs", {}).get(n) for r in rs))))
    lines.append("")
    lines.append("Medians over the rounds; ratios are against the bare "
                 "(and floor) median of the same run; events are totals "
                 "over the rounds.")
    if program_rows:
        lines += ["", "| mode | BPF program | in-kernel ns per run |",
                  "|---|---|---|"] + program_rows
    print("\n".join(lines), flush=True)


def main():
    args = parse_args()
    binary = loadlib.prologue("storm.py")
    modes = available_modes(args)
    storms = [x.strip() for x in args.storms.split(",") if x.strip()]
    for st in storms:
        if st not in STORMS:
            sys.exit("unknown storm %r (reset, timewait, mixed, start)" % st)
        if st == "start" and not (args.tcpstated_bin and
                                  os.access(args.tcpstated_bin, os.X_OK)):
            sys.exit("the start storm needs TCPSTATED_BIN")
    print("storms %s: %d processes x %d workers (listeners), at most %d "
          "connections or %.1f s per round (start storm %.1f s); %d rounds "
          "of %s; nice %d; tools in %s" %
          (",".join(storms), args.processes, args.workers, args.connections,
           args.seconds, args.start_seconds, args.rounds, ",".join(modes),
           args.nice, "the storm's session" if args.same_session else
           "sessions of their own"), flush=True)
    t_start = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="tcpstated-storm-")
    results = {st: [] for st in storms}
    stats_fd = None
    if args.bpf_stats:
        stats_fd = loadlib.enable_bpf_stats()
        print("BPF run-time statistics %s" %
              ("on" if stats_fd is not None else "refused by the kernel"))
    try:
        with loadlib.Netns("storm", SYSCTLS) as ns:
            print("namespace %s (inode %d)" % (ns.name, ns.inode),
                  flush=True)
            for st in storms:
                if args.warmup > 0:
                    w = run_storm(binary, args, STORMS[st], args.warmup)
                    print("%s warm-up: %.0f conn/s (not counted)" %
                          (st, w["rate"]), flush=True)
                sm = storm_modes(st, modes, args)
                for i in range(args.rounds):
                    order = sm[i % len(sm):] + sm[:i % len(sm)]
                    for m in order:
                        r = one_round(m, st, binary, args, workdir)
                        results[st].append(r)
                        bare = median(x["rate"] for x in results[st]
                                      if x["mode"] == "bare")
                        print_round(st, i + 1, r, bare)
    finally:
        if stats_fd is not None:
            os.close(stats_fd)
        shutil.rmtree(workdir, ignore_errors=True)
    for st in storms:
        summary(st, results[st], storm_modes(st, modes, args))
    print("\nload average at the end: %s; %.0f s in all" %
          (loadlib.loadavg(), time.monotonic() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
