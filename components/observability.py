"""Observability: Prometheus, Alertmanager and Grafana (kube-prometheus-stack), scrapes, alerts, logs to CloudWatch.

- CRDs come from the prometheus-operator-crds chart (its CRDs are templates, so Helm upgrades them;
  kube-prometheus-stack's crds/ directory is installed once and never upgraded), so ServiceMonitors
  need not wait for Prometheus itself.
- The operator selects ServiceMonitors, PodMonitors and PrometheusRules from every namespace
  (`*SelectorNilUsesHelmValues: false`).
- Alertmanager's whole configuration is one AlertmanagerConfig (`alertmanagerConfiguration`), whose
  receivers read their URLs and keys from a Secret ESO syncs: nothing a person provides is in values.
- Grafana's admin password is generated and kept in Secrets Manager (components/secrets.py).
- Container logs: Fluent Bit to CloudWatch Logs with EKS Pod Identity (Fluent Bit reads its agent's
  credentials since v4.0.0). Not the amazon-cloudwatch-observability addon: it also ships Container
  Insights metrics, billed on top of what Prometheus already has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from catalog import footprints, metrics, namespaces
from catalog.charts import FLUENT_BIT, KUBE_PROMETHEUS_STACK, PROMETHEUS_OPERATOR_CRDS
from catalog.metrics import FLUENT_BIT as FLUENT_BIT_METRICS
from catalog.metrics import Exporter
from catalog.scheduling import on_system_pool
from components import alerts, grafana
from components.handles import ClusterHandle, PlatformContext
from components.iam import policy_document
from components.identity import PodIdentityArgs, pod_identity_role
from components.namespace import NamespaceArgs, Scope, platform_namespace
from components.secrets import SecretsHandle, generated_credential, provided_secrets

NAMESPACE = namespaces.MONITORING
API = "monitoring.coreos.com/v1"
ALERTMANAGER_CONFIG = "platform"
PROMETHEUS_URL = f"http://kube-prometheus-stack-prometheus.{NAMESPACE}.svc:{metrics.PROMETHEUS_PORT}"
OPERATOR_WEBHOOK_PORT = 10250  # prometheusOperator.tls.internalPort: the API server calls its admission webhook
# What Prometheus reaches outside its namespace: node exporters (host network) and kubelets on the nodes,
# CoreDNS in kube-system, the exporters the platform runs.
NODE_PORTS = (9100, 10250)
COREDNS_METRICS_PORT = 9153
FLUENT_BIT_ACCOUNT = "fluent-bit"


@dataclass(frozen=True)
class PrometheusSpec:
    replicas: int
    retention: str
    retention_size: str
    storage_gib: int


@dataclass(frozen=True)
class ObservabilityArgs:
    context: PlatformContext
    cluster: ClusterHandle
    secrets: SecretsHandle
    prometheus: PrometheusSpec
    alertmanager_replicas: int
    receivers: Sequence[alerts.ReceiverSpec]
    thresholds: alerts.Thresholds
    backup_schedules: Sequence[alerts.BackupSchedule]
    runbooks: str  # base URL of docs/runbooks/
    exporters: Sequence[Exporter]  # the platform's own exporters to scrape (catalog/metrics.py)
    gpus: bool
    node_cidr: str  # where node IPs live (the VPC)
    log_retention_days: int
    protect: bool
    storage_class: str = "gp3"
    # Namespace -> ports it may call in `monitoring`: KEDA queries Prometheus, evaluation jobs push scores.
    ingress_from: Mapping[str, Sequence[int]] = field(default_factory=dict)


def _placed(system_pool: str, pod: footprints.Pod) -> dict:
    return {**on_system_pool(system_pool), "resources": pod.resources()}


def _volume(storage_class: str, gib: int) -> dict:
    return {"volumeClaimTemplate": {"spec": {"storageClassName": storage_class, "accessModes": ["ReadWriteOnce"],
                                             "resources": {"requests": {"storage": f"{gib}Gi"}}}}}


def stack_values(args: ObservabilityArgs) -> dict:
    """kube-prometheus-stack: everything on the system pool, selecting from every namespace, HA in prod."""
    system, p = args.context.system_pool_name, args.prometheus
    selectors = {f"{kind}SelectorNilUsesHelmValues": False
                 for kind in ("rule", "serviceMonitor", "podMonitor", "probe", "scrapeConfig")}
    return {
        "crds": {"enabled": False},
        # EKS runs the control plane: its controller manager, scheduler and etcd have no scrape endpoint,
        # and kube-proxy's metrics listen on 127.0.0.1. Their *Down alerts would fire forever.
        **{component: {"enabled": False} for component in ("kubeControllerManager", "kubeScheduler", "kubeEtcd",
                                                            "kubeProxy")},
        "prometheus": {
            "prometheusSpec": {
                "replicas": p.replicas, "retention": p.retention, "retentionSize": p.retention_size,
                "storageSpec": _volume(args.storage_class, p.storage_gib), **selectors,
                **_placed(system, footprints.PROMETHEUS)},
            "podDisruptionBudget": {"enabled": p.replicas > 1, "minAvailable": 1},
        },
        "alertmanager": {
            "alertmanagerSpec": {
                "replicas": args.alertmanager_replicas,
                "alertmanagerConfiguration": {"name": ALERTMANAGER_CONFIG},
                # Silences and notification state survive a restart.
                "storage": _volume(args.storage_class, 2),
                **_placed(system, footprints.ALERTMANAGER)},
            "podDisruptionBudget": {"enabled": args.alertmanager_replicas > 1, "minAvailable": 1},
        },
        "prometheusOperator": {
            **_placed(system, footprints.PROMETHEUS_OPERATOR),
            "admissionWebhooks": {"patch": on_system_pool(system)},
        },
        "grafana": {
            "admin": {"existingSecret": "grafana-admin", "userKey": "admin-user", "passwordKey": "admin-password"},
            "sidecar": {"dashboards": {"enabled": True, "label": next(iter(grafana.SIDECAR_LABEL)),
                                       "labelValue": "1", "searchNamespace": "ALL"},
                        "resources": footprints.GRAFANA_SIDECAR.resources()},
            **_placed(system, footprints.GRAFANA),
        },
        "kube-state-metrics": {
            # The cost and capacity dashboards group by these node labels.
            "metricLabelsAllowlist": [f"nodes=[{','.join(grafana.NODE_LABELS)}]"],
            **_placed(system, footprints.KUBE_STATE_METRICS),
        },
        "prometheus-node-exporter": {"resources": footprints.NODE_EXPORTER.resources()},
    }


def fluent_bit_config(region: str, log_group: str) -> dict:
    """Tail every container's CRI log, add pod metadata, write a stream per container to one log group."""
    return {
        "service": ("[SERVICE]\n    Daemon Off\n    Flush 5\n    Log_Level info\n"
                    "    Parsers_File /fluent-bit/etc/parsers.conf\n"
                    f"    HTTP_Server On\n    HTTP_Listen 0.0.0.0\n    HTTP_Port {FLUENT_BIT_METRICS.port}\n"
                    "    Health_Check On\n"),
        "inputs": ("[INPUT]\n    Name tail\n    Path /var/log/containers/*.log\n    multiline.parser docker, cri\n"
                   "    Tag kube.*\n    DB /var/log/flb_kube.db\n    Mem_Buf_Limit 50MB\n    Skip_Long_Lines On\n"),
        "filters": ("[FILTER]\n    Name kubernetes\n    Match kube.*\n    Merge_Log On\n    Keep_Log Off\n"
                    "    K8S-Logging.Parser On\n    K8S-Logging.Exclude On\n    Labels Off\n    Annotations Off\n"),
        "outputs": ("[OUTPUT]\n    Name cloudwatch_logs\n    Match kube.*\n"
                    f"    region {region}\n    log_group_name {log_group}\n"
                    "    log_stream_template $kubernetes['namespace_name'].$kubernetes['pod_name']."
                    "$kubernetes['container_name']\n"
                    "    log_stream_prefix unmatched-\n    auto_create_group Off\n"),
    }


