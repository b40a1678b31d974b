#!/usr/bin/env python3
"""tcpstated on a Kubernetes node's worth of network namespaces: the daemon's
idle CPU, open descriptors, RSS and scrape time with N = 0, 100 and 500
extra namespaces, first idle, then each holding a listener, a few
connections and one CLOSE_WAIT leak; every busy namespace's socket counts
are checked against `ss` inside it, and every leak must be reported with
its namespace's name and its owner within the leak threshold plus one
detector cycle.

The daemon runs in a private home namespace (tcpstated-test-nshome-<pid>)
that this script enters, so scrapes stay on its loopback; the N namespaces
are `ip netns` namespaces tcpstated-test-nsNNN-<pid>, which the daemon finds
like any pod's. One helper process ("tcpst-nsleak") makes the sockets of
every busy namespace: it setns()es into each in turn, listens, connects
three times (accepted: 6 ESTABLISHED sockets), and a fourth connection
whose client shuts down its sending side while the server never reads nor
closes: one CLOSE_WAIT (the leak, owned by the helper) and one FIN_WAIT2.

The daemon is restarted at each step so that every figure is taken after
the same start-up; idle CPU is measured over --window seconds once two
detector cycles have passed. Other daemons on the machine perturb the host
namespace, not these ones: the ss comparison is per namespace.

  TCPSTATED_BIN=build/tcpstated tests/load/namespaces.py           # 0,100,500
  TCPSTATED_BIN=build/tcpstated tests/load/namespaces.py --quick   # CI, < 60 s

Root; Python standard library; iproute2 (ip, ss).
"""

import argparse
import os
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loadlib  # noqa: E402
from loadlib import fmt, log, median  # noqa: E402

LEAK_COMM = "tcpst-nsleak"
PORT = 8080
CONNECTIONS = 3  # established pairs per busy namespace, besides the leak

# ss state names -> tcpstated's state label.
SS_STATES = {
    "LISTEN": "listen", "ESTAB": "established", "CLOSE-WAIT": "close_wait",
    "FIN-WAIT-2": "fin_wait2", "FIN-WAIT-1": "fin_wait1",
    "SYN-SENT": "syn_sent", "SYN-RECV": "syn_recv", "TIME-WAIT": "time_wait",
    "LAST-ACK": "last_ack", "CLOSING": "closing",
}

