// The live TCP state diagram: draws the classic figure once, then refreshes
// the numbers every second from /api/v1/state. Everything is built with
// textContent and attributes, never HTML strings: process and unit names
// come from the monitored host and must not become markup.
"use strict";

const API = "/api/v1/state";
const REFRESH_MS = 1000;
const SVG = "http://www.w3.org/2000/svg";
const BOX_W = 160;
const BOX_H = 64;
const END_Y = 800;  // the CLOSE bar at the bottom, where close paths end

// Layout of the classic figure (RFC 793, TCP/IP Illustrated): opens at the
// top, the server on the left, the client on the right, ESTABLISHED in the
// middle, the active close down the left and the passive close down the
// right. `path` colours the box's border.
const STATES = {
  close: {x: 500, y: 45, label: "CLOSE", path: "",
    tip: "No connection: a socket not yet connected or listening, or one the kernel is done with."},
  listen: {x: 500, y: 155, label: "LISTEN", path: "server",
    tip: "A server socket waiting for connections: the application called listen()."},
  new_syn_recv: {x: 200, y: 155, label: "NEW_SYN_RECV", path: "server",
    tip: "Half-open connections in a listener's SYN queue: a SYN came in and the SYN-ACK went out (counted from the kernel's socket dump every 5 s)."},
  syn_recv: {x: 200, y: 275, label: "SYN_RECV", path: "server",
    tip: "A connection the handshake's last ACK (or a simultaneous open) just created, about to become ESTABLISHED."},
  syn_sent: {x: 800, y: 275, label: "SYN_SENT", path: "client",
    tip: "The application called connect(): a SYN went out and the socket waits for the SYN-ACK."},
  established: {x: 500, y: 385, label: "ESTABLISHED", path: "",
    tip: "The connection is open and data can flow both ways."},
  fin_wait1: {x: 200, y: 495, label: "FIN_WAIT1", path: "client",
    tip: "This side closed first and sent its FIN; it waits for the peer to acknowledge it."},
  close_wait: {x: 800, y: 495, label: "CLOSE_WAIT", path: "server",
    tip: "The peer closed and the application has not called close() yet: a count that only grows is a leak in the application."},
  fin_wait2: {x: 200, y: 615, label: "FIN_WAIT2", path: "client",
    tip: "Our FIN was acknowledged; the socket waits for the peer to close its side."},
  closing: {x: 500, y: 615, label: "CLOSING", path: "simultaneous",
    tip: "Both sides sent a FIN at the same time (simultaneous close); each waits for the ACK of its own."},
  last_ack: {x: 800, y: 615, label: "LAST_ACK", path: "server",
    tip: "The application closed after the peer did; its FIN waits for the last ACK."},
  time_wait: {x: 350, y: 725, label: "TIME_WAIT", path: "client",
    tip: "Closed by this side first: the connection's addresses stay reserved for 60 s (2MSL) so that late segments cannot reach a new connection (Linux does not report it: tcpstated infers it)."},
};

