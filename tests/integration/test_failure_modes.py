"""Failure modes of the real daemon, driven against the real kernel:

  Overload         a 4 KiB ring buffer under a connection storm: events are
                   lost and counted exactly, transitions stay exact (they are
                   counted in the kernel), /metrics stays responsive, and the
                   mirror returns to `ss` truth at the next reconcile.
  KillRestart      kill -9 during a storm, then a new daemon: the mirror is
                   seeded back and the CLOSE_WAIT leak is reported again.
  Sigterm          SIGTERM during a storm: exit 0 within 2 s, every BPF
                   program detached.
  Sighup           a valid configuration is applied (a new leak threshold
                   takes effect), an invalid one is refused with a log line
                   and the old one keeps running.
  BoundedResources more sockets than tracking.max_tracked_sockets (evictions,
                   a bounded table), and a "port scan" of CLOSE_WAIT leaks on
                   300 listening ports (bounded label sets).
  ForeignBpf       bpftrace tracing TCP alongside: program runs the kernel
                   skips are counted as the kernel counts them, and the
                   mirror returns to `ss` truth at the next reconcile.

Storms run inside private namespaces (tcpstated-test-*, removed even on
failure), as several workload.py processes doing connect / accept / close
cycles, bounded in count (MAX_STORM_CONNECTIONS in all) and in time. Every
wait polls with a deadline. TCPSTATED_ATTACH selects the attach mode.

Transition counters are host-wide: another test, a Prometheus server or
any other process on the machine adds its own transitions. The exact checks
on them therefore compare with the kernel's own count of the same
transitions in every network namespace of the host (RFC 1213's TCP MIB in
/proc/<pid>/net/snmp: EstabResets counts ESTABLISHED/CLOSE_WAIT -> CLOSE in
tcp_set_state, exactly; ActiveOpens every connect() that sent its SYN, a
lower bound of CLOSE -> SYN_SENT), read just
before and just after each scrape. On a host where nothing else makes TCP
transitions during those reads the two bounds meet and the check is exact;
otherwise it is held to the bounds. Only a namespace destroyed during the
measurement (its counters are gone with it) makes exactness uncheckable.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error

from harness import (Daemon, Netns, Workload, parse_metrics, Metrics, run,
                     rss_bytes)

DEADLINE = 20.0
STORM_WORKERS = 4
MAX_STORM_CONNECTIONS = 20000     # all workers together, per storm
STORM_SECONDS = 5.0               # each worker stops after this
SCRAPE_LIMIT = 2.0                # /metrics must answer within this
# Transitions of one scrape's own connection (both ends, handshake and
# close) that can straddle the counter reads of that scrape.
SCRAPE_TRANSITIONS = 10
OUR_PROGRAMS = ("btf_set_state", "tp_set_state")

CLOSE_WAIT_FAMILIES = ("tcpstated_close_wait_sockets",
                       "tcpstated_close_wait_leaked_sockets",
                       "tcpstated_close_wait_oldest_seconds")


def poll(fetch, done, timeout=DEADLINE, interval=0.25):
    """Calls fetch() until done(value) or the deadline; returns the last
    value either way (the caller asserts on it)."""
    deadline = time.monotonic() + timeout
    value = None
    for _ in range(int(timeout / interval) + 2):
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(interval)
    return value


def log_tail(daemon, n=40):
    return "\n--- daemon log (tail) ---\n" + "\n".join(
        daemon.log_text().splitlines()[-n:])


def log_lines(daemon, needle):
    return [l for l in daemon.log_text().splitlines() if needle in l]


def other_daemons(own):
    """PIDs of tcpstated processes that are not ours (another test or a
    developer's daemon sharing the machine)."""
    r = run(["pgrep", "-x", "tcpstated"], check=False)
    return sorted(int(p) for p in r.stdout.split()
                  if int(p) not in set(own))


# Processes that make TCP connections on this host's kernel (in any
# namespace) on behalf of another test or load run.
FOREIGN_PATTERNS = ("tcpstated-storm", "storm.py", "scale.py", "soak.py",
                    "workload.py", "bpftrace", "tcpstates", "unittest",
                    "ctest", "prometheus")


def _ancestors():
    pids, pid = set(), os.getpid()
    for _ in range(64):
        pids.add(pid)
        try:
            with open("/proc/%d/stat" % pid) as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        if pid <= 1:
            break
    return pids


def foreign_activity(own):
    """"pid cmdline" of running processes, not this test's (nor its
    ancestors' or direct children's), that are another tcpstated or
    another test or load generator: their connections move the host-wide
    transition counters too."""
    me, skip = os.getpid(), _ancestors() | set(own)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in skip:
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(
                    errors="replace").strip()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == me or not cmdline:
            continue
        if comm == "tcpstated" or any(p in cmdline for p in FOREIGN_PATTERNS):
            found.append("%s %s" % (entry, cmdline[:100]))
    return found


class ForeignMonitor:
    """Samples foreign_activity() every 0.5 s in a thread (bounded by
    max_seconds) while a host-wide measurement runs."""

    def __init__(self, own, max_seconds=120):
        self.own = own
        self.max_seconds = max_seconds
        self.seen = set()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.seen.update(foreign_activity(self.own))
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _run(self):
        for _ in range(int(self.max_seconds / 0.5)):
            if self.stop_event.wait(0.5):
                return
            self.seen.update(foreign_activity(self.own))

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=5)
        self.seen.update(foreign_activity(self.own))
        return sorted(self.seen)


