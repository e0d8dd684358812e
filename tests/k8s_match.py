"""Tiny Kubernetes scheduling semantics for tests: does a toleration tolerate a taint, does a selector match."""

from __future__ import annotations


def tolerates(toleration: dict, taint: dict) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint["effect"]:
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return toleration.get("key") in (None, taint["key"])
    return toleration.get("key") == taint["key"] and toleration.get("value") == taint.get("value")


def affinity_matches(affinity: dict, labels: dict[str, str]) -> bool:
    """requiredDuringScheduling node affinity: any term whose every In-expression matches."""
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    return any(all(e["operator"] == "In" and labels.get(e["key"]) in e["values"] for e in term["matchExpressions"])
               for term in terms)


def selector_matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())
