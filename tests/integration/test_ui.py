"""The live page at / in a real browser: Debian's chromium, headless, driven
through chromedriver's W3C WebDriver HTTP API with urllib (nothing is
downloaded; chromium and chromium-driver come from the archive).

A scenario in a private namespace holds known sockets (a listener, two
established connections, three leaked CLOSE_WAIT sockets); the test selects
that namespace on the page and asserts that what the page shows equals `ss`
and /metrics, that the leak appears with its owner, and that every request
the page made went to the daemon's own origin.

TCPSTATED_UI_SCREENSHOT=<file.png> also saves the page as the README shows
it (see the README, "The live page").
"""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from harness import Daemon, Netns, Workload, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DEADLINE = 30.0  # seconds any one wait may take
LEAKED = 3
ESTABLISHED_PAIRS = 2

CONFIG = """web:
  debug_sockets: true
tracking:
  reconcile_interval: 1s
  full_reconcile_interval: 1s
detectors:
  close_wait_leak_after: 1s
"""

# What a W3C element reference is keyed by.
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def fmt_count(n):
    """The page's number format (web/app.js fmtCount) for integers."""
    for limit, suffix in ((1e9, " G"), (1e6, " M"), (1e3, "k")):
        if abs(n) >= limit:
            return "%.1f%s" % (n / limit, suffix)
    return str(n)


def wait_for(what, probe, deadline=DEADLINE, interval=0.2):
    """Calls probe() until it returns something true; returns it, or fails
    naming `what` and the last value after `deadline` seconds."""
    end = time.monotonic() + deadline
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for %s (last: %r)" %
                                 (what, value))
        time.sleep(interval)


class WebDriverError(RuntimeError):
    pass


