#!/usr/bin/env python3
"""Generates dashboards/tcpstated.json, the tcpstated Grafana dashboard.

The JSON is checked in so that it can be imported as it is; this script is
its source. Edit here, then run

    python3 dashboards/tcpstated_dashboard.py          # rewrite tcpstated.json
    python3 dashboards/tcpstated_dashboard.py --check  # exit 1 if it is stale

(tests/integration/test_dashboards.py runs the check.) Standard library only.

Everything the queries share lives at the top: the selector every query
filters on, the datasource, the units. Several panels read recording rules
from tcpstated.rules.yaml (names starting with `tcpstated:`), so load those
rules into the Prometheus that Grafana queries.
"""

import json
import os
import sys

# ---- the one place for selectors and shared settings ----------------------

# Every PromQL selector in the dashboard carries these matchers.
SELECTOR = 'job=~"$job", instance=~"$instance"'
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
UID = "tcpstated-overview"
TITLE = "tcpstated / TCP connection states"

# Thresholds shown on panels; the alerts in tcpstated.alerts.yaml use the same.
CLOSE_WAIT_LEAK_WARN = 10
CLOSE_WAIT_LEAK_PAGE = 500
CLOSE_WAIT_LEAK_AFTER_S = 60       # detectors.close_wait_leak_after
HALF_OPEN_RATIO = 0.5              # detectors.syn_flood_half_open_ratio
PORT_RATIO_WARN = 0.8              # detectors.port_exhaustion_ratio
PORT_RATIO_PAGE = 0.95
TIME_WAIT_RATIO = 0.8              # detectors.time_wait_buckets_ratio

OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "tcpstated.json")


def sel(metric, **matchers):
    """metric{job=~"$job", instance=~"$instance", extra="..."}"""
    extra = "".join(', %s="%s"' % (k, v) for k, v in matchers.items())
    return "%s{%s%s}" % (metric, SELECTOR, extra)


def rate(metric, **matchers):
    return "rate(%s[%s])" % (sel(metric, **matchers), RATE)


# ---- panel builders ---------------------------------------------------------

def target(expr, legend="", ref="A", instant=False, table=False):
    t = {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "refId": ref,
        "range": not instant,
        "instant": instant,
    }
    if table:
        t["format"] = "table"
    return t


def targets(*pairs, **kw):
    """targets((expr, legend), (expr, legend), ...) with refIds A, B, ..."""
    return [target(e, l, ref=chr(ord("A") + i), **kw)
            for i, (e, l) in enumerate(pairs)]


def steps(*pairs):
    """Threshold steps: steps(("green", None), ("red", 1))."""
    return {"mode": "absolute",
            "steps": [{"color": c, "value": v} for c, v in pairs]}


def timeseries(title, description, tgts, unit, w=12, h=8, min_=0, max_=None,
               thresholds=None, stack=False, legend_right=False):
    custom = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 10 if not stack else 40,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "line" if thresholds else "off"},
    }
    defaults = {"unit": unit, "custom": custom,
                "color": {"mode": "palette-classic"}}
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    defaults["thresholds"] = thresholds or steps(("green", None))
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"showLegend": True,
                       "displayMode": "table",
                       "placement": "right" if legend_right else "bottom",
                       "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": tgts,
        "_size": (w, h),
    }


def stat(title, description, tgts, unit, thresholds, w=6, h=5,
         no_value="0", mappings=None):
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": thresholds,
                         "color": {"mode": "thresholds"},
                         "noValue": no_value,
                         "mappings": mappings or []},
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                              "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
        },
        "targets": tgts,
        "_size": (w, h),
    }


def table(title, description, tgts, unit, rename, hide=(), overrides=(),
          sort_by=None, w=12, h=8):
    """An instant table: one row per series, label columns, values renamed."""
    exclude = {"Time": True, "__name__": True}
    exclude.update({name: True for name in hide})
    transformations = []
    if len(tgts) > 1:
        transformations.append({"id": "merge", "options": {}})
    transformations.append({"id": "organize",
                            "options": {"excludeByName": exclude,
                                        "renameByName": rename}})
    options = {"showHeader": True, "footer": {"show": False}}
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": True}]
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit,
                                     "custom": {"align": "auto"}},
                        "overrides": list(overrides)},
        "options": options,
        "transformations": transformations,
        "targets": tgts,
        "_size": (w, h),
    }


def state_timeline(title, description, tgts, mappings, w=12, h=8):
    return {
        "type": "state-timeline",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {
            "defaults": {"unit": "none", "mappings": mappings,
                         "color": {"mode": "thresholds"},
                         "thresholds": steps(("green", None)),
                         "custom": {"fillOpacity": 80, "lineWidth": 0}},
            "overrides": [],
        },
        "options": {"showValue": "never", "mergeValues": True,
                    "rowHeight": 0.9,
                    "legend": {"showLegend": False},
                    "tooltip": {"mode": "single"}},
        "targets": tgts,
        "_size": (w, h),
    }


