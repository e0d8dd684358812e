"""Serving: one vLLM OpenAI server per configured model, on its inference pool, scaled by KEDA, watched.

Config has already proven each model fits (infra/config/serving_fit.py). Here each becomes a
Deployment (GPU request = limit, the GPU toleration, its pool, probes that allow a ten-minute model
load, non-root), a Service on 8000, a NetworkPolicy admitting its clients and Prometheus, a PDB, a
ServiceMonitor, a ScaledObject on queue depth (plus a cron wake window for models at zero), alerts
and a dashboard. The image runs as root by default; it runs here as UID 2000 with HOME and the hub
cache on the pod's writable cache volume (vLLM's own non-root image target uses the same UID).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from catalog import namespaces
from catalog.scheduling import GPU_RESOURCE, GPU_TAINT, POOL_LABEL
from components import alerts
from components.grafana import Panel, dashboard, dashboard_config_map
from components.handles import ClusterHandle, PlatformContext
from components.namespace import existing_namespace, in_namespace
from components.observability import MonitoringHandle

PORT = 8000
UID = 2000
CACHE = "/models"
# Upstream charts give a model this long to load before the first /health (vllm production-stack: 60 x 10 s).
STARTUP_PERIOD, STARTUP_FAILURES = 10, 60


@dataclass(frozen=True)
class Wake:
    start: str
    end: str
    timezone: str


@dataclass(frozen=True)
class ModelServer:
    name: str
    model: str
    served_name: str
    image: str
    pool: str
    gpus: int
    max_model_len: int
    gpu_memory_utilization: float
    dtype: str
    quantization: str | None
    min_replicas: int
    max_replicas: int
    cpu: str
    memory: str
    cache_gib: int
    extra_args: Sequence[str]
    clients: Sequence[str]
    hub_token_secret: str | None
    api_key_secret: str | None
    queue_per_replica: int
    activation_queue: int
    cooldown_seconds: int
    wake: Wake | None
    slo_latency_seconds: float
    slo_ttft_seconds: float


@dataclass(frozen=True)
class ServingArgs:
    context: PlatformContext
    cluster: ClusterHandle
    monitoring: MonitoringHandle
    autoscaler: pulumi.Resource  # the KEDA release: its CRDs and webhook
    namespace: str
    namespace_output: pulumi.Input[str]  # the team namespace, created by tenancy
    models: Sequence[ModelServer]


def labels(m: ModelServer) -> dict[str, str]:
    return {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": m.name,
            "app.kubernetes.io/component": "model-server"}


def engine_args(m: ModelServer) -> list[str]:
    """`vllm serve` arguments (flags of vLLM 0.33.0 vllm/engine/arg_utils.py and entrypoints cli_args.py)."""
    args = [m.model, "--served-model-name", m.served_name, "--port", str(PORT),
            "--tensor-parallel-size", str(m.gpus), "--max-model-len", str(m.max_model_len),
            "--gpu-memory-utilization", str(m.gpu_memory_utilization), "--dtype", m.dtype]
    if m.quantization:
        args += ["--quantization", m.quantization]
    return [*args, *m.extra_args]


def _secret_env(name: str, secret: str, key: str) -> dict:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def deployment(m: ModelServer, namespace: pulumi.Input[str]) -> dict:
    probe = {"httpGet": {"path": "/health", "port": PORT}}
    env = [{"name": "HOME", "value": f"{CACHE}/home"}, {"name": "HF_HOME", "value": f"{CACHE}/huggingface"}]
    if m.hub_token_secret:
        env.append(_secret_env("HF_TOKEN", m.hub_token_secret, "token"))
    if m.api_key_secret:
        # vLLM reads VLLM_API_KEY (vllm/envs.py); /health and /metrics stay open, /v1 needs the key.
        env.append(_secret_env("VLLM_API_KEY", m.api_key_secret, "api-key"))
    gpus = {GPU_RESOURCE: str(m.gpus)}
    pod = {
        "serviceAccountName": m.name, "automountServiceAccountToken": False,
        "nodeSelector": {POOL_LABEL: m.pool}, "tolerations": [GPU_TAINT.toleration()],
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "terminationGracePeriodSeconds": 60,
        "containers": [{
            "name": "vllm", "image": m.image, "command": ["vllm", "serve"], "args": engine_args(m),
            "ports": [{"name": "http", "containerPort": PORT}], "env": env,
            "resources": {"requests": {"cpu": m.cpu, "memory": m.memory, "ephemeral-storage": f"{m.cache_gib}Gi",
                                       **gpus},
                          "limits": {"memory": m.memory, **gpus}},
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                "runAsNonRoot": True},
            "startupProbe": {**probe, "periodSeconds": STARTUP_PERIOD, "failureThreshold": STARTUP_FAILURES},
            "readinessProbe": {**probe, "periodSeconds": 5, "failureThreshold": 3},
            "livenessProbe": {**probe, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
            "volumeMounts": [{"name": "cache", "mountPath": CACHE}, {"name": "shm", "mountPath": "/dev/shm"}],
        }],
        "volumes": [
            # Per replica, on the node's root volume: an EBS claim is zonal and single-attach.
            {"name": "cache", "emptyDir": {"sizeLimit": f"{m.cache_gib}Gi"}},
            # NCCL and PyTorch share tensors through /dev/shm; the default 64 MiB breaks tensor parallelism.
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi" if m.gpus > 1 else "1Gi"}},
        ],
    }
    if m.max_replicas > 1:
        pod["topologySpreadConstraints"] = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                             "whenUnsatisfiable": "ScheduleAnyway",
                                             "labelSelector": {"matchLabels": labels(m)}}]
    return {
        "metadata": {"name": m.name, "namespace": namespace, "labels": labels(m)},
        "spec": {
            "replicas": m.min_replicas,
            "selector": {"matchLabels": labels(m)},
            # A new replica is ready before an old one goes: the surge is in the pool's fit check.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": labels(m)}, "spec": pod},
        },
    }


def network_policy(m: ModelServer, namespace: pulumi.Input[str], own: str) -> dict:
    """Callers: its own namespace, its clients, and Prometheus (/metrics shares the API's port)."""
    sources = sorted({own, *m.clients, namespaces.MONITORING})
    return {"metadata": {"name": f"{m.name}-ingress", "namespace": namespace},
            "spec": {"podSelector": {"matchLabels": labels(m)}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [in_namespace(n) for n in sources],
                                  "ports": [{"protocol": "TCP", "port": PORT}]}]}}