def _tcp_mib(text):
    """{"ActiveOpens": n, "EstabResets": n, ...} from /proc/net/snmp."""
    rows = [line.split()[1:] for line in text.splitlines()
            if line.startswith("Tcp:")]
    return {name: int(value) for name, value in zip(rows[0], rows[1])}


def tcp_mib_by_namespace():
    """{netns inode: TCP MIB} for every network namespace of the host: the
    /proc/<pid>/net/snmp of one process in each, and `ip netns exec` for a
    named namespace with no process in it."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            inode = os.stat("/proc/%s/ns/net" % entry).st_ino
            if inode not in found:
                with open("/proc/%s/net/snmp" % entry) as f:
                    found[inode] = _tcp_mib(f.read())
        except (OSError, IndexError, ValueError):
            continue  # the process exited meanwhile
    names = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    for name in names[:200]:
        try:
            inode = os.stat("/run/netns/" + name).st_ino
        except OSError:
            continue
        if inode in found:
            continue
        r = run(["ip", "netns", "exec", name, "cat", "/proc/net/snmp"],
                check=False)
        if r.returncode == 0:
            found[inode] = _tcp_mib(r.stdout)
    return found


class MibScrape:
    """One scrape of the daemon between two readings of every namespace's
    TCP MIB: the kernel's counts at the moment of the scrape lie between
    `low` and `high`."""

    def __init__(self, scraper):
        self.low = tcp_mib_by_namespace()
        self.metrics = scraper.metrics()
        self.high = tcp_mib_by_namespace()


def mib_delta_bounds(first, second, counter):
    """Bounds on the host-wide change of a TCP MIB counter between two
    MibScrapes, and the namespaces that disappeared in between (their part
    is unknown). A namespace created in between started from zero."""
    gone = sorted(set(first.low) - set(second.high))
    low = sum(mib[counter] - first.high.get(ns, {}).get(counter, 0)
              for ns, mib in second.low.items())
    high = sum(mib[counter] - first.low.get(ns, {}).get(counter, 0)
               for ns, mib in second.high.items())
    return low, high, gone


def prog_ids_of(pid):
    """IDs of the BPF programs a process holds, from its descriptors (prog
    and link fds both show prog_id in fdinfo)."""
    ids = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
            if not target.startswith("anon_inode:bpf"):
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            continue
    return ids


def recursion_misses(ids):
    """{source: runs the kernel skipped} over tcpstated's programs `ids`,
    as bpftool reports them (bpf_prog_info.recursion_misses)."""
    r = run(["bpftool", "-j", "prog", "show"], check=False, timeout=30)
    if r.returncode != 0:
        raise AssertionError("bpftool prog show failed: " + r.stderr)
    # Names are cut to 15 characters; tp_destroy_sock sends no events.
    sources = (("set_state", "inet_sock_set_state"),
               ("receive_reset", "tcp_receive_reset"),
               ("send_reset", "tcp_send_reset"),
               ("retransmit", "tcp_retransmit_synack"),
               ("syn_retrans", "tcp_retransmit_skb"))
    misses = {source: 0 for _, source in sources}
    for p in json.loads(r.stdout or "[]"):
        if p["id"] not in ids:
            continue
        for part, source in sources:
            if part in p.get("name", ""):
                misses[source] += p.get("recursion_misses", 0)
    return misses


def bpf_programs():
    """[(id, name)] of every BPF program loaded on the host."""
    r = run(["bpftool", "-j", "prog", "show"], check=False, timeout=30)
    if r.returncode != 0:
        raise AssertionError("bpftool prog show failed: " + r.stderr)
    return [(p["id"], p.get("name", "")) for p in json.loads(r.stdout or "[]")]


class Scraper:
    """Scrapes one daemon and counts every HTTP request it makes (each is
    one TCP connection on the host's loopback: one CLOSE -> SYN_SENT)."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.lock = threading.Lock()
        self.requests = 0

    def get(self, path="/metrics", timeout=10):
        with self.lock:
            self.requests += 1
        return self.daemon.get(path, timeout=timeout)

    def metrics(self):
        return Metrics(parse_metrics(self.get()))


class Storm:
    """STORM_WORKERS workload.py processes in one namespace, each with its
    own listener, running cmd_storm in parallel threads."""

    def __init__(self, ns, connections=MAX_STORM_CONNECTIONS,
                 seconds=STORM_SECONDS, rst_percent=50):
        self.ns = ns
        self.per_worker = connections // STORM_WORKERS
        self.seconds = seconds
        self.rst_percent = rst_percent
        self.workloads = []
        self.threads = []
        self.replies = []
        self.failures = []

    def __enter__(self):
        try:
            for i in range(STORM_WORKERS):
                w = Workload(self.ns)
                self.workloads.append(w)
                w.do("listen", "l", "4", 0, 4096)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        for w in self.workloads:
            t = threading.Thread(target=self._run, args=(w,), daemon=True)
            self.threads.append(t)
            t.start()
        return self

    def _run(self, w):
        try:
            reply = w.do("storm", "l", self.per_worker, self.seconds,
                         self.rst_percent, timeout=self.seconds + 30)
            self.replies.append([float(x) for x in reply.split()[1:]])
        except Exception as e:  # reported by join()
            self.failures.append(repr(e))

    def join(self):
        """Waits for every worker (bounded by the storm's own time limit);
        returns {connects, rst, graceful, errors, seconds}."""
        for t in self.threads:
            t.join(timeout=self.seconds + 40)
        alive = [t for t in self.threads if t.is_alive()]
        if alive or self.failures:
            raise AssertionError("storm workers failed: %r, %d still running"
                                 % (self.failures, len(alive)))
        keys = ("connects", "rst", "graceful", "errors")
        out = {k: int(sum(r[i] for r in self.replies))
               for i, k in enumerate(keys)}
        out["seconds"] = max(r[4] for r in self.replies)
        return out

    def close(self):
        for w in self.workloads:
            w.close()
        self.workloads = []


def write_config(daemon, text):
    """Atomically replaces the daemon's configuration file (the attach mode
    line kept), so a SIGHUP never reads half a file."""
    tmp = daemon.config + ".tmp"
    with open(tmp, "w") as f:
        f.write("bpf:\n  attach: %s\n" % daemon.attach)
        f.write(text)
    os.rename(tmp, daemon.config)


def make_server_leak(w, listener, port, n):
    """n accepted connections whose clients closed; the server never closes
    them: n server sockets in CLOSE_WAIT."""
    reply = w.do("connectmany", "c", "4", port, n).split()
    assert reply[1:] == [str(n)], reply
    w.do("acceptmany", "s", listener, n)
    w.do("closemany", "c", n)
    for i in range(n):
        w.do("waiteof", "s%d" % i)


class Base(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("real-kernel tests need root")

    def assert_kernel_count(self, name, got, first, second, counter,
                            slack=0, ctx="", upper=True):
        """Asserts that `got`, a host-wide transition delta from the daemon
        between MibScrapes `first` and `second`, is the kernel's own count
        of those transitions in every namespace: exactly when nothing else
        ran during the scrapes, within the bounds when something did.
        `slack` is what the daemon may miss by design (runs the kernel
        skipped while another BPF program ran); upper=False for a counter
        the kernel may leave behind the transitions (a lower bound)."""
        low, high, gone = mib_delta_bounds(first, second, counter)
        detail = "%s: daemon %d, kernel %s %d..%d%s" % (
            name, got, counter, low, high, ctx)
        with self.subTest(name):
            if gone:
                # Their counters left with them: only a lower bound holds.
                self.assertGreaterEqual(got + slack, low, detail)
                self.skipTest("%s; namespaces %r were destroyed during the "
                              "measurement, exactness not checkable" %
                              (detail, gone))
            self.assertGreaterEqual(got + slack, low, detail)
            if upper:
                self.assertLessEqual(got, high, detail)
        return low, high

class Overload(Base):
    """A 4 KiB ring buffer (34 events) under a storm of ~thousands of
    connections per second."""

    def test_tiny_ring_buffer_under_a_storm(self):
        config = ("  ring_buffer_bytes: 4096\n"
                  "tracking:\n"
                  "  reconcile_interval: 2s\n"
                  "  full_reconcile_interval: 2s\n")
        with Daemon(extra_config=config) as d, Netns("overload") as ns, \
                Storm(ns) as storm:
            s = Scraper(d)
            monitor = ForeignMonitor([d.proc.pid]).__enter__()
            self.addCleanup(monitor.stop)
            first = MibScrape(s)
            before = first.metrics

            # (c) responsiveness: scrape in a loop while the storm runs.
            latencies, errors = [], []
            stop = threading.Event()

            def scrape_loop():
                for _ in range(int((STORM_SECONDS + 40) / 0.1)):
                    if stop.is_set():
                        return
                    t0 = time.monotonic()
                    try:
                        s.get(timeout=10)
                        latencies.append(time.monotonic() - t0)
                    except (OSError, urllib.error.URLError) as e:
                        errors.append("%.2f s: %r" %
                                      (time.monotonic() - t0, e))
                    stop.wait(0.1)

            scraper = threading.Thread(target=scrape_loop, daemon=True)
            scraper.start()
            try:
                storm.start()
                result = storm.join()
            finally:
                stop.set()
                scraper.join(timeout=15)
            storm.close()  # listeners closed: only TIME_WAITs are left

            ctx = "\nstorm: %r%s" % (result, log_tail(d))
            self.assertEqual(result["errors"], 0, "storm errors" + ctx)
            self.assertGreater(result["connects"], 1000,
                               "storm too small to overload" + ctx)

            with self.subTest("(c) /metrics responsive during the storm"):
                self.assertEqual(errors, [], "scrapes failed" + ctx)
                self.assertGreater(len(latencies), 0)
                self.assertLess(max(latencies), SCRAPE_LIMIT,
                                "slowest scrape %.3f s of %d" %
                                (max(latencies), len(latencies)) + ctx)

            src = {"source": "inet_sock_set_state"}
            t0 = before.transitions()
            e0 = before.get("tcpstated_events_total", **src)
            l0 = before.get("tcpstated_events_lost_total", **src)

            # (a) Once the consumer has drained the ring, every transition
            # the kernel counted is either an event received or one lost.
            def balance():
                m = s.metrics()
                dt = sum(v - t0.get(k, 0) for k, v in m.transitions().items())
                de = m.get("tcpstated_events_total", **src) - e0
                dl = m.get("tcpstated_events_lost_total", **src) - l0
                return {"m": m, "transitions": dt, "events": de, "lost": dl}

            # The scrape that reads the counters is itself a connection: its
            # own handshake is counted in the kernel before the consumer (which
            # polls every 50 ms when not woken) has applied or lost its events.
            # Those few are the only slack.
            def balanced(b):
                return (abs(b["transitions"] - b["events"] - b["lost"]) <=
                        SCRAPE_TRANSITIONS)

            b = poll(balance, balanced, timeout=15)
            foreign = monitor.stop()
            after = b["m"]
            summary = {k: b[k] for k in ("transitions", "events", "lost")}
            ctx = "\nstorm: %r\nbalance: %r%s" % (result, summary, log_tail(d))
            print("\noverload (%s): %d connections in %.1f s, %r" %
                  (d.attach, result["connects"], result["seconds"], summary))
            with self.subTest("(a) events lost"):
                self.assertGreater(b["lost"], 0, "no event lost" + ctx)
            with self.subTest("(a) transitions == events + lost"):
                if not balanced(b) and foreign:
                    # Under someone else's continuous storm the ring never
                    # drains between the two counter reads of a scrape.
                    self.skipTest(
                        "never balanced in 15 s (%r) while other tests or "
                        "load generators ran (%s)" %
                        (summary, "; ".join(foreign)))
                self.assertLessEqual(
                    abs(b["transitions"] - b["events"] - b["lost"]),
                    SCRAPE_TRANSITIONS,
                    "transitions != events + lost (beyond the scrape's own "
                    "connection)" + ctx)

            # (b) transitions are exact: the daemon's host-wide counters
            # against the kernel's MIB in every namespace, and the storm's
            # namespace against what the storm did (RST closes are its only
            # ESTABLISHED -> CLOSE, two per connection: the client's abort
            # and the server's reset).
            last = MibScrape(s)
            t1 = last.metrics.transitions()
            delta = {k: t1.get(k, 0) - t0.get(k, 0) for k in t1}
            missed = (last.metrics.total("tcpstated_events_missed_total") -
                      before.total("tcpstated_events_missed_total"))
            resets = (delta.get(("established", "close"), 0) +
                      delta.get(("close_wait", "close"), 0))
            low, high = self.assert_kernel_count(
                "(b) established|close_wait->close == EstabResets", resets,
                first, last, "EstabResets", missed, ctx)
            # ActiveOpens counts the connects that sent their SYN: one that
            # fails after SYN_SENT (no free port, no memory) is a transition
            # without it, so it bounds close->syn_sent from below only.
            opens = delta.get(("close", "syn_sent"), 0)
            self.assert_kernel_count(
                "(b) close->syn_sent >= ActiveOpens", opens, first, last,
                "ActiveOpens", missed, ctx, upper=False)
            print("overload (%s): established|close_wait->close %d, kernel "
                  "EstabResets %d..%d; close->syn_sent %d" %
                  (d.attach, resets, low, high, opens))
            storm_ns = ns.inode
            with self.subTest("(b) the storm's namespace"):
                mib = last.high[storm_ns]
                start = first.low[storm_ns]
                self.assertEqual(mib["EstabResets"] - start["EstabResets"],
                                 2 * result["rst"], ctx)
                self.assertEqual(mib["ActiveOpens"] - start["ActiveOpens"],
                                 result["connects"], ctx)

            # (d) the mirror returns to ss truth at the next reconcile(s).
            c0 = before.total("tcpstated_reconcile_corrections_total")
            r0 = before.get("tcpstated_mirror_resyncs_total")

            def view():
                truth = ns.ss_counts()
                m = s.metrics()
                return {"ss": truth, "mirror": m.sockets(ns.inode),
                        "ss_after": ns.ss_counts(),
                        "corrections": m.total(
                            "tcpstated_reconcile_corrections_total") - c0,
                        "resyncs": m.get("tcpstated_mirror_resyncs_total") -
                        r0}

            # 15 s is several 2 s reconciles; on a host crowded by other
            # tests a full dump can take seconds itself: allow a few.
            dump = s.metrics().get("tcpstated_reconcile_dump_seconds")
            timeout = min(60.0, 15.0 + 4 * dump)
            t_view = time.monotonic()
            v = poll(view, lambda v: v["ss"] == v["mirror"] == v["ss_after"],
                     timeout=timeout, interval=0.5)
            ctx = ("\nview after %.1f s (last dump took %.2f s): %r\n"
                   "storm: %r%s" % (time.monotonic() - t_view, dump, v,
                                    result, log_tail(d)))
            print("overload (%s): %d scrapes during the storm, slowest "
                  "%.3f s; mirror == ss after %.1f s: %s; corrections +%d, "
                  "resyncs +%d" %
                  (d.attach, len(latencies), max(latencies or [0]),
                   time.monotonic() - t_view, v["mirror"] == v["ss"],
                   v["corrections"], v["resyncs"]))
            with self.subTest("(d) mirror == ss after reconcile"):
                self.assertEqual(v["mirror"], v["ss"],
                                 "tcpstated_sockets != ss" + ctx)
                self.assertGreater(v["corrections"] + v["resyncs"], 0,
                                   "nothing corrected after lost events" +
                                   ctx)
            self.assertIsNone(d.proc.poll(), "daemon died" + ctx)
            self.assertEqual(d.get("/healthz").strip(), "ok")


class KillRestart(Base):
    """kill -9 during a storm, then a new daemon: the leak is seeded back
    and reported again with its role and port."""

    def test_sigkill_during_storm_then_restart(self):
        n, port = 10, 7210
        config = ("tracking:\n  reconcile_interval: 1s\n"
                  "  full_reconcile_interval: 1s\n"
                  "detectors:\n  close_wait_leak_after: 2s\n")
        with Netns("kill-leak") as leak_ns, Workload(leak_ns) as w, \
                Netns("kill-storm") as storm_ns, Storm(storm_ns) as storm:
            w.do("listen", "l", "4", port)
            make_server_leak(w, "l", port, n)
            first = Daemon(extra_config=config).__enter__()
            try:
                storm.start()
                time.sleep(1.5)
                self.assertIsNone(first.proc.poll(), log_tail(first))
                first.proc.send_signal(signal.SIGKILL)
                self.assertEqual(first.proc.wait(timeout=10), -signal.SIGKILL)
            finally:
                first.stop()
            with Daemon(extra_config=config) as second:
                s = Scraper(second)

                def view():
                    truth = leak_ns.ss_counts()
                    m = s.metrics()
                    return {
                        "ss": truth, "mirror": m.sockets(leak_ns.inode),
                        "series": m.family(CLOSE_WAIT_FAMILIES[0],
                                         leak_ns.inode),
                        "leaked": m.total(CLOSE_WAIT_FAMILIES[1],
                                        leak_ns.inode)}

                def good(v):
                    return (v["ss"] == v["mirror"] and
                            [(l["role"], l["port"], x)
                             for l, x in v["series"]] ==
                            [("server", str(port), n)] and v["leaked"] == n)

                t0 = time.monotonic()
                v = poll(view, good, timeout=10)
                took = time.monotonic() - t0
                result = storm.join()
                print("\nrestart (%s): leak reported again %.1f s after the "
                      "new daemon answered" % (second.attach, took))
                ctx = "\nview: %r\nstorm: %r%s" % (v, result,
                                                   log_tail(second))
                self.assertEqual(v["ss"]["close_wait"], n, ctx)
                self.assertEqual(v["mirror"], v["ss"],
                                 "tcpstated_sockets != ss" + ctx)
                self.assertEqual([(l["role"], l["port"], x)
                                  for l, x in v["series"]],
                                 [("server", str(port), n)],
                                 "close_wait_sockets" + ctx)
                self.assertEqual(v["leaked"], n, "leaked" + ctx)
                self.assertLess(took, 10, ctx)


class Sigterm(Base):
    def test_sigterm_during_storm(self):
        if shutil.which("bpftool") is None:
            self.skipTest("bpftool is not installed")
        with Netns("term") as ns, Storm(ns) as storm:
            d = Daemon().__enter__()
            try:
                ids = prog_ids_of(d.proc.pid)
                self.assertTrue(ids, "the daemon holds no BPF program")
                storm.start()
                time.sleep(1.0)
                t0 = time.monotonic()
                d.proc.send_signal(signal.SIGTERM)
                try:
                    code = d.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    code = None
                took = time.monotonic() - t0
                log = d.log_text()
            finally:
                d.stop()
            storm.join()
            ctx = "\n--- daemon log (tail) ---\n" + "\n".join(
                log.splitlines()[-20:])
            print("\nsigterm (%s): exit %s after %.2f s" %
                  (d.attach, code, took))
            self.assertEqual(code, 0, "exit status" + ctx)
            self.assertLess(took, 2.0, "SIGTERM took %.2f s" % took + ctx)

            # Its programs are gone (ids are never reused soon, so this
            # holds even with other daemons running).
            left = poll(lambda: [p for p in bpf_programs() if p[0] in ids],
                        lambda l: not l, timeout=3, interval=0.1)
            self.assertEqual(left, [], "programs still loaded" + ctx)
            with self.subTest("no program named like ours on the host"):
                others = other_daemons([])
                if others:
                    self.skipTest("other tcpstated processes %r are "
                                  "running: their programs are loaded"
                                  % others)
                named = [p for p in bpf_programs()
                         if p[1] in OUR_PROGRAMS]
                self.assertEqual(named, [], ctx)


class Sighup(Base):
    def test_reload_valid_and_refuse_invalid(self):
        n, port = 5, 7220
        base = ("tracking:\n  reconcile_interval: 1s\n"
                "  full_reconcile_interval: 1s\n")
        slow = base + "detectors:\n  close_wait_leak_after: 60s\n"
        fast = base + "detectors:\n  close_wait_leak_after: 1s\n"
        # Invalid (an unknown key), and it would also undo the 1 s
        # threshold were any part of it applied.
        bad = slow + "  no_such_key: 1\n"
        with Daemon(extra_config=slow) as d, Netns("hup") as ns, \
                Workload(ns) as w:
            s = Scraper(d)
            w.do("listen", "l", "4", port)
            make_server_leak(w, "l", port, n)
            leak_at = time.monotonic()

            def view():
                m = s.metrics()
                return {"count": m.total(CLOSE_WAIT_FAMILIES[0], ns.inode),
                        "leaked": m.total(CLOSE_WAIT_FAMILIES[1], ns.inode)}

            v = poll(view, lambda v: v["count"] == n)
            self.assertEqual(v["count"], n, log_tail(d))
            time.sleep(max(0.0, leak_at + 3.0 - time.monotonic()))
            v = view()
            self.assertEqual(v["leaked"], 0,
                             "leaked under a 60 s threshold" + log_tail(d))

            # A valid configuration: applied.
            write_config(d, fast)
            d.proc.send_signal(signal.SIGHUP)
            v = poll(view, lambda v: v["leaked"] == n, timeout=10)
            self.assertEqual(v["leaked"], n,
                             "the 1 s threshold was not applied" + log_tail(d))
            reloaded = poll(lambda: log_lines(
                d, "SIGHUP: configuration reloaded"), bool, timeout=5)
            self.assertEqual(len(reloaded), 1, log_tail(d))

            # An invalid one: refused, named, and nothing of it applied.
            write_config(d, bad)
            d.proc.send_signal(signal.SIGHUP)
            refused = poll(lambda: log_lines(
                d, "SIGHUP: configuration refused, keeping the running one"),
                bool, timeout=5)
            self.assertEqual(len(refused), 1, log_tail(d))
            self.assertIn("no_such_key", refused[0])
            time.sleep(2.5)  # two detector rounds at least
            self.assertIsNone(d.proc.poll(), "daemon died" + log_tail(d))
            v = view()
            self.assertEqual(v["leaked"], n,
                             "the refused file changed the threshold" +
                             log_tail(d))
            self.assertEqual(len(log_lines(
                d, "SIGHUP: configuration reloaded")), 1, log_tail(d))

            # Restore the valid file: applied again.
            write_config(d, fast)
            d.proc.send_signal(signal.SIGHUP)
            reloaded = poll(lambda: log_lines(
                d, "SIGHUP: configuration reloaded"),
                lambda l: len(l) == 2, timeout=5)
            self.assertEqual(len(reloaded), 2, log_tail(d))
            v = view()
            self.assertEqual(v["leaked"], n, log_tail(d))
            self.assertEqual(s.get("/healthz").strip(), "ok")


class BoundedResources(Base):
    def test_more_sockets_than_the_table(self):
        limit, pairs, port = 200, 200, 7230
        config = "tracking:\n  max_tracked_sockets: %d\n" % limit
        with Daemon(extra_config=config) as d, Netns("bound") as ns, \
                Workload(ns) as w:
            s = Scraper(d)
            rss0 = rss_bytes(d.proc.pid)
            w.do("nofile", 4 * pairs + 64)
            w.do("listen", "l", "4", port, 1024)
            reply = w.do("connectmany", "c", "4", port, pairs).split()
            self.assertEqual(reply[1:], [str(pairs)])
            w.do("acceptmany", "s", "l", pairs)
            self.assertEqual(ns.ss_counts()["established"], 2 * pairs)

            def view():
                m = s.metrics()
                return {"evictions": m.get("tcpstated_evictions_total"),
                        "tracked": m.get("tcpstated_tracked_sockets"),
                        "limit": m.get("tcpstated_tracked_sockets_limit")}

            v = poll(view, lambda v: v["evictions"] > 0)
            rss1 = rss_bytes(d.proc.pid)
            ctx = "\nview: %r, rss %d -> %d%s" % (v, rss0, rss1, log_tail(d))
            self.assertGreater(v["evictions"], 0, "no eviction" + ctx)
            self.assertLessEqual(v["tracked"], limit, ctx)
            self.assertEqual(v["limit"], limit, ctx)
            self.assertLess(rss1 - rss0, 64 << 20, "RSS grew" + ctx)
            self.assertEqual(s.get("/healthz").strip(), "ok", ctx)
            self.assertIsNone(d.proc.poll(), ctx)

    def test_port_scan_of_leaks_is_bounded(self):
        ports, max_series = 300, 20
        config = ("tracking:\n  reconcile_interval: 1s\n"
                  "  full_reconcile_interval: 1s\n"
                  "  max_series_per_metric: %d\n"
                  "detectors:\n  close_wait_leak_after: 1s\n" % max_series)
        with Daemon(extra_config=config) as d, Netns("scan") as ns, \
                Workload(ns) as w:
            s = Scraper(d)
            w.do("nofile", 3 * ports + 64)
            w.do("leakports", "p", "4", ports, timeout=60)
            self.assertEqual(ns.ss_counts()["close_wait"], ports)

            def view():
                m = s.metrics()
                return {"state": m.get("tcpstated_sockets",
                                       netns=str(ns.inode),
                                       state="close_wait"),
                        "leaked": m.total(CLOSE_WAIT_FAMILIES[1]),
                        "count": m.total(CLOSE_WAIT_FAMILIES[0]),
                        "series": {f: len(m.family(f))
                                   for f in CLOSE_WAIT_FAMILIES}}

            v = poll(view, lambda v: v["state"] == ports and
                     v["leaked"] >= ports)
            ctx = "\nview: %r%s" % (v, log_tail(d))
            self.assertEqual(v["state"], ports, ctx)
            self.assertGreaterEqual(v["count"], ports, ctx)
            self.assertGreaterEqual(v["leaked"], ports, ctx)
            for name, n in v["series"].items():
                self.assertLessEqual(n, max_series + 1, name + ctx)
            self.assertEqual(s.get("/healthz").strip(), "ok", ctx)


class ForeignBpf(Base):
    """bpftrace printing from the same TCP tracepoints while connections
    open and close. For classic tracepoints the kernel's recursion guard
    (bpf_prog_active) is shared by every kprobe and tracepoint program on a
    CPU: when an interrupt fires inet_sock_set_state while another tool's
    program runs, tcpstated's run is skipped. Measured here: 168 skipped
    runs in 1,500 connections in tracepoint mode. tp_btf's guard is per
    program: only tcpstated's own run, interrupted by the same tracepoint,
    is skipped (0-4 in 2,500 connections)."""

    SCRIPT = ("tracepoint:sock:inet_sock_set_state "
              "{ printf(\"%d %d\\n\", args->oldstate, args->newstate); }\n"
              "tracepoint:tcp:tcp_destroy_sock "
              "{ printf(\"%llx\\n\", args->skaddr); }\n")
    MAX_ROUNDS = 600   # of 5 connections each
    MAX_SECONDS = 30.0

    def start_bpftrace(self):
        if shutil.which("bpftrace") is None:
            self.skipTest("bpftrace is not installed")
        out = open(os.path.join(self.dir, "bpftrace.out"), "w+")
        self.addCleanup(out.close)
        proc = subprocess.Popen(["bpftrace", "-e", self.SCRIPT], stdout=out,
                                stderr=subprocess.STDOUT)

        def stop():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.addCleanup(stop)

        def attached():
            out.seek(0)
            return out.read()
        text = poll(attached, lambda t: "Attaching" in t or
                    proc.poll() is not None, timeout=60)
        if "Attaching" not in text:
            stop()
            self.skipTest("bpftrace did not attach: " + text[-500:])
        time.sleep(0.5)  # "Attaching" is printed just before it attaches
        return stop

    def test_skipped_runs_are_counted_and_repaired(self):
        self.dir = tempfile.mkdtemp(prefix="tcpstated-test-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        config = ("tracking:\n  reconcile_interval: 2s\n"
                  "  full_reconcile_interval: 2s\n")
        with Daemon(extra_config=config) as d, Netns("foreign") as ns, \
                Workload(ns) as w:
            ids = prog_ids_of(d.proc.pid)
            stop_bpftrace = self.start_bpftrace()
            port = w.do("listen", "l", "4", 0).split()[1]
            deadline = time.monotonic() + self.MAX_SECONDS
            rounds, misses = 0, recursion_misses(ids)
            # Classic tracepoint: until the first skipped run. tp_btf: the
            # whole budget, to bound how often it skips.
            while (rounds < self.MAX_ROUNDS and
                   time.monotonic() < deadline and
                   (d.attach == "tp_btf" or
                    misses["inet_sock_set_state"] == 0)):
                w.do("connectmany", "c", "4", port, 5)
                w.do("acceptmany", "s", "l", 5)
                w.do("closemany", "c", 5)
                w.do("closemany", "s", 5)
                rounds += 1
                if rounds % 20 == 0:
                    misses = recursion_misses(ids)
            stop_bpftrace()
            # What the README says of each mode: the classic tracepoint's
            # guard, shared with bpftrace's program, skips tcpstated's runs
            # (11 % of connections measured); tp_btf's guard is per program,
            # so bpftrace cannot make it skip: only tcpstated's own program,
            # interrupted on its CPU by a softirq that hits the same
            # tracepoint, is skipped (0-4 in 2,500 connections on a loaded
            # 2-core CI machine). Bound it at 1 % of the connections.
            skipped = recursion_misses(ids)["inet_sock_set_state"]
            if d.attach == "tracepoint":
                self.assertGreater(skipped, 0,
                                   "no run skipped in %d connections with "
                                   "bpftrace alongside" % (5 * rounds))
            else:
                self.assertLessEqual(skipped, max(1, 5 * rounds // 100),
                                     "tp_btf runs skipped in %d connections"
                                     % (5 * rounds))

            # Leave sockets whose last events matter: CLOSE_WAIT on the
            # servers, FIN_WAIT2 orphans on the clients.
            make_server_leak(w, "l", port, 5)

            def counted():
                kernel = recursion_misses(ids)
                m = d.metrics()
                return kernel, {s: m.get("tcpstated_events_missed_total",
                                         source=s) for s in kernel}
            kernel, reported = poll(counted, lambda v: v[0] == v[1])
            ctx = "\nafter %d connections: bpftool %r, /metrics %r%s" % (
                5 * rounds, kernel, reported, log_tail(d))
            print("\nforeign bpf (%s): %d connections, skipped runs %r" %
                  (d.attach, 5 * rounds, kernel))
            self.assertEqual(reported, kernel, ctx)
            if d.attach == "tracepoint":
                self.assertGreater(reported["inet_sock_set_state"], 0, ctx)

            truth = poll(ns.ss_counts,
                         lambda t: t["close_wait"] == 5 and
                         t["fin_wait2"] == 5, timeout=5)
            self.assertEqual((truth["close_wait"], truth["fin_wait2"]),
                             (5, 5), "scenario did not happen: %r" % truth)
            m = d.wait_sockets(ns.inode, truth, timeout=15)
            self.assertEqual(m.sockets(ns.inode), truth,
                             "not repaired by the reconciles" + ctx)


if __name__ == "__main__":
    unittest.main()
