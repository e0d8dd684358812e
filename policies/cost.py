"""Cost rules: what may be launched, how much of it, what it is tagged with, and the monthly budget."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import Severity
from pulumi_policy.proxy import UnknownValueError

from catalog.instances import INSTANCES
from catalog.prices import prices_for
from policies.cost_model import (
    estimate,
    gib,
    nodes_within_limits,
    physical_gpus,
    requirement_values,
    stack_region,
)
from policies.support import (
    ADVISORY,
    LAUNCH_TEMPLATE,
    NODE_GROUP,
    NODECLASS,
    NODEPOOL,
    eks_bp,
    num,
    of_type,
    resource_rule,
    settings,
    stack_rule,
)

REQUIRED_TAGS = ["environment", "project", "owner", "cost-center"]
# AWS resource types of this program that take tags (the others are attachments and configs).
TAGGABLE = {
    "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip", "aws:ec2/routeTable:RouteTable",
    "aws:ec2/securityGroup:SecurityGroup", "aws:ec2/vpcEndpoint:VpcEndpoint", "aws:ec2/flowLog:FlowLog",
    "aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/placementGroup:PlacementGroup",
    "aws:cloudwatch/logGroup:LogGroup", "aws:cloudwatch/eventRule:EventRule", "aws:iam/role:Role",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider", "aws:kms/key:Key", "aws:s3/bucket:Bucket",
    "aws:eks/cluster:Cluster", "aws:eks/nodeGroup:NodeGroup", "aws:eks/addon:Addon", "aws:eks/accessEntry:AccessEntry",
    "aws:eks/podIdentityAssociation:PodIdentityAssociation", "aws:sqs/queue:Queue",
}


# What EKS launches for a node group that names no instance type and no launch template (CreateNodegroup:
# "If you don't specify an instance type in a launch template or for instanceTypes, then t3.medium is used").
NODE_GROUP_DEFAULT_TYPE = "t3.medium"
INSTANCE_TYPE, INSTANCE_FAMILY = "node.kubernetes.io/instance-type", "karpenter.k8s.aws/instance-family"
# Said of a NodePool that names neither types nor families.
UNCONSTRAINED = (f"has no {INSTANCE_TYPE} or {INSTANCE_FAMILY} In requirement, so Karpenter may launch any instance "
                 "type its other requirements allow")


def instance_types(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Every instance type a node group or Karpenter NodePool may launch (by type or by family)."""
    if resource_type == NODE_GROUP:
        named = [str(t) for t in props.get("instanceTypes") or []]
        return named or ([] if props.get("launchTemplate") else [NODE_GROUP_DEFAULT_TYPE])
    spec = props.get("spec") or {}
    families = set(requirement_values(spec, INSTANCE_FAMILY))
    return requirement_values(spec, INSTANCE_TYPE) + sorted(t for t in INSTANCES if t.split(".")[0] in families)


def unconstrained(resource_type: str, props: Mapping[str, Any]) -> bool:
    """A NodePool that names neither types nor families: any instance type at all."""
    spec = props.get("spec") or {}
    return resource_type == NODEPOOL and not (requirement_values(spec, INSTANCE_TYPE)
                                              or requirement_values(spec, INSTANCE_FAMILY))


def _families(props, config, resource_type):
    if unconstrained(resource_type, props):
        yield (f"the NodePool {UNCONSTRAINED}, outside this stack's allowed "
               f"families ({', '.join(config['allowedFamilies'])}) too: set allowedFamilies in the pack config to "
               "change the list")
        return
    bad = [t for t in instance_types(resource_type, props) if t.split(".")[0] not in config["allowedFamilies"]]
    if bad:
        yield (f"{', '.join(bad)} not in this stack's allowed families ({', '.join(config['allowedFamilies'])}): "
               f"set allowedFamilies in the pack config to change the list")


def _typed(check):
    """Adapt a (props, config, resource_type) check to node groups and NodePools."""
    def by_shape(props: Mapping[str, Any], config: dict) -> Iterator[str]:
        yield from check(props, config, NODE_GROUP if "instanceTypes" in props or "scalingConfig" in props
                         else NODEPOOL)
    return by_shape


