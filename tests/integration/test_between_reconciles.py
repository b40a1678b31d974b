"""Truth between reconciles: kernel paths the tracepoint reports no state
change for, checked against the kernel before any reconcile could have run.

The daemon runs with `reconcile_interval: 1h`, so after its start-up seed
the mirror only knows what the events told it; every check compares it
with `ss` and `nstat` inside the test's own namespace and asserts that no
reconcile correction was made. The other side of it (with a reconcile
every second, a loss-free run needs no correction at all) is not true yet:
tests/kernels/test_quiet.py's QuietHost reproduces the stray corrections.
Every wait is a bounded poll.

TCPSTATED_ATTACH selects the attach mode (tp_btf or tracepoint); CTest runs
this file once per mode.
"""

import os
import time
import unittest

from harness import Daemon, Netns, Workload
from test_detectors import poll


# /debug/sockets (off by default) shows the mirror's view when a check fails.
CONFIG = """web:
  debug_sockets: true
tracking:
  reconcile_interval: 1h
"""


# Drops on the namespace's output, so on its loopback in both directions.
DROP_RULES = """table inet t {
  chain out {
    type filter hook output priority 0;
    %s
  }
}
"""


def nstat(ns, counter):
    """Absolute value of a TcpExt counter in the namespace."""
    out = ns.exec(["nstat", "-asz", counter]).stdout
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] == counter:
            return int(fields[1])
    raise AssertionError("nstat did not print %s: %r" % (counter, out))


def cgroup2_mount():
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or
    /sys/fs/cgroup/unified on a hybrid host), or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split()[:1] == ["cgroup2"]:
                return pre.split()[4]
    return None


class Cgroup:
    """A cgroup of the test's own (tcpstated-test-<name>.scope: a unit name
    to tcpstated), removed on exit once the processes moved into it are
    gone or moved out."""

    def __init__(self, name):
        mount = cgroup2_mount()
        if mount is None:
            raise unittest.SkipTest("no cgroup v2 hierarchy mounted")
        self.unit = "tcpstated-test-%s-%d.scope" % (name, os.getpid())
        self.path = os.path.join(mount, self.unit)
        self.root = mount

    def __enter__(self):
        os.mkdir(self.path)
        return self

    def add(self, pid):
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(pid))

    def __exit__(self, *exc):
        # Whatever is still inside goes back to the root first.
        for _ in range(50):
            with open(os.path.join(self.path, "cgroup.procs")) as f:
                pids = f.read().split()
            for pid in pids:
                try:
                    with open(os.path.join(self.root, "cgroup.procs"),
                              "w") as f:
                        f.write(pid)
                except OSError:
                    pass  # exited meanwhile
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.1)
        os.rmdir(self.path)


def kernel_at_least(major, minor):
    release = os.uname().release.split("-")[0].split(".")
    return (int(release[0]), int(release[1])) >= (major, minor)


def ss_count(ns, *filters):
    out = ns.exec(["ss", "-tanH"] + list(filters)).stdout
    return len([l for l in out.splitlines() if l.strip()])


