"""Monthly cost of a stack from its desired state: one estimator for the cost rules and `mlp plan`.

Baseline is the floor (managed groups at minSize, Karpenter pools empty);
ceiling is the most the stack may cost (managed groups at maxSize, every
Karpenter pool filled to its limits with its most expensive type). Input is
the resources as a policy analyzer sees them (`PolicyResource`), so the same
code runs in `pulumi preview --policy-pack` and offline. Prices are those of
the region the stack's AWS provider names (catalog/prices.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from catalog import prices as pricing
from catalog.instances import INSTANCES
from catalog.prices import PriceBook, prices_for
from policies.support import LAUNCH_TEMPLATE, NODE_GROUP, NODECLASS, NODEPOOL, as_list

RELEASE = "kubernetes:helm.sh/v3:Release"


@dataclass(frozen=True)
class Line:
    item: str
    baseline: float
    ceiling: float


@dataclass
class Estimate:
    prices: PriceBook
    lines: list[Line] = field(default_factory=list)

    @property
    def baseline(self) -> float:
        return sum(line.baseline for line in self.lines)

    @property
    def ceiling(self) -> float:
        return sum(line.ceiling for line in self.lines)

    def add(self, item: str, baseline: float, ceiling: float | None = None) -> None:
        self.lines.append(Line(item, baseline, baseline if ceiling is None else ceiling))

    def breakdown(self, top: int = 6) -> str:
        """The largest lines by ceiling, for one-line messages."""
        lines = sorted(self.lines, key=lambda line: line.ceiling, reverse=True)[:top]
        return "; ".join(f"{line.item} ${line.baseline:,.0f}-${line.ceiling:,.0f}" for line in lines)


def gib(size: Any) -> float:
    """A size as a launch template (number) or a Karpenter resource ("500Gi") gives it."""
    return float(str(size).removesuffix("Gi"))


def monitoring_volume_gib(values: Mapping[str, Any]) -> float:
    """The gp3 volumes kube-prometheus-stack claims: each Prometheus and Alertmanager replica's."""
    total = 0.0
    for component, spec_key, storage_key in (("prometheus", "prometheusSpec", "storageSpec"),
                                             ("alertmanager", "alertmanagerSpec", "storage")):
        spec = (values.get(component) or {}).get(spec_key) or {}
        claim = ((spec.get(storage_key) or {}).get("volumeClaimTemplate") or {}).get("spec") or {}
        size = ((claim.get("resources") or {}).get("requests") or {}).get("storage")
        if size:
            total += gib(size) * float(spec.get("replicas", 1))
    return total


def _root_volume_gib(block_device_mappings: Sequence[Mapping[str, Any]] | None) -> float:
    return sum(gib(m.get("ebs", {}).get("volumeSize", 0)) for m in block_device_mappings or [])


def requirement_values(spec: Mapping[str, Any], key: str) -> list[str]:
    """Values of a NodePool spec's `In` requirements on `key` (instance type, capacity type, ...)."""
    requirements = ((spec.get("template") or {}).get("spec") or {}).get("requirements") or []
    return [str(v) for r in requirements if r.get("key") == key for v in r.get("values") or []]


