"""The checks of the real-systemd guest (tests/kernels/systemd), run as a
oneshot unit by the guest's systemd (PID 1) over an overlay of the host's
root: install the project's .deb with dpkg, then drive tcpstated.service
with systemctl exactly as an administrator would. One result line per check
on the console (the unit's stdout is /dev/ttyS0):

  tcpstated-systemd: check <name> ok|FAIL <detail>

with the failure's explanation and the unit's journal before a FAIL line,
then `tcpstated-systemd: done`. Environment: TCPSTATED_DEB, the package.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import Metrics, parse_metrics  # noqa: E402
from test_packaging import MAX_EXPOSURE  # noqa: E402

MARK = "tcpstated-systemd: "
UNIT = "tcpstated.service"
CONFIG = "/etc/tcpstated/tcpstated.yaml"
METRICS = "http://127.0.0.1:9640/metrics"


def say(msg):
    print(MARK + msg, flush=True)


def run(cmd, timeout=120):
    return subprocess.run(cmd, capture_output=True, text=True,
                          timeout=timeout)


def systemctl(*args, timeout=180):
    return run(["systemctl", "--no-pager"] + list(args), timeout=timeout)


def show(prop):
    return systemctl("show", "-p", prop, "--value", UNIT).stdout.strip()


def journal():
    return run(["journalctl", "--no-pager", "-o", "short-monotonic",
                "-u", UNIT]).stdout


def diagnosis():
    """What systemd says of the unit, and the whole boot's last lines (the
    unit's own journal is empty when it fails before its first line)."""
    status = systemctl("status", "--no-pager", "-l", UNIT).stdout
    boot = run(["journalctl", "--no-pager", "-b", "-o", "short-monotonic",
                "-n", "60"]).stdout
    return status + "\n--- last lines of the boot's journal ---\n" + boot


def scrape():
    with urllib.request.urlopen(METRICS, timeout=20) as r:
        return Metrics(parse_metrics(r.read().decode()))


def sockets(m, state):
    return sum(v for labels, v in m.family("tcpstated_sockets")
               if labels.get("state") == state)


def seconds(span):
    """A systemd time span as `systemctl show` prints it ("30s",
    "1min 30s", "500ms") in seconds."""
    units = {"h": 3600, "min": 60, "s": 1, "ms": 1e-3, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|min|ms|us|s)\b", span)
    expect(parts, "not a time span: %r" % span)
    return sum(float(n) * units[u] for n, u in parts)