def unit_override(field, unit):
    return {"matcher": {"id": "byName", "options": field},
            "properties": [{"id": "unit", "value": unit}]}


def value_map(*entries):
    """value_map((0, "ok", "green"), (1, "FLOOD", "red"))"""
    options = {str(v): {"text": text, "color": color, "index": i}
               for i, (v, text, color) in enumerate(entries)}
    return [{"type": "value", "options": options}]


# ---- rows ------------------------------------------------------------------

def row_states():
    return ("Connection states and transitions", [
        timeseries(
            "Sockets by state",
            "TCP sockets on each host in each state, all network namespaces "
            "summed (recording rule tcpstated:sockets:sum_by_state).\n\n"
            "* **LISTEN**: a server socket waiting for connections.\n"
            "* **SYN_SENT**: connect() sent its SYN and waits for the "
            "SYN-ACK. Many of them: the destination is slow, down or "
            "filtered, or this host is scanning.\n"
            "* **SYN_RECV / NEW_SYN_RECV**: the server answered a SYN with a "
            "SYN-ACK and waits for the client's final ACK (half-open). "
            "NEW_SYN_RECV are the kernel's lightweight request sockets in a "
            "listener's SYN queue (`ss` shows them as SYN-RECV); thousands "
            "of them mean a SYN flood.\n"
            "* **ESTABLISHED**: the three-way handshake completed; data "
            "flows.\n"
            "* **FIN_WAIT1 / FIN_WAIT2**: this side closed first (the "
            "active closer) and sent its FIN; in FIN_WAIT2 that FIN was "
            "acknowledged and it waits for the peer's FIN (bounded by "
            "net.ipv4.tcp_fin_timeout once the application has closed).\n"
            "* **TIME_WAIT**: the active closer after the last ACK: it "
            "keeps the connection's 4-tuple for 2MSL (60 s on Linux) so a "
            "lost final ACK can be repeated and late segments cannot "
            "corrupt a new connection. Normal on clients and proxies; "
            "inferred by tcpstated since the kernel does not report it.\n"
            "* **CLOSING**: both sides closed at the same time.\n"
            "* **CLOSE_WAIT**: the peer closed (its FIN arrived) and this "
            "application has not called close() yet. A count that only "
            "grows is a leak in the application, never a network problem.\n"
            "* **LAST_ACK**: the application closed after the peer did and "
            "waits for the ACK of its FIN.\n"
            "* **CLOSE**: created or being torn down; normally near zero.",
            targets((sel("tcpstated:sockets:sum_by_state"),
                     "{{instance}} {{state}}")),
            "short", legend_right=True),
        timeseries(
            "Sockets per namespace and state",
            "The same counts per network namespace (container, pod or "
            "`ip netns`), named from tcpstated_netns_info: `host` is the "
            "initial namespace; a namespace without a name yet shows its "
            "inode number (`readlink /proc/PID/ns/net`, `lsns -t net`). "
            "States with no socket are hidden. Compare one namespace with "
            "`nsenter -t PID -n ss -tan | awk '{print $1}' | sort | uniq -c` "
            "(recording rule tcpstated:sockets:with_netns_name).",
            targets((sel("tcpstated:sockets:with_netns_name") + " > 0",
                     "{{instance}} {{name}} {{state}}")),
            "short", legend_right=True),
        timeseries(
            "State transitions",
            "State changes per second as the kernel reported them, counted "
            "in the kernel (exact even when events are lost). The normal "
            "client path is CLOSE → SYN_SENT → ESTABLISHED → FIN_WAIT1 → "
            "FIN_WAIT2 → CLOSE (the hand-off to a TIME_WAIT socket), the "
            "server path LISTEN → SYN_RECV → ESTABLISHED → CLOSE_WAIT → "
            "LAST_ACK → CLOSE. A rise in SYN_SENT → CLOSE is failing "
            "connect()s; X → CLOSE from a synchronized state without the "
            "usual path is mostly resets. Pairs that did not happen in the "
            "interval are hidden.",
            targets(("sum by (instance, from, to) (%s) > 0"
                     % rate("tcpstated_transitions_total"),
                     "{{instance}} {{from}} → {{to}}")),
            "cps", legend_right=True),
        timeseries(
            "Connections opened and reset",
            "Active opens: connect() calls (CLOSE → SYN_SENT), this host as "
            "client. Passive opens: handshakes completed on a listener "
            "(LISTEN → SYN_RECV, reported on the new socket when the "
            "client's final ACK arrives), this host as server. Resets: RST "
            "segments received and sent on tracked sockets; a RST aborts a "
            "connection without the FIN exchange (refused connect(), "
            "close() with unread data, SO_LINGER 0, a peer that restarted).",
            targets(
                ("sum by (instance) (%s)" % rate(
                    "tcpstated_transitions_total", **{"from": "close",
                                                      "to": "syn_sent"}),
                 "{{instance}} active opens (connect)"),
                ("sum by (instance) (%s)" % rate(
                    "tcpstated_transitions_total", **{"from": "listen",
                                                      "to": "syn_recv"}),
                 "{{instance}} passive opens (accepted handshakes)"),
                ("sum by (instance) (%s)" % rate(
                    "tcpstated_events_total", source="tcp_receive_reset"),
                 "{{instance}} RST received"),
                ("sum by (instance) (%s)" % rate(
                    "tcpstated_events_total", source="tcp_send_reset"),
                 "{{instance}} RST sent")),
            "cps"),
        timeseries(
            "Time spent in a state (p50, p99)",
            "How long sockets stayed in a state, observed when they leave "
            "it. ESTABLISHED is the connection's lifetime; SYN_SENT is the "
            "connect() latency (long: slow or unreachable servers, SYN "
            "retries); TIME_WAIT is 60 s by construction (2MSL); a long "
            "CLOSE_WAIT is an application slow to close(); FIN_WAIT2 "
            "lasts until the peer closes, or net.ipv4.tcp_fin_timeout "
            "(60 s) for a socket the application already closed. Bucket "
            "bounds are 1 ms … 1 day, so values are interpolated. Sockets "
            "that were already open when tcpstated started are not "
            "observed.",
            targets(
                ("histogram_quantile(0.99, sum by (instance, state, le) (%s))"
                 % rate("tcpstated_state_duration_seconds_bucket"),
                 "{{instance}} {{state}} p99"),
                ("histogram_quantile(0.5, sum by (instance, state, le) (%s))"
                 % rate("tcpstated_state_duration_seconds_bucket"),
                 "{{instance}} {{state}} p50")),
            "s", legend_right=True),
        table(
            "Network namespaces",
            "Maps the `netns` label (the namespace's inode number, as in "
            "`readlink /proc/PID/ns/net` or `lsns -t net`) to a name: "
            "`host` for the initial namespace, the `ip netns` name where "
            "one exists, otherwise one derived from a process in it. Use it "
            "to read the other panels, which show the inode.",
            targets((sel("tcpstated_netns_info"), ""),
                    instant=True, table=True),
            "none", rename={"name": "namespace"},
            hide=("Value", "job")),
    ])


