"""Team namespaces and who may use them: quotas with GPUs, container defaults, roles, access entries.

Every team namespace is a platform namespace (Pod Security level, default-deny
networking with its allow-list) plus a ResourceQuota (GPUs included), a
LimitRange, the platform's three roles (components/rbac.py) and a workload
service account that mounts no token. Teams reach their namespaces through
EKS access entries: each principal's entry carries the team's Kubernetes
group, and a RoleBinding per namespace binds that group to the team's role.
No aws-auth ConfigMap, no binding to cluster-admin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from catalog.scheduling import GPU_RESOURCE
from components.handles import ClusterHandle, PlatformContext
from components.namespace import NamespaceArgs, platform_namespace
from components.rbac import ACCESS_LABEL, role_name, role_rules, team_group

ACCESS_ROLES = ("read-only", "engineer", "admin")
WORKLOAD_SERVICE_ACCOUNT = "workload"


@dataclass(frozen=True)
class TeamNamespaceSpec:
    name: str
    purpose: str
    pod_security: str
    # ResourceQuota `hard` values, rendered (requests.cpu, requests.memory, requests.nvidia.com/gpu, ...).
    quota: Mapping[str, str]
    # LimitRange container defaults: {"default": {...}, "defaultRequest": {...}}.
    container_defaults: Mapping[str, Mapping[str, str]]
    https_to: Sequence[str]
    readable_secrets: Sequence[str]


@dataclass(frozen=True)
class TeamSpec:
    name: str
    principals: Sequence[str]
    namespaces: Mapping[str, str]  # namespace -> read-only | engineer | admin


@dataclass(frozen=True)
class TenancyArgs:
    context: PlatformContext
    cluster: ClusterHandle
    namespaces: Sequence[TeamNamespaceSpec]
    teams: Sequence[TeamSpec]


def quota_hard(cpu: int, memory_gib: int, gpus: int, pods: int, storage_gib: int) -> dict[str, str]:
    """ResourceQuota hard limits; extended resources take only the `requests.` form."""
    return {"requests.cpu": str(cpu), "requests.memory": f"{memory_gib}Gi", f"requests.{GPU_RESOURCE}": str(gpus),
            "pods": str(pods), "requests.storage": f"{storage_gib}Gi"}


class Tenancy(pulumi.ComponentResource):
    """Team namespaces with quotas, limits, roles and network policy; team access through access entries."""

    namespaces: list[str]
    # Namespace name -> its output: objects put in a team namespace take it, and so wait for it.
    namespace_outputs: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: TenancyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ml-platform:tenancy:Tenancy", name, None, opts)
        created = {spec.name: self._namespace(name, spec, args.cluster) for spec in args.namespaces}
        for team in args.teams:
            self._team(name, team, args.cluster, created)
        self.namespaces = [spec.name for spec in args.namespaces]
        self.namespace_outputs = created
        self.register_outputs({"namespaces": self.namespaces})

    def _namespace(self, name: str, spec: TeamNamespaceSpec, cluster: ClusterHandle) -> pulumi.Output[str]:
        child = f"{name}-{spec.name}"
        scope = platform_namespace(
            child,
            NamespaceArgs(spec.name, spec.pod_security, aws_apis=True, https_to=spec.https_to,
                          labels={"ml-platform/tenancy": "team"}, annotations={"ml-platform/purpose": spec.purpose}),
            cluster, parent=self)
        in_namespace = {"namespace": scope.namespace}
        k8s.core.v1.ResourceQuota(f"{child}-quota", metadata={"name": "team-quota", **in_namespace},
                                  spec={"hard": dict(spec.quota)}, opts=scope.opts)
        k8s.core.v1.LimitRange(f"{child}-limits", metadata={"name": "container-defaults", **in_namespace},
                               spec={"limits": [{"type": "Container", **spec.container_defaults}]}, opts=scope.opts)
        # Workloads run as this account; it mounts no API token unless a workload asks for one.
        k8s.core.v1.ServiceAccount(f"{child}-workload", metadata={"name": WORKLOAD_SERVICE_ACCOUNT, **in_namespace},
                                   automount_service_account_token=False, opts=scope.opts)
        for access in ACCESS_ROLES:
            k8s.rbac.v1.Role(
                f"{child}-{access}",
                metadata={"name": role_name(access), "labels": {ACCESS_LABEL: access}, **in_namespace},
                rules=role_rules(access, spec.readable_secrets), opts=scope.opts)
        return scope.namespace

    def _team(self, name: str, team: TeamSpec, cluster: ClusterHandle,
              namespaces: Mapping[str, pulumi.Output[str]]) -> None:
        child = pulumi.ResourceOptions(parent=self)
        on_cluster = pulumi.ResourceOptions(parent=self, provider=cluster.kubernetes_provider)
        for arn in team.principals:
            principal = arn.rsplit("/", 1)[1]
            # STANDARD entry with the team's group and no access policy: RBAC decides, per namespace.
            aws.eks.AccessEntry(f"{name}-{team.name}-{principal}", cluster_name=cluster.name, principal_arn=arn,
                                type="STANDARD", kubernetes_groups=[team_group(team.name)], opts=child)
        for namespace, access in team.namespaces.items():
            k8s.rbac.v1.RoleBinding(
                f"{name}-{team.name}-{namespace}",
                # The namespace's output, so the binding waits for the namespace it lives in.
                metadata={"name": f"team-{team.name}", "namespace": namespaces[namespace]},
                role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name(access)},
                subjects=[{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": team_group(team.name)}],
                opts=on_cluster)
