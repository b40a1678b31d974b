"""The shipped Grafana dashboard, recording rules, alerts and runbooks.

No root, no daemon, Python standard library and promtool only:

* promtool accepts the rule files (`check rules`) and their unit tests pass
  (`test rules`, dashboards/tests/*.yaml);
* a linter with the main rules of grafana/dashboard-linter (templated
  datasource, job and instance variables and matchers, $__rate_interval,
  units, descriptions, templated panel datasources), plus: every metric a
  panel or rule names exists in the daemon's metric contract below (or is
  recorded by tcpstated.rules.yaml), label names and state values are real,
  every alert has for/severity/summary/description and a runbook (the
  installed file's section; runbook_url with runbookURLPattern) whose
  section exists in docs/runbooks.md;
* every dashboard query, with Grafana's variables filled in, evaluates
  without error to a non-empty result carrying the labels its legend uses,
  against synthetic series shaped like a real scrape (via promtool's rule
  unit tests, with the recording rules loaded);
* the shipped dashboard, rule files and PrometheusRule are byte for byte
  what the jsonnet mixin (dashboards/mixin) generates.

Run: cd tests/integration && python3 -m unittest -v test_dashboards
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DASHBOARDS = os.path.join(ROOT, "dashboards")
DASHBOARD_JSON = os.path.join(DASHBOARDS, "tcpstated.json")
GENERATE = os.path.join(DASHBOARDS, "mixin", "generate")
RUNBOOKS = os.path.join(ROOT, "docs", "runbooks.md")
MIXIN = os.path.join(DASHBOARDS, "mixin")
# An alert's `runbook` annotation with the mixin's default settings.
RUNBOOK_ANNOTATION = ("docs/runbooks.md#%s (installed as "
                      "/usr/share/doc/tcpstated/runbooks.md)")


def rule_files():
    """Rule files: dashboards/*.rules.yaml, *.alerts.yaml, rules/*.yaml."""
    files = sorted(glob.glob(os.path.join(DASHBOARDS, "*.rules.yaml")) +
                   glob.glob(os.path.join(DASHBOARDS, "*.alerts.yaml")) +
                   glob.glob(os.path.join(DASHBOARDS, "rules", "*.yaml")))
    return files


def rule_test_files():
    return sorted(glob.glob(os.path.join(DASHBOARDS, "tests", "*.yaml")))


# ---- the daemon's metric contract (SPEC.md, README.md) -----------------------

STATES = ("syn_sent", "syn_recv", "established", "fin_wait1", "fin_wait2",
          "time_wait", "close", "close_wait", "last_ack", "listen", "closing",
          "new_syn_recv")
SOURCES = ("inet_sock_set_state", "tcp_receive_reset", "tcp_send_reset",
           "tcp_retransmit_synack", "tcp_retransmit_skb")
OWNER = ("netns", "comm", "unit", "role", "port")
LISTENER = ("netns", "port")
DESTINATION = ("netns", "saddr", "daddr", "dport")

# metric -> (type, labels)
METRICS = {
    "tcpstated_sockets": ("gauge", ("netns", "state")),
    "tcpstated_tracked_sockets": ("gauge", ()),
    "tcpstated_tracked_sockets_limit": ("gauge", ()),
    "tcpstated_close_wait_sockets": ("gauge", OWNER),
    "tcpstated_close_wait_leaked_sockets": ("gauge", OWNER),
    "tcpstated_close_wait_oldest_seconds": ("gauge", OWNER),
    "tcpstated_listen_syn_recv_sockets": ("gauge", LISTENER),
    "tcpstated_listen_accept_queue_length": ("gauge", LISTENER),
    "tcpstated_listen_accept_queue_limit": ("gauge", LISTENER),
    "tcpstated_syn_flood_active": ("gauge", LISTENER),
    "tcpstated_ephemeral_ports_used": ("gauge", DESTINATION),
    "tcpstated_ephemeral_ports_available": ("gauge", ("netns",)),
    "tcpstated_time_wait_limit": ("gauge", ("netns",)),
    "tcpstated_port_exhaustion_active": ("gauge", DESTINATION),
    "tcpstated_netns_info": ("gauge", ("netns", "name")),
    "tcpstated_build_info": ("gauge", ("version", "attach")),
    "tcpstated_kernel_info": ("gauge", ("release", "attach")),
    "tcpstated_reconcile_dump_seconds": ("gauge", ()),
    "tcpstated_transitions_total": ("counter", ("from", "to")),
    "tcpstated_invalid_transitions_total": ("counter", ("from", "to")),
    "tcpstated_events_total": ("counter", ("source",)),
    "tcpstated_events_lost_total": ("counter", ("source",)),
    "tcpstated_events_missed_total": ("counter", ("source",)),
    "tcpstated_event_decode_errors_total": ("counter", ()),
    "tcpstated_events_unmerged_total": ("counter", ()),
    "tcpstated_evictions_total": ("counter", ()),
    "tcpstated_mirror_resyncs_total": ("counter", ()),
    "tcpstated_reconcile_corrections_total": ("counter", ("state",)),
    "tcpstated_sock_diag_errors_total": ("counter", ()),
    "tcpstated_synack_retransmits_total": ("counter", LISTENER),
    "tcpstated_syncookies_sent_total": ("counter", ("netns",)),
    "tcpstated_listen_overflows_total": ("counter", ("netns",)),
    "tcpstated_listen_drops_total": ("counter", ("netns",)),
    "tcpstated_syn_queue_full_drops_total": ("counter", ("netns",)),
    "tcpstated_time_wait_overflows_total": ("counter", ("netns",)),
    "tcpstated_state_duration_seconds": ("histogram", ("state",)),
    "tcpstated_http_connections_dropped_total": ("counter", ("reason",)),
    "tcpstated_http_auth_refused_total": ("counter", ("reason",)),
}
# Stuck FIN_WAIT2, idle connections and dead peers (issue 14, items 1-2).
FIN_WAIT2 = ("netns", "comm", "unit", "daddr", "dport")
METRICS.update({
    "tcpstated_fin_wait2_sockets": ("gauge", FIN_WAIT2),
    "tcpstated_fin_wait2_stuck_sockets": ("gauge", FIN_WAIT2),
    "tcpstated_fin_wait2_oldest_seconds": ("gauge", FIN_WAIT2),
    "tcpstated_fin_wait2_orphan_sockets": ("gauge", ("netns",)),
    "tcpstated_idle_sockets": ("gauge", OWNER + ("keepalive",)),
    "tcpstated_idle_longest_seconds": ("gauge", OWNER + ("keepalive",)),
    "tcpstated_dead_peer_sockets": ("gauge", OWNER + ("reason",)),
    "tcpstated_peer_liveness_dump_seconds": ("gauge", ()),
})
# Ages across a restart (issue 13): the state file, and CLOSE_WAIT ages that
# are only tcp_info's lower bound.
METRICS.update({
    "tcpstated_close_wait_age_lower_bound_sockets": ("gauge", OWNER),
    "tcpstated_state_file_sockets": ("gauge", ()),
    "tcpstated_state_file_write_errors_total": ("counter", ()),
})
# Target labels Prometheus adds, and its own series.
TARGET_LABELS = ("cluster", "job", "instance")
PROMETHEUS_METRICS = {"up": ()}

REQUIRED_ALERTS = (
    "TcpstatedCloseWaitLeak", "TcpstatedSynFlood",
    "TcpstatedEphemeralPortExhaustion", "TcpstatedTimeWaitBucketsNearLimit",
    "TcpstatedEventsLost", "TcpstatedInvalidTransitions", "TcpstatedDown")
SEVERITIES = ("critical", "warning", "info")
# Alerts that must exist for the metrics behind them (issue 16).
REQUIRED_ALERTS += ("TcpstatedListenOverflows", "TcpstatedMirrorEvictions",
                    "TcpstatedSockDiagErrors",
                    "TcpstatedEndpointAbuse")
# Every dashboard selector carries these (cluster, job, instance variables).
DASHBOARD_MATCHERS = (("cluster", "=~", "$cluster"), ("job", "=~", "$job"),
                      ("instance", "=~", "$instance"))
MAX_DESCRIPTION = 200  # longer explanations belong in the runbook
REQUIRED_ROWS = (
    "Connection states and transitions", "CLOSE_WAIT leaks", "SYN floods",
    "TIME_WAIT and ephemeral ports", "tcpstated health")
# Connect failures per destination and resets per port (issue 14), from
# dashboards/mixin/outcomes.libsonnet.
CONNECT_DESTINATION = ("netns", "daddr", "dport")
RESET_PORT = ("netns", "role", "port")
METRICS.update({
    "tcpstated_connect_failures_total":
        ("counter", CONNECT_DESTINATION + ("reason",)),
    "tcpstated_connect_duration_seconds":
        ("histogram", CONNECT_DESTINATION),
    "tcpstated_connect_failing_active": ("gauge", CONNECT_DESTINATION),
    "tcpstated_resets_total":
        ("counter", RESET_PORT + ("direction", "state")),
    "tcpstated_resets_active": ("gauge", RESET_PORT),
})
REQUIRED_ALERTS += ("TcpstatedConnectFailures", "TcpstatedConnectionResets")
# Rows from the mixin's dashboardExtraRows go before the health row, in the
# order mixin.libsonnet imports their files.
REQUIRED_ROWS = REQUIRED_ROWS[:-1] + (
    "Connect failures and resets",
    "Stuck FIN_WAIT2, idle and dead peers") + REQUIRED_ROWS[-1:]
REQUIRED_ALERTS += ("TcpstatedFinWait2Stuck", "TcpstatedDeadPeers",
                    "TcpstatedIdleConnectionsWithoutKeepalive")


def series_names():
    """Every series name a scrape of the daemon can contain."""
    names = {}
    for name, (kind, labels) in METRICS.items():
        if kind == "histogram":
            names[name + "_bucket"] = labels + ("le",)
            names[name + "_sum"] = labels
            names[name + "_count"] = labels
        else:
            names[name] = labels
    names.update(PROMETHEUS_METRICS)
    return names


# ---- a YAML reader for the subset the rule files use ---------------------------
#
# Block mappings and sequences, plain / single- / double-quoted scalars on one
# line, and |, |-, >, >- block scalars. Everything is a string. Anything else
# (flow collections, anchors, multi-line plain scalars) raises, so a rule file
# that leaves the subset fails loudly instead of being misread.

class YamlSubsetError(ValueError):
    pass


_KEY_RE = re.compile(
    r"""^(?P<key>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"{}\[\],&*!|>%@`-]"""
    r"""[^:#]*?|-[^\s:#][^:#]*?)\s*:(?:\s+(?P<rest>.*))?$""")


def _scalar(text, where):
    text = text.strip()
    if not text:
        return ""
    if text[0] == '"':
        end = re.match(r'"((?:[^"\\]|\\.)*)"\s*(#.*)?$', text)
        if not end:
            raise YamlSubsetError("%s: unsupported double-quoted scalar" % where)
        try:
            return json.loads('"%s"' % end.group(1))
        except ValueError as e:
            raise YamlSubsetError("%s: %s" % (where, e))
    if text[0] == "'":
        end = re.match(r"'((?:[^']|'')*)'\s*(#.*)?$", text)
        if not end:
            raise YamlSubsetError("%s: unsupported single-quoted scalar" % where)
        return end.group(1).replace("''", "'")
    if text[0] in "{[&*!%@`":
        raise YamlSubsetError("%s: unsupported YAML construct %r" % (where,
                                                                     text))
    return re.sub(r"\s+#.*$", "", text).strip()


class _YamlSubset:
    def __init__(self, text, name):
        self.lines = text.replace("\r\n", "\n").split("\n")
        self.name = name
        self.i = 0

    def where(self):
        return "%s:%d" % (self.name, self.i + 1)

    @staticmethod
    def indent(line):
        return len(line) - len(line.lstrip(" "))

    def skip(self):
        while self.i < len(self.lines):
            s = self.lines[self.i].strip()
            if s and not s.startswith("#"):
                if "\t" in self.lines[self.i][:self.indent(self.lines[self.i])
                                              + 1]:
                    raise YamlSubsetError("%s: tab indentation" % self.where())
                return True
            self.i += 1
        return False

    def node(self, min_indent):
        if not self.skip():
            return None
        line = self.lines[self.i]
        ind = self.indent(line)
        if ind < min_indent:
            return None
        if line.strip() == "---" and ind == 0:
            self.i += 1
            return self.node(min_indent)
        if line.strip() == "-" or line.strip().startswith("- "):
            return self.sequence(ind)
        return self.mapping(ind)

    def mapping(self, ind):
        result = {}
        while self.skip():
            line = self.lines[self.i]
            cur = self.indent(line)
            if cur < ind:
                break
            if cur > ind:
                raise YamlSubsetError("%s: unexpected indentation" %
                                      self.where())
            if line.strip().startswith("- "):
                break
            m = _KEY_RE.match(line.strip())
            if not m:
                raise YamlSubsetError("%s: expected 'key: value'" %
                                      self.where())
            key = _scalar(m.group("key"), self.where())
            if key in result:
                raise YamlSubsetError("%s: duplicate key %r" % (self.where(),
                                                               key))
            rest = (m.group("rest") or "").strip()
            self.i += 1
            if rest.startswith("#"):
                rest = ""
            if not rest:
                # A nested block; a sequence may sit at the key's indent.
                if self.skip() and self.indent(self.lines[self.i]) == ind and \
                        self.lines[self.i].strip().startswith("- "):
                    result[key] = self.sequence(ind)
                else:
                    value = self.node(ind + 1)
                    result[key] = "" if value is None else value
            elif rest[0] in "|>":
                result[key] = self.block_scalar(rest, ind)
            else:
                result[key] = _scalar(rest, self.where())
        return result

    def sequence(self, ind):
        items = []
        while self.skip():
            line = self.lines[self.i]
            cur = self.indent(line)
            stripped = line.strip()
            if cur != ind or not (stripped == "-" or
                                  stripped.startswith("- ")):
                if cur > ind:
                    raise YamlSubsetError("%s: unexpected indentation" %
                                          self.where())
                break
            content = stripped[1:].strip()
            if not content:
                self.i += 1
                items.append(self.node(ind + 1))
            elif _KEY_RE.match(content):
                # "- key: value" opens a mapping indented past the dash.
                self.lines[self.i] = " " * (ind + 2) + content
                items.append(self.mapping(ind + 2))
            else:
                self.i += 1
                items.append(_scalar(content, self.where()))
        return items

    def block_scalar(self, header, parent_indent):
        m = re.match(r"([|>])([-+]?)\s*(#.*)?$", header)
        if not m:
            raise YamlSubsetError("%s: unsupported block scalar header %r" %
                                  (self.where(), header))
        style, chomp = m.group(1), m.group(2)
        raw = []
        content_indent = None
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if line.strip():
                ind = self.indent(line)
                if ind <= parent_indent:
                    break
                if content_indent is None:
                    content_indent = ind
                if ind < content_indent:
                    raise YamlSubsetError("%s: bad block indentation" %
                                          self.where())
                raw.append(line[content_indent:])
            else:
                raw.append("")
            self.i += 1
        while raw and raw[-1] == "" and chomp != "+":
            raw.pop()
        if style == "|":
            text = "\n".join(raw)
        else:
            text = ""
            for k, line in enumerate(raw):
                if line.startswith(" "):
                    raise YamlSubsetError(
                        "%s: more-indented lines in a folded scalar" %
                        self.where())
                if k == 0:
                    text = line
                elif line == "":
                    text += "\n"
                elif raw[k - 1] == "":
                    text += line
                else:
                    text += " " + line
        if chomp != "-" and raw:
            text += "\n"
        return text


def load_yaml_subset(path):
    with open(path, encoding="utf-8") as f:
        parser = _YamlSubset(f.read(), os.path.relpath(path, ROOT))
    doc = parser.node(0)
    if parser.skip():
        raise YamlSubsetError("%s: trailing content" % parser.where())
    return doc


# ---- PromQL, as far as the linter needs it --------------------------------------

_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\[\]]*\])
  | (?P<var>\$\{[^}]+\}|\$[A-Za-z_][A-Za-z0-9_]*)
  | (?P<num>0[xX][0-9a-fA-F]+
        |(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?:(?:ms|s|m|h|d|w|y)(?:\d+(?:ms|s|m|h|d|w|y))*)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){},@:])
""", re.X)

_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_KEYWORDS = {"bool", "offset", "and", "or", "unless", "atan2", "inf", "nan",
             "start", "end"}
_AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar",
                 "count", "count_values", "bottomk", "topk", "quantile"}
_FUNCTIONS = {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh",
    "atan", "atanh", "avg_over_time", "ceil", "changes", "clamp",
    "clamp_max", "clamp_min", "cos", "cosh", "count_over_time",
    "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
    "delta", "deriv", "exp", "floor", "histogram_count", "histogram_sum",
    "histogram_fraction", "histogram_quantile", "holt_winters", "hour",
    "idelta", "increase", "irate", "label_join", "label_replace", "last_over_time",
    "ln", "log10", "log2", "max_over_time", "min_over_time", "minute",
    "month", "pi", "predict_linear", "present_over_time",
    "quantile_over_time", "rad", "rate", "resets", "round", "scalar", "sgn",
    "sin", "sinh", "sort", "sort_desc", "sqrt", "stddev_over_time",
    "stdvar_over_time", "sum_over_time", "tan", "tanh", "time", "timestamp",
    "vector", "year"}


class PromQLError(ValueError):
    pass


def tokenize(expr):
    tokens = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN_RE.match(expr, pos)
        if not m:
            raise PromQLError("cannot tokenize %r at %r" % (expr,
                                                          expr[pos:pos + 20]))
        pos = m.end()
        kind = m.lastgroup
        if kind != "ws":
            tokens.append((kind, m.group()))
    return tokens


def _unquote(tok):
    kind, text = tok
    if kind != "str":
        raise PromQLError("expected a string, got %r" % text)
    if text[0] == "`":
        return text[1:-1]
    return json.loads('"%s"' % text[1:-1].replace("\\'", "'")) \
        if text[0] == '"' else text[1:-1].replace("\\'", "'")


def analyze(expr):
    """Returns (selectors, ranges, functions).

    selectors: [(metric name or None, [(label, op, value), ...])]
    ranges: the text inside every [...] (ranges and subqueries)
    functions: names of the functions called
    """
    toks = tokenize(expr)
    selectors, ranges, functions = [], [], []
    i = 0
    n = len(toks)

    def matchers_at(j):
        # toks[j] is '{'
        out = []
        j += 1
        while j < n and toks[j] != ("op", "}"):
            if toks[j][0] not in ("ident",) or j + 2 >= n:
                raise PromQLError("bad matcher in %r" % expr)
            label, op = toks[j][1], toks[j + 1][1]
            if op not in ("=", "!=", "=~", "!~"):
                raise PromQLError("bad matcher operator %r in %r" % (op, expr))
            out.append((label, op, _unquote(toks[j + 2])))
            j += 3
            if j < n and toks[j] == ("op", ","):
                j += 1
        if j >= n:
            raise PromQLError("unclosed '{' in %r" % expr)
        return out, j + 1

    depth = 0
    while i < n:
        kind, text = toks[i]
        if kind == "op" and text == "(":
            depth += 1
        elif kind == "op" and text == ")":
            depth -= 1
            if depth < 0:
                raise PromQLError("unbalanced ')' in %r" % expr)
        if kind == "ident":
            nxt = toks[i + 1] if i + 1 < n else None
            if text in _GROUPING:
                if nxt == ("op", "("):
                    j = i + 2
                    while j < n and toks[j] != ("op", ")"):
                        if toks[j][0] not in ("ident", "str") and \
                                toks[j] != ("op", ","):
                            raise PromQLError("bad label list in %r" % expr)
                        j += 1
                    i = j + 1
                    continue
                i += 1
                continue
            if text in _KEYWORDS or text in _AGGREGATIONS:
                i += 1
                continue
            if nxt == ("op", "("):
                if text not in _FUNCTIONS:
                    raise PromQLError("unknown function %r in %r" % (text,
                                                                    expr))
                functions.append(text)
                i += 1
                continue
            if nxt == ("op", "{"):
                m, i = matchers_at(i + 1)
            else:
                m, i = [], i + 1
            selectors.append((text, m))
            continue
        if kind == "op" and text == "{":
            m, i = matchers_at(i)
            selectors.append((None, m))
            continue
        if kind == "range":
            ranges.append(text[1:-1].strip())
        i += 1
    if depth != 0:
        raise PromQLError("unbalanced parentheses in %r" % expr)
    return selectors, ranges, functions


def recorded_names():
    names = set()
    for path in rule_files():
        for group in load_yaml_subset(path)["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    names.add(rule["record"])
    return names


def check_selectors(test, where, expr, recorded):
    """Metric names exist, label names and state/source values are real."""
    known = series_names()
    selectors, _, _ = analyze(expr)
    test.assertTrue(selectors, "%s: no selector in %r" % (where, expr))
    for metric, matchers in selectors:
        test.assertIsNotNone(metric, "%s: selector without a metric name "
                             "in %r" % (where, expr))
        if metric in recorded:
            labels = None  # checked by evaluating the queries
        else:
            test.assertIn(metric, known, "%s: unknown metric %r in %r"
                          % (where, metric, expr))
            labels = set(known[metric]) | set(TARGET_LABELS)
        for label, op, value in matchers:
            if labels is not None:
                test.assertIn(label, labels, "%s: %s has no label %r (%r)"
                              % (where, metric, label, expr))
            if value.startswith("$"):
                continue  # a Grafana variable, filled from label_values()
            if op == "=" and label in ("state", "from", "to"):
                test.assertIn(value, STATES, "%s: no TCP state %r in %r"
                              % (where, value, expr))
            if op == "=" and label == "source":
                test.assertIn(value, SOURCES, "%s: no event source %r in %r"
                              % (where, value, expr))


# ---- helpers ---------------------------------------------------------------------

def promtool():
    path = shutil.which("promtool")
    if path is None:
        raise AssertionError("promtool not found: apt-get install prometheus")
    return path


def run(args, cwd=None, timeout=120):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def load_dashboard():
    with open(DASHBOARD_JSON, encoding="utf-8") as f:
        return json.load(f)


def all_panels(dashboard):
    """Top-level panels and panels inside collapsed rows."""
    for p in dashboard["panels"]:
        yield p
        for q in p.get("panels", []):
            yield q


def query_panels(dashboard):
    return [p for p in all_panels(dashboard)
            if p.get("type") not in ("row", "text")]


def github_slug(heading):
    slug = heading.strip().lower()
    slug = re.sub(r"[^\w\- ]", "", slug)
    return slug.replace(" ", "-")


def runbook_anchors():
    with open(RUNBOOKS, encoding="utf-8") as f:
        text = f.read()
    anchors = {github_slug(m.group(1))
               for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)}
    anchors |= set(re.findall(r'<a\s+(?:id|name)="([^"]+)"', text))
    return anchors


def alert_rules():
    rules = []
    for path in rule_files():
        for group in load_yaml_subset(path)["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rules.append((os.path.relpath(path, ROOT), rule))
    return rules


# Grafana's valid unit ids (grafana/dashboard-linter panel-units-rule).
VALID_UNITS = set("""
none string short percent percentunit humidity dB hex0x hex sci locale pixel
bytes decbytes bits decbits kbytes deckbytes mbytes decmbytes gbytes decgbytes
tbytes dectbytes pbytes decpbytes pps binBps Bps binbps bps KiBs Kibits KBs
Kbits MiBs Mibits MBs Mbits GiBs Gibits GBs Gbits TiBs Tibits TBs Tbits
dateTimeAsIso dateTimeAsIsoNoDateIfToday dateTimeAsUS dateTimeAsUSNoDateIfToday
dateTimeAsLocal dateTimeAsLocalNoDateIfToday dateTimeAsSystem dateTimeFromNow
hertz ns µs ms s m h d dtdurationms dtdurations dthms dtdhms timeticks clockms
clocks cps ops reqps rps wps iops cpm opm rpm wpm bool bool_yes_no bool_on_off
""".split())


# ---- tests -------------------------------------------------------------------------

class Promtool(unittest.TestCase):
    def test_rule_files_exist(self):
        names = [os.path.basename(p) for p in rule_files()]
        self.assertTrue(any(n.endswith(".rules.yaml") for n in names), names)
        self.assertTrue(any(n.endswith(".alerts.yaml") for n in names), names)
        self.assertTrue(rule_test_files(), "no dashboards/tests/*.yaml")

    def test_check_rules(self):
        r = run([promtool(), "check", "rules"] + rule_files())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_rule_unit_tests(self):
        files = rule_test_files()
        r = run([promtool(), "test", "rules"] + files,
                cwd=os.path.join(DASHBOARDS, "tests"), timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_promtool_rejects_a_broken_rule(self):
        """The checks above can fail: a typo in PromQL is caught."""
        with tempfile.TemporaryDirectory(prefix="tcpstated-test-") as d:
            bad = os.path.join(d, "bad.yaml")
            with open(bad, "w") as f:
                f.write("groups:\n- name: x\n  rules:\n"
                        "  - record: x:y:z\n    expr: sum by (a (b)\n")
            r = run([promtool(), "check", "rules", bad])
            self.assertNotEqual(r.returncode, 0)


class RuleFiles(unittest.TestCase):
    def test_yaml_subset_matches_pyyaml(self):
        try:
            import yaml  # the cross-check of the subset reader
        except ImportError:
            self.fail("PyYAML is not installed (python3-yaml, scripts/dev)")
        for path in rule_files():
            with open(path, encoding="utf-8") as f:
                expected = yaml.safe_load(f)

            def strings(v):
                if isinstance(v, dict):
                    return {str(k): strings(x) for k, x in v.items()}
                if isinstance(v, list):
                    return [strings(x) for x in v]
                return str(v)
            self.assertEqual(load_yaml_subset(path), strings(expected), path)

    def test_required_alerts(self):
        names = {rule["alert"] for _, rule in alert_rules()}
        for name in REQUIRED_ALERTS:
            self.assertIn(name, names)

    def test_alerts_have_for_severity_annotations_and_runbooks(self):
        anchors = runbook_anchors()
        for path, rule in alert_rules():
            where = "%s: %s" % (path, rule["alert"])
            self.assertRegex(rule.get("for", ""), r"^\d+[smh]$", where)
            self.assertIn(rule.get("labels", {}).get("severity"), SEVERITIES,
                          where)
            ann = rule.get("annotations", {})
            for key in ("summary", "description", "runbook"):
                self.assertTrue(ann.get(key, "").strip(),
                                "%s: no %s" % (where, key))
            # Static summaries group notifications; the labels go in the
            # description, which stays short.
            self.assertNotIn("{{", ann["summary"], where)
            self.assertIn("$labels", ann["description"], where)
            self.assertLessEqual(len(ann["description"]), MAX_DESCRIPTION,
                                 where)
            self.assertIn("$value", ann["description"]
                          if rule["alert"] != "TcpstatedDown" else "$value",
                          where)
            anchor = rule["alert"].lower()
            # No site publishes the runbooks by default: the section of
            # the file the package installs, never a placeholder URL.
            self.assertNotIn("runbook_url", ann, where)
            self.assertEqual(ann.get("runbook"), RUNBOOK_ANNOTATION % anchor,
                             where)
            self.assertIn(anchor, anchors,
                          "%s: no section #%s in docs/runbooks.md"
                          % (where, anchor))

    def test_runbook_url_pattern_makes_absolute_links(self):
        # A site that publishes docs/runbooks.md gets `runbook_url` on every
        # alert and the links on the dashboard instead.
        pattern = "https://runbooks.test/tcpstated.md#%s"
        mixin = ("((import 'mixin.libsonnet') + "
                 "{ _config+:: { runbookURLPattern: '%s' } })" % pattern)
        r = run(["jsonnet", "-J", MIXIN, "-e", mixin + ".prometheusAlerts"],
                timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr)
        alerts = [rule for g in json.loads(r.stdout)["groups"]
                  for rule in g["rules"]]
        self.assertTrue(alerts)
        for rule in alerts:
            ann = rule["annotations"]
            self.assertEqual(ann.get("runbook_url"),
                             pattern % rule["alert"].lower(), rule["alert"])
            self.assertNotIn("runbook", ann, rule["alert"])
        r = run(["jsonnet", "-J", MIXIN, "-e", mixin +
                 ".grafanaDashboards['tcpstated.json']"], timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr)
        dashboard = json.loads(r.stdout)
        self.assertEqual([l["url"] for l in dashboard["links"]],
                         ["https://runbooks.test/tcpstated.md"])
        panel_urls = [l["url"] for p in all_panels(dashboard)
                      for l in p.get("links", [])]
        self.assertTrue(panel_urls, "no panel links to the runbooks")
        anchors = runbook_anchors()
        for url in panel_urls:
            self.assertTrue(url.startswith("https://runbooks.test/"), url)
            self.assertIn(url.split("#", 1)[1], anchors, url)

    def test_rules_name_existing_metrics(self):
        recorded = recorded_names()
        for path in rule_files():
            for group in load_yaml_subset(path)["groups"]:
                for rule in group["rules"]:
                    name = rule.get("alert") or rule.get("record")
                    check_selectors(self, "%s: %s" % (path, name),
                                    rule["expr"], recorded)

    def test_recording_rule_names(self):
        for name in recorded_names():
            self.assertRegex(name, r"^tcpstated:[a-z0-9_]+:[a-z0-9_]+$")

    def test_every_alert_fires_and_stays_quiet_in_unit_tests(self):
        """Each alert has a test that expects it and one that expects none;
        each recording rule is evaluated by a promql_expr_test."""
        firing, quiet, exprs = set(), set(), []
        for path in rule_test_files():
            with open(path, encoding="utf-8") as f:
                text = f.read()
            for case in re.split(r"\n\s*- eval_time:", text)[1:]:
                m = re.search(r"^\s*alertname:\s*(\S+)", case, re.M)
                if m:
                    alerts = re.search(r"exp_alerts:\s*(\[\])?", case)
                    if alerts and alerts.group(1):
                        quiet.add(m.group(1))
                    elif re.search(r"- exp_labels:", case):
                        firing.add(m.group(1))
            exprs += re.findall(r"^\s*- expr:\s*(.+)$", text, re.M)
        for _, rule in alert_rules():
            self.assertIn(rule["alert"], firing,
                          "no firing test for " + rule["alert"])
            self.assertIn(rule["alert"], quiet,
                          "no quiet test for " + rule["alert"])
        for name in recorded_names():
            self.assertTrue(any(re.search(r"\b%s\b" % re.escape(name), e)
                                for e in exprs),
                            "no promql_expr_test for " + name)


class DashboardLint(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = load_dashboard()
        cls.vars = {v["name"]: v for v in cls.d["templating"]["list"]}

    def test_generated_files_are_current(self):
        # jsonnet's std.manifestYamlDoc costs ~25 s of CPU here: minutes on
        # a machine busy with builds.
        r = run([GENERATE, "--check"], timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_generate_check_catches_a_stale_file(self):
        """--check compares byte for byte: one extra byte fails it."""
        with tempfile.TemporaryDirectory(prefix="tcpstated-test-") as d:
            for sub in ("dashboards", "packaging"):
                shutil.copytree(os.path.join(ROOT, sub),
                                os.path.join(d, sub),
                                ignore=shutil.ignore_patterns("node_modules"))
            with open(os.path.join(d, "dashboards", "tcpstated.rules.yaml"),
                      "a") as f:
                f.write("\n")
            r = run([os.path.join(d, "dashboards", "mixin", "generate"),
                     "--check"], timeout=600)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("tcpstated.rules.yaml", r.stderr)

    def test_read_only_without_placeholder_links(self):
        # The runbook links need runbookURLPattern (RuleFiles'
        # test_runbook_url_pattern_makes_absolute_links); by default there
        # is no site to link to, so none.
        self.assertIs(self.d["editable"], False)
        urls = [l["url"] for l in self.d["links"]]
        urls += [l["url"] for p in all_panels(self.d)
                 for l in p.get("links", [])]
        self.assertEqual(urls, [])

    def test_state_duration_heatmap(self):
        maps = [p for p in query_panels(self.d) if p["type"] == "heatmap"]
        self.assertEqual(len(maps), 1)
        (t,) = maps[0]["targets"]
        self.assertEqual(t["format"], "heatmap")
        self.assertIn("tcpstated_state_duration_seconds_bucket", t["expr"])
        self.assertIn("by (le)", t["expr"])
        self.assertIs(maps[0]["options"]["calculate"], False)

    def test_schema_and_rows(self):
        self.assertGreaterEqual(self.d["schemaVersion"], 36)
        self.assertTrue(self.d.get("uid") and self.d.get("title"))
        rows = [p["title"] for p in self.d["panels"] if p["type"] == "row"]
        self.assertEqual(rows, list(REQUIRED_ROWS))
        ids = [p["id"] for p in all_panels(self.d)]
        self.assertEqual(len(ids), len(set(ids)), "duplicate panel ids")

    def test_layout_does_not_overlap(self):
        cells = {}
        for p in all_panels(self.d):
            g = p["gridPos"]
            self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), cells, "%s overlaps %s"
                                     % (p["title"], cells.get((x, y))))
                    cells[(x, y)] = p["title"]

    # template-datasource-rule
    def test_template_datasource(self):
        ds = [v for v in self.vars.values() if v["type"] == "datasource"]
        self.assertEqual(len(ds), 1)
        self.assertEqual(ds[0]["name"], "datasource")
        self.assertEqual(ds[0]["query"], "prometheus")
        self.assertEqual(ds[0].get("label"), "Data source")

    # template-job-rule, template-instance-rule
    def test_template_job_and_instance(self):
        for name in ("cluster", "job", "instance"):
            v = self.vars.get(name)
            self.assertIsNotNone(v, "no %s variable" % name)
            self.assertEqual(v["type"], "query", name)
            self.assertIn(v["datasource"]["uid"],
                          ("$datasource", "${datasource}"), name)
            self.assertEqual(v.get("label"), name.capitalize(), name)
            self.assertTrue(v.get("multi"), name)
            self.assertTrue(v.get("includeAll"), name)
            # All clusters includes series without a cluster label.
            self.assertEqual(v.get("allValue"),
                             ".*" if name == "cluster" else ".+", name)
            query = v["query"]["query"] if isinstance(v["query"], dict) \
                else v["query"]
            m = re.match(r"^label_values\((.+),\s*%s\)$" % name, query)
            self.assertTrue(m, "%s: %r" % (name, query))
            check_selectors(self, "variable " + name, m.group(1), set())
        self.assertIn('job=~"$job"', self.vars["instance"]["query"])
        self.assertIn('cluster=~"$cluster"', self.vars["job"]["query"])

    # panel-datasource-rule
    def test_panels_use_the_datasource_variable(self):
        for p in query_panels(self.d):
            self.assertIn(p.get("datasource", {}).get("uid"),
                          ("$datasource", "${datasource}"), p["title"])
            for t in p["targets"]:
                self.assertIn(t.get("datasource", {}).get("uid"),
                              ("$datasource", "${datasource}"), p["title"])

    # panel-units-rule
    def test_panel_units(self):
        for p in query_panels(self.d):
            unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit")
            self.assertIn(unit, VALID_UNITS, "%s: unit %r" % (p["title"],
                                                              unit))
            for o in p["fieldConfig"].get("overrides", []):
                for prop in o["properties"]:
                    if prop["id"] == "unit":
                        self.assertIn(prop["value"], VALID_UNITS, p["title"])

    # panel-title-description-rule
    def test_panel_descriptions(self):
        for p in all_panels(self.d):
            self.assertTrue(p.get("title", "").strip(), p.get("id"))
            if p["type"] == "row":
                continue
            self.assertGreaterEqual(len(p.get("description", "").strip()), 80,
                                    "%s: description missing or too short"
                                    % p["title"])

    # target-job-rule, target-instance-rule, target-rate-interval-rule,
    # and metric names from the contract.
    def test_targets(self):
        recorded = recorded_names()
        for p in query_panels(self.d):
            self.assertTrue(p.get("targets"), p["title"])
            refs = [t["refId"] for t in p["targets"]]
            self.assertEqual(len(refs), len(set(refs)), p["title"])
            for t in p["targets"]:
                expr = t["expr"]
                where = "panel %r" % p["title"]
                selectors, ranges, functions = analyze(expr)
                for metric, matchers in selectors:
                    for m in DASHBOARD_MATCHERS:
                        self.assertIn(m, matchers, "%s: %s{} lacks %s in %r"
                                      % (where, metric, m, expr))
                for r in ranges:
                    self.assertEqual(r, "$__rate_interval",
                                     "%s: range [%s] in %r"
                                     % (where, r, expr))
                check_selectors(self, where, expr, recorded)

    def test_linter_catches_mistakes(self):
        """The PromQL checks above are not vacuous."""
        sel, ranges, funcs = analyze(
            'sum by (instance, le) (rate(tcpstated_x_total{job=~"$job", '
            'instance=~"$instance", state="close_wait"}[5m])) '
            '* on (a) group_left (b) y offset $__rate_interval')
        self.assertEqual([s[0] for s in sel], ["tcpstated_x_total", "y"])
        self.assertEqual(ranges, ["5m"])
        self.assertEqual(funcs, ["rate"])
        with self.assertRaises(PromQLError):
            analyze("rat(tcpstated_events_total[5m])")
        with self.assertRaises(AssertionError):
            check_selectors(self, "t", 'tcpstated_socket{state="x"}', set())
        with self.assertRaises(AssertionError):
            check_selectors(self, "t", 'tcpstated_sockets{stat="listen"}',
                            set())
        with self.assertRaises(AssertionError):
            check_selectors(self, "t", 'tcpstated_sockets{state="listening"}',
                            set())


# ---- dashboard queries against a synthetic scrape ---------------------------------

INSTANCES = ("h1:9640", "h2:9640")
JOB = "tcpstated"
# The initial namespace has the same inode on every host: joins must keep
# hosts apart.
NAMESPACES = ("4026531840", "4026532500")
LEGAL = (("close", "syn_sent"), ("syn_sent", "established"),
         ("syn_sent", "close"), ("close", "listen"), ("listen", "syn_recv"),
         ("syn_recv", "established"), ("established", "close_wait"),
         ("close_wait", "last_ack"), ("close_wait", "close"),
         ("last_ack", "close"), ("established", "fin_wait1"),
         ("fin_wait1", "fin_wait2"), ("fin_wait2", "close"))
BUCKETS = ("0.001", "0.01", "0.1", "0.5", "1", "5", "10", "30", "60", "120",
           "300", "600", "1800", "3600", "86400", "+Inf")
STEPS = 60  # minutes of data
EVAL = "40m"
RATE_INTERVAL = "4m"


def peer_liveness_series(ns):
    """(metric, values, labels) of the FIN_WAIT2 and peer-liveness
    families in one namespace, for synthetic_series."""
    gauge = "4x%d" % STEPS
    peer = dict(netns=ns, comm="api", unit="api.service",
                daddr="198.51.100.7", dport="5432")
    owner = dict(netns=ns, comm="pool", unit="pool.service", role="client",
                 port="5432")
    return [
        ("tcpstated_fin_wait2_sockets", gauge, peer),
        ("tcpstated_fin_wait2_stuck_sockets", gauge, peer),
        ("tcpstated_fin_wait2_oldest_seconds", "400+60x%d" % STEPS, peer),
        ("tcpstated_fin_wait2_orphan_sockets", gauge, dict(netns=ns)),
        ("tcpstated_idle_sockets", gauge, dict(owner, keepalive="off")),
        ("tcpstated_idle_longest_seconds", "4000x%d" % STEPS,
         dict(owner, keepalive="off")),
        ("tcpstated_dead_peer_sockets", gauge, dict(owner, reason="keepalive")),
    ]


def synthetic_series():
    """Series shaped like a real scrape of two hosts, every value non-zero
    and every counter rising, so that filters like `> 0` keep them."""
    out = []

    def add(name, labels, values):
        lab = ",".join('%s="%s"' % kv for kv in labels.items())
        out.append((name + "{" + lab + "}", values))

    for inst in INSTANCES:
        base = {"job": JOB, "instance": inst}
        gauge = "7x%d" % STEPS
        counter = "0+3x%d" % STEPS

        def g(metric, values=gauge, /, **labels):
            add(metric, dict(base, **labels), values)

        for ns in NAMESPACES:
            for state in STATES:
                g("tcpstated_sockets", netns=ns, state=state)
            g("tcpstated_netns_info", "1x%d" % STEPS, netns=ns,
              name="host" if ns == NAMESPACES[0] else "blue")
            g("tcpstated_ephemeral_ports_available", "28232x%d" % STEPS,
              netns=ns)
            g("tcpstated_time_wait_limit", "262144x%d" % STEPS, netns=ns)
            for c in ("syncookies_sent", "listen_overflows", "listen_drops",
                      "syn_queue_full_drops", "time_wait_overflows"):
                g("tcpstated_%s_total" % c, counter, netns=ns)
            for port in ("443", "8080"):
                lst = dict(netns=ns, port=port)
                g("tcpstated_listen_syn_recv_sockets", "100x%d" % STEPS, **lst)
                g("tcpstated_listen_accept_queue_length", "5x%d" % STEPS, **lst)
                g("tcpstated_listen_accept_queue_limit", "4096x%d" % STEPS,
                  **lst)
                g("tcpstated_syn_flood_active", "0 1x%d" % (STEPS - 1), **lst)
                g("tcpstated_synack_retransmits_total", counter, **lst)
            owner = dict(netns=ns, comm="java", unit="app.service",
                         role="server", port="8080")
            g("tcpstated_close_wait_sockets", "40x%d" % STEPS, **owner)
            g("tcpstated_close_wait_leaked_sockets", "30x%d" % STEPS, **owner)
            g("tcpstated_close_wait_oldest_seconds", "100+60x%d" % STEPS,
              **owner)
            dst = dict(netns=ns, saddr="10.0.0.1", daddr="10.0.0.2",
                       dport="5432")
            g("tcpstated_ephemeral_ports_used", "23000x%d" % STEPS, **dst)
            g("tcpstated_port_exhaustion_active", "1x%d" % STEPS, **dst)
            for name, values, labels in peer_liveness_series(ns):
                g(name, values, **labels)
        folded = dict(netns="other", comm="other", unit="other",
                      role="other", port="other")
        g("tcpstated_close_wait_sockets", "3x%d" % STEPS, **folded)
        g("tcpstated_close_wait_leaked_sockets", "1x%d" % STEPS, **folded)
        g("tcpstated_close_wait_oldest_seconds", "75x%d" % STEPS, **folded)
        g("tcpstated_ephemeral_ports_used", "100x%d" % STEPS, netns="other",
          saddr="other", daddr="other", dport="other")
        g("tcpstated_port_exhaustion_active", "0x%d" % STEPS, netns="other",
          saddr="other", daddr="other", dport="other")
        g("tcpstated_tracked_sockets", "900x%d" % STEPS)
        g("tcpstated_tracked_sockets_limit", "1000000x%d" % STEPS)
        g("tcpstated_build_info", "1x%d" % STEPS, version="0.1.0",
          attach="tp_btf")
        g("tcpstated_reconcile_dump_seconds", "0.05x%d" % STEPS)
        g("tcpstated_kernel_info", "1x%d" % STEPS, release="6.1.0-28-cloud-amd64",
          attach="tp_btf")
        for reason in ("overload", "per_source", "timeout", "queue_full"):
            g("tcpstated_http_connections_dropped_total", counter,
              reason=reason)
        for reason in ("invalid", "rate_limited", "busy"):
            g("tcpstated_http_auth_refused_total", counter, reason=reason)
        g("up", "1x%d" % STEPS)
        for frm, to in LEGAL:
            g("tcpstated_transitions_total", counter, **{"from": frm,
                                                         "to": to})
        g("tcpstated_invalid_transitions_total",
          "_x20 1+1x%d" % (STEPS - 21), **{"from": "syn_recv",
                                           "to": "listen"})
        for src in SOURCES:
            g("tcpstated_events_total", "0+100x%d" % STEPS, source=src)
            g("tcpstated_events_lost_total", counter, source=src)
            g("tcpstated_events_missed_total", counter, source=src)
        for state in STATES:
            g("tcpstated_reconcile_corrections_total", counter, state=state)
        for c in ("event_decode_errors", "evictions", "mirror_resyncs",
                  "sock_diag_errors"):
            g("tcpstated_%s_total" % c, counter)
        for state in ("established", "close_wait", "time_wait"):
            for k, le in enumerate(BUCKETS):
                g("tcpstated_state_duration_seconds_bucket",
                  "0+%dx%d" % (k + 1, STEPS), state=state, le=le)
            g("tcpstated_state_duration_seconds_count",
              "0+%dx%d" % (len(BUCKETS), STEPS), state=state)
            g("tcpstated_state_duration_seconds_sum", "0+100x%d" % STEPS,
              state=state)
    return out + outcome_series()


def outcome_series():
    """Connect failures, handshake times and resets (issue 14), in the
    same shape: two hosts, rising counters, a folded `other` series."""
    out = []
    for inst in INSTANCES:
        for ns in NAMESPACES + ("other",):
            dst = 'job="%s",instance="%s",netns="%s",daddr="%s",dport="%s"' % (
                JOB, inst, ns, "other" if ns == "other" else "192.0.2.10",
                "other" if ns == "other" else "5432")
            for reason in ("refused", "timed_out"):
                out.append(("tcpstated_connect_failures_total{%s,reason=\"%s\"}"
                            % (dst, reason), "0+3x%d" % STEPS))
            for k, le in enumerate(("0.001", "0.01", "0.1", "1", "+Inf")):
                out.append(("tcpstated_connect_duration_seconds_bucket{%s,"
                            "le=\"%s\"}" % (dst, le),
                            "0+%dx%d" % (k + 1, STEPS)))
            out.append(("tcpstated_connect_duration_seconds_count{%s}" % dst,
                        "0+5x%d" % STEPS))
            out.append(("tcpstated_connect_duration_seconds_sum{%s}" % dst,
                        "0+1x%d" % STEPS))
            out.append(("tcpstated_connect_failing_active{%s}" % dst,
                        "1x%d" % STEPS))
            port = 'job="%s",instance="%s",netns="%s",role="%s",port="%s"' % (
                JOB, inst, ns, "other" if ns == "other" else "server",
                "other" if ns == "other" else "8080")
            for direction, state in (("received", "established"),
                                     ("sent", "close_wait")):
                out.append(("tcpstated_resets_total{%s,direction=\"%s\","
                            "state=\"%s\"}" % (port, direction, state),
                            "0+3x%d" % STEPS))
            out.append(("tcpstated_resets_active{%s}" % port, "1x%d" % STEPS))
    return out


def expand(expr):
    """Fills in Grafana's variables as Grafana would for 'All'."""
    expr = expr.replace("$__rate_interval", RATE_INTERVAL)
    expr = expr.replace('"$job"', '"%s"' % JOB)
    expr = expr.replace('"$cluster"', '".*"')
    expr = expr.replace('"$state"', '"established"')
    expr = expr.replace('"$instance"', '"(%s)"' % "|".join(
        re.escape(i) for i in INSTANCES))
    if "$" in expr.replace("$1", ""):
        raise AssertionError("unexpanded variable in %r" % expr)
    return expr


def legend_labels(legend):
    return sorted(set(re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}",
                                 legend or "")))


def probe(expr, labels):
    """An expression that is exactly {} 1 when `expr` evaluates to a
    non-empty vector whose every element carries `labels`; otherwise an
    extra {missing_label="yes"} element appears, or nothing at all."""
    inner = "(%s)" % expr
    for label in labels:
        inner = 'label_replace(%s, "missing_label", "yes", "%s", "")' % (
            inner, label)
    return "count by (missing_label) (%s) > bool 0" % inner


class DashboardQueries(unittest.TestCase):
    def test_every_query_evaluates_to_data(self):
        d = load_dashboard()
        cases = []
        for p in query_panels(d):
            for t in p["targets"]:
                labels = legend_labels(t.get("legendFormat"))
                cases.append((p["title"], t["refId"], t["expr"],
                              probe(expand(t["expr"]), labels)))
        lines = ["rule_files:"]
        for path in rule_files():
            if path.endswith(".rules.yaml") or "/rules/" in path:
                lines.append("  - %s" % json.dumps(path))
        lines += ["evaluation_interval: 1m", "tests:",
                  "  - interval: 1m", "    input_series:"]
        for series, values in synthetic_series():
            lines.append("      - series: %s" % json.dumps(series))
            lines.append("        values: %s" % json.dumps(values))
        lines.append("    promql_expr_test:")
        for title, ref, _, expr in cases:
            lines.append("      # %s / %s" % (title, ref))
            lines.append("      - expr: %s" % json.dumps(expr))
            lines.append("        eval_time: %s" % EVAL)
            lines.append("        exp_samples:")
            lines.append("          - labels: '{}'")
            lines.append("            value: 1")
        with tempfile.TemporaryDirectory(prefix="tcpstated-test-") as tmp:
            path = os.path.join(tmp, "dashboard_queries.test.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
            r = run([promtool(), "test", "rules", path], cwd=tmp,
                    timeout=300)
        # promtool names the failing expression; map it back to the panel.
        report = r.stdout + r.stderr
        for title, ref, raw, expr in cases:
            if expr in report or json.dumps(expr)[1:-1] in report:
                report += "\n  -> panel %r, target %s: %s" % (title, ref, raw)
        self.assertEqual(r.returncode, 0, report)
        self.assertGreater(len(cases), 40)


if __name__ == "__main__":
    unittest.main()
