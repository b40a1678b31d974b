// Renders the mixin's rule files into the files the repository ships, keyed
// by their path from the repository root (jsonnet -S -m <root>). The
// dashboard is dashboard.jsonnet, rendered by jsonnet's own JSON output
// (std.manifestJsonEx takes seconds on a dashboard this size). Run
// dashboards/mixin/generate after any change here; CI checks that the
// shipped files are what this produces.
local mixin = (import 'mixin.libsonnet');
local header(what) =
  '# %s of tcpstated, generated from dashboards/mixin (run\n' % what +
  '# dashboards/mixin/generate); edit the mixin, not this file.\n';
local yaml(v) = std.manifestYamlDoc(v, true, false) + '\n';

{
  'dashboards/tcpstated.rules.yaml':
    header('Recording rules') + yaml(mixin.prometheusRules),
  'dashboards/tcpstated.alerts.yaml':
    header('Alerts') + yaml(mixin.prometheusAlerts),
  // The same rules for the Prometheus Operator.
  'packaging/kubernetes/prometheusrule.yaml':
    header('PrometheusRule (Prometheus Operator)') +
    "# Label it for your Prometheus's ruleSelector (kube-prometheus-stack\n" +
    '# selects release: <its release name> by default).\n' +
    yaml({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: {
        name: 'tcpstated',
        namespace: 'monitoring',
        labels: { 'app.kubernetes.io/name': 'tcpstated' },
      },
      spec: {
        groups: mixin.prometheusRules.groups + mixin.prometheusAlerts.groups,
      },
    }),
}
