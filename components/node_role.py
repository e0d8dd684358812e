"""The IAM role EC2 nodes run as: one shape for managed node groups and Karpenter nodes."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import managed_policy_arn, service_trust_policy

# What a node needs: join the cluster and pull images.
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")
SSM_POLICY = "AmazonSSMManagedInstanceCore"
# vpc-cni's permissions live on its own Pod Identity role (cluster.py): on the node role, every pod that
# reaches the node's credentials could rewrite the node's network interfaces.
CNI_POLICY = "AmazonEKS_CNI_Policy"


@dataclass(frozen=True)
class NodeRolePolicies:
    # AmazonSSMManagedInstanceCore: shell access through Session Manager, without SSH.
    ssm: bool = False
    # Transition only: keep the CNI policy while an existing cluster's aws-node pods restart onto
    # their Pod Identity role (cluster.cniPolicyOnNodeRole, docs/cluster.md).
    cni: bool = False


@dataclass(frozen=True)
class NodeRole:
    role: aws.iam.Role
    attachments: list[aws.iam.RolePolicyAttachment]


def node_role(name: str, partition: str, policies: NodeRolePolicies, parent: pulumi.Resource) -> NodeRole:
    """Role `name` trusted by EC2 with the node policies attached (children of `parent`)."""
    opts = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(name, assume_role_policy=service_trust_policy("ec2.amazonaws.com"), opts=opts)
    attached = [*NODE_POLICIES, *((SSM_POLICY,) if policies.ssm else ()), *((CNI_POLICY,) if policies.cni else ())]
    attachments = [
        aws.iam.RolePolicyAttachment(f"{name}-{policy}", role=role.name,
                                     policy_arn=managed_policy_arn(partition, policy), opts=opts)
        for policy in attached
    ]
    return NodeRole(role, attachments)
