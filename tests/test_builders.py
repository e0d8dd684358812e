"""Pure builders, without the engine: one node launch spec in two spellings, namespace network policies."""

from __future__ import annotations

import pytest

from catalog.node_launch import (
    launch_template_metadata_options,
    launch_template_root_volume,
    nodeclass_metadata_options,
    nodeclass_root_volume,
)
from catalog.zones import region_code, zone_id_problem
from components.namespace import POD_IDENTITY_AGENT, NamespaceArgs, network_policies


@pytest.mark.parametrize("size", [20, 200, 1000])
def test_launch_templates_and_node_classes_launch_nodes_the_same_way(size):
    lt_imds, nc_imds = launch_template_metadata_options(), nodeclass_metadata_options()
    assert (lt_imds["http_tokens"], nc_imds["httpTokens"]) == ("required", "required")
    assert lt_imds["http_put_response_hop_limit"] == nc_imds["httpPutResponseHopLimit"] == 1
    lt_disk, nc_disk = launch_template_root_volume(size), nodeclass_root_volume(size)
    assert lt_disk["device_name"] == nc_disk["deviceName"] == "/dev/xvda", "the AL2023 root device"
    assert (lt_disk["ebs"]["volume_size"], nc_disk["ebs"]["volumeSize"]) == (size, f"{size}Gi")
    assert lt_disk["ebs"]["volume_type"] == nc_disk["ebs"]["volumeType"] == "gp3"
    # The EC2 launch template API takes strings; the EC2NodeClass CRD takes booleans (its schema).
    assert (lt_disk["ebs"]["encrypted"], nc_disk["ebs"]["encrypted"]) == ("true", True)


def test_a_platform_namespace_denies_everything_but_dns_and_the_api_server():
    policies = network_policies(NamespaceArgs("gpu", "privileged"), ["10.20.0.0/16", "172.20.0.0/16"])
    assert set(policies) == {"default-deny", "allow-dns", "allow-api-server"}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    (dns,) = policies["allow-dns"]["egress"]
    assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
    (api,) = policies["allow-api-server"]["egress"]
    assert [b["ipBlock"]["cidr"] for b in api["to"]] == ["10.20.0.0/16", "172.20.0.0/16"]


def test_pods_that_call_aws_reach_the_pod_identity_agent_and_https():
    policies = network_policies(NamespaceArgs("velero", "baseline", aws_apis=True), ["10.20.0.0/16"])
    agent, https = policies["allow-aws-apis"]["egress"]
    assert (agent["to"][0]["ipBlock"]["cidr"], agent["ports"]) == (POD_IDENTITY_AGENT, [{"protocol": "TCP",
                                                                                          "port": 80}])
    assert https["ports"] == [{"protocol": "TCP", "port": 443}]


@pytest.mark.parametrize(("region", "code"), [("us-east-1", "use1"), ("eu-west-1", "euw1"), ("ap-southeast-2", "apse2"),
                                              ("ap-northeast-1", "apne1"), ("us-gov-west-1", "usgw1"),
                                              ("ca-central-1", "cac1")])
def test_zone_ids_carry_the_region_code(region, code):
    assert region_code(region) == code
    assert zone_id_problem(f"{code}-az3", region) is None