class Browser:
    """chromedriver and one headless chromium session, removed on close."""

    def __init__(self, width=1280, height=800):
        self.dir = tempfile.mkdtemp(prefix="tcpstated-test-chromium-")
        self.port = free_port()
        self.driver = subprocess.Popen(
            [CHROMEDRIVER, "--port=%d" % self.port,
             "--log-path=" + os.path.join(self.dir, "chromedriver.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.session = None
        try:
            wait_for("chromedriver", self._ready, deadline=20)
            args = ["--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-quic", "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    "--user-data-dir=" + os.path.join(self.dir, "profile"),
                    "--window-size=%d,%d" % (width, height)]
            caps = {"browserName": "chrome",
                    "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
                    "goog:loggingPrefs": {"performance": "ALL"}}
            value = self._call("POST", "/session",
                               {"capabilities": {"alwaysMatch": caps}},
                               timeout=60)
            self.session = value["sessionId"]
        except BaseException:
            self.close()
            raise

    def _ready(self):
        try:
            return self._call("GET", "/status", timeout=2).get("ready")
        except (OSError, WebDriverError):
            return False

    def _call(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            "http://127.0.0.1:%d%s" % (self.port, path), data=data,
            method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            raise WebDriverError("%s %s: %s" % (method, path,
                                                e.read()[:500])) from None

    def do(self, method, path, body=None):
        return self._call(method, "/session/%s%s" % (self.session, path),
                          body)

    def open(self, url):
        self.do("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.do("POST", "/execute/sync",
                       {"script": script, "args": list(args)})

    def js_async(self, script, *args):
        return self.do("POST", "/execute/async",
                       {"script": script, "args": list(args)})

    def click(self, css):
        ref = self.do("POST", "/element",
                      {"using": "css selector", "value": css})
        if ELEMENT not in ref:
            raise WebDriverError("no element reference in %r" % (ref,))
        self.do("POST", "/element/%s/click" % ref[ELEMENT], {})

    def resize(self, width, height):
        self.do("POST", "/window/rect", {"width": width, "height": height})

    def screenshot(self):
        return base64.b64decode(self.do("GET", "/screenshot"))

    def requested_urls(self):
        """Every URL the browser asked for over the network since the last
        call (the DevTools network events chromedriver records). The
        browser's own pages (chrome:, about:, data:) are not network."""
        urls = []
        for entry in self.do("POST", "/se/log", {"type": "performance"}):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                url = message["params"]["request"]["url"]
                if not url.startswith(("chrome:", "about:", "data:",
                                       "blob:", "chrome-extension:")):
                    urls.append(url)
        return urls

    def close(self):
        if self.session is not None:
            try:
                self.do("DELETE", "")
            except (OSError, WebDriverError):
                pass
            self.session = None
        if self.driver.poll() is None:
            self.driver.terminate()
            try:
                self.driver.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.driver.kill()
                self.driver.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# Reads what the page shows: per state box the number drawn and the exact
# value behind it, the CLOSE_WAIT leak rows, the arrows' counts, the state
# tooltips and the count of answers drawn.
READ_PAGE = """
const boxes = {};
for (const g of document.querySelectorAll('#diagram [data-state]')) {
  boxes[g.dataset.state] = {
    shown: g.querySelector('.count').textContent,
    exact: Number(g.dataset.count),
    tip: g.querySelector('title').textContent,
    cell: document.querySelector(
        '#state-table tr[data-state="' + g.dataset.state + '"] td.n')
        .textContent};
}
const leaks = [];
for (const r of document.querySelectorAll('#close-wait .row')) {
  const a = r.querySelector('a');
  leaks.push({netns: r.dataset.netns, comm: r.dataset.comm,
              leaked: Number(r.dataset.leaked), text: r.textContent,
              link: a ? a.getAttribute('href') : null});
}
const edges = {};
for (const g of document.querySelectorAll('#diagram [data-transition]')) {
  edges[g.dataset.transition] = {count: Number(g.dataset.count),
                                 cls: g.getAttribute('class')};
}
return {boxes, leaks, edges,
        updates: Number(document.body.dataset.updates || 0),
        selected: document.getElementById('netns').value,
        note: document.getElementById('scope-note').textContent,
        status: document.getElementById('status').textContent};
"""

LAYOUT = """
const d = document.getElementById('diagram').getBoundingClientRect();
const a = document.querySelector('aside').getBoundingClientRect();
return {inner: window.innerWidth, scroll: document.documentElement.scrollWidth,
        diagram: [d.left, d.top, d.width, d.height],
        aside: [a.left, a.top, a.width, a.height]};
"""


class LivePage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("real-kernel tests need root")
        for binary in (CHROMIUM, CHROMEDRIVER):
            if not os.access(binary, os.X_OK):
                raise unittest.SkipTest(
                    binary + " is missing: apt-get install chromium "
                    "chromium-driver (scripts/dev deps)")

    def hold_scenario(self, w):
        """A listener, established pairs and leaked CLOSE_WAIT sockets that
        stay as they are until the workload ends."""
        port = int(w.do("listen", "l", "4", 0).split()[1])
        reply = w.do("connectmany", "e", "4", port, ESTABLISHED_PAIRS)
        self.assertEqual(reply.split(), ["ok", str(ESTABLISHED_PAIRS)])
        w.do("acceptmany", "es", "l", ESTABLISHED_PAIRS)
        reply = w.do("connectmany", "c", "4", port, LEAKED)
        self.assertEqual(reply.split(), ["ok", str(LEAKED)])
        w.do("acceptmany", "s", "l", LEAKED)
        w.do("closemany", "c", LEAKED)
        for i in range(LEAKED):
            w.do("waiteof", "s%d" % i)
        return port

    def test_page_shows_the_namespace_as_ss_and_metrics_do(self):
        # The leaked connections' clients closed: orphaned FIN_WAIT2 sockets
        # that must outlive a slow run (the kernel's longest timeout).
        with Daemon(extra_config=CONFIG) as d, \
                Netns("ui", sysctls={"net.ipv4.tcp_fin_timeout": 120}) as ns, \
                Workload(ns) as w:
            self.hold_scenario(w)
            # The servers got their EOF, but the kernel acknowledges a FIN
            # with a delayed ACK (pingpong mode from CLOSE_WAIT on), so the
            # clients may still be in FIN_WAIT1 for up to ~200 ms: the
            # ground truth is what `ss` shows once that ACK is in.
            deadline = time.monotonic() + 5
            expected = ns.ss_counts()
            while expected["fin_wait1"] and time.monotonic() < deadline:
                time.sleep(0.05)
                expected = ns.ss_counts()
            self.assertEqual(expected["close_wait"], LEAKED)
            self.assertEqual(expected["established"], 2 * ESTABLISHED_PAIRS)
            m = d.wait_sockets(ns.inode, expected, timeout=DEADLINE)
            self.assertEqual(m.sockets(ns.inode), expected)

            def leak_series():
                return [(s, v) for s, v in d.metrics().family(
                    "tcpstated_close_wait_leaked_sockets", ns.inode) if v > 0]
            series = wait_for("the leak in /metrics", leak_series)
            self.assertEqual(sum(v for _, v in series), LEAKED)
            owner = series[0][0]["comm"]
            self.assertTrue(owner, series)

            origin = "http://127.0.0.1:%d" % d.port
            with Browser(1280, 800) as b:
                b.requested_urls()  # the browser's own start page
                b.open(origin + "/")
                wait_for("the first answer drawn",
                         lambda: b.js(READ_PAGE)["updates"] >= 1)
                b.click("#netns option[value='%d']" % ns.inode)

                def page_in_namespace():
                    page = b.js(READ_PAGE)
                    return (page if page["selected"] == str(ns.inode) and
                            str(ns.inode) in page["note"] else None)
                before = wait_for("the namespace selected", page_in_namespace)
                # Two more answers, fetched after this scrape (one may have
                # been in flight): rates exist, and the arrows' counters lie
                # between this scrape and the next.
                transitions_before = d.metrics().transitions()
                wait_for("two refreshes", lambda: b.js(READ_PAGE)["updates"]
                         >= before["updates"] + 3)
                page = b.js(READ_PAGE)
                transitions_after = d.metrics().transitions()

                # Socket counts: the page, ss and /metrics agree.
                ss_now = ns.ss_counts()
                self.assertEqual(ss_now, expected)
                shown = {s: box["exact"] for s, box in page["boxes"].items()
                         if s in expected}
                self.assertEqual(shown, expected)
                for state, box in page["boxes"].items():
                    with self.subTest(state=state):
                        self.assertEqual(box["shown"],
                                         fmt_count(box["exact"]))
                        self.assertEqual(box["cell"], box["shown"])
                        # One sentence after the count.
                        self.assertRegex(box["tip"],
                                         r"^[A-Z_0-9]+: [\d,]+ sockets?\. "
                                         r"[^.]+(\([^)]*\))?[^.]*\.$")

                # The leak, with its owner and a link to its sockets.
                self.assertEqual(len(page["leaks"]), 1, page["leaks"])
                leak = page["leaks"][0]
                self.assertEqual(leak["netns"], str(ns.inode))
                self.assertEqual(leak["comm"], owner)
                self.assertEqual(leak["leaked"], LEAKED)
                self.assertIn(owner, leak["text"])
                self.assertEqual(
                    leak["link"],
                    "/debug/sockets?state=close_wait&limit=20&netns=%d" %
                    ns.inode)

                # Arrows: kernel counters, host-wide, so other engineers'
                # traffic (and these scrapes) move them: the page's values
                # lie between the two scrapes.
                for key, edge in page["edges"].items():
                    f, t = key.split(">")
                    with self.subTest(transition=key):
                        self.assertLessEqual(
                            transitions_before.get((f, t), 0), edge["count"])
                        self.assertLessEqual(
                            edge["count"], transitions_after.get((f, t), 0))
                        self.assertEqual("idle" in edge["cls"],
                                         edge["count"] == 0)
                self.assertGreater(page["edges"]["established>close_wait"]
                                   ["count"], 0)

                # Nothing left the daemon's origin, and the policy would
                # stop anything that tried (another loopback origin).
                urls = b.requested_urls()
                self.assertIn(origin + "/api/v1/state", urls)
                self.assertIn(origin + "/ui/app.js", urls)
                for url in urls:
                    self.assertTrue(url.startswith(origin + "/"), url)
                blocked = b.js_async(
                    "const done = arguments[arguments.length - 1];"
                    "fetch(arguments[0]).then(() => done('fetched'),"
                    " (e) => done('blocked: ' + e.message));",
                    "http://127.0.0.2:%d/metrics" % d.port)
                self.assertTrue(blocked.startswith("blocked"), blocked)
                self.assertFalse([u for u in b.requested_urls()
                                  if not u.startswith(origin + "/")])
                resources = b.js(
                    "return performance.getEntriesByType('resource')"
                    ".map((e) => e.name);")
                for url in resources:
                    self.assertTrue(url.startswith(origin + "/"), url)

                # Legible at 1280x800: diagram and panel side by side, no
                # horizontal scrolling.
                layout = b.js(LAYOUT)
                self.assertLessEqual(layout["scroll"], layout["inner"])
                self.assertGreaterEqual(layout["aside"][0],
                                        layout["diagram"][0] +
                                        layout["diagram"][2])
                shot = os.environ.get("TCPSTATED_UI_SCREENSHOT")
                if shot:
                    with open(shot, "wb") as f:
                        f.write(b.screenshot())
                else:
                    self.assertEqual(b.screenshot()[:8], b"\x89PNG\r\n\x1a\n")

                # A phone: one column, still no horizontal scrolling, the
                # diagram as wide as the screen allows.
                b.resize(390, 844)
                layout = wait_for(
                    "the phone layout",
                    lambda: (lambda l: l if l["inner"] <= 420 else None)(
                        b.js(LAYOUT)))
                self.assertLessEqual(layout["scroll"], layout["inner"])
                self.assertGreater(layout["diagram"][2], 300)
                self.assertGreater(layout["aside"][1], layout["diagram"][1])
                # There the states' table opens by itself (a fresh load).
                b.js("history.replaceState(null, '', '/#netns=%d');" %
                     ns.inode)
                b.do("POST", "/refresh", {})
                wait_for("the table on a phone", lambda: b.js(
                    "return document.getElementById('state-details').open "
                    "&& document.body.dataset.updates > 0 && document."
                    "querySelector('#state-table tr[data-state=close_wait] "
                    "td.n').textContent;") == str(LEAKED))


if __name__ == "__main__":
    unittest.main()