def row_close_wait():
    leaked = ("leaked (> %d s)" % CLOSE_WAIT_LEAK_AFTER_S)
    return ("CLOSE_WAIT leaks", [
        stat(
            "Leaked CLOSE_WAIT sockets",
            "Sockets in CLOSE_WAIT for longer than %d s "
            "(detectors.close_wait_leak_after), per host. CLOSE_WAIT means "
            "the peer closed its side (its FIN arrived and was "
            "acknowledged) and the application has not called close(). "
            "Only the application can end it: every leaked socket holds a "
            "file descriptor until the process closes it or exits. Orange "
            "at %d (TcpstatedCloseWaitLeak warning), red at %d (page)."
            % (CLOSE_WAIT_LEAK_AFTER_S, CLOSE_WAIT_LEAK_WARN,
               CLOSE_WAIT_LEAK_PAGE),
            targets((sel("tcpstated:close_wait_leaked_sockets:sum"),
                     "{{instance}}")),
            "short", steps(("green", None), ("orange", CLOSE_WAIT_LEAK_WARN),
                           ("red", CLOSE_WAIT_LEAK_PAGE))),
        stat(
            "Sockets in CLOSE_WAIT",
            "All sockets in CLOSE_WAIT, young ones included: the peer "
            "closed and the application has not (yet) called close(). A "
            "healthy service keeps this near zero because it closes as "
            "soon as read() returns 0.",
            targets((sel("tcpstated:sockets:sum_by_state",
                         state="close_wait"), "{{instance}}")),
            "short", steps(("green", None), ("orange", CLOSE_WAIT_LEAK_WARN))),
        stat(
            "Oldest CLOSE_WAIT socket",
            "Age of the oldest socket in CLOSE_WAIT: how long the "
            "application has been ignoring a peer's close. Minutes or "
            "hours mean it will never close it.",
            targets((sel("tcpstated:close_wait_oldest_seconds:max"),
                     "{{instance}}")),
            "s", steps(("green", None), ("orange", CLOSE_WAIT_LEAK_AFTER_S),
                       ("red", 600)), no_value="none"),
        stat(
            "Owners leaking",
            "Number of (namespace, process, unit, role, port) groups that "
            "hold at least one leaked CLOSE_WAIT socket. The table below "
            "names them.",
            targets(("count by (instance) (%s > 0)"
                     % sel("tcpstated_close_wait_leaked_sockets"),
                     "{{instance}}")),
            "short", steps(("green", None), ("orange", 1))),
        table(
            "CLOSE_WAIT sockets by owner",
            "Who holds sockets in CLOSE_WAIT. `comm` and `unit` are the "
            "owning process and its systemd unit (for accepted "
            "connections, the process that called listen()). `role` "
            "server: connections accepted on the local listening `port`; "
            "client: outbound connections to the remote `port`. Rows "
            "labelled `other` sum the groups beyond the daemon's series "
            "bound. Confirm on the host with `ss -tanp state close-wait` "
            "(add `'( sport = :PORT )'` for a server port, "
            "`'( dport = :PORT )'` for a client one); the fix is in the "
            "application: a missing close() on an error path, or a "
            "connection pool that keeps connections the server already "
            "closed.",
            targets((sel("tcpstated_close_wait_sockets"), ""),
                    (sel("tcpstated_close_wait_leaked_sockets"), ""),
                    (sel("tcpstated_close_wait_oldest_seconds"), ""),
                    instant=True, table=True),
            "short",
            rename={"Value #A": "in CLOSE_WAIT", "Value #B": leaked,
                    "Value #C": "oldest"},
            hide=("job",),
            overrides=[unit_override("oldest", "s")],
            sort_by=leaked, w=24),
        timeseries(
            "Leaked CLOSE_WAIT sockets by owner",
            "Leaked CLOSE_WAIT sockets (older than %d s) per owning "
            "process and systemd unit. A line that only climbs is a leak "
            "in that program; one that drops back to zero on a schedule is "
            "a pool or a timeout that eventually closes them. A series "
            "disappears when its owner has no CLOSE_WAIT socket left."
            % CLOSE_WAIT_LEAK_AFTER_S,
            targets(("sum by (instance, netns, comm, unit) (%s)"
                     % sel("tcpstated_close_wait_leaked_sockets"),
                     "{{instance}} {{comm}} {{unit}} netns {{netns}}")),
            "short",
            thresholds=steps(("green", None),
                             ("orange", CLOSE_WAIT_LEAK_WARN),
                             ("red", CLOSE_WAIT_LEAK_PAGE))),
        timeseries(
            "Oldest CLOSE_WAIT socket by owner",
            "Age of each owner's oldest CLOSE_WAIT socket. It rises one "
            "second per second while the application ignores the peer's "
            "FIN; the line at %d s is where tcpstated calls it leaked."
            % CLOSE_WAIT_LEAK_AFTER_S,
            targets(("max by (instance, netns, comm, unit) (%s)"
                     % sel("tcpstated_close_wait_oldest_seconds"),
                     "{{instance}} {{comm}} {{unit}} netns {{netns}}")),
            "s",
            thresholds=steps(("green", None),
                             ("red", CLOSE_WAIT_LEAK_AFTER_S))),
        timeseries(
            "Entering and leaving CLOSE_WAIT",
            "In: connections the peer closed (→ CLOSE_WAIT, its FIN "
            "arrived). Out: CLOSE_WAIT → LAST_ACK is the application "
            "calling close() (its FIN goes out, the last ACK ends the "
            "connection); CLOSE_WAIT → CLOSE is a reset or an abort. When "
            "in stays above out, CLOSE_WAIT sockets pile up.",
            targets(
                ("sum by (instance) (%s)"
                 % rate("tcpstated_transitions_total", to="close_wait"),
                 "{{instance}} in: peer closed"),
                ("sum by (instance, to) (%s)"
                 % rate("tcpstated_transitions_total", **{"from":
                                                          "close_wait"}),
                 "{{instance}} out: CLOSE_WAIT → {{to}}")),
            "cps", w=24),
    ])


