"""IAM rules: no wildcard admin, no unconditioned service wildcards, trust pinned to one service account."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import Severity

from policies.support import (
    as_list,
    eks_bp,
    resource_rule,
    statements,
)

POLICY_TYPES = ["aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy"]


def _allows(statement: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    if statement.get("Effect") != "Allow":
        return [], []
    return [str(a) for a in as_list(statement.get("Action"))], [str(r) for r in as_list(statement.get("Resource"))]


def _admin(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    for statement in statements(props.get("policy")):
        actions, resources = _allows(statement)
        if "*" in resources and any(a in ("*", "*:*") for a in actions):
            yield f"statement {statement.get('Sid', '')!r} allows every action on every resource"


iam_no_admin = resource_rule(
    "iam-no-wildcard-admin", "No IAM policy allows Action * on Resource *.", POLICY_TYPES, _admin,
    severity=Severity.CRITICAL, framework=eks_bp("identity-and-access-management"),
    remediation="List the actions the principal needs and scope Resource to the ARNs it uses.")


def _service_wildcards(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    for statement in statements(props.get("policy")):
        actions, resources = _allows(statement)
        broad = [a for a in actions if a.endswith(":*")]
        if broad and "*" in resources and not statement.get("Condition"):
            yield f"statement {statement.get('Sid', '')!r} allows {', '.join(broad)} on every resource"


iam_no_service_wildcards = resource_rule(
    "iam-no-service-wildcards", "No IAM policy allows service:* on every resource without a condition.",
    POLICY_TYPES, _service_wildcards, severity=Severity.HIGH, framework=eks_bp("identity-and-access-management"),
    remediation="Name the actions, or scope the resources or add a condition.")


def _trust(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    for statement in statements(props.get("assumeRolePolicy")):
        principal = statement.get("Principal") or {}
        services = as_list(principal.get("Service")) if isinstance(principal, Mapping) else []
        condition = statement.get("Condition") or {}
        equals = condition.get("StringEquals") or {}
        if "pods.eks.amazonaws.com" in services:
            pinned = equals.get("aws:RequestTag/kubernetes-service-account") and equals.get(
                "aws:RequestTag/kubernetes-namespace")
            if not pinned:
                yield "a Pod Identity trust policy does not pin kubernetes-namespace and kubernetes-service-account"
        if isinstance(principal, Mapping) and principal.get("Federated") and "oidc-provider" in str(principal.get("Federated")):
            subjects = [v for k, v in equals.items() if str(k).endswith(":sub")]
            if not subjects or any("*" in str(s) for s in subjects):
                yield "an IRSA trust policy does not pin one system:serviceaccount:<namespace>:<name> subject"


iam_trust_one_service_account = resource_rule(
    "iam-trust-one-service-account", "Roles for Kubernetes service accounts trust exactly one service account.",
    "aws:iam/role:Role", _trust, severity=Severity.HIGH,
    framework=eks_bp("identity-and-access-management#scope-the-iam-role-trust-policy-for-irsa-roles-to-the-service-account-name"),
    remediation="Condition the trust on aws:RequestTag/kubernetes-namespace and -service-account "
                "(Pod Identity) or on <issuer>:sub (IRSA).")


RULES = [
    iam_no_admin, iam_no_service_wildcards, iam_trust_one_service_account,
]
