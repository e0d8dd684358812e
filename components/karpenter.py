"""Karpenter: nodes appear when pods ask for them and go when they are idle.

The controller runs on the managed system pool (never on nodes it manages),
reaches AWS through EKS Pod Identity, and hears about spot interruptions,
rebalance recommendations, state changes and scheduled maintenance through an
SQS queue fed by EventBridge. Each Karpenter pool in config becomes an
EC2NodeClass (how nodes launch) and a NodePool (what, how much, and when they
may be disrupted).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.charts import KARPENTER, KARPENTER_CRD
from components.cluster import ClusterHandle
from components.iam import pod_identity_trust_policy, policy_document
from components.karpenter_iam import INTERRUPTION_EVENTS, controller_policies, interruption_queue_policy
from components.karpenter_specs import DISCOVERY_TAG, ec2_node_class, node_pool
from components.manifests import custom_resource
from components.node_role import node_role
from components.scheduling import CRITICAL_ADDONS_TOLERATION, POOL_LABEL
from infra.config import Karpenter as KarpenterSettings
from infra.config import NodePool

NAMESPACE = "kube-system"  # where upstream installs it; Pod Identity binds this service account
SERVICE_ACCOUNT = "karpenter"
# Upstream's getting-started sizing for the controller.
CONTROLLER_RESOURCES = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
QUEUE_RETENTION_SECONDS = 300  # interruption events are stale after five minutes (upstream value)


@dataclass(frozen=True)
class KarpenterArgs:
    cluster: ClusterHandle
    cluster_name: str
    region: str
    partition: str
    account_id: pulumi.Input[str]
    settings: KarpenterSettings
    pools: Mapping[str, NodePool]
    system_pool_name: str
    availability_zones: Sequence[str]
    node_ssm_access: bool
    tags: Mapping[str, str]


def helm_values(cluster_name: str, queue_name: pulumi.Input[str], replicas: int, system_pool: str) -> dict:
    """Chart values: the queue *name* (not its ARN or URL) is what settings.interruptionQueue takes."""
    return {
        "settings": {"clusterName": cluster_name, "interruptionQueue": queue_name},
        "serviceAccount": {"name": SERVICE_ACCOUNT},
        "replicas": replicas,
        "nodeSelector": {POOL_LABEL: system_pool},
        "tolerations": [CRITICAL_ADDONS_TOLERATION],
        "controller": {"resources": CONTROLLER_RESOURCES},
    }


class Karpenter(pulumi.ComponentResource):
    """Controller IAM, interruption queue, Helm releases, and an EC2NodeClass + NodePool per pool."""

    queue_name: pulumi.Output[str]
    controller_role_arn: pulumi.Output[str]
    node_role_name: pulumi.Output[str]

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ml-platform:karpenter:Karpenter", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster = args.cluster

        nodes = node_role(f"{name}-node", args.partition, args.node_ssm_access, parent=self)
        node_access = aws.eks.AccessEntry(
            f"{name}-node", cluster_name=cluster.name, principal_arn=nodes.role.arn, type="EC2_LINUX", opts=child
        )
        # Karpenter finds the cluster security group by the discovery tag, as it finds subnets.
        aws.ec2.Tag(f"{name}-security-group-discovery", resource_id=cluster.security_group_id,
                    key=DISCOVERY_TAG, value=args.cluster_name, opts=child)

        queue = aws.sqs.Queue(
            f"{name}-interruption",
            name=args.cluster_name,
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-interruption",
            queue_url=queue.url,
            policy=queue.arn.apply(lambda arn: policy_document(interruption_queue_policy(arn))),
            opts=child,
        )
        for rule_name, (source, detail_type) in INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{rule_name}",
                description=f"{detail_type} -> Karpenter interruption queue",
                event_pattern=json.dumps({"source": [source], "detail-type": [detail_type]}),
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{rule_name}", rule=rule.name, arn=queue.arn, target_id="KarpenterInterruptionQueueTarget",
                opts=child,
            )

        controller = aws.iam.Role(
            f"{name}-controller",
            assume_role_policy=pod_identity_trust_policy(args.cluster_name, NAMESPACE, SERVICE_ACCOUNT),
            opts=child,
        )
        documents = pulumi.Output.all(args.account_id, nodes.role.arn, queue.arn).apply(
            lambda v: controller_policies(args.cluster_name, args.region, args.partition, v[0], v[1], v[2]))
        policies = [
            aws.iam.RolePolicy(
                f"{name}-controller-{policy}",
                role=controller.id,
                policy=documents.apply(lambda docs, p=policy: policy_document(docs[p])),
                opts=child,
            )
            for policy in ("node-lifecycle", "iam-integration", "eks-integration", "interruption",
                           "resource-discovery")
        ]
        identity = aws.eks.PodIdentityAssociation(
            f"{name}-controller",
            cluster_name=cluster.name,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            role_arn=controller.arn,
            opts=child,
        )

        on_cluster = pulumi.ResourceOptions(parent=self, provider=cluster.kubernetes_provider)
        crds = KARPENTER_CRD.release(f"{name}-crd", NAMESPACE, {}, on_cluster)
        release = KARPENTER.release(
            f"{name}",
            NAMESPACE,
            helm_values(args.cluster_name, queue.name, args.settings.replicas, args.system_pool_name),
            # The controller starts only once it can read its queue and launch nodes as its role.
            pulumi.ResourceOptions(parent=self, provider=cluster.kubernetes_provider,
                                   depends_on=[crds, identity, *policies, node_access]),
            skip_crds=True,
        )

        for pool_name, pool in args.pools.items():
            placement = None
            if pool.efa:
                # EFA jobs need their nodes on one network spine: a cluster placement group in one AZ.
                placement = aws.ec2.PlacementGroup(f"{name}-{pool_name}", strategy="cluster", opts=child).name
            after_controller = pulumi.ResourceOptions(parent=self, provider=cluster.kubernetes_provider,
                                                      depends_on=[release])
            node_class = ec2_node_class(pool_name, pool, cluster_name=args.cluster_name, node_role=nodes.role.name,
                                        ami_alias=args.settings.ami_alias, tags=args.tags, placement_group=placement)
            custom_resource(f"{name}-{pool_name}-class", node_class, after_controller)
            zones = list(args.availability_zones[:1]) if pool.efa else None
            custom_resource(f"{name}-{pool_name}", node_pool(pool_name, pool, zones), after_controller)

        self.queue_name = queue.name
        self.controller_role_arn = controller.arn
        self.node_role_name = nodes.role.name
        self.register_outputs({"queue_name": self.queue_name, "controller_role_arn": self.controller_role_arn,
                               "node_role_name": self.node_role_name})
