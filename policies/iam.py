"""IAM rules: no wildcard admin, no unconditioned service wildcards, trust pinned to one service account,
vpc-cni's policy on its own role rather than on the nodes'."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import Severity

from policies.support import (
    ADVISORY,
    as_list,
    depends_on,
    eks_bp,
    of_type,
    resource_rule,
    stack_rule,
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
    remediation="List the actions the principal needs and scope Resource to the ARNs it uses.",
    unset="n/a: judges the statements that are there; a policy without statements allows nothing.")


def _service_wildcards(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    for statement in statements(props.get("policy")):
        actions, resources = _allows(statement)
        broad = [a for a in actions if a.endswith(":*")]
        if broad and "*" in resources and not statement.get("Condition"):
            yield f"statement {statement.get('Sid', '')!r} allows {', '.join(broad)} on every resource"


iam_no_service_wildcards = resource_rule(
    "iam-no-service-wildcards", "No IAM policy allows service:* on every resource without a condition.",
    POLICY_TYPES, _service_wildcards, severity=Severity.HIGH, framework=eks_bp("identity-and-access-management"),
    remediation="Name the actions, or scope the resources or add a condition.",
    unset="n/a: judges the statements that are there; a Condition left out is the finding.")


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
                "(Pod Identity) or on <issuer>:sub (IRSA).",
    unset=("Condition unset on a Pod Identity or IRSA trust: any service account may assume the role (EKS user "
           "guide, Pod Identity and IRSA trust policies): fails."))


ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
CNI_POLICY = "AmazonEKS_CNI_Policy"


def _trusts_ec2(role: Any) -> bool:
    for statement in statements(role.props.get("assumeRolePolicy")):
        principal = statement.get("Principal") or {}
        if isinstance(principal, Mapping) and "ec2.amazonaws.com" in as_list(principal.get("Service")):
            return True
    return False


def _is_cni_policy(arn: Any) -> bool:
    return isinstance(arn, str) and arn.rsplit("/", 1)[-1] == CNI_POLICY


def _cni_on_nodes(resources, _config) -> Iterator[tuple[str, str | None]]:
    message = ("{name}: the node role carries AmazonEKS_CNI_Policy, so every pod that reaches the node's credentials "
               "may create, attach and delete the node's network interfaces; give it to vpc-cni's aws-node service "
               "account instead (the addon's podIdentityAssociations)")
    # Only the roles that hold the policy are read further: another role's trust may be unknown at a first
    # preview, and reading it would stop the whole check.
    roles = of_type(resources, ROLE)
    for role in roles:
        if any(_is_cni_policy(arn) for arn in as_list(role.props.get("managedPolicyArns"))) and _trusts_ec2(role):
            yield message.format(name=role.name), role.urn
    for attachment in of_type(resources, ATTACHMENT):
        if not _is_cni_policy(attachment.props.get("policyArn")):
            continue
        if (attachment.property_dependencies or {}).get("role"):
            # The role comes from a resource (known before its name is, at a first preview).
            holders = [role for role in roles if depends_on(attachment, "role", role)]
        else:  # the role is named by a literal string
            holders = [role for role in roles if role.props.get("name") == attachment.props.get("role")]
        for role in holders:
            if _trusts_ec2(role):
                yield message.format(name=role.name), attachment.urn


iam_cni_policy_not_on_nodes = stack_rule(
    "iam-cni-policy-not-on-node-role", "vpc-cni's AmazonEKS_CNI_Policy is on the aws-node service account's role, "
    "not the node role.", _cni_on_nodes, level=ADVISORY, severity=Severity.MEDIUM,
    framework=eks_bp("security#restrict-access-to-the-instance-profile"),
    remediation="Create a Pod Identity role for kube-system/aws-node with AmazonEKS_CNI_Policy, pass it in the "
                "vpc-cni addon's podIdentityAssociations, restart the aws-node DaemonSet, then detach the policy "
                "from the node role (docs/cluster.md).",
    unset=("n/a: judges the attachments that are there (EKS user guide, cni-iam-role: assign the CNI policy to a "
           "separate role)."))


RULES = [
    iam_no_admin, iam_no_service_wildcards, iam_trust_one_service_account, iam_cni_policy_not_on_nodes,
]
