"""What every component takes besides its own slice of config: the platform context and the cluster handle.

Both are frozen records of plain values and outputs, so importing them loads
no component: a new component's Args are `context + cluster + its own slice`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class PlatformContext:
    """Facts of the stack every component may need, each said once."""

    cluster_name: str
    region: str
    partition: str  # aws, aws-cn, aws-us-gov
    account_id: pulumi.Input[str]
    # The stack's default tags; the AWS provider puts them on resources, launchers need them spelt out.
    tags: Mapping[str, str]
    system_pool_name: str  # the managed pool controllers run on


@dataclass(frozen=True)
class ClusterHandle:
    """The narrow, ready view of the cluster that components running on it take."""

    name: pulumi.Output[str]
    version: str
    security_group_id: pulumi.Output[str]
    # IRSA, for upstream components that document no Pod Identity (Velero's AWS plugin).
    oidc_provider_arn: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    # Where pods reach the API server: its ENIs in the VPC, and the `kubernetes` Service IP.
    api_server_cidrs: Sequence[str]
    # Depends on the admin grants and every core addon: Kubernetes objects made with it wait for both.
    kubernetes_provider: k8s.Provider
    # Resources a node group must wait for (networking addons, node role policies).
    node_prerequisites: Sequence[pulumi.Resource]
