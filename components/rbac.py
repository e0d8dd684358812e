"""The platform's Kubernetes roles as pure data: least privilege, no wildcards, secrets by name.

Each team namespace gets the three roles below; people reach them through
EKS access entries that put their IAM principal in a team's Kubernetes
group, which a RoleBinding binds to the role in that namespace. Platform
admins are cluster admins through the EKS access policy (components/cluster.py),
never through a binding to cluster-admin.
"""

from __future__ import annotations

from collections.abc import Sequence

ROLE_PREFIX = "ml-platform:"
ACCESS_LABEL = "ml-platform/access"
READ = ["get", "list", "watch"]
WRITE = ["create", "update", "patch", "delete"]
# What ML work creates and inspects, by API group.
WORKLOADS = [("", ["pods", "services", "configmaps", "persistentvolumeclaims", "events", "serviceaccounts"]),
             ("apps", ["deployments", "replicasets", "statefulsets"]),
             ("batch", ["jobs", "cronjobs"]),
             ("autoscaling", ["horizontalpodautoscalers"]),
             ("policy", ["poddisruptionbudgets"])]


def role_name(access: str) -> str:
    return f"{ROLE_PREFIX}{access}"


def _rules(verbs: list[str], skip: Sequence[str] = ()) -> list[dict]:
    return [{"apiGroups": [group], "resources": [r for r in resources if r not in skip], "verbs": list(verbs)}
            for group, resources in WORKLOADS]


def role_rules(access: str, readable_secrets: Sequence[str] = ()) -> list[dict]:
    """Rules of `access` (read-only, engineer, admin) in one namespace."""
    read = [*_rules(READ), {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]
    if access == "read-only":
        return read  # no Secrets, no exec, no writes
    engineer = [*read, *_rules(WRITE, skip=("events", "serviceaccounts")),
                {"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["create"]}]
    if readable_secrets:
        engineer.append({"apiGroups": [""], "resources": ["secrets"], "resourceNames": list(readable_secrets),
                         "verbs": ["get"]})
    if access == "engineer":
        return engineer
    return [*engineer,
            {"apiGroups": [""], "resources": ["secrets"], "verbs": [*READ, *WRITE]},
            {"apiGroups": [""], "resources": ["pods/exec", "pods/attach"], "verbs": ["create"]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": READ},
            {"apiGroups": [""], "resources": ["resourcequotas", "limitranges"], "verbs": READ}]


def team_group(team: str) -> str:
    """The Kubernetes group a team's access entries carry (never a system: group)."""
    return f"{ROLE_PREFIX}team:{team}"
