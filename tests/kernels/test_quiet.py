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
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))

from harness import Daemon, Netns, Workload  # noqa: E402
from test_detectors import make_server_leak  # noqa: E402

RESYNCS = "tcpstated_mirror_resyncs_total"


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


if __name__ == "__main__":
    unittest.main()