allowed_families = resource_rule(
    "cost-allowed-instance-families", "Pools launch only the instance families this stack allows.",
    [NODE_GROUP, NODEPOOL], _typed(_families), level=ADVISORY, severity=Severity.HIGH, framework=eks_bp("cost-optimization"),
    remediation="Use an allowed family, or add it to allowedFamilies in the stack's policy config.",
    config={"allowedFamilies": {"type": "array", "items": {"type": "string"},
                                "default": ["c6i", "c7i", "m6i", "p4d", "p4de", "g5", "g6"]}},
    unset=("instanceTypes unset on a node group: t3.medium (EKS API reference, CreateNodegroup). No type or "
           "family requirement on a NodePool: any type (Karpenter docs, NodePools). Each is judged as that."))


def _gpu_models(props, config, resource_type):
    if unconstrained(resource_type, props):
        yield (f"the NodePool {UNCONSTRAINED}, any GPU model included, not "
               f"only {', '.join(config['allowedGpuModels'])}: set allowedGpuModels in the pack config to change "
               "the list")
        return
    bad = [t for t in instance_types(resource_type, props)
           if t in INSTANCES and INSTANCES[t].gpu_model and INSTANCES[t].gpu_model not in config["allowedGpuModels"]]
    if bad:
        yield (f"{', '.join(bad)} carries a GPU model this stack does not allow "
               f"({', '.join(config['allowedGpuModels'])}): set allowedGpuModels in the pack config to change the list")


allowed_gpu_models = resource_rule(
    "cost-allowed-gpu-models", "Pools launch only GPU models this stack allows (no H100 in dev).",
    [NODE_GROUP, NODEPOOL], _typed(_gpu_models), level=ADVISORY, severity=Severity.HIGH, framework=eks_bp("cost-optimization"),
    remediation="Use an allowed GPU type, or allow the model in allowedGpuModels (prod only for H100).",
    config={"allowedGpuModels": {"type": "array", "items": {"type": "string"}, "default": ["A100", "A10G", "L4"]}},
    unset=("No type or family requirement on a NodePool: any GPU model (Karpenter docs, NodePools): advised "
           "against."))


def _limits(props, _):
    limits = (props.get("spec") or {}).get("limits") or {}
    missing = [k for k in ("cpu", "memory", "nvidia.com/gpu") if k not in limits]
    if missing:
        yield f"NodePool has no limit on {', '.join(missing)}: it could grow without bound"


nodepool_limits = resource_rule(
    "cost-nodepool-limits", "Every Karpenter NodePool limits cpu, memory and nvidia.com/gpu.", NODEPOOL, _limits,
    severity=Severity.HIGH, framework=eks_bp("karpenter#use-limits-to-bound-costs"),
    remediation="Set spec.limits (nodePools.<pool>.limits or maxSize in config).",
    unset=("spec.limits unset: none, the pool grows without bound (Karpenter docs, NodePools, spec.limits): "
           "fails."))


def _is_gpu(resource_type: str, props: Mapping[str, Any]) -> bool:
    return any(INSTANCES[t].gpus for t in instance_types(resource_type, props) if t in INSTANCES)


def _scale_to_zero(props, config, resource_type):
    if config["required"] and resource_type == NODE_GROUP and _is_gpu(resource_type, props):
        low = float((props.get("scalingConfig") or {}).get("minSize") or 0)
        if low > 0:
            yield f"a GPU node group keeps {low:.0f} nodes running when idle; this stack requires scale to zero"


gpu_scale_to_zero = resource_rule(
    "cost-gpu-scale-to-zero", "GPU pools scale to zero where the stack requires it (dev).", [NODE_GROUP, NODEPOOL],
    _typed(_scale_to_zero), severity=Severity.HIGH, framework=eks_bp("cost-optimization"),
    remediation="Make the pool provisioner: karpenter (it scales from zero).",
    config={"required": {"type": "boolean", "default": False}},
    unset="n/a: a node group's minSize is required by the EKS API, and a NodePool always scales to zero.")


