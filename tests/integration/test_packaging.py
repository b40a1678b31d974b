"""The packaging: the systemd unit (systemd-analyze verify and security, and a
real start where PID 1 is systemd), the Debian package built by CPack
(contents, conffiles, install, purge), the Kubernetes DaemonSet, and the
default configuration file run by the real daemon.

Environment:
  TCPSTATED_BIN        the built daemon (tests that run it skip without it)
  TCPSTATED_BUILD_DIR  the CMake build directory (the package tests skip
                       without it)
Tests that load BPF programs, install packages or start units need root and
skip otherwise. Standard library only; PyYAML is used when importable.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PACKAGING = os.path.join(ROOT, "packaging")
UNIT = os.path.join(PACKAGING, "systemd", "tcpstated.service")
CONFIG = os.path.join(PACKAGING, "tcpstated.yaml")
KUBERNETES = os.path.join(PACKAGING, "kubernetes")
DAEMONSET = os.path.join(KUBERNETES, "daemonset.yaml")
SERVICEMONITOR = os.path.join(KUBERNETES, "servicemonitor.yaml")
SCHEMA_CHECK = os.path.join(KUBERNETES, "schema-check")

# The minimal capability set, found by removing each capability in turn
# (see the comments in the unit). CAP_SYS_ADMIN also satisfies the kernel's
# bpf_capable()/perfmon_capable(), so CAP_BPF and CAP_PERFMON add nothing.
CAPABILITIES = {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"}
ADDRESS_FAMILIES = {"AF_UNIX", "AF_NETLINK", "AF_INET", "AF_INET6"}
MAX_EXPOSURE = 3.5
EXEC_START = "/usr/bin/tcpstated --config.file=/etc/tcpstated/tcpstated.yaml"

# Every key of SPEC.md's configuration block (and tracking.full_reconcile_interval
# and bpf.ring_buffers, issue 15), with its default as written.
DEFAULTS = {
    "web.listen_address": '":9640"',
    "web.telemetry_path": "/metrics",
    "web.config_file": '""',
    "web.debug_sockets": "false",
    "web.allowed_hosts": "[]",
    "log.level": "info",
    "log.format": "text",
    "bpf.attach": "auto",
    "bpf.ring_buffer_bytes": "4194304",
    "bpf.ring_buffers": "1",
    "tracking.max_tracked_sockets": "1000000",
    "tracking.reconcile_interval": "30s",
    "tracking.full_reconcile_interval": "10m",
    "tracking.max_series_per_metric": "50",
    "detectors.close_wait_leak_after": "60s",
    "detectors.syn_flood_half_open_ratio": "0.5",
    "detectors.synack_retransmit_rate": "100",
    "detectors.port_exhaustion_ratio": "0.8",
    "detectors.time_wait_buckets_ratio": "0.8",
    "detectors.connect_failure_rate": "1",
    "detectors.reset_rate": "10",
    "detectors.fin_wait2_stuck_after": "300s",
    "detectors.idle_after": "1h",
    "detectors.dead_peer_retries": "3",
    "state.directory": "/var/lib/tcpstated",
    "state.save_interval": "1m",
}

try:
    import yaml  # python3-yaml (scripts/dev); test_fields_parsed fails without
except ImportError:
    yaml = None


def run(cmd, timeout=120, **kw):
    return subprocess.run(cmd, capture_output=True, text=True,
                          timeout=timeout, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, timeout=5):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                timeout=timeout) as r:
        return r.status, r.read().decode()


def wait_healthy(port, proc=None, timeout=30):
    """Waits for /healthz 200; returns the last error text otherwise."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return "exited with %d" % proc.returncode
        try:
            status, _ = http_get(port, "/healthz")
            if status == 200:
                return None
            last = "status %d" % status
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            last = str(e)
        time.sleep(0.2)
    return last


def parse_unit(text):
    """{(section, key): [values]} of a unit file (no line continuations)."""
    out = {}
    section = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        out.setdefault((section, key.strip()), []).append(value.strip())
    return out


