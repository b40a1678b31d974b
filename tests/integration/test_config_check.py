"""tcpstated --config.check, the binary itself: a valid configuration exits
0, an invalid file or flag exits 2 with one line naming the problem, and
the check loads no BPF and binds no socket, so it runs unprivileged and
while the running daemon holds the listen address (the packaged unit's
ExecReload= runs it before the SIGHUP; tests/kernels/systemd_checks.py
shows that under a real systemd).
"""

import os
import shutil
import socket
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGED = os.path.join(HERE, "..", "..", "packaging", "tcpstated.yaml")
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
          "--inh-caps=-all", "--bounding-set=-all"]


class ConfigCheck(unittest.TestCase):
    def setUp(self):
        self.binary = os.path.abspath(os.environ["TCPSTATED_BIN"])
        self.dir = tempfile.mkdtemp(prefix="tcpstated-config-check-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        # Readable by the unprivileged user the checks run as.
        os.chmod(self.dir, 0o755)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def check(self, *args, unprivileged=True):
        prefix = NOBODY if unprivileged and os.geteuid() == 0 else []
        return subprocess.run(
            prefix + [self.binary, "--config.check"] + list(args),
            capture_output=True, text=True, timeout=60,
            env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))

    def assert_refused(self, r, *words):
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        for word in words:
            self.assertIn(word, lines[0])

    def test_packaged_file_passes_without_privilege(self):
        # Loading a BPF program needs CAP_BPF or CAP_SYS_ADMIN: with no
        # capability at all, only a check that loads none can pass.
        if os.geteuid() != 0:
            self.skipTest("needs root to drop to an unprivileged user")
        with open(PACKAGED) as f:
            path = self.write("ok.yaml", f.read())
        r = self.check("--config.file", path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "tcpstated: configuration OK\n")

    def test_listen_address_in_use_passes(self):
        # The running daemon holds its address while a reload checks the
        # file: binding it would fail every reload.
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            held.listen(1)
            port = held.getsockname()[1]
            path = self.write("held.yaml", 'web:\n  listen_address: '
                              '"127.0.0.1:%d"\n' % port)
            r = self.check("--config.file", path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_invalid_value_is_one_line_naming_the_key(self):
        path = self.write("bad.yaml",
                          "detectors:\n  close_wait_leak_after: soon\n")
        self.assert_refused(self.check("--config.file", path),
                            "detectors.close_wait_leak_after")

    def test_invalid_flag_over_a_valid_file_is_refused(self):
        path = self.write("ok.yaml", "log:\n  level: info\n")
        self.assert_refused(self.check("--config.file", path,
                                       "--log.level=loud"), "--log.level")

    def test_unreadable_web_config_names_the_file(self):
        web = os.path.join(self.dir, "web.yml")  # never written
        path = self.write("web.yaml", 'web:\n  config_file: "%s"\n' % web)
        self.assert_refused(self.check("--config.file", path), web)

    def test_tls_key_that_does_not_match_names_the_key(self):
        for name in ("a", "b"):
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                 "-subj", "/CN=localhost", "-days", "1",
                 "-keyout", os.path.join(self.dir, name + ".key"),
                 "-out", os.path.join(self.dir, name + ".crt")],
                check=True, capture_output=True, timeout=60)
            os.chmod(os.path.join(self.dir, name + ".key"), 0o644)
        web = self.write("web.yml", "tls_server_config:\n"
                         "  cert_file: a.crt\n  key_file: b.key\n")
        path = self.write("tls.yaml", 'web:\n  config_file: "%s"\n' % web)
        self.assert_refused(self.check("--config.file", path),
                            os.path.join(self.dir, "b.key"))
        web = self.write("web.yml", "tls_server_config:\n"
                         "  cert_file: a.crt\n  key_file: a.key\n")
        r = self.check("--config.file", path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
