"""Grafana dashboards as ConfigMaps the Grafana sidecar loads: GPU (vendored upstream), capacity and cost (ours).

Importing a dashboard by its grafana.com id downloads it when Grafana starts, which the monitoring
namespace's default-deny blocks: every dashboard ships here as JSON. Queries use only metrics the
pinned exporters export (components/alerts.py lists them) and kube-state-metrics' node labels, which
the stack allow-lists (NODE_LABELS): `ml-platform/pool` becomes `label_ml_platform_pool`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi_kubernetes as k8s

from catalog.scheduling import POOL_LABEL
from components.namespace import Scope

DASHBOARDS = Path(__file__).parent / "dashboards"
# The node labels kube-state-metrics copies into kube_node_labels (chart key metricLabelsAllowlist).
NODE_LABELS = (POOL_LABEL, "karpenter.sh/nodepool", "karpenter.sh/capacity-type", "eks.amazonaws.com/capacityType",
               "node.kubernetes.io/instance-type")
SIDECAR_LABEL = {"grafana_dashboard": "1"}  # kube-prometheus-stack 88.5.3 grafana.sidecar.dashboards label/value


def ksm_label(node_label: str) -> str:
    """kube-state-metrics' name for a node label in kube_node_labels."""
    return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", node_label)


POOL = ksm_label(POOL_LABEL)
BY_POOL = f"* on (node) group_left ({POOL}) kube_node_labels"


@dataclass(frozen=True)
class Panel:
    title: str
    expr: str
    unit: str = "short"
    legend: str = ""


def capacity_panels() -> list[Panel]:
    def share(resource: str) -> str:
        return (f'sum by ({POOL}) (kube_pod_container_resource_requests{{resource="{resource}"}} {BY_POOL}) / '
                f'sum by ({POOL}) (kube_node_status_allocatable{{resource="{resource}"}} {BY_POOL})')
    return [
        Panel("Nodes by pool", f"count by ({POOL}) (kube_node_labels)", legend=f"{{{{{POOL}}}}}"),
        Panel("CPU requested / allocatable by pool", share("cpu"), "percentunit", f"{{{{{POOL}}}}}"),
        Panel("Memory requested / allocatable by pool", share("memory"), "percentunit", f"{{{{{POOL}}}}}"),
        Panel("GPUs requested / allocatable by pool", share("nvidia_com_gpu"), "percentunit", f"{{{{{POOL}}}}}"),
        Panel("Karpenter NodePool usage / limit", "karpenter_nodepools_usage / karpenter_nodepools_limit",
              "percentunit", "{{nodepool}} {{resource_type}}"),
        Panel("Pending pods", 'sum by (namespace) (kube_pod_status_phase{phase="Pending"})', legend="{{namespace}}"),
    ]


def cost_panels(idle_percent: int) -> list[Panel]:
    # Hours over the dashboard's range: samples every 5 minutes, 12 to the hour.
    def hours(expr: str) -> str:
        return f"sum_over_time(({expr})[$__range:5m]) / 12"
    spot = (f'count by ({POOL}) (kube_node_labels{{{ksm_label("karpenter.sh/capacity-type")}="spot"}} or '
            f'kube_node_labels{{{ksm_label("eks.amazonaws.com/capacityType")}="SPOT"}}) / count by ({POOL}) '
            f"(kube_node_labels)")
    return [
        Panel("GPU hours by pool", hours(
            f'sum by ({POOL}) (kube_node_status_allocatable{{resource="nvidia_com_gpu"}} {BY_POOL})'),
            legend=f"{{{{{POOL}}}}}"),
        Panel("GPU hours requested by namespace", hours(
            'sum by (namespace) (kube_pod_container_resource_requests{resource="nvidia_com_gpu"})'),
            legend="{{namespace}}"),
        Panel(f"Idle GPU hours (utilisation below {idle_percent} %)",
              hours(f"count by (Hostname) (DCGM_FI_DEV_GPU_UTIL < {idle_percent})"), legend="{{Hostname}}"),
        Panel("Spot share of nodes by pool", spot, "percentunit", f"{{{{{POOL}}}}}"),
    ]


def dashboard(uid: str, title: str, panels: Sequence[Panel]) -> dict:
    """A Grafana dashboard of time series, one per panel, on the provisioned Prometheus datasource."""
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    return {
        "uid": uid, "title": title, "tags": ["ml-platform"], "schemaVersion": 39, "editable": False,
        "time": {"from": "now-7d", "to": "now"}, "refresh": "5m",
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "label": "Data source"}]},
        "panels": [{
            "id": i + 1, "type": "timeseries", "title": p.title, "datasource": datasource,
            "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
            "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
            "targets": [{"refId": "A", "datasource": datasource, "expr": p.expr, "legendFormat": p.legend}],
        } for i, p in enumerate(panels)],
    }


def dashboards(idle_percent: int, gpus: bool) -> dict[str, str]:
    """ConfigMap key -> dashboard JSON: capacity and cost, and the upstream DCGM dashboard with GPU pools."""
    found = {"ml-platform-capacity.json": dashboard("mlp-capacity", "ML platform: capacity by pool",
                                                    capacity_panels()),
             "ml-platform-cost.json": dashboard("mlp-cost", "ML platform: GPU hours, idle GPUs, spot share",
                                                cost_panels(idle_percent))}
    text = {name: json.dumps(board, sort_keys=True) for name, board in found.items()}
    if gpus:
        text["dcgm-exporter.json"] = (DASHBOARDS / "dcgm-exporter.json").read_text()
    return text


def queries(boards: dict[str, str]) -> list[str]:
    """Every PromQL expression the dashboards run (tests check each with promtool)."""
    found = []
    for text in boards.values():
        for panel in json.loads(text).get("panels", []):
            found += [t["expr"] for t in panel.get("targets", []) if t.get("expr")]
    return found


def dashboard_config_map(resource_name: str, scope: Scope, name: str, key: str, text: str) -> k8s.core.v1.ConfigMap:
    """A dashboard where Grafana's sidecar finds it: a ConfigMap labelled for it, in any namespace."""
    return k8s.core.v1.ConfigMap(resource_name, metadata={"name": name, "namespace": scope.namespace,
                                                          "labels": SIDECAR_LABEL},
                                 data={key: text}, opts=scope.opts)
