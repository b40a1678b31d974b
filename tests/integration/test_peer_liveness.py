"""Stuck FIN_WAIT_2, idle connections and dead peers, driven against the
real kernel and the real daemon in a private namespace.

Ground truth is the kernel's view inside the test namespace: `ss -tanoe`
(state, timer, retransmit/probe count, inode) and `ss -ti` (lastrcv). The
peer-liveness dump runs at each full reconcile (1 s here), so every check
polls the metrics with a deadline; thresholds are a few seconds so each
test stays well under 30 s. Dead peers are made by dropping the listener's port on
input in the namespace (nftables), which nothing outside it sees.

TCPSTATED_ATTACH selects the attach mode (tp_btf or tracepoint).
"""

import re
import time
import unittest

from harness import Daemon, Netns, Workload, require_root

DEADLINE = 15.0
THRESHOLD = 2.0  # detectors.fin_wait2_stuck_after here
# A detection follows the kernel's view within one reconcile (1 s here)
# plus a cycle's work and the poll; the rest is margin for a loaded host.
CADENCE = 4.0
# detectors.idle_after in the idle test: long enough that a connection that
# just received data stays not idle for a few reconciles.
IDLE_AFTER = 4.0

CONFIG = """tracking:
  reconcile_interval: 1s
  full_reconcile_interval: 1s
detectors:
  fin_wait2_stuck_after: 2s
  idle_after: %s
  dead_peer_retries: 3
"""

TIMER_RE = re.compile(r"timer:\((\w+),[^,]*,(\d+)\)")
INODE_RE = re.compile(r"\bino:(\d+)")
LASTRCV_RE = re.compile(r"\blastrcv:(\d+)")


def poll(fetch, done, timeout=DEADLINE, interval=0.25):
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(interval)
    return value


def ss_sockets(ns, state):
    """[(local port, peer port, timer name or None, timer count, inode,
    lastrcv ms or None)] of TCP sockets in `state` in the namespace."""
    out = ns.exec(["ss", "-tanoeiH", "state", state]).stdout
    # -i puts tcp_info on a continuation line: join them per socket.
    records, current = [], ""
    for line in out.splitlines():
        if line.startswith(("\t", " ")) and current:
            current += " " + line.strip()
        else:
            if current:
                records.append(current)
            current = line
    if current:
        records.append(current)
    sockets = []
    for r in records:
        fields = r.split()
        # No state column with a state filter: Recv-Q Send-Q local peer.
        local, peer = fields[2], fields[3]
        timer = TIMER_RE.search(r)
        inode = INODE_RE.search(r)
        lastrcv = LASTRCV_RE.search(r)
        sockets.append((int(local.rsplit(":", 1)[1]),
                        int(peer.rsplit(":", 1)[1]),
                        timer.group(1) if timer else None,
                        int(timer.group(2)) if timer else 0,
                        int(inode.group(1)) if inode else 0,
                        int(lastrcv.group(1)) if lastrcv else None))
    return sockets


def family(d, name, netns, **labels):
    """{frozenset(labels): value} of a family in one namespace, the given
    labels matched."""
    out = {}
    for l, v in d.metrics().family(name, netns):
        if all(l.get(k) == str(want) for k, want in labels.items()):
            out[frozenset((k, l[k]) for k in l if k != "netns")] = v
    return out


def total(d, name, netns, **labels):
    return sum(family(d, name, netns, **labels).values())


