// Small helpers shared by the rules, the alerts and the dashboard.
{
  // metric{matchers}: the configured selector plus `extra`, or the bare
  // metric name when both are empty.
  sel(config, metric, extra=''):: (
    local matchers = std.filter(function(m) m != '',
                                [config.tcpstatedSelector, extra]);
    if matchers == [] then metric
    else '%s{%s}' % [metric, std.join(', ', matchers)]
  ),

  // The labels that identify one scraped daemon, for `on (...)` joins.
  target(config):: '%s, job, instance' % config.clusterLabel,

  // The runbook's URL, or null when runbookURLPattern is empty.
  runbook(config, alert)::
    if config.runbookURLPattern == '' then null
    else config.runbookURLPattern % std.asciiLower(alert),

  // An alert's annotation that leads to its runbook: `runbook_url`, or
  // without a URL the section of the file every installation has.
  runbookAnnotation(config, alert)::
    local url = self.runbook(config, alert);
    if url != null then { runbook_url: url }
    else {
      runbook: 'docs/runbooks.md#%s (installed as %s)' % [
        std.asciiLower(alert),
        '/usr/share/doc/tcpstated/runbooks.md',
      ],
    },
}
