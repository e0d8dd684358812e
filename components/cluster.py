"""The EKS cluster, ready for workloads: control plane, access, system nodes, core addons, provider.

"Ready" is the contract: the Kubernetes provider this component hands out
depends on the access entries and every core addon, so nothing downstream
races the admin grant or lands on a cluster without networking or DNS.
The system node group lives here, not in NodePools, because CoreDNS and the
EBS CSI controller cannot go ACTIVE until some node runs them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from catalog.eks import LOG_TYPES, EksRelease
from catalog.pools import NodePool
from components.handles import ClusterHandle, PlatformContext
from components.iam import managed_policy_arn, policy_document, service_trust_policy
from components.identity import PodIdentityArgs, WorkloadIdentity, pod_identity_role
from components.node_group import ManagedNodeGroup, ManagedNodeGroupArgs
from components.node_role import CNI_POLICY, NodeRolePolicies, node_role

# Addons nodes need before they can go Ready; the rest need a node to run on.
BEFORE_COMPUTE = ("vpc-cni", "eks-pod-identity-agent", "kube-proxy")
ADMIN_ACCESS_POLICY = "AmazonEKSClusterAdminPolicy"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
# vpc-cni's service account; its Pod Identity role carries what the node role no longer does.
VPC_CNI_SERVICE_ACCOUNT = "aws-node"
# vpc-cni enforces NetworkPolicy only with this on; without it every policy is decoration.
ADDON_CONFIGURATION = {"vpc-cni": {"enableNetworkPolicy": "true"}}


@dataclass(frozen=True)
class ClusterArgs:
    context: PlatformContext
    release: EksRelease
    private_subnet_ids: pulumi.Input[Sequence[str]]
    vpc_cidr: str
    public_access_cidrs: Sequence[str]
    service_cidr: str
    admin_principals: Sequence[str]
    log_retention_days: int
    node_policies: NodeRolePolicies
    system_pool: NodePool
    protect: bool
    # Deployer addresses that get 443 on the API endpoint, and the network path they come by.
    deployer_cidrs: Sequence[str] = ()
    deployer_path: Sequence[pulumi.Resource] = ()


def kubeconfig(name: str, endpoint: str, certificate_authority: str, region: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (no static credentials in state)."""
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": endpoint,
                                                "certificate-authority-data": certificate_authority}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "users": [{"name": name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", name, "--region", region, "--output", "json"],
        }}}],
    })


