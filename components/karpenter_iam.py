"""Karpenter controller IAM, as upstream ships it for v1.14, scoped to one cluster.

Transcribed from aws/karpenter-provider-aws v1.14.1,
website/content/en/preview/getting-started/getting-started-with-karpenter/cloudformation.yaml
(the same blob as the v1.13 and v1.14 docs): NodeLifecycle, IAMIntegration,
EKSIntegration, Interruption and ResourceDiscovery policies. The ZonalShift
policy is left out: it is only needed with `settings.enableZonalShift`.
Every write action is conditioned on the cluster's ownership tags.
"""

from __future__ import annotations

INTERRUPTION_QUEUE_ACTIONS = ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"]


def controller_policies(cluster: str, region: str, partition: str, account: str, node_role_arn: str,
                        queue_arn: str) -> dict[str, list[dict]]:
    """Policy name -> statements for the controller role."""
    ec2 = f"arn:{partition}:ec2:{region}"
    owned = {f"aws:ResourceTag/kubernetes.io/cluster/{cluster}": "owned"}
    request_owned = {f"aws:RequestTag/kubernetes.io/cluster/{cluster}": "owned",
                     "aws:RequestTag/eks:eks-cluster-name": cluster}
    nodepool = {"aws:ResourceTag/karpenter.sh/nodepool": "*"}
    created = [f"{ec2}:*:{kind}/*" for kind in ("fleet", "instance", "volume", "network-interface",
                                                 "launch-template", "spot-instances-request")]
    profiles = f"arn:{partition}:iam::{account}:instance-profile/*"
    region_tag = {"aws:ResourceTag/topology.kubernetes.io/region": region}
    return {
        "node-lifecycle": [
            {"Sid": "AllowScopedEC2InstanceAccessActions", "Effect": "Allow",
             "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
             "Resource": [f"{ec2}::image/*", f"{ec2}::snapshot/*", f"{ec2}:*:security-group/*",
                          f"{ec2}:*:subnet/*", f"{ec2}:*:capacity-reservation/*", f"{ec2}:*:placement-group/*"]},
            {"Sid": "AllowScopedEC2LaunchTemplateAccessActions", "Effect": "Allow",
             "Action": ["ec2:RunInstances", "ec2:CreateFleet"], "Resource": f"{ec2}:*:launch-template/*",
             "Condition": {"StringEquals": owned, "StringLike": nodepool}},
            {"Sid": "AllowScopedEC2InstanceActionsWithTags", "Effect": "Allow",
             "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"], "Resource": created,
             "Condition": {"StringEquals": request_owned,
                           "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
            {"Sid": "AllowScopedResourceCreationTagging", "Effect": "Allow", "Action": "ec2:CreateTags",
             "Resource": created,
             "Condition": {"StringEquals": {**request_owned,
                                            "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
                           "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
            {"Sid": "AllowScopedResourceTagging", "Effect": "Allow", "Action": "ec2:CreateTags",
             "Resource": f"{ec2}:*:instance/*",
             "Condition": {"StringEquals": owned, "StringLike": nodepool,
                           "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster},
                           "ForAllValues:StringEquals": {
                               "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]}}},
            {"Sid": "AllowScopedDeletion", "Effect": "Allow",
             "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
             "Resource": [f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"],
             "Condition": {"StringEquals": owned, "StringLike": nodepool}},
        ],
        "iam-integration": [
            {"Sid": "AllowPassingInstanceRole", "Effect": "Allow", "Action": "iam:PassRole",
             "Resource": node_role_arn,
             "Condition": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}}},
            {"Sid": "AllowScopedInstanceProfileCreationActions", "Effect": "Allow",
             "Action": ["iam:CreateInstanceProfile"], "Resource": profiles,
             "Condition": {"StringEquals": {**request_owned, "aws:RequestTag/topology.kubernetes.io/region": region},
                           "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
            {"Sid": "AllowScopedInstanceProfileTagActions", "Effect": "Allow",
             "Action": ["iam:TagInstanceProfile"], "Resource": profiles,
             "Condition": {"StringEquals": {**owned, **region_tag, **request_owned,
                                            "aws:RequestTag/topology.kubernetes.io/region": region},
                           "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                                          "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
            {"Sid": "AllowScopedInstanceProfileActions", "Effect": "Allow",
             "Action": ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile",
                        "iam:DeleteInstanceProfile"],
             "Resource": profiles,
             "Condition": {"StringEquals": {**owned, **region_tag},
                           "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
        ],
        "eks-integration": [
            {"Sid": "AllowAPIServerEndpointDiscovery", "Effect": "Allow", "Action": "eks:DescribeCluster",
             "Resource": f"arn:{partition}:eks:{region}:{account}:cluster/{cluster}"},
        ],
        "interruption": [
            {"Sid": "AllowInterruptionQueueActions", "Effect": "Allow", "Action": INTERRUPTION_QUEUE_ACTIONS,
             "Resource": queue_arn},
        ],
        "resource-discovery": [
            {"Sid": "AllowRegionalReadActions", "Effect": "Allow",
             "Action": ["ec2:DescribeCapacityReservations", "ec2:DescribeImages", "ec2:DescribeInstances",
                        "ec2:DescribeInstanceStatus", "ec2:DescribeInstanceTypeOfferings",
                        "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplates", "ec2:DescribePlacementGroups",
                        "ec2:DescribeSecurityGroups", "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets"],
             "Resource": "*", "Condition": {"StringEquals": {"aws:RequestedRegion": region}}},
            {"Sid": "AllowSSMReadActions", "Effect": "Allow", "Action": "ssm:GetParameter",
             "Resource": f"arn:{partition}:ssm:{region}::parameter/aws/service/*"},
            {"Sid": "AllowPricingReadActions", "Effect": "Allow", "Action": "pricing:GetProducts", "Resource": "*"},
            {"Sid": "AllowUnscopedInstanceProfileListAction", "Effect": "Allow", "Action": "iam:ListInstanceProfiles",
             "Resource": "*"},
            {"Sid": "AllowInstanceProfileReadActions", "Effect": "Allow", "Action": "iam:GetInstanceProfile",
             "Resource": profiles},
        ],
    }


def interruption_queue_policy(queue_arn: str) -> list[dict]:
    """EventBridge (and SQS) may send; nothing may talk to the queue over plain HTTP."""
    return [
        {"Effect": "Allow", "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
         "Action": "sqs:SendMessage", "Resource": queue_arn},
        {"Sid": "DenyHTTP", "Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": queue_arn,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]


# EventBridge rules whose events the controller handles (one parser each in
# pkg/controllers/interruption/messages/ upstream).
INTERRUPTION_EVENTS = {
    "scheduled-change": ("aws.health", "AWS Health Event"),
    "spot-interruption": ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    "rebalance": ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    "state-change": ("aws.ec2", "EC2 Instance State-change Notification"),
    "capacity-reservation-interruption": ("aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning"),
}
