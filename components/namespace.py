"""A namespace the platform owns: Pod Security level plus default-deny networking with its allow-list.

A default-deny NetworkPolicy without its egress allow-list breaks every pod
(no DNS, no API server), so the two are created together, here, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

# The EKS Pod Identity agent answers credential requests on this link-local address.
POD_IDENTITY_AGENT = "169.254.170.23/32"


@dataclass(frozen=True)
class NamespaceArgs:
    name: str
    pod_security: str  # restricted | baseline | privileged
    api_server_cidrs: Sequence[str]  # where the API server's endpoints live (VPC, service CIDR)
    aws_apis: bool = False  # pods call AWS APIs: Pod Identity agent + HTTPS out


def network_policies(args: NamespaceArgs) -> dict[str, dict]:
    """Policy name -> spec: deny all, then allow DNS, the API server and (optionally) AWS APIs."""
    everything = {"podSelector": {}}
    policies = {
        "default-deny": {**everything, "policyTypes": ["Ingress", "Egress"]},
        "allow-dns": {**everything, "policyTypes": ["Egress"], "egress": [{
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]},
        "allow-api-server": {**everything, "policyTypes": ["Egress"], "egress": [{
            "to": [{"ipBlock": {"cidr": cidr}} for cidr in args.api_server_cidrs],
            "ports": [{"protocol": "TCP", "port": 443}]}]},
    }
    if args.aws_apis:
        policies["allow-aws-apis"] = {**everything, "policyTypes": ["Egress"], "egress": [
            {"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}], "ports": [{"protocol": "TCP", "port": 80}]},
            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]}]}
    return policies


def platform_namespace(resource_name: str, args: NamespaceArgs, opts: pulumi.ResourceOptions) -> k8s.core.v1.Namespace:
    """The namespace and its network policies, all under `opts` (parent and provider)."""
    namespace = k8s.core.v1.Namespace(
        resource_name,
        metadata={"name": args.name, "labels": {
            f"pod-security.kubernetes.io/{mode}": args.pod_security for mode in ("enforce", "audit", "warn")}},
        opts=opts,
    )
    for policy, spec in network_policies(args).items():
        k8s.networking.v1.NetworkPolicy(
            f"{resource_name}-{policy}",
            metadata={"name": policy, "namespace": namespace.metadata.name},
            spec=spec,
            opts=opts,
        )
    return namespace
