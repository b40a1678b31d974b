// Recording rules the dashboard reads (tcpstated:...).
//
// Only gauge aggregations and joins are recorded: counter rates stay in the
// dashboard, where they use Grafana's $__rate_interval. Every rule keeps the
// target labels (cluster, job, instance, and whatever relabelling added):
// aggregations use `without`, joins `ignoring`. The alerts do not depend on
// these rules, so either group can be loaded alone.
local lib = import 'lib.libsonnet';

{
  prometheusRules+:: {
    local c = $._config,
    local s(metric, extra='') = lib.sel(c, metric, extra),
    groups+: [{
      name: 'tcpstated.rules',
      rules: [
        // Sockets per TCP state on a host, all network namespaces summed.
        {
          record: 'tcpstated:sockets:sum_by_state',
          expr: 'sum without (netns) (%s)' % s('tcpstated_sockets'),
        },
        // Sockets per namespace and state with the namespace's name (host,
        // the `ip netns` name, or one derived from a process in it) as label
        // `name`. A namespace not (yet) in tcpstated_netns_info keeps its
        // inode number as its name instead of disappearing from the join.
        {
          record: 'tcpstated:sockets:with_netns_name',
          expr: |||
            %(sockets)s
              * ignoring (state, name) group_left (name)
            %(info)s
            or ignoring (name)
            label_replace(%(sockets)s, "name", "$1", "netns", "(.+)")
          ||| % { sockets: s('tcpstated_sockets'), info: s('tcpstated_netns_info') },
        },
        // CLOSE_WAIT per host: all sockets, the leaked ones, the oldest
        // age. No CLOSE_WAIT socket at all means no series.
        {
          record: 'tcpstated:close_wait_sockets:sum',
          expr: 'sum without (netns, comm, unit, role, port) (%s)' % s('tcpstated_close_wait_sockets'),
        },
        {
          record: 'tcpstated:close_wait_leaked_sockets:sum',
          expr: 'sum without (netns, comm, unit, role, port) (%s)' % s('tcpstated_close_wait_leaked_sockets'),
        },
        {
          record: 'tcpstated:close_wait_oldest_seconds:max',
          expr: 'max without (netns, comm, unit, role, port) (%s)' % s('tcpstated_close_wait_oldest_seconds'),
        },
        // Half-open requests of a listener against its queue limit (the
        // listen() backlog capped by net.core.somaxconn, which also bounds
        // the SYN queue). Listeners with a zero limit are left out.
        {
          record: 'tcpstated:listen_half_open:ratio',
          expr: |||
            %s
              / (%s > 0)
          ||| % [s('tcpstated_listen_syn_recv_sockets'), s('tcpstated_listen_accept_queue_limit')],
        },
        // Ephemeral ports held towards one destination against the
        // namespace's usable range. The folded "other" series has no single
        // namespace and so no ratio.
        {
          record: 'tcpstated:ephemeral_ports_used:ratio',
          expr: |||
            %s
              / ignoring (saddr, daddr, dport) group_left ()
            (%s > 0)
          ||| % [s('tcpstated_ephemeral_ports_used'), s('tcpstated_ephemeral_ports_available')],
        },
        // TIME_WAIT sockets of a namespace against its
        // net.ipv4.tcp_max_tw_buckets; a limit of 0 has no ratio.
        {
          record: 'tcpstated:time_wait_sockets:ratio',
          expr: |||
            sum without (state) (%s)
              / (%s > 0)
          ||| % [s('tcpstated_sockets', 'state="time_wait"'), s('tcpstated_time_wait_limit')],
        },
      ],
    }],
  },
}
