"""Real-kernel test harness: private network namespaces, the real daemon,
ground truth from `ss`, and a Prometheus text parser.

Everything here runs as root on the test machine. Namespaces are named
tcpstated-test-*, and are removed even when a test fails. Every wait is
bounded in time.
"""

import base64
import contextlib
import email.message
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOAD = os.path.join(HERE, "workload.py")

# `ss` state column -> tcpstated state label.
SS_STATES = {
    "ESTAB": "established",
    "SYN-SENT": "syn_sent",
    "SYN-RECV": "syn_recv",
    "FIN-WAIT-1": "fin_wait1",
    "FIN-WAIT-2": "fin_wait2",
    "TIME-WAIT": "time_wait",
    "UNCONN": "close",
    "CLOSE-WAIT": "close_wait",
    "LAST-ACK": "last_ack",
    "LISTEN": "listen",
    "CLOSING": "closing",
}

STATES = [
    "syn_sent", "syn_recv", "established", "fin_wait1", "fin_wait2",
    "time_wait", "close", "close_wait", "last_ack", "listen", "closing",
    "new_syn_recv",
]


def run(cmd, check=True, timeout=30, **kw):
    return subprocess.run(cmd, check=check, timeout=timeout,
                          capture_output=True, text=True, **kw)


def require_root(testcase):
    if os.geteuid() != 0:
        testcase.skipTest("real-kernel tests need root")


def ensure_tracefs():
    """Classic tracepoints need tracefs; mount it if the machine has not."""
    if os.path.exists("/sys/kernel/tracing/events/sock"):
        return
    run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"],
        check=False)