def scaled_object(m: ModelServer, namespace: pulumi.Input[str], prometheus_url: str) -> dict:
    """Queue depth per replica (KEDA prometheus scaler); a cron trigger keeps one replica up in the wake window."""
    triggers: list[dict] = [{"type": "prometheus", "metadata": {
        "serverAddress": prometheus_url,
        "query": f'sum(vllm:num_requests_waiting{{model_name="{m.served_name}"}})',
        "threshold": str(m.queue_per_replica), "activationThreshold": str(m.activation_queue)}}]
    if m.wake:
        triggers.append({"type": "cron", "metadata": {"timezone": m.wake.timezone, "start": m.wake.start,
                                                      "end": m.wake.end, "desiredReplicas": "1"}})
    return {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": m.name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"name": m.name}, "minReplicaCount": m.min_replicas,
            "maxReplicaCount": m.max_replicas, "pollingInterval": 15, "cooldownPeriod": m.cooldown_seconds,
            # Up fast (one replica a minute: each needs a GPU node), down slowly (a cold start costs minutes).
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0,
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
                "scaleDown": {"stabilizationWindowSeconds": 600,
                              "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}]}}}},
            "triggers": triggers,
        },
    }


def serving_rules(models: Sequence[ModelServer], namespace: str, runbooks: str) -> list[dict]:
    rules = []
    for m in models:
        where = f'namespace="{namespace}", deployment="{m.name}"'
        model = f'model_name="{m.served_name}"'

        def p95(metric: str, model: str = model) -> str:
            return f"histogram_quantile(0.95, sum by (le) (rate({metric}_bucket{{{model}}}[5m])))"
        rules += [
            alerts.alert("ModelServingDown", f"kube_deployment_status_replicas_available{{{where}}} == 0 and "
                         f"kube_deployment_spec_replicas{{{where}}} > 0", "1m", "critical",
                         f"Model {m.name} has no ready replica", f"{m.name} is meant to run and serves nobody.",
                         runbooks),
            alerts.alert("ModelLatencyHigh", f"{p95('vllm:e2e_request_latency_seconds')} > {m.slo_latency_seconds:g}",
                         "5m", "warning", f"Model {m.name}: p95 latency above {m.slo_latency_seconds:g} s",
                         "p95 end-to-end latency is {{ $value | humanizeDuration }}.", runbooks),
            alerts.alert("ModelTimeToFirstTokenHigh",
                         f"{p95('vllm:time_to_first_token_seconds')} > {m.slo_ttft_seconds:g}", "5m", "warning",
                         f"Model {m.name}: p95 time to first token above {m.slo_ttft_seconds:g} s",
                         "p95 time to first token is {{ $value | humanizeDuration }}.", runbooks),
            alerts.alert("ModelQueueAtMaxReplicas", f"sum(vllm:num_requests_waiting{{{model}}}) > "
                         f"{m.queue_per_replica * m.max_replicas} and on () kube_deployment_status_replicas"
                         f"{{{where}}} >= {m.max_replicas}", "10m", "warning",
                         f"Model {m.name} is queueing at its {m.max_replicas} replicas",
                         "{{ $value }} requests wait and KEDA may not add replicas: raise replicas.max.", runbooks),
            alerts.alert("ModelKvCacheFull", f"max(vllm:kv_cache_usage_perc{{{model}}}) > 0.9", "5m", "warning",
                         f"Model {m.name}: KV cache above 90 %",
                         "KV cache use is {{ $value | humanizePercentage }}: requests are preempted and recomputed.",
                         runbooks),
        ]
    return [{"name": "ml-platform.serving", "rules": rules}]


