"""Team namespaces: quotas with GPUs, container defaults, least-privilege roles, access entries, networking."""

from __future__ import annotations

import pytest

from components.rbac import role_rules
from infra.config import parse
from infra.config.stack_file import read_stack_config

TEAM_NAMESPACES = ["ml-training", "ml-inference", "ml-jobs"]


def _config(stack):
    return parse(read_stack_config(stack.stack), stack=stack.stack)


def _in(stack, type_, namespace):
    return [r for r in stack.of_type(type_) if r.inputs["metadata"].get("namespace") == namespace]


def test_team_namespaces_are_restricted_and_deny_by_default(stack):
    for name in TEAM_NAMESPACES:
        namespace = stack.named("kubernetes:core/v1:Namespace", f"tenancy-{name}")
        assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        policies = {p.inputs["metadata"]["name"]: p.inputs["spec"]
                    for p in _in(stack, "kubernetes:networking.k8s.io/v1:NetworkPolicy", name)}
        assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        agent, https = policies["allow-aws-apis"]["egress"]
        assert agent["to"] == [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "the Pod Identity agent"
        assert https["ports"] == [{"protocol": "TCP", "port": 443}]


def test_gpu_quotas_match_the_capacity_of_each_namespace_s_pools(stack):
    cfg = _config(stack)
    for name, namespace in cfg.tenancy.namespaces.items():
        (quota,) = _in(stack, "kubernetes:core/v1:ResourceQuota", name)
        hard = quota.inputs["spec"]["hard"]
        capacity = sum(p.effective_limits.gpus for p in cfg.pools_of(namespace.pool_roles).values())
        expected = capacity if namespace.quota.gpus is None else namespace.quota.gpus
        assert hard["requests.nvidia.com/gpu"] == str(expected), name
        assert {"requests.cpu", "requests.memory", "pods", "requests.storage"} <= set(hard)
    if stack.stack == "dev":
        (inference,) = _in(stack, "kubernetes:core/v1:ResourceQuota", "ml-inference")
        assert inference.inputs["spec"]["hard"]["requests.nvidia.com/gpu"] == "16", "4 g5 nodes x 1 GPU x 4 slices"


def test_containers_without_resources_get_defaults(stack):
    for name in TEAM_NAMESPACES:
        (limits,) = _in(stack, "kubernetes:core/v1:LimitRange", name)
        (container,) = limits.inputs["spec"]["limits"]
        assert container["type"] == "Container" and container["defaultRequest"] == {"cpu": "250m", "memory": "512Mi"}


def test_roles_have_no_wildcards_and_read_only_reads_no_secrets(stack):
    for role in stack.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role"):
        for rule in role.inputs["rules"]:
            assert "*" not in [*rule["verbs"], *rule["resources"], *rule["apiGroups"]], role.name
        if role.inputs["metadata"]["labels"]["ml-platform/access"] == "read-only":
            granted = {r for rule in role.inputs["rules"] for r in rule["resources"]}
            assert not granted & {"secrets", "pods/exec", "pods/attach"}, role.name
            assert {v for rule in role.inputs["rules"] for v in rule["verbs"]} == {"get", "list", "watch"}


def test_engineers_read_only_the_secrets_named_in_config():
    secrets = [r for r in role_rules("engineer", ["hub-token"]) if "secrets" in r["resources"]]
    assert secrets == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["hub-token"], "verbs": ["get"]}]
    assert not [r for r in role_rules("engineer") if "secrets" in r["resources"]]


def test_teams_reach_their_namespaces_through_access_entries_and_role_bindings(stack):
    cfg = _config(stack)
    entries = {e.inputs["principalArn"]: e for e in stack.of_type("aws:eks/accessEntry:AccessEntry")
               if e.name.startswith("tenancy-")}
    bindings = {(b.inputs["metadata"]["namespace"], b.inputs["subjects"][0]["name"]): b
                for b in stack.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")}
    assert cfg.tenancy.teams, "both stacks grant at least one team"
    for team_name, team in cfg.tenancy.teams.items():
        group = f"ml-platform:team:{team_name}"
        for arn in team.principals:
            assert entries[arn].inputs["kubernetesGroups"] == [group] and entries[arn].inputs["type"] == "STANDARD"
        for namespace, access in team.namespaces.items():
            binding = bindings[(namespace, group)]
            assert binding.inputs["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                 "name": f"ml-platform:{access}"}
            ns = stack.named("kubernetes:core/v1:Namespace", f"tenancy-{namespace}")
            assert ns.urn in binding.property_dependencies["metadata"], "the binding waits for its namespace"
    associations = [a for a in stack.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
                    if a.inputs["principalArn"] in entries]
    assert not associations, "team access is RBAC in their namespaces, no EKS access policy"


def test_workload_service_accounts_mount_no_token(stack):
    for name in TEAM_NAMESPACES:
        accounts = _in(stack, "kubernetes:core/v1:ServiceAccount", name)  # the namespace's, and model servers'
        assert accounts and all(a.inputs["automountServiceAccountToken"] is False for a in accounts)


def test_prometheus_may_scrape_the_dcgm_exporter_through_default_deny(stack):
    (scrape,) = [p for p in _in(stack, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "gpu")
                 if p.inputs["metadata"]["name"] == "allow-metrics-scrape"]
    (rule,) = scrape.inputs["spec"]["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 9400}]


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_tenancy_defaults_when_the_stack_file_names_no_namespaces(stack_name):
    cfg = parse(read_stack_config(stack_name), stack=stack_name)
    assert list(cfg.tenancy.namespaces) == TEAM_NAMESPACES