def yaml_keys(text, indent_step=2, base_indent=0):
    """Dotted keys and scalar values of a simple two-level YAML mapping
    (sections of scalars, as tcpstated's configuration is), comments
    stripped. {"web.listen_address": '":9640"', ...}"""
    keys = {}
    section = None
    for raw in text.splitlines():
        line = re.sub(r"\s+#.*$", "", raw.rstrip())
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        m = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*):\s*(.*)$", line)
        if not m:
            raise ValueError("unexpected YAML line: %r" % raw)
        if indent == base_indent:
            section = m.group(1)
            if m.group(2):
                raise ValueError("expected a section: %r" % raw)
        elif indent == base_indent + indent_step and section:
            keys[section + "." + m.group(1)] = m.group(2)
        else:
            raise ValueError("unexpected indentation: %r" % raw)
    return keys


def require_root(test):
    if os.geteuid() != 0:
        test.skipTest("needs root")


def require_bin(test):
    binary = os.environ.get("TCPSTATED_BIN")
    if not binary:
        test.skipTest("TCPSTATED_BIN is not set")
    return os.path.abspath(binary)


def unit_for(binary, exec_args="--config.file=/etc/tcpstated/tcpstated.yaml",
             extra_service_lines=()):
    """The packaged unit with ExecStart (and ExecReload's check) pointing
    at `binary`."""
    with open(UNIT) as f:
        text = f.read()
    text, n = re.subn(r"(?m)^ExecStart=.*$",
                      "ExecStart=%s %s" % (binary, exec_args), text)
    assert n == 1, "the unit has one ExecStart="
    # ExecReload= checks the file with the same binary.
    text, n = re.subn(r"(?m)^ExecReload=/usr/bin/tcpstated ",
                      "ExecReload=%s " % binary, text)
    assert n == 1, "the unit checks the file in one ExecReload="
    if extra_service_lines:
        text = text.replace("[Service]\n", "[Service]\n" +
                            "".join(l + "\n" for l in extra_service_lines), 1)
    return text


# ---------------------------------------------------------------------------
# (a) The unit file.

