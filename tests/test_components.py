"""Each component on its own, built with typed args: the branches config selects, without stack files."""

from __future__ import annotations

import ipaddress
import json

import pytest
from component_harness import build, cluster, context, pool

from components.gpu import Gpu, GpuArgs
from components.karpenter import Karpenter, KarpenterArgs
from components.network import DeployerLink, Network, NetworkArgs
from components.node_pools import NodePools, NodePoolsArgs
from components.node_role import NodeRolePolicies

AZS = ["us-east-1a", "us-east-1b", "us-east-1c"]
CPU = {"role": "cpu", "provisioner": "karpenter", "instanceTypes": ["c6i.xlarge"], "maxSize": 4}
EFA_TRAINING = {"role": "training", "provisioner": "karpenter", "instanceTypes": ["p4d.24xlarge"], "maxSize": 2,
                "efa": True, "efaZoneId": "use1-az6"}
SLICED = {"role": "inference", "provisioner": "karpenter", "instanceTypes": ["g5.xlarge"], "maxSize": 2,
          "timeSlicingReplicas": 4}


def network(nat_per_az: bool, flow_logs: str = "cloudwatch", endpoints=()) -> Network:
    return Network("network", NetworkArgs(
        context=context(), cidr=ipaddress.IPv4Network("10.40.0.0/16"), availability_zones=AZS,
        nat_per_az=nat_per_az, flow_logs_destination=flow_logs, flow_logs_retention_days=30, deployer_link=None,
        endpoints=list(endpoints), protect=False))


@pytest.mark.parametrize("per_az", [True, False])
def test_network_nat_gateways_per_az_or_one(per_az):
    recording = build(lambda: network(per_az))
    nats = {n.name: n for n in recording.of_type("aws:ec2/natGateway:NatGateway")}
    assert len(nats) == (3 if per_az else 1)
    for az in AZS:
        target = f"network-nat-{az}" if per_az else "network-nat-us-east-1a"
        table = recording.named("aws:ec2/routeTable:RouteTable", f"network-private-{az}")
        assert table.property_dependencies["routes"] == [nats[target].urn], f"{az} routes through {target}"


def test_network_flow_logs_to_s3_make_a_private_bucket_and_no_log_group():
    recording = build(lambda: network(False, flow_logs="s3"))
    assert not recording.of_type("aws:cloudwatch/logGroup:LogGroup")
    bucket = recording.named("ml-platform:storage:PrivateBucket", "network-flow-logs")
    log = recording.named("aws:ec2/flowLog:FlowLog", "network-flow-logs")
    assert log.inputs["logDestinationType"] == "s3"
    assert recording.component_of(recording.named("aws:s3/bucket:Bucket", "network-flow-logs")) == bucket


def test_network_without_interface_endpoints_has_no_endpoint_security_group():
    recording = build(lambda: network(False, endpoints=["s3"]))
    assert not recording.of_type("aws:ec2/securityGroup:SecurityGroup")
    (gateway,) = recording.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert gateway.inputs["vpcEndpointType"] == "Gateway" and len(gateway.inputs["routeTableIds"]) == 3


def karpenter(pools: dict, node_policies: NodeRolePolicies | None = None) -> Karpenter:
    return Karpenter("karpenter", KarpenterArgs(
        context=context(), cluster=cluster(), replicas=2, ami_alias="al2023@v20260903",
        pools={name: pool(**spec) for name, spec in pools.items()}, node_policies=node_policies or NodeRolePolicies()))


def test_cni_policy_stays_on_the_node_role_only_while_an_existing_cluster_moves_over():
    def attached(policies: NodeRolePolicies) -> set[str]:
        recording = build(lambda: karpenter({"cpu": CPU}, policies))
        return {a.inputs["policyArn"].rsplit("/", 1)[1]
                for a in recording.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                if a.name.startswith("karpenter-node-")}
    assert "AmazonEKS_CNI_Policy" not in attached(NodeRolePolicies())
    assert attached(NodeRolePolicies(cni=True)) == {
        "AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly", "AmazonEKS_CNI_Policy"}


def test_karpenter_pins_an_efa_pool_to_its_zone_id_in_a_placement_group():
    recording = build(lambda: karpenter({"cpu": CPU, "training": EFA_TRAINING}))
    (placement,) = recording.of_type("aws:ec2/placementGroup:PlacementGroup")
    assert (placement.name, placement.inputs["strategy"]) == ("karpenter-training", "cluster")
    pools = {p.inputs["metadata"]["name"]: p.inputs["spec"] for p in recording.of_type(
        "kubernetes:karpenter.sh/v1:NodePool")}
    zones = {name: [(r["key"], r["values"]) for r in spec["template"]["spec"]["requirements"]
                    if r["key"].startswith("topology.")] for name, spec in pools.items()}
    assert zones == {"cpu": [], "training": [("topology.k8s.aws/zone-id", ["use1-az6"])]}


