// Alerts. Each has `for:`, a severity from _config.severities, a static
// summary (the same text for every instance, so notifications group), a
// short description with the labels and value, and its runbook (an
// absolute URL, or the installed file's section: lib.runbookAnnotation).
// What the state means and what to do lives in the runbook, not here.
//
// Where an alert has a warning and a critical variant both fire in the
// worst case; an Alertmanager inhibit rule (severity="critical" inhibits
// severity="warning" with equal alertname and instance) keeps one.
//
// To add an alert for a new metric: append an `alert(...)` to the group
// below, add its section to docs/runbooks.md (anchor = name in lower case)
// and a firing and a quiet case to dashboards/tests/tcpstated.alerts.test.yaml.
local lib = import 'lib.libsonnet';

{
  prometheusAlerts+:: {
    local c = $._config,
    local s(metric, extra='') = lib.sel(c, metric, extra),
    local target = lib.target(c),
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
      name: 'tcpstated.alerts',
      rules: [
        // -- CLOSE_WAIT: grouped by owner (namespace, process, unit): a
        // leaking service often spreads over several ports, and the owner
        // is what the on-call acts on.
        alert('TcpstatedCloseWaitLeak',
              'warning',
              |||
                sum without (role, port) (%s) >= %d
              ||| % [s('tcpstated_close_wait_leaked_sockets'), c.closeWaitLeakWarning],
              '15m',
              'A process is leaking sockets in CLOSE_WAIT.',
              '{{ $labels.comm }} ({{ with $labels.unit }}{{ . }}, {{ end }}netns {{ $labels.netns }}) on {{ $labels.instance }} holds {{ $value | printf "%.0f" }} sockets its peers closed and it never did.'),
        alert('TcpstatedCloseWaitLeak',
              'critical',
              |||
                sum without (role, port) (%s) >= %d
              ||| % [s('tcpstated_close_wait_leaked_sockets'), c.closeWaitLeakCritical],
              '15m',
              'A process holds enough leaked CLOSE_WAIT sockets to run out of file descriptors.',
              '{{ $labels.comm }} ({{ with $labels.unit }}{{ . }}, {{ end }}netns {{ $labels.netns }}) on {{ $labels.instance }} holds {{ $value | printf "%.0f" }} leaked CLOSE_WAIT sockets.'),

        // -- SYN floods. tcpstated_syn_flood_active already requires a
        // pressured listener: SYN cookies on a host that enables them by
        // design do not set it. $value is the half-open count.
        alert('TcpstatedSynFlood',
              'warning',
              |||
                %s
                  and (%s == 1)
              ||| % [s('tcpstated_listen_syn_recv_sockets'), s('tcpstated_syn_flood_active')],
              '5m',
              'A listener is under a SYN flood.',
              'Port {{ $labels.port }} (netns {{ $labels.netns }}) on {{ $labels.instance }} has {{ $value | printf "%.0f" }} half-open connections.'),
        // Critical when the flood costs real connections: the namespace's
        // listeners drop attempts (ListenDrops is per namespace).
        alert('TcpstatedSynFlood',
              'critical',
              |||
                (%s == 1)
                  * ignoring (port) group_left ()
                (rate(%s[5m]) > %s)
              ||| % [s('tcpstated_syn_flood_active'), s('tcpstated_listen_drops_total'), c.synFloodDropsPerSecond],
              '5m',
              'A SYN flood is dropping connection attempts.',
              'Port {{ $labels.port }} (netns {{ $labels.netns }}) on {{ $labels.instance }} is flooded; its namespace drops {{ $value | humanize }} connection attempts/s.'),
        // The accept queue overflows while no listener of the namespace is
        // flooded: an application that accepts too slowly (or a backlog
        // too small for its bursts). $value is overflows per second.
        alert('TcpstatedListenOverflows',
              'warning',
              |||
                rate(%s[5m]) > %s
                  unless on (%s, netns) (%s == 1)
              ||| % [s('tcpstated_listen_overflows_total'), c.listenOverflowsPerSecond, target, s('tcpstated_syn_flood_active')],
              '15m',
              'Accept queues overflow without a SYN flood.',
              'Listeners in netns {{ $labels.netns }} on {{ $labels.instance }} drop {{ $value | humanize }} completed connections/s because their accept queue is full.'),

        // -- Ephemeral ports and TIME_WAIT. $value: ports held, or the
        // share of the range.
        alert('TcpstatedEphemeralPortExhaustion',
              'warning',
              |||
                %s
                  and (%s == 1)
              ||| % [s('tcpstated_ephemeral_ports_used'), s('tcpstated_port_exhaustion_active')],
              '5m',
              'A destination is using up the ephemeral port range.',
              '{{ $labels.saddr }} to {{ $labels.daddr }}:{{ $labels.dport }} (netns {{ $labels.netns }}) on {{ $labels.instance }} holds {{ $value | printf "%.0f" }} local ports.'),
        alert('TcpstatedEphemeralPortExhaustion',
              'critical',
              |||
                %s
                  / ignoring (saddr, daddr, dport) group_left ()
                (%s > 0)
                >= %s
              ||| % [s('tcpstated_ephemeral_ports_used'), s('tcpstated_ephemeral_ports_available'), c.portExhaustionCriticalRatio],
              '5m',
              'Connections to a destination are failing or about to fail with EADDRNOTAVAIL.',
              '{{ $labels.saddr }} to {{ $labels.daddr }}:{{ $labels.dport }} (netns {{ $labels.netns }}) on {{ $labels.instance }} holds {{ $value | humanizePercentage }} of the ephemeral ports.'),
        alert('TcpstatedTimeWaitBucketsNearLimit',
              'warning',
              |||
                sum without (state) (%s)
                  / (%s > 0)
                >= %s
              ||| % [s('tcpstated_sockets', 'state="time_wait"'), s('tcpstated_time_wait_limit'), c.timeWaitBucketsRatio],
              '10m',
              'TIME_WAIT sockets are close to net.ipv4.tcp_max_tw_buckets.',
              'Netns {{ $labels.netns }} on {{ $labels.instance }} holds {{ $value | humanizePercentage }} of tcp_max_tw_buckets in TIME_WAIT.'),

        // -- tcpstated itself.
        // Lost (ring buffer full) and missed (the kernel skipped the BPF
        // program) events, each family on its own: a daemon that exports
        // only one of them still alerts. A burst is repaired by the next
        // reconcile; losses that recur for 15 minutes are not.
        alert('TcpstatedEventsLost',
              'warning',
              |||
                sum without (source, kind) (
                  label_replace(rate(%s[5m]), "kind", "lost", "", "")
                  or
                  label_replace(rate(%s[5m]), "kind", "missed", "", "")
                ) > 0
              ||| % [s('tcpstated_events_lost_total'), s('tcpstated_events_missed_total')],
              '15m',
              'tcpstated keeps losing kernel events.',
              'tcpstated on {{ $labels.instance }} loses {{ $value | printf "%.3g" }} kernel events/s; its per-socket view is wrong until the next reconcile.'),
        // The mirror's table is full: sockets are evicted and their owners
        // and ages are lost (counts from the reconcile stay right).
        alert('TcpstatedMirrorEvictions',
              'warning',
              |||
                rate(%s[5m]) > 0
              ||| % s('tcpstated_evictions_total'),
              '15m',
              'tcpstated evicts sockets from its full table.',
              'tcpstated on {{ $labels.instance }} evicts {{ $value | humanize }} sockets/s: tracking.max_tracked_sockets is too small.'),
        // Socket dumps or namespace reads keep failing: seeding, reconcile,
        // half-open counts and CLOSE_WAIT ages go stale.
        alert('TcpstatedSockDiagErrors',
              'warning',
              |||
                rate(%s[5m]) > 0
              ||| % s('tcpstated_sock_diag_errors_total'),
              '15m',
              'tcpstated cannot read the kernel socket tables.',
              'tcpstated on {{ $labels.instance }} fails {{ $value | humanize }} sock_diag dumps or namespace reads per second.'),
        // Someone keeps the metrics endpoint busy: connections refused for
        // the caps (too many open, too many from one address, every worker
        // busy) or logins refused for the failed-password budget. Scrapes
        // may still be answered (the caps protect them), so this is not
        // TcpstatedDown: it asks who is hammering the port. Slow clients
        // (`timeout`) and single wrong passwords (`invalid`) are left out:
        // a misconfigured scraper shows up as its own target down. Both
        // families are always exported with every reason, so the sum
        // never drops a target.
        alert('TcpstatedEndpointAbuse',
              'warning',
              |||
                sum by (%(t)s) (rate(%(d)s[5m]))
                  + sum by (%(t)s) (rate(%(a)s[5m]))
                > 0
              ||| % {
                t: target,
                d: s('tcpstated_http_connections_dropped_total', 'reason=~"overload|per_source|queue_full"'),
                a: s('tcpstated_http_auth_refused_total', 'reason="rate_limited"'),
              },
              '15m',
              "tcpstated's metrics endpoint keeps refusing connections or logins.",
              'tcpstated on {{ $labels.instance }} refuses {{ $value | humanize }} connections or password attempts per second for its connection caps or failed-login budget.'),
        // The invalid-transition counters exist only once non-zero, so a
        // pair that happens once appears at 1 and never increases:
        // increase() alone would miss it. The second operand catches a
        // series that appeared while the target was already scraped (a
        // target new to Prometheus with old counters is not a new event)
        // and holds it for the same hour. Nothing to do on the host: info.
        alert('TcpstatedInvalidTransitions',
              'info',
              |||
                increase(%(m)s[1h]) > 0
                or
                max_over_time((
                  (
                    %(m)s
                      unless %(m)s offset 5m
                  )
                  and on (%(t)s) (%(b)s offset 5m)
                )[1h:1m])
              ||| % { m: s('tcpstated_invalid_transitions_total'), t: target, b: s('tcpstated_build_info') },
              '5m',
              'tcpstated saw TCP state changes its model of Linux does not allow.',
              'tcpstated on {{ $labels.instance }} saw {{ $value | printf "%.0f" }} transitions {{ $labels.from }} -> {{ $labels.to }} in the last hour.'),
        // Job-agnostic: a target is a tcpstated if it exported
        // tcpstated_build_info within downLookback, whatever the scrape job
        // is called (static `tcpstated`, `kubernetes-pods`, a PodMonitor's
        // `monitoring/tcpstated`). The second operand: no tcpstated series
        // at all (service discovery lost every target). A target that never
        // answered once is left to the standard target-down alert.
        alert('TcpstatedDown',
              'warning',
              |||
                %(u)s == 0
                  and on (%(t)s) last_over_time(%(b)s[%(l)s])
                or
                absent(%(b)s)
              ||| % { u: s('up'), t: target, b: s('tcpstated_build_info'), l: c.downLookback },
              '5m',
              'Prometheus cannot scrape tcpstated.',
              '{{ if $labels.instance }}tcpstated on {{ $labels.instance }} (job {{ $labels.job }}) does not answer scrapes.{{ else }}No tcpstated target exports metrics at all.{{ end }}'),
      ],
    }],
  },
}