def row_syn():
    listener = "{{instance}} netns {{netns}} port {{port}}"
    return ("SYN floods", [
        stat(
            "Listeners under SYN flood",
            "Listeners tcpstated flags as SYN-flooded: half-open "
            "connections at %d %% or more of the queue limit, SYN-ACK "
            "retransmits above detectors.synack_retransmit_rate, or SYN "
            "cookies sent while that listener is under pressure. SYN "
            "cookies alone (tcp_syncookies=1 by design) do not set it."
            % int(HALF_OPEN_RATIO * 100),
            targets(("sum by (instance) (%s)"
                     % sel("tcpstated_syn_flood_active"), "{{instance}}")),
            "short", steps(("green", None), ("red", 1))),
        stat(
            "Half-open connections",
            "SYN_RECV request sockets on all listeners: the server sent "
            "its SYN-ACK and waits for the client's final ACK. Spoofed "
            "SYNs never send it, so a flood keeps them until the SYN-ACK "
            "retries (net.ipv4.tcp_synack_retries) run out.",
            targets(("sum by (instance) (%s)"
                     % sel("tcpstated_listen_syn_recv_sockets"),
                     "{{instance}}")),
            "short", steps(("green", None))),
        stat(
            "SYN cookies sent",
            "SYN cookies sent per second (TcpExt SyncookiesSent): the SYN "
            "queue was full, so the kernel encoded the connection in the "
            "SYN-ACK's sequence number instead of keeping state. Real "
            "clients still connect; with tcp_syncookies=1 this is the "
            "defence working, not an outage by itself.",
            targets(("sum by (instance) (%s)"
                     % rate("tcpstated_syncookies_sent_total"),
                     "{{instance}}")),
            "cps", steps(("green", None), ("orange", 1))),
        stat(
            "Listen drops",
            "Connection attempts dropped by listeners per second (TcpExt "
            "ListenDrops): SYN queue full without cookies, or accept "
            "queue full. Each one is a client that sees a timeout and "
            "retries after 1 s, 3 s, 7 s …",
            targets(("sum by (instance) (%s)"
                     % rate("tcpstated_listen_drops_total"),
                     "{{instance}}")),
            "cps", steps(("green", None), ("red", 1))),
        timeseries(
            "Half-open connections vs queue limit",
            "Per listener (namespace, port): half-open connections (SYN "
            "received, SYN-ACK sent, final ACK missing) against the "
            "listener's queue limit (listen() backlog capped by "
            "net.core.somaxconn; the SYN queue is bounded by it too). "
            "Near the limit new SYNs get cookies or are dropped. Only "
            "listeners with half-open connections are shown.",
            targets(
                ("%s > 0" % sel("tcpstated_listen_syn_recv_sockets"),
                 listener + " half-open"),
                ("%s and %s > 0"
                 % (sel("tcpstated_listen_accept_queue_limit"),
                    sel("tcpstated_listen_syn_recv_sockets")),
                 listener + " limit")),
            "short"),
        timeseries(
            "Half-open share of the queue limit",
            "Half-open connections as a fraction of each listener's queue "
            "limit (recording rule tcpstated:listen_half_open:ratio). At "
            "the line (detectors.syn_flood_half_open_ratio) tcpstated "
            "flags a SYN flood.",
            targets((sel("tcpstated:listen_half_open:ratio"), listener)),
            "percentunit",
            thresholds=steps(("green", None), ("red", HALF_OPEN_RATIO))),
        timeseries(
            "Accept queue vs limit",
            "Per listener: connections that completed the handshake and "
            "wait for the application's accept(), against the limit. A "
            "full accept queue is the application accepting too slowly "
            "(or stuck), not a flood: the kernel then drops completed "
            "handshakes (ListenOverflows). Only listeners with a "
            "non-empty queue are shown.",
            targets(
                ("%s > 0" % sel("tcpstated_listen_accept_queue_length"),
                 listener + " queued"),
                ("%s and %s > 0"
                 % (sel("tcpstated_listen_accept_queue_limit"),
                    sel("tcpstated_listen_accept_queue_length")),
                 listener + " limit")),
            "short"),
        timeseries(
            "SYN-ACK retransmits per listener",
            "SYN-ACKs a listener sent again because the client's final ACK "
            "did not come: spoofed source addresses in a flood, or loss on "
            "the path back to real clients.",
            targets(("sum by (instance, netns, port) (%s) > 0"
                     % rate("tcpstated_synack_retransmits_total"),
                     listener)),
            "cps"),
        timeseries(
            "SYN cookies and listener drops",
            "Per namespace (TcpExt counters): SYN cookies sent (SYN queue "
            "full, stateless fallback); SYN queue full drops (full and "
            "cookies off: the SYN is dropped); accept queue overflows "
            "(completed handshake dropped because the application did "
            "not accept() in time); all listen drops (a superset of both).",
            targets(
                ("sum by (instance, netns) (%s)"
                 % rate("tcpstated_syncookies_sent_total"),
                 "{{instance}} netns {{netns}} SYN cookies sent"),
                ("sum by (instance, netns) (%s)"
                 % rate("tcpstated_syn_queue_full_drops_total"),
                 "{{instance}} netns {{netns}} SYN queue full drops"),
                ("sum by (instance, netns) (%s)"
                 % rate("tcpstated_listen_overflows_total"),
                 "{{instance}} netns {{netns}} accept queue overflows"),
                ("sum by (instance, netns) (%s)"
                 % rate("tcpstated_listen_drops_total"),
                 "{{instance}} netns {{netns}} listen drops")),
            "cps"),
        state_timeline(
            "SYN flood detector per listener",
            "When tcpstated considered each listener flooded "
            "(tcpstated_syn_flood_active; TcpstatedSynFlood fires after 5 "
            "minutes of it).",
            targets((sel("tcpstated_syn_flood_active"), listener)),
            value_map((0, "ok", "green"), (1, "SYN flood", "red"))),
    ])


