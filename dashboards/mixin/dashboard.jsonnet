// The dashboard as dashboards/tcpstated.json ships it (jsonnet -o).
(import 'mixin.libsonnet').grafanaDashboards['tcpstated.json']
