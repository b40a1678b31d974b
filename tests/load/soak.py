#!/usr/bin/env python3
"""Soak: tcpstated under a long mixed storm, to show that its memory stays
flat and that it does not crash.

The script enters a private network namespace (tcpstated-test-soak-<pid>,
removed even on failure), starts the daemon there ($TCPSTATED_BIN, the
default configuration except tracking.reconcile_interval: 30s), and for
--minutes (default 20; it stops by itself) drives, every second:

  - a burst of short connections (storm.c, compiled with cc into /tmp):
    half closed gracefully, client first (the client ends in TIME_WAIT),
    half aborted by the client with SO_LINGER 0 (RST), paced at --rate
    connections per second;
  - CLOSE_WAIT leaks that come and go: now and then a batch of accepted
    connections whose clients closed and whose server side is held open
    (CLOSE_WAIT) for a random 15-90 s, then closed (at most --max-leaks
    held at once).

Every --interval seconds (default 10) it samples the daemon: RSS (VmRSS),
CPU seconds (utime + stime), tcpstated_events_total,
tcpstated_events_lost_total, tcpstated_reconcile_corrections_total,
tcpstated_mirror_resyncs_total, tcpstated_evictions_total and
tcpstated_tracked_sockets (all host-wide: other traffic on the machine counts
too), the scrape's latency, and the soak namespace's sockets in the mirror
and per `ss`; it prints one CSV row per sample, and at the end a summary
(RSS first/last/max, lost events, crashes).
Exit status 1 if the daemon died (or did not stop with exit 0 on SIGTERM).

  TCPSTATED_BIN=build/tcpstated tests/load/soak.py               # 20 minutes
  TCPSTATED_BIN=build/tcpstated tests/load/soak.py --minutes 1   # quick

Root; Python standard library; cc. Not run in CI.
"""

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loadlib  # noqa: E402

STORM_PORT = 60000   # storm.c listens on 60000+i
LEAK_PORT = 61000    # the CLOSE_WAIT leaks' listener
SYSCTLS = {
    "net.ipv4.ip_local_port_range": "1024 59999",
    "net.ipv4.ip_local_reserved_ports": "60000-61999",
}
CONFIG = "tracking:\n  reconcile_interval: 30s\n"
LEAK_BATCH_PROBABILITY = 0.3  # per second
LEAK_LIFETIME = (15.0, 90.0)  # seconds a batch is held
LEAK_BATCH = (1, 25)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=20,
                   help="how long to run (default 20, at most 1440)")
    p.add_argument("--interval", type=float, default=10,
                   help="seconds between samples (default 10)")
    p.add_argument("--rate", type=int, default=1000,
                   help="storm connections per second (default 1000)")
    p.add_argument("--workers", type=int, default=2,
                   help="storm.c worker threads (default 2)")
    p.add_argument("--max-leaks", type=int, default=200,
                   help="CLOSE_WAIT sockets held at most at once "
                   "(default 200)")
    p.add_argument("--seed", type=int, default=1,
                   help="random seed of the leak schedule (default 1)")
    p.add_argument("--tcpstated-bin", default=os.environ.get("TCPSTATED_BIN"))
    a = p.parse_args()
    if not 0 < a.minutes <= 1440:
        p.error("--minutes must be in (0, 1440]")
    if not 1 <= a.interval <= 600:
        p.error("--interval must be in [1, 600]")
    if not 1 <= a.rate <= 100000 or not 1 <= a.workers <= 64:
        p.error("--rate must be in [1, 100000], --workers in [1, 64]")
    if not 0 <= a.max_leaks <= 5000:
        p.error("--max-leaks must be in [0, 5000]")
    if not a.tcpstated_bin:
        p.error("set TCPSTATED_BIN or --tcpstated-bin")
    return a


