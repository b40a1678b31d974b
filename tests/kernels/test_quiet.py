"""On a quiet machine (a kernel-matrix guest, where nothing else makes
connections), a namespace's outbound and accepted connections, and a
server's CLOSE_WAIT leak, cost the mirror no resync and no invalid
transition: every event's old state is the one the mirror already had.
(Before the child-cookie fix, tp_btf on 5.15-6.14 kernels resynced once per
accepted connection.) The host's own test suite cannot assert this: other
processes' older sockets resync there.

TCPSTATED_ATTACH selects the attach mode.
"""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))

from harness import Daemon, Netns, Workload  # noqa: E402
from test_detectors import make_server_leak  # noqa: E402

RESYNCS = "tcpstated_mirror_resyncs_total"
# The daemon's debug lines for each reconcile correction and each resync
# (daemon.cpp), with the socket's namespace.
CORRECTION_RE = re.compile(
    r"reconcile (?:added|changed|removed) socket id=\S+ netns=(\d+) .*")
RESYNC_RE = re.compile(r"resync socket id=\S+ netns=(\d+) .*")


def logged_in(daemon, pattern, netns):
    """The daemon's debug lines matching `pattern` for `netns`: the host's
    other namespaces (other tests, other daemons' traffic, sockets older
    than the daemon) do not count against this one."""
    daemon.log.flush()
    with open(daemon.log.name) as f:
        text = f.read()
    return [m.group(0) for m in pattern.finditer(text)
            if m.group(1) == str(netns)]


class Quiet(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("real-kernel tests need root")

    def test_no_resyncs_and_no_invalid_transitions(self):
        n, leaks = 10, 3
        with Daemon() as d, Netns("quiet") as ns, Workload(ns) as w:
            before = d.metrics()
            port = w.do("listen", "l", "4", 0).split()[1]
            w.do("lifecycles", "4", "l", n, "client")
            w.do("lifecycles", "4", "l", n, "server")
            make_server_leak(w, "l", port, leaks)
            want = {"listen": 1, "time_wait": 2 * n, "close_wait": leaks,
                    "fin_wait2": leaks}
            deadline = time.monotonic() + 5
            truth = ns.ss_counts()
            while (any(truth[k] != v for k, v in want.items()) and
                   time.monotonic() < deadline):
                time.sleep(0.05)
                truth = ns.ss_counts()
            for state, count in want.items():
                self.assertEqual(truth[state], count, truth)
            m = d.wait_sockets(ns.inode, truth)
            ctx = "\n" + d.log_text()[-3000:]
            self.assertEqual(m.sockets(ns.inode), truth, ctx)
            self.assertEqual(m.total(RESYNCS) - before.total(RESYNCS), 0,
                             "resyncs" + ctx)
            self.assertEqual(m.invalid_total() - before.invalid_total(), 0,
                             "invalid transitions" + ctx)


class QuietHost(unittest.TestCase):
    """Every reconcile first applies the events still in the ring, and its
    walks of the table, paused while events come in, lose no entry: on a
    host that loses no event, the dumps and the mirror always agree. The
    namespace's own corrections and resyncs are counted (from the daemon's
    debug lines), so the test holds on a busy host too; on a quiet guest
    (the kernel matrix) the host-wide counters must stay 0 as well."""

    def test_loss_free_run_needs_no_correction_and_no_resync(self):
        if os.geteuid() != 0:
            self.skipTest("real-kernel tests need root")
        with Daemon(extra_config="tracking:\n  reconcile_interval: 1s\n"
                                 "  full_reconcile_interval: 1s\n"
                    ) as d, Netns("quiet", {"net.ipv4.tcp_tw_reuse": "0"}
                                  ) as ns, Workload(ns) as w:
            port = int(w.do("listen", "l", "4", 0).split()[1])
            # Connections open and close around every reconcile for about
            # 8 s: lifecycles into TIME_WAIT, and resets. (Not the server
            # closing first: the mirror promotes that orphan to TIME_WAIT
            # when the local peer's FIN leaves, a moment before the kernel
            # does, and a dump in between is a correction.)
            deadline = time.monotonic() + 8
            rounds = 0
            while time.monotonic() < deadline and rounds < 1000:
                w.do("lifecycles", "4", "l", 10, "client")
                w.do("connect", "c%d" % rounds, "4", port)
                w.do("accept", "s%d" % rounds, "l")
                w.do("abort", "c%d" % rounds)
                w.do("sleep", 0.01)
                rounds += 1
            w.do("sleep", 2.5)  # at least two more reconciles
            m = d.metrics()
            lost = (m.total("tcpstated_events_lost_total") +
                    m.total("tcpstated_events_missed_total"))
            corrections = logged_in(d, CORRECTION_RE, ns.inode)
            resyncs = logged_in(d, RESYNC_RE, ns.inode)
            ctx = "\nafter %d rounds, in the namespace:\n%s%s" % (
                rounds, "\n".join(corrections + resyncs),
                d.log_text()[-3000:])
            self.assertEqual(lost, 0, "events were lost: not a loss-free "
                             "run" + ctx)
            self.assertEqual(len(corrections), 0,
                             "reconcile corrections" + ctx)
            self.assertEqual(len(resyncs), 0, "resyncs" + ctx)
            if os.environ.get("TCPSTATED_QUIET_MACHINE") == "1":
                self.assertEqual(
                    m.total("tcpstated_reconcile_corrections_total"), 0,
                    "reconcile corrections on the machine" + ctx)
                self.assertEqual(m.total(RESYNCS), 0,
                                 "resyncs on the machine" + ctx)
            self.assertEqual(m.sockets(ns.inode), ns.ss_counts())


if __name__ == "__main__":
    unittest.main()
