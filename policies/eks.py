"""EKS control-plane rules: secrets encryption, logs, endpoint access, version support, access entries."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

from pulumi_policy import Severity

from catalog.eks import LOG_TYPES, RELEASES
from policies.support import (
    ADVISORY,
    CLUSTER,
    OPEN,
    cis,
    eks_bp,
    resource_rule,
)


def _secrets_encryption(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    config = props.get("encryptionConfig") or {}
    if "secrets" not in (config.get("resources") or []) or not (config.get("provider") or {}).get("keyArn"):
        yield "Kubernetes secrets are not envelope-encrypted with a KMS key"


eks_secrets_encryption = resource_rule(
    "eks-secrets-encryption", "EKS encrypts Kubernetes secrets with a KMS key.", CLUSTER, _secrets_encryption,
    severity=Severity.HIGH, framework=cis("5.3.1", "Ensure Kubernetes Secrets are encrypted using CMKs managed in AWS KMS"),
    remediation="Set encryptionConfig {resources: [secrets], provider.keyArn: <rotating KMS key>}.")

eks_control_plane_logging = resource_rule(
    "eks-control-plane-logging", "EKS sends all five control-plane log types to CloudWatch.", CLUSTER,
    lambda p, c: ([f"control-plane logs missing: {', '.join(sorted(set(LOG_TYPES) - set(p.get('enabledClusterLogTypes') or [])))}"]
                  if set(LOG_TYPES) - set(p.get("enabledClusterLogTypes") or []) else []),
    severity=Severity.MEDIUM, framework=cis("2.1.1", "Enable audit Logs"),
    remediation="Set enabledClusterLogTypes to api, audit, authenticator, controllerManager, scheduler.")


def _endpoint(props: Mapping[str, Any], config: dict) -> Iterator[str]:
    vpc = props.get("vpcConfig") or {}
    public = vpc.get("endpointPublicAccess", True) is not False
    if public and config["requirePrivate"]:
        yield "the API endpoint is public; this stack requires a private endpoint only"
    if public and (not vpc.get("publicAccessCidrs") or OPEN & set(vpc.get("publicAccessCidrs") or [])):
        yield "the public API endpoint is open to the internet; list the CIDRs that need access"
    if vpc.get("endpointPrivateAccess") is not True:
        yield "the private endpoint is off; nodes would reach the API over the internet"


eks_endpoint_access = resource_rule(
    "eks-endpoint-access", "The EKS API endpoint is private, or public only to an allow-list.", CLUSTER, _endpoint,
    severity=Severity.HIGH,
    framework=cis("5.4.1", "Restrict Access to the Control Plane Endpoint"),
    remediation="Enable the private endpoint; empty cluster.publicAccessCidrs (prod) or restrict it to known CIDRs.",
    config={"requirePrivate": {"type": "boolean", "default": False}})


def _version(props: Mapping[str, Any], config: dict) -> Iterator[str]:
    version = props.get("version")
    release = RELEASES.get(version)
    today = date.fromisoformat(config["today"]) if config.get("today") else date.today()
    if release is None:
        yield f"EKS version {version} is not one this project supports ({', '.join(RELEASES)})"
    elif release.end_of_standard_support < today:
        yield (f"EKS {version} left standard support on {release.end_of_standard_support}; "
               f"extended support costs 6x per cluster-hour, upgrade")


eks_supported_version = resource_rule(
    "eks-supported-version", "The EKS version is in standard support.", CLUSTER, _version,
    severity=Severity.HIGH, framework=eks_bp("cluster-upgrades"),
    remediation="Upgrade cluster.version to a release listed in catalog/eks.py in standard support.",
    config={"today": {"type": ["string", "null"], "default": None,
                      "description": "Evaluate support as of this ISO date (default: today)."}})

eks_access_entries = resource_rule(
    "eks-access-entries", "EKS authenticates with access entries only (API mode).", CLUSTER,
    lambda p, c: ([] if (p.get("accessConfig") or {}).get("authenticationMode") == "API" else
                  [f"authenticationMode is {(p.get('accessConfig') or {}).get('authenticationMode')!r}; the aws-auth "
                   "ConfigMap is deprecated and unaudited, use API with access entries"]),
    severity=Severity.HIGH, framework=eks_bp("identity-and-access-management"),
    remediation="Set accessConfig.authenticationMode=API and grant access with aws.eks.AccessEntry.")

eks_no_creator_admin = resource_rule(
    "eks-no-implicit-creator-admin", "The cluster creator gets no invisible admin grant.", CLUSTER,
    lambda p, c: (["bootstrapClusterCreatorAdminPermissions is on: whoever ran `pulumi up` is an admin that no "
                   "access entry shows"] if (p.get("accessConfig") or {}).get(
        "bootstrapClusterCreatorAdminPermissions") is not False else []),
    severity=Severity.MEDIUM, level=ADVISORY, framework=eks_bp("identity-and-access-management"),
    remediation="Set bootstrapClusterCreatorAdminPermissions=false and list admins in cluster.adminPrincipals.")

no_aws_auth_configmap = resource_rule(
    "eks-no-aws-auth-configmap", "No aws-auth ConfigMap: access is by access entries.", "kubernetes:core/v1:ConfigMap",
    lambda p, c: (["the aws-auth ConfigMap is deprecated; grant access with access entries"]
                  if (p.get("metadata") or {}).get("name") == "aws-auth" else []),
    severity=Severity.MEDIUM, framework=eks_bp("identity-and-access-management"),
    remediation="Delete the ConfigMap and create aws.eks.AccessEntry resources instead.")


RULES = [
    eks_secrets_encryption, eks_control_plane_logging, eks_endpoint_access, eks_supported_version,
    eks_access_entries, eks_no_creator_admin, no_aws_auth_configmap,
]
