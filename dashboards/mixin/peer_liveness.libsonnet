// Stuck FIN_WAIT2, idle connections and dead peers (issue 14, items 1 and
// 2): their thresholds, alert group and dashboard row, kept in one file so
// that other detections add theirs beside it. The row goes in through the
// dashboard's `dashboardExtraRows` (dashboard.libsonnet), before the
// daemon's own health row.
local lib = import 'lib.libsonnet';
local p = import 'panels.libsonnet';

{
  _config+:: {
    // The daemon's detectors.fin_wait2_stuck_after and idle_after decide
    // which sockets are counted; these two only label the dashboard.
    finWait2StuckAfterSeconds: 300,
    idleAfterSeconds: 3600,
    finWait2StuckWarning: 1,  // stuck sockets of one owner towards one peer
    deadPeerWarning: 1,  // dead-peer connections of one owner and port
    idleWithoutKeepaliveInfo: 100,  // idle, keepalive off, one owner and port
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
      name: 'tcpstated.peers',
      rules: [
        // Per owner and peer: the peer (daddr:dport) is the service whose
        // application leaks CLOSE_WAIT, and the one to call.
        alert('TcpstatedFinWait2Stuck',
              'warning',
              |||
                %s >= %d
              ||| % [s('tcpstated_fin_wait2_stuck_sockets'), c.finWait2StuckWarning],
              '15m',
              'Half-closed connections wait forever for their peer to close.',
              '{{ $labels.comm }} (netns {{ $labels.netns }}) on {{ $labels.instance }} holds {{ $value | printf "%.0f" }} FIN_WAIT2 sockets to {{ $labels.daddr }}:{{ $labels.dport }}, which never closes.'),
        alert('TcpstatedDeadPeers',
              'warning',
              |||
                sum without (reason) (%s) >= %d
              ||| % [s('tcpstated_dead_peer_sockets'), c.deadPeerWarning],
              '10m',
              'Connections are stuck on peers that no longer answer.',
              '{{ $labels.comm }} ({{ $labels.role }}, port {{ $labels.port }}, netns {{ $labels.netns }}) on {{ $labels.instance }} has {{ $value | printf "%.0f" }} connections whose peer does not answer.'),
        // A ticket, not a page: idle pools are normal, but without
        // keepalive a peer that vanished is never noticed.
        alert('TcpstatedIdleConnectionsWithoutKeepalive',
              'info',
              |||
                sum without (keepalive) (%s) >= %d
              ||| % [s('tcpstated_idle_sockets', 'keepalive="off"'), c.idleWithoutKeepaliveInfo],
              '1h',
              'Many idle connections have no keepalive.',
              '{{ $labels.comm }} ({{ $labels.role }}, port {{ $labels.port }}, netns {{ $labels.netns }}) on {{ $labels.instance }} keeps {{ $value | printf "%.0f" }} idle connections without keepalive.'),
      ],
    }],
  },

  dashboardExtraRows+:: [
    function(h) p.row('Stuck FIN_WAIT2, idle and dead peers', [
      p.timeseries(
        'Stuck FIN_WAIT2 by owner and peer',
        'Sockets in FIN_WAIT2 for longer than %d s ' % $._config.finWait2StuckAfterSeconds
        + '(detectors.fin_wait2_stuck_after) that the application still holds. '
        + 'FIN_WAIT2: this side closed its half (close() or shutdown(SHUT_WR)), '
        + "the peer acknowledged the FIN but never sent its own. No timer ends "
        + 'such a socket: the peer (daddr:dport) has the bug, an application '
        + 'that never calls close() and sits in CLOSE_WAIT.',
        [
          ['sum by (instance, netns, comm, daddr, dport) (%s) > 0' % h.sel('tcpstated_fin_wait2_stuck_sockets'), '{{instance}} {{comm}} → {{daddr}}:{{dport}}'],
        ],
        unit='short',
        links=h.links(['TcpstatedFinWait2Stuck']),
      ),
      p.timeseries(
        'FIN_WAIT2: held by the application vs orphaned',
        'Held: the application still has the socket (it half-closed); it '
        + 'stays until the peer closes. Orphaned: the application closed it; '
        + 'the kernel keeps it (or a timewait stand-in) for '
        + 'net.ipv4.tcp_fin_timeout (60 s) waiting for the peer, then drops '
        + "it. Orphans are the kernel's normal cleanup and never alert.",
        [
          ['sum by (instance) (%s)' % h.sel('tcpstated_fin_wait2_sockets'), '{{instance}} held'],
          ['sum by (instance) (%s)' % h.sel('tcpstated_fin_wait2_orphan_sockets'), '{{instance}} orphaned'],
        ],
        unit='short',
      ),
      p.timeseries(
        'Oldest held FIN_WAIT2 per peer',
        'Age of the oldest held FIN_WAIT2 socket towards each peer: how long '
        + 'the peer has kept its half of the connection open. It only grows '
        + 'until the peer (or this application) closes.',
        [
          ['max by (instance, comm, daddr, dport) (%s)' % h.sel('tcpstated_fin_wait2_oldest_seconds'), '{{instance}} {{comm}} → {{daddr}}:{{dport}}'],
        ],
        unit='s',
      ),
      p.timeseries(
        'Idle connections by owner and keepalive',
        'ESTABLISHED connections that received nothing for longer than %d s ' % $._config.idleAfterSeconds
        + '(detectors.idle_after). keepalive=off: if the peer vanished '
        + '(rebooted, or a NAT or firewall forgot the flow) nothing notices '
        + 'until the application writes. keepalive=on: the kernel probes '
        + 'after net.ipv4.tcp_keepalive_time (2 h by default).',
        [
          ['sum by (instance, comm, role, port, keepalive) (%s) > 0' % h.sel('tcpstated_idle_sockets'), '{{instance}} {{comm}} {{role}} :{{port}} keepalive {{keepalive}}'],
        ],
        unit='short',
        links=h.links(['TcpstatedIdleConnectionsWithoutKeepalive']),
      ),
      p.timeseries(
        'Dead peers by owner and reason',
        'Connections whose peer does not answer: keepalive probes sent and '
        + 'never acknowledged (reason=keepalive), or data retransmitted with '
        + 'exponential backoff and never acknowledged (reason=retransmit), '
        + 'detectors.dead_peer_retries times in a row. The kernel only gives '
        + 'up after tcp_keepalive_probes probes or tcp_retries2 '
        + 'retransmissions (about 15 minutes); the application sees nothing '
        + 'until then.',
        [
          ['sum by (instance, comm, role, port, reason) (%s) > 0' % h.sel('tcpstated_dead_peer_sockets'), '{{instance}} {{comm}} {{role}} :{{port}} {{reason}}'],
        ],
        unit='short',
        links=h.links(['TcpstatedDeadPeers']),
      ),
    ]),
  ],
}
