"""KEDA: scales model servers on their queue depth (Prometheus) and wakes scaled-to-zero ones on a cron window.

The operator, metrics API server and admission webhooks run on the system pool in the restricted
`keda` namespace. The API server calls the metrics API server (6443) and the webhooks (9443); the
operator queries Prometheus in `monitoring` (9090), which admits it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from catalog import footprints, metrics, namespaces
from catalog.charts import KEDA
from catalog.scheduling import on_system_pool
from components.handles import ClusterHandle, PlatformContext
from components.namespace import NamespaceArgs, in_namespace, platform_namespace

NAMESPACE = namespaces.KEDA
METRICS_API_PORT = 6443  # service.portHttpsTarget
WEBHOOK_PORT = 9443  # webhooks.port default in the templates


@dataclass(frozen=True)
class AutoscalingArgs:
    context: PlatformContext
    cluster: ClusterHandle


def helm_values(system_pool: str) -> dict:
    placement = on_system_pool(system_pool)
    return {
        "crds": {"install": True},
        "operator": placement, "metricsServer": placement, "webhooks": placement,
        "resources": {"operator": footprints.KEDA_OPERATOR.resources(),
                      "metricServer": footprints.KEDA_METRICS_SERVER.resources(),
                      "webhooks": footprints.KEDA_WEBHOOKS.resources()},
    }


def to_prometheus() -> list[dict]:
    return [{"to": [in_namespace(namespaces.MONITORING)],
             "ports": [{"protocol": "TCP", "port": metrics.PROMETHEUS_PORT}]}]


class Autoscaling(pulumi.ComponentResource):
    """The KEDA release; ScaledObjects (serving) wait for it: its CRDs and webhook."""

    release: pulumi.Resource

    def __init__(self, name: str, args: AutoscalingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ml-platform:autoscaling:Autoscaling", name, None, opts)
        scope = platform_namespace(
            f"{name}-namespace",
            NamespaceArgs(NAMESPACE, "restricted", api_server_ingress_ports=[METRICS_API_PORT, WEBHOOK_PORT],
                          within=True, egress={"allow-prometheus": to_prometheus()}),
            args.cluster, parent=self)
        self.release = scope.chart(f"{name}-keda", KEDA, helm_values(args.context.system_pool_name))
        self.register_outputs({})
