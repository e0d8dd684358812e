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
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from catalog import footprints
from catalog.charts import KARPENTER, KARPENTER_CRD
from catalog.discovery import KARPENTER_DISCOVERY_TAG
from catalog.pools import NodePool
from catalog.scheduling import on_system_pool
from components.handles import ClusterHandle, PlatformContext
from components.iam import policy_document
from components.identity import PodIdentityArgs, pod_identity_role
from components.karpenter_iam import INTERRUPTION_EVENTS, controller_policies, interruption_queue_policy
from components.karpenter_specs import ec2_node_class, node_pool
from components.namespace import existing_namespace
from components.node_role import NodeRolePolicies, node_role

NAMESPACE = "kube-system"  # where upstream installs it; Pod Identity binds this service account
SERVICE_ACCOUNT = "karpenter"
# Upstream's getting-started sizing for the controller.
CONTROLLER_RESOURCES = footprints.KARPENTER_CONTROLLER.resources()
# Beyond a pool's terminationGracePeriod: instance termination and the finalizers after the drain.
DELETE_MARGIN_SECONDS = 15 * 60
QUEUE_RETENTION_SECONDS = 300  # interruption events are stale after five minutes (upstream value)


@dataclass(frozen=True)
class KarpenterArgs:
    context: PlatformContext
    cluster: ClusterHandle
    replicas: int
    ami_alias: str  # a dated al2023@vYYYYMMDD
    pools: Mapping[str, NodePool]  # the Karpenter pools
    node_policies: NodeRolePolicies


def helm_values(cluster_name: str, queue_name: pulumi.Input[str], replicas: int, system_pool: str) -> dict:
    """Chart values: the queue *name* (not its ARN or URL) is what settings.interruptionQueue takes."""
    return {
        "settings": {"clusterName": cluster_name, "interruptionQueue": queue_name},
        "serviceAccount": {"name": SERVICE_ACCOUNT},
        "replicas": replicas,
        **on_system_pool(system_pool),
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
        cluster, context = args.cluster, args.context

        nodes = node_role(f"{name}-node", context.partition, args.node_policies, parent=self)
        node_access = aws.eks.AccessEntry(
            f"{name}-node", cluster_name=cluster.name, principal_arn=nodes.role.arn, type="EC2_LINUX", opts=child
        )
        # Karpenter finds the cluster security group by the discovery tag, as it finds subnets.
        aws.ec2.Tag(f"{name}-security-group-discovery", resource_id=cluster.security_group_id,
                    key=KARPENTER_DISCOVERY_TAG, value=context.cluster_name, opts=child)

        queue = aws.sqs.Queue(
            f"{name}-interruption",
            name=context.cluster_name,
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

        documents = pulumi.Output.all(context.account_id, nodes.role.arn, queue.arn).apply(
            lambda v: controller_policies(context.cluster_name, context.region, context.partition, v[0], v[1], v[2]))
        controller = pod_identity_role(
            f"{name}-controller",
            PodIdentityArgs(
                context=context, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT,
                inline_policies={
                    f"{name}-controller-{policy}": documents.apply(lambda docs, p=policy: policy_document(docs[p]))
                    for policy in ("node-lifecycle", "iam-integration", "eks-integration", "interruption",
                                   "resource-discovery")},
                associate_with=cluster.name,
            ),
            parent=self,
        )

        kube_system = existing_namespace(NAMESPACE, cluster, parent=self)
        crds = kube_system.chart(f"{name}-crd", KARPENTER_CRD, {})
        release = kube_system.chart(
            f"{name}",
            KARPENTER,
            helm_values(context.cluster_name, queue.name, args.replicas, context.system_pool_name),
            # The controller starts only once it can read its queue and launch nodes as its role.
            depends_on=[crds, *controller.grants, node_access],
            skip_crds=True,
        )

        for pool_name, pool in args.pools.items():
            placement = None
            if pool.efa:
                # EFA jobs need their nodes on one network spine: a cluster placement group in one AZ.
                placement = aws.ec2.PlacementGroup(f"{name}-{pool_name}", strategy="cluster", opts=child).name
            node_class = ec2_node_class(pool_name, pool, cluster_name=context.cluster_name, node_role=nodes.role.name,
                                        ami_alias=args.ami_alias, tags=context.tags, placement_group=placement)
            # Deleting either waits for the pool's nodes to drain, for up to the grace period: outwait it.
            delete_timeout = f"{(pool.grace_seconds + DELETE_MARGIN_SECONDS) // 60}m"
            # The controller's webhooks validate these: they wait for it.
            kube_system.custom_resource(f"{name}-{pool_name}-class", node_class, depends_on=[release],
                                        delete_timeout=delete_timeout)
            kube_system.custom_resource(f"{name}-{pool_name}", node_pool(pool_name, pool), depends_on=[release],
                                        delete_timeout=delete_timeout)

        self.queue_name = queue.name
        self.controller_role_arn = controller.role.arn
        self.node_role_name = nodes.role.name
        self.register_outputs({"queue_name": self.queue_name, "controller_role_arn": self.controller_role_arn,
                               "node_role_name": self.node_role_name})
