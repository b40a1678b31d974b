"""The three detections, driven against the real kernel and the real daemon:
CLOSE_WAIT leaks (server and client role, across a restart, with bounded
cardinality), a SYN flood on a listener, and ephemeral-port exhaustion.

Ground truth is what the kernel says inside the test namespace: `ss` for
sockets, `nstat` for the TcpExt counters. The daemon's detectors run every
min(5 s, tracking.reconcile_interval); every check polls the metrics with a
deadline instead of sleeping a fixed time, and every loop is bounded.

TCPSTATED_ATTACH selects the attach mode (tp_btf or tracepoint).
"""

import datetime
import glob
import os
import re
import signal
import time
import unittest

from harness import Daemon, Netns, Workload, run

DEADLINE = 20.0  # seconds any one metric poll may take
LEAK_AFTER = 2.0  # detectors.close_wait_leak_after in these tests

CONFIG = """tracking:
  reconcile_interval: 1s
  full_reconcile_interval: 1s
  max_series_per_metric: %(max_series)d
detectors:
  close_wait_leak_after: 2s
  port_exhaustion_ratio: 0.8
  syn_flood_half_open_ratio: 0.5
"""

CLOSE_WAIT_FAMILIES = ("tcpstated_close_wait_sockets",
                       "tcpstated_close_wait_leaked_sockets",
                       "tcpstated_close_wait_oldest_seconds")

TIMER_RE = re.compile(r"timer:\(on,[^,]*,(\d+)\)")

LOG_RE = re.compile(r'^ts=(\S+) level=(\S+) msg="(.*)"$')


def config(max_series=50):
    return CONFIG % {"max_series": max_series}