def wait(what, predicate, seconds):
    """predicate() until true or `seconds`; returns the time it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > seconds:
            raise AssertionError("%s: not within %d s" % (what, seconds))
        time.sleep(0.5)
    return time.monotonic() - start


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def set_config(replacements):
    """The packaged configuration file with `replacements` (regex: text)."""
    with open("/usr/share/tcpstated-systemd-test.yaml") as f:
        text = f.read()
    for pattern, repl in replacements.items():
        text, n = re.subn(pattern, repl, text, flags=re.M)
        expect(n == 1, "%s not in the packaged configuration" % pattern)
    with open(CONFIG, "w") as f:
        f.write(text)


class Checks:
    def __init__(self):
        self.failed = []
        self.peers = []

    def check(self, name, fn):
        start = time.monotonic()
        try:
            detail = fn() or ""
        except Exception as e:  # a check's failure is reported, not raised
            print("%s: %s: %s" % (name, type(e).__name__, e), flush=True)
            print("--- journal of %s ---\n%s" % (UNIT, journal()[-6000:]),
                  flush=True)
            print("--- systemctl status %s ---\n%s" % (UNIT,
                                                     diagnosis()[-8000:]),
                  flush=True)
            say("check %s FAIL %s" % (name, str(e).splitlines()[0][:200]
                                      if str(e) else type(e).__name__))
            self.failed.append(name)
            return
        say("check %s ok %.0fs %s" % (name, time.monotonic() - start, detail))

    def install(self):
        r = run(["dpkg", "-i", os.environ["TCPSTATED_DEB"]], timeout=300)
        expect(r.returncode == 0, "dpkg -i: %s%s" % (r.stdout, r.stderr))
        # dpkg reads its whole database (a .list file per installed
        # package): every file the guest has looked up holds a descriptor
        # in the host's virtiofsd until the guest forgets the inode, and
        # that virtiofsd may not raise its limit above the host's hard
        # limit (20,000 on CI's machines). Past it, every open in the guest
        # fails with EMFILE: the daemon's libraries, journald's files.
        # Forget the unused dentries and inodes now.
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("2\n")
        # The shipped file, kept to derive the test's variants from.
        with open(CONFIG) as f, \
                open("/usr/share/tcpstated-systemd-test.yaml", "w") as g:
            g.write(f.read())
        state = systemctl("is-enabled", UNIT).stdout.strip()
        expect(state == "disabled", "installed unit is %r, not disabled"
               % state)
        expect(show("ActiveState") == "inactive",
               "the package started the service")
        # A sanitizer build's leak check needs ptrace, which the unit's
        # system-call filter denies: a drop-in turns it off. The packaged
        # unit itself is what runs.
        os.makedirs("/etc/systemd/system/tcpstated.service.d", exist_ok=True)
        with open("/etc/systemd/system/tcpstated.service.d/asan.conf",
                  "w") as f:
            f.write("[Service]\nEnvironment=ASAN_OPTIONS=detect_leaks=0\n")
        r = systemctl("daemon-reload")
        expect(r.returncode == 0, r.stderr)
        return "dpkg -i %s" % os.path.basename(os.environ["TCPSTATED_DEB"])

    def start_ready_after_seeding(self):
        # Sockets that exist before the daemon: only the kernel's dump can
        # report them, so they are in the first scrape after `systemctl
        # start` returns (which waits for READY=1) only if READY came after
        # seeding.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        self.peers = [listener, client, server]
        t0 = time.monotonic()
        r = systemctl("start", UNIT)
        took = time.monotonic() - t0
        expect(r.returncode == 0, "systemctl start: %s" % r.stderr)
        expect(show("ActiveState") == "active",
               "not active after start: %s" % show("ActiveState"))
        m = scrape()
        listen, established = sockets(m, "listen"), sockets(m, "established")
        expect(listen >= 2 and established >= 2,
               "first scrape after READY shows %d listening and %d "
               "established sockets; at least 2 and 2 existed before the "
               "start (the test's and the daemon's own listener, the test's "
               "connection)" % (listen, established))
        # And in the journal: the daemon's seeding line before systemd's
        # "Started" (logged when READY=1 arrives).
        text = journal()
        seeded = text.find("seeded the mirror")
        started = text.find("Started tcpstated.service")
        expect(0 <= seeded < started,
               "'seeded the mirror' (at %d) not before 'Started' (at %d)" %
               (seeded, started))
        return "start took %.1f s; first scrape: %d listen, %d established" \
            % (took, listen, established)

    def reload_applies_threshold(self):
        pid = show("MainPID")
        # The test's server side goes to CLOSE_WAIT; younger than the
        # packaged 60 s threshold, it is not a leak until the reload
        # lowers it to 1 s.
        self.peers[1].close()
        wait("CLOSE_WAIT in the mirror",
             lambda: sum(v for _, v in scrape().family(
                 "tcpstated_close_wait_sockets")) >= 1, 20)
        leaked = scrape().total("tcpstated_close_wait_leaked_sockets")
        expect(leaked == 0, "%d leaked before the reload" % leaked)
        set_config({r"^  close_wait_leak_after: 60s$":
                    "  close_wait_leak_after: 1s"})
        r = systemctl("reload", UNIT)
        expect(r.returncode == 0, "systemctl reload: %s" % r.stderr)
        took = wait("tcpstated_close_wait_leaked_sockets >= 1 after reload",
                    lambda: scrape().total(
                        "tcpstated_close_wait_leaked_sockets") >= 1, 30)
        expect(show("MainPID") == pid, "reload restarted the daemon")
        expect("SIGHUP: configuration reloaded" in journal(),
               "no reload line in the journal")
        return "leak reported %.1f s after reload, same pid %s" % (took, pid)

    def reload_refuses_bad_file(self):
        # ExecReload= checks the file before it signals: a bad file fails
        # `systemctl reload` with the check's error in the journal, the
        # daemon never sees a SIGHUP, and the 1 s threshold of the last
        # reload stays in force.
        pid = show("MainPID")
        hups = journal().count("SIGHUP:")
        set_config({r"^  close_wait_leak_after: 60s$":
                    "  close_wait_leak_after: soon"})
        r = systemctl("reload", UNIT)
        expect(r.returncode != 0, "systemctl reload with a bad file "
               "succeeded: %s%s" % (r.stdout, r.stderr))
        expect(show("MainPID") == pid, "reload restarted the daemon")
        expect(show("ActiveState") == "active",
               "not active after the refused reload: %s" %
               show("ActiveState"))
        text = journal()
        expect(re.search(r"tcpstated: .*detectors\.close_wait_leak_after",
                         text), "the check's error is not in the journal")
        expect(text.count("SIGHUP:") == hups,
               "the daemon got a SIGHUP for a file the check refused")
        leaked = scrape().total("tcpstated_close_wait_leaked_sockets")
        expect(leaked >= 1, "the running 1 s threshold was lost")
        # The valid file the next checks restart with.
        set_config({r"^  close_wait_leak_after: 60s$":
                    "  close_wait_leak_after: 1s"})
        return "reload exit status %d, same pid %s, %d still leaked" % (
            r.returncode, pid, leaked)

    def state_directory_survives_restart(self):
        # The CLOSE_WAIT of reload_applies_threshold began under the running
        # daemon: its age is exact. `systemctl restart` stops it with
        # SIGTERM, which saves the state file in StateDirectory=; the new
        # daemon takes the age back (not tcp_info's lower bound).
        pid = show("MainPID")
        r = systemctl("restart", UNIT)
        expect(r.returncode == 0, "systemctl restart: %s" % r.stderr)
        expect(show("MainPID") != pid, "restart kept pid %s" % pid)
        path = "/var/lib/tcpstated/sockets.state"
        expect(os.path.exists(path), "%s missing after the restart" % path)
        with open(path) as f:
            head = f.readline().strip()
        expect(head == "tcpstated-state 1", "%s starts with %r" % (path, head))
        taken = re.findall(r"state file: (\d+) of (\d+) saved socket ages "
                           r"taken back", journal())
        expect(taken and int(taken[-1][0]) >= 1,
               "no saved age taken back: %r" % taken)
        m = scrape()
        leaked = m.total("tcpstated_close_wait_leaked_sockets")
        bound = m.total("tcpstated_close_wait_age_lower_bound_sockets")
        expect(leaked >= 1, "the leak is gone after the restart")
        expect(bound == 0, "%d CLOSE_WAIT ages are lower bounds" % bound)
        return "%s: %s of %s ages taken back" % (path, taken[-1][0],
                                                 taken[-1][1])

    def watchdog_restarts_stopped_daemon(self):
        pid = int(show("MainPID"))
        restarts = int(show("NRestarts"))
        watchdog = seconds(show("WatchdogUSec"))
        expect(watchdog > 0, "the unit has no watchdog")
        # A stopped process sends no WATCHDOG=1: after WatchdogSec systemd
        # aborts it (SIGABRT, then SIGKILL after TimeoutAbortSec) and
        # Restart=on-failure starts it again after RestartSec.
        os.kill(pid, signal.SIGSTOP)
        t0 = time.monotonic()
        limit = watchdog + 30 + 5 + 90
        wait("restart after SIGSTOP", lambda: show("MainPID") not in
             ("0", str(pid)) and show("ActiveState") == "active", limit)
        took = time.monotonic() - t0
        expect(took >= watchdog - 1, "restarted after %.1f s, before "
               "WatchdogSec=%.0f s" % (took, watchdog))
        expect(int(show("NRestarts")) == restarts + 1,
               "NRestarts %s, expected %d" % (show("NRestarts"),
                                              restarts + 1))
        expect(re.search(r"(?i)watchdog timeout", journal()),
               "no watchdog timeout in the journal")
        scrape()
        return "restarted %.1f s after SIGSTOP (WatchdogSec=%.0f s)" % (
            took, watchdog)

    def bad_config_exits_2_without_restart(self):
        set_config({r"^  close_wait_leak_after: 60s$":
                    "  close_wait_leak_after: soon"})
        r = systemctl("restart", UNIT)
        expect(r.returncode != 0, "restart with a bad file succeeded")
        status = show("ExecMainStatus")
        expect(status == "2", "exit status %s, expected 2" % status)
        restarts = show("NRestarts")
        # Longer than RestartSec: a restart would have happened by now.
        time.sleep(8)
        state = show("ActiveState")
        expect(state == "failed", "state %s after 8 s, expected failed" %
               state)
        expect(show("NRestarts") == restarts, "restarted %s -> %s" %
               (restarts, show("NRestarts")))
        expect(show("Result") == "exit-code", "Result=%s" % show("Result"))
        return "exit status 2, state failed, NRestarts %s" % restarts

    def security_score(self):
        set_config({})
        systemctl("reset-failed", UNIT)
        r = systemctl("start", UNIT)
        expect(r.returncode == 0, "systemctl start: %s" % r.stderr)
        r = run(["systemd-analyze", "security", "--no-pager", UNIT])
        m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)",
                      r.stdout + r.stderr)
        expect(m, "no score: %s%s" % (r.stdout, r.stderr))
        score = float(m.group(1))
        expect(score <= MAX_EXPOSURE, "exposure %.1f above %.1f" %
               (score, MAX_EXPOSURE))
        r = systemctl("stop", UNIT)
        expect(r.returncode == 0 and show("Result") == "success",
               "stop: %s Result=%s" % (r.stderr, show("Result")))
        return "exposure %.1f (limit %.1f)" % (score, MAX_EXPOSURE)


def main():
    say("systemd %s is PID 1, kernel %s" % (
        run(["systemctl", "--version"]).stdout.split()[1],
        os.uname().release))
    c = Checks()
    c.check("install", c.install)
    if not c.failed:
        c.check("start_ready_after_seeding", c.start_ready_after_seeding)
        c.check("reload_applies_threshold", c.reload_applies_threshold)
        c.check("reload_refuses_bad_file", c.reload_refuses_bad_file)
        c.check("state_directory_survives_restart",
                c.state_directory_survives_restart)
        c.check("watchdog_restarts_stopped_daemon",
                c.watchdog_restarts_stopped_daemon)
        c.check("bad_config_exits_2_without_restart",
                c.bad_config_exits_2_without_restart)
        c.check("security_score", c.security_score)
    say("done")
    time.sleep(1)  # let the serial line drain before the power-off


if __name__ == "__main__":
    main()
