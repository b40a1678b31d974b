#!/usr/bin/env python3
"""tcpstated with up to 1,000,000 tracked sockets: /metrics scrape latency,
RSS, RSS per tracked socket and start-up seeding time at 10k, 100k and 1M
sockets, against node_exporter's tcpstat collector scraping the same
sockets.

Everything runs in a private namespace (tcpstated-test-scale-<pid>) that
this script enters: the sockets, tcpstated, node_exporter
(prometheus-node-exporter --collector.disable-defaults --collector.tcpstat,
which dumps the sockets of its own namespace through netlink sock_diag), and
every scrape, all on that namespace's loopback.

Two kinds of sockets:

  established (default)  connection pairs held open by storm.c "hold"
      helpers, each holding as many as its RLIMIT_NOFILE allows (the hard
      limit may not be raisable: then more helpers). They stay as long as
      needed, so every measurement at every step sees exactly N sockets.
  timewait  N TIME_WAIT sockets from graceful connect/close storms across
      many loopback destinations (127.0.x.y), tcp_max_tw_buckets raised to
      2M and tcp_tw_reuse=0. Linux keeps a TIME_WAIT socket exactly 60 s
      (TCP_TIMEWAIT_LEN is a constant), so a step is only meaningful if the
      sockets can be made and measured within that; the table shows the
      count each measurement actually saw.

At each step: 10 scrapes of each exporter, alternating, medians reported;
the durations of the full reconcile dump and of the peer-liveness dump
(ESTABLISHED and FIN_WAIT2 sockets with tcp_info) over three reconciles;
tcpstated's RSS and tcpstated_tracked_sockets; then a restart of tcpstated
with the sockets present: the time until /healthz answers and the daemon's
"seeded the mirror" line. The daemon runs with
tracking.max_tracked_sockets: 2000000 so that 1M sockets plus the host's fit.

And at each step the daemon's steady CPU (utime + stime of the process,
and of each thread, from /proc) over --window seconds (steady_cpu.py).

--steady-only measures only that, at each step, for the daemon at its
defaults and, with --base-bin, for a baseline build in the same run (the
order alternates between steps); with --job-costs it also runs the daemon
with each periodic dump due every 30 s (the ESTABLISHED peer-liveness dump
alone, then with the full reconcile) and gives each dump's CPU from the
rates (the variant's steady CPU above the defaults', times 30 s), with the
bursts each variant makes in a per-second series. A window of
70 s spans the 5-s detector cycle, the 30-s discovery and the 60-s state
save, not the 10-min full reconcile (which, with tcp_info, also serves the
ESTABLISHED peer dump at the defaults): its share is printed as cost per
dump x frequency. A window over 600 s spans it (the bursts show each dump).

  TCPSTATED_BIN=build/tcpstated tests/load/scale.py            # 10k..1M
  TCPSTATED_BIN=build/tcpstated tests/load/scale.py --quick    # CI, 10k
  tests/load/scale.py --tcpstated-bin build/tcpstated --steady-only \
      --base-bin ../scale-base/build/tcpstated --job-costs

Every step is bounded (--step-timeout, default 600 s: the script aborts).
Root; Python standard library; cc; prometheus-node-exporter.
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loadlib  # noqa: E402
import steady_cpu  # noqa: E402
from loadlib import fmt, log, median  # noqa: E402

STEPS = [10000, 100000, 1000000]
HOLD_PORT = 61000  # holders listen on 61000+i (reserved from ephemerals)
STORM_PORT = 60000
DAEMON_CONFIG = "tracking:\n  max_tracked_sockets: 2000000\n"
NODE_EXPORTER = "prometheus-node-exporter"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--max-sockets", type=int, default=1000000,
                   help="largest step (default 1000000)")
    p.add_argument("--kind", choices=("established", "timewait"),
                   default="established")
    p.add_argument("--scrapes", type=int, default=10,
                   help="scrapes of each exporter per step (default 10)")
    p.add_argument("--step-timeout", type=float, default=600,
                   help="abort if a step takes longer (default 600 s)")
    p.add_argument("--nice", type=int, default=0,
                   help="nice level of the helpers, tcpstated, node_exporter")
    p.add_argument("--tcpstated-bin", default=os.environ.get("TCPSTATED_BIN"))
    p.add_argument("--quick", action="store_true",
                   help="CI: the 10k step only, < 60 s")
    p.add_argument("--steps", dest="steps_list", default=None,
                   help="comma-separated socket counts instead of "
                   "10k,100k,1M (e.g. 1000000)")
    p.add_argument("--window", type=float, default=70,
                   help="steady-CPU window in s (default 70)")
    p.add_argument("--steady-only", action="store_true",
                   help="only the steady CPU at each step")
    p.add_argument("--base-bin", default=None,
                   help="with --steady-only: a baseline daemon measured "
                   "at each step too")
    p.add_argument("--job-costs", action="store_true",
                   help="with --steady-only: each periodic dump's CPU")
    p.add_argument("--max-cpu", type=float, default=None,
                   help="with --steady-only: exit 1 if the daemon's steady "
                   "CPU (%% of a core, window only, ring consumer left out) "
                   "exceeds this at a step")
    a = p.parse_args()
    if a.quick:
        a.window = min(a.window, 12)
    if a.quick:
        a.max_sockets = 10000
    a.steps = [s for s in STEPS if s <= a.max_sockets]
    if a.max_sockets not in a.steps:
        a.steps.append(a.max_sockets)
    if a.steps_list:
        try:
            a.steps = sorted(int(x) for x in a.steps_list.split(","))
        except ValueError:
            p.error("--steps takes socket counts, e.g. 10000,1000000")
        if not all(100 <= n <= 2000000 for n in a.steps):
            p.error("--steps: each count is 100..2000000")
    if not a.tcpstated_bin or not os.access(a.tcpstated_bin, os.X_OK):
        p.error("set TCPSTATED_BIN (or --tcpstated-bin) to the daemon")
    if a.base_bin and not os.access(a.base_bin, os.X_OK):
        p.error("--base-bin %s is not an executable" % a.base_bin)
    if (a.base_bin or a.job_costs) and not a.steady_only:
        p.error("--base-bin and --job-costs go with --steady-only")
    if not 5 <= a.window <= 1800:
        p.error("--window is 5..1800 s")
    if not a.steady_only and not shutil.which(NODE_EXPORTER):
        p.error("%s is not installed (Debian: apt-get install "
                "prometheus-node-exporter)" % NODE_EXPORTER)
    if a.scrapes < 1 or a.scrapes > 100:
        p.error("--scrapes is 1..100")
    return a


def sysctls(kind):
    s = {
        "net.ipv4.ip_local_port_range": "1024 65535",
        "net.ipv4.ip_local_reserved_ports": "60000-62999",
    }
    if kind == "timewait":
        s["net.ipv4.tcp_max_tw_buckets"] = "2000000"
        s["net.ipv4.tcp_tw_reuse"] = "0"
    return s


class Deadline:
    def __init__(self, seconds, what):
        self.at = time.monotonic() + seconds
        self.what = what

    def left(self):
        return self.at - time.monotonic()

    def check(self):
        if time.monotonic() > self.at:
            raise RuntimeError("%s took longer than its bound; aborting" %
                               self.what)


class Holders:
    """storm.c "hold" helpers, each keeping up to `per` connections (2 sockets
    each) open until its stdin closes."""

    def __init__(self, binary, nice):
        self.binary = binary
        self.nice = nice
        self.procs = []
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        self.per = max(1, min(200000, (hard - 100) // 2))
        self.sockets = 0

    def grow(self, sockets, deadline):
        """Adds helpers until 2 * connections >= sockets; two at a time."""
        pending = []
        while self.sockets < sockets or pending:
            deadline.check()
            while self.sockets < sockets and len(pending) < 2:
                n = min(self.per, (sockets - self.sockets + 1) // 2)
                port = HOLD_PORT + len(self.procs)
                p = subprocess.Popen(
                    [self.binary, "hold", "--connections", str(n),
                     "--port", str(port),
                     "--seconds", str(max(10, int(deadline.left())))],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                    preexec_fn=loadlib.nice_preexec(self.nice))
                self.procs.append(p)
                pending.append(p)
                self.sockets += 2 * n
            p = pending.pop(0)
            line = p.stdout.readline()
            if not line.startswith("ready"):
                raise RuntimeError("holder failed (exit %s)" % p.poll())

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        self.procs = []


def make_timewait(binary, want_total, have, nice, deadline):
    """Graceful storms until the namespace holds `want_total` TIME_WAIT
    sockets (counted by the caller); returns connections made and s."""
    n = want_total - have
    if n <= 0:
        return 0, 0.0
    t0 = time.monotonic()
    out = subprocess.run(
        [binary, "storm", "--connections", str(n), "--workers",
         str(os.cpu_count() or 2), "--seconds", str(max(5, deadline.left())),
         "--port", str(STORM_PORT), "--rst-percent", "0",
         "--dests", str(min(250 * 256, max(250, want_total // 20000)))],
        capture_output=True, text=True, timeout=deadline.left() + 30,
        preexec_fn=loadlib.nice_preexec(nice))
    if out.returncode != 0:
        raise RuntimeError("storm failed: " + out.stderr)
    made = int(dict(kv.split("=") for kv in out.stdout.split())[
        "connections"])
    return made, time.monotonic() - t0


class NodeExporter:
    def __init__(self, nice):
        self.port = loadlib.free_port()
        self.proc = subprocess.Popen(
            [shutil.which(NODE_EXPORTER), "--collector.disable-defaults",
             "--collector.tcpstat", "--web.disable-exporter-metrics",
             "--web.listen-address=127.0.0.1:%d" % self.port],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=loadlib.nice_preexec(nice))
        deadline = time.monotonic() + 30
        while True:
            try:
                loadlib.http_get(self.port, "/metrics", timeout=5)
                return
            except OSError:
                if (self.proc.poll() is not None or
                        time.monotonic() > deadline):
                    raise RuntimeError("node_exporter did not start")
                time.sleep(0.1)

    def scrape(self):
        dt, body = loadlib.timed_get(self.port, "/metrics")
        return dt, loadlib.parse_metrics(body.decode())

    def stop(self):
        loadlib.stop_process(self.proc)


def ne_states(samples):
    return {dict(k[1]).get("state"): v for k, v in samples.items()
            if k[0] == "node_tcp_connection_states"}


def td_state(samples, netns, state):
    return samples.get(("tcpstated_sockets", frozenset(
        {"netns": str(netns), "state": state}.items())), 0.0)


def wait_tracked(daemon, netns, state, want, deadline, tolerance=0):
    """Until tcpstated_sockets{netns, state} reaches want - tolerance."""
    while True:
        m = daemon.metrics()
        have = td_state(m, netns, state)
        if have >= want - tolerance:
            return m
        if deadline.left() < 0:
            raise RuntimeError("tcpstated shows %d %s sockets, want %d" %
                               (have, state, want))
        time.sleep(0.2)


def measure_step(args, step, ns, daemon, ne, base, state):
    deadline = Deadline(args.step_timeout, "step %d" % step)
    r = {"step": step}
    td_lat, ne_lat = [], []
    ne_seen, td_seen = [], []
    for _ in range(args.scrapes):
        deadline.check()
        dt, body = loadlib.timed_get(daemon.port, "/metrics")
        td_lat.append(dt)
        td_seen.append(td_state(loadlib.parse_metrics(body.decode()),
                                ns.inode, state))
        dt, samples = ne.scrape()
        ne_lat.append(dt)
        ne_seen.append(ne_states(samples).get(state, 0.0))
    m = daemon.metrics()
    r["td_ms"] = median(td_lat) * 1e3
    r["ne_ms"] = median(ne_lat) * 1e3
    r["td_range"] = (min(td_lat) * 1e3, max(td_lat) * 1e3)
    r["ne_range"] = (min(ne_lat) * 1e3, max(ne_lat) * 1e3)
    r["td_seen"] = median(td_seen)
    r["ne_seen"] = median(ne_seen)
    r["tracked"] = loadlib.metric_sum(m, "tcpstated_tracked_sockets")
    r["rss"] = loadlib.proc_rss_bytes(daemon.pid)
    r["rss_parts"] = loadlib.proc_rss_by_mapping(daemon.pid)
    r["ne_rss"] = loadlib.proc_rss_bytes(ne.proc.pid)
    r["rss_per_tracked"] = r["rss"] / max(1, r["tracked"])
    r["rss_marginal"] = ((r["rss"] - base["rss"]) /
                         max(1, r["tracked"] - base["tracked"]))
    # Restart with the sockets present: seeding.
    daemon.stop()
    daemon.start(timeout=max(30, deadline.left()))
    r["start_s"] = daemon.start_seconds
    r["seeded"], r["seed_dump_s"] = daemon.seeded_line()
    m = daemon.metrics()
    r["tracked_after_restart"] = loadlib.metric_sum(
        m, "tcpstated_tracked_sockets")
    r["rss_after_restart"] = loadlib.proc_rss_bytes(daemon.pid)
    r["rss_parts_after_restart"] = loadlib.proc_rss_by_mapping(daemon.pid)
    return r


# ---- The peer-liveness dump (ESTABLISHED and FIN_WAIT2 with tcp_info) ----
# Beside the full dump without tcp_info. Both last durations are gauges,
# read over a few 30-s periods after the step's sockets exist. (Since
# tracking.full_reconcile_interval, 10 min by default, and the ESTABLISHED
# dump at a tenth of idle_after, 6 min, both gauges give the dumps of the
# restart's first cycle: the seed and the first peer dump.)
LIVENESS_RECONCILES = 3
RECONCILE_SECONDS = 30


def measure_liveness(daemon, deadline):
    full, liveness = [], []
    for _ in range(LIVENESS_RECONCILES):
        deadline.check()
        time.sleep(RECONCILE_SECONDS + 1)
        m = daemon.metrics()
        full.append(loadlib.metric_sum(m, "tcpstated_reconcile_dump_seconds"))
        liveness.append(loadlib.metric_sum(
            m, "tcpstated_peer_liveness_dump_seconds"))
    return {"full_dump_s": median(full), "liveness_dump_s": median(liveness),
            "liveness_range": (min(liveness), max(liveness))}


def liveness_summary(results):
    print()
    print("| sockets | full dump s (no tcp_info) | peer-liveness dump s "
          "(median; min-max) | liveness / full |")
    print("|---|---|---|---|")
    for r in results:
        if "liveness_dump_s" not in r:
            continue
        print("| %d | %.3f | %.3f; %.3f-%.3f | %.2f |" % (
            r["step"], r["full_dump_s"], r["liveness_dump_s"],
            r["liveness_range"][0], r["liveness_range"][1],
            r["liveness_dump_s"] / max(r["full_dump_s"], 1e-9)))


def parts(p):
    mib = 2**20
    return ("heap %.1f, anon %.1f (largest %s), files %.1f, other (ring "
            "buffer, stacks) %.1f MiB" % (
                p["heap"] / mib, p["anon"] / mib,
                "/".join("%.1f" % (b / mib) for b in p["largest_anon"]),
                p["file"] / mib, p["other"] / mib))


def print_step(r, kind):
    print("step %d %s: tcpstated scrape %.1f ms (min %.1f, max %.1f; sees "
          "%d), node_exporter tcpstat scrape %.1f ms (min %.1f, max %.1f; "
          "sees %d), ratio %.1fx; tracked %d, RSS "
          "%.1f MiB (%.0f B/tracked socket, %.0f B marginal); node_exporter "
          "RSS %.1f MiB; restart: /healthz after %.2f s, seeded %s sockets "
          "(dump %s s), tracked %d, RSS %.1f MiB" %
          (r["step"], kind, r["td_ms"], r["td_range"][0], r["td_range"][1],
           r["td_seen"], r["ne_ms"], r["ne_range"][0], r["ne_range"][1],
           r["ne_seen"], r["ne_ms"] / r["td_ms"], r["tracked"],
           r["rss"] / 2**20, r["rss_per_tracked"], r["rss_marginal"],
           r["ne_rss"] / 2**20, r["start_s"], fmt(r["seeded"], "%d"),
           fmt(r["seed_dump_s"], "%.3f"), r["tracked_after_restart"],
           r["rss_after_restart"] / 2**20), flush=True)
    print("  RSS by mapping: %s; after restart: %s" %
          (parts(r["rss_parts"]), parts(r["rss_parts_after_restart"])),
          flush=True)


def summary(results, kind):
    print()
    print("| %s sockets | tcpstated /metrics ms (median; min) | "
          "node_exporter tcpstat ms (median; min) | node_exporter / "
          "tcpstated (medians) | tracked | RSS "
          "MiB | RSS B per tracked socket (marginal) | restart to /healthz s "
          "| seeded sockets (dump s) |" % kind)
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print("| %d (seen %d / %d) | %.1f; %.1f | %.1f; %.1f | %.1f× | %d | "
              "%.1f | %.0f (%.0f) | %.2f | %s (%s) |" % (
                  r["step"], r["td_seen"], r["ne_seen"], r["td_ms"],
                  r["td_range"][0], r["ne_ms"], r["ne_range"][0],
                  r["ne_ms"] / r["td_ms"], r["tracked"],
                  r["rss"] / 2**20, r["rss_per_tracked"],
                  r["rss_marginal"], r["start_s"], fmt(r["seeded"], "%d"),
                  fmt(r["seed_dump_s"], "%.3f")))
    if len(results) > 1:
        print()
        print("tcpstated scrape at %d / at %d sockets: %.2f; node_exporter: "
              "%.2f" % (results[-1]["step"], results[0]["step"],
                        results[-1]["td_ms"] / results[0]["td_ms"],
                        results[-1]["ne_ms"] / results[0]["ne_ms"]))


def run_steps(args, binary, ns, daemon, ne, holders, state, results):
    time.sleep(1)
    m = daemon.metrics()
    base = {"rss": loadlib.proc_rss_bytes(daemon.pid),
            "tracked": loadlib.metric_sum(m, "tcpstated_tracked_sockets")}
    print("empty: tracked %d (the host's and other namespaces'), RSS "
          "%.1f MiB, started in %.2f s" %
          (base["tracked"], base["rss"] / 2**20, daemon.start_seconds),
          flush=True)
    made = 0
    for step in args.steps:
        deadline = Deadline(args.step_timeout, "step %d" % step)
        t0 = time.monotonic()
        if args.kind == "established":
            holders.grow(step, deadline)
            made = holders.sockets
            tolerance = 0
        else:
            have = td_state(daemon.metrics(), ns.inode, "time_wait")
            n, _ = make_timewait(binary, step, int(have), args.nice,
                                 deadline)
            made += n
            tolerance = step // 100  # the oldest may have expired
        wait_tracked(daemon, ns.inode, state, step, deadline, tolerance)
        print("step %d: %d sockets made in %.1f s" %
              (step, made, time.monotonic() - t0), flush=True)
        r = measure_step(args, step, ns, daemon, ne, base, state)
        deadline.check()
        r.update(measure_liveness(daemon, deadline))
        print("step %d: peer-liveness dump %.3f s, full dump %.3f s" %
              (step, r["liveness_dump_s"], r["full_dump_s"]), flush=True)
        r["steady"] = steady_cpu.measure(daemon.pid, args.window,
                                         deadline.check)
        print("step %d: steady CPU %s" %
              (step, steady_cpu.describe(r["steady"])), flush=True)
        results.append(r)
        print_step(r, args.kind)


# ---- Steady CPU only (--steady-only) ----
# Each variant is a daemon started on the step's sockets, left to settle
# (seed, owner scan, first cycle and first peer dump), then sampled.
BASE_CONFIG = DAEMON_CONFIG
# Each periodic dump every 30 s, for its cost per run: the ESTABLISHED
# peer dump alone (idle_after 120 s: a quarter of it; no full reconcile
# within the window), then the full reconcile every 30 s, which asks for
# tcp_info and serves the ESTABLISHED judgment itself (its interval is
# clamped to the full one's).
JOB_EST_CONFIG = (DAEMON_CONFIG + "  full_reconcile_interval: 1h\n"
                  "detectors:\n  idle_after: 120s\n")
JOB_FULL_CONFIG = (DAEMON_CONFIG + "  full_reconcile_interval: 30s\n"
                   "detectors:\n  idle_after: 120s\n")
JOB_PERIOD_S = 30
# The defaults whose share is computed from the per-run costs: one full
# dump with tcp_info every 10 min (idle_after 1h: its quarter is capped at
# the full interval, so the ESTABLISHED dump never runs on its own).
FULL_RECONCILE_S = 600


def steady_variants(args, index):
    v = [("tcpstated", args.tcpstated_bin, DAEMON_CONFIG)]
    if args.base_bin:
        v.append(("base", args.base_bin, BASE_CONFIG))
        if index % 2:
            v.reverse()
    if args.job_costs:
        v.append(("est-30s", args.tcpstated_bin, JOB_EST_CONFIG))
        v.append(("full+est-30s", args.tcpstated_bin, JOB_FULL_CONFIG))
    return v


def safety_runs(samples):
    return samples.get(("tcpstated_reconcile_runs_total",
                        frozenset({"reason": "safety"}.items())), 0)


def measure_variant(args, step, ns, state, name, binary, config, workdir):
    deadline = Deadline(args.step_timeout, "step %d %s" % (step, name))
    daemon = loadlib.Daemon(binary, config=config, nice=args.nice,
                            workdir=workdir)
    daemon.start(timeout=max(30, deadline.left()))
    try:
        wait_tracked(daemon, ns.inode, state, step, deadline)
        # Past the seed and the first cycle (its peer dump): twice the
        # start-up, at least 15 s.
        settle = max(15.0, 2 * daemon.start_seconds)
        time.sleep(settle)
        # Every daemon on the host receives every host-wide TCP event (other
        # users' traffic too): the ring consumer's share follows that, not
        # the idle sockets, so the events are counted beside it.
        m0 = daemon.metrics()
        r = steady_cpu.measure(daemon.pid, args.window, deadline.check)
        m1 = daemon.metrics()
        r["safety_runs"] = safety_runs(m1) - safety_runs(m0)
        r["events"] = (loadlib.metric_sum(m1, "tcpstated_events_total") -
                       loadlib.metric_sum(m0, "tcpstated_events_total"))
        consumer = r["threads"].get("ring-consumer", (0.0, 0.0))
        r["cpu_without_consumer"] = r["cpu"] - sum(consumer)
        r["bursts"] = steady_cpu.bursts(r["series"])
        r["tracked"] = loadlib.metric_sum(daemon.metrics(),
                                          "tcpstated_tracked_sockets")
    finally:
        daemon.stop()
    print("step %d %s: %s; without the ring consumer %.3f %%; %d events "
          "(%.0f/s); safety reconciles %d; bursts %s" %
          (step, name, steady_cpu.describe(r), r["cpu_without_consumer"],
           r["events"], r["events"] / r["seconds"], r["safety_runs"],
           "none above the tick resolution" if r["bursts"] is None else
           "; ".join("%.3f+%.3f s" % b for b in r["bursts"])), flush=True)
    return r


def job_costs(rows):
    """CPU seconds per ESTABLISHED dump on its own and per full reconcile
    (with tcp_info, serving the ESTABLISHED judgment), from the rates: each
    job variant's steady CPU (ring consumer left out) above the defaults'
    window, times the 30-s period. (The per-second bursts are printed too,
    but on a loaded machine a dump of a million sockets lasts longer than
    its share of the seconds and no median second is quiet.) None for a
    job whose variant did not run."""
    steady = rows["tcpstated"]["cpu_without_consumer"]
    est = rows.get("est-30s")
    full = rows.get("full+est-30s")
    per_est = per_full = None
    if est:
        per_est = (est["cpu_without_consumer"] - steady) / 100 * JOB_PERIOD_S
    if full:
        per_full = ((full["cpu_without_consumer"] - steady) / 100 *
                    JOB_PERIOD_S)
    return per_est, per_full


def run_steady(args, ns, holders, state, workdir):
    results = []
    for index, step in enumerate(args.steps):
        deadline = Deadline(args.step_timeout, "step %d" % step)
        holders.grow(step, deadline)
        rows = {}
        for name, binary, config in steady_variants(args, index):
            rows[name] = measure_variant(args, step, ns, state, name,
                                         binary, config, workdir)
        results.append((step, rows))
    steady_summary(results)
    # The ring consumer left out: its share follows the host's events.
    over = [(step, rows["tcpstated"]["cpu_without_consumer"])
            for step, rows in results
            if args.max_cpu is not None and
            rows["tcpstated"]["cpu_without_consumer"] > args.max_cpu]
    for step, cpu in over:
        print("FAIL: steady CPU %.3f %% of a core at %d sockets (ring "
              "consumer left out), above --max-cpu %.3f" %
              (cpu, step, args.max_cpu))
    return 1 if over else 0


def steady_summary(results):
    print()
    print("| sockets | daemon | steady CPU % of a core (user; system) | "
          "without the ring consumer | host-wide events/s | "
          "threads (user/system %) |")
    print("|---|---|---|---|---|---|")
    for step, rows in results:
        for name, r in rows.items():
            threads = sorted(r["threads"].items(), key=lambda kv: -sum(kv[1]))
            print("| %d | %s | %.3f (%.3f; %.3f) | %.3f | %.0f | %s |" % (
                step, name, r["cpu"], r["user"], r["system"],
                r["cpu_without_consumer"], r["events"] / r["seconds"],
                ", ".join("%s %.3f/%.3f" % (n, u, s)
                          for n, (u, s) in threads)))
    if not any("est-30s" in rows for _, rows in results):
        return
    print()
    print("| sockets | ESTABLISHED dump alone CPU s | full reconcile with "
          "tcp_info CPU s | at the defaults: window without the ring "
          "consumer + full/%d s, %% of a core |" % FULL_RECONCILE_S)
    print("|---|---|---|---|")
    for step, rows in results:
        est, full = job_costs(rows)
        total = rows["tcpstated"]["cpu_without_consumer"]
        total += 100 * max(0.0, full or 0.0) / FULL_RECONCILE_S
        print("| %d | %s | %s | %.3f |" % (
            step, fmt(est, "%.3f"), fmt(full, "%.3f"), total))


def main():
    args = parse_args()
    binary = loadlib.prologue("scale.py")
    print("kind %s, steps %s, %d scrapes each, nice %d" %
          (args.kind, ",".join(str(s) for s in args.steps), args.scrapes,
           args.nice), flush=True)
    t_start = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="tcpstated-scale-")
    results = []
    state = "established" if args.kind == "established" else "time_wait"
    try:
        with loadlib.Netns("scale", sysctls(args.kind)) as ns:
            print("namespace %s (inode %d)" % (ns.name, ns.inode), flush=True)
            holders = Holders(binary, args.nice)
            daemon = ne = None
            try:
                if args.steady_only:
                    return run_steady(args, ns, holders, state, workdir)
                ne = NodeExporter(args.nice)
                daemon = loadlib.Daemon(
                    args.tcpstated_bin, config=DAEMON_CONFIG, nice=args.nice,
                    workdir=workdir).start()
                run_steps(args, binary, ns, daemon, ne, holders, state,
                          results)
            finally:
                # Processes first, then the namespace (the `with`).
                if daemon:
                    daemon.stop()
                if ne:
                    ne.stop()
                holders.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    summary(results, args.kind)
    liveness_summary(results)
    print()
    for r in results:
        print("steady CPU at %d: %s" %
              (r["step"], steady_cpu.describe(r["steady"])))
    print("load average at the end: %s; %.0f s in all" %
          (loadlib.loadavg(), time.monotonic() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