def _spot(props, config, resource_type):
    if not (config["required"] and _is_gpu(resource_type, props)):
        return
    if resource_type == NODE_GROUP:
        spot = props.get("capacityType") == "SPOT"
    else:
        spot = "spot" in requirement_values(props.get("spec") or {}, "karpenter.sh/capacity-type")
    if not spot:
        yield "a GPU pool runs on-demand only; this stack requires spot where allowed"


gpu_spot = resource_rule(
    "cost-gpu-spot", "GPU pools use spot capacity where the stack requires it (dev).", [NODE_GROUP, NODEPOOL],
    _typed(_spot), severity=Severity.MEDIUM, framework=eks_bp("cost-optimization"),
    remediation="Set capacityTypes: [spot] (or [spot, on-demand]) on the pool.",
    config={"required": {"type": "boolean", "default": False}},
    unset=("capacityType unset: ON_DEMAND (EKS API reference, CreateNodegroup); no karpenter.sh/capacity-type "
           "requirement: on-demand (Karpenter docs, NodePools): fails where spot is required."))


def max_nodes(resource_type: str, props: Mapping[str, Any]) -> float:
    """Most nodes a pool may hold: maxSize, or what the NodePool limits admit of its smallest type."""
    if resource_type == NODE_GROUP:
        return float((props.get("scalingConfig") or {}).get("maxSize") or 0)
    return max(nodes_within_limits(props.get("spec") or {}).values(), default=math.inf)


def _pool_size(props, config, resource_type):
    nodes = max_nodes(resource_type, props)
    if nodes > config["maxNodes"]:
        yield (f"the pool may grow to {nodes:.0f} nodes; this stack allows {num(config['maxNodes'])} per pool "
               f"(maxNodes in the pack config)")


max_pool_size = resource_rule(
    "cost-max-pool-size", "No pool may grow past the stack's node cap.", [NODE_GROUP, NODEPOOL], _typed(_pool_size),
    level=ADVISORY, severity=Severity.MEDIUM, framework=eks_bp("cost-optimization"),
    remediation="Lower maxSize or limits, or raise maxNodes in the stack's policy config.",
    config={"maxNodes": {"type": "number", "default": 200}},
    unset=("spec.limits unset: unbounded (Karpenter docs, NodePools): fails. A node group's "
           "scalingConfig.maxSize is required by the EKS API."))


def _total_gpus(resources, config) -> Iterator[tuple[str, str | None]]:
    total = 0.0
    for pool in of_type(resources, NODEPOOL):
        spec = pool.props.get("spec") or {}
        if not unconstrained(NODEPOOL, pool.props):
            total += physical_gpus(spec)
            continue
        limit = (spec.get("limits") or {}).get("nvidia.com/gpu")
        if limit is None:
            yield (f"NodePool {pool.name} {UNCONSTRAINED}, GPU types included, and it has no nvidia.com/gpu "
                   "limit: the stack's GPU ceiling is unbounded", pool.urn)
        else:
            total += float(limit)
    for group in of_type(resources, NODE_GROUP):
        per_node = max((INSTANCES[t].gpus for t in instance_types(NODE_GROUP, group.props) if t in INSTANCES),
                       default=0)
        total += per_node * max_nodes(NODE_GROUP, group.props)
    if total > config["maxGpus"]:
        yield f"the stack may run {total:.0f} GPUs; its cap is {num(config['maxGpus'])} (maxGpus in the pack config)", None


max_gpus = stack_rule(
    "cost-max-gpus", "The stack's total GPU ceiling stays under its cap.", _total_gpus, level=ADVISORY, severity=Severity.HIGH,
    framework=eks_bp("cost-optimization"),
    remediation="Lower GPU pool limits or maxSize, or raise maxGpus in the stack's policy config.",
    config={"maxGpus": {"type": "number", "default": 64}},
    unset="No nvidia.com/gpu limit on a NodePool that may launch GPUs: unbounded: fails.")


