// Grafana panel builders for the tcpstated dashboard (schemaVersion 37,
// Grafana 9+). Each returns a panel with a `_size` [w, h] that the
// dashboard's layout turns into a gridPos and then removes.
{
  datasource:: { type: 'prometheus', uid: '${datasource}' },

  // [[expr, legend], ...] -> targets with refIds A, B, ...
  targets(pairs, instant=false, table=false, format=null):: [
    {
      datasource: $.datasource,
      expr: pairs[i][0],
      legendFormat: if pairs[i][1] == '' then '__auto' else pairs[i][1],
      refId: std.char(std.codepoint('A') + i),
      range: !instant,
      instant: instant,
    }
    + (if table then { format: 'table' } else {})
    + (if format != null then { format: format } else {})
    for i in std.range(0, std.length(pairs) - 1)
  ],

  // [[color, value], ...] -> absolute threshold steps.
  steps(pairs):: {
    mode: 'absolute',
    steps: [{ color: p[0], value: p[1] } for p in pairs],
  },

  // Links from a panel to the runbooks of the alerts it shows (none
  // without a runbook URL).
  runbookLinks(runbook, alerts):: [
    { title: 'Runbook: ' + a, url: runbook(a), targetBlank: true }
    for a in alerts
    if runbook(a) != null
  ],

  timeseries(title,
             description,
             pairs,
             unit,
             w=12,
             h=8,
             min=0,
             max=null,
             thresholds=null,
             stack=false,
             legendRight=false,
             links=[]):: {
    type: 'timeseries',
    title: title,
    description: description,
    datasource: $.datasource,
    fieldConfig: {
      defaults: {
                  unit: unit,
                  custom: {
                    drawStyle: 'line',
                    lineWidth: 1,
                    fillOpacity: if stack then 40 else 10,
                    showPoints: 'never',
                    spanNulls: false,
                    stacking: { mode: if stack then 'normal' else 'none', group: 'A' },
                    thresholdsStyle: { mode: if thresholds != null then 'line' else 'off' },
                  },
                  color: { mode: 'palette-classic' },
                  thresholds: $.steps(if thresholds != null then thresholds else [['green', null]]),
                } + (if min != null then { min: min } else {})
                + (if max != null then { max: max } else {}),
      overrides: [],
    },
    options: {
      legend: {
        showLegend: true,
        displayMode: 'table',
        placement: if legendRight then 'right' else 'bottom',
        calcs: ['lastNotNull', 'max'],
      },
      tooltip: { mode: 'multi', sort: 'desc' },
    },
    links: links,
    targets: $.targets(pairs),
    _size:: [w, h],
  },

  stat(title,
       description,
       pairs,
       unit,
       steps,
       w=6,
       h=5,
       noValue='0',
       mappings=[],
       links=[]):: {
    type: 'stat',
    title: title,
    description: description,
    datasource: $.datasource,
    fieldConfig: {
      defaults: {
        unit: unit,
        thresholds: $.steps(steps),
        color: { mode: 'thresholds' },
        noValue: noValue,
        mappings: mappings,
      },
      overrides: [],
    },
    options: {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      colorMode: 'value',
      graphMode: 'area',
      justifyMode: 'auto',
      orientation: 'auto',
      textMode: 'auto',
    },
    links: links,
    targets: $.targets(pairs),
    _size:: [w, h],
  },

  // An instant table: one row per series, label columns, values renamed.
  table(title,
        description,
        pairs,
        unit,
        rename,
        hide=[],
        overrides=[],
        sortBy=null,
        w=12,
        h=8):: {
    type: 'table',
    title: title,
    description: description,
    datasource: $.datasource,
    fieldConfig: {
      defaults: { unit: unit, custom: { align: 'auto' } },
      overrides: overrides,
    },
    options: { showHeader: true, footer: { show: false } }
             + (if sortBy != null then { sortBy: [{ displayName: sortBy, desc: true }] } else {}),
    transformations:
      (if std.length(pairs) > 1 then [{ id: 'merge', options: {} }] else [])
      + [{
        id: 'organize',
        options: {
          excludeByName: { Time: true, __name__: true } + { [n]: true for n in hide },
          renameByName: rename,
        },
      }],
    targets: $.targets(pairs, instant=true, table=true),
    _size:: [w, h],
  },

  stateTimeline(title, description, pairs, mappings, w=12, h=8):: {
    type: 'state-timeline',
    title: title,
    description: description,
    datasource: $.datasource,
    fieldConfig: {
      defaults: {
        unit: 'none',
        mappings: mappings,
        color: { mode: 'thresholds' },
        thresholds: $.steps([['green', null]]),
        custom: { fillOpacity: 80, lineWidth: 0 },
      },
      overrides: [],
    },
    options: {
      showValue: 'never',
      mergeValues: true,
      rowHeight: 0.9,
      legend: { showLegend: false },
      tooltip: { mode: 'single' },
    },
    targets: $.targets(pairs),
    _size:: [w, h],
  },

  // A histogram's buckets as a heatmap: the query returns one series per
  // `le` bucket (format heatmap), Grafana does not re-bucket them.
  heatmap(title, description, pairs, unit, w=12, h=8):: {
    type: 'heatmap',
    title: title,
    description: description,
    datasource: $.datasource,
    fieldConfig: { defaults: { unit: unit }, overrides: [] },
    options: {
      calculate: false,
      cellGap: 1,
      color: { mode: 'scheme', scheme: 'Oranges', steps: 64, exponent: 0.5, fill: 'dark-orange', reverse: false },
      yAxis: { axisPlacement: 'left', unit: unit },
      rowsFrame: { layout: 'le' },
      filterValues: { le: 1e-9 },
      showValue: 'never',
      tooltip: { show: true, yHistogram: true },
      legend: { show: true },
      exemplars: { color: 'rgba(255,0,255,0.7)' },
    },
    targets: $.targets(pairs, format='heatmap'),
    _size:: [w, h],
  },

  unitOverride(field, unit):: {
    matcher: { id: 'byName', options: field },
    properties: [{ id: 'unit', value: unit }],
  },

  // [[value, text, color], ...] -> a value mapping.
  valueMap(entries):: [{
    type: 'value',
    options: {
      [std.toString(entries[i][0])]: { text: entries[i][1], color: entries[i][2], index: i }
      for i in std.range(0, std.length(entries) - 1)
    },
  }],

  row(title, panels):: { title: title, panels: panels },

  // Rows of panels -> Grafana's flat panel list: a row header, then its
  // panels left to right, wrapping at 24 columns; ids in order.
  layout(rows)::
    local place(state, p) =
      local w = p._size[0], h = p._size[1];
      local wrap = state.x + w > 24;
      local x = if wrap then 0 else state.x;
      local y = if wrap then state.y + state.rowH else state.y;
      state {
        x: x + w,
        y: y,
        rowH: if wrap then h else std.max(state.rowH, h),
        id: state.id + 1,
        panels: state.panels + [p { id: state.id, gridPos: { h: h, w: w, x: x, y: y } }],
      };
    local addRow(state, r) =
      local header = {
        type: 'row',
        title: r.title,
        collapsed: false,
        id: state.id,
        panels: [],
        gridPos: { h: 1, w: 24, x: 0, y: state.y },
      };
      local after = std.foldl(place, r.panels, state {
        x: 0,
        y: state.y + 1,
        rowH: 0,
        id: state.id + 1,
        panels: state.panels + [header],
      });
      after { y: after.y + after.rowH, x: 0, rowH: 0 };
    std.foldl(addRow, rows, { x: 0, y: 0, rowH: 0, id: 1, panels: [] }).panels,
}