class BetweenReconciles(unittest.TestCase):
    daemon = None

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("real-kernel tests need root")
        cls.daemon = Daemon(extra_config=CONFIG).__enter__()

    @classmethod
    def tearDownClass(cls):
        if cls.daemon is not None:
            cls.daemon.stop()

    def assert_no_reconcile(self, m, ctx):
        self.assertEqual(m.total("tcpstated_reconcile_corrections_total"), 0,
                         "a reconcile corrected the mirror" + ctx)

    def test_time_wait_taken_over_by_tw_reuse_leaves_the_mirror(self):
        """Ten client connections close first and leave ten TIME_WAIT
        sockets holding all ten ephemeral ports; with tcp_tw_reuse, eight
        new connections to the same destination take over eight of them.
        The kernel then holds 2 TIME_WAIT and 10 ports, not 10 and 18."""
        d = self.daemon
        # No reuse while the ten are made: each must take a port of its own.
        sysctls = {"net.ipv4.tcp_tw_reuse": "0",
                   "net.ipv4.ip_local_port_range": "40000 40009"}
        with Netns("twreuse", sysctls) as ns, Workload(ns) as w:
            # A port of its own outside the range, which the clients use up.
            port = int(w.do("listen", "l", "4", 8000).split()[1])
            w.do("lifecycles", "4", "l", 10, "client")
            self.assertEqual(ss_count(ns, "state", "time-wait"), 10)
            # connect() reuses a timewait socket whose last timestamp is
            # from an earlier second.
            ns.exec(["sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1"])
            w.do("sleep", 2.1)
            reply = w.do("connectmany", "n", "4", port, 8).split()
            self.assertEqual(reply[1:], ["8"], "connects failed: %r" % reply)
            self.assertEqual(nstat(ns, "TcpExtTWRecycled"), 8)
            truth = ns.ss_counts()
            self.assertEqual(truth["time_wait"], 2, truth)
            held = ss_count(ns, "dport", "=", ":%d" % port)
            self.assertEqual(held, 10)

            labels = {"netns": str(ns.inode), "saddr": "127.0.0.1",
                      "daddr": "127.0.0.1", "dport": str(port)}

            def view():
                m = d.metrics()
                return m, {
                    "sockets": m.sockets(ns.inode),
                    "used": m.get("tcpstated_ephemeral_ports_used", **labels),
                    "available": m.get("tcpstated_ephemeral_ports_available",
                                       netns=str(ns.inode)),
                }

            m, v = poll(view, lambda mv: (mv[1]["sockets"] == truth and
                                          mv[1]["used"] == held and
                                          mv[1]["available"] == 10))
            ctx = "\nss: %r\nview: %r\n%s" % (
                truth, v, d.get("/debug/sockets?state=all&netns=%d" %
                                ns.inode))
            self.assertEqual(v["sockets"], truth, "mirror != ss" + ctx)
            self.assertEqual(v["available"], 10, ctx)
            self.assertEqual(v["used"], held, "ports used != ss" + ctx)
            self.assert_no_reconcile(m, ctx)

    def test_closing_to_close_by_timeout_is_no_time_wait(self):
        """A simultaneous close whose last ACK never comes: the socket in
        CLOSING retransmits its FIN until TCP_USER_TIMEOUT ends it through
        tcp_write_err, CLOSING -> CLOSE with no reset and no timewait
        socket. ss shows nothing left of it; neither may tcpstated."""
        d = self.daemon
        with Netns("closing", {}) as ns, Workload(ns) as w:
            port = int(w.do("listen", "l", "4", 0).split()[1])
            w.do("connect", "c", "4", port)
            w.do("accept", "s", "l")
            w.do("close", "l")
            w.do("usertimeout", "c", 3000)
            # Both FINs are lost...
            ns.nft(DROP_RULES % ("tcp dport %d drop\n"
                                 "    tcp sport %d drop" % (port, port)))
            w.do("shutdown", "c")
            w.do("shutdown", "s")
            # ...then s's retransmitted FIN gets through: c, still waiting
            # for the ACK of its own FIN, goes FIN_WAIT1 -> CLOSING. c's
            # segments stay lost, so its FIN is never acknowledged.
            ns.nft("flush ruleset\n" + DROP_RULES % ("tcp dport %d drop" %
                                                    port))
            seen = poll(lambda: ns.ss_counts()["closing"], lambda n: n == 1,
                        timeout=5, interval=0.05)
            self.assertEqual(seen, 1, "c never reached CLOSING")
            gone = poll(lambda: ns.ss_counts()["closing"], lambda n: n == 0,
                        timeout=15)
            self.assertEqual(gone, 0, "c never timed out")
            self.assertEqual(nstat(ns, "TcpExtTCPAbortOnTimeout"), 1)
            truth = ns.ss_counts()
            self.assertEqual(truth["time_wait"], 0, truth)

            m = poll(d.metrics, lambda m: m.sockets(ns.inode) == truth,
                     timeout=5)
            ctx = "\nss: %r\n%s" % (truth, d.get(
                "/debug/sockets?state=all&netns=%d" % ns.inode))
            self.assertEqual(m.sockets(ns.inode), truth, "mirror != ss" + ctx)
            self.assert_no_reconcile(m, ctx)


    def test_ports_held_in_syn_sent_count_before_connect_fails(self):
        """Eight connects to a destination that never answers hold eight of
        ten ephemeral ports in SYN_SENT. The detector flags exhaustion (the
        ratio is 0.8 here) before the eleventh connect fails with
        EADDRNOTAVAIL."""
        d = self.daemon
        sysctls = {"net.ipv4.tcp_tw_reuse": "0",
                   "net.ipv4.ip_local_port_range": "40000 40009"}
        with Netns("synsent", sysctls) as ns, Workload(ns) as w:
            port = 8001
            # No listener answers: every SYN is dropped.
            ns.nft(DROP_RULES % ("tcp dport %d drop" % port))
            reply = w.do("synburst", "p", "4", port, 8, 5).split()
            self.assertEqual(reply[1:], ["8"], reply)
            self.assertEqual(ss_count(ns, "state", "syn-sent"), 8)

            labels = {"netns": str(ns.inode), "saddr": "127.0.0.1",
                      "daddr": "127.0.0.1", "dport": str(port)}

            def view():
                m = d.metrics()
                return m, {
                    "sockets": m.sockets(ns.inode),
                    "used": m.get("tcpstated_ephemeral_ports_used", **labels),
                    "active": m.get("tcpstated_port_exhaustion_active",
                                    **labels),
                }

            m, v = poll(view, lambda mv: (mv[1]["used"] == 8 and
                                          mv[1]["active"] == 1))
            truth = ns.ss_counts()
            ctx = "\nss: %r\nview: %r\n%s" % (
                truth, v, d.get("/debug/sockets?state=all&netns=%d" %
                                ns.inode))
            self.assertEqual(v["sockets"], truth, "mirror != ss" + ctx)
            self.assertEqual(v["used"], 8, "SYN_SENT ports not counted" + ctx)
            self.assertEqual(v["active"], 1, "exhaustion not flagged" + ctx)
            self.assert_no_reconcile(m, ctx)
            # Only now do the ports run out.
            reply = w.do("synburst", "q", "4", port, 3, 5).split()
            self.assertEqual(reply[1:], ["2", "errno", "EADDRNOTAVAIL"],
                             reply)

    def test_orphans_end_by_peer_data_and_by_linger2(self):
        """Orphaned FIN_WAIT2 sockets (closed first, the peer's FIN never
        comes) on the paths no state change reports: one with TCP_LINGER2
        -1 is ended at once (its peer is reset), with no timewait socket;
        one in the kernel's timewait FIN_WAIT2 substate is killed by data from its peer (it
        answers with a reset, TCP_TW_RST); one with TCP_LINGER2 3 lives 3 s,
        not the namespace's 60 s. After each, the mirror equals `ss` within
        2 s."""
        d = self.daemon
        with Netns("orphans", {}) as ns, Workload(ns) as w:
            port = int(w.do("listen", "l", "4", 0).split()[1])
            for name, linger in (("a", None), ("b", 3), ("c", -1)):
                w.do("connect", name, "4", port)
                w.do("accept", "s" + name, "l")
                if linger is not None:
                    w.do("linger2", name, linger)

            def settled(want, ctx):
                truth = poll(ns.ss_counts,
                             lambda t: all(t[k] == v for k, v in want.items()),
                             timeout=5, interval=0.05)
                for k, v in want.items():
                    self.assertEqual(truth[k], v, "ss, %s: %r" % (ctx, truth))
                m = poll(d.metrics, lambda m: m.sockets(ns.inode) == truth,
                         timeout=2, interval=0.1)
                where = "\n%s: ss %r\n%s" % (ctx, truth, d.get(
                    "/debug/sockets?state=all&netns=%d" % ns.inode))
                self.assertEqual(m.sockets(ns.inode), truth,
                                 "mirror != ss" + where)
                self.assert_no_reconcile(m, where)

            w.do("close", "a")
            w.do("close", "c")
            # c's end resets its peer: sc is gone too.
            settled({"fin_wait2": 1, "close_wait": 1, "established": 2},
                    "a orphaned, c ended by linger2 -1")
            self.assertEqual(nstat(ns, "TcpExtTCPAbortOnData"), 1)

            # Whether the orphan is already a timewait socket is the
            # kernel's timing: when the peer's ACK was processed while
            # close() still held the socket (sock_owned_by_user), the full
            # socket stays in FIN_WAIT2 under the keepalive timer until it
            # converts (seen in a slow TCG guest); data then kills the full
            # socket, whose reset and close the mirror takes as usual.
            substate = "timer:(timewait" in ns.exec(
                ["ss", "-tanoH", "state", "fin-wait-2"]).stdout
            w.do("send", "sa", 100)
            settled({"fin_wait2": 0, "close_wait": 0, "established": 2},
                    "a killed by data")
            if kernel_at_least(6, 10) and substate:
                # The orphan's own reset is traced from 6.10 (before, only
                # its local peer's received reset tells).
                def tw_resets(m):
                    return sum(v for labels, v in m.family(
                        "tcpstated_resets_total", ns.inode)
                        if labels.get("state") == "time_wait" and
                        labels.get("direction") == "sent")
                m = poll(d.metrics, lambda m: tw_resets(m) == 1, timeout=12)
                self.assertEqual(tw_resets(m), 1,
                                 "the timewait socket's reset")
            w.do("close", "sa")
            w.do("close", "sc")

            w.do("close", "b")
            settled({"fin_wait2": 1, "close_wait": 1, "established": 0,
                     "last_ack": 0}, "b orphaned")
            settled({"fin_wait2": 0, "close_wait": 1, "established": 0,
                     "last_ack": 0}, "b expired after its TCP_LINGER2")

    def test_owners_are_the_process_its_listener_and_its_cgroup(self):
        """The owner of a socket is the process (its thread-group leader's
        name, as /proc and `ss -p` show it) even when a thread with a name
        of its own called listen() or connect(); an accepted connection
        inherits its listener's owner even after another process's
        listen() on the same port failed (CLOSE -> LISTEN -> CLOSE); and
        the unit is the cgroup the socket was opened from, even once the
        process moved elsewhere. All from the events: the reconcile that
        could resolve owners from /proc never runs here."""
        d = self.daemon
        with Netns("owners", {}) as ns, Cgroup("owners") as opened_in, \
                Cgroup("moved") as moved, Workload(ns) as w, \
                Workload(ns) as other:
            pid = int(w.do("pid").split()[1])
            opened_in.add(pid)
            w.do("comm", "tcpst-owner")
            other.do("comm", "tcpst-intruder")
            # Both bound before either listens: the second listen() fails.
            port = int(w.do("bind", "l", "4", 0).split()[1])
            other.do("bind", "b", "4", port)
            w.do("inthread", "tcpst-thread", "listenbound", "l")
            reply = other.do("listenbound", "b").split()
            self.assertEqual(reply[1:], ["errno", "EADDRINUSE"], reply)
            other.do("close", "b")
            # A server-side leak: accepted, the peer closes, never closed.
            other.do("connect", "c", "4", port)
            w.do("accept", "s", "l")
            other.do("close", "c")
            # A client-side leak: connected from the thread, peer closes.
            w.do("inthread", "tcpst-thread", "connect", "c2", "4", port)
            w.do("accept", "s2", "l")
            w.do("close", "s2")
            # The process leaves the cgroup it opened the sockets from.
            moved.add(pid)
            with open("/proc/%d/comm" % pid) as f:
                self.assertEqual(f.read().strip(), "tcpst-owner")
            self.assertEqual(ss_count(ns, "state", "close-wait"), 2)

            want = sorted([
                (("comm", "tcpst-owner"), ("port", str(port)),
                 ("role", "server"), ("unit", opened_in.unit)),
                (("comm", "tcpst-owner"), ("port", str(port)),
                 ("role", "client"), ("unit", opened_in.unit))])

            def view():
                m = d.metrics()
                rows = sorted(
                    tuple(sorted((k, v) for k, v in labels.items()
                                 if k != "netns"))
                    for labels, value in m.family(
                        "tcpstated_close_wait_sockets", ns.inode)
                    if value == 1)
                return m, rows

            # The CLOSE_WAIT families are refreshed once per detector cycle.
            m, rows = poll(view, lambda mv: mv[1] == want, timeout=12)
            ctx = "\n%s" % d.get("/debug/sockets?state=all&netns=%d" %
                                 ns.inode)
            self.assertEqual(rows, want, "owners" + ctx)
            self.assert_no_reconcile(m, ctx)


if __name__ == "__main__":
    unittest.main()