def _volumes(props, config):
    mappings = props.get("blockDeviceMappings") or ((props.get("spec") or {}).get("blockDeviceMappings")) or []
    for mapping in mappings:
        size = gib((mapping.get("ebs") or {}).get("volumeSize") or 0)
        if size > config["maxGiB"]:
            yield (f"volume {mapping.get('deviceName')} is {size:.0f} GiB per node; the cap is "
                   f"{num(config['maxGiB'])} GiB (maxGiB in the pack config)")


ebs_volume_cap = resource_rule(
    "cost-ebs-volume-cap", "Node root volumes stay under the size cap.", [LAUNCH_TEMPLATE, NODECLASS], _volumes,
    level=ADVISORY, severity=Severity.LOW, framework=eks_bp("cost-optimization"),
    remediation="Lower diskSizeGiB; put datasets on shared storage (S3, FSx) instead of every node's disk.",
    config={"maxGiB": {"type": "number", "default": 2000}},
    unset="volumeSize unset: the AMI snapshot's size (EC2 user guide, block device mappings), small: passes.")


def _nat_count(resources, config) -> Iterator[tuple[str, str | None]]:
    count = len(of_type(resources, "aws:ec2/natGateway:NatGateway"))
    if config["maxNatGateways"] is not None and count > config["maxNatGateways"]:
        yield f"{count} NAT gateways (~$33/month each before data); this stack expects {num(config['maxNatGateways'])}", None


nat_gateway_count = stack_rule(
    "cost-nat-gateway-count", "NAT gateways stay within the stack's expected count (dev: one).", _nat_count,
    severity=Severity.LOW, level=ADVISORY, framework=eks_bp("cost-optimization"),
    remediation="Set network.natGateways: single for non-production stacks.",
    config={"maxNatGateways": {"type": ["number", "null"], "default": None}},
    unset="n/a: counts the NAT gateways there are.")


def _default_tags(provider: Any) -> Mapping[str, Any]:
    default = (provider.props.get("defaultTags") if provider is not None else None) or {}
    default = json.loads(default) if isinstance(default, str) else default
    return default.get("tags") or {}


def _missing(tags: Mapping[str, Any], required: list[str]) -> list[str]:
    return [key for key in required if not tags.get(key)]


TAG_CONFIG = {"requiredTags": {"type": "array", "items": {"type": "string"}, "default": REQUIRED_TAGS},
              "defaults": {"type": "object", "default": {},
                           "description": "Values remediation may fill in for missing tags."}}


def _missing_tags(args, config: dict) -> Iterator[str]:
    missing = _missing({**_default_tags(args.provider), **(args.props.get("tags") or {})}, config["requiredTags"])
    if missing:
        yield (f"missing cost-allocation tags {', '.join(missing)} (provider default tags included): set "
               f"requiredTags in the pack config to change the list")


def _fill_tags(args) -> Mapping[str, Any] | None:
    """Remediation: add missing tags whose values the pack config gives; nothing to guess otherwise.

    Tags unknown at preview or not a map cannot be completed: no remediation (the violation stands).
    """
    config = settings(args.get_config(), TAG_CONFIG)
    try:
        tags = args.props.get("tags") or {}
    except UnknownValueError:
        return None
    if not isinstance(tags, Mapping) or not isinstance(config["defaults"], Mapping):
        return None
    tags = dict(tags)
    have = {**_default_tags(args.provider), **tags}
    fill = {k: config["defaults"][k] for k in _missing(have, config["requiredTags"]) if k in config["defaults"]}
    if args.resource_type not in TAGGABLE or not fill:
        return None
    return {**args.props, "tags": {**tags, **fill}}


aws_required_tags = resource_rule(
    "aws-required-tags", "Every taggable AWS resource carries the cost-allocation tags.", sorted(TAGGABLE),
    with_args=_missing_tags, remediate=_fill_tags, severity=Severity.MEDIUM, level=ADVISORY,
    framework=eks_bp("cost-optimization"),
    remediation="Set ml-platform:tags (the provider's default tags) or the resource's tags; the pack fills in "
                "tags whose values its config's `defaults` gives.",
    config=TAG_CONFIG,
    unset=("tags unset: only the provider's defaultTags, if any (Pulumi aws provider docs, defaultTags): a "
           "finding of this organisation's list."))


