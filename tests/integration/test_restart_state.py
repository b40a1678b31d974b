"""What survives a restart (issue 13): a CLOSE_WAIT leak with keepalive on
keeps the age the daemon saw it begin with, through the state file
(state.directory), although every keepalive ACK resets the tcp_info field
a daemon without it has to go by (tcpi_last_ack_recv). Without a saved
age, the leak is reported with that lower bound, and flagged as one.

Ground truth is `ss -tnoi` in the test namespace: the keepalive timer on
each leaked socket, and its lastack (the ACKs really flowed).

TCPSTATED_ATTACH selects the attach mode (tp_btf or tracepoint).
"""

import os
import re
import shutil
import tempfile
import time
import unittest

from harness import Daemon, Netns, Workload
from test_detectors import LEAK_AFTER, config, log_tail, poll

LASTACK_RE = re.compile(r"\blastack:(\d+)")
KEEPALIVE_RE = re.compile(r"timer:\(keepalive,")
LOWER_BOUND = "tcpstated_close_wait_age_lower_bound_sockets"


def state_config(directory):
    # Saved every second too, though the SIGTERM save is what this uses.
    return config() + "state:\n  directory: %s\n  save_interval: 1s\n" % (
        directory)


def close_wait_truth(ns):
    """[(keepalive timer on, lastack ms)] of the namespace's CLOSE-WAIT
    sockets, from `ss -tnoi`."""
    out = ns.exec(["ss", "-tnoiH", "state", "close-wait"]).stdout
    rows, current = [], None
    for line in out.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():  # a socket's first line: the timer
            current = bool(KEEPALIVE_RE.search(line))
            continue
        ack = LASTACK_RE.search(line)  # its tcp_info line
        rows.append((current, int(ack.group(1)) if ack else None))
    return rows


class KeepaliveRestart(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("real-kernel tests need root")
        self.dirs = [tempfile.mkdtemp(prefix="tcpstated-test-state-")
                     for _ in range(2)]

    def tearDown(self):
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)

    def scrape(self, d, ns):
        m = d.metrics()
        return {
            "count": m.total("tcpstated_close_wait_sockets", ns.inode),
            "leaked": m.total("tcpstated_close_wait_leaked_sockets",
                              ns.inode),
            "oldest": max([v for _, v in m.family(
                "tcpstated_close_wait_oldest_seconds", ns.inode)] or [0]),
            "lower_bound": m.total(LOWER_BOUND, ns.inode),
        }

    def test_close_wait_age_survives_keepalive_and_restart(self):
        n, port = 3, 7030
        with Netns("kaliv") as ns, Workload(ns) as w:
            w.do("listen", "l", "4", port)
            first = Daemon(extra_config=state_config(self.dirs[0]))
            first.__enter__()
            try:
                w.do("connectmany", "c", "4", port, n)
                w.do("acceptmany", "s", "l", n)
                for i in range(n):
                    # Go's default, shortened: a probe every second once
                    # the socket has been idle for one.
                    w.do("keepalive", "s%d" % i, 1, 1, 9)
                before_fin = time.monotonic()
                w.do("closemany", "c", n)
                for i in range(n):
                    w.do("waiteof", "s%d" % i)
                fin_between = (before_fin, time.monotonic())
                # Leaked past close_wait_leak_after, with probes answered
                # all along.
                time.sleep(LEAK_AFTER + 1.5)
                seen = poll(lambda: self.scrape(first, ns),
                            lambda v: v["leaked"] == n)
                self.assertEqual(seen["leaked"], n,
                                 "first daemon: %r%s" % (seen, log_tail(first)))
                self.assertEqual(seen["lower_bound"], 0, seen)
                code = first.stop()  # SIGTERM: the shutdown save
                self.assertEqual(code, 0, "first daemon's exit status")
            finally:
                first.stop()
            self.assertTrue(os.path.exists(
                os.path.join(self.dirs[0], "sockets.state")),
                os.listdir(self.dirs[0]))

            truth = close_wait_truth(ns)
            since_fin = time.monotonic() - fin_between[1]
            self.assertEqual(len(truth), n, truth)
            for keepalive, lastack in truth:
                # The keepalive ACKs reset tcpi_last_ack_recv: tcp_info
                # alone says the leak is at most about a second old.
                self.assertTrue(keepalive, truth)
                self.assertIsNotNone(lastack, truth)
                self.assertLess(lastack / 1000.0, since_fin - 1.0,
                                "no keepalive ACK since the FIN: %r" % truth)

            started = time.monotonic()
            with Daemon(extra_config=state_config(self.dirs[0])) as second:
                v = self.scrape(second, ns)
                scraped = time.monotonic()
                ctx = "\nfirst scrape after the restart: %r%s" % (
                    v, log_tail(second))
                self.assertEqual(v["count"], n, ctx)
                self.assertEqual(v["leaked"], n, ctx)
                self.assertEqual(v["lower_bound"], 0, ctx)
                # The age since the FINs, as of the seeding: not the
                # second or so tcp_info gives.
                self.assertGreaterEqual(v["oldest"],
                                        started - fin_between[1] - 0.05, ctx)
                self.assertLessEqual(v["oldest"],
                                     scraped - fin_between[0] + 0.05, ctx)
                # The file holds the host's other sockets too.
                taken = re.findall(r"state file: (\d+) of \d+ saved socket "
                                   r"ages taken back", second.log_text())
                self.assertTrue(taken and int(taken[0]) >= n, ctx)

            # The control: no saved age (a fresh directory). The same
            # sockets are reported with tcp_info's bound, and flagged.
            with Daemon(extra_config=state_config(self.dirs[1])) as third:
                v = self.scrape(third, ns)
                since_fin = time.monotonic() - fin_between[0]
                ctx = "\nwithout a state file: %r%s" % (v, log_tail(third))
                self.assertEqual(v["count"], n, ctx)
                self.assertEqual(v["lower_bound"], n, ctx)
                self.assertLess(v["oldest"], since_fin - 1.0, ctx)


if __name__ == "__main__":
    unittest.main()
