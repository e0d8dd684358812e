"""Where a component's Kubernetes objects go: a namespace on the cluster's provider, and pinned charts in it.

A namespace the platform owns gets its Pod Security level and default-deny
networking with its allow-list together, here, once: a default-deny
NetworkPolicy without its egress allow-list breaks every pod (no DNS, no API
server). `Scope` then installs pinned Helm charts and custom resources there
as children of the component, on the cluster's provider, so they wait for
the cluster to be ready without any `depends_on` of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from catalog import namespaces
from catalog.charts import Chart
from components.handles import ClusterHandle

# The EKS Pod Identity agent answers credential requests on this link-local address.
POD_IDENTITY_AGENT = "169.254.170.23/32"


MONITORING_NAMESPACE = namespaces.MONITORING


def in_namespace(name: str) -> dict:
    """A NetworkPolicy peer: every pod of namespace `name` (by the label Kubernetes sets on each namespace)."""
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


@dataclass(frozen=True)
class NamespaceArgs:
    name: str
    pod_security: str  # restricted | baseline | privileged
    aws_apis: bool = False  # pods call AWS APIs: Pod Identity agent + HTTPS out
    # Where that HTTPS may go: L3/L4 policies cannot allow by hostname, so the internet is 0.0.0.0/0.
    https_to: Sequence[str] = ("0.0.0.0/0",)
    scraped_ports: Sequence[int] = ()  # metrics ports Prometheus (in `monitoring`) scrapes here
    api_server_ingress_ports: Sequence[int] = ()  # webhook ports the API server calls here
    within: bool = False  # pods here talk to each other (Grafana to Prometheus, Alertmanager gossip)
    # Policy name -> egress rules beyond the defaults (Prometheus scraping other namespaces and nodes).
    egress: Mapping[str, Sequence[Mapping]] = field(default_factory=dict)
    # Namespace -> ports its pods may call here (KEDA querying Prometheus).
    ingress_from: Mapping[str, Sequence[int]] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Scope:
    """A namespace on the cluster, and the options every object a component puts there carries."""

    namespace: pulumi.Output[str]
    opts: pulumi.ResourceOptions  # parent (the component) and the cluster's Kubernetes provider

    def chart(self, resource_name: str, chart: Chart, values: Mapping[str, Any], *,
              depends_on: Sequence[pulumi.Resource] = (), skip_crds: bool = False) -> k8s.helm.v3.Release:
        """`chart` at its pinned version and repository, with `values`."""
        return k8s.helm.v3.Release(
            resource_name,
            name=chart.name,
            chart=f"{chart.repository}/{chart.name}" if chart.oci else chart.name,
            version=chart.version,
            repository_opts=None if chart.oci else {"repo": chart.repository},
            namespace=self.namespace,
            values=dict(values),
            skip_crds=skip_crds,
            # A failed upgrade leaves no half-installed objects behind.
            cleanup_on_fail=True,
            max_history=10,
            opts=self._after(depends_on),
        )

    def custom_resource(self, resource_name: str, manifest: Mapping[str, Any], *,
                        depends_on: Sequence[pulumi.Resource] = (),
                        delete_timeout: str | None = None) -> k8s.apiextensions.CustomResource:
        """A custom resource whose apiVersion/kind/metadata/spec come from a builder's manifest dict."""
        return k8s.apiextensions.CustomResource(
            resource_name, api_version=manifest["apiVersion"], kind=manifest["kind"],
            metadata=manifest["metadata"], spec=manifest["spec"], opts=self._after(depends_on, delete_timeout))

    def _after(self, depends_on: Sequence[pulumi.Resource], delete_timeout: str | None = None) -> pulumi.ResourceOptions:
        if not depends_on and delete_timeout is None:
            return self.opts
        timeouts = pulumi.CustomTimeouts(delete=delete_timeout) if delete_timeout else None
        return pulumi.ResourceOptions.merge(self.opts, pulumi.ResourceOptions(depends_on=list(depends_on),
                                                                              custom_timeouts=timeouts))


