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

  runbook(config, alert):: config.runbookURLPattern % std.asciiLower(alert),
}
