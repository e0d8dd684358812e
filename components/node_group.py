"""One EKS managed node group with its launch template: the unit every managed pool is made of.

Managed pools are fixed-size (min <= desired <= max, set by config): no
autoscaler runs for them. Elastic capacity, scale-from-zero included, is
Karpenter's job (components/karpenter.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from catalog.node_launch import launch_template_metadata_options, launch_template_root_volume
from catalog.pools import NodePool
from catalog.scheduling import cost_tags, pool_labels, pool_taints
from components.handles import PlatformContext

# AL2023 is the current EKS AMI family; the NVIDIA variant carries the driver and
# container toolkit (the plain AMI has none, and the device plugin fails on it).
AMI_TYPES = {False: "AL2023_x86_64_STANDARD", True: "AL2023_x86_64_NVIDIA"}
CAPACITY_TYPES = {"on-demand": "ON_DEMAND", "spot": "SPOT"}  # config (Karpenter) spelling -> EKS API


@dataclass(frozen=True)
class ManagedNodeGroupArgs:
    context: PlatformContext
    cluster_name: pulumi.Input[str]
    kubernetes_version: str
    node_role_arn: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    pool_name: str
    pool: NodePool


class ManagedNodeGroup(pulumi.ComponentResource):
    """Launch template (IMDSv2, encrypted gp3 root, tags) + managed node group in private subnets."""

    node_group_name: pulumi.Output[str]
    launch_template_id: pulumi.Output[str]

    def __init__(self, name: str, args: ManagedNodeGroupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ml-platform:node_pools:ManagedNodeGroup", name, None, opts)
        pool = args.pool
        # Provider default_tags stop at the launch template: instances and volumes get them here.
        tags = {**args.context.tags, **cost_tags(args.pool), "Name": f"{args.pool_name}-node"}

        template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            description=f"{args.pool_name} nodes",
            metadata_options=launch_template_metadata_options(),
            block_device_mappings=[launch_template_root_volume(pool.disk_size_gib)],
            tag_specifications=[{"resource_type": kind, "tags": tags} for kind in ("instance", "volume")],
            update_default_version=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        group = aws.eks.NodeGroup(
            f"{name}",
            cluster_name=args.cluster_name,
            node_group_name_prefix=f"{args.pool_name}-",
            version=args.kubernetes_version,
            node_role_arn=args.node_role_arn,
            subnet_ids=args.subnet_ids,
            ami_type=AMI_TYPES[pool.gpu],
            capacity_type=CAPACITY_TYPES[pool.capacity_types[0]],
            instance_types=pool.types,
            scaling_config={"min_size": pool.min_size, "desired_size": pool.desired, "max_size": pool.max_size},
            update_config={"max_unavailable": 1},
            labels=pool_labels(args.pool_name, pool),
            taints=[{"key": t.key, "value": t.value, "effect": t.eks_effect} for t in pool_taints(pool)],
            launch_template={"id": template.id, "version": template.latest_version.apply(str)},
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.node_group_name = group.node_group_name
        self.launch_template_id = template.id
        self.register_outputs({"node_group_name": self.node_group_name,
                               "launch_template_id": self.launch_template_id})