class Cluster(pulumi.ComponentResource):
    """EKS with API-mode access entries, KMS secrets encryption, all control-plane logs."""

    handle: ClusterHandle
    name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ml-platform:cluster:Cluster", name, None, opts)
        cluster = self._control_plane(name, args)
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=cluster.identities[0].oidcs[0].issuer,
            client_id_lists=["sts.amazonaws.com"],
            opts=pulumi.ResourceOptions(parent=self),
        )
        grants = self._admin_access(name, args, cluster)
        nodes = node_role(f"{name}-node", args.context.partition, args.node_policies, parent=self)
        networking = self._networking(name, args, cluster)
        system_nodes = ManagedNodeGroup(
            f"{name}-{args.context.system_pool_name}",
            ManagedNodeGroupArgs(
                context=args.context,
                cluster_name=cluster.name,
                kubernetes_version=args.release.version,
                node_role_arn=nodes.role.arn,
                subnet_ids=args.private_subnet_ids,
                pool_name=args.context.system_pool_name,
                pool=args.system_pool,
            ),
            # Nodes join only once networking addons exist and the role carries its policies.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*networking, *nodes.attachments]),
        )
        on_nodes = self._addons_on_nodes(name, args, cluster, system_nodes)
        config = pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority.data).apply(
            lambda c: kubeconfig(c[0], c[1], c[2], args.context.region))
        api_access = [aws.vpc.SecurityGroupIngressRule(
            f"{name}-deployer-{cidr.replace('.', '-').replace('/', '-')}",
            security_group_id=cluster.vpc_config.cluster_security_group_id,
            ip_protocol="tcp", from_port=443, to_port=443, cidr_ipv4=cidr,
            description="Kubernetes API from the deployer network (pulumi up)",
            opts=pulumi.ResourceOptions(parent=self)) for cidr in args.deployer_cidrs]
        # Kubernetes objects need the deployer to reach the API: grants, addons, 443 and its route.
        provider = self._kubernetes(name, config, [*grants, *networking, *on_nodes, *api_access,
                                                   *args.deployer_path])

        self.handle = ClusterHandle(
            name=cluster.name,
            version=args.release.version,
            security_group_id=cluster.vpc_config.cluster_security_group_id,
            oidc_provider_arn=oidc.arn,
            node_role_arn=nodes.role.arn,
            private_subnet_ids=args.private_subnet_ids,
            api_server_cidrs=[args.vpc_cidr, args.service_cidr],
            kubernetes_provider=provider,
            node_prerequisites=[*networking, *nodes.attachments],
        )
        self.name = cluster.name
        self.endpoint = cluster.endpoint
        self.kubeconfig = pulumi.Output.secret(config)
        self.oidc_provider_arn = oidc.arn
        self.register_outputs({
            "name": self.name,
            "endpoint": self.endpoint,
            "kubeconfig": self.kubeconfig,
            "oidc_provider_arn": self.oidc_provider_arn,
        })

    def _control_plane(self, name: str, args: ClusterArgs) -> aws.eks.Cluster:
        """The cluster, its secrets key, its log group (created first, to set retention) and its role."""
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect)
        cluster_name = args.context.cluster_name

        secrets_key = aws.kms.Key(
            f"{name}-secrets",
            description=f"{cluster_name} Kubernetes secrets envelope encryption",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=stateful,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane",
            # EKS writes here; creating it first sets retention (EKS would create it to never expire).
            name=f"/aws/eks/{cluster_name}/cluster",
            retention_in_days=args.log_retention_days,
            opts=stateful,
        )
        role = aws.iam.Role(
            f"{name}-cluster", assume_role_policy=service_trust_policy("eks.amazonaws.com"), opts=child
        )
        role_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-cluster-policy",
                role=role.name,
                policy_arn=managed_policy_arn(args.context.partition, "AmazonEKSClusterPolicy"),
                opts=child,
            ),
            aws.iam.RolePolicy(
                f"{name}-cluster-kms",
                role=role.id,
                policy=secrets_key.arn.apply(lambda arn: policy_document([{
                    "Effect": "Allow",
                    "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                    "Resource": arn,
                }])),
                opts=child,
            ),
        ]
        return aws.eks.Cluster(
            f"{name}",
            name=cluster_name,
            version=args.release.version,
            role_arn=role.arn,
            vpc_config={
                "subnet_ids": args.private_subnet_ids,
                "endpoint_private_access": True,
                "endpoint_public_access": bool(args.public_access_cidrs),
                "public_access_cidrs": list(args.public_access_cidrs) or None,
            },
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": False},
            encryption_config={"provider": {"key_arn": secrets_key.arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=list(LOG_TYPES),
            kubernetes_network_config={"service_ipv4_cidr": args.service_cidr, "ip_family": "ipv4"},
            # Core addons come in as pinned EKS addons below, not as unmanaged defaults.
            bootstrap_self_managed_addons=False,
            # STANDARD: upgrade at the end of standard support instead of paying 6x for extended.
            upgrade_policy={"support_type": "STANDARD"},
            deletion_protection=args.protect,
            opts=pulumi.ResourceOptions(
                parent=self,
                # The log group name is a string, not an output; the role needs its policies first.
                depends_on=[log_group, *role_policies],
            ),
        )

    def _admin_access(self, name: str, args: ClusterArgs,
                      cluster: aws.eks.Cluster) -> list[aws.eks.AccessPolicyAssociation]:
        """An access entry with cluster admin for each configured principal (no implicit creator admin)."""
        grants = []
        child = pulumi.ResourceOptions(parent=self)
        for arn in args.admin_principals:
            principal = arn.rsplit("/", 1)[1]
            entry = aws.eks.AccessEntry(
                f"{name}-admin-{principal}", cluster_name=cluster.name, principal_arn=arn, type="STANDARD",
                opts=child,
            )
            grants.append(aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{principal}",
                cluster_name=cluster.name,
                principal_arn=entry.principal_arn,
                policy_arn=f"arn:{args.context.partition}:eks::aws:cluster-access-policy/{ADMIN_ACCESS_POLICY}",
                access_scope={"type": "cluster"},
                opts=child,
            ))
        return grants

    def _addon(self, name: str, args: ClusterArgs, cluster: aws.eks.Cluster, addon_name: str,
               depends_on: Sequence[pulumi.Resource], identity: tuple[str, WorkloadIdentity] | None = None,
               ) -> aws.eks.Addon:
        """A pinned addon; with `identity` (service account, role) bound through the addon's association."""
        configuration = ADDON_CONFIGURATION.get(addon_name)
        associations, grants = None, []
        if identity is not None:
            service_account, workload = identity
            # The addon's own podIdentityAssociations binds the role (EKS's documented way for addons);
            # its pods must not start before the role carries its policies.
            associations = [{"role_arn": workload.role.arn, "service_account": service_account}]
            grants = workload.grants
        return aws.eks.Addon(
            f"{name}-{addon_name}",
            cluster_name=cluster.name,
            addon_name=addon_name,
            addon_version=args.release.addons[addon_name],
            configuration_values=json.dumps(configuration) if configuration else None,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            pod_identity_associations=associations,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*depends_on, *grants]),
        )

    def _networking(self, name: str, args: ClusterArgs, cluster: aws.eks.Cluster) -> list[aws.eks.Addon]:
        """vpc-cni, the Pod Identity agent and kube-proxy: what a node needs before it can go Ready.

        vpc-cni's credentials come from its own Pod Identity role, not the node role: the association
        exists before any node joins, so every aws-node pod starts with it (EKS injects the credentials
        at pod creation; the agent and aws-node both run on the host network, so neither waits for the other's
        pod network). docs/cluster.md says how an existing cluster moves over.
        """
        cni = pod_identity_role(
            f"{name}-vpc-cni",
            PodIdentityArgs(
                context=args.context, namespace="kube-system", service_account=VPC_CNI_SERVICE_ACCOUNT,
                managed_policies={f"{name}-vpc-cni": CNI_POLICY},
            ),
            parent=self,
        )
        return [self._addon(name, args, cluster, addon, (),
                            identity=(VPC_CNI_SERVICE_ACCOUNT, cni) if addon == "vpc-cni" else None)
                for addon in BEFORE_COMPUTE]

    def _addons_on_nodes(self, name: str, args: ClusterArgs, cluster: aws.eks.Cluster,
                         system_nodes: ManagedNodeGroup) -> list[aws.eks.Addon]:
        """CoreDNS, the EBS CSI driver and the CSI snapshot controller: ACTIVE only once a node runs them."""
        ebs = pod_identity_role(
            f"{name}-ebs-csi",
            PodIdentityArgs(
                context=args.context, namespace="kube-system", service_account=EBS_CSI_SERVICE_ACCOUNT,
                managed_policies={f"{name}-ebs-csi": "service-role/AmazonEBSCSIDriverPolicy"},
            ),
            parent=self,
        )
        return [
            self._addon(name, args, cluster, "coredns", [system_nodes]),
            # VolumeSnapshot CRDs and their controller: without them Velero cannot back up a volume.
            self._addon(name, args, cluster, "snapshot-controller", [system_nodes]),
            self._addon(name, args, cluster, "aws-ebs-csi-driver", [system_nodes],
                        identity=(EBS_CSI_SERVICE_ACCOUNT, ebs)),
        ]

    def _kubernetes(self, name: str, config: pulumi.Output[str], ready: Sequence[pulumi.Resource]) -> k8s.Provider:
        """The one Kubernetes provider, and the default StorageClass every volume uses."""
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=config,
            # Every Kubernetes object waits for the admin grant and a cluster with DNS and storage.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(ready)),
        )
        k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata={"name": "gp3", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true"},
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Delete",
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        return provider
