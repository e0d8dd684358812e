"""The IAM role EC2 nodes run as: one shape for managed node groups and Karpenter nodes."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import managed_policy_arn, service_trust_policy

# What a node needs: join the cluster, pull images, run the VPC CNI; SSM only on request.
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly", "AmazonEKS_CNI_Policy")
SSM_POLICY = "AmazonSSMManagedInstanceCore"


@dataclass(frozen=True)
class NodeRole:
    role: aws.iam.Role
    attachments: list[aws.iam.RolePolicyAttachment]


def node_role(name: str, partition: str, ssm: bool, parent: pulumi.Resource) -> NodeRole:
    """Role `name` trusted by EC2 with the node policies attached (children of `parent`)."""
    opts = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(name, assume_role_policy=service_trust_policy("ec2.amazonaws.com"), opts=opts)
    policies = [*NODE_POLICIES, *((SSM_POLICY,) if ssm else ())]
    attachments = [
        aws.iam.RolePolicyAttachment(f"{name}-{policy}", role=role.name,
                                     policy_arn=managed_policy_arn(partition, policy), opts=opts)
        for policy in policies
    ]
    return NodeRole(role, attachments)