// Every transition Linux reports (the legal table), with its place in the
// figure. a, b: [side, offset] anchors on the two boxes (default: the line
// between the centres); c: a control point for a curve; endX: where an edge
// into the bottom CLOSE bar lands. Self-transitions are shown inside boxes.
const EDGES = [
  {f: "close", t: "syn_sent", kind: "client", a: ["e", 0], b: ["n", 0], c: [800, 45],
    why: "connect(): SYN sent"},
  {f: "close", t: "listen", kind: "server", a: ["s", -14], b: ["n", -14],
    why: "listen()"},
  {f: "listen", t: "close", kind: "other", a: ["n", 14], b: ["s", 14],
    why: "the listener was closed"},
  {f: "listen", t: "syn_recv", kind: "server",
    why: "the handshake's last ACK created a child (reported on the child, which starts as a copy of the listener)"},
  {f: "syn_sent", t: "established", kind: "client", why: "SYN-ACK received, ACK sent"},
  {f: "syn_sent", t: "syn_recv", kind: "simultaneous", a: ["w", 0], b: ["e", 0],
    why: "simultaneous open: a SYN arrived while ours was out"},
  {f: "syn_sent", t: "close", kind: "other", a: ["e", -20], b: ["e", 0], c: [960, 40],
    why: "refused, unreachable, timed out or aborted"},
  {f: "syn_recv", t: "established", kind: "server", why: "the handshake completed"},
  {f: "syn_recv", t: "close", kind: "other", a: ["w", -20], b: ["w", 0], c: [40, 40],
    why: "reset or aborted during the handshake"},
  {f: "syn_recv", t: "fin_wait1", kind: "other", a: ["s", -30], b: ["n", -30],
    why: "closed before the handshake completed"},
  {f: "syn_recv", t: "close_wait", kind: "other", a: ["s", 30], b: ["w", -18], c: [360, 500],
    why: "the peer's FIN arrived before the handshake completed"},
  {f: "established", t: "fin_wait1", kind: "client", why: "close(): FIN sent (active close)"},
  {f: "established", t: "close_wait", kind: "server", why: "the peer's FIN arrived (passive close)"},
  {f: "established", t: "close", kind: "other", a: ["s", 40], endX: 650,
    why: "reset or aborted"},
  {f: "fin_wait1", t: "fin_wait2", kind: "client", why: "our FIN was acknowledged"},
  {f: "fin_wait1", t: "closing", kind: "simultaneous", why: "the peer's FIN crossed ours (simultaneous close)"},
  {f: "fin_wait1", t: "close", kind: "other", a: ["w", 0], endX: 70, c: [70, 495],
    why: "reset, aborted or timed out"},
  {f: "fin_wait2", t: "close", kind: "client", a: ["s", -40], endX: 160,
    why: "the peer's FIN arrived (TIME_WAIT follows, unreported), or a reset or timeout"},
  {f: "closing", t: "close", kind: "simultaneous", a: ["s", 40], endX: 540,
    why: "our FIN was acknowledged (TIME_WAIT follows, unreported), or a reset"},
  {f: "close_wait", t: "last_ack", kind: "server", why: "close(): FIN sent"},
  {f: "close_wait", t: "close", kind: "other", a: ["e", 0], endX: 930, c: [930, 495],
    why: "reset or aborted"},
  {f: "last_ack", t: "close", kind: "server", a: ["s", 0], endX: 800,
    why: "the last ACK arrived"},
];

// What tcpstated infers where Linux is silent (no rates: not reported).
const INFERRED = [
  {f: "fin_wait2", t: "time_wait", why: "the peer's FIN arrived: a timewait socket takes over (inferred)"},
  {f: "closing", t: "time_wait", why: "our FIN was acknowledged: a timewait socket takes over (inferred)"},
  {f: "time_wait", t: "close", endX: 350, why: "after 60 s (2MSL)"},
  {f: "listen", t: "new_syn_recv", why: "a SYN arrived: a request socket joins the SYN queue"},
];

const SELF = ["close", "fin_wait1", "fin_wait2", "closing", "last_ack"];

// ---- Formatting ---------------------------------------------------------

function fmtCount(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(1) + " G";
  if (a >= 1e6) return (n / 1e6).toFixed(1) + " M";
  if (a >= 1e3) return (n / 1e3).toFixed(1) + "k";
  if (Number.isInteger(n)) return String(n);
  return a < 10 ? n.toFixed(1) : String(Math.round(n));
}

function fmtRate(r) {
  return r === null ? "–/s" : fmtCount(r) + "/s";
}

function fmtAge(s) {
  if (s === null || s === undefined) return "never";
  s = Math.floor(s);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
}

function exact(n) {
  return Number(n).toLocaleString("en-US");
}

// ---- Drawing the figure once --------------------------------------------

function el(name, attrs, parent) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function anchor(state, side, offset) {
  const s = STATES[state];
  const o = offset || 0;
  switch (side) {
    case "n": return [s.x + o, s.y - BOX_H / 2];
    case "s": return [s.x + o, s.y + BOX_H / 2];
    case "e": return [s.x + BOX_W / 2, s.y + o];
    default: return [s.x - BOX_W / 2, s.y + o];
  }
}

// Where the segment from the centre of `state` towards (tx, ty) leaves its box.
function border(state, tx, ty) {
  const s = STATES[state];
  const dx = tx - s.x;
  const dy = ty - s.y;
  const k = Math.min(Math.abs((BOX_W / 2) / (dx || 1e-9)), Math.abs((BOX_H / 2) / (dy || 1e-9)));
  return [s.x + dx * k, s.y + dy * k];
}