def row_ports():
    dest = "{{instance}} {{saddr}} → {{daddr}}:{{dport}}"
    return ("TIME_WAIT and ephemeral ports", [
        stat(
            "Destinations near port exhaustion",
            "Destinations (source address, destination address, "
            "destination port) holding at least %d %% of the ephemeral "
            "ports (detectors.port_exhaustion_ratio). connect() to such a "
            "destination fails with EADDRNOTAVAIL once none is left."
            % int(PORT_RATIO_WARN * 100),
            targets(("sum by (instance) (%s)"
                     % sel("tcpstated_port_exhaustion_active"),
                     "{{instance}}")),
            "short", steps(("green", None), ("red", 1))),
        stat(
            "Busiest destination's port usage",
            "The largest share of the ephemeral range one destination "
            "holds (recording rule tcpstated:ephemeral_ports_used:ratio). "
            "Orange at %d %%, red at %d %% (TcpstatedEphemeralPortExhaustion "
            "warning and page)."
            % (int(PORT_RATIO_WARN * 100), int(PORT_RATIO_PAGE * 100)),
            targets(("max by (instance) (%s)"
                     % sel("tcpstated:ephemeral_ports_used:ratio"),
                     "{{instance}}")),
            "percentunit", steps(("green", None), ("orange", PORT_RATIO_WARN),
                                 ("red", PORT_RATIO_PAGE)), no_value="0%"),
        stat(
            "TIME_WAIT sockets",
            "Sockets in TIME_WAIT: connections this host closed first, "
            "kept for 60 s (2MSL) after the final ACK. Each holds its "
            "local port towards that destination and a tcp_max_tw_buckets "
            "slot, but no file descriptor and little memory.",
            targets((sel("tcpstated:sockets:sum_by_state", state="time_wait"),
                     "{{instance}}")),
            "short", steps(("green", None))),
        stat(
            "TIME_WAIT share of tcp_max_tw_buckets",
            "The fullest namespace's TIME_WAIT sockets against its "
            "net.ipv4.tcp_max_tw_buckets (recording rule "
            "tcpstated:time_wait_sockets:ratio). At the limit the kernel "
            "closes connections without TIME_WAIT (TcpstatedTimeWait"
            "BucketsNearLimit at %d %%)." % int(TIME_WAIT_RATIO * 100),
            targets(("max by (instance) (%s)"
                     % sel("tcpstated:time_wait_sockets:ratio"),
                     "{{instance}}")),
            "percentunit", steps(("green", None), ("orange", TIME_WAIT_RATIO),
                                 ("red", 0.95)), no_value="0%"),
        timeseries(
            "Ephemeral ports used per destination vs available",
            "Local ports held towards each destination in any state, "
            "TIME_WAIT included, against the namespace's usable ephemeral "
            "range (net.ipv4.ip_local_port_range minus "
            "ip_local_reserved_ports; 28,232 ports by default). One "
            "(source, destination address, destination port) tuple can "
            "use each local port once, and TIME_WAIT keeps a port for "
            "60 s after close: about 470 new connections per second to "
            "one destination exhaust the default range.",
            targets(
                (sel("tcpstated_ephemeral_ports_used"), dest),
                ("%s and ignoring (saddr, daddr, dport) %s"
                 % (sel("tcpstated_ephemeral_ports_available"),
                    sel("tcpstated_ephemeral_ports_used")),
                 "{{instance}} netns {{netns}} ports available")),
            "short"),
        timeseries(
            "Ephemeral port usage per destination",
            "Each destination's share of the ephemeral range (recording "
            "rule tcpstated:ephemeral_ports_used:ratio). Lines at %d %% "
            "(warning) and %d %% (page). The usual cause is a client that "
            "opens a new connection per request instead of reusing one "
            "(keep-alive, a pool)."
            % (int(PORT_RATIO_WARN * 100), int(PORT_RATIO_PAGE * 100)),
            targets((sel("tcpstated:ephemeral_ports_used:ratio"), dest)),
            "percentunit",
            thresholds=steps(("green", None), ("orange", PORT_RATIO_WARN),
                             ("red", PORT_RATIO_PAGE))),
        timeseries(
            "TIME_WAIT sockets vs tcp_max_tw_buckets",
            "TIME_WAIT sockets per namespace against its "
            "net.ipv4.tcp_max_tw_buckets. TIME_WAIT belongs to whichever "
            "side closed first (the active closer); a server that closes "
            "its clients' connections collects them too. Namespaces "
            "without TIME_WAIT sockets are hidden.",
            targets(
                ("sum without (state) (%s) > 0"
                 % sel("tcpstated_sockets", state="time_wait"),
                 "{{instance}} netns {{netns}} TIME_WAIT"),
                ("%s and ignoring (state) %s > 0"
                 % (sel("tcpstated_time_wait_limit"),
                    sel("tcpstated_sockets", state="time_wait")),
                 "{{instance}} netns {{netns}} tcp_max_tw_buckets")),
            "short"),
        timeseries(
            "TIME_WAIT overflows",
            "Connections closed without a TIME_WAIT socket because "
            "tcp_max_tw_buckets was reached (TcpExt TCPTimeWaitOverflow, "
            "kernel log \"time wait bucket table overflow\"). The "
            "connection ends at once: its port is free again, but a lost "
            "final ACK can no longer be repeated and a late segment could "
            "reach a new connection on the same 4-tuple.",
            targets(("sum by (instance, netns) (%s)"
                     % rate("tcpstated_time_wait_overflows_total"),
                     "{{instance}} netns {{netns}}")),
            "cps"),
        timeseries(
            "Failed connect() calls",
            "SYN_SENT → CLOSE per second: connect() calls that never "
            "reached ESTABLISHED. Causes: no free ephemeral port "
            "(EADDRNOTAVAIL, immediately), a RST from a closed port "
            "(ECONNREFUSED), SYN retries exhausted (ETIMEDOUT, after "
            "net.ipv4.tcp_syn_retries), an ICMP error, or the application "
            "giving up (close() during connect).",
            targets(("sum by (instance) (%s)"
                     % rate("tcpstated_transitions_total",
                            **{"from": "syn_sent", "to": "close"}),
                     "{{instance}}")),
            "cps", w=24),
    ])


