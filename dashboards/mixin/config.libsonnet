// Every setting of the tcpstated mixin. Override any of them when
// importing it, e.g.
//   (import 'tcpstated/mixin.libsonnet') + { _config+:: {
//     tcpstatedSelector: 'job="node-tcpstated"',
//     runbookURLPattern: 'https://wiki.example.org/tcpstated#%s',
//   } }
// The files shipped in dashboards/ are generated with these defaults.
{
  _config+:: {
    // Matchers added to every tcpstated_ selector in rules, alerts and
    // dashboard variables. Empty: the metric prefix alone identifies
    // tcpstated, whatever the scrape job is called (a static job,
    // `kubernetes-pods`, a PodMonitor's `monitoring/tcpstated`).
    tcpstatedSelector: '',

    // The label that tells clusters apart (set by external_labels or
    // relabelling). The dashboard gets a `cluster` variable from it and
    // joins keep it; series without it join as one cluster.
    clusterLabel: 'cluster',
    // Hide the cluster variable where there is only one cluster.
    showMultiCluster: true,

    // Absolute URL of each alert's runbook; %s is the alert name in lower
    // case (the section anchors of docs/runbooks.md). Set it to wherever
    // you publish docs/runbooks.md: alerts then carry `runbook_url` and the
    // dashboard links each panel's runbooks. Empty (the default: the
    // project publishes no site, and a link to a placeholder host only
    // sends the on-call to an error page): no link; each alert's `runbook`
    // annotation names its section of the runbooks the package installs
    // (/usr/share/doc/tcpstated/runbooks.md).
    runbookURLPattern: '',

    // Severities, as Alertmanager routes usually name them: critical wakes
    // someone up, warning is for working hours, info is a ticket.
    severities: {
      critical: 'critical',
      warning: 'warning',
      info: 'info',
    },

    // Thresholds. The daemon's own detector settings (tcpstated.yaml,
    // `detectors:`) decide tcpstated_syn_flood_active and
    // tcpstated_port_exhaustion_active and which CLOSE_WAIT sockets are
    // leaked; closeWaitLeakAfterSeconds and the ratios below only label
    // the dashboard, so keep them equal to the daemon's.
    closeWaitLeakAfterSeconds: 60,  // detectors.close_wait_leak_after
    closeWaitLeakWarning: 10,  // leaked sockets of one owner
    closeWaitLeakCritical: 500,  // half of the common 1024 open-files limit
    synFloodHalfOpenRatio: 0.5,  // detectors.syn_flood_half_open_ratio
    synFloodDropsPerSecond: 1,  // ListenDrops that make a flood critical
    listenOverflowsPerSecond: 0,  // accept-queue overflows without a flood
    portExhaustionWarningRatio: 0.8,  // detectors.port_exhaustion_ratio
    portExhaustionCriticalRatio: 0.95,
    timeWaitBucketsRatio: 0.8,  // detectors.time_wait_buckets_ratio
    mirrorTableWarningRatio: 0.8,  // dashboard colours only
    // How long a target that stopped answering is still known to be a
    // tcpstated (by its last tcpstated_build_info) for TcpstatedDown.
    downLookback: '1d',

    // Grafana.
    dashboardUID: 'tcpstated-overview',
    dashboardTitle: 'tcpstated / TCP connection states',
    dashboardTags: ['tcpstated', 'tcp', 'network'],
    dashboardRefresh: '1m',
    dashboardTimezone: '',
  },
}
