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
    remediation="Set encryptionConfig {resources: [secrets], provider.keyArn: <rotating KMS key>}.",
    unset=("encryptionConfig unset: EKS encrypts secrets with an AWS-owned key, not one you control or audit "
           "(EKS user guide, envelope encryption; CIS 5.3.1 asks for a CMK): fails."))

eks_control_plane_logging = resource_rule(
    "eks-control-plane-logging", "EKS sends all five control-plane log types to CloudWatch.", CLUSTER,
    lambda p, c: ([f"control-plane logs missing: {', '.join(sorted(set(LOG_TYPES) - set(p.get('enabledClusterLogTypes') or [])))}"]
                  if set(LOG_TYPES) - set(p.get("enabledClusterLogTypes") or []) else []),
    severity=Severity.MEDIUM, framework=cis("2.1.1", "Enable audit Logs"),
    remediation="Set enabledClusterLogTypes to api, audit, authenticator, controllerManager, scheduler.",
    unset=("enabledClusterLogTypes unset: no control-plane log is sent (EKS user guide, control plane logs): "
           "fails."))


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
    config={"requirePrivate": {"type": "boolean", "default": False}},
    unset=("vpcConfig fields unset: public endpoint on and open to 0.0.0.0/0, private endpoint off (EKS API "
           "reference, VpcConfigRequest): fails."))


def _version(props: Mapping[str, Any], config: dict) -> Iterator[str]:
    version = props.get("version")
    release = RELEASES.get(version)
    today = date.fromisoformat(config["today"]) if config.get("today") else date.today()
    if version is None:
        yield ("version is unset, so EKS creates the cluster on its default version of the day and nothing here "
               f"can tell when its support ends; pin one of {', '.join(RELEASES)}")
    elif release is None:
        yield f"EKS version {version} is not one this project supports ({', '.join(RELEASES)})"
    elif release.end_of_standard_support < today:
        yield (f"EKS {version} left standard support on {release.end_of_standard_support}; "
               f"extended support costs 6x per cluster-hour, upgrade")


eks_supported_version = resource_rule(
    "eks-supported-version", "The EKS version is in standard support.", CLUSTER, _version,
    severity=Severity.HIGH, framework=eks_bp("cluster-upgrades"),
    remediation="Upgrade cluster.version to a release listed in catalog/eks.py in standard support.",
    config={"today": {"type": ["string", "null"], "default": None,
                      "description": "Evaluate support as of this ISO date (default: today)."}},
    unset=("version unset: EKS creates the cluster on its default version of the day (EKS API reference, "
           "CreateCluster), supported then but named nowhere, so no one can tell when its support ends: fails, "
           "pin it."))

def _access_entries(mode: Any) -> Iterator[str]:
    if mode is None:
        # CreateCluster: "If you create a cluster by using the EKS API, AWS SDKs, or AWS CloudFormation, the
        # default is CONFIG_MAP" (EKS API reference, CreateAccessConfigRequest.authenticationMode).
        yield ("accessConfig.authenticationMode is unset, so EKS uses CONFIG_MAP: access comes from the aws-auth "
               "ConfigMap, which is deprecated and unaudited; use API with access entries")
    elif mode != "API":
        yield (f"authenticationMode is {mode!r}; the aws-auth ConfigMap is deprecated and unaudited, use API with "
               "access entries")


eks_access_entries = resource_rule(
    "eks-access-entries", "EKS authenticates with access entries only (API mode).", CLUSTER,
    lambda p, c: _access_entries((p.get("accessConfig") or {}).get("authenticationMode")),
    severity=Severity.HIGH, framework=eks_bp("identity-and-access-management"),
    remediation="Set accessConfig.authenticationMode=API and grant access with aws.eks.AccessEntry.",
    unset=("accessConfig.authenticationMode unset: CONFIG_MAP, the aws-auth ConfigMap (EKS API reference, "
           "CreateAccessConfigRequest): fails."))

eks_no_creator_admin = resource_rule(
    "eks-no-implicit-creator-admin", "The cluster creator gets no invisible admin grant.", CLUSTER,
    lambda p, c: (["bootstrapClusterCreatorAdminPermissions is on: whoever ran `pulumi up` is an admin that no "
                   "access entry shows"] if (p.get("accessConfig") or {}).get(
        "bootstrapClusterCreatorAdminPermissions") is not False else []),
    severity=Severity.MEDIUM, level=ADVISORY, framework=eks_bp("identity-and-access-management"),
    remediation="Set bootstrapClusterCreatorAdminPermissions=false and list admins in cluster.adminPrincipals.",
    unset=("bootstrapClusterCreatorAdminPermissions unset: true (EKS API reference, CreateAccessConfigRequest): "
           "fails."))

no_aws_auth_configmap = resource_rule(
    "eks-no-aws-auth-configmap", "No aws-auth ConfigMap: access is by access entries.",
    ["kubernetes:core/v1:ConfigMap", "kubernetes:core/v1:ConfigMapPatch"],
    lambda p, c: (["the aws-auth ConfigMap is deprecated; grant access with access entries"]
                  if (p.get("metadata") or {}).get("name") == "aws-auth" else []),
    severity=Severity.MEDIUM, framework=eks_bp("identity-and-access-management"),
    remediation="Delete the ConfigMap and create aws.eks.AccessEntry resources instead.",
    unset=("n/a: judges an aws-auth ConfigMap or ConfigMapPatch the stack writes; the one EKS writes for node "
           "groups is not in the stack."))


RULES = [
    eks_secrets_encryption, eks_control_plane_logging, eks_endpoint_access, eks_supported_version,
    eks_access_entries, eks_no_creator_admin, no_aws_auth_configmap,
]
