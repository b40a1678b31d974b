// Validates Kubernetes manifests against the API schemas of
// kubernetes-models (core, apps, ...) and @kubernetes-models/prometheus-operator
// (the monitoring.coreos.com CRDs), without a cluster.
//
//   node validate.mjs FILE.yaml...
//
// Every document must be of a kind listed in KINDS and pass its schema:
// required fields, types, enums and formats. The schemas do not reject
// unknown fields (neither does the API server: it drops them), so
// tests/integration/test_packaging.py checks the fields that matter by name.
// Prints one line per problem and exits 1 on any, 0 when all are valid.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";

const KINDS = {
  "v1/ServiceAccount": ServiceAccount,
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "apps/v1/DaemonSet": DaemonSet,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1/PodMonitor": PodMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
};

let problems = 0;
const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node validate.mjs FILE.yaml...");
  process.exit(2);
}
for (const file of files) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  docs.forEach((doc, i) => {
    const where = `${file}: document ${i + 1}`;
    if (doc.errors.length) {
      console.log(`${where}: YAML: ${doc.errors[0].message}`);
      problems++;
      return;
    }
    const value = doc.toJS();
    if (value === null) return;
    const Model = KINDS[`${value.apiVersion}/${value.kind}`];
    if (!Model) {
      console.log(`${where}: no schema for ${value.apiVersion} ${value.kind}`);
      problems++;
      return;
    }
    const name = `${value.kind} ${value.metadata?.name}`;
    try {
      new Model(value).validate();
    } catch (e) {
      console.log(`${where} (${name}): ${e.message}`);
      problems++;
    }
  });
}
process.exit(problems ? 1 : 0);