def fluent_bit_values(region: str, log_group: str) -> dict:
    return {
        "serviceAccount": {"create": True, "name": FLUENT_BIT_ACCOUNT},
        # Every node's containers: GPU and system nodes too.
        "tolerations": [{"operator": "Exists"}],
        "priorityClassName": "system-node-critical",
        "resources": footprints.FLUENT_BIT.resources(),
        "config": fluent_bit_config(region, log_group),
    }


def log_writer_policy(log_group_arn: str) -> str:
    """Streams in the one log group, and their events (cloudwatch_logs needs nothing else with auto_create off)."""
    return policy_document([{"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                             "Resource": f"{log_group_arn}:*"}])


def service_monitor(exporter: Exporter) -> dict:
    return {"apiVersion": API, "kind": "ServiceMonitor",
            "metadata": {"name": exporter.name, "namespace": NAMESPACE},
            "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": exporter.app}},
                     "namespaceSelector": {"matchNames": [exporter.namespace]},
                     "endpoints": [{"port": exporter.port_name, "path": exporter.path, "interval": "30s"}]}}


def scrape_egress(exporters: Sequence[Exporter], node_cidr: str) -> list[dict]:
    ports = sorted({e.port for e in exporters} | {COREDNS_METRICS_PORT})
    return [{"to": [{"namespaceSelector": {}}], "ports": [{"protocol": "TCP", "port": p} for p in ports]},
            {"to": [{"ipBlock": {"cidr": node_cidr}}], "ports": [{"protocol": "TCP", "port": p} for p in NODE_PORTS]}]


