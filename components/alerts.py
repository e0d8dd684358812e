"""The platform's alert rules and Alertmanager routing, as plain dicts: tested with promtool, not in a cluster.

Every metric here is one its pinned exporter exports (read at the pinned tags):
- DCGM_FI_DEV_GPU_UTIL, _FB_USED, _FB_FREE (MiB), _XID_ERRORS (the last XID, a gauge):
  NVIDIA/dcgm-exporter 4.5.3-4.8.2 etc/default-counters.csv:23-46; labels gpu, UUID, modelName,
  Hostname and, with the chart's pod mapping, namespace, pod, container.
- karpenter_nodepools_usage / _limit {nodepool, resource_type}, karpenter_scheduler_unschedulable_pods_count,
  karpenter_cloudprovider_errors_total {method, error}: kubernetes-sigs/karpenter 6e7eab7a (pinned by
  karpenter-provider-aws v1.14.1), pkg/controllers/metrics/nodepool, provisioning/scheduling/metrics.go,
  pkg/cloudprovider/metrics.
- velero_backup_failure_total, velero_backup_partial_failure_total, velero_backup_last_successful_timestamp
  {schedule}: vmware-tanzu/velero v1.18.1 pkg/metrics/metrics.go.
- externalsecret_status_condition {name, namespace, condition, status}: external-secrets v2.9.0
  pkg/controllers/externalsecret/esmetrics/esmetrics.go.
- fluentbit_output_retries_failed_total {name}: fluent/fluent-bit v5.1.1 src/flb_output.c.
Prometheus, Alertmanager and Kubernetes health come from kube-prometheus-stack's default rules (kept on).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    gpu_idle_percent: int
    gpu_idle_for: str
    gpu_memory_percent: int
    gpu_memory_for: str
    pending_for: str
    external_secret_failing_for: str


@dataclass(frozen=True)
class BackupSchedule:
    name: str
    interval_seconds: int  # the longest gap between two runs of the schedule


@dataclass(frozen=True)
class ReceiverSpec:
    kind: str  # paging | chat | heartbeat
    type: str  # pagerduty | slack | webhook
    secret: str
    key: str
    channel: str | None = None


def alert(name: str, expr: str, for_: str, severity: str, summary: str, description: str,
          runbooks: str) -> dict:
    """One alerting rule; its runbook is docs/runbooks/<kebab-case name>.md under `runbooks`."""
    slug = "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")
    return {"alert": name, "expr": expr, "for": for_, "labels": {"severity": severity},
            "annotations": {"summary": summary, "description": description,
                            "runbook_url": f"{runbooks.rstrip('/')}/{slug}.md"}}


def platform_rules(t: Thresholds, schedules: Sequence[BackupSchedule], runbooks: str, gpus: bool) -> list[dict]:
    """PrometheusRule groups: GPUs (when the stack has GPU pools), Karpenter, Velero, ESO, log shipping."""
    groups = []
    if gpus:
        groups.append({"name": "ml-platform.gpu", "rules": [
            alert("GpuIdle", f"DCGM_FI_DEV_GPU_UTIL < {t.gpu_idle_percent}", t.gpu_idle_for, "warning",
                   "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} is idle",
                   f"Utilisation {{{{ $value }}}} % (below {t.gpu_idle_percent} % for {t.gpu_idle_for}) "
                   "for pod {{ $labels.namespace }}/{{ $labels.pod }}: the node bills by the hour.", runbooks),
            alert("GpuMemoryHigh", "100 * DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE) > "
                   f"{t.gpu_memory_percent}", t.gpu_memory_for, "warning",
                   "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} is nearly out of memory",
                   "Framebuffer {{ $value | humanize }} % used by {{ $labels.namespace }}/{{ $labels.pod }}: "
                   "the next allocation fails with CUDA out of memory.", runbooks),
            alert("GpuXidError", "DCGM_FI_DEV_XID_ERRORS > 0 and changes(DCGM_FI_DEV_XID_ERRORS[15m]) > 0", "0m",
                   "warning", "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} reported XID {{ $value }}",
                   "The driver reported XID error {{ $value }}: look it up in NVIDIA's XID catalog; many need the "
                   "node drained and replaced.", runbooks),
        ]})
    groups.append({"name": "ml-platform.karpenter", "rules": [
        alert("KarpenterNodePoolAtLimit",
               "max by (nodepool, resource_type) (karpenter_nodepools_usage / karpenter_nodepools_limit) >= 0.95 "
               "and on () (sum(karpenter_scheduler_unschedulable_pods_count) > 0)", t.pending_for, "warning",
               "NodePool {{ $labels.nodepool }} is at its {{ $labels.resource_type }} limit with pods pending",
               "Pods wait while NodePool {{ $labels.nodepool }} uses {{ $value | humanizePercentage }} of its "
               "{{ $labels.resource_type }} limit: raise the pool's limits or free capacity.", runbooks),
        alert("KarpenterCannotLaunch",
               'sum by (error) (increase(karpenter_cloudprovider_errors_total{method="Create"}[15m])) > 0',
               "15m", "warning", "Karpenter cannot launch nodes ({{ $labels.error }})",
               "EC2 refused {{ $value | humanize }} launches in 15 minutes with {{ $labels.error }}.", runbooks),
    ]})
    backup_rules = [
        alert("VeleroBackupFailed",
               'increase(velero_backup_failure_total{schedule!=""}[1h]) > 0 '
               'or increase(velero_backup_partial_failure_total{schedule!=""}[1h]) > 0', "0m", "critical",
               "Velero backup of schedule {{ $labels.schedule }} failed",
               "A backup of schedule {{ $labels.schedule }} failed or partly failed in the last hour.", runbooks)]
    for schedule in schedules:
        backup_rules.append(alert(
            "VeleroBackupMissing",
            f'time() - velero_backup_last_successful_timestamp{{schedule="{schedule.name}"}} > '
            f"{2 * schedule.interval_seconds}", "30m", "critical",
            f"No successful backup of schedule {schedule.name} for twice its interval",
            f"The last successful backup of {schedule.name} is {{{{ $value | humanizeDuration }}}} old "
            f"(the schedule runs every {schedule.interval_seconds // 3600} h).", runbooks))
    groups.append({"name": "ml-platform.backup", "rules": backup_rules})
    groups.append({"name": "ml-platform.secrets", "rules": [
        alert("ExternalSecretNotSynced", 'externalsecret_status_condition{condition="Ready",status="False"} == 1',
               t.external_secret_failing_for, "warning",
               "ExternalSecret {{ $labels.namespace }}/{{ $labels.name }} is not synced",
               "ESO cannot write {{ $labels.namespace }}/{{ $labels.name }}: its value is missing from Secrets "
               "Manager, or ESO may not read it.", runbooks),
    ]})
    groups.append({"name": "ml-platform.logs", "rules": [
        alert("LogShippingFailing", "increase(fluentbit_output_retries_failed_total[15m]) > 0", "0m", "warning",
               "Fluent Bit on {{ $labels.pod }} dropped log batches",
               "Output {{ $labels.name }} gave up on {{ $value | humanize }} batches in 15 minutes: those "
               "container logs never reach CloudWatch.", runbooks),
    ]})
    return groups


NULL = "null"


def alertmanager_config(receivers: Sequence[ReceiverSpec]) -> dict:
    """The AlertmanagerConfig spec: group by alertname and namespace; critical pages, warnings go to chat."""
    by_kind = {r.kind: r for r in receivers}
    chat = "chat" if "chat" in by_kind else NULL
    routes = [{"receiver": "heartbeat" if "heartbeat" in by_kind else NULL,
               "matchers": [{"name": "alertname", "value": "Watchdog", "matchType": "="}],
               "repeatInterval": "5m"},
              {"receiver": NULL, "matchers": [{"name": "alertname", "value": "InfoInhibitor", "matchType": "="}]}]
    if "paging" in by_kind:
        routes.append({"receiver": "paging", "matchers": [{"name": "severity", "value": "critical",
                                                           "matchType": "="}]})
    routes.append({"receiver": chat, "matchers": [{"name": "severity", "value": "warning|critical",
                                                   "matchType": "=~"}]})
    return {
        "route": {"receiver": chat, "groupBy": ["alertname", "namespace"], "groupWait": "30s",
                  "groupInterval": "5m", "repeatInterval": "4h", "routes": routes},
        "receivers": [{"name": NULL}, *(_receiver(r) for r in receivers)],
        # A critical alert silences its warning twin for the same thing.
        "inhibitRules": [{"sourceMatch": [{"name": "severity", "value": "critical", "matchType": "="}],
                          "targetMatch": [{"name": "severity", "value": "warning", "matchType": "="}],
                          "equal": ["alertname", "namespace"]}],
    }


def _receiver(r: ReceiverSpec) -> dict:
    secret = {"name": r.secret, "key": r.key}
    if r.type == "pagerduty":
        return {"name": r.kind, "pagerdutyConfigs": [{"routingKey": secret, "sendResolved": True}]}
    if r.type == "slack":
        return {"name": r.kind, "slackConfigs": [{"apiURL": secret, "channel": r.channel, "sendResolved": True}]}
    return {"name": r.kind, "webhookConfigs": [{"urlSecret": secret, "sendResolved": r.kind != "heartbeat"}]}



def prometheus_rule(name: str, namespace: Any, groups: Sequence[Mapping]) -> dict:
    """The PrometheusRule manifest holding `groups`; the operator picks it up in any namespace."""
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"groups": list(groups)}}
