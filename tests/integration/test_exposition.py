"""The real daemon's HTTP endpoints, its exposition format (checked by
promtool on a real scrape), and its command-line failure modes."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from harness import Daemon, Netns, Workload, free_port


def tcpstated(*args, timeout=30):
    return subprocess.run([os.environ["TCPSTATED_BIN"], *args],
                          capture_output=True, text=True, timeout=timeout)


class Exposition(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("real-kernel tests need root")

    def test_promtool_accepts_a_real_scrape(self):
        with Daemon() as d, Netns("expo") as ns, Workload(ns) as w:
            w.do("listen", "l", "4", 0)
            w.do("lifecycles", "4", "l", 3, "client")
            text = d.get("/metrics")
            check = subprocess.run(["promtool", "check", "metrics"],
                                   input=text, capture_output=True,
                                   text=True, timeout=60)
            self.assertEqual(check.returncode, 0,
                             check.stdout + check.stderr)
            for family in ("tcpstated_sockets", "tcpstated_transitions_total",
                           "tcpstated_invalid_transitions_total",
                           "tcpstated_state_duration_seconds",
                           "tcpstated_events_total",
                           "tcpstated_events_lost_total",
                           "tcpstated_tracked_sockets",
                           "tcpstated_tracked_sockets_limit",
                           "tcpstated_evictions_total",
                           "tcpstated_build_info"):
                self.assertIn("# TYPE %s " % family, text)

    def test_endpoints(self):
        with Daemon() as d:
            self.assertEqual(d.get("/healthz").strip(), "ok")
            self.assertIn('href="/metrics"', d.get("/"))
            with self.assertRaises(urllib.error.HTTPError) as e:
                d.get("/nope")
            self.assertEqual(e.exception.code, 404)
            req = urllib.request.Request(
                "http://127.0.0.1:%d/metrics" % d.port, data=b"x",
                method="POST")
            with self.assertRaises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req, timeout=10)
            self.assertEqual(e.exception.code, 405)

    def test_custom_telemetry_path(self):
        with Daemon(args=["--web.telemetry-path", "/x/metrics"]) as d:
            self.assertIn("tcpstated_build_info", d.get("/x/metrics"))

    def test_sigterm_stops_cleanly_and_fast(self):
        d = Daemon().__enter__()
        start = time.monotonic()
        code = d.stop()
        self.assertEqual(code, 0)
        self.assertLess(time.monotonic() - start, 2.0)


class BadInput(unittest.TestCase):
    """One clear line, the right exit status, nothing started."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tcpstated-test-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def config(self, text):
        path = os.path.join(self.dir, "c.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def assert_fails(self, args, status, *needles):
        r = tcpstated(*args)
        self.assertEqual(r.returncode, status, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        for needle in needles:
            self.assertIn(needle, lines[0])

    def test_unknown_flag(self):
        self.assert_fails(["--no-such-flag"], 2, "--no-such-flag")

    def test_unknown_config_key(self):
        self.assert_fails(["--config.file", self.config("bpf:\n  foo: 1\n")],
                          2, "bpf.foo")

    def test_wrong_type(self):
        self.assert_fails(
            ["--config.file",
             self.config("tracking:\n  max_tracked_sockets: lots\n")],
            2, "tracking.max_tracked_sockets")

    def test_negative_duration(self):
        self.assert_fails(
            ["--config.file",
             self.config("tracking:\n  reconcile_interval: -5s\n")],
            2, "tracking.reconcile_interval")

    def test_ring_buffer_not_power_of_two(self):
        self.assert_fails(
            ["--config.file",
             self.config("bpf:\n  ring_buffer_bytes: 5000\n")],
            2, "bpf.ring_buffer_bytes")

    def test_missing_config_file(self):
        path = os.path.join(self.dir, "absent.yaml")
        self.assert_fails(["--config.file", path], 2, path)

    @unittest.skipIf(os.geteuid() != 0, "needs root")
    def test_port_in_use(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            address = "127.0.0.1:%d" % s.getsockname()[1]
            r = tcpstated("--web.listen-address", address)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(address, r.stderr)

    @unittest.skipIf(os.geteuid() != 0 or not shutil.which("setpriv"),
                     "needs root and setpriv")
    def test_no_capabilities(self):
        r = subprocess.run(
            ["setpriv", "--bounding-set=-all", "--inh-caps=-all",
             os.environ["TCPSTATED_BIN"],
             "--web.listen-address", "127.0.0.1:%d" % free_port()],
            capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("CAP_BPF", r.stderr)
        self.assertIn("CAP_PERFMON", r.stderr)

    def test_version_and_help(self):
        r = tcpstated("--version")
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("tcpstated "))
        r = tcpstated("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--web.listen-address", r.stdout)


if __name__ == "__main__":
    unittest.main()