class Leaks:
    """Batches of server-side CLOSE_WAIT sockets, each held until its
    deadline. Everything runs in the calling thread (inside the
    namespace); every blocking call has a timeout."""

    def __init__(self, rng, max_leaks):
        self.rng = rng
        self.max_leaks = max_leaks
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", LEAK_PORT))
        self.listener.listen(1024)
        self.listener.settimeout(5)
        self.batches = []  # (deadline, [server sockets])
        self.created = 0
        self.closed = 0

    def held(self):
        return sum(len(b) for _, b in self.batches)

    def tick(self, now):
        keep = []
        for deadline, socks in self.batches:
            if deadline <= now:
                for s in socks:
                    s.close()
                self.closed += len(socks)
            else:
                keep.append((deadline, socks))
        self.batches = keep
        if self.rng.random() >= LEAK_BATCH_PROBABILITY:
            return
        n = min(self.rng.randint(*LEAK_BATCH), self.max_leaks - self.held())
        socks = []
        for _ in range(max(0, n)):
            c = socket.create_connection(("127.0.0.1", LEAK_PORT), timeout=5)
            s, _ = self.listener.accept()
            s.settimeout(5)
            c.close()
            if s.recv(1) != b"":  # the client's FIN: s is in CLOSE_WAIT
                raise RuntimeError("unexpected data on a leak socket")
            socks.append(s)
        if socks:
            self.created += len(socks)
            self.batches.append(
                (now + self.rng.uniform(*LEAK_LIFETIME), socks))

    def close(self):
        for _, socks in self.batches:
            for s in socks:
                s.close()
        self.batches = []
        self.listener.close()