def row_health():
    return ("tcpstated health", [
        stat(
            "Scrape status",
            "Whether Prometheus can scrape tcpstated (`up`). While it is "
            "down, nothing on this dashboard updates and the tcpstated "
            "alerts cannot fire (TcpstatedDown).",
            targets(('up{%s}' % SELECTOR, "{{instance}}")),
            "none", steps(("red", None), ("green", 1)),
            mappings=value_map((0, "down", "red"), (1, "up", "green")),
            no_value="no target"),
        table(
            "Version and attach mode",
            "Daemon version and how its BPF programs attached: `tp_btf` "
            "(typed tracepoint, socket cookies as identities) or "
            "`tracepoint` (classic tracepoint fallback for kernels "
            "without it).",
            targets((sel("tcpstated_build_info"), ""),
                    instant=True, table=True),
            "none", rename={}, hide=("Value", "job"), w=6, h=5),
        stat(
            "Mirror table usage",
            "Sockets tracked by the daemon's mirror against "
            "tracking.max_tracked_sockets. At the limit sockets are "
            "evicted and per-socket detail (owners, CLOSE_WAIT ages) is "
            "lost for them.",
            targets(("%s / %s"
                     % (sel("tcpstated_tracked_sockets"),
                        sel("tcpstated_tracked_sockets_limit")),
                     "{{instance}}")),
            "percentunit", steps(("green", None), ("orange", 0.8),
                                 ("red", 0.95))),
        stat(
            "Events lost and missed",
            "Kernel events per second tcpstated never received. Lost: "
            "dropped because the BPF ring buffer was full; transition "
            "counters stay exact (counted in the kernel). Sustained loss: "
            "raise bpf.ring_buffer_bytes. Missed: the kernel skipped "
            "tcpstated's BPF program because another BPF tracing program "
            "was running on that CPU (classic tracepoint mode shares that "
            "guard with every kprobe and tracepoint program); transition "
            "counters miss these too. Use bpf.attach auto or tp_btf, or "
            "stop the other tool. Either way the per-socket mirror is "
            "repaired at the next reconcile.",
            targets(("sum by (instance) (%s)"
                     % rate("tcpstated_events_lost_total"),
                     "{{instance}} lost"),
                    ("sum by (instance) (%s)"
                     % rate("tcpstated_events_missed_total"),
                     "{{instance}} missed")),
            "cps", steps(("green", None), ("red", 0.001))),
        timeseries(
            "Kernel events received",
            "Events per second from each kernel tracepoint, applied to the "
            "mirror: inet_sock_set_state (every state change), "
            "tcp_receive_reset / tcp_send_reset (RSTs, which tell a reset "
            "from a TIME_WAIT hand-off), tcp_retransmit_synack (SYN-ACK "
            "retries).",
            targets(("sum by (instance, source) (%s)"
                     % rate("tcpstated_events_total"),
                     "{{instance}} {{source}}")),
            "cps"),
        timeseries(
            "Kernel events lost and missed",
            "Per tracepoint, events per second tcpstated never received. "
            "Lost: the kernel could not put them in the ring buffer (full); "
            "bursts happen under connection storms. Missed: the kernel "
            "skipped tcpstated's BPF program (its recursion guard) because "
            "another BPF tracing program was running on that CPU, e.g. "
            "bpftrace or a monitoring agent, in classic tracepoint mode; "
            "these state changes are missing from the transition counters "
            "too. Sustained loss or misses trigger TcpstatedEventsLost.",
            targets(("sum by (instance, source) (%s)"
                     % rate("tcpstated_events_lost_total"),
                     "{{instance}} {{source}} lost"),
                    ("sum by (instance, source) (%s)"
                     % rate("tcpstated_events_missed_total"),
                     "{{instance}} {{source}} missed")),
            "cps"),
        timeseries(
            "Invalid transitions",
            "State changes outside Linux's legal transition table, per "
            "pair, in each interval. They should never happen: tcpstated "
            "followed the kernel (counts stay right) but its model of the "
            "kernel is wrong for that pair. These counters only exist "
            "once non-zero, so a pair's first occurrence is shown as its "
            "whole value.",
            targets(("clamp_min(%s - (%s offset %s or %s * 0), 0)"
                     % (sel("tcpstated_invalid_transitions_total"),
                        sel("tcpstated_invalid_transitions_total"), RATE,
                        sel("tcpstated_invalid_transitions_total")),
                     "{{instance}} {{from}} → {{to}}")),
            "short"),
        timeseries(
            "Decode errors, mirror resyncs and sock_diag errors",
            "Decode errors: ring records that could not be decoded (a "
            "daemon/BPF mismatch). Mirror resyncs: events whose old state "
            "disagreed with the mirror (a lost event, or a socket older "
            "than the daemon); the mirror took the kernel's word. "
            "sock_diag errors: failed socket dumps or namespace reads.",
            targets(
                ("sum by (instance) (%s)"
                 % rate("tcpstated_event_decode_errors_total"),
                 "{{instance}} decode errors"),
                ("sum by (instance) (%s)"
                 % rate("tcpstated_mirror_resyncs_total"),
                 "{{instance}} mirror resyncs"),
                ("sum by (instance) (%s)"
                 % rate("tcpstated_sock_diag_errors_total"),
                 "{{instance}} sock_diag errors")),
            "cps"),
        timeseries(
            "Reconcile corrections by state",
            "Mirror entries the periodic comparison with the kernel's "
            "socket dump had to correct (added, changed or removed), by "
            "state. A steady trickle in fin_wait2/time_wait is expected "
            "(the kernel turns orphaned FIN_WAIT2 into TIME_WAIT "
            "silently); large numbers mean lost events or a mirror bug.",
            targets(("sum by (instance, state) (%s)"
                     % rate("tcpstated_reconcile_corrections_total"),
                     "{{instance}} {{state}}")),
            "cps"),
        timeseries(
            "Tracked sockets vs limit",
            "Sockets in the daemon's mirror (every TCP socket it follows, "
            "TIME_WAIT included) against tracking.max_tracked_sockets. "
            "Beyond the limit sockets are evicted (next panel).",
            targets((sel("tcpstated_tracked_sockets"), "{{instance}} tracked"),
                    (sel("tcpstated_tracked_sockets_limit"),
                     "{{instance}} limit")),
            "short"),
        timeseries(
            "Evictions",
            "Sockets evicted per second because the mirror's table was "
            "full; raise tracking.max_tracked_sockets if this is not zero.",
            targets(("sum by (instance) (%s)"
                     % rate("tcpstated_evictions_total"), "{{instance}}")),
            "cps"),
        timeseries(
            "Reconcile dump duration",
            "How long the last sock_diag dump of every namespace took. It "
            "grows with sockets and namespaces; it should stay well below "
            "tracking.reconcile_interval (30 s).",
            targets((sel("tcpstated_reconcile_dump_seconds"), "{{instance}}")),
            "s"),
    ])


