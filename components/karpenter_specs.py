"""Karpenter v1 custom resource specs as pure functions of a pool's config.

One builder per kind, one call per pool: GPU and CPU pools differ only in
the data they pass (taints, labels, limits), never in copied YAML. Tests
validate the output against the CRD schemas of the pinned Karpenter version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from catalog.discovery import KARPENTER_DISCOVERY_TAG
from catalog.node_launch import nodeclass_metadata_options, nodeclass_root_volume
from catalog.pools import NodePool
from catalog.scheduling import GPU_RESOURCE, cost_tags, pool_labels, pool_taints

NODEPOOL_API = "karpenter.sh/v1"
NODECLASS_API = "karpenter.k8s.aws/v1"
ZONE_ID_LABEL = "topology.k8s.aws/zone-id"  # a Karpenter (AWS) well-known label, v1


def ec2_node_class(pool_name: str, pool: NodePool, *, cluster_name: str, node_role: pulumi.Input[str],
                   ami_alias: str, tags: Mapping[str, str],
                   placement_group: pulumi.Input[str] | None = None) -> dict[str, Any]:
    """How the pool's nodes launch: pinned AL2023 AMI, private subnets, IMDSv2, encrypted gp3 root."""
    spec: dict[str, Any] = {
        "role": node_role,
        # The al2023 alias resolves the NVIDIA variant for GPU instance types by itself.
        "amiSelectorTerms": [{"alias": ami_alias}],
        "subnetSelectorTerms": [{"tags": {KARPENTER_DISCOVERY_TAG: cluster_name}}],
        "securityGroupSelectorTerms": [{"tags": {KARPENTER_DISCOVERY_TAG: cluster_name}}],
        "associatePublicIPAddress": False,
        "metadataOptions": nodeclass_metadata_options(),
        "blockDeviceMappings": [nodeclass_root_volume(pool.disk_size_gib)],
        "tags": {**tags, **cost_tags(pool)},
    }
    if placement_group is not None:
        spec["placementGroupSelector"] = {"name": placement_group}
    return {"apiVersion": NODECLASS_API, "kind": "EC2NodeClass", "metadata": {"name": pool_name}, "spec": spec}


def node_pool(pool_name: str, pool: NodePool) -> dict[str, Any]:
    """What the pool may launch, how much of it, and when Karpenter may take it away."""
    limits = pool.effective_limits
    requirements = [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": pool.types},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(pool.capacity_types)},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
    ]
    if pool.efa_zone_id:
        # By zone ID: zone names map to different physical zones in each account.
        requirements.append({"key": ZONE_ID_LABEL, "operator": "In", "values": [pool.efa_zone_id]})
    template_spec: dict[str, Any] = {
        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": pool_name},
        "requirements": requirements,
        "expireAfter": pool.disruption.expire_after,
        "terminationGracePeriod": pool.termination_grace_period,
    }
    taints = [t.as_k8s() for t in pool_taints(pool)]
    if taints:
        template_spec["taints"] = taints
    return {
        "apiVersion": NODEPOOL_API,
        "kind": "NodePool",
        "metadata": {"name": pool_name},
        "spec": {
            "template": {"metadata": {"labels": pool_labels(pool_name, pool)}, "spec": template_spec},
            "disruption": {
                "consolidationPolicy": pool.disruption.consolidation_policy,
                "consolidateAfter": pool.disruption.consolidate_after,
                "budgets": [b.model_dump(by_alias=True, exclude_none=True) for b in pool.disruption.budgets],
            },
            # Never unbounded: the ceiling of what this pool can cost.
            "limits": {"cpu": str(limits.cpu), "memory": f"{limits.memory_gib}Gi", GPU_RESOURCE: str(limits.gpus),
                       **({"nodes": str(limits.nodes)} if limits.nodes else {})},
        },
    }