def serving_dashboard(models: Sequence[ModelServer]) -> dict:
    served = "|".join(m.served_name for m in models)
    sel = f'model_name=~"{served}"'
    return dashboard("mlp-serving", "ML platform: model serving", [
        Panel("Requests per second", f"sum by (model_name) (rate(vllm:e2e_request_latency_seconds_count{{{sel}}}"
              "[5m]))", "reqps", "{{model_name}}"),
        Panel("Waiting requests", f"sum by (model_name) (vllm:num_requests_waiting{{{sel}}})",
              legend="{{model_name}}"),
        Panel("p50 / p95 latency", "histogram_quantile(0.95, sum by (le, model_name) "
              f"(rate(vllm:e2e_request_latency_seconds_bucket{{{sel}}}[5m])))", "s", "p95 {{model_name}}"),
        Panel("p95 time to first token", "histogram_quantile(0.95, sum by (le, model_name) "
              f"(rate(vllm:time_to_first_token_seconds_bucket{{{sel}}}[5m])))", "s", "{{model_name}}"),
        Panel("Generated tokens per second", f"sum by (model_name) (rate(vllm:generation_tokens_total{{{sel}}}"
              "[5m]))", "short", "{{model_name}}"),
        Panel("Replicas", "sum by (deployment) (kube_deployment_status_replicas{deployment=~\""
              f"{'|'.join(m.name for m in models)}\"}})", legend="{{deployment}}"),
        Panel("KV cache use", f"max by (model_name) (vllm:kv_cache_usage_perc{{{sel}}})", "percentunit",
              "{{model_name}}"),
    ])


class Serving(pulumi.ComponentResource):
    """Per model: service account, Deployment, Service, NetworkPolicy, PDB, ServiceMonitor, ScaledObject."""

    def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ml-platform:serving:Serving", name, None, opts)
        scope = existing_namespace(args.namespace_output, args.cluster, self)
        ns = scope.namespace
        for m in args.models:
            base = f"{name}-{m.name}"
            k8s.core.v1.ServiceAccount(base, metadata={"name": m.name, "namespace": ns},
                                       automount_service_account_token=False, opts=scope.opts)
            spec = deployment(m, ns)
            # KEDA owns the replica count once the Deployment exists.
            k8s.apps.v1.Deployment(base, metadata=spec["metadata"], spec=spec["spec"], opts=pulumi.ResourceOptions.merge(
                scope.opts, pulumi.ResourceOptions(ignore_changes=["spec.replicas"])))
            k8s.core.v1.Service(base, metadata={"name": m.name, "namespace": ns, "labels": labels(m)},
                                spec={"selector": labels(m), "ports": [{"name": "http", "port": PORT,
                                                                        "targetPort": "http"}]}, opts=scope.opts)
            policy = network_policy(m, ns, args.namespace)
            k8s.networking.v1.NetworkPolicy(base, metadata=policy["metadata"], spec=policy["spec"], opts=scope.opts)
            if m.max_replicas > 1:
                k8s.policy.v1.PodDisruptionBudget(base, metadata={"name": m.name, "namespace": ns},
                                                  spec={"maxUnavailable": 1, "selector": {"matchLabels": labels(m)}},
                                                  opts=scope.opts)
            scope.custom_resource(f"{base}-monitor", {
                "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
                "metadata": {"name": m.name, "namespace": ns},
                "spec": {"selector": {"matchLabels": labels(m)},
                         "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s"}]}},
                depends_on=[args.monitoring.crds])
            scope.custom_resource(f"{base}-scaler", scaled_object(m, ns, args.monitoring.prometheus_url),
                                  depends_on=[args.autoscaler])
        scope.custom_resource(f"{name}-rules", alerts.prometheus_rule(
            "ml-platform-serving", ns, serving_rules(args.models, args.namespace, args.monitoring.runbooks)),
            depends_on=[args.monitoring.stack])
        dashboard_config_map(f"{name}-dashboard", scope, "dashboard-serving", "ml-platform-serving.json",
                             json.dumps(serving_dashboard(args.models), sort_keys=True))
        self.register_outputs({})