class UnitFile(unittest.TestCase):
    def setUp(self):
        with open(UNIT) as f:
            self.unit = parse_unit(f.read())

    def one(self, key, section="Service"):
        values = self.unit.get((section, key))
        self.assertIsNotNone(values, "%s= missing from [%s]" % (key, section))
        self.assertEqual(len(values), 1, "%s= set more than once" % key)
        return values[0]

    def test_service_directives(self):
        expected = {
            "Type": "notify",
            "NotifyAccess": "main",
            "ExecStart": EXEC_START,
            "WatchdogSec": "30s",
            "Restart": "on-failure",
            "RestartSec": "5s",
            "NoNewPrivileges": "yes",
            "ProtectSystem": "strict",
            "StateDirectory": "tcpstated",
            "ProtectHome": "yes",
            "PrivateTmp": "yes",
            "ProtectKernelTunables": "yes",
            "ProtectKernelModules": "yes",
            "ProtectKernelLogs": "yes",
            "ProtectControlGroups": "yes",
            "ProtectClock": "yes",
            "ProtectHostname": "yes",
            "RestrictNamespaces": "net",
            "LockPersonality": "yes",
            "MemoryDenyWriteExecute": "yes",
            "RestrictRealtime": "yes",
            "RestrictSUIDSGID": "yes",
            "SystemCallArchitectures": "native",
            "SystemCallErrorNumber": "EPERM",
            "MemoryMax": "512M",
            "UMask": "0077",
        }
        for key, value in expected.items():
            self.assertEqual(self.one(key), value, key)
        self.assertRegex(self.one("TasksMax"), r"^\d+$")
        self.assertEqual(self.one("WantedBy", "Install"), "multi-user.target")

    def test_reload_checks_the_file_before_the_signal(self):
        # systemd runs ExecReload= lines in order and stops at the first
        # that fails: an invalid file fails the reload and is never sent.
        config = EXEC_START.split(" ", 1)[1]
        self.assertEqual(self.unit.get(("Service", "ExecReload")),
                         ["/usr/bin/tcpstated --config.check " + config,
                          "/bin/kill -HUP $MAINPID"])

    def test_capabilities_are_exactly_the_minimal_set(self):
        self.assertEqual(set(self.one("CapabilityBoundingSet").split()),
                         CAPABILITIES)
        self.assertEqual(set(self.one("AmbientCapabilities").split()),
                         CAPABILITIES)

    def test_address_families(self):
        self.assertEqual(set(self.one("RestrictAddressFamilies").split()),
                         ADDRESS_FAMILIES)

    def test_system_call_filter(self):
        # An allow list first (it sets the default action to deny), then
        # removals (~) and additions, applied in order.
        lines = self.unit[("Service", "SystemCallFilter")]
        self.assertFalse(lines[0].startswith("~"), "first must allow-list")
        self.assertIn("@system-service", lines[0].split())
        allowed = set()
        for line in lines:
            if line.startswith("~"):
                allowed -= set(line[1:].split())
            else:
                allowed |= set(line.split())
        for call in ("bpf", "perf_event_open", "capset"):
            self.assertIn(call, allowed)
        self.assertIn("@system-service", allowed)  # setns via @process

    def test_verify_is_clean(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        binary = require_bin(self)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "tcpstated.service")
            with open(path, "w") as f:
                f.write(unit_for(binary))
            r = run(["systemd-analyze", "verify", path], cwd=d)
            ours = [l for l in (r.stdout + r.stderr).splitlines()
                    if "tcpstated" in l]
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(ours, [], r.stdout + r.stderr)

    def test_security_exposure(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        binary = os.path.abspath(os.environ.get("TCPSTATED_BIN") or
                                 "/bin/true")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "tcpstated.service")
            with open(path, "w") as f:
                f.write(unit_for(binary))
            r = run(["systemd-analyze", "security", "--offline=true",
                     "--no-pager", path], cwd=d)
            out = r.stdout + r.stderr
            m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)",
                          out)
            if m is None and "offline" in out.lower() and r.returncode != 0:
                self.skipTest("systemd-analyze has no --offline: " +
                              out.strip()[:200])
            self.assertIsNotNone(m, out)
            score = float(m.group(1))
            print("\nsystemd-analyze security exposure of tcpstated.service:"
                  " %.1f (limit %.1f)" % (score, MAX_EXPOSURE), flush=True)
            self.assertLessEqual(score, MAX_EXPOSURE, out)


# ---------------------------------------------------------------------------
# (b) The unit under the real systemd.

class UnitUnderSystemd(unittest.TestCase):
    def setUp(self):
        require_root(self)
        try:
            with open("/proc/1/comm") as f:
                pid1 = f.read().strip()
        except OSError as e:
            self.skipTest("cannot read /proc/1/comm: %s" % e)
        if pid1 != "systemd" or not os.path.isdir("/run/systemd/system"):
            self.skipTest("PID 1 is %r, not systemd" % pid1)
        self.binary = require_bin(self)

    def systemctl(self, *args, check=True):
        r = run(["systemctl", *args], timeout=120)
        if check:
            self.assertEqual(r.returncode, 0, "systemctl %s: %s%s" %
                             (" ".join(args), r.stdout, r.stderr))
        return r

    def test_start_healthz_stop(self):
        name = "tcpstated-test-%d" % os.getpid()
        unit_path = "/run/systemd/system/%s.service" % name
        # Under /run, not /tmp: PrivateTmp= gives the service its own /tmp.
        # World-readable: the service runs as a dynamic user.
        home = "/run/%s" % name
        port = free_port()
        try:
            os.makedirs(home, mode=0o755)
            os.chmod(home, 0o755)
            shutil.copy(self.binary, os.path.join(home, "tcpstated"))
            os.chmod(os.path.join(home, "tcpstated"), 0o755)
            shutil.copy(CONFIG, os.path.join(home, "tcpstated.yaml"))
            os.chmod(os.path.join(home, "tcpstated.yaml"), 0o644)
            with open(unit_path, "w") as f:
                f.write(unit_for(
                    os.path.join(home, "tcpstated"),
                    "--config.file=%s/tcpstated.yaml "
                    "--web.listen-address=127.0.0.1:%d" % (home, port),
                    # A sanitizer build's leak check needs ptrace, which the
                    # system call filter denies.
                    extra_service_lines=[
                        "Environment=ASAN_OPTIONS=detect_leaks=0"]))
            self.systemctl("daemon-reload")
            start = self.systemctl("start", name + ".service", check=False)
            logs = run(["journalctl", "-u", name + ".service", "--no-pager",
                        "-n", "30"]).stdout
            self.assertEqual(start.returncode, 0, start.stderr + logs)
            self.assertEqual(
                self.systemctl("is-active", name + ".service",
                               check=False).stdout.strip(), "active", logs)
            self.assertIsNone(wait_healthy(port, timeout=30), logs)
            status, text = http_get(port, "/metrics")
            self.assertEqual(status, 200)
            self.assertIn("tcpstated_build_info{", text)
            pid = self.systemctl("show", "-p", "MainPID", "--value",
                                 name + ".service").stdout.strip()
            with open("/proc/%s/status" % pid) as f:
                status_text = f.read()
            eff = int(re.search(r"CapEff:\s*([0-9a-f]+)", status_text)
                      .group(1), 16)
            allowed = (1 << 21) | (1 << 19) | (1 << 2)
            self.assertEqual(eff & ~allowed, 0,
                             "effective capabilities %x" % eff)
            self.systemctl("stop", name + ".service")
            result = self.systemctl("show", "-p", "Result", "--value",
                                    name + ".service").stdout.strip()
            self.assertEqual(result, "success")
        finally:
            run(["systemctl", "stop", name + ".service"])
            if os.path.exists(unit_path):
                os.unlink(unit_path)
            run(["systemctl", "daemon-reload"])
            run(["systemctl", "reset-failed", name + ".service"])
            shutil.rmtree(home, ignore_errors=True)


