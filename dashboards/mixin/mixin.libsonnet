// The tcpstated monitoring mixin: recording rules, alerts and the Grafana
// dashboard, all from one _config (config.libsonnet).
(import 'config.libsonnet') +
(import 'rules.libsonnet') +
(import 'alerts.libsonnet') +
(import 'dashboard.libsonnet') +
(import 'outcomes.libsonnet') +
(import 'peer_liveness.libsonnet')
