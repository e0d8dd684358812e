"""GPU and batch workloads: GPUs requested exactly, GPU servers behind their own NetworkPolicy, autoscalers
within their pool, scheduled jobs bounded and pinned by digest."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import Severity

from catalog.instances import INSTANCES
from catalog.scheduling import GPU_RESOURCE, POOL_LABEL
from policies.kubernetes import WORKLOADS, containers, pod_spec, workload_rule
from policies.support import NODE_GROUP, NODEPOOL, as_list, eks_bp, num, of_type, resource_rule, stack_rule

SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def _gpu_request_equals_limit(pod: Mapping[str, Any], _: dict) -> Iterator[str]:
    # Kubernetes: an extended resource may not be overcommitted; a request without an equal limit is
    # rejected, and a limit alone sets the request. Say it before the API server does.
    for c in containers(pod):
        resources = c.get("resources") or {}
        request = (resources.get("requests") or {}).get(GPU_RESOURCE)
        limit = (resources.get("limits") or {}).get(GPU_RESOURCE)
        if request is not None and str(request) != str(limit):
            yield (f"container {c.get('name')} requests {request} and limits {limit} {GPU_RESOURCE}: the API server "
                   f"rejects a GPU request that differs from the limit; set them equal, or the limit alone (it "
                   f"sets the request)")


gpu_request_equals_limit = workload_rule(
    "k8s-gpu-request-equals-limit", "GPU requests equal GPU limits.", _gpu_request_equals_limit,
    severity=Severity.MEDIUM, framework=eks_bp("cost-optimization"),
    remediation=f"Set resources.limits {GPU_RESOURCE}, and resources.requests to the same number or not at all.",
    unset=("requests unset: the limit sets the request (Kubernetes docs, schedule GPUs): passes. A request "
           "without an equal limit is rejected by the API server: fails."))


def gpus_per_pod(props: Mapping[str, Any]) -> float:
    return sum(float(((c.get("resources") or {}).get("limits") or {}).get(GPU_RESOURCE) or 0)
               for c in pod_spec(props).get("containers") or [])


def _selects(policy: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    match = ((policy.get("spec") or {}).get("podSelector") or {}).get("matchLabels") or {}
    return bool(match) and all(labels.get(k) == v for k, v in match.items()) and bool(
        (policy.get("spec") or {}).get("ingress"))


def _servers_behind_policies(resources, _config) -> Iterator[tuple[str, str | None]]:
    policies = of_type(resources, NETWORK_POLICY)
    for workload in (r for r in resources if r.resource_type in WORKLOADS):
        pod = pod_spec(workload.props)
        ports = [p for c in pod.get("containers") or [] for p in as_list(c.get("ports"))]
        if not ports or not gpus_per_pod(workload.props):
            continue
        metadata = workload.props.get("metadata") or {}
        spec = workload.props.get("spec") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        namespace = metadata.get("namespace")
        if not any(_selects(p.props, labels) for p in policies
                   if (p.props.get("metadata") or {}).get("namespace") == namespace):
            yield (f"GPU server {namespace}/{metadata.get('name')} has no NetworkPolicy of its own admitting its "
                   f"callers: only the namespace's default-deny decides who reaches it"), workload.urn


servers_behind_policies = stack_rule(
    "k8s-gpu-server-network-policy", "Every GPU server has a NetworkPolicy that names who may call it.",
    _servers_behind_policies, severity=Severity.MEDIUM, framework=eks_bp("security#network-security"),
    remediation="Add a NetworkPolicy selecting the server's pods with ingress from its client namespaces only "
                "(components/serving.py does).",
    unset=("No NetworkPolicy: any pod in the cluster may call the server (Kubernetes docs, network policies): "
           "fails."))


def _pool_gpus(resources) -> dict[str, float]:
    """Pool name -> the nvidia.com/gpu it may hold: a NodePool's limit, a node group's max x GPUs per node."""
    pools: dict[str, float] = {}
    for pool in of_type(resources, NODEPOOL):
        limit = ((pool.props.get("spec") or {}).get("limits") or {}).get(GPU_RESOURCE)
        if limit is not None:
            pools[(pool.props.get("metadata") or {}).get("name")] = float(limit)
    for group in of_type(resources, NODE_GROUP):
        name = (group.props.get("labels") or {}).get(POOL_LABEL)
        types_ = [t for t in as_list(group.props.get("instanceTypes")) if t in INSTANCES]
        if name and types_:
            pools[name] = float((group.props.get("scalingConfig") or {}).get("maxSize", 0)) * max(
                INSTANCES[t].gpus for t in types_)
    return pools


def _scalers_within_pools(resources, _config) -> Iterator[tuple[str, str | None]]:
    pools = _pool_gpus(resources)
    workloads = {((r.props.get("metadata") or {}).get("namespace"), (r.props.get("metadata") or {}).get("name")): r
                 for r in resources if r.resource_type in WORKLOADS}
    for scaler in of_type(resources, SCALED_OBJECT):
        metadata, spec = scaler.props.get("metadata") or {}, scaler.props.get("spec") or {}
        target = workloads.get((metadata.get("namespace"), (spec.get("scaleTargetRef") or {}).get("name")))
        if target is None:
            continue
        pool = (pod_spec(target.props).get("nodeSelector") or {}).get(POOL_LABEL)
        need = gpus_per_pod(target.props) * float(spec.get("maxReplicaCount", 100))
        if pool in pools and need > pools[pool]:
            yield (f"ScaledObject {metadata.get('name')} may run {num(spec.get('maxReplicaCount', 100))} replicas of "
                   f"{num(gpus_per_pod(target.props))} GPUs ({num(need)}), more than pool {pool} holds "
                   f"({num(pools[pool])}): the rest would wait Pending"), scaler.urn


scalers_within_pools = stack_rule(
    "keda-max-within-pool", "A ScaledObject's max replicas fit the GPUs of its pool.", _scalers_within_pools,
    severity=Severity.MEDIUM, framework=eks_bp("cost-optimization"),
    remediation="Lower maxReplicaCount (serving.models.<m>.replicas.max) or raise the pool's limits.",
    unset="maxReplicaCount unset: 100 (KEDA docs, ScaledObject spec), judged as 100.")



CRONJOB = "kubernetes:batch/v1:CronJob"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def _cronjob_bounded(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    spec = props.get("spec") or {}
    name = (props.get("metadata") or {}).get("name")
    # Kubernetes defaults concurrencyPolicy to Allow: a slow run and the next one pile up.
    if spec.get("concurrencyPolicy") not in ("Forbid", "Replace"):
        yield f"CronJob {name} allows overlapping runs; set concurrencyPolicy: Forbid (or Replace)"
    if not ((spec.get("jobTemplate") or {}).get("spec") or {}).get("activeDeadlineSeconds"):
        yield f"CronJob {name} has no activeDeadlineSeconds: a hung run holds its node forever"


cronjob_bounded = resource_rule(
    "k8s-cronjob-bounded", "CronJobs forbid overlapping runs and end at a deadline.", CRONJOB, _cronjob_bounded,
    severity=Severity.MEDIUM, framework=eks_bp("reliability"),
    remediation="Set concurrencyPolicy: Forbid and jobTemplate.spec.activeDeadlineSeconds.",
    unset=("concurrencyPolicy unset: Allow, runs overlap; activeDeadlineSeconds unset: a run never times out "
           "(Kubernetes docs, CronJob and Job): fails."))


def _batch_images_by_digest(pod: Mapping[str, Any], _: dict) -> Iterator[str]:
    for c in containers(pod):
        if not DIGEST.search(str(c.get("image") or "")):
            yield f"container {c.get('name')} runs {c.get('image')}, not pinned by digest: a tag can be pushed again"


batch_images_by_digest = resource_rule(
    "k8s-cronjob-image-digest", "Scheduled jobs run images pinned by digest.", CRONJOB,
    lambda p, c: _batch_images_by_digest(pod_spec(p), c), severity=Severity.MEDIUM,
    framework=eks_bp("security#image-security"),
    remediation="Reference the image as <repository>@sha256:<digest> (ml-platform:evaluation.imageDigest).",
    unset="No digest: the tag is resolved again at every pull (Kubernetes docs, images): fails.")

RULES = [gpu_request_equals_limit, servers_behind_policies, scalers_within_pools, cronjob_bounded,
         batch_images_by_digest]
