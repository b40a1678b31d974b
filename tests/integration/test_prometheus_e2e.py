"""End to end with real components: Debian's Prometheus server scrapes the
real daemon on loopback, with the shipped recording and alerting rules
loaded, while a CLOSE_WAIT leak runs in a private namespace. Every rule must
load healthy, every dashboard query must evaluate without error, and
TcpstatedCloseWaitLeak must be pending or firing."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from harness import Daemon, Netns, Workload, free_port

REPO = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
DASHBOARD = os.path.join(REPO, "dashboards", "tcpstated.json")
RULE_FILES = [os.path.join(REPO, "dashboards", f)
              for f in ("tcpstated.rules.yaml", "tcpstated.alerts.yaml")]
LEAKED = 12  # above the alert's warning threshold of 10


def dashboard_queries():
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    queries = []

    def walk(panel):
        for target in panel.get("targets", []):
            if target.get("expr"):
                queries.append((panel.get("title", "?"), target["expr"]))
        for child in panel.get("panels", []):
            walk(child)

    for panel in dashboard["panels"]:
        walk(panel)
    return queries


def substitute(expr):
    # What Grafana would send for "All" jobs and instances at a 15 s step.
    expr = expr.replace("$__rate_interval", "1m")
    expr = re.sub(r"\$\{?job\}?", "tcpstated", expr)
    expr = re.sub(r"\$\{?instance\}?", ".*", expr)
    expr = re.sub(r"\$\{?cluster\}?", ".*", expr)  # "All" includes no label
    expr = re.sub(r"\$\{?state\}?", "close_wait", expr)
    return expr


@unittest.skipUnless(shutil.which("prometheus"), "needs Debian's prometheus")
class PrometheusEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("real-kernel tests need root")

    def api(self, path, **params):
        url = "http://127.0.0.1:%d/api/v1/%s" % (self.prom_port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read().decode())
        self.assertEqual(body.get("status"), "success", body)
        return body["data"]

    def wait_for(self, what, predicate, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = predicate()
                if value:
                    return value
            except (OSError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                self.fail("timed out waiting for " + what + "\n" +
                          self.prom_log())
            time.sleep(0.5)

    def prom_log(self):
        try:
            with open(os.path.join(self.dir, "prometheus.log")) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def start_prometheus(self, daemon_port):
        self.dir = tempfile.mkdtemp(prefix="tcpstated-test-prom-")
        self.prom_port = free_port()
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n"
                    "  evaluation_interval: 1s\n")
            f.write("rule_files:\n")
            for rule_file in RULE_FILES:
                f.write("  - %s\n" % rule_file)
            f.write("scrape_configs:\n  - job_name: tcpstated\n"
                    "    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % daemon_port)
        self.log = open(os.path.join(self.dir, "prometheus.log"), "w")
        self.prom = subprocess.Popen(
            ["prometheus", "--config.file", config,
             "--storage.tsdb.path", os.path.join(self.dir, "data"),
             "--web.listen-address", "127.0.0.1:%d" % self.prom_port,
             "--log.level", "warn"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def stop_prometheus(self):
        if getattr(self, "prom", None) is not None:
            self.prom.terminate()
            try:
                self.prom.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.prom.kill()
                self.prom.wait()
            self.log.close()
        shutil.rmtree(getattr(self, "dir", ""), ignore_errors=True)

    def test_rules_queries_and_close_wait_alert(self):
        config = ("tracking:\n  reconcile_interval: 2s\n"
                  "  full_reconcile_interval: 2s\n"
                  "detectors:\n  close_wait_leak_after: 2s\n"
                  "web:\n  debug_sockets: true\n")
        with Daemon(extra_config=config) as daemon, \
                Netns("prom") as ns, Workload(ns) as w:
            # The leak: clients close, the server never does.
            port = w.do("listen", "l", "4", 7100).split()[1]
            for i in range(LEAKED):
                w.do("connect", "c%d" % i, "4", port)
                w.do("accept", "s%d" % i, "l")
            for i in range(LEAKED):
                w.do("close", "c%d" % i)
            self.assertEqual(ns.ss_counts()["close_wait"], LEAKED)

            self.start_prometheus(daemon.port)
            self.addCleanup(self.stop_prometheus)

            self.wait_for("the daemon's target to be up", lambda: any(
                t["health"] == "up"
                for t in self.api("targets")["activeTargets"]))

            def rules_evaluated():
                groups = self.api("rules")["groups"]
                rules = [r for g in groups for r in g["rules"]]
                return rules if rules and all(
                    r.get("lastEvaluation", "").startswith("20") and
                    not r["lastEvaluation"].startswith("0001")
                    for r in rules) else None

            rules = self.wait_for("every rule to be evaluated",
                                  rules_evaluated)
            unhealthy = [(r["name"], r.get("lastError"))
                         for r in rules if r["health"] != "ok"]
            self.assertEqual(unhealthy, [])
            names = {r["name"] for r in rules if r["type"] == "alerting"}
            self.assertIn("TcpstatedCloseWaitLeak", names)

            # The leak is what Prometheus sees.
            leaked = self.wait_for("the leak to be scraped", lambda: float(
                self.api("query", query=(
                    'sum(tcpstated_close_wait_leaked_sockets{netns="%d"})'
                    % ns.inode))["result"][0]["value"][1]) == LEAKED)
            self.assertTrue(leaked)

            # The incident-response listing names the same sockets.
            listing = json.loads(daemon.get(
                "/debug/sockets?state=close_wait&limit=5&netns=%d" % ns.inode))
            self.assertEqual(listing["matched"], LEAKED)
            self.assertEqual(len(listing["sockets"]), 5)
            self.assertTrue(listing["truncated"])
            for s in listing["sockets"]:
                self.assertEqual(s["state"], "close_wait")
                self.assertEqual(s["role"], "server")
                self.assertTrue(s["local"].endswith(":7100"), s)

            failures = []
            for title, expr in dashboard_queries():
                try:
                    self.api("query", query=substitute(expr))
                except Exception as e:  # collect them all
                    failures.append((title, expr, str(e)))
            self.assertEqual(failures, [], "dashboard queries failed")

            def leak_alert():
                for alert in self.api("alerts")["alerts"]:
                    if (alert["labels"].get("alertname") ==
                            "TcpstatedCloseWaitLeak" and
                            alert["labels"].get("netns") == str(ns.inode)):
                        return alert
                return None

            alert = self.wait_for("TcpstatedCloseWaitLeak", leak_alert)
            self.assertIn(alert["state"], ("pending", "firing"))
            self.assertRegex(alert["annotations"]["runbook"],
                             r"^docs/runbooks\.md#tcpstatedclosewaitleak ")
            # A healthy target: the job-agnostic TcpstatedDown stays quiet
            # (its absent() arm sees tcpstated_build_info).
            down = [a for a in self.api("alerts")["alerts"]
                    if a["labels"].get("alertname") == "TcpstatedDown"]
            self.assertEqual(down, [])
            pid = w.do("pid").split()[1]
            with open("/proc/%s/comm" % pid) as f:
                self.assertEqual(alert["labels"].get("comm"), f.read().strip())

    def test_connect_failure_and_reset_alerts(self):
        """TcpstatedConnectFailures and TcpstatedConnectionResets see what
        a namespace does: refused connects to a closed port, then
        connections aborted with SO_LINGER 0 (outcome_workload.py)."""
        workload = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "outcome_workload.py")
        with Daemon() as daemon, Netns("promout") as ns:
            closed, served = free_port(), free_port()

            def run(scenario, port, count):
                ns.exec([sys.executable, workload, scenario, str(port),
                         str(count)], timeout=60)

            self.start_prometheus(daemon.port)
            self.addCleanup(self.stop_prometheus)

            def scraped(query):
                return lambda: self.api("query", query=query)["result"]

            # A first few, so that Prometheus has each series before the
            # burst (rate() does not count a series' first value).
            run("refused", closed, 3)
            run("linger", served, 3)
            self.wait_for("the failures to be scraped", scraped(
                'tcpstated_connect_failures_total{netns="%d"}' % ns.inode))
            self.wait_for("the resets to be scraped", scraped(
                'tcpstated_resets_total{netns="%d",role="server"}'
                % ns.inode))
            # Well above 0.1 failures/s and 1 reset/s over 5 minutes.
            run("refused", closed, 200)
            run("linger", served, 500)

            def alert(name, port_label, port):
                def find():
                    for a in self.api("alerts")["alerts"]:
                        if (a["labels"].get("alertname") == name and
                                a["labels"].get("netns") == str(ns.inode) and
                                a["labels"].get(port_label) == str(port)):
                            return a
                    return None
                return find

            failing = self.wait_for("TcpstatedConnectFailures",
                                    alert("TcpstatedConnectFailures", "dport",
                                          closed))
            self.assertIn(failing["state"], ("pending", "firing"))
            self.assertEqual(failing["labels"]["daddr"], "127.0.0.1")
            self.assertEqual(failing["labels"]["dport"], str(closed))
            self.assertRegex(failing["annotations"]["runbook"],
                             r"^docs/runbooks\.md#tcpstatedconnectfailures ")
            resets = self.wait_for("TcpstatedConnectionResets",
                                   alert("TcpstatedConnectionResets", "port",
                                         served))
            self.assertIn(resets["state"], ("pending", "firing"))
            # The refused connects are connect failures, not a second page.
            self.assertIsNone(alert("TcpstatedConnectionResets", "port",
                                    closed)(), "refused connects paged twice")

    def alert_named(self, name, netns):
        for alert in self.api("alerts")["alerts"]:
            if (alert["labels"].get("alertname") == name and
                    alert["labels"].get("netns") == str(netns)):
                return alert
        return None

    def test_fin_wait2_stuck_and_dead_peer_alerts(self):
        """A half-closed connection whose peer never closes, one whose
        peer stops answering keepalive probes (dropped by nftables in the
        namespace), and 100 idle connections without keepalive (the idle
        alert's threshold): the three alerts go pending or firing with
        their labels."""
        config = ("tracking:\n  reconcile_interval: 1s\n"
                  "  full_reconcile_interval: 1s\n"
                  "detectors:\n  fin_wait2_stuck_after: 2s\n"
                  "  dead_peer_retries: 2\n  idle_after: 2s\n")
        with Daemon(extra_config=config) as daemon, \
                Netns("prompeer") as ns, Workload(ns) as w:
            port = int(w.do("listen", "l", "4", 0).split()[1])
            for name in ("f", "k"):
                w.do("connect", "c" + name, "4", port)
                w.do("accept", "s" + name, "l")
            w.do("shutdown", "cf")  # FIN_WAIT2; sf never closes
            dead = int(w.do("listen", "d", "4", 0).split()[1])
            w.do("connect", "cd", "4", dead)
            w.do("accept", "sd", "d")
            w.do("keepalive", "cd", 1, 1, 30)
            idle = int(w.do("listen", "i", "4", 0, 256).split()[1])
            self.assertEqual(w.do("connectmany", "ci", "4", idle, 100),
                             "ok 100")
            self.assertEqual(w.do("acceptmany", "si", "i", 100), "ok 100")
            ns.nft("table inet tcpstated_test {\n"
                   " chain input { type filter hook input priority 0;\n"
                   "  tcp dport %d drop\n  tcp sport %d drop\n }\n}\n"
                   % (dead, dead))

            self.start_prometheus(daemon.port)
            self.addCleanup(self.stop_prometheus)
            stuck = self.wait_for("TcpstatedFinWait2Stuck", lambda:
                                  self.alert_named("TcpstatedFinWait2Stuck",
                                                   ns.inode))
            self.assertIn(stuck["state"], ("pending", "firing"))
            self.assertEqual(stuck["labels"].get("daddr"), "127.0.0.1")
            self.assertEqual(stuck["labels"].get("dport"), str(port))
            self.assertRegex(stuck["annotations"]["runbook"],
                             r"^docs/runbooks\.md#tcpstatedfinwait2stuck ")
            peers = self.wait_for("TcpstatedDeadPeers", lambda:
                                  self.alert_named("TcpstatedDeadPeers",
                                                   ns.inode))
            self.assertIn(peers["state"], ("pending", "firing"))
            self.assertEqual(peers["labels"].get("role"), "client")
            self.assertEqual(peers["labels"].get("port"), str(dead))
            pid = w.do("pid").split()[1]
            with open("/proc/%s/comm" % pid) as f:
                comm = f.read().strip()
            self.assertEqual(stuck["labels"].get("comm"), comm)
            self.assertEqual(peers["labels"].get("comm"), comm)
            # One alert per side of the 100 connections: the clients by the
            # port they talk to, the server by its own.
            def idle_sides():
                found = sorted(
                    (a["labels"].get("role"), a["labels"].get("port"),
                     a["labels"].get("comm"), a["state"])
                    for a in self.api("alerts")["alerts"]
                    if a["labels"].get("alertname") ==
                    "TcpstatedIdleConnectionsWithoutKeepalive" and
                    a["labels"].get("netns") == str(ns.inode))
                return found if len(found) == 2 else None
            idle_alerts = self.wait_for(
                "TcpstatedIdleConnectionsWithoutKeepalive", idle_sides)
            self.assertEqual([a[:3] for a in idle_alerts],
                             [("client", str(idle), comm),
                              ("server", str(idle), comm)])
            for a in idle_alerts:
                self.assertIn(a[3], ("pending", "firing"))


if __name__ == "__main__":
    unittest.main()
