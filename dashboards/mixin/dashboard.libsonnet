// The Grafana dashboard "tcpstated / TCP connection states". Every panel
// says what its TCP state means; every selector carries the cluster, job
// and instance variables. Several panels read the recording rules
// (tcpstated:...), so load them into the Prometheus Grafana queries.
//
// To add a panel for a new metric: add a builder call (panels.libsonnet) to
// the row it belongs to; the layout places it.
local lib = import 'lib.libsonnet';
local p = import 'panels.libsonnet';

{
  // Rows added by other files of the mixin (outcomes.libsonnet,
  // peer_liveness.libsonnet): functions of the panel builders plus this
  // dashboard's selector helpers (see below), placed before the daemon's
  // own health row.
  dashboardExtraRows+:: [],

  grafanaDashboards+:: {
    local c = $._config,
    local runbook(alert) = lib.runbook(c, alert),
    local links(alerts) = p.runbookLinks(runbook, alerts),
    local matchers = std.join(', ', std.filter(function(m) m != '', [
      c.tcpstatedSelector,
      '%s=~"$cluster"' % c.clusterLabel,
      'job=~"$job"',
      'instance=~"$instance"',
    ])),
    // metric{cluster=~"$cluster", job=~"$job", instance=~"$instance", extra}
    local sel(metric, extra='') =
      '%s{%s}' % [metric, std.join(', ', [matchers] + (if extra == '' then [] else [extra]))],
    local rate(metric, extra='') = 'rate(%s[$__rate_interval])' % sel(metric, extra),
    local timeseries = p.timeseries,
    local stat = p.stat,
    local table = p.table,
    local stateTimeline = p.stateTimeline,
    local unitOverride = p.unitOverride,
    local row = p.row,
    local pct(r) = std.toString(r * 100),
    local leaked = 'leaked (> %d s)' % c.closeWaitLeakAfterSeconds,

    local rows = [
      row('Connection states and transitions', [
        timeseries(
          'Sockets by state',
          |||
            TCP sockets on each host in each state, all network namespaces summed (recording rule tcpstated:sockets:sum_by_state).

            A client goes CLOSE → SYN_SENT → ESTABLISHED → FIN_WAIT1 → FIN_WAIT2 → TIME_WAIT → CLOSE; a server's listener stays in LISTEN and each accepted connection goes SYN_RECV → ESTABLISHED → CLOSE_WAIT → LAST_ACK → CLOSE when the client closes first. Whichever side closes first takes the FIN_WAIT/TIME_WAIT path.

            * **LISTEN**: a server socket waiting for connections (`listen()` called).
            * **SYN_SENT**: `connect()` sent its SYN (the first step of the three-way handshake) and waits for the SYN-ACK. Many of them: the destination is slow, down or filtered, or this host is scanning.
            * **SYN_RECV / NEW_SYN_RECV**: the server answered a SYN with a SYN-ACK (acknowledging the client's sequence number + 1) and waits for the client's final ACK: a half-open connection. NEW_SYN_RECV are the kernel's lightweight request sockets in a listener's SYN queue (`ss` shows them as SYN-RECV); thousands of them mean a SYN flood.
            * **ESTABLISHED**: the handshake completed; data flows both ways.
            * **FIN_WAIT1 / FIN_WAIT2**: this side closed first (the active closer) and sent its FIN; in FIN_WAIT2 the FIN was acknowledged and it waits for the peer's FIN. The peer may still send data meanwhile (a half-close). Once the application has closed, the kernel gives up after net.ipv4.tcp_fin_timeout (60 s).
            * **TIME_WAIT**: the active closer after acknowledging the peer's FIN. It keeps the connection's 4-tuple for 2MSL (60 s on Linux) for two reasons: if its final ACK is lost the peer resends its FIN and gets it again, and stray segments of the old connection die out before a new connection can reuse the same addresses and ports. Normal on clients and proxies; inferred by tcpstated since the kernel does not report it.
            * **CLOSING**: both sides sent a FIN before receiving the other's (a simultaneous close); both then go to TIME_WAIT.
            * **CLOSE_WAIT**: the peer closed (its FIN arrived and was acknowledged) and this application has not called `close()` yet. A count that only grows is a leak in the application, never a network problem.
            * **LAST_ACK**: the application closed after the peer did; its FIN is out and it waits for the last ACK.
            * **CLOSE**: created or being torn down; normally near zero.
          |||,
          [
            [sel('tcpstated:sockets:sum_by_state'), '{{instance}} {{state}}'],
          ],
          unit='short',
          legendRight=true,
        ),
        timeseries(
          'Sockets per namespace and state',
          'The same counts per network namespace (container, pod or `ip '
          + 'netns`), named from tcpstated_netns_info: `host` is the initial '
          + 'namespace; a namespace without a name yet shows its inode number '
          + '(`readlink /proc/PID/ns/net`, `lsns -t net`). States with no socket '
          + 'are hidden. Compare one namespace with `nsenter -t PID -n ss -tan | '
          + "awk '{print $1}' | sort | uniq -c` (recording rule "
          + 'tcpstated:sockets:with_netns_name).',
          [
            ['%s > 0' % sel('tcpstated:sockets:with_netns_name'), '{{instance}} {{name}} {{state}}'],
          ],
          unit='short',
          legendRight=true,
        ),
        timeseries(
          'State transitions',
          'State changes per second as the kernel reported them, counted in '
          + 'the kernel (exact even when events are lost). The normal client '
          + 'path is CLOSE → SYN_SENT → ESTABLISHED → FIN_WAIT1 → FIN_WAIT2 → '
          + 'CLOSE (the hand-off to a TIME_WAIT socket), the server path LISTEN '
          + '→ SYN_RECV → ESTABLISHED → CLOSE_WAIT → LAST_ACK → CLOSE. A rise in '
          + 'SYN_SENT → CLOSE is failing connect()s; X → CLOSE from a '
          + 'synchronized state without the usual path is mostly resets. Pairs '
          + 'that did not happen in the interval are hidden.',
          [
            ['sum by (instance, from, to) (%s) > 0' % rate('tcpstated_transitions_total'), '{{instance}} {{from}} → {{to}}'],
          ],
          unit='cps',
          legendRight=true,
        ),
        timeseries(
          'Connections opened and reset',
          'Active opens: connect() calls (CLOSE → SYN_SENT), this host as '
          + 'client. Passive opens: handshakes completed on a listener (LISTEN → '
          + "SYN_RECV, reported on the new socket when the client's final ACK "
          + 'arrives), this host as server. Resets: RST segments received and '
          + 'sent on tracked sockets; a RST aborts a connection without the FIN '
          + 'exchange (refused connect(), close() with unread data, SO_LINGER 0, '
          + 'a peer that restarted).',
          [
            ['sum by (instance) (%s)' % rate('tcpstated_transitions_total', 'from="close", to="syn_sent"'), '{{instance}} active opens (connect)'],
            ['sum by (instance) (%s)' % rate('tcpstated_transitions_total', 'from="listen", to="syn_recv"'), '{{instance}} passive opens (accepted handshakes)'],
            ['sum by (instance) (%s)' % rate('tcpstated_events_total', 'source="tcp_receive_reset"'), '{{instance}} RST received'],
            ['sum by (instance) (%s)' % rate('tcpstated_events_total', 'source="tcp_send_reset"'), '{{instance}} RST sent'],
          ],
          unit='cps',
        ),
        timeseries(
          'Time spent in a state (p50, p99)',
          'How long sockets stayed in a state, observed when they leave it. '
          + "ESTABLISHED is the connection's lifetime; SYN_SENT is the connect() "
          + 'latency (long: slow or unreachable servers, SYN retries); TIME_WAIT '
          + 'is 60 s by construction (2MSL); a long CLOSE_WAIT is an application '
          + 'slow to close(); FIN_WAIT2 lasts until the peer closes, or '
          + 'net.ipv4.tcp_fin_timeout (60 s) for a socket the application '
          + 'already closed. Bucket bounds are 1 ms … 1 day, so values are '
          + 'interpolated. Sockets that were already open when tcpstated started '
          + 'are not observed.',
          [
            ['histogram_quantile(0.99, sum by (instance, state, le) (%s))' % rate('tcpstated_state_duration_seconds_bucket'), '{{instance}} {{state}} p99'],
            ['histogram_quantile(0.5, sum by (instance, state, le) (%s))' % rate('tcpstated_state_duration_seconds_bucket'), '{{instance}} {{state}} p50'],
          ],
          unit='s',
          legendRight=true,
        ),
        p.heatmap(
          'Time spent in $state',
          'The whole distribution of the time sockets spent in the state chosen '
          + 'above (variable `state`), all selected hosts together: each column '
          + 'is one interval, each cell a histogram bucket, its colour how many '
          + 'sockets left the state after that long. Two bands in ESTABLISHED '
          + 'are two kinds of connection (short requests, long-lived pools); '
          + 'SYN_SENT cells at 1 s, 3 s, 7 s are SYN retransmissions (a lost SYN '
          + 'or a silent server); TIME_WAIT sits at 60 s; CLOSE_WAIT beyond '
          + "seconds is an application that reads the peer's FIN late.",
          [
            ['sum by (le) (%s)' % rate('tcpstated_state_duration_seconds_bucket', 'state="$state"'), '{{le}}'],
          ],
          's',
        ),
        table(
          'Network namespaces',
          "Maps the `netns` label (the namespace's inode number, as in "
          + '`readlink /proc/PID/ns/net` or `lsns -t net`) to a name: `host` for '
          + 'the initial namespace, the `ip netns` name where one exists, '
          + 'otherwise one derived from a process in it. Use it to read the '
          + 'other panels, which show the inode.',
          [
            [sel('tcpstated_netns_info'), ''],
          ],
          unit='none',
          rename={ name: 'namespace' },
          hide=['Value', 'job'],
        ),
      ]),
      row('CLOSE_WAIT leaks', [
        stat(
          'Leaked CLOSE_WAIT sockets',
          'Sockets in CLOSE_WAIT for longer than %d s ' % c.closeWaitLeakAfterSeconds
          + '(detectors.close_wait_leak_after), per host. CLOSE_WAIT means the '
          + 'peer closed its side (its FIN arrived and was acknowledged) and the '
          + 'application has not called close(). Only the application can end '
          + 'it: every leaked socket holds a file descriptor until the process '
          + 'closes it or exits. Orange at %d (TcpstatedCloseWaitLeak warning), ' % c.closeWaitLeakWarning
          + 'red at %d (critical).' % c.closeWaitLeakCritical,
          [
            [sel('tcpstated:close_wait_leaked_sockets:sum'), '{{instance}}'],
          ],
          unit='short',
          steps=[['green', null], ['orange', c.closeWaitLeakWarning], ['red', c.closeWaitLeakCritical]],
          links=links(['TcpstatedCloseWaitLeak']),
        ),
        stat(
          'Sockets in CLOSE_WAIT',
          'All sockets in CLOSE_WAIT, young ones included: the peer closed and '
          + 'the application has not (yet) called close(). A healthy service '
          + 'keeps this near zero because it closes as soon as read() returns 0.',
          [
            [sel('tcpstated:sockets:sum_by_state', 'state="close_wait"'), '{{instance}}'],
          ],
          unit='short',
          steps=[['green', null], ['orange', c.closeWaitLeakWarning]],
        ),
        stat(
          'Oldest CLOSE_WAIT socket',
          'Age of the oldest socket in CLOSE_WAIT: how long the application '
          + "has been ignoring a peer's close. Minutes or hours mean it will "
          + 'never close it.',
          [
            [sel('tcpstated:close_wait_oldest_seconds:max'), '{{instance}}'],
          ],
          unit='s',
          steps=[['green', null], ['orange', c.closeWaitLeakAfterSeconds], ['red', 600]],
          noValue='none',
        ),
        stat(
          'Owners leaking',
          'Number of (namespace, process, unit, role, port) groups that hold '
          + 'at least one leaked CLOSE_WAIT socket. The table below names them.',
          [
            ['count by (instance) (%s > 0)' % sel('tcpstated_close_wait_leaked_sockets'), '{{instance}}'],
          ],
          unit='short',
          steps=[['green', null], ['orange', 1]],
        ),
        table(
          'CLOSE_WAIT sockets by owner',
          'Who holds sockets in CLOSE_WAIT. `comm` and `unit` are the owning '
          + 'process and its systemd unit (for accepted connections, the process '
          + 'that called listen()). `role` server: connections accepted on the '
          + 'local listening `port`; client: outbound connections to the remote '
          + "`port`. Rows labelled `other` sum the groups beyond the daemon's "
          + 'series bound. Confirm on the host with `ss -tanp state close-wait` '
          + "(add `'( sport = :PORT )'` for a server port, `'( dport = :PORT )'` "
          + 'for a client one); the fix is in the application: a missing close() '
          + 'on an error path, or a connection pool that keeps connections the '
          + 'server already closed.',
          [
            [sel('tcpstated_close_wait_sockets'), ''],
            [sel('tcpstated_close_wait_leaked_sockets'), ''],
            [sel('tcpstated_close_wait_oldest_seconds'), ''],
          ],
          unit='short',
          rename={ 'Value #A': 'in CLOSE_WAIT', 'Value #B': leaked, 'Value #C': 'oldest' },
          hide=['job'],
          overrides=[unitOverride('oldest', 's')],
          sortBy=leaked,
          w=24,
        ),
        timeseries(
          'Leaked CLOSE_WAIT sockets by owner',
          'Leaked CLOSE_WAIT sockets (older than %d s) per owning process and ' % c.closeWaitLeakAfterSeconds
          + 'systemd unit. A line that only climbs is a leak in that program; '
          + 'one that drops back to zero on a schedule is a pool or a timeout '
          + 'that eventually closes them. A series disappears when its owner has '
          + 'no CLOSE_WAIT socket left.',
          [
            ['sum by (instance, netns, comm, unit) (%s)' % sel('tcpstated_close_wait_leaked_sockets'), '{{instance}} {{comm}} {{unit}} netns {{netns}}'],
          ],
          unit='short',
          thresholds=[['green', null], ['orange', c.closeWaitLeakWarning], ['red', c.closeWaitLeakCritical]],
          links=links(['TcpstatedCloseWaitLeak']),
        ),
        timeseries(
          'Oldest CLOSE_WAIT socket by owner',
          "Age of each owner's oldest CLOSE_WAIT socket. It rises one second "
          + "per second while the application ignores the peer's FIN; the line "
          + 'at %d s is where tcpstated calls it leaked.' % c.closeWaitLeakAfterSeconds,
          [
            ['max by (instance, netns, comm, unit) (%s)' % sel('tcpstated_close_wait_oldest_seconds'), '{{instance}} {{comm}} {{unit}} netns {{netns}}'],
          ],
          unit='s',
          thresholds=[['green', null], ['red', c.closeWaitLeakAfterSeconds]],
        ),
        timeseries(
          'Entering and leaving CLOSE_WAIT',
          'In: connections the peer closed (→ CLOSE_WAIT, its FIN arrived). '
          + 'Out: CLOSE_WAIT → LAST_ACK is the application calling close() (its '
          + 'FIN goes out, the last ACK ends the connection); CLOSE_WAIT → CLOSE '
          + 'is a reset or an abort. When in stays above out, CLOSE_WAIT sockets '
          + 'pile up.',
          [
            ['sum by (instance) (%s)' % rate('tcpstated_transitions_total', 'to="close_wait"'), '{{instance}} in: peer closed'],
            ['sum by (instance, to) (%s)' % rate('tcpstated_transitions_total', 'from="close_wait"'), '{{instance}} out: CLOSE_WAIT → {{to}}'],
          ],
          unit='cps',
          w=24,
        ),
      ]),
      row('SYN floods', [
        stat(
          'Listeners under SYN flood',
          'Listeners tcpstated flags as SYN-flooded: half-open connections at '
          + pct(c.synFloodHalfOpenRatio) + ' % or more of the queue limit, SYN-ACK retransmits above '
          + 'detectors.synack_retransmit_rate, or SYN cookies sent while that '
          + 'listener is under pressure. SYN cookies alone (tcp_syncookies=1 by '
          + 'design) do not set it.',
          [
            ['sum by (instance) (%s)' % sel('tcpstated_syn_flood_active'), '{{instance}}'],
          ],
          unit='short',
          steps=[['green', null], ['red', 1]],
          links=links(['TcpstatedSynFlood']),
        ),
        stat(
          'Half-open connections',
          'SYN_RECV request sockets on all listeners: the server sent its '
          + "SYN-ACK and waits for the client's final ACK. Spoofed SYNs never "
          + 'send it, so a flood keeps them until the SYN-ACK retries '
          + '(net.ipv4.tcp_synack_retries) run out.',
          [
            ['sum by (instance) (%s)' % sel('tcpstated_listen_syn_recv_sockets'), '{{instance}}'],
          ],
          unit='short',
          steps=[['green', null]],
        ),
        stat(
          'SYN cookies sent',
          'SYN cookies sent per second (TcpExt SyncookiesSent): the SYN queue '
          + "was full, so the kernel encoded the connection in the SYN-ACK's "
          + 'sequence number instead of keeping state. Real clients still '
          + 'connect; with tcp_syncookies=1 this is the defence working, not an '
          + 'outage by itself.',
          [
            ['sum by (instance) (%s)' % rate('tcpstated_syncookies_sent_total'), '{{instance}}'],
          ],
          unit='cps',
          steps=[['green', null], ['orange', 1]],
        ),
        stat(
          'Listen drops',
          'Connection attempts dropped by listeners per second (TcpExt '
          + 'ListenDrops): SYN queue full without cookies, or accept queue full. '
          + 'Each one is a client that sees a timeout and retries after 1 s, 3 '
          + 's, 7 s …',
          [
            ['sum by (instance) (%s)' % rate('tcpstated_listen_drops_total'), '{{instance}}'],
          ],
          unit='cps',
          steps=[['green', null], ['red', 1]],
          links=links(['TcpstatedSynFlood', 'TcpstatedListenOverflows']),
        ),
        timeseries(
          'Half-open connections vs queue limit',
          'Per listener (namespace, port): half-open connections (SYN '
          + "received, SYN-ACK sent, final ACK missing) against the listener's "
          + 'queue limit (listen() backlog capped by net.core.somaxconn; the SYN '
          + 'queue is bounded by it too). Near the limit new SYNs get cookies or '
          + 'are dropped. Only listeners with half-open connections are shown.',
          [
            ['%s > 0' % sel('tcpstated_listen_syn_recv_sockets'), '{{instance}} netns {{netns}} port {{port}} half-open'],
            ['%s and %s > 0' % [sel('tcpstated_listen_accept_queue_limit'), sel('tcpstated_listen_syn_recv_sockets')], '{{instance}} netns {{netns}} port {{port}} limit'],
          ],
          unit='short',
        ),
        timeseries(
          'Half-open share of the queue limit',
          "Half-open connections as a fraction of each listener's queue limit "
          + '(recording rule tcpstated:listen_half_open:ratio). At the line '
          + '(detectors.syn_flood_half_open_ratio) tcpstated flags a SYN flood.',
          [
            [sel('tcpstated:listen_half_open:ratio'), '{{instance}} netns {{netns}} port {{port}}'],
          ],
          unit='percentunit',
          thresholds=[['green', null], ['red', c.synFloodHalfOpenRatio]],
        ),
        timeseries(
          'Accept queue vs limit',
          'Per listener: connections that completed the handshake and wait for '
          + "the application's accept(), against the limit. A full accept queue "
          + 'is the application accepting too slowly (or stuck), not a flood: '
          + 'the kernel then drops completed handshakes (ListenOverflows). Only '
          + 'listeners with a non-empty queue are shown.',
          [
            ['%s > 0' % sel('tcpstated_listen_accept_queue_length'), '{{instance}} netns {{netns}} port {{port}} queued'],
            ['%s and %s > 0' % [sel('tcpstated_listen_accept_queue_limit'), sel('tcpstated_listen_accept_queue_length')], '{{instance}} netns {{netns}} port {{port}} limit'],
          ],
          unit='short',
        ),
        timeseries(
          'SYN-ACK retransmits per listener',
          "SYN-ACKs a listener sent again because the client's final ACK did "
          + 'not come: spoofed source addresses in a flood, or loss on the path '
          + 'back to real clients.',
          [
            ['sum by (instance, netns, port) (%s) > 0' % rate('tcpstated_synack_retransmits_total'), '{{instance}} netns {{netns}} port {{port}}'],
          ],
          unit='cps',
        ),
        timeseries(
          'SYN cookies and listener drops',
          'Per namespace (TcpExt counters): SYN cookies sent (SYN queue full, '
          + 'stateless fallback); SYN queue full drops (full and cookies off: '
          + 'the SYN is dropped); accept queue overflows (completed handshake '
          + 'dropped because the application did not accept() in time); all '
          + 'listen drops (a superset of both).',
          [
            ['sum by (instance, netns) (%s)' % rate('tcpstated_syncookies_sent_total'), '{{instance}} netns {{netns}} SYN cookies sent'],
            ['sum by (instance, netns) (%s)' % rate('tcpstated_syn_queue_full_drops_total'), '{{instance}} netns {{netns}} SYN queue full drops'],
            ['sum by (instance, netns) (%s)' % rate('tcpstated_listen_overflows_total'), '{{instance}} netns {{netns}} accept queue overflows'],
            ['sum by (instance, netns) (%s)' % rate('tcpstated_listen_drops_total'), '{{instance}} netns {{netns}} listen drops'],
          ],
          unit='cps',
        ),
        stateTimeline(
          'SYN flood detector per listener',
          'When tcpstated considered each listener flooded '
          + '(tcpstated_syn_flood_active; TcpstatedSynFlood fires after 5 '
          + 'minutes of it).',
          [
            [sel('tcpstated_syn_flood_active'), '{{instance}} netns {{netns}} port {{port}}'],
          ],
          mappings=[{ type: 'value', options: { '0': { text: 'ok', color: 'green', index: 0 }, '1': { text: 'SYN flood', color: 'red', index: 1 } } }],
        ),
      ]),
      row('TIME_WAIT and ephemeral ports', [
        stat(
          'Destinations near port exhaustion',
          'Destinations (source address, destination address, destination '
          + 'port) holding at least ' + pct(c.portExhaustionWarningRatio) + ' % of the ephemeral ports '
          + '(detectors.port_exhaustion_ratio). connect() to such a destination '
          + 'fails with EADDRNOTAVAIL once none is left.',
          [
            ['sum by (instance) (%s)' % sel('tcpstated_port_exhaustion_active'), '{{instance}}'],
          ],
          unit='short',
          steps=[['green', null], ['red', 1]],
          links=links(['TcpstatedEphemeralPortExhaustion']),
        ),
        stat(
          "Busiest destination's port usage",
          'The largest share of the ephemeral range one destination holds '
          + '(recording rule tcpstated:ephemeral_ports_used:ratio). Orange at '
          + '%s %%, red at %s %% (TcpstatedEphemeralPortExhaustion warning and critical).'
            % [pct(c.portExhaustionWarningRatio), pct(c.portExhaustionCriticalRatio)],
          [
            ['max by (instance) (%s)' % sel('tcpstated:ephemeral_ports_used:ratio'), '{{instance}}'],
          ],
          unit='percentunit',
          steps=[['green', null], ['orange', c.portExhaustionWarningRatio], ['red', c.portExhaustionCriticalRatio]],
          noValue='0%',
        ),
        stat(
          'TIME_WAIT sockets',
          'Sockets in TIME_WAIT: connections this host closed first, kept for '
          + '60 s (2MSL) after the final ACK. Each holds its local port towards '
          + 'that destination and a tcp_max_tw_buckets slot, but no file '
          + 'descriptor and little memory.',
          [
            [sel('tcpstated:sockets:sum_by_state', 'state="time_wait"'), '{{instance}}'],
          ],
          unit='short',
          steps=[['green', null]],
        ),
        stat(
          'TIME_WAIT share of tcp_max_tw_buckets',
          "The fullest namespace's TIME_WAIT sockets against its "
          + 'net.ipv4.tcp_max_tw_buckets (recording rule '
          + 'tcpstated:time_wait_sockets:ratio). At the limit the kernel closes '
          + 'connections without TIME_WAIT (TcpstatedTimeWaitBucketsNearLimit at '
          + pct(c.timeWaitBucketsRatio) + ' %).',
          [
            ['max by (instance) (%s)' % sel('tcpstated:time_wait_sockets:ratio'), '{{instance}}'],
          ],
          unit='percentunit',
          steps=[['green', null], ['orange', c.timeWaitBucketsRatio], ['red', 0.95]],
          noValue='0%',
          links=links(['TcpstatedTimeWaitBucketsNearLimit']),
        ),
        timeseries(
          'Ephemeral ports used per destination vs available',
          'Local ports held towards each destination in any state, TIME_WAIT '
          + "included, against the namespace's usable ephemeral range "
          + '(net.ipv4.ip_local_port_range minus ip_local_reserved_ports; 28,232 '
          + 'ports by default). One (source, destination address, destination '
          + 'port) tuple can use each local port once, and TIME_WAIT keeps a '
          + 'port for 60 s after close: about 470 new connections per second to '
          + 'one destination exhaust the default range.',
          [
            [sel('tcpstated_ephemeral_ports_used'), '{{instance}} {{saddr}} → {{daddr}}:{{dport}}'],
            ['%s and ignoring (saddr, daddr, dport) %s' % [sel('tcpstated_ephemeral_ports_available'), sel('tcpstated_ephemeral_ports_used')], '{{instance}} netns {{netns}} ports available'],
          ],
          unit='short',
        ),
        timeseries(
          'Ephemeral port usage per destination',
          "Each destination's share of the ephemeral range (recording rule "
          + 'tcpstated:ephemeral_ports_used:ratio). Lines at %s %% (warning) and ' % pct(c.portExhaustionWarningRatio)
          + '%s %% (critical). The usual' % pct(c.portExhaustionCriticalRatio) + ' cause is a client that opens a new '
          + 'connection per request instead of reusing one (keep-alive, a pool).',
          [
            [sel('tcpstated:ephemeral_ports_used:ratio'), '{{instance}} {{saddr}} → {{daddr}}:{{dport}}'],
          ],
          unit='percentunit',
          thresholds=[['green', null], ['orange', c.portExhaustionWarningRatio], ['red', c.portExhaustionCriticalRatio]],
        ),
        timeseries(
          'TIME_WAIT sockets vs tcp_max_tw_buckets',
          'TIME_WAIT sockets per namespace against its '
          + 'net.ipv4.tcp_max_tw_buckets. TIME_WAIT belongs to whichever side '
          + "closed first (the active closer); a server that closes its clients' "
          + 'connections collects them too. Namespaces without TIME_WAIT sockets '
          + 'are hidden.',
          [
            ['sum without (state) (%s) > 0' % sel('tcpstated_sockets', 'state="time_wait"'), '{{instance}} netns {{netns}} TIME_WAIT'],
            ['%s and ignoring (state) %s > 0' % [sel('tcpstated_time_wait_limit'), sel('tcpstated_sockets', 'state="time_wait"')], '{{instance}} netns {{netns}} tcp_max_tw_buckets'],
          ],
          unit='short',
        ),
        timeseries(
          'TIME_WAIT overflows',
          'Connections closed without a TIME_WAIT socket because '
          + 'tcp_max_tw_buckets was reached (TcpExt TCPTimeWaitOverflow, kernel '
          + 'log "time wait bucket table overflow"). The connection ends at '
          + 'once: its port is free again, but a lost final ACK can no longer be '
          + 'repeated and a late segment could reach a new connection on the '
          + 'same 4-tuple.',
          [
            ['sum by (instance, netns) (%s)' % rate('tcpstated_time_wait_overflows_total'), '{{instance}} netns {{netns}}'],
          ],
          unit='cps',
        ),
        timeseries(
          'Failed connect() calls',
          'SYN_SENT → CLOSE per second: connect() calls that never reached '
          + 'ESTABLISHED. Causes: no free ephemeral port (EADDRNOTAVAIL, '
          + 'immediately), a RST from a closed port (ECONNREFUSED), SYN retries '
          + 'exhausted (ETIMEDOUT, after net.ipv4.tcp_syn_retries), an ICMP '
          + 'error, or the application giving up (close() during connect).',
          [
            ['sum by (instance) (%s)' % rate('tcpstated_transitions_total', 'from="syn_sent", to="close"'), '{{instance}}'],
          ],
          unit='cps',
          w=24,
        ),
      ]),
      row('tcpstated health', [
        stat(
          'Scrape status',
          'Whether Prometheus can scrape tcpstated (`up`). While it is down, '
          + 'nothing on this dashboard updates and the tcpstated alerts cannot '
          + 'fire (TcpstatedDown).',
          [
            [sel('up'), '{{instance}}'],
          ],
          links=links(['TcpstatedDown']),
          unit='none',
          steps=[['red', null], ['green', 1]],
          noValue='no target',
          mappings=[{ type: 'value', options: { '0': { text: 'down', color: 'red', index: 0 }, '1': { text: 'up', color: 'green', index: 1 } } }],
        ),
        table(
          'Version and attach mode',
          'Daemon version and how its BPF programs attached: `tp_btf` (typed '
          + 'tracepoint, socket cookies as identities) or `tracepoint` (classic '
          + 'tracepoint fallback for kernels without it).',
          [
            [sel('tcpstated_build_info'), ''],
          ],
          unit='none',
          rename={},
          hide=['Value', 'job'],
          w=6,
          h=5,
        ),
        table(
          'Kernel and attach mode',
          "The running kernel (`uname -r`) and the attach mode tcpstated chose "
          + 'for it. What tcpstated can see depends on both: the README\'s '
          + '"Kernels" table lists the kernels it was verified on and what '
          + 'differs between them (e.g. 5.10 has no tp_btf for these '
          + 'tracepoints and no network-namespace cookie).',
          [
            [sel('tcpstated_kernel_info'), ''],
          ],
          unit='none',
          rename={},
          hide=['Value', 'job'],
          w=6,
          h=5,
        ),
        stat(
          'Mirror table usage',
          "Sockets tracked by the daemon's mirror against "
          + 'tracking.max_tracked_sockets. At the limit sockets are evicted and '
          + 'per-socket detail (owners, CLOSE_WAIT ages) is lost for them.',
          [
            ['%s / %s' % [sel('tcpstated_tracked_sockets'), sel('tcpstated_tracked_sockets_limit')], '{{instance}}'],
          ],
          unit='percentunit',
          steps=[['green', null], ['orange', c.mirrorTableWarningRatio], ['red', 0.95]],
          links=links(['TcpstatedMirrorEvictions']),
        ),
        stat(
          'Events lost and missed',
          'Kernel events per second tcpstated never received. Lost: dropped '
          + 'because the BPF ring buffer was full; transition counters stay '
          + 'exact (counted in the kernel). Sustained loss: raise '
          + "bpf.ring_buffer_bytes. Missed: the kernel skipped tcpstated's BPF "
          + 'program because another BPF tracing program was running on that CPU '
          + '(classic tracepoint mode shares that guard with every kprobe and '
          + 'tracepoint program); transition counters miss these too. Use '
          + 'bpf.attach auto or tp_btf, or stop the other tool. Either way the '
          + 'per-socket mirror is repaired at the next reconcile.',
          [
            ['sum by (instance) (%s)' % rate('tcpstated_events_lost_total'), '{{instance}} lost'],
            ['sum by (instance) (%s)' % rate('tcpstated_events_missed_total'), '{{instance}} missed'],
          ],
          unit='cps',
          steps=[['green', null], ['red', 0.001]],
          links=links(['TcpstatedEventsLost']),
        ),
        timeseries(
          'Kernel events received',
          'Events per second from each kernel tracepoint, applied to the '
          + 'mirror: inet_sock_set_state (every state change), tcp_receive_reset '
          + '/ tcp_send_reset (RSTs, which tell a reset from a TIME_WAIT '
          + 'hand-off), tcp_retransmit_synack (SYN-ACK retries).',
          [
            ['sum by (instance, source) (%s)' % rate('tcpstated_events_total'), '{{instance}} {{source}}'],
          ],
          unit='cps',
        ),
        timeseries(
          'Kernel events lost and missed',
          'Per tracepoint, events per second tcpstated never received. Lost: '
          + 'the kernel could not put them in the ring buffer (full); bursts '
          + 'happen under connection storms. Missed: the kernel skipped '
          + "tcpstated's BPF program (its recursion guard) because another BPF "
          + 'tracing program was running on that CPU, e.g. bpftrace or a '
          + 'monitoring agent, in classic tracepoint mode; these state changes '
          + 'are missing from the transition counters too. Sustained loss or '
          + 'misses trigger TcpstatedEventsLost.',
          [
            ['sum by (instance, source) (%s)' % rate('tcpstated_events_lost_total'), '{{instance}} {{source}} lost'],
            ['sum by (instance, source) (%s)' % rate('tcpstated_events_missed_total'), '{{instance}} {{source}} missed'],
          ],
          unit='cps',
        ),
        timeseries(
          'Invalid transitions',
          "State changes outside Linux's legal transition table, per pair, in "
          + 'each interval. They should never happen: tcpstated followed the '
          + 'kernel (counts stay right) but its model of the kernel is wrong for '
          + "that pair. These counters only exist once non-zero, so a pair's "
          + 'first occurrence is shown as its whole value.',
          links=links(['TcpstatedInvalidTransitions']),
          pairs=[
            ['clamp_min(%s - (%s offset $__rate_interval or %s * 0), 0)' % [sel('tcpstated_invalid_transitions_total'), sel('tcpstated_invalid_transitions_total'), sel('tcpstated_invalid_transitions_total')], '{{instance}} {{from}} → {{to}}'],
          ],
          unit='short',
        ),
        timeseries(
          'Decode errors, mirror resyncs and sock_diag errors',
          'Decode errors: ring records that could not be decoded (a daemon/BPF '
          + 'mismatch). Mirror resyncs: events whose old state disagreed with '
          + 'the mirror (a lost event, or a socket older than the daemon); the '
          + "mirror took the kernel's word. sock_diag errors: failed socket "
          + 'dumps or namespace reads.',
          links=links(['TcpstatedSockDiagErrors']),
          pairs=[
            ['sum by (instance) (%s)' % rate('tcpstated_event_decode_errors_total'), '{{instance}} decode errors'],
            ['sum by (instance) (%s)' % rate('tcpstated_mirror_resyncs_total'), '{{instance}} mirror resyncs'],
            ['sum by (instance) (%s)' % rate('tcpstated_sock_diag_errors_total'), '{{instance}} sock_diag errors'],
          ],
          unit='cps',
        ),
        timeseries(
          'Reconcile corrections by state',
          "Mirror entries the periodic comparison with the kernel's socket "
          + 'dump had to correct (added, changed or removed), by state. A steady '
          + 'trickle in fin_wait2/time_wait is expected (the kernel turns '
          + 'orphaned FIN_WAIT2 into TIME_WAIT silently); large numbers mean '
          + 'lost events or a mirror bug.',
          [
            ['sum by (instance, state) (%s)' % rate('tcpstated_reconcile_corrections_total'), '{{instance}} {{state}}'],
          ],
          unit='cps',
        ),
        timeseries(
          'Tracked sockets vs limit',
          "Sockets in the daemon's mirror (every TCP socket it follows, "
          + 'TIME_WAIT included) against tracking.max_tracked_sockets. Beyond '
          + 'the limit sockets are evicted (next panel).',
          [
            [sel('tcpstated_tracked_sockets'), '{{instance}} tracked'],
            [sel('tcpstated_tracked_sockets_limit'), '{{instance}} limit'],
          ],
          unit='short',
        ),
        timeseries(
          'Evictions',
          "Sockets evicted per second because the mirror's table was full; "
          + 'raise tracking.max_tracked_sockets if this is not zero.',
          [
            ['sum by (instance) (%s)' % rate('tcpstated_evictions_total'), '{{instance}}'],
          ],
          unit='cps',
        ),
        timeseries(
          'Metrics endpoint: refused connections and logins',
          'Connections the HTTP endpoint closed unanswered, by reason: '
          + '`overload` (256 open connections; the oldest unfinished one made '
          + 'room), `per_source` (16 from one address), `timeout` (no complete '
          + 'request within 5 s of accept, or the response not read in 10 s), '
          + '`queue_full` (every worker busy). And requests basic auth refused: '
          + '`invalid` (wrong or missing password, 401), `rate_limited` (the '
          + "address used up its failed-login budget, 429), `busy` (another "
          + 'password check was running, 429). Scrapes keep being answered under '
          + 'these caps; a steady rate means something other than Prometheus is '
          + 'hammering the port.',
          [
            ['sum by (instance, reason) (%s)' % rate('tcpstated_http_connections_dropped_total'), '{{instance}} dropped: {{reason}}'],
            ['sum by (instance, reason) (%s)' % rate('tcpstated_http_auth_refused_total'), '{{instance}} login refused: {{reason}}'],
          ],
          unit='cps',
          links=links(['TcpstatedEndpointAbuse']),
        ),
        timeseries(
          'Reconcile dump duration',
          'How long the last sock_diag dump of every namespace took. It grows '
          + 'with sockets and namespaces; it should stay well below '
          + 'tracking.reconcile_interval (30 s).',
          [
            [sel('tcpstated_reconcile_dump_seconds'), '{{instance}}'],
          ],
          unit='s',
        ),
      ]),
    ],

    local queryVar(name, query, allValue='.+', hide=0) = {
      name: name,
      label: if name == 'cluster' then 'Cluster' else std.asciiUpper(name[0]) + name[1:],
      type: 'query',
      datasource: p.datasource,
      query: query,
      definition: query,
      multi: true,
      includeAll: true,
      allValue: allValue,
      current: { selected: true, text: ['All'], value: ['$__all'] },
      refresh: 2,
      regex: '',
      sort: 1,
      hide: hide,
      options: [],
    },
    local info(extra) = lib.sel(c, 'tcpstated_build_info', extra),

    'tcpstated.json': {
      uid: c.dashboardUID,
      title: c.dashboardTitle,
      description: 'TCP connection states per host and network namespace '
                   + 'from tcpstated: CLOSE_WAIT leaks, SYN floods, '
                   + 'TIME_WAIT and ephemeral port exhaustion, and the '
                   + "daemon's own health. Needs the recording rules.",
      tags: c.dashboardTags,
      // Provisioned from the mixin: changes belong in the mixin.
      editable: false,
      graphTooltip: 1,
      schemaVersion: 37,
      version: 1,
      refresh: c.dashboardRefresh,
      time: { from: 'now-6h', to: 'now' },
      timepicker: {},
      timezone: c.dashboardTimezone,
      fiscalYearStartMonth: 0,
      liveNow: false,
      links: if runbook('x') == null then [] else [{
        title: 'Runbooks',
        type: 'link',
        icon: 'doc',
        url: std.split(runbook('x'), '#')[0],
        targetBlank: true,
        tooltip: 'What each tcpstated alert means and what to do',
      }],
      annotations: { list: [{
        builtIn: 1,
        datasource: { type: 'grafana', uid: '-- Grafana --' },
        enable: true,
        hide: true,
        iconColor: 'rgba(0, 211, 255, 1)',
        name: 'Annotations & Alerts',
        type: 'dashboard',
      }] },
      templating: { list: [
        {
          name: 'datasource',
          label: 'Data source',
          type: 'datasource',
          query: 'prometheus',
          current: {},
          hide: 0,
          refresh: 1,
          regex: '',
          options: [],
        },
        // `.*` for All: series without a cluster label match too.
        queryVar('cluster',
                 'label_values(%s, %s)' % [info(''), c.clusterLabel],
                 allValue='.*',
                 hide=if c.showMultiCluster then 0 else 2),
        queryVar('job', 'label_values(%s, job)' % info('%s=~"$cluster"' % c.clusterLabel)),
        queryVar('instance', 'label_values(%s, instance)'
                             % info('%s=~"$cluster", job=~"$job"' % c.clusterLabel)),
        {
          name: 'state',
          label: 'State (heatmap)',
          type: 'query',
          datasource: p.datasource,
          query: 'label_values(%s, state)' % lib.sel(c, 'tcpstated_state_duration_seconds_count'),
          definition: self.query,
          multi: false,
          includeAll: false,
          current: { selected: true, text: 'established', value: 'established' },
          refresh: 2,
          regex: '',
          sort: 1,
          hide: 0,
          options: [],
        },
      ] },
      // Rows from other files of the mixin (dashboardExtraRows, functions
      // of these helpers) go before the daemon's health row.
      local helpers = p { sel: sel, rate: rate, links: links },
      local extra = [f(helpers) for f in $.dashboardExtraRows],
      panels: p.layout(rows[:std.length(rows) - 1] + extra
                       + rows[std.length(rows) - 1:]),
    },
  },
}
