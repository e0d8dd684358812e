"""Network: subnets per AZ, NAT per environment, flow logs, subnet tags, endpoints, default tags."""

from __future__ import annotations

import ipaddress
import json

import pytest

from infra.config import parse
from infra.config.stack_file import read_stack_config

SUBNET = "aws:ec2/subnet:Subnet"
NAT = "aws:ec2/natGateway:NatGateway"


def _config(stack):
    return parse(read_stack_config(stack), stack=stack)


def test_one_private_and_one_public_subnet_per_az(stack):
    azs = _config(stack.stack).network.availability_zones
    subnets = stack.of_type(SUBNET)
    for kind in ("private", "public"):
        mine = [s for s in subnets if s.name.startswith(f"network-{kind}-")]
        assert sorted(s.inputs["availabilityZone"] for s in mine) == sorted(azs), f"{stack.stack} {kind}"


def test_subnets_sit_inside_the_vpc_without_overlap(stack):
    vpc = ipaddress.IPv4Network(stack.of_type("aws:ec2/vpc:Vpc")[0].inputs["cidrBlock"])
    cidrs = [ipaddress.IPv4Network(s.inputs["cidrBlock"]) for s in stack.of_type(SUBNET)]
    assert all(c.subnet_of(vpc) for c in cidrs)
    assert len({c for c in cidrs}) == len(cidrs)
    assert not any(a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1:])


def test_no_subnet_hands_out_public_ips(stack):
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in stack.of_type(SUBNET))


def test_dev_has_one_nat_gateway(dev):
    assert len(dev.of_type(NAT)) == 1
    routes = [rt.inputs["routes"][0] for rt in dev.of_type("aws:ec2/routeTable:RouteTable")
              if rt.name.startswith("network-private-")]
    assert len(routes) == 2, "one private route table per AZ"
    assert len({r["natGatewayId"] for r in routes}) == 1, "both AZs egress through the single NAT gateway"


def test_prod_has_one_nat_gateway_per_az_routed_in_its_own_az(prod):
    nats = prod.of_type(NAT)
    assert len(nats) == 3
    nat_az = {}
    for nat in nats:
        public = next(s for s in prod.of_type(SUBNET) if s.name.startswith("network-public-")
                      and nat.inputs["subnetId"] == s.id)
        nat_az[nat.id] = public.inputs["availabilityZone"]
    assert sorted(nat_az.values()) == ["us-east-1a", "us-east-1b", "us-east-1c"]
    for rt in (r for r in prod.of_type("aws:ec2/routeTable:RouteTable") if r.name.startswith("network-private-")):
        az = rt.name.removeprefix("network-private-")
        assert nat_az[rt.inputs["routes"][0]["natGatewayId"]] == az, f"{az} egresses through another AZ's NAT"


def test_subnet_tags_for_load_balancers_and_karpenter(stack):
    cluster = f"ml-platform-{stack.stack}"
    for subnet in stack.of_type(SUBNET):
        tags = subnet.inputs["tags"]
        if "-private-" in subnet.name:
            assert tags["kubernetes.io/role/internal-elb"] == "1"
            assert tags["karpenter.sh/discovery"] == cluster
        else:
            assert tags["kubernetes.io/role/elb"] == "1"
            assert "karpenter.sh/discovery" not in tags, "Karpenter must never launch nodes in public subnets"


def test_flow_logs_capture_all_traffic(stack):
    logs = stack.of_type("aws:ec2/flowLog:FlowLog")
    assert len(logs) == 1 and logs[0].inputs["trafficType"] == "ALL"


def test_dev_flow_logs_go_to_cloudwatch_with_finite_retention(dev):
    log = dev.named("aws:ec2/flowLog:FlowLog", "network-flow-logs")
    assert log.inputs["logDestinationType"] == "cloud-watch-logs"
    group = dev.named("aws:cloudwatch/logGroup:LogGroup", "network-flow-logs")
    assert group.inputs["retentionInDays"] == 14


