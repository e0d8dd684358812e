"""RBAC and tenancy rules: no wildcards, no cluster-admin bindings, Secrets read narrowly, read-only means
read-only, every team namespace under a GPU quota (CIS Amazon EKS Benchmark v1.8 section 4.1)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import Severity

from catalog import namespaces
from policies.support import as_list, cis, eks_bp, exempt_namespaces, of_type, resource_rule, stack_rule

ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
BINDINGS = ["kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
            "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"]
ACCESS_LABEL = "ml-platform/access"
SECRET_READS = {"get", "list", "watch"}


def _rules(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in as_list(props.get("rules")) if isinstance(r, Mapping)]


def _name(props: Mapping[str, Any]) -> Any:
    return (props.get("metadata") or {}).get("name")


def _wildcards(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    for rule in _rules(props):
        for field in ("verbs", "resources", "apiGroups"):
            if "*" in as_list(rule.get(field)):
                yield f"role {_name(props)} grants '*' in {field}; list what the role needs"


rbac_no_wildcards = resource_rule(
    "k8s-rbac-no-wildcards", "Roles and ClusterRoles name their verbs, resources and API groups.",
    [ROLE, CLUSTER_ROLE], _wildcards, severity=Severity.HIGH,
    framework=cis("4.1.3", "Minimize wildcard use in Roles and ClusterRoles"),
    remediation="Replace '*' with the verbs, resources and API groups the role needs (components/rbac.py).",
    unset="n/a: judges the rules that are there.")


def _cluster_admin(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    if (props.get("roleRef") or {}).get("name") == "cluster-admin":
        yield (f"binding {_name(props)} grants cluster-admin; platform admins get it through the EKS cluster-admin "
               f"access policy (cluster.adminPrincipals)")


no_cluster_admin_binding = resource_rule(
    "k8s-no-cluster-admin-binding", "Nothing is bound to cluster-admin.", BINDINGS, _cluster_admin,
    severity=Severity.CRITICAL, framework=cis("4.1.1", "Ensure that the cluster-admin role is only used where required"),
    remediation="Bind a namespaced role instead, or add the principal to cluster.adminPrincipals (access entry).",
    unset="n/a: judges the bindings that are there.")


def _broad_secrets(args: Any, config: dict) -> Iterator[str]:
    # A Role is namespaced even with metadata.namespace left out (the provider's default namespace applies).
    props, cluster_wide = args.props, args.resource_type == CLUSTER_ROLE
    for rule in _rules(props):
        if "secrets" not in as_list(rule.get("resources")):
            continue
        reads = SECRET_READS & set(as_list(rule.get("verbs")))
        by_name = bool(as_list(rule.get("resourceNames")))
        if reads and cluster_wide:
            yield f"cluster role {_name(props)} reads Secrets in every namespace ({', '.join(sorted(reads))})"
        elif reads - {"get"} and not by_name and _name(props) not in config["exempt"]:
            yield (f"role {_name(props)} may {'/'.join(sorted(reads - {'get'}))} every Secret of its namespace; "
                   f"grant get on the Secrets it needs by resourceNames")


secrets_read_narrowly = resource_rule(
    "k8s-rbac-secrets-narrow", "Secrets are read by name; only namespace admins list them.", [ROLE, CLUSTER_ROLE],
    with_args=_broad_secrets, severity=Severity.HIGH, framework=cis("4.1.2", "Minimize access to secrets"),
    remediation="Grant get on secrets with resourceNames (tenancy readableSecrets); list/watch only for the roles "
                "in exempt.",
    config={"exempt": {"type": "array", "items": {"type": "string"}, "default": ["ml-platform:admin"],
                       "description": "Roles that may list and watch every Secret of their namespace."}},
    unset=("resourceNames unset: every Secret of the namespace (Kubernetes docs, RBAC, referring to resources): "
           "list or watch without names fails. A Role's namespace unset: still one namespace, the provider's."))

READ_ONLY_FORBIDDEN = {"secrets", "pods/exec", "pods/attach", "pods/portforward"}


def _read_only(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    if ((props.get("metadata") or {}).get("labels") or {}).get(ACCESS_LABEL) != "read-only":
        return
    for rule in _rules(props):
        forbidden = READ_ONLY_FORBIDDEN & set(as_list(rule.get("resources")))
        writes = set(as_list(rule.get("verbs"))) - {"get", "list", "watch"}
        if forbidden:
            yield f"read-only role {_name(props)} reaches {', '.join(sorted(forbidden))}"
        if writes:
            yield f"read-only role {_name(props)} may {', '.join(sorted(writes))}"


read_only_roles = resource_rule(
    "k8s-read-only-roles-read-only", "Read-only roles read: no Secrets, no exec/attach/port-forward, no writes.",
    [ROLE, CLUSTER_ROLE], _read_only, severity=Severity.HIGH,
    framework=cis("4.1.2", "Minimize access to secrets"),
    remediation="Keep get/list/watch on workload objects and pods/log; give exec and Secrets to the engineer or "
                "admin roles only.",
    unset="n/a: judges the rules of roles labelled read-only.")


def _gpu_quota(resources, config) -> Iterator[tuple[str, str | None]]:
    quotas = of_type(resources, "kubernetes:core/v1:ResourceQuota")
    for namespace in of_type(resources, "kubernetes:core/v1:Namespace"):
        name = _name(namespace.props)
        if name in config["exempt"]:
            continue
        lines = [q for q in quotas if (q.props.get("metadata") or {}).get("namespace") == name
                 and "requests.nvidia.com/gpu" in ((q.props.get("spec") or {}).get("hard") or {})]
        if not lines:
            yield (f"namespace {name} has no ResourceQuota with requests.nvidia.com/gpu: its pods could take every "
                   f"GPU of the cluster"), namespace.urn


namespace_gpu_quota = stack_rule(
    "k8s-namespace-gpu-quota", "Every team namespace has a ResourceQuota with a GPU line.", _gpu_quota,
    severity=Severity.HIGH, framework=eks_bp("cost-optimization"),
    remediation="Create the namespace through tenancy config (its quota has requests.nvidia.com/gpu), or exempt a "
                "system namespace in the pack config.",
    config={"exempt": exempt_namespaces([*namespaces.KUBERNETES, *namespaces.PLATFORM])},
    unset=("No ResourceQuota: the namespace may use any number of GPUs (Kubernetes docs, resource quotas): "
           "fails."))

RULES = [rbac_no_wildcards, no_cluster_admin_binding, secrets_read_narrowly, read_only_roles, namespace_gpu_quota]
