// How connections end: connect() failures per destination and resets per
// port (tcpstated_connect_failures_total, tcpstated_connect_duration_seconds,
// tcpstated_resets_total and the daemon's *_active detections). Their own
// alert group and dashboard row, kept in this file so other additions to the
// mixin merge apart.
local lib = import 'lib.libsonnet';

{
  _config+:: {
    // Failed connects per second to one destination (every reason summed)
    // over 5 m that TcpstatedConnectFailures fires at. The daemon's own
    // detection (tcpstated_connect_failing_active) uses
    // detectors.connect_failure_rate over its 5 s cycle.
    connectFailuresPerSecond: 0.1,
    // Resets per second of one port, sent and received, over 5 m
    // (TcpstatedConnectionResets); the daemon's detectors.reset_rate
    // decides tcpstated_resets_active.
    resetsPerSecond: 1,
  },

  prometheusAlerts+:: {
    local c = $._config,
    local s(metric, extra='') = lib.sel(c, metric, extra),
    local alert(name, severity, expr, for_, summary, description) = {
      alert: name,
      expr: expr,
      'for': for_,
      labels: { severity: c.severities[severity] },
      annotations: {
        summary: summary,
        description: description,
      } + lib.runbookAnnotation(c, name),
    },

    groups+: [{
      name: 'tcpstated.outcomes',
      rules: [
        // One destination, every reason summed: a backend that refuses,
        // times out or is unreachable. `other` sums many destinations and
        // is left out: it is not one backend failing.
        alert('TcpstatedConnectFailures',
              'warning',
              |||
                sum without (reason) (rate(%s[5m])) > %s
              ||| % [s('tcpstated_connect_failures_total', 'daddr!="other"'), c.connectFailuresPerSecond],
              '10m',
              'Connections to one destination keep failing.',
              'connect() from netns {{ $labels.netns }} on {{ $labels.instance }} to {{ $labels.daddr }}:{{ $labels.dport }} fails {{ $value | humanize }} times/s.'),
        // Resets of connects (received in SYN_SENT: a refused connect()) are
        // TcpstatedConnectFailures' to report, per destination: left out
        // here so one refusing backend does not page twice.
        alert('TcpstatedConnectionResets',
              'warning',
              |||
                sum without (direction, state) (rate(%s[5m])) > %s
              ||| % [s('tcpstated_resets_total', 'port!="other", state!="syn_sent"'), c.resetsPerSecond],
              '15m',
              'Connections of one service keep being reset.',
              'Connections of {{ $labels.role }} port {{ $labels.port }} (netns {{ $labels.netns }}) on {{ $labels.instance }} end in a reset {{ $value | humanize }} times/s.'),
      ],
    }],
  },

  // A row for the dashboard (dashboard.libsonnet renders every entry of
  // dashboardExtraRows before its health row, with its selector helpers).
  dashboardExtraRows+:: [
    function(h) h.row('Connect failures and resets', [
      h.timeseries(
        'Failed connects by destination and reason',
        |||
          Outbound connection attempts that ended in SYN_SENT → CLOSE, per second, per destination and reason (tcpstated_connect_failures_total).

          `connect()` sends a SYN and waits in SYN_SENT for the SYN-ACK. It fails when:
          * **refused**: a reset (RST) answered the SYN: the host is up but nothing listens on that port (service down, wrong port, or a firewall that rejects with a reset). The application sees ECONNREFUSED.
          * **timed_out**: no SYN-ACK came back through every SYN retransmission (net.ipv4.tcp_syn_retries, about 130 s by default; the application sees ETIMEDOUT): the destination is down or a firewall drops the packets silently.
          * **unreachable**: an ICMP host or network unreachable came back (EHOSTUNREACH, ENETUNREACH): a router has no path.
          * **aborted**: the application closed the socket while it was still connecting, usually its own connect timeout firing first: look at the destination as for timed_out.
          * **no_local_port**: no ephemeral port towards that destination was free (EADDRNOTAVAIL): see the TIME_WAIT and ephemeral ports row.
          Rows labelled `other` sum the destinations beyond tracking.max_series_per_metric.
        |||,
        [
          ['sum by (instance, netns, daddr, dport, reason) (%s) > 0' % h.rate('tcpstated_connect_failures_total'),
           '{{instance}} {{daddr}}:{{dport}} {{reason}}'],
        ],
        unit='reqps',
        legendRight=true,
        links=h.links(['TcpstatedConnectFailures']),
      ),
      h.timeseries(
        'Connect time by destination (p50, p99)',
        'Time from `connect()` (SYN sent) to ESTABLISHED (SYN-ACK received '
        + 'and acknowledged): one network round trip when all goes well. A '
        + 'p99 near 1 s, 3 s or 7 s means SYNs or SYN-ACKs are being lost and '
        + 'retransmitted (the initial retransmission timeout is 1 s, doubling '
        + 'each time); a rising p50 means the path or the destination is slow '
        + 'to answer (a full SYN queue on the server also delays its SYN-ACK). '
        + '(tcpstated_connect_duration_seconds; sockets that predate the '
        + 'daemon are not observed.)',
        [
          ['histogram_quantile(0.5, sum by (instance, netns, daddr, dport, le) (%s))' % h.rate('tcpstated_connect_duration_seconds_bucket'),
           '{{instance}} {{daddr}}:{{dport}} p50'],
          ['histogram_quantile(0.99, sum by (instance, netns, daddr, dport, le) (%s))' % h.rate('tcpstated_connect_duration_seconds_bucket'),
           '{{instance}} {{daddr}}:{{dport}} p99'],
        ],
        unit='s',
        legendRight=true,
      ),
      h.timeseries(
        'Resets by port, direction and state',
        |||
          Connections ended by a reset (RST), per second (tcpstated_resets_total). A reset tears the connection down at once: no FIN exchange, no TIME_WAIT, and data not yet read is lost.

          * **received**: the peer reset the connection; the application sees ECONNRESET, "connection reset by peer" (or EPIPE when writing). Usual causes: the peer process crashed or was killed, it closed with unread data, a proxy or load balancer timed the connection out, or a firewall or NAT forgot it.
          * **sent**: this host aborted it: the application closed with SO_LINGER 0, or closed with data it never read (the kernel must tell the peer that data was lost), or the kernel answered a segment for a connection it no longer knows.
          * **state**: the state the connection was in. Resets in established mean live connections were cut; in syn_sent they are refused connects; in close_wait or fin_wait states the close itself was aborted.
          * **role / port**: for a server (role server or listener) the local listening port; for a client the remote port of the service it talks to.
          Rows labelled `other` sum the ports beyond tracking.max_series_per_metric.
        |||,
        [
          ['sum by (instance, netns, role, port, direction, state) (%s) > 0' % h.rate('tcpstated_resets_total'),
           '{{instance}} {{role}} {{port}} {{direction}} in {{state}}'],
        ],
        unit='reqps',
        legendRight=true,
        links=h.links(['TcpstatedConnectionResets']),
      ),
      h.table(
        'Failing destinations and resetting ports now',
        "The daemon's own detections: destinations whose connects fail "
        + 'faster than detectors.connect_failure_rate per second '
        + '(tcpstated_connect_failing_active), and ports whose connections are '
        + 'reset faster than detectors.reset_rate per second '
        + '(tcpstated_resets_active), over its 5 s cycle. Empty when all is '
        + 'well.',
        [
          ['%s == 1' % h.sel('tcpstated_connect_failing_active'), ''],
          ['%s == 1' % h.sel('tcpstated_resets_active'), ''],
        ],
        unit='short',
        rename={ instance: 'Instance', netns: 'Namespace', daddr: 'Destination', dport: 'Port', role: 'Role', port: 'Service port' },
        hide=['job', 'Value #A', 'Value #B'],
      ),
    ]),
  ],
}