def storm_burst(binary, args):
    """One second of storm.c at --rate; returns (connections, errors)."""
    r = subprocess.run(
        [binary, "storm", "--connections", str(args.rate),
         "--workers", str(args.workers), "--seconds", "1",
         "--port", str(STORM_PORT), "--rst-percent", "50"],
        capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("storm failed: " + r.stderr.strip())
    fields = dict(f.split("=", 1) for f in r.stdout.split() if "=" in f)
    return int(fields.get("connections", 0)), int(fields.get("errors", 0))


def ss_sockets():
    """TCP sockets in the current namespace (the soak's), per ss."""
    out = loadlib.run(["ss", "-tanH"], timeout=30).stdout
    return sum(1 for line in out.splitlines() if line.strip())


def sample(daemon, t0, netns):
    pid = daemon.pid
    row = {"t": time.monotonic() - t0,
           "rss_kib": loadlib.proc_rss_bytes(pid) // 1024,
           "cpu_s": loadlib.proc_cpu_ticks(pid) / loadlib.CLK_TCK}
    t_scrape = time.monotonic()
    m = loadlib.parse_metrics(
        loadlib.http_get(daemon.port, "/metrics", timeout=30).decode())
    row["scrape_ms"] = (time.monotonic() - t_scrape) * 1000
    row["events"] = loadlib.metric_sum(m, "tcpstated_events_total")
    row["lost"] = loadlib.metric_sum(m, "tcpstated_events_lost_total")
    row["corrections"] = loadlib.metric_sum(
        m, "tcpstated_reconcile_corrections_total")
    row["resyncs"] = loadlib.metric_sum(m, "tcpstated_mirror_resyncs_total")
    row["tracked"] = loadlib.metric_sum(m, "tcpstated_tracked_sockets")
    row["evictions"] = loadlib.metric_sum(m, "tcpstated_evictions_total")
    # The soak namespace alone: the mirror against ss (they may differ by
    # what was lost since the last reconcile).
    row["ns_mirror"] = sum(
        v for (name, labels), v in m.items()
        if name == "tcpstated_sockets" and ("netns", str(netns)) in labels)
    row["ns_ss"] = ss_sockets()
    return row


def take_sample(daemon, t0, rows, conns, leaks, netns):
    """Appends and prints one row; False if the scrape failed."""
    try:
        row = sample(daemon, t0, netns)
    except (OSError, urllib.error.URLError, ValueError,
            subprocess.SubprocessError) as e:
        print("# sample at %.0f s failed: %r" % (time.monotonic() - t0, e),
              flush=True)
        return False
    row["conns"] = conns
    row["close_wait_held"] = leaks.held()
    rows.append(row)
    print_row(row)
    return True


COLUMNS = ("t", "rss_kib", "cpu_s", "events", "lost", "corrections",
           "resyncs", "tracked", "evictions", "scrape_ms", "conns",
           "close_wait_held", "ns_mirror", "ns_ss")


def print_row(row):
    fmt = {"t": "%.0f", "cpu_s": "%.2f", "scrape_ms": "%.1f"}
    print(",".join(fmt.get(c, "%d") % row[c] for c in COLUMNS), flush=True)


def summary(rows, conns, errors, leaks, alive, exit_code, seconds):
    print()
    print("summary")
    print("  duration: %.0f s, %d samples, %d connections (%d errors), "
          "%d CLOSE_WAIT leaks created and %d closed" %
          (seconds, len(rows), conns, errors,
           leaks.created if leaks else 0, leaks.closed if leaks else 0))
    if rows:
        rss = [r["rss_kib"] for r in rows]
        print("  RSS (MiB): first %.1f, last %.1f, max %.1f" %
              (rss[0] / 1024, rss[-1] / 1024, max(rss) / 1024))
        half = rows[len(rows) // 2:]
        print("  RSS second half (MiB): min %.1f, max %.1f" %
              (min(r["rss_kib"] for r in half) / 1024,
               max(r["rss_kib"] for r in half) / 1024))
        last = rows[-1]
        span = max(last["t"] - rows[0]["t"], 1e-9)
        print("  CPU: %.1f s in all, %.1f %% of one core between the first "
              "and the last sample" %
              (last["cpu_s"],
               100 * (last["cpu_s"] - rows[0]["cpu_s"]) / span))
        print("  events: %d received, %d lost (%.3f %%); reconcile "
              "corrections %d; resyncs %d; evictions %d" %
              (last["events"], last["lost"],
               100 * last["lost"] / max(last["events"] + last["lost"], 1),
               last["corrections"], last["resyncs"], last["evictions"]))
        print("  slowest scrape: %.1f ms" % max(r["scrape_ms"] for r in rows))
    print("  crashes: %d (daemon %s; exit status on SIGTERM: %s)" %
          (0 if alive else 1, "alive until the end" if alive else "DIED",
           exit_code))


def main():
    args = parse_args()
    binary = loadlib.prologue("soak.py")
    print("soak: %.1f min, storm %d conn/s (half RST), leaks up to %d held, "
          "a sample every %.0f s" %
          (args.minutes, args.rate, args.max_leaks, args.interval),
          flush=True)
    rng = random.Random(args.seed)
    workdir = tempfile.mkdtemp(prefix="tcpstated-soak-")
    rows, conns, errors = [], 0, 0
    alive, exit_code, daemon, leaks = True, None, None, None
    t0 = time.monotonic()
    end = t0 + args.minutes * 60
    try:
        with loadlib.Netns("soak", SYSCTLS) as ns:
            print("namespace %s (inode %d)" % (ns.name, ns.inode))
            daemon = loadlib.Daemon(args.tcpstated_bin, config=CONFIG,
                                    workdir=workdir).start()
            print("tcpstated pid %d on 127.0.0.1:%d (in the namespace), "
                  "log %s" % (daemon.pid, daemon.port, daemon.log_path))
            print(",".join(COLUMNS), flush=True)
            leaks = Leaks(rng, args.max_leaks)
            next_sample = time.monotonic()
            # Bounded: ticks are paced to one per second, and counted.
            for _ in range(int(args.minutes * 60) + 10):
                now = time.monotonic()
                if now >= end:
                    break
                if daemon.proc.poll() is not None:
                    alive = False
                    break
                if now >= next_sample:
                    if not take_sample(daemon, t0, rows, conns, leaks,
                                       ns.inode):
                        if daemon.proc.poll() is not None:
                            alive = False
                            break
                    next_sample += args.interval
                leaks.tick(now)
                c, e = storm_burst(binary, args)
                conns += c
                errors += e
                time.sleep(max(0.0, min(now + 1.0, end) -
                               time.monotonic()))
            if daemon.proc.poll() is not None:
                alive = False
            else:
                take_sample(daemon, t0, rows, conns, leaks, ns.inode)
            if not alive:
                print("tcpstated DIED with status %s; log tail:\n%s" %
                      (daemon.proc.returncode, daemon.log_text()[-3000:]))
                exit_code = daemon.proc.returncode
            else:
                proc = daemon.proc
                daemon.stop()
                exit_code = proc.returncode
    finally:
        if leaks is not None:
            leaks.close()
        if daemon is not None and daemon.proc is not None:
            daemon.stop()
    summary(rows, conns, errors, leaks, alive, exit_code,
            time.monotonic() - t0)
    if alive and exit_code == 0:
        shutil.rmtree(workdir, ignore_errors=True)
        return 0
    print("daemon log kept in %s" % workdir)
    return 1


if __name__ == "__main__":
    sys.exit(main())
