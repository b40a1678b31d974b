#!/usr/bin/env python3
"""End-to-end cost of watching TCP: a bounded connection storm on a private
namespace's loopback, in alternating rounds

  bare       nothing attached
  tcpstated  the daemon with its default configuration ($TCPSTATED_BIN)
  tcpstates  libbpf-tools' tcpstates, output to /dev/null
  bpftrace   a one-liner counting transitions in the kernel

Each round runs storm.c (compiled with cc into /tmp): K workers doing
connect / accept / close cycles, half closed gracefully (client first, so the
client ends in TIME_WAIT) and half with SO_LINGER 0 (RST), bounded by a
connection count and a time limit. Per round it prints connections/s and its
ratio to the bare median, the daemon's CPU per event (/proc/<pid>/stat
utime+stime over the events it applied, tcpstated_events_total), events seen
and lost (tcpstated_events_lost_total), and RSS; then a markdown table of
medians.

The round order rotates (ABCD, BCDA, ...) so that no mode always runs first
or last, and the figures are ratios measured in the same run. Besides
connections/s (sensitive to whatever else the machine runs), each round
reports the storm's own CPU per connection (user + sys from wait4: the
kernel's TCP work and the BPF programs run in its context), which unrelated
load disturbs less. --nice sets one nice level for the storm, the daemon and
the tools (with sched_autogroup it only orders them among themselves).

  TCPSTATED_BIN=build/tcpstated tests/load/storm.py            # full run
  TCPSTATED_BIN=build/tcpstated tests/load/storm.py --quick    # CI, < 30 s

Root; Python standard library; cc.
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
LISTEN_PORT = 60000  # workers listen on 60000+i, reserved from ephemerals
SYSCTLS = {
    "net.ipv4.ip_local_port_range": "1024 65535",
    "net.ipv4.ip_local_reserved_ports": "60000-60999",
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds per mode (default 3)")
    p.add_argument("--connections", type=int, default=2000000,
                   help="connections per round, at most (default 2000000)")
    p.add_argument("--seconds", type=float, default=45,
                   help="time limit of a round's storm (default 45: each "
                   "tcpstated round then spans the daemon's reconcile, "
                   "30 s after it starts)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                   help="parallel workers (default: nproc)")
    p.add_argument("--modes", default="bare,tcpstated,tcpstates,bpftrace",
                   help="comma-separated subset of the modes")
    p.add_argument("--nice", type=int, default=0,
                   help="nice level of the storm and of every tool")
    p.add_argument("--warmup", type=float, default=5,
                   help="seconds of untimed storm first (TIME_WAIT steady)")
    p.add_argument("--bpf-stats", action="store_true",
                   help="turn on the kernel's BPF run-time statistics for "
                   "the run (global while on; adds two clock reads per "
                   "program run) and report each tool's in-kernel ns per "
                   "program run")
    p.add_argument("--tcpstated-bin", default=os.environ.get("TCPSTATED_BIN"))
    p.add_argument("--quick", action="store_true",
                   help="tiny run for CI: 1 round, 3000 connections, 2 s")
    a = p.parse_args()
    if a.quick:
        a.rounds, a.connections, a.seconds, a.warmup = 1, 3000, 2, 0.5
    if a.rounds < 1 or a.connections < 1 or a.seconds <= 0 or a.workers < 1:
        p.error("--rounds, --connections, --seconds, --workers must be > 0")
    if a.seconds > 600:
        p.error("--seconds is bounded to 600")
    return a


class Tool:
    """One mode's observer: started before the storm, stopped after."""

    def __init__(self, mode, args, workdir):
        self.mode = mode
        self.args = args
        self.workdir = workdir
        self.proc = None
        self.daemon = None

    def start(self):
        pre = loadlib.nice_preexec(self.args.nice)
        if self.mode == "tcpstated":
            self.daemon = loadlib.Daemon(self.args.tcpstated_bin,
                                         nice=self.args.nice,
                                         workdir=self.workdir).start()
            return
        if self.mode == "bare":
            return
        self.stderr = open(os.path.join(self.workdir, self.mode + ".err"),
                           "w+")
        if self.mode == "tcpstates":
            cmd = [shutil.which("tcpstates")]
        else:
            cmd = [shutil.which("bpftrace"), "-e", BPFTRACE_PROGRAM]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr, preexec_fn=pre)
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
            # bpftrace prints its map on SIGINT; tcpstates stops on it too.
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


