"""The real daemon's HTTP endpoint: privileges of its threads, start-up
order, /debug/sockets exposure and JSON, SIGHUP reload of the web config.

The attacks themselves (stalled clients, floods, wrong passwords) are
reproduced against the server on loopback by tests/unit/http_attack_test.cpp;
this file checks what only the whole daemon can show.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import warnings

from harness import Daemon, Netns, free_port, run

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # bcrypt through the system's libxcrypt, as the daemon

DEADLINE = 10  # seconds, for every wait below


def bcrypt(password):
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH,
                                              rounds=16))


def thread_status(pid):
    """{tid: (comm, {field: value})} for every thread of `pid`."""
    threads = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        base = "/proc/%d/task/%s/" % (pid, tid)
        try:
            with open(base + "comm") as f:
                comm = f.read().strip()
            with open(base + "status") as f:
                fields = dict(line.rstrip("\n").split(":\t", 1)
                              for line in f if ":\t" in line)
        except FileNotFoundError:
            continue  # the thread ended meanwhile
        threads[int(tid)] = (comm, fields)
    return threads


def status_of(daemon, path, auth=None):
    saved = daemon.auth
    daemon.auth = auth
    try:
        daemon.get(path)
        return 200
    except urllib.error.HTTPError as e:
        return e.code
    finally:
        daemon.auth = saved


class Base(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("real-kernel tests need root")


class Privileges(Base):
    def test_http_threads_hold_no_capability(self):
        with Daemon() as d:
            d.get("/metrics")  # every thread has started and served
            threads = thread_status(d.proc.pid)
        http = {t: s for t, s in threads.items()
                if s[0].startswith("http-")}
        self.assertEqual(sorted(c for c, _ in http.values()),
                         ["http-auth", "http-loop"] + ["http-worker"] * 4)
        for tid, (comm, fields) in http.items():
            self.assertEqual(fields["CapEff"], "0000000000000000", comm)
            self.assertEqual(fields["CapPrm"], "0000000000000000", comm)
            self.assertEqual(fields["NoNewPrivs"], "1", comm)
        # The counters are read by a thread that kept what the daemon keeps
        # (CAP_SYS_ADMIN among them): not empty, so the split is real.
        privileged = [s for s in threads.values() if s[0] == "privileged"]
        self.assertEqual(len(privileged), 1)
        self.assertNotEqual(privileged[0][1]["CapEff"], "0000000000000000")


class StartUp(Base):
    def test_port_in_use_fails_before_any_bpf_is_loaded(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            start = time.monotonic()
            r = subprocess.run(
                [os.environ["TCPSTATED_BIN"], "--web.listen-address",
                 "127.0.0.1:%d" % port, "--log.level", "debug"],
                capture_output=True, text=True, timeout=30)
            took = time.monotonic() - start
        self.assertEqual(r.returncode, 1, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("cannot listen on 127.0.0.1:%d: Address already in use"
                      % port, lines[0])
        # Loading and attaching would have logged this at info level.
        self.assertNotIn("attached BPF programs", r.stderr)
        self.assertLess(took, 5)


class DebugSockets(Base):
    def test_closed_by_default(self):
        with Daemon() as d:
            self.assertEqual(status_of(d, "/debug/sockets"), 404)
            self.assertNotIn("/debug/sockets", d.get("/"))

    def test_loopback_clients_only(self):
        config = "web:\n  debug_sockets: true\n"
        # A /30 of TEST-NET-2 per process, so concurrent runs do not meet.
        base = 4 * (os.getpid() % 63) + 4
        host_ip = "198.51.100.%d" % (base + 1)
        ns_ip = "198.51.100.%d" % (base + 2)
        veth = "tsd%d" % (os.getpid() % 100000)
        with Daemon(extra_config=config, listen_host="") as d, \
                Netns("dbg") as ns:
            run(["ip", "link", "add", veth, "type", "veth", "peer", "name",
                 "eth0", "netns", ns.name])
            try:
                run(["ip", "addr", "add", host_ip + "/30", "dev", veth])
                run(["ip", "link", "set", veth, "up"])
                ns.exec(["ip", "addr", "add", ns_ip + "/30", "dev", "eth0"])
                ns.exec(["ip", "link", "set", "eth0", "up"])
                body = d.get("/debug/sockets?state=listen")
                self.assertIsInstance(json.loads(body)["sockets"], list)

                def remote_status(path):
                    script = (
                        "import socket,sys\n"
                        "s=socket.create_connection((%r,%d),timeout=5)\n"
                        "s.sendall(b'GET %s HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
                        "d=b''\n"
                        "while True:\n"
                        "  c=s.recv(65536)\n"
                        "  if not c: break\n"
                        "  d+=c\n"
                        "print(d.split(b' ')[1].decode())\n"
                        % (host_ip, d.port, path))
                    return ns.exec([sys.executable, "-c", script],
                                   timeout=DEADLINE).stdout.strip()
                self.assertEqual(remote_status("/metrics"), "200")
                self.assertEqual(remote_status("/debug/sockets"), "404")
            finally:
                run(["ip", "link", "del", veth], check=False)

    def test_json_is_valid_for_any_process_name(self):
        config = "web:\n  debug_sockets: true\n"
        # A process that names itself with bytes that are not UTF-8, a
        # quote and a backslash, then holds a connection.
        script = (
            "import ctypes,socket,sys\n"
            "ctypes.CDLL(None).prctl(15, b'\\xff\\xfe\"q\\\\ \\xc3')\n"
            "l=socket.socket(); l.bind(('127.0.0.1',0)); l.listen()\n"
            "c=socket.create_connection(l.getsockname())\n"
            "a,_=l.accept()\n"
            "print('ready', flush=True); sys.stdin.read()\n")
        with Daemon(extra_config=config) as d, Netns("comm") as ns:
            child = subprocess.Popen(
                ["ip", "netns", "exec", ns.name, sys.executable, "-c",
                 script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                text=True)
            try:
                self.assertEqual(child.stdout.readline().strip(), "ready")
                deadline = time.monotonic() + DEADLINE
                comms = []
                while time.monotonic() < deadline:
                    # Strict UTF-8 and strict JSON, as any client would.
                    doc = json.loads(d.get(
                        "/debug/sockets?state=all&netns=%d" % ns.inode))
                    comms = [s.get("comm") for s in doc["sockets"]]
                    if any(c and c.startswith("\ufffd") for c in comms):
                        break
                    time.sleep(0.2)
                named = [c for c in comms if c and c.startswith("\ufffd")]
                self.assertTrue(named, comms)
                self.assertIn('"q\\ ', named[0])
            finally:
                child.stdin.close()
                child.wait(timeout=DEADLINE)
                child.stdout.close()


class Reload(Base):
    def test_sighup_rotates_users_and_refuses_a_broken_file(self):
        tmp = tempfile.mkdtemp(prefix="tcpstated-test-web-")
        web = os.path.join(tmp, "web.yml")

        def write(text):
            with open(web + ".new", "w") as f:
                f.write(text)
            os.rename(web + ".new", web)

        write("basic_auth_users:\n  old: %s\n" % bcrypt("pw-old"))
        try:
            with Daemon(args=["--web.config.file", web],
                        auth=("old", "pw-old")) as d:
                self.assertEqual(status_of(d, "/metrics", ("old", "pw-old")),
                                 200)
                write("basic_auth_users:\n  new: %s\n" % bcrypt("pw-new"))
                d.proc.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + DEADLINE
                while (status_of(d, "/metrics", ("new", "pw-new")) != 200
                       and time.monotonic() < deadline):
                    time.sleep(0.1)
                self.assertEqual(status_of(d, "/metrics", ("new", "pw-new")),
                                 200)
                # Revoked at once, although it was verified (and cached).
                self.assertEqual(status_of(d, "/metrics", ("old", "pw-old")),
                                 401)
                # A file that cannot be used changes nothing.
                write("tls_server_config:\n  cert_file: missing.crt\n"
                      "  key_file: missing.key\n")
                d.proc.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + DEADLINE
                while ("web configuration refused" not in d.log_text()
                       and time.monotonic() < deadline):
                    time.sleep(0.1)
                self.assertIn("web configuration refused", d.log_text())
                self.assertIn("missing.crt", d.log_text())
                self.assertEqual(status_of(d, "/metrics", ("new", "pw-new")),
                                 200)
        finally:
            for name in os.listdir(tmp):
                os.unlink(os.path.join(tmp, name))
            os.rmdir(tmp)


if __name__ == "__main__":
    unittest.main()
