"""IAM documents as pure functions: tested without the engine, reviewed as JSON in previews."""

from __future__ import annotations

import json
from collections.abc import Sequence


def partition_of(region: str) -> str:
    """The ARN partition of a region (`aws`, `aws-cn`, `aws-us-gov`)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def managed_policy_arn(partition: str, name: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{name}"


def service_trust_policy(service: str) -> str:
    """Trust policy letting one AWS service (`eks.amazonaws.com`, ...) assume the role."""
    return _document([{
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": ["sts:AssumeRole", "sts:TagSession"] if service == "eks.amazonaws.com" else "sts:AssumeRole",
    }])


def pod_identity_trust_policy(cluster: str, namespace: str, service_account: str) -> str:
    """Trust policy for EKS Pod Identity, pinned to one service account of one cluster.

    The association already binds the role to a service account; the session tags
    EKS Pod Identity sets make the role itself refuse any other association.
    """
    return _document([{
        "Effect": "Allow",
        "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {"StringEquals": {
            "aws:RequestTag/eks-cluster-name": cluster,
            "aws:RequestTag/kubernetes-namespace": namespace,
            "aws:RequestTag/kubernetes-service-account": service_account,
        }},
    }])


def irsa_trust_policy(oidc_provider_arn: str, namespace: str, service_account: str) -> str:
    """Trust policy for IAM Roles for Service Accounts, pinned to one service account (and the STS audience).

    Only for upstream components that document IRSA and not Pod Identity (Velero's AWS plugin).
    """
    issuer = oidc_provider_arn.split(":oidc-provider/", 1)[1]
    return _document([{
        "Effect": "Allow",
        "Principal": {"Federated": oidc_provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
            f"{issuer}:aud": "sts.amazonaws.com",
        }},
    }])


def account_key_policy(account_id: str, partition: str, extra: Sequence[dict] = ()) -> str:
    """A KMS key policy the account administers (so IAM policies decide who uses the key), plus `extra`."""
    return _document([{
        "Sid": "AccountAdministers",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }, *extra])


def policy_document(statements: list[dict]) -> str:
    return _document(statements)


def _document(statements: list[dict]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)