def run_storm(binary, args, connections, seconds):
    """Runs storm.c; its result line, plus the CPU it used (user + sys, from
    wait4: the kernel's TCP work and every BPF program run in its context)."""
    cmd = [binary, "storm", "--connections", str(connections),
           "--workers", str(args.workers), "--seconds", str(seconds),
           "--port", str(LISTEN_PORT)]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=loadlib.nice_preexec(args.nice))
    try:
        out, err = proc.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError("storm did not finish in time")
    except BaseException:  # interrupted: leave nothing running
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError("storm failed: " + err)
    result = {k: float(v) for k, v in
              (kv.split("=") for kv in out.split())}
    # Only the storm is reaped in this window (tools are reaped after it).
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
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


def one_round(mode, binary, args, workdir):
    tool = Tool(mode, args, workdir)
    tool.start()
    r = {"mode": mode}
    try:
        pid = tool.pid
        if tool.daemon:
            before = wait_drained(tool.daemon, timeout=5)
        if pid:
            cpu0 = loadlib.proc_cpu_ticks(pid)
            sched0 = loadlib.proc_cpu_ns_schedstat(pid)
            ctx0 = loadlib.proc_ctx_switches(pid)
            bpf0 = loadlib.bpf_prog_stats(pid)
        sampler = LossSampler(tool.daemon) if tool.daemon else None
        try:
            s = run_storm(binary, args, args.connections, args.seconds)
        finally:
            if sampler:
                sampler.stop()
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
            r["decode_errors"] = after["decode_errors"] - before[
                "decode_errors"]
        if pid:
            cpu_ns = ((loadlib.proc_cpu_ticks(pid) - cpu0) * 1e9 /
                      loadlib.CLK_TCK)
            sched_ns = loadlib.proc_cpu_ns_schedstat(pid) - sched0
            r["cpu_ms"] = cpu_ns / 1e6
            r["cpu_us_per_conn"] = cpu_ns / 1e3 / max(1, r["conns"])
            r["rss_mib"] = loadlib.proc_rss_bytes(pid) / 2**20
            bpf1 = loadlib.bpf_prog_stats(pid)
            if bpf1[1] > bpf0[1]:
                runs = bpf1[1] - bpf0[1]
                r["bpf_ns_per_run"] = (bpf1[0] - bpf0[0]) / runs
                r["bpf_us_per_conn"] = (bpf1[0] - bpf0[0]) / 1e3 / max(
                    1, r["conns"])
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
    for m in modes:
        if m not in ("bare", "tcpstated", "tcpstates", "bpftrace"):
            sys.exit("unknown mode %r" % m)
    out = []
    for m in modes:
        if m == "tcpstated" and not (args.tcpstated_bin and
                                     os.access(args.tcpstated_bin, os.X_OK)):
            sys.exit("tcpstated mode needs TCPSTATED_BIN (or "
                     "--tcpstated-bin) pointing at the daemon")
        if m in ("tcpstates", "bpftrace") and not shutil.which(m):
            log("note: %s is not installed; skipping that mode "
                "(Debian: apt-get install %s)" %
                (m, "libbpf-tools" if m == "tcpstates" else "bpftrace"))
            continue
        out.append(m)
    if "bare" not in out:
        out.insert(0, "bare")
    return out


def print_round(i, r, bare_median):
    ratio = (r["rate"] / bare_median) if bare_median else None
    parts = ["round %d %-9s" % (i, r["mode"]),
             "conn/s=%.0f" % r["rate"],
             "ratio=%s" % fmt(ratio, "%.3f"),
             "conns=%d" % r["conns"],
             "storm_cpu=%.1fus/conn" % r["storm_us_per_conn"]]
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
    if "bpf_ns_per_run" in r:
        parts.append("bpf=%.0fns/run (%.2f us/conn)" %
                     (r["bpf_ns_per_run"], r["bpf_us_per_conn"]))
    if "rss_mib" in r:
        parts.append("rss=%.1fMiB" % r["rss_mib"])
    if "tool_lost" in r:
        parts.append("tcpstates lost=%d" % r["tool_lost"])
    if r.get("loss_windows"):
        parts.append("losses (s after daemon start): " + ", ".join(
            "%.0f-%.0f: %d" % w for w in r["loss_windows"]))
    print("  ".join(parts), flush=True)


