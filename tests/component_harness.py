"""Build one component with typed args under the mock engine the stacks use (infra/offline.record)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from catalog.pools import NodePool
from components.handles import ClusterHandle, PlatformContext
from infra import offline
from infra.offline import Recording

TAGS = {"environment": "test", "project": "ml-platform", "owner": "team", "cost-center": "cc"}


def context(region: str = "us-east-1") -> PlatformContext:
    return PlatformContext(cluster_name="ml-platform-test", region=region, partition="aws",
                           account_id=offline.ACCOUNT_ID, tags=TAGS, system_pool_name="system")


def cluster() -> ClusterHandle:
    """A ready cluster's handle, for components that run on one; call it inside the program."""
    return ClusterHandle(
        name=pulumi.Output.from_input("ml-platform-test"),
        version="1.35",
        security_group_id=pulumi.Output.from_input("sg-0123456789abcdef0"),
        oidc_provider_arn=pulumi.Output.from_input(f"arn:aws:iam::{offline.ACCOUNT_ID}:oidc-provider/test"),
        node_role_arn=pulumi.Output.from_input(f"arn:aws:iam::{offline.ACCOUNT_ID}:role/test-node"),
        private_subnet_ids=["subnet-a", "subnet-b"],
        api_server_cidrs=["10.0.0.0/16", "172.20.0.0/16"],
        kubernetes_provider=k8s.Provider("test-k8s", kubeconfig="{}"),
        node_prerequisites=[],
    )


def pool(**spec: Any) -> NodePool:
    return NodePool.model_validate(spec)


def build(program: Callable[[], Any], region: str = "us-east-1") -> Recording:
    """Run `program` (which constructs one component) and record every resource it creates."""
    return offline.record(program, "test", {"aws:region": region})
