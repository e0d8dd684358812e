"""Backups: every Velero Schedule expires its backups, and together the schedules cover every team namespace."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import Severity

from catalog import namespaces
from policies.support import as_list, eks_bp, exempt_namespaces, of_type, stack_rule

SCHEDULE = "kubernetes:velero.io/v1:Schedule"


def _covers(template: Mapping[str, Any], namespace: str) -> bool:
    included = [str(n) for n in as_list(template.get("includedNamespaces"))]
    excluded = [str(n) for n in as_list(template.get("excludedNamespaces"))]
    # Velero: no includedNamespaces means all; excludedNamespaceScopedResources ["*"] backs up none of them.
    if "*" in [str(r) for r in as_list(template.get("excludedNamespaceScopedResources"))]:
        return False
    return (not included or "*" in included or namespace in included) and namespace not in excluded


def _schedules(resources: Sequence[Any], config: dict) -> Iterator[tuple[str, str | None]]:
    schedules = of_type(resources, SCHEDULE)
    uses_velero = schedules or any(r.resource_type == "kubernetes:helm.sh/v3:Release" and r.props.get("chart") ==
                                   "velero" for r in resources)
    if not (uses_velero or config["required"]):
        return
    templates = []
    for schedule in schedules:
        name = (schedule.props.get("metadata") or {}).get("name")
        template = (schedule.props.get("spec") or {}).get("template") or {}
        ttl = str(template.get("ttl") or "")
        if not ttl or ttl.strip("0hms") == "":
            yield (f"Velero schedule {name} sets no ttl: its backups fall back to the server default (720h) "
                   f"silently; set spec.template.ttl"), schedule.urn
        templates.append(template)
    for namespace in of_type(resources, "kubernetes:core/v1:Namespace"):
        name = (namespace.props.get("metadata") or {}).get("name")
        if name in config["exempt"]:
            continue
        if not any(_covers(t, str(name)) for t in templates):
            yield (f"namespace {name} is in no Velero schedule: its objects and volumes are never backed up"), \
                namespace.urn


velero_schedules = stack_rule(
    "velero-schedule-coverage", "Velero Schedules set a TTL and together back up every team namespace.", _schedules,
    severity=Severity.HIGH, framework=eks_bp("reliability"),
    remediation="Add the namespace to a schedule in ml-platform:backup (or leave its namespaces unset: every team "
                "namespace), and give every schedule a ttl.",
    config={"exempt": exempt_namespaces([*namespaces.KUBERNETES, *namespaces.PLATFORM]),
            "required": {"type": "boolean", "default": False,
                         "description": "Judge stacks that install no Velero too (every namespace needs a schedule)."}},
    unset=("ttl unset: the server's --default-backup-ttl, 720h unless the server says otherwise, which the stack "
           "cannot see (Velero docs, backup reference): fails. includedNamespaces unset: every namespace, covers "
           "all."))

RULES = [velero_schedules]
