"""Workload node pools (cpu, A100 training, A10G inference) as the config asks for them.

Each pool names its provisioner. `managed` pools become EKS managed node groups
here; a Karpenter-provisioned pool is a NodePool custom resource, owned by the
Karpenter component, so this component only ever sees managed pools.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from catalog.pools import NodePool
from components.handles import ClusterHandle, PlatformContext
from components.node_group import ManagedNodeGroup, ManagedNodeGroupArgs


@dataclass(frozen=True)
class NodePoolsArgs:
    context: PlatformContext
    cluster: ClusterHandle
    pools: Mapping[str, NodePool]


class NodePools(pulumi.ComponentResource):
    """One managed node group per `managed` workload pool, keyed by pool name."""

    node_group_names: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: NodePoolsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ml-platform:node_pools:NodePools", name, None, opts)
        groups = {
            pool_name: ManagedNodeGroup(
                f"{name}-{pool_name}",
                ManagedNodeGroupArgs(
                    context=args.context,
                    cluster_name=args.cluster.name,
                    kubernetes_version=args.cluster.version,
                    node_role_arn=args.cluster.node_role_arn,
                    subnet_ids=args.cluster.private_subnet_ids,
                    pool_name=pool_name,
                    pool=pool,
                ),
                # Nodes join only once the cluster's networking addons exist.
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.cluster.node_prerequisites)),
            )
            for pool_name, pool in args.pools.items()
            if pool.provisioner == "managed"
        }
        self.node_group_names = pulumi.Output.all(
            **{pool_name: group.node_group_name for pool_name, group in groups.items()})
        self.register_outputs({"node_group_names": self.node_group_names})
