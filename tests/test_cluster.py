"""Cluster: pinned version and addons, KMS secrets encryption, logs, endpoint, access entries."""

from __future__ import annotations

import json

import pytest
from conftest import node_group

from catalog.eks import RELEASES
from infra.config import parse
from infra.config.stack_file import read_stack_config

CLUSTER = "aws:eks/cluster:Cluster"
ADDON = "aws:eks/addon:Addon"


def _cluster(recording):
    clusters = recording.of_type(CLUSTER)
    assert len(clusters) == 1
    return clusters[0]


def test_version_is_pinned_and_supported(stack):
    cluster = _cluster(stack)
    assert cluster.inputs["version"] == "1.35"
    assert cluster.inputs["upgradePolicy"] == {"supportType": "STANDARD"}, "no silent 6x extended-support bill"


def test_secrets_are_envelope_encrypted_with_a_rotating_key(stack):
    cluster = _cluster(stack)
    key = stack.named("aws:kms/key:Key", "eks-secrets")
    assert key.inputs["enableKeyRotation"] is True
    assert cluster.inputs["encryptionConfig"] == {"resources": ["secrets"], "provider": {"keyArn": key.state["arn"]}}
    role_policy = json.loads(stack.named("aws:iam/rolePolicy:RolePolicy", "eks-cluster-kms").inputs["policy"])
    assert role_policy["Statement"][0]["Resource"] == key.state["arn"], "the cluster role may use this key only"


# Every log type the EKS API accepts (CreateCluster, logging.clusterLogging[].types).
EKS_LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]


def test_all_control_plane_logs_with_finite_retention(stack):
    assert sorted(_cluster(stack).inputs["enabledClusterLogTypes"]) == sorted(EKS_LOG_TYPES)
    group = stack.named("aws:cloudwatch/logGroup:LogGroup", "eks-control-plane")
    assert group.inputs["name"] == f"/aws/eks/ml-platform-{stack.stack}/cluster"
    configured = parse(read_stack_config(stack.stack), stack=stack.stack).cluster.log_retention_days
    assert group.inputs["retentionInDays"] == configured
    assert group.urn in _cluster(stack).dependencies, "the log group must exist before EKS creates its own"


