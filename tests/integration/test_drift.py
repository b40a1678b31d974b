"""The reconcile in proportion to drift: a drift the events cannot explain
is corrected within a few detector cycles, not after the safety interval.

The daemon runs with `reconcile_interval: 1h` (the full reconcile never
comes during the test). In the test's own namespace, tw_assassin.py leaves
three TIME_WAIT sockets and kills two of them with an in-window RST from
their peer: the kernel drops them without any tracepoint, so the mirror
keeps them (it would age them out only after 60 s). The check of the
namespace's sockstat totals against the mirror's sees a timewait too many
twice in a row and dumps that namespace alone: the mirror then equals
`ss`, a drift reconcile is counted, and the corrections name time_wait.
Every wait is a bounded poll.

TCPSTATED_ATTACH selects the attach mode (tp_btf or tracepoint); CTest runs
this file once per mode.
"""

import json
import os
import sys
import time
import unittest

from harness import Daemon, Netns
from test_detectors import poll

CONFIG = """tracking:
  reconcile_interval: 1h
"""

HERE = os.path.dirname(os.path.abspath(__file__))

# Detector cycles are 5 s: two checks to confirm, one cycle to dump, and
# slack for a loaded machine; far less than the 60 s after which the
# mirror would have aged the TIME_WAIT entries out on its own.
CORRECTED_WITHIN = 30


class Drift(unittest.TestCase):
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

    def test_time_wait_killed_by_rst_is_corrected_by_a_drift_reconcile(self):
        # A reconcile of everything after lost events (other daemons' storms
        # on a shared host can overflow this one's ring) would correct the
        # mirror too and prove nothing: then the scenario runs again.
        for _ in range(3):
            if self.run_scenario():
                return
        raise unittest.SkipTest("events were lost in every attempt: a "
                                "full reconcile corrected the mirror first")

    def run_scenario(self):
        """True once checked; False if a lost-events reconcile ran."""
        d = self.daemon
        sysctls = {"net.ipv4.tcp_rfc1337": "0"}
        with Netns("drift", sysctls) as ns:
            before = d.metrics()
            runs0 = before.get("tcpstated_reconcile_runs_total",
                               reason="drift")
            safety0 = before.get("tcpstated_reconcile_runs_total",
                                 reason="safety")
            lost0 = before.get("tcpstated_reconcile_runs_total",
                               reason="lost")
            out = ns.exec([sys.executable,
                           os.path.join(HERE, "tw_assassin.py"), "3", "2"])
            killed_at = time.monotonic()
            done = json.loads(out.stdout)
            ctx = " (%s)\n%s" % (done, d.log_text()[-2000:])
            # Ground truth: the kernel kept one of the three.
            self.assertEqual(ns.ss_counts()["time_wait"], 1, ctx)
            # The events alone leave all three in the mirror. In classic
            # tracepoint mode sockets are known by their kernel address,
            # which the slab hands from one closed client to the next: the
            # mirror may then hold fewer entries than connections made.
            m0 = poll(d.metrics,
                      lambda m: m.sockets(ns.inode)["time_wait"] >= 1)
            tw0 = m0.sockets(ns.inode)["time_wait"]
            if tw0 < 3 and os.environ.get("TCPSTATED_ATTACH") == "tracepoint":
                raise unittest.SkipTest(
                    "tracepoint mode: the mirror held %d of the 3 TIME_WAIT "
                    "sockets (kernel addresses reused)" % tw0)
            self.assertEqual(tw0, 3, "the events left " + ctx)
            # The run is counted at the end of its cycle, a moment after the
            # mirror is corrected: wait for both.
            m = poll(d.metrics,
                     lambda m: m.sockets(ns.inode)["time_wait"] == 1 and
                     m.get("tcpstated_reconcile_runs_total",
                           reason="drift") > runs0,
                     timeout=CORRECTED_WITHIN)
            took = time.monotonic() - killed_at
            ctx = " after %.1f s (%s)\n%s" % (took, done, d.log_text()[-2000:])
            if m.get("tcpstated_reconcile_runs_total", reason="lost") != lost0:
                return False
            self.assertEqual(m.sockets(ns.inode), ns.ss_counts(),
                             "mirror != ss" + ctx)
            self.assertLess(took, 60, "not before the mirror's own expiry"
                            + ctx)
            self.assertGreater(
                m.get("tcpstated_reconcile_runs_total", reason="drift"),
                runs0, "no drift reconcile" + ctx)
            self.assertEqual(
                m.get("tcpstated_reconcile_runs_total", reason="safety"),
                safety0, "a full reconcile ran" + ctx)
            self.assertGreaterEqual(
                m.get("tcpstated_reconcile_corrections_total",
                      state="time_wait"), 2, ctx)
            # And the totals agree again.
            m = poll(d.metrics,
                     lambda m: m.get("tcpstated_reconcile_drift_sockets",
                                     netns=str(ns.inode)) == 0,
                     timeout=15)
            self.assertEqual(
                m.get("tcpstated_reconcile_drift_sockets",
                      netns=str(ns.inode)), 0, "drift stays" + ctx)
            return True

if __name__ == "__main__":
    unittest.main()