class PeerLiveness(unittest.TestCase):
    def setUp(self):
        require_root(self)

    def wait_log(self, d, text, timeout=DEADLINE):
        return poll(d.log_text, lambda t: text in t, timeout=timeout)

    def assert_cleared_line(self, d, family, text):
        """The start/clear lines are host-wide (the daemon watches every
        namespace): the clear line is only due when no namespace has the
        condition, which other tests on the host may hold for a while."""
        if d.metrics().total(family) == 0:
            self.assertIn(text, self.wait_log(d, text))

    def test_stuck_fin_wait2_per_owner_and_peer_orphans_apart(self):
        n_full, n_orphan = 3, 2
        with Netns("fw2") as ns, \
                Daemon(extra_config=CONFIG % "1h") as d, \
                Workload(ns) as w:
            port = int(w.do("listen", "l", "4", 0).split()[1])
            with open("/proc/%d/comm" % int(w.do("pid").split()[1])) as f:
                comm = f.read().strip()
            for i in range(n_full + n_orphan):
                w.do("connect", "c%d" % i, "4", port)
                w.do("accept", "s%d" % i, "l")
            # Full FIN_WAIT2: half-closed, still held; the server side sits
            # in CLOSE_WAIT, never closing (the peer's leak).
            for i in range(n_full):
                w.do("shutdown", "c%d" % i)
            # Orphans: closed; the kernel ages them out (tcp_fin_timeout).
            for i in range(n_full, n_full + n_orphan):
                w.do("close", "c%d" % i)
            started = time.monotonic()

            # The peer's ACK of each FIN is processed in softirq after the
            # call returns: on a loaded host the sockets may still be in
            # FIN_WAIT1 for a moment, so wait for the kernel's view to settle.
            def split():
                fw2 = ss_sockets(ns, "fin-wait-2")
                full = [s for s in fw2 if s[4] != 0 and s[2] != "timewait"]
                return fw2, full, [s for s in fw2 if s not in full]
            fw2, full, orphans = poll(
                split, lambda v: (len(v[1]), len(v[2])) == (n_full, n_orphan),
                timeout=5)
            self.assertEqual((len(full), len(orphans)), (n_full, n_orphan),
                             fw2)
            self.assertTrue(all(s[2] is None for s in full), full)
            group = dict(comm=comm, daddr="127.0.0.1", dport=port)
            v = poll(lambda: (total(d, "tcpstated_fin_wait2_sockets",
                                    ns.inode, **group),
                              total(d, "tcpstated_fin_wait2_orphan_sockets",
                                    ns.inode)),
                     lambda v: v == (n_full, n_orphan))
            self.assertEqual(v, (n_full, n_orphan), d.log_text())
            stuck = poll(lambda: total(d, "tcpstated_fin_wait2_stuck_sockets",
                                       ns.inode, **group),
                         lambda v: v == n_full)
            flagged_after = time.monotonic() - started
            self.assertEqual(stuck, n_full, d.log_text())
            self.assertGreaterEqual(flagged_after, THRESHOLD - 0.5)
            # Threshold + one reconcile + a cycle's work and the poll.
            self.assertLess(flagged_after, THRESHOLD + CADENCE, flagged_after)
            oldest = total(d, "tcpstated_fin_wait2_oldest_seconds",
                           ns.inode, **group)
            self.assertGreater(oldest, THRESHOLD)
            self.assertLess(oldest, time.monotonic() - started + 1.5)
            self.assertIn("FIN_WAIT2 stuck started",
                          self.wait_log(d, "FIN_WAIT2 stuck started"))
            self.assertEqual(len(ss_sockets(ns, "fin-wait-2")),
                             n_full + n_orphan)

            # The peer finally closes: FIN_WAIT2 -> TIME_WAIT, cleared.
            for i in range(n_full):
                w.do("close", "s%d" % i)
            v = poll(lambda: total(d, "tcpstated_fin_wait2_sockets",
                                   ns.inode), lambda v: v == 0)
            self.assertEqual(v, 0)
            self.assertEqual([s for s in ss_sockets(ns, "fin-wait-2")
                              if s[4] != 0], [])
            self.assert_cleared_line(d, "tcpstated_fin_wait2_stuck_sockets",
                                     "FIN_WAIT2 stuck cleared")

    def test_idle_connections_split_by_keepalive(self):
        with Netns("idle") as ns, \
                Daemon(extra_config=CONFIG % ("%ds" % IDLE_AFTER)) as d, \
                Workload(ns) as w:
            port = int(w.do("listen", "l", "4", 0).split()[1])
            first = time.monotonic()  # nothing received before this
            for name in ("a", "b"):
                w.do("connect", "c" + name, "4", port)
                w.do("accept", "s" + name, "l")
            # Keepalive armed on one client, far from its first probe.
            w.do("keepalive", "ca", 600, 60, 9)
            last = time.monotonic()  # nor after this

            def truth():
                out = {}
                for s in ss_sockets(ns, "established"):
                    if s[5] is None or s[5] <= IDLE_AFTER * 1000:
                        continue
                    role = "server" if s[0] == port else "client"
                    ka = "on" if s[2] == "keepalive" else "off"
                    out[(role, ka)] = out.get((role, ka), 0) + 1
                return out

            def seen():
                out = {}
                for labels, v in family(d, "tcpstated_idle_sockets",
                                        ns.inode, port=port).items():
                    l = dict(labels)
                    out[(l["role"], l["keepalive"])] = int(v)
                return out

            want = {("client", "on"): 1, ("client", "off"): 1,
                    ("server", "off"): 2}
            self.assertEqual(poll(truth, lambda v: v == want), want)
            self.assertEqual(poll(seen, lambda v: v == want), want,
                             d.log_text())
            # Idle from detectors.idle_after on, within the cadence.
            flagged = time.monotonic()
            self.assertGreaterEqual(flagged - first, IDLE_AFTER)
            self.assertLess(flagged - last, IDLE_AFTER + CADENCE,
                            flagged - last)
            self.assertEqual(truth(), want)
            self.assertIn("idle connections started",
                          self.wait_log(d, "idle connections started"))
            longest = max(v for v in family(
                d, "tcpstated_idle_longest_seconds", ns.inode).values())
            self.assertGreater(longest, IDLE_AFTER)

            # Data both ways on b: those two are no longer idle.
            w.do("send", "cb", 100)
            w.do("send", "sb", 100)
            sent = time.monotonic()
            want = {("client", "on"): 1, ("server", "off"): 1}
            # ss first: b is idle again IDLE_AFTER after the send, and a
            # slow guest (TCG, a loaded host) can reach that while the
            # daemon's answer is polled.
            self.assertEqual(truth(), want)
            self.assertEqual(poll(seen, lambda v: v == want), want)
            self.assertLess(time.monotonic() - sent, CADENCE)
            for name in ("a", "b"):
                w.do("close", "c" + name)
                w.do("close", "s" + name)
            self.assertEqual(poll(seen, lambda v: v == {}), {})
            self.assert_cleared_line(d, "tcpstated_idle_sockets",
                                     "idle connections cleared")

    def test_dead_peers_keepalive_and_retransmit(self):
        with Netns("dead") as ns, \
                Daemon(extra_config=CONFIG % "1h") as d, \
                Workload(ns) as w:
            port = int(w.do("listen", "l", "4", 0).split()[1])
            for name in ("k", "r", "q"):
                w.do("connect", "c" + name, "4", port)
                w.do("accept", "s" + name, "l")
            w.do("keepalive", "ck", 1, 1, 30)
            # The peer vanishes: nothing reaches either end any more.
            ns.nft("table inet tcpstated_test {\n"
                   " chain input { type filter hook input priority 0;\n"
                   "  tcp dport %d drop\n  tcp sport %d drop\n }\n}\n"
                   % (port, port))
            w.do("send", "cr", 1000)

            def truth():
                out = {}
                for s in ss_sockets(ns, "established"):
                    if s[2] == "keepalive" and s[3] >= 3:
                        out["keepalive"] = out.get("keepalive", 0) + 1
                    elif s[2] == "on" and s[3] >= 3:
                        out["retransmit"] = out.get("retransmit", 0) + 1
                return out

            def seen():
                out = {}
                for labels, v in family(d, "tcpstated_dead_peer_sockets",
                                        ns.inode).items():
                    l = dict(labels)
                    self.assertEqual(l["role"], "client")
                    self.assertEqual(l["port"], str(port))
                    out[l["reason"]] = int(v)
                return out

            want = {"keepalive": 1, "retransmit": 1}
            self.assertEqual(poll(truth, lambda v: v == want), want)
            dead_in_kernel = time.monotonic()
            self.assertEqual(poll(seen, lambda v: v == want), want,
                             d.log_text())
            # The kernel's retry count crossed dead_peer_retries (3) just
            # now: flagged within the cadence.
            self.assertLess(time.monotonic() - dead_in_kernel, CADENCE)
            self.assertIn("dead peers started",
                          self.wait_log(d, "dead peers started"))
            # q, silent without keepalive, is not a dead peer: nothing is
            # asked of its peer.
            ns.exec(["nft", "delete", "table", "inet", "tcpstated_test"])
            self.assertEqual(poll(truth, lambda v: v == {}), {})
            answered = time.monotonic()
            self.assertEqual(poll(seen, lambda v: v == {}), {})
            self.assertLess(time.monotonic() - answered, CADENCE)
            self.assert_cleared_line(d, "tcpstated_dead_peer_sockets",
                                     "dead peers cleared")


if __name__ == "__main__":
    unittest.main()