def poll(fetch, done, timeout=DEADLINE, interval=0.25):
    """Calls fetch() until done(value) or the deadline; returns the last
    value either way (the caller asserts on it)."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(interval)
    return value


def ss_lines(ns, *args):
    return [l for l in ns.exec(["ss", "-tanH"] + list(args)).stdout
            .splitlines() if l.strip()]


def nstat(ns, counter):
    """Absolute value of a TcpExt counter in the namespace (no history
    file is read or updated)."""
    out = ns.exec(["nstat", "-asz", counter]).stdout
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] == counter:
            return int(fields[1])
    raise AssertionError("nstat did not print %s: %r" % (counter, out))


def workload_comm(w):
    pid = int(w.do("pid").split()[1])
    with open("/proc/%d/comm" % pid) as f:
        return f.read().strip()


def read_log(daemon):
    """Every line the daemon logged so far, as (epoch seconds, level, msg);
    the whole file, not only its tail."""
    if daemon.log.closed:
        return []
    lines = []
    with open(daemon.log.name) as f:
        for raw in f:
            match = LOG_RE.match(raw.rstrip("\n"))
            if not match:
                continue
            ts = datetime.datetime.fromisoformat(match.group(1))
            lines.append((ts.timestamp(), match.group(2), match.group(3)))
    return lines


def log_tail(daemon, n=40):
    text = daemon.log_text()
    return "\n--- daemon log (tail) ---\n" + "\n".join(
        text.splitlines()[-n:])


def make_server_leak(w, listener, port, n, prefix="c", server_prefix="s"):
    """n accepted connections whose clients closed; the server side never
    closes them: n server sockets in CLOSE_WAIT."""
    reply = w.do("connectmany", prefix, "4", port, n).split()
    assert reply[1:] == [str(n)], reply
    w.do("acceptmany", server_prefix, listener, n)
    w.do("closemany", prefix, n)
    for i in range(n):
        w.do("waiteof", "%s%d" % (server_prefix, i))


def all_netns_close_wait():
    """CLOSE-WAIT sockets per `ss` summed over every network namespace
    reachable through /run/netns or a process (what the daemon can see)."""
    paths = {}
    for path in ["/proc/1/ns/net"] + glob.glob("/run/netns/*") + \
            glob.glob("/proc/[0-9]*/ns/net"):
        try:
            inode = os.stat(path).st_ino
        except OSError:
            continue
        paths.setdefault(inode, path)
    count = 0
    for inode, path in sorted(paths.items()):
        r = run(["nsenter", "--net=" + path, "ss", "-tanH", "state",
                 "close-wait"], check=False, timeout=10)
        if r.returncode == 0:
            count += len([l for l in r.stdout.splitlines() if l.strip()])
    return count


class CloseWaitCheck:
    """Assertions shared by the CLOSE_WAIT scenarios."""

    def close_wait_view(self, d, ns):
        m = d.metrics()
        return {
            "ss": len(ss_lines(ns, "state", "close-wait")),
            "series": m.family("tcpstated_close_wait_sockets", ns.inode),
            "leaked": m.family("tcpstated_close_wait_leaked_sockets",
                             ns.inode),
            "oldest": m.family("tcpstated_close_wait_oldest_seconds",
                             ns.inode),
            "state": m.get("tcpstated_sockets", netns=str(ns.inode),
                           state="close_wait"),
        }

    def assert_leak(self, d, ns, n, role, port, comm):
        want = {"netns": str(ns.inode), "comm": comm, "role": role,
                "port": str(port)}

        def good(v):
            return (v["ss"] == n and len(v["series"]) == 1 and
                    all(v["series"][0][0].get(k) == x
                        for k, x in want.items()) and
                    v["series"][0][1] == n and
                    sum(x for _, x in v["leaked"]) == n and
                    max([x for _, x in v["oldest"]] or [0]) >= LEAK_AFTER)

        v = poll(lambda: self.close_wait_view(d, ns), good)
        ctx = "\nview: %r%s" % (v, log_tail(d))
        self.assertEqual(v["ss"], n, "ss does not show the leak" + ctx)
        self.assertEqual(v["state"], n, "tcpstated_sockets{close_wait}" + ctx)
        self.assertEqual(sum(x for _, x in v["series"]), n,
                         "close_wait_sockets sum != ss" + ctx)
        self.assertEqual(len(v["series"]), 1, "one group expected" + ctx)
        labels = v["series"][0][0]
        for key, value in want.items():
            self.assertEqual(labels.get(key), value, "label %s" % key + ctx)
        self.assertEqual(sum(x for _, x in v["leaked"]), n,
                         "close_wait_leaked_sockets" + ctx)
        self.assertGreaterEqual(max([x for _, x in v["oldest"]] or [0]),
                                LEAK_AFTER, "close_wait_oldest_seconds" + ctx)
        return v

    def assert_leak_logged(self, d):
        """The leak detection is host-wide, one line when it starts and one
        when it clears: while a leak exists, the last of them is a start."""
        lines = [msg for _, _, msg in read_log(d)
                 if msg.startswith(("CLOSE_WAIT leak started",
                                    "CLOSE_WAIT leak cleared"))]
        self.assertTrue(lines, "no 'CLOSE_WAIT leak started' line" +
                        log_tail(d))
        self.assertTrue(lines[-1].startswith("CLOSE_WAIT leak started"),
                        "leak active, but the last leak line is %r%s" %
                        (lines[-1], log_tail(d)))


class Detections(unittest.TestCase, CloseWaitCheck):
    """One daemon (reconcile and detectors every 1 s, leaks after 2 s)."""

    daemon = None

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("real-kernel tests need root")
        cls.daemon = Daemon(extra_config=config()).__enter__()

    @classmethod
    def tearDownClass(cls):
        if cls.daemon is not None:
            cls.daemon.stop()

    def test_close_wait_leak_server_role(self):
        """A server never closes the connections its clients closed."""
        n, port = 12, 7000
        d = self.daemon
        with Netns("cwsrv") as ns, Workload(ns) as w:
            w.do("listen", "l", "4", port)
            make_server_leak(w, "l", port, n)
            comm = workload_comm(w)
            self.assert_leak(d, ns, n, "server", port, comm)
            self.assert_leak_logged(d)
            # The application finally closes them: the series go away.
            w.do("closemany", "s", n)
            v = poll(lambda: self.close_wait_view(d, ns),
                     lambda v: v["ss"] == 0 and v["state"] == 0 and
                     not v["series"] and not v["leaked"] and not v["oldest"])
            self.assertEqual(v["ss"], 0, v)
            self.assertEqual(v["state"], 0, "tcpstated_sockets%r%s" %
                             (v, log_tail(d)))
            self.assertEqual((v["series"], v["leaked"], v["oldest"]),
                             ([], [], []), "stale CLOSE_WAIT series" +
                             log_tail(d))

    def test_close_wait_leak_client_role(self):
        """A connection pool: the server closes first, the client never
        closes: the clients sit in CLOSE_WAIT."""
        n, port = 12, 7001
        d = self.daemon
        with Netns("cwcli") as ns, Workload(ns) as w:
            w.do("listen", "l", "4", port)
            reply = w.do("connectmany", "c", "4", port, n).split()
            self.assertEqual(reply[1:], [str(n)])
            w.do("acceptmany", "s", "l", n)
            w.do("closemany", "s", n)
            for i in range(n):
                w.do("waiteof", "c%d" % i)
            comm = workload_comm(w)
            self.assert_leak(d, ns, n, "client", port, comm)
            self.assert_leak_logged(d)

    def test_syn_flood(self):
        """SYN-ACKs never reach the clients: half-open request sockets fill
        a backlog-8 listener's SYN queue, the rest get SYN cookies, and the
        listener retransmits its SYN-ACKs.

        The SYN-ACKs are dropped on the input hook (on their way into the
        client), not on output: a drop on output fails the transmission
        inside the kernel, so a SYN-ACK retransmit would count nowhere
        (neither in the request socket's retransmit count that ss shows nor
        in tcp:tcp_retransmit_synack), and that metric could not be
        checked."""
        port, backlog, burst = 7003, 8, 40
        d = self.daemon
        sysctls = {"net.ipv4.tcp_syncookies": "1"}
        with Netns("syn", sysctls) as ns, Workload(ns) as w:
            ns.nft("table inet t {\n"
                   "  chain in {\n"
                   "    type filter hook input priority 0;\n"
                   "    tcp flags & (syn|ack) == (syn|ack) counter drop\n"
                   "  }\n"
                   "}\n")
            w.do("listen", "l", "4", port, backlog)
            cookies_before = nstat(ns, "TcpExtSyncookiesSent")
            try:
                self.check_syn_flood(d, ns, w, port, backlog, burst,
                                     cookies_before)
            finally:
                w.do("closeprefix", "b")

    def check_syn_flood(self, d, ns, w, port, backlog, burst, cookies_before):
        started = int(w.do("synburst", "b", "4", port, burst, 0.5).split()[1])
        self.assertGreater(started, backlog)

        # The nft rule works: no handshake completes, the clients stay in
        # SYN_SENT, the listener holds request sockets, its SYN queue
        # overflowed into cookies.
        def request_sockets():
            return ss_lines(ns, "-o", "state", "syn-recv",
                            "sport", "=", ":%d" % port)

        def half_open():
            return len(request_sockets())

        def synack_retransmits():
            """Sum of the request sockets' retransmit counts, the third
            field of ss's timer:(on,<left>,<retransmits>)."""
            n = 0
            for line in request_sockets():
                match = TIMER_RE.search(line)
                self.assertIsNotNone(match, line)
                n += int(match.group(1))
            return n

        counts = poll(ns.ss_counts,
                      lambda c: c["syn_sent"] == started and
                      c["syn_recv"] > 0, timeout=5)
        self.assertEqual(counts["established"], 0, counts)
        self.assertEqual(counts["syn_sent"], started, counts)
        self.assertGreater(half_open(), 0)
        self.assertLessEqual(half_open(), backlog + 1)
        rules = ns.exec(["nft", "list", "ruleset"]).stdout
        self.assertRegex(rules, r"counter packets [1-9]")
        cookies = nstat(ns, "TcpExtSyncookiesSent")
        self.assertGreater(cookies, cookies_before,
                           "the SYN queue did not overflow into cookies")

        labels = {"netns": str(ns.inode), "port": str(port)}

        def view():
            ss_before = half_open()
            rtx_before = synack_retransmits()
            cookies_a = nstat(ns, "TcpExtSyncookiesSent")
            m = d.metrics()
            cookies_b = nstat(ns, "TcpExtSyncookiesSent")
            return {
                "ss": ss_before, "ss_after": half_open(),
                "rtx_ss": (rtx_before, synack_retransmits()),
                "rtx": m.get("tcpstated_synack_retransmits_total", **labels),
                "nstat": (cookies_a, cookies_b),
                "syn_recv": m.get("tcpstated_listen_syn_recv_sockets",
                                  **labels),
                "new_syn_recv": m.get("tcpstated_sockets",
                                      netns=str(ns.inode),
                                      state="new_syn_recv"),
                "flood": m.get("tcpstated_syn_flood_active", **labels),
                "limit": m.get("tcpstated_listen_accept_queue_limit",
                               **labels),
                "queue": m.get("tcpstated_listen_accept_queue_length",
                               **labels),
                "cookies": m.get("tcpstated_syncookies_sent_total",
                                 netns=str(ns.inode)),
            }

        def good(v):
            return (v["ss"] == v["ss_after"] == v["syn_recv"] ==
                    v["new_syn_recv"] and v["flood"] == 1 and
                    v["nstat"][0] == v["nstat"][1] == v["cookies"] and
                    v["rtx_ss"][0] == v["rtx_ss"][1] == v["rtx"] > 0)

        v = poll(view, good)
        ctx = "\nview: %r%s" % (v, log_tail(d))
        self.assertEqual(v["ss"], v["ss_after"], "ss unstable" + ctx)
        self.assertEqual(v["syn_recv"], v["ss"],
                         "listen_syn_recv_sockets != ss" + ctx)
        self.assertEqual(v["new_syn_recv"], v["ss"],
                         "tcpstated_sockets{new_syn_recv} != ss" + ctx)
        self.assertEqual(v["limit"], backlog, "accept queue limit" + ctx)
        self.assertEqual(v["queue"], 0, "accept queue length" + ctx)
        self.assertEqual(v["flood"], 1, "syn_flood_active" + ctx)
        self.assertGreater(v["cookies"], cookies_before, ctx)
        self.assertEqual(v["cookies"], v["nstat"][0],
                         "syncookies_sent_total != nstat" + ctx)
        self.assertGreater(v["rtx_ss"][0], 0, "no SYN-ACK retransmit" + ctx)
        self.assertEqual(v["rtx"], v["rtx_ss"][0],
                         "synack_retransmits_total != sum of the request "
                         "sockets' retransmits per ss" + ctx)
        needle = "SYN flood started on netns=%d" % ns.inode
        lines = [msg for _, _, msg in read_log(d) if msg.startswith(needle)]
        self.assertTrue(lines, "no %r line%s" % (needle, log_tail(d)))
        self.assertIn("port=%d" % port, lines[0])

        # Closing the listener drops its request sockets: the flood clears.
        w.do("close", "l")

        def gone():
            m = d.metrics()
            return {"ss": half_open(),
                    "flood": m.family("tcpstated_syn_flood_active",
                                    ns.inode),
                    "new_syn_recv": m.get("tcpstated_sockets",
                                          netns=str(ns.inode),
                                          state="new_syn_recv")}

        v = poll(gone, lambda v: v["ss"] == 0 and v["new_syn_recv"] == 0 and
                 not any(x for _, x in v["flood"]))
        ctx = "\nview: %r%s" % (v, log_tail(d))
        self.assertEqual(v["ss"], 0, ctx)
        self.assertEqual(v["new_syn_recv"], 0, "request sockets" + ctx)
        self.assertFalse(any(x for _, x in v["flood"]),
                         "syn_flood_active after the listener closed" + ctx)
        needle = "SYN flood cleared on netns=%d" % ns.inode
        lines = poll(lambda: [msg for _, _, msg in read_log(d)
                              if msg.startswith(needle)], bool, timeout=5)
        self.assertTrue(lines, "no %r line%s" % (needle, log_tail(d)))

    def test_port_exhaustion(self):
        """Client-first closes leave TIME_WAIT sockets holding the 1000
        ephemeral ports towards one destination until connect() fails; the
        detector fires before it does."""
        port = 8000
        d = self.daemon
        sysctls = {"net.ipv4.tcp_tw_reuse": "0",
                   "net.ipv4.ip_local_port_range": "40000 40999"}
        with Netns("ports", sysctls) as ns, Workload(ns) as w:
            w.do("listen", "l", "4", port)
            # ~40 connects/s: 200 of them (5 s, several detector rounds
            # even on a loaded machine with a sanitizer build) between 80 %
            # and 100 % of the range.
            reply = w.do("churn", "l", 1100, 40, 60, timeout=75).split()
            made, failed_at, err = reply[1], reply[2], reply[3]
            self.assertEqual(err, "EADDRNOTAVAIL",
                             "churn ended without exhaustion: %r" % reply)
            failed_at = float(failed_at)

            labels = {"netns": str(ns.inode), "saddr": "127.0.0.1",
                      "daddr": "127.0.0.1", "dport": str(port)}

            def view():
                ss_before = len(ss_lines(ns, "dport", "=", ":%d" % port))
                m = d.metrics()
                return {
                    "ss": ss_before,
                    "ss_after": len(ss_lines(ns, "dport", "=",
                                             ":%d" % port)),
                    "used": m.get("tcpstated_ephemeral_ports_used", **labels),
                    "available": m.get("tcpstated_ephemeral_ports_available",
                                       netns=str(ns.inode)),
                    "active": m.get("tcpstated_port_exhaustion_active",
                                    **labels),
                    "made": made,
                }

            def good(v):
                return (v["ss"] == v["ss_after"] == v["used"] and
                        v["available"] == 1000 and v["active"] == 1)

            v = poll(view, good)
            ctx = "\nview: %r%s" % (v, log_tail(d))
            self.assertGreaterEqual(v["ss"], 990, "ss: ports not held" + ctx)
            self.assertEqual(v["used"], v["ss"],
                             "ephemeral_ports_used != ss" + ctx)
            self.assertEqual(v["available"], 1000,
                             "ephemeral_ports_available" + ctx)
            self.assertEqual(v["active"], 1, "port_exhaustion_active" + ctx)

            needle = ("Ephemeral port exhaustion started: netns=%d" %
                      ns.inode)
            lines = [(ts, msg) for ts, _, msg in read_log(d)
                     if msg.startswith(needle)]
            self.assertTrue(lines, "no %r line%s" % (needle, log_tail(d)))
            self.assertIn("127.0.0.1 -> 127.0.0.1:%d" % port, lines[0][1])
            self.assertLess(
                lines[0][0], failed_at,
                "detection logged at %.3f, %.3f s after the first "
                "EADDRNOTAVAIL (%.3f): %s" %
                (lines[0][0], lines[0][0] - failed_at, failed_at,
                 lines[0][1]))