class Netns:
    """A private network namespace with its loopback up."""

    def __init__(self, tag, sysctls=None):
        self.name = "tcpstated-test-%s-%d" % (tag, os.getpid())
        self.sysctls = sysctls or {}

    def __enter__(self):
        run(["ip", "netns", "del", self.name], check=False)
        run(["ip", "netns", "add", self.name])
        try:
            self.exec(["ip", "link", "set", "lo", "up"])
            for key, value in self.sysctls.items():
                self.exec(["sysctl", "-q", "-w", "%s=%s" % (key, value)])
            self.inode = os.stat("/run/netns/" + self.name).st_ino
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        run(["ip", "netns", "del", self.name], check=False)

    def exec(self, cmd, check=True, timeout=30):
        return run(["ip", "netns", "exec", self.name] + cmd, check=check,
                   timeout=timeout)

    def ss_counts(self):
        """Per-state socket counts, as `ss` sees them in this namespace."""
        out = self.exec(["ss", "-tanH"]).stdout
        counts = {s: 0 for s in STATES}
        for line in out.splitlines():
            fields = line.split()
            if not fields:
                continue
            counts[SS_STATES[fields[0]]] += 1
        return counts

    def nft(self, ruleset):
        proc = subprocess.run(
            ["ip", "netns", "exec", self.name, "nft", "-f", "-"],
            input=ruleset, capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise RuntimeError("nft failed: " + proc.stderr)


class Workload:
    """workload.py running inside a namespace, driven line by line: each
    command is written to its stdin and it answers one line."""

    def __init__(self, netns):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns.name, sys.executable, WORKLOAD],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def do(self, *words, timeout=30):
        self.proc.stdin.write(" ".join(str(w) for w in words) + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        if time.monotonic() > deadline or not line:
            raise RuntimeError("workload did not answer %r" % (words,))
        line = line.strip()
        if line.startswith("error"):
            raise RuntimeError("workload: " + line)
        return line

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


def rss_bytes(pid):
    """Resident set size of a process, from /proc/<pid>/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value}"""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_RE.match(line)
        if not m:
            raise ValueError("unparseable metric line: " + line)
        labels = frozenset(LABEL_RE.findall(m.group(3) or ""))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples


class Metrics:
    def __init__(self, samples):
        self.samples = samples

    def get(self, name, **labels):
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def series(self, name):
        return {k[1]: v for k, v in self.samples.items() if k[0] == name}

    def family(self, name, netns=None):
        """[(labels dict, value)] of one family, optionally for one netns."""
        out = []
        for labels, value in self.series(name).items():
            labels = dict(labels)
            if netns is None or labels.get("netns") == str(netns):
                out.append((labels, value))
        return out

    def total(self, name, netns=None):
        return sum(v for _, v in self.family(name, netns))

    def sockets(self, netns):
        return {s: int(self.get("tcpstated_sockets", netns=str(netns),
                                state=s)) for s in STATES}

    def has_netns(self, netns):
        return ("tcpstated_sockets",
                frozenset({"netns": str(netns), "state": "listen"}.items())
                ) in self.samples

    def transitions(self):
        return {(dict(k)["from"], dict(k)["to"]): v
                for k, v in self.series("tcpstated_transitions_total").items()}

    def invalid_total(self):
        return sum(self.series("tcpstated_invalid_transitions_total").values())


class Daemon:
    """The real tcpstated binary, started with a config file, on a free
    loopback port."""

    def __init__(self, attach=None, extra_config="", args=(),
                 listen_host="127.0.0.1", auth=None):
        self.binary = os.environ.get("TCPSTATED_BIN")
        if not self.binary:
            raise RuntimeError("TCPSTATED_BIN is not set")
        self.attach = attach or os.environ.get("TCPSTATED_ATTACH", "auto")
        self.extra_config = extra_config
        self.args = list(args)
        self.listen_host = listen_host  # "" for every address
        self.auth = auth  # (user, password) for basic auth, or None
        self.port = free_port()
        self.proc = None

    def __enter__(self):
        if self.attach == "tracepoint":
            ensure_tracefs()
        self.dir = tempfile.mkdtemp(prefix="tcpstated-test-")
        self.config = os.path.join(self.dir, "tcpstated.yaml")
        with open(self.config, "w") as f:
            # extra_config may go on with keys of the bpf: section.
            f.write("bpf:\n  attach: %s\n" % self.attach)
            # The suite run against another ring count (e.g. the merge of
            # several rings) without editing each test.
            rings = os.environ.get("TCPSTATED_RING_BUFFERS")
            if rings:
                f.write("  ring_buffers: %d\n" % int(rings))
            f.write(self.extra_config)
            # Never the host's /var/lib/tcpstated: daemons of other tests
            # run at the same time.
            if not re.search(r"^state:", self.extra_config, re.M):
                if self.extra_config and not self.extra_config.endswith("\n"):
                    f.write("\n")
                f.write("state:\n  directory: %s\n" %
                        os.path.join(self.dir, "state"))
        self.log = open(os.path.join(self.dir, "daemon.log"), "w+")
        self.proc = subprocess.Popen(
            [self.binary, "--config.file", self.config,
             "--web.listen-address", "%s:%d" % (self.listen_host, self.port),
             "--log.level", "debug"] + self.args,
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("daemon exited with %d:\n%s" %
                                   (self.proc.returncode, self.log_text()))
            try:
                self.get("/healthz")
                return self
            except (urllib.error.URLError, OSError):
                # OSError: also a timeout, while the daemon, already bound
                # (it binds before loading BPF), is still starting.
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("daemon did not become healthy:\n" + self.log_text())

    def __exit__(self, *exc):
        self.stop()

    def log_text(self):
        if self.log.closed:
            return "(daemon stopped)"
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()[-20000:]

    def stop(self):
        code = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self, "log") and not self.log.closed:
            self.log.close()
        if hasattr(self, "dir"):
            shutil.rmtree(self.dir, ignore_errors=True)
        return code

    def get(self, path, timeout=10):
        """GET `path` over plain HTTP/1.1; raises urllib.error.HTTPError for
        a status of 400 or more, like urlopen.

        Reads to the end of stream before closing. The daemon sends its FIN
        right after the response; a client that closes as soon as it has
        Content-Length bytes (urllib does) often closes before that FIN
        arrives, and both ends then pass FIN_WAIT1->CLOSING, a transition
        the sequence tests count exactly."""
        url = "http://127.0.0.1:%d%s" % (self.port, path)
        auth = ""
        if self.auth is not None:
            auth = "Authorization: Basic %s\r\n" % base64.b64encode(
                ("%s:%s" % self.auth).encode()).decode()
        request = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s"
                   "Connection: close\r\n\r\n" % (path, self.port, auth))
        chunks = []
        with socket.create_connection(("127.0.0.1", self.port),
                                      timeout=timeout) as s:
            s.sendall(request.encode())
            while True:
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        raw = b"".join(chunks)
        head, sep, body = raw.partition(b"\r\n\r\n")
        if not sep:
            raise ConnectionError("incomplete response from %s: %r" %
                                  (url, raw[:200]))
        lines = head.decode("iso-8859-1").split("\r\n")
        _, code, reason = (lines[0].split(" ", 2) + [""])[:3]
        headers = email.message.Message()
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip()] = value.strip()
        length = headers.get("Content-Length")
        if length is not None and int(length) != len(body):
            raise ConnectionError("%s: Content-Length %s, got %d bytes" %
                                  (url, length, len(body)))
        if int(code) >= 400:
            raise urllib.error.HTTPError(url, int(code), reason, headers,
                                         io.BytesIO(body))
        return body.decode()

    def metrics(self):
        return Metrics(parse_metrics(self.get("/metrics")))

    def wait_sockets(self, netns, expected, timeout=10):
        """Waits until tcpstated_sockets{netns} equals `expected`; returns
        the last metrics either way (the caller asserts)."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.metrics()
            if m.sockets(netns) == expected or time.monotonic() > deadline:
                return m
            time.sleep(0.2)