def existing_namespace(name: pulumi.Input[str], cluster: ClusterHandle, parent: pulumi.Resource) -> Scope:
    """A namespace that exists already (kube-system), or another component's (a team namespace's output, so
    objects put there wait for it)."""
    return Scope(pulumi.Output.from_input(name),
                 pulumi.ResourceOptions(parent=parent, provider=cluster.kubernetes_provider))


def platform_namespace(resource_name: str, args: NamespaceArgs, cluster: ClusterHandle,
                       parent: pulumi.Resource) -> Scope:
    """Create the namespace and its network policies; the scope of everything put in it."""
    opts = pulumi.ResourceOptions(parent=parent, provider=cluster.kubernetes_provider)
    namespace = k8s.core.v1.Namespace(
        resource_name,
        metadata={"name": args.name, "annotations": dict(args.annotations) or None, "labels": {
            **args.labels,
            **{f"pod-security.kubernetes.io/{mode}": args.pod_security for mode in ("enforce", "audit", "warn")}}},
        opts=opts,
    )
    for policy, spec in network_policies(args, cluster.api_server_cidrs).items():
        k8s.networking.v1.NetworkPolicy(
            f"{resource_name}-{policy}",
            metadata={"name": policy, "namespace": namespace.metadata.name},
            spec=spec,
            opts=opts,
        )
    return Scope(namespace.metadata.name, opts)


def network_policies(args: NamespaceArgs, api_server_cidrs: Sequence[str]) -> dict[str, dict]:
    """Policy name -> spec: deny all, then allow DNS, the API server and (optionally) AWS APIs."""
    everything = {"podSelector": {}}
    policies = {
        "default-deny": {**everything, "policyTypes": ["Ingress", "Egress"]},
        "allow-dns": {**everything, "policyTypes": ["Egress"], "egress": [{
            "to": [{**in_namespace("kube-system"), "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]},
        "allow-api-server": {**everything, "policyTypes": ["Egress"], "egress": [{
            "to": [{"ipBlock": {"cidr": cidr}} for cidr in api_server_cidrs],
            "ports": [{"protocol": "TCP", "port": 443}]}]},
    }
    if args.aws_apis:
        policies["allow-aws-apis"] = {**everything, "policyTypes": ["Egress"], "egress": [
            {"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}], "ports": [{"protocol": "TCP", "port": 80}]},
            {"to": [{"ipBlock": {"cidr": cidr}} for cidr in args.https_to],
             "ports": [{"protocol": "TCP", "port": 443}]}]}
    if args.api_server_ingress_ports:
        policies["allow-api-server-webhooks"] = {**everything, "policyTypes": ["Ingress"], "ingress": [{
            "from": [{"ipBlock": {"cidr": cidr}} for cidr in api_server_cidrs],
            "ports": [{"protocol": "TCP", "port": port} for port in args.api_server_ingress_ports]}]}
    if args.within:
        policies["allow-within-namespace"] = {**everything, "policyTypes": ["Ingress", "Egress"],
                                              "ingress": [{"from": [{"podSelector": {}}]}],
                                              "egress": [{"to": [{"podSelector": {}}]}]}
    for source, ports in args.ingress_from.items():
        policies[f"allow-from-{source}"] = {**everything, "policyTypes": ["Ingress"], "ingress": [{
            "from": [in_namespace(source)],
            "ports": [{"protocol": "TCP", "port": port} for port in ports]}]}
    for name, rules in args.egress.items():
        policies[name] = {**everything, "policyTypes": ["Egress"], "egress": [dict(r) for r in rules]}
    if args.scraped_ports:
        policies["allow-metrics-scrape"] = {**everything, "policyTypes": ["Ingress"], "ingress": [{
            "from": [in_namespace(MONITORING_NAMESPACE)],
            "ports": [{"protocol": "TCP", "port": port} for port in args.scraped_ports]}]}
    return policies