def test_prod_flow_logs_go_to_a_private_encrypted_versioned_bucket(prod):
    log = prod.named("aws:ec2/flowLog:FlowLog", "network-flow-logs")
    assert log.inputs["logDestinationType"] == "s3"
    bucket = prod.named("aws:s3/bucket:Bucket", "network-flow-logs")
    assert bucket.protect and not bucket.inputs.get("forceDestroy")
    block = prod.named("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "network-flow-logs-public-access")
    assert all(block.inputs[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                         "restrictPublicBuckets"))
    sse = prod.named("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                     "network-flow-logs-encryption")
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    versioning = prod.named("aws:s3/bucketVersioning:BucketVersioning", "network-flow-logs-versioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    policy = json.loads(prod.named("aws:s3/bucketPolicy:BucketPolicy", "network-flow-logs-policy").inputs["policy"])
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    lifecycle = prod.named("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                           "network-flow-logs-lifecycle")
    assert lifecycle.inputs["rules"][0]["expiration"]["days"] == 365
    key = prod.named("aws:kms/key:Key", "network-flow-logs-key")
    assert key.inputs["enableKeyRotation"] is True and key.protect


@pytest.mark.parametrize("stack_name, services", [
    ("dev", {"s3"}),
    ("prod", {"s3", "ecr.api", "ecr.dkr", "sts"}),
])
def test_vpc_endpoints_as_configured(stack_name, services, dev, prod):
    recording = {"dev": dev, "prod": prod}[stack_name]
    endpoints = recording.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert {e.inputs["serviceName"].removeprefix("com.amazonaws.us-east-1.") for e in endpoints} == services
    for endpoint in endpoints:
        kind = "Gateway" if endpoint.inputs["serviceName"].endswith(".s3") else "Interface"
        assert endpoint.inputs["vpcEndpointType"] == kind


def test_every_aws_resource_carries_the_default_tags(stack):
    providers = stack.of_type("pulumi:providers:aws")
    dr_region = parse(read_stack_config(stack.stack), stack=stack.stack).dr_region
    assert sorted(p.inputs["region"] for p in providers) == sorted(filter(None, ["us-east-1", dr_region]))
    for provider in providers:
        tags = json.loads(provider.inputs["defaultTags"])["tags"]
        assert {"environment", "project", "owner", "cost-center"} <= set(tags)
        assert tags["environment"] == stack.stack
    for resource in stack.resources:
        if resource.custom and resource.type.startswith("aws:"):
            assert resource.provider and any(resource.provider.startswith(p.urn) for p in providers), \
                f"{resource.type} {resource.name} does not use a tagged provider"


def test_prod_deployer_vpc_is_peered_and_routed_both_ways(prod):
    peering = prod.named("aws:ec2/vpcPeeringConnection:VpcPeeringConnection", "network-deployer")
    assert peering.inputs["peerVpcId"] == "vpc-0d3b1e4a5c6f70812" and peering.inputs["autoAccept"] is True
    for table in prod.of_type("aws:ec2/routeTable:RouteTable"):
        if table.name.startswith("network-private-"):
            routes = {r["cidrBlock"]: r for r in table.inputs["routes"]}
            assert "vpcPeeringConnectionId" in routes["10.100.0.0/24"], f"{table.name} reaches the deployer"
            assert peering.urn in table.property_dependencies["routes"]
    back = prod.named("aws:ec2/route:Route", "network-deployer-return-rtb-0a1b2c3d4e5f60718")
    assert (back.inputs["routeTableId"], back.inputs["destinationCidrBlock"]) == ("rtb-0a1b2c3d4e5f60718",
                                                                                  "10.30.0.0/16")


def test_dev_has_no_deployer_link(dev):
    assert not dev.of_type("aws:ec2/vpcPeeringConnection:VpcPeeringConnection")
    assert not dev.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