class Restart(unittest.TestCase, CloseWaitCheck):
    """A leak older than the daemon is seeded from sock_diag (its owner
    found through /proc, its age from the kernel's tcp_info); after SIGKILL
    a new daemon sees it again, just as old."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("real-kernel tests need root")

    def assert_seeded(self, d, ns, n, port, comm, fin_between, started):
        """The daemon answers HTTP only after the seed dump (and its owner
        scan of /proc): the very first scrape already shows the leak, its
        listener's port and its owner, and the leak's age: the time since
        the clients' FINs (fin_between: monotonic bounds), which the kernel
        gives as tcpi_last_ack_recv, not the time since the daemon
        `started`."""
        m = d.metrics()
        scraped = time.monotonic()
        series = m.family("tcpstated_close_wait_sockets", ns.inode)
        oldest = max([x for _, x in m.family(
            "tcpstated_close_wait_oldest_seconds", ns.inode)] or [0])
        leaked = m.total("tcpstated_close_wait_leaked_sockets", ns.inode)
        ctx = "\nfirst scrape: %r, oldest %.3f s, leaked %r%s" % (
            series, oldest, leaked, log_tail(d))
        with self.subTest("seeded count, role and port at the first scrape"):
            self.assertEqual(m.get("tcpstated_sockets", netns=str(ns.inode),
                                   state="close_wait"), n, ctx)
            self.assertEqual(sum(v for _, v in series), n, ctx)
            self.assertEqual(sorted({(l["role"], l["port"])
                                     for l, _ in series}),
                             [("server", str(port))], ctx)
        with self.subTest("owner resolved from /proc at the first scrape"):
            self.assertEqual(sorted({l["comm"] for l, _ in series}),
                             [comm], ctx)
        with self.subTest("age from the kernel at the first scrape"):
            # Reported as of the seeding, between start-up and the scrape;
            # the kernel counts in jiffies (a few ms of rounding).
            self.assertGreaterEqual(oldest,
                                    started - fin_between[1] - 0.05, ctx)
            self.assertLessEqual(oldest, scraped - fin_between[0] + 0.05,
                                 ctx)
            self.assertEqual(leaked, n, ctx)

    def test_leak_survives_start_and_sigkill(self):
        n, port = 12, 7002
        with Netns("restart") as ns, Workload(ns) as w:
            w.do("listen", "l", "4", port)
            before_fin = time.monotonic()
            make_server_leak(w, "l", port, n)
            fin_between = (before_fin, time.monotonic())
            comm = workload_comm(w)
            # Older than close_wait_leak_after before any daemon runs.
            time.sleep(LEAK_AFTER + 0.5)
            started = time.monotonic()
            first = Daemon(extra_config=config()).__enter__()
            try:
                self.assert_seeded(first, ns, n, port, comm, fin_between,
                                   started)
                self.assert_leak(first, ns, n, "server", port, comm)
                self.assert_leak_logged(first)
                first.proc.send_signal(signal.SIGKILL)
                first.proc.wait(timeout=10)
            finally:
                first.stop()
            started = time.monotonic()
            with Daemon(extra_config=config()) as second:
                self.assert_seeded(second, ns, n, port, comm, fin_between,
                                   started)
                self.assert_leak(second, ns, n, "server", port, comm)
                self.assert_leak_logged(second)


class Cardinality(unittest.TestCase):
    """max_series_per_metric 5: 8 leaking listeners fold into 5 series plus
    one "other", and the sums still equal the kernel's totals."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("real-kernel tests need root")

    def test_close_wait_series_are_bounded(self):
        ports = list(range(7010, 7018))
        per_port = 2
        with Daemon(extra_config=config(max_series=5)) as d, \
                Netns("card") as ns, Workload(ns) as w:
            for i, port in enumerate(ports):
                w.do("listen", "l%d" % i, "4", port)
                make_server_leak(w, "l%d" % i, port, per_port,
                                 prefix="c%d_" % i, server_prefix="s%d_" % i)
            mine = len(ports) * per_port
            self.assertEqual(len(ss_lines(ns, "state", "close-wait")), mine)

            def view():
                m1 = d.metrics()
                truth = all_netns_close_wait()
                m2 = d.metrics()
                return {
                    "truth": truth,
                    "sum": (m1.total(CLOSE_WAIT_FAMILIES[0]),
                            m2.total(CLOSE_WAIT_FAMILIES[0])),
                    "leaked_mine": m2.total(CLOSE_WAIT_FAMILIES[1],
                                         ns.inode),
                    "leaked_other": m2.total(CLOSE_WAIT_FAMILIES[1],
                                          "other"),
                    "families": {f: m2.family(f)
                                 for f in CLOSE_WAIT_FAMILIES},
                    "state": m2.get("tcpstated_sockets", netns=str(ns.inode),
                                    state="close_wait"),
                }

            def good(v):
                return (v["sum"][0] == v["sum"][1] == v["truth"] and
                        v["leaked_mine"] + v["leaked_other"] >= mine and
                        v["state"] == mine)

            v = poll(view, good, interval=0.5)
            ctx = "\nview: %r%s" % (v, log_tail(d))
            self.assertEqual(v["state"], mine,
                             "tcpstated_sockets{close_wait}" + ctx)
            for name, series in v["families"].items():
                self.assertLessEqual(len(series), 6, name + ctx)
                other = [l for l, _ in series if l.get("port") == "other"]
                self.assertEqual(len(other), 1,
                                 "%s: one 'other' series" % name + ctx)
                self.assertEqual(
                    {k: other[0][k] for k in ("netns", "comm", "unit",
                                              "role", "port")},
                    {k: "other" for k in ("netns", "comm", "unit", "role",
                                          "port")}, name + ctx)
            self.assertEqual(v["sum"][0], v["truth"],
                             "sum of close_wait_sockets != CLOSE-WAIT "
                             "sockets in all namespaces per ss" + ctx)
            self.assertGreaterEqual(v["leaked_mine"] + v["leaked_other"],
                                    mine, "leaked sockets lost" + ctx)
            self.assertLessEqual(
                sum(x for _, x in v["families"][CLOSE_WAIT_FAMILIES[1]]),
                v["truth"], "more leaked than CLOSE_WAIT sockets" + ctx)


if __name__ == "__main__":
    unittest.main()
