"""Where the platform's components export Prometheus metrics: the scrape contract, said once.

The observability component turns each entry into a ServiceMonitor; the component
that runs the exporter admits the scrape from `monitoring` on that port (its
namespace is default-deny). Service labels and port names read from each chart:
- karpenter v1.14.1 charts/karpenter/templates/service.yaml: port `http-metrics` (8080)
- velero chart 12.1.0 templates/service.yaml (metrics.enabled): port `http-monitoring` (8085)
- external-secrets helm-chart-2.9.0 templates/service.yaml (metrics.service.enabled): port `metrics` (8080)
- dcgm-exporter 4.5.3-4.8.2 deployment/templates/service.yaml: port `metrics` (9400)
- fluent-bit chart 0.58.1 templates/service.yaml: port `http` (2020), path /api/v2/metrics/prometheus
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog import namespaces


@dataclass(frozen=True)
class Exporter:
    name: str
    namespace: str
    app: str  # the Service's app.kubernetes.io/name
    port_name: str
    port: int
    path: str = "/metrics"


KARPENTER = Exporter("karpenter", "kube-system", "karpenter", "http-metrics", 8080)
VELERO = Exporter("velero", namespaces.VELERO, "velero", "http-monitoring", 8085)
EXTERNAL_SECRETS = Exporter("external-secrets", namespaces.EXTERNAL_SECRETS, "external-secrets", "metrics", 8080)
DCGM = Exporter("dcgm-exporter", namespaces.GPU, "dcgm-exporter", "metrics", 9400)
FLUENT_BIT = Exporter("fluent-bit", namespaces.MONITORING, "fluent-bit", "http", 2020, "/api/v2/metrics/prometheus")

# Where the monitoring stack listens for the platform's own callers.
PROMETHEUS_PORT = 9090  # kube-prometheus-stack-prometheus: KEDA's Prometheus scaler queries it
PUSHGATEWAY_PORT = 9091  # prometheus-pushgateway: evaluation jobs push their scores