def test_dev_endpoint_is_public_only_to_the_allow_list(dev):
    vpc = _cluster(dev).inputs["vpcConfig"]
    assert vpc["endpointPublicAccess"] is True and vpc["endpointPrivateAccess"] is True
    assert vpc["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_prod_endpoint_is_private(prod):
    vpc = _cluster(prod).inputs["vpcConfig"]
    assert vpc["endpointPublicAccess"] is False and vpc["endpointPrivateAccess"] is True
    assert not vpc.get("publicAccessCidrs")


def test_prod_cluster_cannot_be_deleted_by_accident(prod, dev):
    assert _cluster(prod).inputs["deletionProtection"] is True
    assert _cluster(dev).inputs["deletionProtection"] is False
    assert prod.named("aws:kms/key:Key", "eks-secrets").protect


def test_control_plane_runs_in_private_subnets(stack):
    private = {s.id for s in stack.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name}
    assert set(_cluster(stack).inputs["vpcConfig"]["subnetIds"]) == private


@pytest.mark.parametrize("addon", ["vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver", "eks-pod-identity-agent"])
def test_core_addons_present_and_pinned(stack, addon):
    found = [a for a in stack.of_type(ADDON) if a.inputs["addonName"] == addon]
    assert len(found) == 1, f"{stack.stack}: addon {addon} missing"
    assert found[0].inputs["addonVersion"] == RELEASES["1.35"].addons[addon]
    assert found[0].inputs["addonVersion"].startswith("v") and "-eksbuild." in found[0].inputs["addonVersion"]


def test_vpc_cni_enforces_network_policies(stack):
    cni = next(a for a in stack.of_type(ADDON) if a.inputs["addonName"] == "vpc-cni")
    assert json.loads(cni.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}


def test_ebs_csi_driver_gets_its_aws_role_through_pod_identity(stack):
    ebs = next(a for a in stack.of_type(ADDON) if a.inputs["addonName"] == "aws-ebs-csi-driver")
    role = stack.named("aws:iam/role:Role", "eks-ebs-csi")
    assert ebs.inputs["podIdentityAssociations"] == [
        {"roleArn": role.state["arn"], "serviceAccount": "ebs-csi-controller-sa"}]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    attached = stack.named("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "eks-ebs-csi")
    assert attached.inputs["policyArn"] == "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"


def test_vpc_cni_gets_its_aws_role_through_pod_identity_before_any_node_joins(stack):
    cni = next(a for a in stack.of_type(ADDON) if a.inputs["addonName"] == "vpc-cni")
    role = stack.named("aws:iam/role:Role", "eks-vpc-cni")
    assert cni.inputs["podIdentityAssociations"] == [{"roleArn": role.state["arn"], "serviceAccount": "aws-node"}]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Condition"]["StringEquals"]["aws:RequestTag/kubernetes-namespace"] == "kube-system"
    assert trust["Condition"]["StringEquals"]["aws:RequestTag/kubernetes-service-account"] == "aws-node"
    attached = stack.named("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "eks-vpc-cni")
    assert attached.inputs["policyArn"] == "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
    # aws-node calls EC2 as soon as it starts: the role carries its policy before the addon, the addon
    # (and so the association) exists before the first node.
    assert attached.urn in cni.dependencies
    system_nodes = stack.named("ml-platform:node_pools:ManagedNodeGroup", "eks-system")  # its node group's parent
    assert cni.urn in system_nodes.dependencies


def test_coredns_waits_for_system_nodes(stack):
    coredns = next(a for a in stack.of_type(ADDON) if a.inputs["addonName"] == "coredns")
    assert node_group(stack, "system").urn in coredns.dependencies, "CoreDNS never goes ACTIVE without a node"


def test_access_entries_grant_admins_with_no_aws_auth(stack):
    cluster = _cluster(stack)
    assert cluster.inputs["accessConfig"] == {"authenticationMode": "API",
                                              "bootstrapClusterCreatorAdminPermissions": False}
    entries = [e for e in stack.of_type("aws:eks/accessEntry:AccessEntry") if e.inputs["type"] == "STANDARD"
               and e.name.startswith("eks-admin-")]  # team entries: tests/test_tenancy.py
    account = "111122223333" if stack.stack == "dev" else "444455556666"
    assert sorted(e.inputs["principalArn"] for e in entries) == [
        f"arn:aws:iam::{account}:role/ml-platform-deployer", f"arn:aws:iam::{account}:role/platform-admin"]
    for grant in stack.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation"):
        assert grant.inputs["policyArn"].endswith(":cluster-access-policy/AmazonEKSClusterAdminPolicy")
        assert grant.inputs["accessScope"] == {"type": "cluster"}
    config_maps = [r for r in stack.resources if r.type.startswith("kubernetes:core/v1:ConfigMap")
                   and r.inputs.get("metadata", {}).get("name") == "aws-auth"]
    assert not config_maps, "authentication is by access entries only"


def test_kubernetes_provider_waits_for_access_and_addons(stack):
    provider = stack.of_type("pulumi:providers:kubernetes")
    assert len(provider) == 1
    deps = set(provider[0].dependencies)
    for grant in stack.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation"):
        assert grant.urn in deps
    for addon in stack.of_type(ADDON):
        assert addon.urn in deps, f"provider does not wait for {addon.inputs['addonName']}"
    kubeconfig = json.loads(provider[0].inputs["kubeconfig"])
    assert kubeconfig["users"][0]["user"]["exec"]["command"] == "aws", "tokens come from aws eks get-token"


def test_oidc_provider_for_the_cluster_issuer(stack):
    oidc = stack.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert len(oidc) == 1
    assert oidc[0].inputs["url"] == _cluster(stack).state["identities"][0]["oidcs"][0]["issuer"]
    assert oidc[0].inputs["clientIdLists"] == ["sts.amazonaws.com"]


def test_default_storage_class_is_encrypted_gp3(stack):
    classes = stack.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    assert len(classes) == 1
    sc = classes[0].inputs
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert sc["provisioner"] == "ebs.csi.aws.com"
    assert sc["parameters"] == {"type": "gp3", "encrypted": "true"}
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"


def test_service_cidr_is_outside_the_vpc(stack):
    import ipaddress
    vpc = ipaddress.IPv4Network(stack.of_type("aws:ec2/vpc:Vpc")[0].inputs["cidrBlock"])
    service = ipaddress.IPv4Network(_cluster(stack).inputs["kubernetesNetworkConfig"]["serviceIpv4Cidr"])
    assert not vpc.overlaps(service)


def test_prod_api_endpoint_is_reachable_from_the_deployer_before_any_kubernetes_object(prod):
    (rule,) = prod.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert (rule.inputs["cidrIpv4"], rule.inputs["fromPort"], rule.inputs["toPort"]) == ("10.100.0.0/24", 443, 443)
    cluster = prod.named("aws:eks/cluster:Cluster", "eks")
    assert rule.property_dependencies["securityGroupId"] == [cluster.urn], "the cluster's own security group"
    provider = prod.named("pulumi:providers:kubernetes", "eks-k8s")
    path = [prod.named("aws:ec2/vpcPeeringConnection:VpcPeeringConnection", "network-deployer"), rule,
            *(t for t in prod.of_type("aws:ec2/routeTable:RouteTable") if t.name.startswith("network-private-"))]
    missing = [r.name for r in path if r.urn not in provider.dependencies]
    assert not missing, f"the Kubernetes provider must wait for the deployer's path: {missing}"
