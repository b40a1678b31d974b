"""The real daemon's HTTP endpoints, its exposition format (checked by
promtool on a real scrape), and its command-line failure modes."""

import json
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
                           "tcpstated_events_missed_total",
                           "tcpstated_tracked_sockets",
                           "tcpstated_tracked_sockets_limit",
                           "tcpstated_evictions_total",
                           "tcpstated_build_info"):
                self.assertIn("# TYPE %s " % family, text)

    def test_kernel_info_names_the_running_kernel_and_mode(self):
        for mode in ("tp_btf", "tracepoint"):
            with self.subTest(mode=mode), Daemon(attach=mode) as d:
                text = d.get("/metrics")
                line = 'tcpstated_kernel_info{release="%s",attach="%s"} 1' % (
                    os.uname().release, mode)
                self.assertIn(line, text.splitlines())

    def test_endpoints(self):
        with Daemon() as d:
            self.assertEqual(d.get("/healthz").strip(), "ok")
            self.assertIn('<svg id="diagram"', d.get("/"))
            self.assertIn("/api/v1/state", d.get("/ui/app.js"))
            self.assertIn("--invalid", d.get("/ui/app.css"))
            state = json.loads(d.get("/api/v1/state"))
            self.assertEqual(state["api_version"], 1)
            self.assertIn("host", [n["name"] for n in state["namespaces"]])
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

    # (name, flags, config file text or None, exit status, words the line
    # must contain). "{config}" in flags is the written config file,
    # "{dir}" the test's temporary directory.
    CASES = [
        ("unknown flag", ["--no-such-flag"], None, 2, ["--no-such-flag"]),
        ("malformed flag value", ["--log.level=loud"], None, 2,
         ["--log.level", "loud"]),
        ("flag without its value", ["--web.listen-address"], None, 2,
         ["--web.listen-address"]),
        ("positional argument", ["surprise"], None, 2, ["surprise"]),
        ("unparseable listen address", ["--web.listen-address=nowhere"],
         None, 2, ["--web.listen-address", "nowhere"]),
        ("bad listen port", ["--web.listen-address=:99999"], None, 2,
         ["--web.listen-address", "99999"]),
        ("missing config file", ["--config.file", "{dir}/absent.yaml"], None,
         2, ["absent.yaml"]),
        ("config file is a directory", ["--config.file", "{dir}"], None, 2,
         ["config"]),
        ("not YAML", ["--config.file", "{config}"], "bpf: [1, 2\n", 2,
         ["YAML"]),
        ("not a mapping", ["--config.file", "{config}"], "- just\n- a list\n",
         2, ["config"]),
        ("stuck YAML parser", ["--config.file", "{config}"], ",", 2,
         ["config"]),
        ("unknown key", ["--config.file", "{config}"], "bpf:\n  foo: 1\n", 2,
         ["bpf.foo"]),
        ("wrong type", ["--config.file", "{config}"],
         "tracking:\n  max_tracked_sockets: lots\n", 2,
         ["tracking.max_tracked_sockets"]),
        ("negative duration", ["--config.file", "{config}"],
         "tracking:\n  reconcile_interval: -5s\n", 2,
         ["tracking.reconcile_interval"]),
        ("zero duration", ["--config.file", "{config}"],
         "detectors:\n  close_wait_leak_after: 0s\n", 2,
         ["detectors.close_wait_leak_after"]),
        ("ratio above 1", ["--config.file", "{config}"],
         "detectors:\n  port_exhaustion_ratio: 1.5\n", 2,
         ["detectors.port_exhaustion_ratio"]),
        ("ratio of 0", ["--config.file", "{config}"],
         "detectors:\n  syn_flood_half_open_ratio: 0\n", 2,
         ["detectors.syn_flood_half_open_ratio"]),
        ("ring buffer not a power of two", ["--config.file", "{config}"],
         "bpf:\n  ring_buffer_bytes: 5000\n", 2, ["bpf.ring_buffer_bytes"]),
        ("ring buffer too small", ["--config.file", "{config}"],
         "bpf:\n  ring_buffer_bytes: 2048\n", 2, ["bpf.ring_buffer_bytes"]),
        ("unknown attach mode", ["--config.file", "{config}"],
         "bpf:\n  attach: kprobe\n", 2, ["bpf.attach"]),
    ]

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tcpstated-test-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def config(self, text):
        path = os.path.join(self.dir, "c.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def assert_fails(self, args, status, *needles, wrapper=()):
        # Unless the case is about the listen address, listen on a free
        # loopback port: a daemon wrongly started must not clash or be seen.
        if not any(a.startswith("--web.listen-address") for a in args):
            args = list(args) + [
                "--web.listen-address=127.0.0.1:%d" % free_port()]
        r = subprocess.run([*wrapper, os.environ["TCPSTATED_BIN"], *args],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, status, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        for needle in needles:
            self.assertIn(needle, lines[0])

    def test_table(self):
        self.assertGreaterEqual(len(self.CASES), 15)
        for name, flags, text, status, needles in self.CASES:
            with self.subTest(name):
                path = self.config(text) if text is not None else ""
                args = [a.replace("{config}", path).replace("{dir}", self.dir)
                        for a in flags]
                self.assert_fails(args, status, *needles)

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

    def hide(self, *paths):
        """Runs the daemon in a private mount namespace where `paths` are
        covered by empty directories: the machine's own mounts are untouched.
        """
        if os.geteuid() != 0 or not shutil.which("unshare"):
            self.skipTest("needs root and unshare")
        script = "".join("mount -t tmpfs none %s && " % p for p in paths)
        return ("unshare", "-m", "--propagation", "private", "sh", "-c",
                script + 'exec "$0" "$@"')

    def test_no_btf(self):
        wrapper = self.hide("/sys/kernel/btf")
        self.assert_fails([], 1, "BTF", "CONFIG_DEBUG_INFO_BTF",
                          wrapper=wrapper)

    def test_no_tracefs_for_classic_tracepoints(self):
        wrapper = self.hide("/sys/kernel/tracing", "/sys/kernel/debug")
        self.assert_fails(["--config.file", self.config(
            "bpf:\n  attach: tracepoint\n")], 1, "tracefs",
            "mount -t tracefs", wrapper=wrapper)

    def test_version_and_help(self):
        r = tcpstated("--version")
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("tcpstated "))
        r = tcpstated("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--web.listen-address", r.stdout)


if __name__ == "__main__":
    unittest.main()