# ---------------------------------------------------------------------------
# (c) The Debian package.

class DebianPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.build_dir = os.environ.get("TCPSTATED_BUILD_DIR")
        if not cls.build_dir:
            raise unittest.SkipTest("TCPSTATED_BUILD_DIR is not set")
        for tool in ("cpack", "dpkg-deb", "dpkg"):
            if not shutil.which(tool):
                raise unittest.SkipTest("%s is not installed" % tool)
        cpack_config = os.path.join(cls.build_dir, "CPackConfig.cmake")
        if not os.path.exists(cpack_config):
            raise unittest.SkipTest(
                "%s does not exist: the top-level CMakeLists.txt does not "
                "include packaging/cpack.cmake" % cpack_config)
        # The package and CPack's staging go to a temporary directory, not
        # into the build directory.
        cls.out = tempfile.mkdtemp(prefix="tcpstated-cpack-")
        r = run(["cpack", "-G", "DEB", "--config", cpack_config,
                 "-B", cls.out], cwd=cls.build_dir, timeout=600)
        debs = [f for f in os.listdir(cls.out) if f.endswith(".deb")]
        if r.returncode != 0 or len(debs) != 1:
            shutil.rmtree(cls.out, True)
            raise AssertionError("cpack -G DEB failed (%d):\n%s%s" %
                                 (r.returncode, r.stdout, r.stderr))
        cls.deb = os.path.join(cls.out, debs[0])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.out, True)

    def contents(self):
        r = run(["dpkg-deb", "-c", self.deb])
        self.assertEqual(r.returncode, 0, r.stderr)
        paths = {}
        for line in r.stdout.splitlines():
            fields = line.split()
            path = fields[5].lstrip(".")  # perms owner size date time path
            paths[path.rstrip("/") or "/"] = (fields[0], fields[1])
        return paths

    def test_contents_and_control(self):
        paths = self.contents()
        self.assertEqual(paths.get("/usr/bin/tcpstated"),
                         ("-rwxr-xr-x", "root/root"))
        unit = [p for p in ("/lib/systemd/system/tcpstated.service",
                            "/usr/lib/systemd/system/tcpstated.service")
                if p in paths]
        self.assertEqual(len(unit), 1, sorted(paths))
        self.assertEqual(paths.get("/etc/tcpstated/tcpstated.yaml"),
                         ("-rw-r--r--", "root/root"))
        self.assertIn("/usr/share/tcpstated/dashboards", paths)
        # Whatever dashboards and rules the source tree has are shipped
        # (their tests are not).
        dashboards = os.path.join(ROOT, "dashboards")
        if os.path.isdir(dashboards):
            for f in os.listdir(dashboards):
                if f.endswith((".json", ".yaml")):
                    self.assertIn("/usr/share/tcpstated/dashboards/" + f,
                                  paths)
        self.assertFalse([p for p in paths if "/dashboards/tests" in p])
        self.assertFalse([p for p in paths if "/dashboards/mixin" in p])
        # Debian policy's documentation, and the runbooks the alerts link.
        for doc in ("/usr/share/doc/tcpstated/copyright",
                    "/usr/share/doc/tcpstated/changelog.Debian.gz",
                    "/usr/share/doc/tcpstated/runbooks.md",
                    "/usr/share/man/man1/tcpstated.1.gz"):
            self.assertEqual(paths.get(doc), ("-rw-r--r--", "root/root"), doc)

        control = tempfile.mkdtemp(prefix="tcpstated-control-")
        self.addCleanup(shutil.rmtree, control, True)
        r = run(["dpkg-deb", "-e", self.deb, control])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(control, "conffiles")) as f:
            self.assertIn("/etc/tcpstated/tcpstated.yaml",
                          f.read().split())
        with open(os.path.join(control, "control")) as f:
            fields = dict(re.findall(r"(?m)^([A-Za-z-]+): (.*)$", f.read()))
        self.assertEqual(fields.get("Package"), "tcpstated")
        self.assertIn("libbpf1", fields.get("Depends", ""))
        # A real maintainer: the project's git identity, not a placeholder.
        self.assertRegex(fields.get("Maintainer", ""), r"^[^<>]+ <[^@<>\s]+@[^@<>\s]+>$")
        self.assertNotIn(".invalid", fields["Maintainer"])
        identity = run(["git", "-C", ROOT, "config", "user.email"]).stdout.strip()
        if identity:
            self.assertIn("<%s>" % identity, fields["Maintainer"])
        # The helpers, not systemctl, start and stop the unit.
        for script in ("postinst", "prerm"):
            with open(os.path.join(control, script)) as f:
                text = f.read()
            self.assertIn("deb-systemd-invoke", text, script)
            calls = [l for l in text.splitlines()
                     if re.match(r"^(?:.+;)?\s*systemctl\b", l)
                     and "daemon-reload" not in l]
            self.assertEqual(calls, [], script)
        for script in ("postinst", "prerm", "postrm"):
            mode = os.stat(os.path.join(control, script)).st_mode
            self.assertTrue(mode & 0o111, script + " is not executable")

    def test_lintian_clean(self):
        """No error or warning at lintian's default level."""
        lintian = shutil.which("lintian")
        self.assertIsNotNone(lintian, "lintian not found: scripts/dev deps")
        r = run([lintian, "--fail-on", "error,warning", self.deb], timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotRegex(r.stdout, r"(?m)^[EW]: ", r.stdout)
        # The hardening flags from dpkg-buildflags reached the binary.
        r = run([lintian, "-I", "--tags", "hardening-no-bindnow,"
                 "hardening-no-fortify-functions,hardening-no-relro",
                 self.deb], timeout=600)
        self.assertNotIn("hardening-no", r.stdout, r.stdout)

    def test_man_page_is_the_help(self):
        d = tempfile.mkdtemp(prefix="tcpstated-deb-")
        self.addCleanup(shutil.rmtree, d, True)
        r = run(["dpkg-deb", "-x", self.deb, d])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(["sh", "-c", "gzip -dc %s/usr/share/man/man1/tcpstated.1.gz"
                 % d])
        self.assertEqual(r.returncode, 0, r.stderr)
        page = r.stdout.replace("\\-", "-").replace("\\fB", "").replace(
            "\\fR", "")
        self.assertIn(".TH TCPSTATED", r.stdout)
        for flag in ("--web.listen-address", "--web.telemetry-path",
                     "--config.file", "--log.level", "--version"):
            self.assertIn(flag, page)

    def test_install_and_purge(self):
        require_root(self)
        if run(["dpkg-query", "-W", "-f=${Status}", "tcpstated"]
               ).stdout.endswith("installed"):
            self.skipTest("a tcpstated package is already installed here; "
                          "not replacing it")
        try:
            r = run(["dpkg", "-i", self.deb], timeout=300)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            r = run(["/usr/bin/tcpstated", "--version"])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(
                r.stdout, r"^tcpstated version \d+\.\d+\.\d+ \(revision: "
                r"[0-9a-f]{12}\)\n  build date:  \d{4}-\d\d-\d\dT[0-9:]{8}Z\n"
                r"  libbpf:      \d+\.\d+", r.stdout)
            for doc in ("copyright", "runbooks.md", "changelog.Debian.gz"):
                self.assertTrue(os.path.exists(
                    "/usr/share/doc/tcpstated/" + doc), doc)
            with open("/etc/tcpstated/tcpstated.yaml") as a, \
                    open(CONFIG) as b:
                self.assertEqual(a.read(), b.read())
            unit = ("/lib/systemd/system/tcpstated.service"
                    if os.path.exists("/lib/systemd/system/tcpstated.service")
                    else "/usr/lib/systemd/system/tcpstated.service")
            with open(unit) as a, open(UNIT) as b:
                self.assertEqual(a.read(), b.read())
            self.check_config_check()
        finally:
            r = run(["dpkg", "-P", "tcpstated"], timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for path in ("/usr/bin/tcpstated", "/etc/tcpstated/tcpstated.yaml",
                     "/lib/systemd/system/tcpstated.service",
                     "/usr/share/tcpstated"):
            self.assertFalse(os.path.exists(path), path + " left behind")

    def check_config_check(self):
        # The installed binary accepts the shipped file as the unit's
        # ExecReload= runs it.
        r = run(["/usr/bin/tcpstated", "--config.check", "--config.file",
                 "/etc/tcpstated/tcpstated.yaml"], timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "tcpstated: configuration OK\n")


# ---------------------------------------------------------------------------
# (d) The Kubernetes DaemonSet.

class KubernetesDaemonSet(unittest.TestCase):
    CAPS = {c[len("CAP_"):] for c in CAPABILITIES}

    def setUp(self):
        with open(DAEMONSET) as f:
            self.text = f.read()

    def configmap_yaml(self):
        """The tcpstated.yaml block of the ConfigMap, dedented."""
        m = re.search(r"(?m)^(\s*)tcpstated\.yaml: \|\n((?:\1\s+.*\n|\s*\n)+)",
                      self.text)
        self.assertIsNotNone(m, "ConfigMap has no tcpstated.yaml block")
        lines = m.group(2).splitlines()
        indent = min(len(l) - len(l.lstrip()) for l in lines if l.strip())
        return "\n".join(l[indent:] for l in lines) + "\n"

    def test_fields_by_pattern(self):
        t = self.text
        for kind in ("ServiceAccount", "ConfigMap", "DaemonSet"):
            self.assertRegex(t, r"(?m)^kind: %s$" % kind)
        self.assertEqual(len(re.findall(r"(?m)^  namespace: monitoring$", t)),
                         3)
        for pattern in (r"hostPID: true", r"hostNetwork: true",
                        r"dnsPolicy: ClusterFirstWithHostNet",
                        r"privileged: false",
                        r"allowPrivilegeEscalation: false",
                        r"readOnlyRootFilesystem: true",
                        r"drop: \[ALL\]",
                        r"mountPath: /sys/kernel/btf\n\s+readOnly: true",
                        r"mountPath: /run/netns\n\s+readOnly: true\n\s+"
                        r"mountPropagation: HostToContainer",
                        r"livenessProbe:\n\s+httpGet:\n\s+path: /healthz",
                        r"readinessProbe:\n\s+httpGet:\n\s+path: /healthz",
                        r"- name: metrics\n\s+containerPort: 9640",
                        r'prometheus\.io/scrape: "true"',
                        r'prometheus\.io/port: "9640"',
                        r"tolerations:\n\s+- operator: Exists",
                        r"nodeSelector:\n\s+kubernetes\.io/os: linux",
                        r"appArmorProfile:\n\s+type: Unconfined",
                        r"image: \S+"):
            self.assertRegex(t, pattern)
        # The field, not the beta annotation it replaces.
        self.assertNotRegex(t, r"(?m)^\s+container\.apparmor\.security")
        m = re.search(r"add: \[([^\]]*)\]", t)
        self.assertIsNotNone(m)
        self.assertEqual({c.strip() for c in m.group(1).split(",")},
                         self.CAPS)

    def test_fields_parsed(self):
        if yaml is None:
            self.fail("PyYAML is not installed (python3-yaml, scripts/dev)")
        docs = {d["kind"]: d for d in yaml.safe_load_all(self.text) if d}
        self.assertEqual(set(docs), {"ServiceAccount", "ConfigMap",
                                     "DaemonSet"})
        for d in docs.values():
            self.assertEqual(d["metadata"]["namespace"], "monitoring")
        ds = docs["DaemonSet"]
        pod = ds["spec"]["template"]["spec"]
        self.assertEqual(ds["spec"]["selector"]["matchLabels"],
                         {k: v for k, v in
                          ds["spec"]["template"]["metadata"]["labels"].items()
                          if k in ds["spec"]["selector"]["matchLabels"]})
        self.assertIs(pod["hostPID"], True)
        self.assertIs(pod["hostNetwork"], True)
        self.assertEqual(pod["dnsPolicy"], "ClusterFirstWithHostNet")
        self.assertEqual(pod["serviceAccountName"],
                         docs["ServiceAccount"]["metadata"]["name"])
        self.assertIn({"operator": "Exists"}, pod["tolerations"])
        ann = ds["spec"]["template"]["metadata"]["annotations"]
        self.assertEqual(ann["prometheus.io/scrape"], "true")
        self.assertEqual(ann["prometheus.io/port"], "9640")
        (c,) = pod["containers"]
        sc = c["securityContext"]
        self.assertIs(sc["privileged"], False)
        self.assertIs(sc["readOnlyRootFilesystem"], True)
        self.assertIs(sc["allowPrivilegeEscalation"], False)
        self.assertEqual(set(sc["capabilities"]["add"]), self.CAPS)
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        self.assertIn({"name": "metrics", "containerPort": 9640,
                       "protocol": "TCP"}, c["ports"])
        for probe in ("livenessProbe", "readinessProbe"):
            self.assertEqual(c[probe]["httpGet"]["path"], "/healthz")
            self.assertEqual(c[probe]["httpGet"]["port"], "metrics")
        self.assertIn("memory", c["resources"]["limits"])
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        self.assertIs(mounts["/sys/kernel/btf"]["readOnly"], True)
        self.assertEqual(mounts["/run/netns"]["mountPropagation"],
                         "HostToContainer")
        volumes = {v["name"]: v for v in pod["volumes"]}
        for m in c["volumeMounts"]:
            self.assertIn(m["name"], volumes)
        self.assertEqual(volumes["config"]["configMap"]["name"],
                         docs["ConfigMap"]["metadata"]["name"])
        self.assertIn("--config.file=%s/tcpstated.yaml" %
                      mounts["/etc/tcpstated"]["mountPath"], c["args"])
        self.assertEqual(yaml.safe_load(docs["ConfigMap"]["data"]
                                        ["tcpstated.yaml"]),
                         yaml.safe_load(self.configmap_yaml()))

    def test_configmap_has_every_key(self):
        self.assertEqual(set(yaml_keys(self.configmap_yaml())),
                         set(DEFAULTS))

    def test_configmap_config_runs(self):
        require_root(self)
        binary = require_bin(self)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "tcpstated.yaml")
            with open(path, "w") as f:
                f.write(self.configmap_yaml())
            run_daemon(self, binary, path)


class KubernetesManifests(unittest.TestCase):
    """Every manifest under packaging/kubernetes/ against the Kubernetes and
    Prometheus Operator schemas (kubernetes-models, installed by
    scripts/dev deps with npm), without a cluster."""

    def validate(self, *files):
        node = shutil.which("node")
        self.assertIsNotNone(node, "node not found: scripts/dev deps")
        self.assertTrue(
            os.path.isdir(os.path.join(SCHEMA_CHECK, "node_modules")),
            "schema-check packages missing: scripts/dev deps (npm ci "
            "--prefix packaging/kubernetes/schema-check)")
        return run([node, os.path.join(SCHEMA_CHECK, "validate.mjs")]
                   + list(files), timeout=120)

    def manifests(self):
        return sorted(os.path.join(KUBERNETES, f)
                      for f in os.listdir(KUBERNETES) if f.endswith(".yaml"))

    def test_manifests_validate(self):
        files = self.manifests()
        self.assertEqual({os.path.basename(f) for f in files},
                         {"daemonset.yaml", "servicemonitor.yaml",
                          "prometheusrule.yaml"})
        r = self.validate(*files)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_validator_rejects_mistakes(self):
        with open(DAEMONSET) as f:
            daemonset = f.read()
        with open(SERVICEMONITOR) as f:
            monitor = f.read()
        broken = {
            "type": daemonset.replace("hostPID: true", 'hostPID: "yes"'),
            "enum": daemonset.replace("type: Unconfined", "type: Lax"),
            "crd": monitor.replace("port: metrics\n      path",
                                   "port: [metrics]\n      path"),
            "kind": monitor.replace("kind: ServiceMonitor",
                                    "kind: ServiceMonitr"),
        }
        with tempfile.TemporaryDirectory(prefix="tcpstated-test-") as d:
            for name, text in broken.items():
                self.assertNotEqual(text, daemonset if name in ("type", "enum")
                                    else monitor, name)
                path = os.path.join(d, name + ".yaml")
                with open(path, "w") as f:
                    f.write(text)
                r = self.validate(path)
                self.assertEqual(r.returncode, 1, name + ": " + r.stdout)
                self.assertIn(path, r.stdout, name)

    def test_service_monitor_finds_the_daemonset(self):
        with open(SERVICEMONITOR) as f:
            t = f.read()
        with open(DAEMONSET) as f:
            ds = f.read()
        label = "app.kubernetes.io/name: tcpstated"
        # The Service selects the DaemonSet's pods, the ServiceMonitor the
        # Service, by the same label; the port is the container's "metrics".
        self.assertIn("      " + label, ds)
        self.assertRegex(t, r"(?m)^  selector:\n    %s$" % re.escape(label))
        self.assertRegex(t, r"matchLabels:\n\s+%s" % re.escape(label))
        self.assertRegex(t, r"targetPort: metrics")
        self.assertRegex(t, r"- port: metrics\n\s+path: /metrics")
        self.assertRegex(t, r"clusterIP: None")
        self.assertEqual(len(re.findall(r"(?m)^  namespace: monitoring$", t)),
                         2)


# ---------------------------------------------------------------------------
# (e) The default configuration file.

def run_daemon(test, binary, config):
    """Starts the daemon with `config` on a free loopback port, checks
    /healthz and /metrics, stops it with SIGTERM and expects status 0."""
    port = free_port()
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(
            [binary, "--config.file", config,
             "--web.listen-address", "127.0.0.1:%d" % port],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            error = wait_healthy(port, proc, timeout=30)
            log.seek(0)
            test.assertIsNone(error, log.read())
            status, text = http_get(port, "/metrics")
            test.assertEqual(status, 200)
            test.assertIn("tcpstated_build_info{", text)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=15)
            log.seek(0)
            test.assertEqual(code, 0, log.read())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


class DefaultConfig(unittest.TestCase):
    def setUp(self):
        with open(CONFIG) as f:
            self.text = f.read()

    def test_every_key_with_its_default(self):
        self.assertEqual(yaml_keys(self.text), DEFAULTS)

    def test_every_key_is_explained(self):
        # A comment right above each key (or its section's first key).
        lines = self.text.splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"^  ([a-z_]+):", line)
            if m:
                above = lines[i - 1].strip()
                self.assertTrue(above.startswith("#"),
                                "%s has no comment above it" % m.group(1))

    def test_daemon_runs_with_it(self):
        require_root(self)
        run_daemon(self, require_bin(self), CONFIG)


if __name__ == "__main__":
    unittest.main()