# The helper: one process holding every busy namespace's sockets, so the
# owner of each leak is known. It prints "ready" once all are made, then
# sleeps until killed. argv: port, connections, namespace names...
HELPER = r"""
import ctypes, os, socket, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME: the owner's comm
port, conns = int(sys.argv[2]), int(sys.argv[3])
# Reset on exit, not a graceful close: no TIME_WAIT left for the next step.
LINGER0 = struct.pack("ii", 1, 0)
keep = []
for name in sys.argv[4:]:
    fd = os.open("/run/netns/" + name, os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:
        sys.exit("setns %s: %s" % (name, os.strerror(ctypes.get_errno())))
    os.close(fd)
    lst = socket.socket()
    lst.bind(("127.0.0.1", port))
    lst.listen(64)
    keep.append(lst)
    for i in range(conns + 1):
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        s, _ = lst.accept()
        for x in (c, s):
            x.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        keep += [c, s]
    # The last pair: the client is done sending; the server never closes.
    c.shutdown(socket.SHUT_WR)
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


# Loopback up in each namespace named in argv, in one process (an `ip -n`
# per namespace would cost a fork and exec each).
LO_UP = r"""
import ctypes, fcntl, os, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
for name in sys.argv[1:]:
    fd = os.open("/run/netns/" + name, os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:
        sys.exit("setns %s: %s" % (name, os.strerror(ctypes.get_errno())))
    os.close(fd)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, 0x8913, req))[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", flags | 1))
"""


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", default="0,100,500",
                   help="namespace counts (default 0,100,500)")
    p.add_argument("--window", type=float, default=30,
                   help="seconds of idle CPU measurement per step")
    p.add_argument("--leak-after", type=int, default=15,
                   help="detectors.close_wait_leak_after in seconds")
    p.add_argument("--scrapes", type=int, default=5)
    p.add_argument("--late", type=int, default=2,
                   help="busy namespaces made after the daemon started")
    p.add_argument("--step-timeout", type=float, default=600)
    p.add_argument("--idle-only", action="store_true",
                   help="measure idle namespaces only (no sockets, no checks)")
    p.add_argument("--tcpstated-bin", default=os.environ.get("TCPSTATED_BIN"))
    p.add_argument("--quick", action="store_true",
                   help="CI: 20 namespaces, short windows, < 60 s")
    a = p.parse_args()
    if a.quick:
        a.steps, a.window, a.leak_after, a.scrapes = "20", 5, 5, 3
    a.steps = [int(s) for s in a.steps.split(",")]
    if not a.tcpstated_bin or not os.access(a.tcpstated_bin, os.X_OK):
        p.error("set TCPSTATED_BIN (or --tcpstated-bin) to the daemon")
    return a


def daemon_config(leak_after):
    # One leak series per namespace: max_series_per_metric must exceed the
    # namespace count, or the leaks beyond it fold into an `other` series
    # (and tcpstated_netns_info stops at ten times it). The detector cycle
    # is 5 s (the default, at most the reconcile interval): "one cycle".
    return ("tracking:\n  reconcile_interval: 30s\n"
            "  max_series_per_metric: 1000\n"
            "detectors:\n  close_wait_leak_after: %ds\n" % leak_after)


CYCLE = 5.0  # the daemon's detector interval with the config above


class Namespaces:
    """N `ip netns` namespaces with loopback up, deleted on exit."""

    def __init__(self, tag):
        self.tag = tag
        self.names = []

    def grow(self, n):
        new = ["tcpstated-test-ns%03d-%s" % (i, self.tag)
               for i in range(len(self.names), n)]
        if not new:
            return
        batch = "".join("netns add %s\n" % name for name in new)
        loadlib.run(["ip", "-batch", "-"], input=batch, timeout=300)
        self.names += new
        loadlib.run([sys.executable, "-c", LO_UP] + new, timeout=300)

    def inodes(self):
        return {name: os.stat("/run/netns/" + name).st_ino
                for name in self.names}

    def close(self):
        if self.names:
            batch = "".join("netns del %s\n" % n for n in self.names)
            loadlib.run(["ip", "-force", "-batch", "-"], input=batch,
                        timeout=300, check=False)
        self.names = []


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def measure(args, daemon):
    """Idle CPU (% of a core), fds, RSS, median scrape time and size."""
    time.sleep(CYCLE + 1)  # past the seed and the first cycle
    # utime + stime of the process: unlike the live threads' schedstat, it
    # keeps the time of threads that have exited (the daemon's namespace
    # reads run on a short-lived thread). Resolution: one clock tick.
    t0, c0 = time.monotonic(), loadlib.proc_cpu_ticks(daemon.pid)
    time.sleep(args.window)
    t1, c1 = time.monotonic(), loadlib.proc_cpu_ticks(daemon.pid)
    cpu = 100.0 * (c1 - c0) / loadlib.CLK_TCK / (t1 - t0)
    times, body = [], b""
    for _ in range(args.scrapes):
        t, body = loadlib.timed_get(daemon.port, "/metrics")
        times.append(t)
    return {"cpu": cpu, "fds": fd_count(daemon.pid),
            "rss": loadlib.proc_rss_bytes(daemon.pid),
            "scrape_ms": 1000 * median(times), "lines": body.count(b"\n"),
            "bytes": len(body)}


def ss_counts(name):
    out = loadlib.run(["ss", "-N", name, "-tanH"]).stdout
    counts = {}
    for line in out.splitlines():
        state = SS_STATES.get(line.split()[0])
        if state:
            counts[state] = counts.get(state, 0) + 1
    return counts


def family(samples, name):
    """[(labels dict, value)] of one metric family."""
    return [(dict(labels), v) for (n, labels), v in samples.items()
            if n == name]


def check_counts(samples, inodes):
    """Every namespace's tcpstated_sockets equal `ss` in it. Returns the
    list of mismatches."""
    bad = []
    for name, inode in inodes.items():
        want = ss_counts(name)
        got = {labels["state"]: int(v)
               for labels, v in family(samples, "tcpstated_sockets")
               if labels.get("netns") == str(inode) and v}
        if got != want:
            bad.append("%s: tcpstated %s, ss %s" % (name, got, want))
    return bad


def missing_leaks(samples, inodes):
    """Namespaces whose leak is not reported with their name and owner."""
    names = {labels.get("netns"): labels.get("name")
             for labels, v in family(samples, "tcpstated_netns_info")}
    leaked = {labels.get("netns") for labels, v in
              family(samples, "tcpstated_close_wait_leaked_sockets")
              if v >= 1 and labels.get("comm") == LEAK_COMM
              and labels.get("port") == str(PORT)}
    return [name for name, inode in inodes.items()
            if str(inode) not in leaked or names.get(str(inode)) != name]


def start_helper(names, deadline):
    proc = subprocess.Popen(
        [sys.executable, "-c", HELPER, LEAK_COMM, str(PORT),
         str(CONNECTIONS)] + names, stdout=subprocess.PIPE, text=True)
    line = ""
    while time.monotonic() < deadline and proc.poll() is None:
        line = proc.stdout.readline()
        if line.strip() == "ready":
            return proc
    loadlib.stop_process(proc)
    raise RuntimeError("the socket helper did not get ready (%r)" % line)


def run_step(args, n, nss, rows):
    deadline = time.monotonic() + args.step_timeout
    nss.grow(n)
    daemon = loadlib.Daemon(args.tcpstated_bin,
                            config=daemon_config(args.leak_after)).start()
    helper = late = None
    try:
        idle = measure(args, daemon)
        rows.append(("idle", n, idle))
        print_row("idle", n, idle)
        if n == 0 or args.idle_only:
            return
        # A few namespaces made after the daemon started: only the events
        # can make it look for them before its next discovery.
        late = Namespaces("late%s" % nss.tag)
        late.grow(args.late)
        names = nss.names[:n] + late.names
        inodes = dict(nss.inodes(), **late.inodes())
        inodes = {name: inodes[name] for name in names}
        helper = start_helper(names, deadline)
        made = time.monotonic()  # the last leak was made just before
        # Leaks first: their time is what is checked (+ slack: the poll, the
        # scrape, and the cycle's own run time). At least one scrape.
        limit = args.leak_after + CYCLE + 3
        while True:
            missing = missing_leaks(daemon.metrics(), inodes)
            if not missing or time.monotonic() >= made + limit:
                break
            time.sleep(0.5)
        seen = time.monotonic() - made
        if missing:
            raise AssertionError(
                "%d of %d leaks not reported with name and owner %.1f s after "
                "they were made (threshold %d s + one %g s cycle), e.g. %s" %
                (len(missing), len(names), seen, args.leak_after, CYCLE,
                 missing[:3]))
        # Then the counts, which the events gave long ago; one `ss` per
        # namespace takes a while at 500, so a pass may see a socket that
        # changed meanwhile: a few passes.
        for attempt in range(3):
            bad = check_counts(daemon.metrics(), inodes)
            if not bad:
                break
            time.sleep(CYCLE)
        if bad:
            raise AssertionError("%d namespaces differ from ss, e.g. %s" %
                                 (len(bad), bad[:3]))
        print("  %d namespaces (%d made after the start) equal ss; their %d "
              "leaks reported with name and owner after %.1f s (limit %.0f s)"
              % (len(names), args.late, len(names), seen, limit))
        busy = measure(args, daemon)
        rows.append(("busy", n, busy))
        print_row("busy", n, busy)
    except BaseException:
        log(daemon.log_text()[-3000:])
        raise
    finally:
        loadlib.stop_process(helper)
        daemon.stop()
        if late is not None:
            late.close()


def print_row(kind, n, r):
    print("%-4s N=%-4d CPU %s %% of a core, fds %d, RSS %s MB, scrape %s ms "
          "(%d lines, %d bytes)" %
          (kind, n, fmt(r["cpu"], "%.2f"), r["fds"],
           fmt(r["rss"] / 1e6, "%.1f"), fmt(r["scrape_ms"], "%.1f"),
           r["lines"], r["bytes"]), flush=True)


def main():
    args = parse_args()
    loadlib.prologue("namespaces.py")
    rows = []
    with loadlib.Netns("nshome"):
        nss = Namespaces(str(os.getpid()))
        try:
            for n in args.steps:
                run_step(args, n, nss, rows)
        finally:
            nss.close()
    print("\n| namespaces | kind | CPU % of a core | fds | RSS MB | scrape ms "
          "| lines |")
    print("|---|---|---|---|---|---|---|")
    for kind, n, r in rows:
        print("| %d | %s | %.2f | %d | %.1f | %.1f | %d |" %
              (n, kind, r["cpu"], r["fds"], r["rss"] / 1e6, r["scrape_ms"],
               r["lines"]))


if __name__ == "__main__":
    main()