# ---- layout ------------------------------------------------------------------

def layout(rows):
    panels = []
    y = 0
    next_id = 1
    for title, row_panels in rows:
        panels.append({"type": "row", "title": title, "collapsed": False,
                       "id": next_id, "panels": [],
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
        next_id += 1
        y += 1
        x = 0
        row_h = 0
        for p in row_panels:
            w, h = p.pop("_size")
            if x + w > 24:
                x = 0
                y += row_h
                row_h = 0
            p["id"] = next_id
            next_id += 1
            p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
            x += w
            row_h = max(row_h, h)
            panels.append(p)
        y += row_h
    return panels


def variables():
    def query_var(name, query):
        return {
            "name": name,
            "label": name.capitalize(),
            "type": "query",
            "datasource": DATASOURCE,
            "query": query,
            "definition": query,
            "multi": True,
            "includeAll": True,
            "allValue": ".+",
            "current": {"selected": True, "text": ["All"],
                        "value": ["$__all"]},
            "refresh": 2,
            "regex": "",
            "sort": 1,
            "hide": 0,
            "options": [],
        }
    return [
        {"name": "datasource", "label": "Data source", "type": "datasource",
         "query": "prometheus", "current": {}, "hide": 0, "refresh": 1,
         "regex": "", "options": []},
        query_var("job", "label_values(tcpstated_build_info, job)"),
        query_var("instance",
                  'label_values(tcpstated_build_info{job=~"$job"}, instance)'),
    ]


def dashboard():
    return {
        "uid": UID,
        "title": TITLE,
        "description": "TCP connection states per host and network namespace "
                       "from tcpstated: CLOSE_WAIT leaks, SYN floods, "
                       "TIME_WAIT and ephemeral port exhaustion, and the "
                       "daemon's own health. Needs tcpstated.rules.yaml.",
        "tags": ["tcpstated", "tcp", "network"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 37,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [],
        "annotations": {"list": [{
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "templating": {"list": variables()},
        "panels": layout([row_states(), row_close_wait(), row_syn(),
                          row_ports(), row_health()]),
    }


def render():
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


def main(argv):
    text = render()
    if argv[1:] == ["--check"]:
        with open(OUTPUT, encoding="utf-8") as f:
            if f.read() != text:
                print("%s is stale: run %s" % (OUTPUT, argv[0]))
                return 1
        return 0
    if argv[1:]:
        print("usage: %s [--check]" % argv[0], file=sys.stderr)
        return 2
    with open(OUTPUT, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