def nodes_within_limits(spec: Mapping[str, Any]) -> dict[str, float]:
    """Priced instance type -> how many nodes of it the NodePool's limits admit (inf when unbounded)."""
    limits = spec.get("limits") or {}
    cpu = float(limits.get("cpu", math.inf))
    memory = gib(limits.get("memory", "inf"))
    gpus = float(limits.get("nvidia.com/gpu", math.inf))
    # A time-sliced pool's GPU limit counts slices; its node limit bounds the physical nodes.
    nodes = float(limits.get("nodes", math.inf))
    return {name: min(cpu // s.vcpu, memory // s.memory_gib, gpus // s.gpus if s.gpus else math.inf, nodes)
            for name, s in ((t, INSTANCES[t]) for t in requirement_values(spec, "node.kubernetes.io/instance-type")
                            if t in INSTANCES)}


def stack_region(resources: Sequence[Any]) -> str | None:
    """The region the stack's AWS resources go to: the `region` of their AWS provider."""
    for resource in resources:
        provider = resource.provider
        if provider is not None and provider.resource_type == "pulumi:providers:aws":
            region = provider.props.get("region")
            if isinstance(region, str) and region:
                return region
    return None


def physical_gpus(spec: Mapping[str, Any]) -> float:
    """The most physical GPUs a NodePool can hold (time-slicing counted once per GPU, not per slice)."""
    return max((nodes * INSTANCES[t].gpus for t, nodes in nodes_within_limits(spec).items() if INSTANCES[t].gpus),
               default=0.0)


def estimate(resources: Sequence[Any]) -> Estimate:
    """Monthly USD, baseline and ceiling, with one line per cost driver, at the stack region's prices.

    The budget rule and `mlp plan` estimate the same resource list: the last answer is kept
    for that very list (by identity; the analyzer's lists are read-only).
    """
    if _last[0] is resources:
        return _last[1]
    est = _estimate(resources)
    _last[:] = [resources, est]
    return est


_last: list[Any] = [None, None]


def _estimate(resources: Sequence[Any]) -> Estimate:
    book = prices_for(stack_region(resources))
    est = Estimate(book)
    hours = pricing.HOURS_PER_MONTH
    by_type: dict[str, list[Any]] = {}
    for resource in resources:
        by_type.setdefault(resource.resource_type, []).append(resource)

    for cluster in by_type.get("aws:eks/cluster:Cluster", []):
        support = (cluster.props.get("upgradePolicy") or {}).get("supportType", "EXTENDED")
        est.add(f"EKS control plane {cluster.name}", book.eks_cluster_hour[support] * hours)

    templates = {r.urn: r for r in by_type.get(LAUNCH_TEMPLATE, [])}
    for group in by_type.get(NODE_GROUP, []):
        props = group.props
        scaling = props.get("scalingConfig") or {}
        spot = props.get("capacityType") == "SPOT"
        types_ = [t for t in props.get("instanceTypes") or [] if t in book.instances]
        if not types_:
            continue
        cheapest = min(book.hourly(t, spot) for t in types_)
        dearest = max(book.hourly(t, spot) for t in types_)
        volume = sum(_root_volume_gib(templates[d.urn].props.get("blockDeviceMappings"))
                     for d in group.property_dependencies.get("launchTemplate", []) if d.urn in templates)
        low, high = float(scaling.get("minSize", 0)), float(scaling.get("maxSize", 0))
        node_month = volume * book.ebs_gp3_gb_month
        est.add(f"node group {group.name}", low * (cheapest * hours + node_month),
                high * (dearest * hours + node_month))

    classes = {r.props.get("metadata", {}).get("name"): r for r in by_type.get(NODECLASS, [])}
    for pool in by_type.get(NODEPOOL, []):
        name = pool.props.get("metadata", {}).get("name")
        node_class = classes.get(pool.props.get("spec", {}).get("template", {}).get("spec", {})
                                 .get("nodeClassRef", {}).get("name"))
        volume = _root_volume_gib(node_class.props.get("spec", {}).get("blockDeviceMappings")) if node_class else 0
        est.add(f"Karpenter pool {name}", 0.0, nodepool_ceiling(pool.props.get("spec", {}), volume, book))

    nats = by_type.get("aws:ec2/natGateway:NatGateway", [])
    if nats:
        est.add(f"NAT gateways x{len(nats)}",
                len(nats) * book.nat_gateway_hour * hours + pricing.NAT_GB_PER_MONTH * book.nat_gateway_gb)
    interface = [e for e in by_type.get("aws:ec2/vpcEndpoint:VpcEndpoint", [])
                 if e.props.get("vpcEndpointType") == "Interface"]
    if interface:
        az_hours = sum(len(e.props.get("subnetIds") or []) for e in interface) * hours
        est.add(f"interface endpoints x{len(interface)}", az_hours * book.interface_endpoint_az_hour)
    logs = by_type.get("aws:cloudwatch/logGroup:LogGroup", [])
    if logs:
        est.add(f"log ingestion x{len(logs)}", len(logs) * pricing.LOG_GB_PER_MONTH * book.log_ingestion_gb)
    keys = by_type.get("aws:kms/key:Key", [])
    if keys:
        est.add(f"KMS keys x{len(keys)}", len(keys) * book.kms_key_month)
    volumes = sum(monitoring_volume_gib(r.props.get("values") or {}) for r in by_type.get(RELEASE, [])
                  if r.props.get("chart") == "kube-prometheus-stack")
    if volumes:
        est.add(f"monitoring volumes {volumes:,.0f} GiB", volumes * book.ebs_gp3_gb_month)
    secrets = by_type.get("aws:secretsmanager/secret:Secret", [])
    if secrets:
        copies = sum(1 + len(as_list(s.props.get("replicas"))) for s in secrets)
        est.add(f"Secrets Manager secrets x{copies}", copies * book.secret_month)
    return est


def nodepool_ceiling(spec: Mapping[str, Any], volume_gib: float, book: PriceBook) -> float:
    """The most a NodePool can cost in a month: its limits filled with its dearest instance type."""
    spot = "on-demand" not in (requirement_values(spec, "karpenter.sh/capacity-type") or ["on-demand"])
    worst = 0.0
    for name, nodes in nodes_within_limits(spec).items():
        if math.isinf(nodes):
            return math.inf
        if name not in book.instances:
            continue
        monthly = nodes * (book.hourly(name, spot) * pricing.HOURS_PER_MONTH + volume_gib * book.ebs_gp3_gb_month)
        worst = max(worst, monthly)
    return worst
