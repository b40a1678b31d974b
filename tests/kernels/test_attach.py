"""Which attach mode the running kernel gets, checked against what the
kernel matrix expects of it (tests/kernels/run sets the expectations):

  TCPSTATED_EXPECT_AUTO    the mode `bpf.attach: auto` must end up in
                           (tp_btf, or tracepoint where tp_btf cannot load)
  TCPSTATED_EXPECT_TP_BTF  "loads", or "refused": an explicit tp_btf is
                           refused at start-up with one error line and exit
                           status 1, as on 5.10 where the verifier rejects
                           bpf_get_socket_cookie in tracing programs

Runs the real daemon against the real kernel (root).
"""

import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))

from harness import Daemon, free_port  # noqa: E402


def expectation(name):
    value = os.environ.get(name)
    if not value:
        raise unittest.SkipTest("%s is not set (tests/kernels/run sets it)"
                                % name)
    return value


class Attach(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("real-kernel tests need root")

    def test_auto_picks_the_expected_mode(self):
        want = expectation("TCPSTATED_EXPECT_AUTO")
        with Daemon(attach="auto") as d:
            m = d.metrics()
            log = d.log_text()
        info = m.family("tcpstated_build_info")
        self.assertEqual(len(info), 1, info)
        self.assertEqual(info[0][0].get("attach"), want,
                         "auto chose %r on %s\n%s" %
                         (info[0][0].get("attach"), os.uname().release,
                          log[-3000:]))
        # What a dashboard reads to tell fleets apart.
        self.assertEqual(
            [labels for labels, _ in m.family("tcpstated_kernel_info")],
            [{"release": os.uname().release, "attach": want}])
        fell_back = "falling back to classic tracepoints" in log
        self.assertEqual(fell_back, want == "tracepoint",
                         "fallback warning present=%r\n%s" %
                         (fell_back, log[-3000:]))

    def test_rings(self):
        # One ring by default; with bpf.ring_buffers (tests/kernels/run sets
        # TCPSTATED_RING_BUFFERS=2 for the guests, which boot with two
        # CPUs) one per CPU up to that, so that the programs' path which
        # picks a ring from the array of rings is loaded and verified on
        # every kernel of the matrix. The scenarios then run through them.
        rings = int(os.environ.get("TCPSTATED_RING_BUFFERS") or 1)
        want = min(rings, os.cpu_count() or 1)
        for attach in ("auto", "tracepoint"):
            with Daemon(attach=attach) as d:
                d.metrics()
                log = d.log_text()
            self.assertIn("%d event ring(s)" % want, log,
                          "%s on %s\n%s" % (attach, os.uname().release,
                                             log[-3000:]))

    def test_explicit_tp_btf(self):
        want = expectation("TCPSTATED_EXPECT_TP_BTF")
        if want == "loads":
            with Daemon(attach="tp_btf") as d:
                info = d.metrics().family("tcpstated_build_info")
            self.assertEqual([i[0].get("attach") for i in info], ["tp_btf"])
            return
        # Refused: the daemon must stop at start-up, before serving, with
        # exit status 1 (a kernel that lacks something, not a bad
        # configuration) and a line that names the mode.
        with tempfile.TemporaryDirectory(prefix="tcpstated-test-") as tmp:
            config = os.path.join(tmp, "tcpstated.yaml")
            with open(config, "w") as f:
                f.write("bpf:\n  attach: tp_btf\n")
            try:
                proc = subprocess.run(
                    [os.environ["TCPSTATED_BIN"], "--config.file", config,
                     "--web.listen-address", "127.0.0.1:%d" % free_port()],
                    capture_output=True, text=True, timeout=60)
            except subprocess.TimeoutExpired as e:
                err = e.stderr or b""
                if isinstance(err, bytes):  # text=True is not applied here
                    err = err.decode(errors="replace")
                self.fail("tp_btf was not refused: the daemon still ran "
                          "after 60 s\n%s" % err[-3000:])
        out = proc.stdout + proc.stderr
        self.assertEqual(proc.returncode, 1, out[-3000:])
        errors = [l for l in out.splitlines() if "level=error" in l]
        self.assertEqual(len(errors), 1, out[-3000:])
        self.assertIn("tp_btf", errors[0])


if __name__ == "__main__":
    unittest.main()
