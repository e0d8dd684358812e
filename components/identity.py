"""Workload identity through EKS Pod Identity: one role per service account, one way to build it.

The role trusts only `pods.eks.amazonaws.com` with the session tags of one
cluster, namespace and service account, so no other association can use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.handles import PlatformContext
from components.iam import managed_policy_arn, pod_identity_trust_policy


@dataclass(frozen=True)
class PodIdentityArgs:
    context: PlatformContext
    namespace: str
    service_account: str
    # Child resource name -> AWS managed policy name (`service-role/AmazonEBSCSIDriverPolicy`).
    managed_policies: Mapping[str, str] = field(default_factory=dict)
    # Child resource name -> inline policy document (JSON).
    inline_policies: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # The cluster to associate with; None where an EKS addon's podIdentityAssociations binds the role.
    associate_with: pulumi.Input[str] | None = None


@dataclass(frozen=True)
class WorkloadIdentity:
    role: aws.iam.Role
    # What the workload must wait for before it starts: its policies, and the association.
    grants: list[pulumi.Resource]


def pod_identity_role(name: str, args: PodIdentityArgs, parent: pulumi.Resource) -> WorkloadIdentity:
    """Role `name` for `namespace/service_account`, its policies, and (optionally) the association."""
    opts = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        name,
        assume_role_policy=pod_identity_trust_policy(args.context.cluster_name, args.namespace, args.service_account),
        opts=opts,
    )
    grants: list[pulumi.Resource] = [
        aws.iam.RolePolicyAttachment(child, role=role.name, policy_arn=managed_policy_arn(args.context.partition, policy),
                                     opts=opts)
        for child, policy in args.managed_policies.items()
    ]
    grants += [aws.iam.RolePolicy(child, role=role.id, policy=document, opts=opts)
               for child, document in args.inline_policies.items()]
    if args.associate_with is not None:
        grants.append(aws.eks.PodIdentityAssociation(
            name, cluster_name=args.associate_with, namespace=args.namespace,
            service_account=args.service_account, role_arn=role.arn, opts=opts))
    return WorkloadIdentity(role, grants)