def summary(results, modes, args):
    bare = median(r["rate"] for r in results if r["mode"] == "bare")
    bare_cpu = median(r["storm_us_per_conn"] for r in results
                      if r["mode"] == "bare")
    lines = [
        "",
        "| mode | rounds | connections/s | ratio to bare | storm CPU "
        "µs/connection (ratio) | tool CPU µs/connection | tcpstated CPU "
        "ns/event (stat; schedstat) | events/wake-up | events seen / lost "
        "| RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    bpf_cells = []
    for m in modes:
        rs = [r for r in results if r["mode"] == m]
        rate = median(r["rate"] for r in rs)
        scpu = median(r["storm_us_per_conn"] for r in rs)
        cpu = median(r.get("cpu_us_per_conn") for r in rs)
        nspe = median(r.get("ns_per_event") for r in rs)
        nsps = median(r.get("ns_per_event_sched") for r in rs)
        epw = median(r.get("events_per_wakeup") for r in rs)
        rss = median(r.get("rss_mib") for r in rs)
        bpf = median(r.get("bpf_ns_per_run") for r in rs)
        bpf_conn = median(r.get("bpf_us_per_conn") for r in rs)
        if bpf is not None:
            bpf_cells.append("| %s | %.0f | %.2f |" % (m, bpf, bpf_conn))
        if any("seen" in r for r in rs):
            events = "%d / %d" % (sum(r["seen"] for r in rs),
                                  sum(r["lost"] for r in rs))
            ns = "%s; %s" % (fmt(nspe), fmt(nsps))
        elif any("tool_lost" in r for r in rs):
            events = "? / %d (its perf buffer)" % sum(
                r["tool_lost"] for r in rs)
            ns = "–"
        else:
            events, ns = "–", "–"
        lines.append("| %s | %d | %s | %s | %s (%s) | %s | %s | %s | %s | %s |"
                     % (m, len(rs), fmt(rate),
                        fmt(rate / bare if bare and rate else None, "%.3f"),
                        fmt(scpu, "%.1f"),
                        fmt(scpu / bare_cpu if bare_cpu and scpu else None,
                            "%.3f"),
                        fmt(cpu, "%.2f") if m != "bare" else "–", ns,
                        fmt(epw, "%.1f") if epw else "–", events,
                        fmt(rss, "%.1f") if m != "bare" else "–"))
    lines.append("")
    lines.append("Medians over the rounds; ratios are against the bare "
                 "median of the same run; events are totals over the "
                 "rounds.")
    if bpf_cells:
        lines += ["", "| mode | in-kernel ns per BPF program run | in-kernel "
                  "µs per connection |", "|---|---|---|"] + bpf_cells
    print("\n".join(lines), flush=True)


def main():
    args = parse_args()
    binary = loadlib.prologue("storm.py")
    modes = available_modes(args)
    print("storm: %d workers, at most %d connections or %.1f s per round, "
          "half RST; %d rounds of %s; nice %d" %
          (args.workers, args.connections, args.seconds, args.rounds,
           ",".join(modes), args.nice), flush=True)
    t_start = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="tcpstated-storm-")
    results = []
    stats_fd = None
    if args.bpf_stats:
        stats_fd = loadlib.enable_bpf_stats()
        print("BPF run-time statistics %s" %
              ("on" if stats_fd is not None else "refused by the kernel"))
    try:
        with loadlib.Netns("storm", SYSCTLS) as ns:
            print("namespace %s (inode %d)" % (ns.name, ns.inode),
                  flush=True)
            if args.warmup > 0:
                w = run_storm(binary, args, args.connections, args.warmup)
                print("warm-up: %.0f conn/s (not counted)" % w["rate"],
                      flush=True)
            for i in range(args.rounds):
                order = modes[i % len(modes):] + modes[:i % len(modes)]
                for m in order:
                    r = one_round(m, binary, args, workdir)
                    results.append(r)
                    bare = median(x["rate"] for x in results
                                  if x["mode"] == "bare")
                    print_round(i + 1, r, bare)
    finally:
        if stats_fd is not None:
            os.close(stats_fd)
        shutil.rmtree(workdir, ignore_errors=True)
    summary(results, modes, args)
    print("load average at the end: %s; %.0f s in all" %
          (loadlib.loadavg(), time.monotonic() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