function edgePath(e) {
  const target = e.endX !== undefined ? null : STATES[e.t];
  let end;
  if (target === null) end = [e.endX, END_Y];
  let start;
  if (e.a) start = anchor(e.f, e.a[0], e.a[1]);
  if (!end) {
    if (e.b) end = anchor(e.t, e.b[0], e.b[1]);
    else end = border(e.t, start ? start[0] : STATES[e.f].x, start ? start[1] : STATES[e.f].y);
  }
  if (!start) start = border(e.f, end[0], end[1]);
  if (e.c) return `M${start[0]},${start[1]} Q${e.c[0]},${e.c[1]} ${end[0]},${end[1]}`;
  return `M${start[0]},${start[1]} L${end[0]},${end[1]}`;
}

function markers(svg) {
  const defs = el("defs", {}, svg);
  for (const kind of ["client", "server", "simultaneous", "other", "idle", "inferred", "invalid"]) {
    const m = el("marker", {id: "arrow-" + kind, viewBox: "0 0 10 10", refX: "9", refY: "5",
      markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse"}, defs);
    el("path", {d: "M0,0 L10,5 L0,10 z"}, m);
  }
}

const view = {boxes: {}, edges: {}, invalid: null};

function drawEdge(svg, e, kind, inferred) {
  const g = el("g", {class: "edge " + kind}, svg);
  const p = el("path", {d: edgePath(e), "marker-end": `url(#arrow-${kind})`}, g);
  const title = el("title", {}, g);
  const mid = p.getPointAtLength(p.getTotalLength() / 2);
  const label = el("text", {x: mid.x, y: mid.y + 5}, g);
  if (inferred) {
    title.textContent = `${STATES[e.f].label} → ${e.t === "close" ? "CLOSE" : STATES[e.t].label}: ${e.why}. Linux does not report this step.`;
    label.textContent = "";
  }
  return {g, p, title, label, kind};
}

function drawFigure() {
  const svg = document.getElementById("diagram");
  markers(svg);
  const end = el("g", {class: "end"}, svg);
  el("rect", {x: 40, y: END_Y, width: 920, height: 40, rx: 8}, end);
  const endText = el("text", {x: 500, y: END_Y + 26}, end);
  endText.textContent = "CLOSE (the same state as at the top, drawn again where the close paths end)";
  for (const e of INFERRED) drawEdge(svg, e, "inferred", true);
  for (const e of EDGES) view.edges[e.f + ">" + e.t] = Object.assign(drawEdge(svg, e, e.kind, false), {e});
  view.invalid = el("g", {id: "invalid-edges"}, svg);
  for (const [name, s] of Object.entries(STATES)) {
    const g = el("g", {class: "state " + s.path, "data-state": name, tabindex: "0",
      role: "img"}, svg);
    el("rect", {x: s.x - BOX_W / 2, y: s.y - BOX_H / 2, width: BOX_W, height: BOX_H, rx: 8}, g);
    const title = el("title", {}, g);
    const label = el("text", {class: "name", x: s.x, y: s.y - 12}, g);
    label.textContent = s.label;
    const count = el("text", {class: "count", x: s.x, y: s.y + 13}, g);
    const extra = el("text", {class: "extra", x: s.x, y: s.y + 27}, g);
    view.boxes[name] = {g, title, count, extra, tip: s.tip};
  }
  // The same numbers as a table: legible on a phone, where the figure is
  // small and nothing hovers, and for screen readers.
  const body = document.querySelector("#state-table tbody");
  for (const [name, s] of Object.entries(STATES)) {
    const tr = document.createElement("tr");
    tr.dataset.state = name;
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = s.label;
    const n = document.createElement("td");
    n.className = "n";
    const what = document.createElement("td");
    what.textContent = s.tip;
    tr.append(th, n, what);
    body.appendChild(tr);
    view.boxes[name].cell = n;
  }
  if (window.matchMedia("(max-width: 600px)").matches) {
    document.getElementById("state-details").open = true;
  }
}

// ---- Refreshing ---------------------------------------------------------

let previous = null;  // the last answer drawn, with its rates
let selected = null;  // "all" or a netns inode as a string

function selectedFromHash() {
  const m = /netns=([0-9]+|all)/.exec(location.hash);
  return m ? m[1] : null;
}

function nsLabel(ns) {
  return (ns.name || "netns") + " (" + ns.netns + ")";
}

function updateSelector(state) {
  const select = document.getElementById("netns");
  if (selected === null) {
    selected = selectedFromHash();
    if (selected === null) {
      const host = state.namespaces.find((n) => n.name === "host");
      selected = host ? String(host.netns) : "all";
    }
  }
  const wanted = [["all", "all namespaces (sum)"]];
  for (const ns of state.namespaces) wanted.push([String(ns.netns), nsLabel(ns)]);
  if (!wanted.some(([v]) => v === selected)) wanted.push([selected, "netns " + selected + " (gone)"]);
  const same = select.options.length === wanted.length &&
    wanted.every(([v, t], i) => select.options[i].value === v && select.options[i].text === t);
  if (!same) {
    select.textContent = "";
    for (const [v, t] of wanted) {
      const o = document.createElement("option");
      o.value = v;
      o.text = t;
      select.appendChild(o);
    }
  }
  select.value = selected;
}

function countsFor(state) {
  const counts = {};
  for (const name of Object.keys(STATES)) counts[name] = 0;
  for (const ns of state.namespaces) {
    if (selected !== "all" && String(ns.netns) !== selected) continue;
    for (const [k, v] of Object.entries(ns.states)) counts[k] = (counts[k] || 0) + v;
  }
  return counts;
}

function nsName(state, netns) {
  const ns = state.namespaces.find((n) => n.netns === netns);
  return ns ? nsLabel(ns) : "netns " + netns;
}

function inScope(netns) {
  return selected === "all" || String(netns) === selected;
}

// Per-second rates of every counter against the previous answer: null for
// the first answer, or when a counter went back (a restarted daemon).
function computeRates(state) {
  const rates = {};
  const dt = previous ? (state.now_ms - previous.now_ms) / 1000 : 0;
  const before = {};
  if (previous) for (const t of previous.transitions) before[t.from + ">" + t.to] = t.count;
  for (const t of state.transitions) {
    const key = t.from + ">" + t.to;
    const b = before[key];
    rates[key] = dt > 0 && b !== undefined && t.count >= b ? (t.count - b) / dt : null;
  }
  let events = null;
  if (dt > 0 && state.health.events >= previous.health.events) {
    events = (state.health.events - previous.health.events) / dt;
  }
  return {transitions: rates, events};
}

function rateOf(key, state) {
  const r = state.rates.transitions[key];
  return r === undefined ? null : r;
}

function updateFigure(state) {
  const counts = countsFor(state);
  const leaks = state.detections.close_wait_leaks.filter((l) => inScope(l.netns));
  for (const [name, box] of Object.entries(view.boxes)) {
    const n = counts[name] || 0;
    box.count.textContent = fmtCount(n);
    box.cell.textContent = fmtCount(n);
    box.cell.title = exact(n);
    box.g.setAttribute("data-count", String(n));
    box.g.classList.toggle("busy", n > 0);
    box.g.classList.toggle("alert", name === "close_wait" && leaks.length > 0);
    box.title.textContent = `${STATES[name].label}: ${exact(n)} socket${n === 1 ? "" : "s"}. ${box.tip}`;
    box.g.setAttribute("aria-label", box.title.textContent);
    box.extra.textContent = "";
  }
  const counted = {};
  for (const t of state.transitions) counted[t.from + ">" + t.to] = t.count;
  for (const [key, edge] of Object.entries(view.edges)) {
    const n = counted[key] || 0;
    const rate = rateOf(key, state);
    const kind = n === 0 ? "idle" : edge.kind;
    edge.g.setAttribute("class", "edge " + kind + (rate ? " moving" : ""));
    edge.g.setAttribute("data-transition", key);
    edge.g.setAttribute("data-count", String(n));
    edge.p.setAttribute("marker-end", `url(#arrow-${kind})`);
    edge.label.textContent = fmtRate(rate);
    const e = edge.e;
    edge.title.textContent = `${STATES[e.f].label} → ${e.t === "close" ? "CLOSE" : STATES[e.t].label}: ${e.why}. ` +
      `${exact(n)} since tcpstated started, all namespaces.`;
  }
  for (const name of SELF) {
    const n = counted[name + ">" + name] || 0;
    if (n > 0) view.boxes[name].extra.textContent = "↻ " + fmtRate(rateOf(name + ">" + name, state));
  }
  if (counts.new_syn_recv === 0 && counts.listen > 0) view.boxes.new_syn_recv.extra.textContent = "SYN queues empty";
  drawInvalid(state);
}

function drawInvalid(state) {
  view.invalid.textContent = "";
  for (const t of state.invalid_transitions) {
    if (!STATES[t.from] || !STATES[t.to] || t.from === t.to) continue;
    const e = {f: t.from, t: t.to, why: "outside Linux's transition table"};
    const g = el("g", {class: "edge invalid", "data-transition": t.from + ">" + t.to, "data-count": String(t.count)}, view.invalid);
    const p = el("path", {d: edgePath(e), "marker-end": "url(#arrow-invalid)"}, g);
    el("title", {}, g).textContent = `Invalid: ${STATES[t.from].label} → ${STATES[t.to].label}, ${exact(t.count)} since start.`;
    const mid = p.getPointAtLength(p.getTotalLength() / 2);
    el("text", {x: mid.x, y: mid.y - 6}, g).textContent = "✕ " + fmtCount(t.count);
  }
}

function row(parent, cls) {
  const div = document.createElement("div");
  div.className = "row" + (cls ? " " + cls : "");
  parent.appendChild(div);
  return div;
}

function span(parent, cls, text) {
  const s = document.createElement("span");
  if (cls) s.className = cls;
  s.textContent = text;
  parent.appendChild(s);
  return s;
}

function debugLink(parent, state, query, text) {
  if (!state.debug_sockets) return;
  parent.appendChild(document.createElement("br"));
  const a = document.createElement("a");
  a.href = "/debug/sockets?" + query;
  a.textContent = text;
  parent.appendChild(a);
}

function fill(id, items, render) {
  const box = document.getElementById(id);
  box.textContent = "";
  if (items.length === 0) {
    const p = document.createElement("p");
    p.className = "none";
    p.textContent = "None.";
    box.appendChild(p);
    return;
  }
  for (const item of items) render(box, item);
}

function updateDetections(state) {
  const d = state.detections;
  fill("close-wait", d.close_wait_leaks.filter((l) => inScope(l.netns)), (box, l) => {
    const r = row(box);
    r.dataset.netns = String(l.netns);
    r.dataset.comm = l.comm;
    r.dataset.leaked = String(l.leaked);
    span(r, "what", (l.comm || "unknown process") + (l.unit ? " (" + l.unit + ")" : ""));
    span(r, "", ` — ${l.role || "unknown role"} port ${l.port}: ${fmtCount(l.leaked)} leaked of ` +
      `${fmtCount(l.sockets)} in CLOSE_WAIT, oldest ${fmtAge(l.oldest_seconds)} — ${nsName(state, l.netns)}`);
    debugLink(r, state, `state=close_wait&limit=20&netns=${encodeURIComponent(l.netns)}`,
      "oldest CLOSE_WAIT sockets in this namespace");
  });
  fill("syn-floods", d.syn_floods.filter((f) => inScope(f.netns)), (box, f) => {
    const r = row(box);
    r.dataset.netns = String(f.netns);
    span(r, "what", `listener port ${f.port}`);
    span(r, "", ` — ${fmtCount(f.half_open)} half-open of a ${fmtCount(f.queue_limit)} queue, ` +
      `${fmtCount(f.accept_queue)} waiting for accept(), ${fmtCount(f.synack_retransmits)} SYN-ACKs retransmitted — ` +
      nsName(state, f.netns));
    debugLink(r, state, `state=syn_recv&limit=20&netns=${encodeURIComponent(f.netns)}`,
      "oldest SYN_RECV sockets in this namespace (half-open requests are counted, not listed)");
  });
  fill("port-exhaustion", d.port_exhaustion.filter((p) => inScope(p.netns)), (box, p) => {
    const r = row(box);
    r.dataset.netns = String(p.netns);
    span(r, "what", `${p.saddr} → ${p.daddr}:${p.dport}`);
    span(r, "", ` — ${fmtCount(p.ports_used)} of ${fmtCount(p.ports_available)} ephemeral ports held — ` +
      nsName(state, p.netns));
    debugLink(r, state, `state=time_wait&limit=20&netns=${encodeURIComponent(p.netns)}`,
      "oldest TIME_WAIT sockets in this namespace");
  });
  fill("invalid", state.invalid_transitions, (box, t) => {
    const r = row(box, "invalid");
    span(r, "what", `${t.from.toUpperCase()} → ${t.to.toUpperCase()}`);
    span(r, "", `: ${exact(t.count)} since start, all namespaces (the mirror took the kernel's word)`);
  });
}

function updateHealth(state) {
  const h = state.health;
  const eventRate = state.rates.events;
  const reconcile = h.last_reconcile_age_seconds === null ? "not yet" :
    fmtAge(h.last_reconcile_age_seconds) + " ago (dump " + h.last_reconcile_dump_seconds.toFixed(2) + " s)";
  const items = [
    ["Events", fmtRate(eventRate) + ", " + fmtCount(h.events) + " in all", false, "events"],
    ["Events lost (ring full)", fmtCount(h.events_lost), h.events_lost > 0, "events_lost"],
    ["Events missed (kernel skipped)", fmtCount(h.events_missed), h.events_missed > 0, "events_missed"],
    ["Decode errors", fmtCount(h.decode_errors), h.decode_errors > 0, "decode_errors"],
    ["Resyncs with the kernel", fmtCount(h.resyncs), false, "resyncs"],
    ["Sockets tracked", fmtCount(h.tracked_sockets) + " of " + fmtCount(h.tracked_sockets_limit), false, "tracked_sockets"],
    ["Evictions (table full)", fmtCount(h.evictions), h.evictions > 0, "evictions"],
    ["Last reconcile", reconcile, false, "last_reconcile"],
    ["Reconciles", fmtCount(h.reconciles), false, "reconciles"],
    ["sock_diag errors", fmtCount(h.sock_diag_errors), h.sock_diag_errors > 0, "sock_diag_errors"],
    ["Version, attach mode", state.tcpstated.version + ", " + state.tcpstated.attach, false, "version"],
  ];
  const dl = document.getElementById("health");
  dl.textContent = "";
  for (const [label, value, bad, key] of items) {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = value;
    dd.dataset.key = key;
    if (bad) dd.className = "bad";
    dl.appendChild(dt);
    dl.appendChild(dd);
  }
}

function updateNote(state) {
  const where = selected === "all" ? "all namespaces together" : nsName(state, Number(selected));
  let text = `Boxes: sockets in each state now, in ${where}. Arrows: transitions per second over the last ` +
    "refresh, all namespaces together (the kernel counts transitions without a namespace).";
  if (state.namespaces_omitted > 0) text += ` ${state.namespaces_omitted} smaller namespaces are not listed.`;
  document.getElementById("scope-note").textContent = text;
}

function draw(state) {
  const metrics = document.getElementById("metrics-link");
  metrics.setAttribute("href", state.tcpstated.telemetry_path);
  updateSelector(state);
  updateNote(state);
  updateFigure(state);
  updateDetections(state);
  updateHealth(state);
}

function render(state) {
  state.rates = computeRates(state);
  draw(state);
  previous = state;
  const status = document.getElementById("status");
  status.className = "";
  status.textContent = "Live: updated " + new Date().toLocaleTimeString();
  // For tests and scripts: how many answers the page has drawn.
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
}

async function refresh() {
  try {
    const response = await fetch(API, {cache: "no-store", credentials: "same-origin"});
    if (!response.ok) throw new Error("HTTP " + response.status);
    const state = await response.json();
    if (state.api_version !== 1) throw new Error("unknown API version " + state.api_version);
    render(state);
  } catch (err) {
    const status = document.getElementById("status");
    status.className = "error";
    status.textContent = "Cannot reach tcpstated (" + err.message + "); the numbers below are stale.";
  }
  setTimeout(refresh, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  drawFigure();
  document.getElementById("netns").addEventListener("change", (ev) => {
    selected = ev.target.value;
    history.replaceState(null, "", "#netns=" + selected);
    // Redraw at once from the last answer rather than waiting a second.
    if (previous) draw(previous);
  });
  refresh();
});