def _node_tags(props, config):
    spec = props.get("spec") or {}
    tags = spec.get("tags") if "spec" in props else next(
        (s.get("tags") for s in props.get("tagSpecifications") or [] if s.get("resourceType") == "instance"), None)
    missing = _missing(tags or {}, config["requiredTags"])
    if missing:
        yield (f"nodes launched from this template miss cost-allocation tags {', '.join(missing)}: set requiredTags "
               f"in the pack config to change the list")


node_cost_tags = resource_rule(
    "cost-node-tags", "Nodes (launch templates, EC2NodeClasses) carry the cost-allocation tags themselves.",
    [LAUNCH_TEMPLATE, NODECLASS], _node_tags, level=ADVISORY, severity=Severity.MEDIUM, framework=eks_bp("cost-optimization"),
    remediation="Provider default tags stop at the template: set tagSpecifications (instance, volume) or "
                "EC2NodeClass spec.tags.",
    config={"requiredTags": TAG_CONFIG["requiredTags"]},
    unset=("tagSpecifications unset: instances carry only the tags EKS or Karpenter adds (EC2 user guide, tag "
           "resources on launch): advised."))


def _budget(resources, config) -> Iterator[tuple[str, str | None]]:
    budget = config["monthlyBudgetUsd"]
    if budget is None:
        return
    est = estimate(resources)
    if est.ceiling > budget:
        yield (f"monthly ceiling ${est.ceiling:,.0f} (baseline ${est.baseline:,.0f}) exceeds the budget "
               f"${budget:,.0f} (monthlyBudgetUsd in the pack config): {est.breakdown()}"), None


monthly_budget = stack_rule(
    "cost-monthly-budget", "The stack's monthly cost ceiling stays under its budget.", _budget,
    level=ADVISORY, severity=Severity.HIGH, framework=eks_bp("cost-optimization"),
    remediation="Lower pool maxSize/limits, or raise monthlyBudgetUsd in the stack's policy config with approval.",
    config={"monthlyBudgetUsd": {"type": ["number", "null"], "default": None}},
    unset="n/a: judges the estimate of what is there.")

def _region_priced(resources, _config) -> Iterator[tuple[str, str | None]]:
    book = prices_for(stack_region(resources))
    if book.fallback_for:
        yield (f"no prices are recorded for {book.fallback_for}: the estimate and the budget use {book.label}; "
               f"record them with `mlp prices {book.fallback_for}`"), None


region_priced = stack_rule(
    "cost-region-priced", "The cost estimate uses the stack region's own prices.", _region_priced,
    severity=Severity.LOW, level=ADVISORY, framework=eks_bp("cost-optimization"),
    remediation="Run `mlp prices <region>` (AWS Price List API) and commit catalog/price_records/<region>.json.",
    unset="n/a: judges the provider's region.")

eks_standard_support = resource_rule(
    "cost-eks-standard-support-only", "Clusters never slide into paid extended support.", "aws:eks/cluster:Cluster",
    lambda p, c: ([] if (p.get("upgradePolicy") or {}).get("supportType") == "STANDARD" else
                  ["upgradePolicy.supportType is not STANDARD: past standard support the cluster costs 6x per hour"]),
    severity=Severity.MEDIUM, framework=eks_bp("cluster-upgrades"),
    remediation="Set upgradePolicy.supportType=STANDARD and upgrade on schedule.",
    unset="upgradePolicy.supportType unset: EXTENDED (EKS API reference, UpgradePolicyRequest): fails.")

RULES = [
    allowed_families, allowed_gpu_models, nodepool_limits, gpu_scale_to_zero, gpu_spot, max_pool_size, max_gpus,
    ebs_volume_cap, nat_gateway_count, aws_required_tags, node_cost_tags, monthly_budget, region_priced,
    eks_standard_support,
]