def test_karpenter_controller_role_is_bound_to_its_service_account_and_waited_for():
    recording = build(lambda: karpenter({"cpu": CPU}))
    association = recording.named("aws:eks/podIdentityAssociation:PodIdentityAssociation", "karpenter-controller")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == ("kube-system", "karpenter")
    trust = json.loads(recording.named("aws:iam/role:Role", "karpenter-controller").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Condition"]["StringEquals"]["aws:RequestTag/kubernetes-service-account"] == \
        "karpenter"
    release = recording.named("kubernetes:helm.sh/v3:Release", "karpenter")
    grants = [r.urn for r in recording.of_type("aws:iam/rolePolicy:RolePolicy")
              if r.name.startswith("karpenter-controller-")]
    assert len(grants) == 5 and set(grants) | {association.urn} <= set(release.dependencies)


def gpu(pools: dict, dcgm: bool = True) -> Gpu:
    return Gpu("gpu", GpuArgs(context=context("eu-west-1"), cluster=cluster(),
                              pools={name: pool(**spec) for name, spec in pools.items()},
                              dcgm_exporter=dcgm))


def test_gpu_installs_the_efa_plugin_only_for_efa_pools_from_the_stack_region():
    without = build(lambda: gpu({"inference": SLICED}), region="eu-west-1")
    assert "gpu-efa-device-plugin" not in {r.name for r in without.of_type("kubernetes:helm.sh/v3:Release")}
    with_efa = build(lambda: gpu({"training": EFA_TRAINING}), region="eu-west-1")
    efa = with_efa.named("kubernetes:helm.sh/v3:Release", "gpu-efa-device-plugin")
    assert efa.inputs["values"]["image"]["repository"].startswith("602401143452.dkr.ecr.eu-west-1.amazonaws.com/")


def test_gpu_time_slicing_config_and_optional_dcgm():
    recording = build(lambda: gpu({"inference": SLICED}, dcgm=False))
    releases = {r.name: r for r in recording.of_type("kubernetes:helm.sh/v3:Release")}
    assert set(releases) == {"gpu-device-plugin"}
    config = releases["gpu-device-plugin"].inputs["values"]["config"]["map"]
    assert "replicas: 4" in config["time-sliced-4"]
    assert recording.named("kubernetes:core/v1:Namespace", "gpu-namespace").inputs["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"] == "privileged"


def test_node_pools_make_node_groups_for_managed_pools_only():
    managed = {"role": "cpu", "instanceTypes": ["c6i.xlarge"], "minSize": 1, "maxSize": 3}
    recording = build(lambda: NodePools("pools", NodePoolsArgs(
        context=context(), cluster=cluster(), pools={"batch": pool(**managed), "cpu": pool(**CPU)})))
    (group,) = recording.of_type("aws:eks/nodeGroup:NodeGroup")
    assert group.inputs["nodeGroupNamePrefix"] == "batch-"
    (template,) = recording.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert template.inputs["tagSpecifications"][0]["tags"]["cost-center"] == "cc", "context tags reach the nodes"


def test_network_attaches_to_a_transit_gateway_before_routing_through_it():
    link = DeployerLink(connection="transitGateway", cidrs=["10.100.0.0/24"], transit_gateway_id="tgw-0123456789abcdef0")
    recording = build(lambda: Network("network", NetworkArgs(
        context=context(), cidr=ipaddress.IPv4Network("10.40.0.0/16"), availability_zones=AZS, nat_per_az=False,
        flow_logs_destination="cloudwatch", flow_logs_retention_days=30, deployer_link=link, endpoints=[],
        protect=False)))
    attachment = recording.named("aws:ec2transitgateway/vpcAttachment:VpcAttachment", "network-deployer")
    assert len(attachment.inputs["subnetIds"]) == 3, "one attachment ENI per AZ"
    for az in AZS:
        table = recording.named("aws:ec2/routeTable:RouteTable", f"network-private-{az}")
        assert {"cidrBlock": "10.100.0.0/24", "transitGatewayId": "tgw-0123456789abcdef0"} in table.inputs["routes"]
        assert attachment.urn in table.dependencies, "a route through the gateway needs the attachment first"