@dataclass(frozen=True)
class MonitoringHandle:
    """What a component that adds its own rules, monitors and dashboards needs."""

    crds: pulumi.Resource  # ServiceMonitors wait for these
    stack: pulumi.Resource  # PrometheusRules wait for this (the operator's webhook validates them)
    prometheus_url: str
    runbooks: str


class Observability(pulumi.ComponentResource):
    """Monitoring namespace, operator CRDs, kube-prometheus-stack, scrapes, rules, routing, dashboards, logs."""

    handle: MonitoringHandle
    log_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ml-platform:observability:Observability", name, None, opts)
        scope = platform_namespace(
            f"{name}-namespace",
            # node-exporter uses the host network and PID namespace, Fluent Bit reads /var/log on the host.
            NamespaceArgs(NAMESPACE, "privileged", aws_apis=True, api_server_ingress_ports=[OPERATOR_WEBHOOK_PORT],
                          within=True, egress={"allow-scrape": scrape_egress(args.exporters, args.node_cidr)},
                          ingress_from=args.ingress_from),
            args.cluster, parent=self)
        crds = scope.chart(f"{name}-crds", PROMETHEUS_OPERATOR_CRDS, {})
        admin = generated_credential(f"{name}-grafana-admin", args.secrets, scope, remote_key="grafana/admin",
                                     secret="grafana-admin", key="admin-password", fixed={"admin-user": "admin"},
                                     parent=self)
        # The receivers' Secret: until someone fills it, Alertmanager has no configuration (docs/observability.md).
        provided_secrets(f"{name}-receivers", args.secrets, scope, NAMESPACE)
        boards = grafana.dashboards(args.thresholds.gpu_idle_percent, args.gpus)
        for key, text in boards.items():
            board = key.removesuffix(".json")
            grafana.dashboard_config_map(f"{name}-dashboard-{board}", scope, f"dashboard-{board}", key, text)
        # Grafana starts with its admin Secret synced; the chart's CRD-using objects need the CRDs.
        stack = scope.chart(f"{name}-stack", KUBE_PROMETHEUS_STACK, stack_values(args), depends_on=[crds, admin],
                            skip_crds=True)
        for exporter in args.exporters:
            scope.custom_resource(f"{name}-{exporter.name}", service_monitor(exporter), depends_on=[crds])
        # The operator's admission webhook validates rules and Alertmanager configs: after the stack.
        scope.custom_resource(f"{name}-rules", alerts.prometheus_rule("ml-platform", NAMESPACE, alerts.platform_rules(
            args.thresholds, args.backup_schedules, args.runbooks, args.gpus)), depends_on=[stack])
        scope.custom_resource(f"{name}-routing", {
            "apiVersion": "monitoring.coreos.com/v1alpha1", "kind": "AlertmanagerConfig",
            "metadata": {"name": ALERTMANAGER_CONFIG, "namespace": NAMESPACE},
            "spec": alerts.alertmanager_config(args.receivers)}, depends_on=[stack])

        self.handle = MonitoringHandle(crds=crds, stack=stack, prometheus_url=PROMETHEUS_URL, runbooks=args.runbooks)
        self.log_group_name = self._logs(name, args, scope)
        self.register_outputs({"log_group_name": self.log_group_name})

    def _logs(self, name: str, args: ObservabilityArgs, scope: Scope) -> pulumi.Output[str]:
        context = args.context
        group = aws.cloudwatch.LogGroup(
            f"{name}-containers", name=f"/aws/eks/{context.cluster_name}/containers",
            retention_in_days=args.log_retention_days,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect))
        writer = pod_identity_role(
            f"{name}-fluent-bit",
            PodIdentityArgs(context=context, namespace=NAMESPACE, service_account=FLUENT_BIT_ACCOUNT,
                            inline_policies={f"{name}-fluent-bit": group.arn.apply(log_writer_policy)},
                            associate_with=args.cluster.name),
            parent=self)
        scope.chart(f"{name}-fluent-bit", FLUENT_BIT,
                    fluent_bit_values(context.region, f"/aws/eks/{context.cluster_name}/containers"),
                    depends_on=[*writer.grants, group])
        return group.name
