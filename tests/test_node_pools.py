"""Node pools: every configured pool exists as configured; GPU pools tainted; nodes locked down."""

from __future__ import annotations

import pytest
from conftest import launch_template, node_group

from infra import offline
from infra.config import parse

POOLS = ["system", "cpu", "training", "inference"]


def _pools(stack_name):
    return parse(offline.read_stack_config(stack_name), stack=stack_name).node_pools


@pytest.mark.parametrize("pool", POOLS)
def test_every_pool_exists_with_its_sizes_and_types(stack, pool):
    cfg = _pools(stack.stack)[pool]
    group = node_group(stack, pool).inputs
    assert group["scalingConfig"] == {"minSize": cfg.min_size, "desiredSize": cfg.desired, "maxSize": cfg.max_size}
    assert group["instanceTypes"] == cfg.instance_types
    assert group["capacityType"] == cfg.capacity_type


@pytest.mark.parametrize("pool", ["training", "inference"])
def test_gpu_pools_are_tainted_labelled_and_on_the_nvidia_ami(stack, pool):
    group = node_group(stack, pool).inputs
    assert group["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert group["labels"]["nvidia.com/gpu.present"] == "true"
    assert group["labels"]["ml-platform/gpu-model"] == {"training": "A100", "inference": "A10G"}[pool]
    assert group["labels"]["ml-platform/pool"] == pool
    assert group["amiType"] == "AL2023_x86_64_NVIDIA"


def test_cpu_pools_are_untainted_on_the_standard_ami(stack):
    group = node_group(stack, "cpu").inputs
    assert not group.get("taints")
    assert group["amiType"] == "AL2023_x86_64_STANDARD"
    assert "nvidia.com/gpu.present" not in group["labels"]


def test_system_pool_is_reserved_for_critical_addons(stack):
    group = node_group(stack, "system").inputs
    assert group["taints"] == [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}]
    assert group["capacityType"] == "ON_DEMAND"


@pytest.mark.parametrize("pool", POOLS)
def test_nodes_require_imdsv2_with_one_hop(stack, pool):
    options = launch_template(stack, pool).inputs["metadataOptions"]
    assert options["httpTokens"] == "required"
    assert options["httpPutResponseHopLimit"] == 1


@pytest.mark.parametrize("pool", POOLS)
def test_root_volumes_are_encrypted_gp3_sized_per_pool(stack, pool):
    (mapping,) = launch_template(stack, pool).inputs["blockDeviceMappings"]
    assert mapping["deviceName"] == "/dev/xvda"
    assert mapping["ebs"]["encrypted"] == "true"
    assert mapping["ebs"]["volumeType"] == "gp3"
    assert mapping["ebs"]["volumeSize"] == _pools(stack.stack)[pool].disk_size_gib


@pytest.mark.parametrize("pool", POOLS)
def test_nodes_get_no_public_ip(stack, pool):
    private = {s.id for s in stack.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name}
    assert set(node_group(stack, pool).inputs["subnetIds"]) == private
    assert "networkInterfaces" not in launch_template(stack, pool).inputs


def test_instances_and_volumes_carry_cost_tags(stack):
    for spec in launch_template(stack, "training").inputs["tagSpecifications"]:
        assert spec["tags"]["cost-center"] and spec["tags"]["environment"] == stack.stack


def test_autoscaler_owns_desired_size_after_creation(stack):
    for group in stack.of_type("aws:eks/nodeGroup:NodeGroup"):
        assert group.ignore_changes == ["scalingConfig.desiredSize"], group.name


def test_dev_gpu_pools_scale_from_zero_on_spot(dev):
    for pool in ("training", "inference"):
        group = node_group(dev, pool).inputs
        assert group["scalingConfig"]["minSize"] == 0 and group["capacityType"] == "SPOT"


def test_prod_inference_keeps_two_on_demand_nodes(prod):
    group = node_group(prod, "inference").inputs
    assert group["scalingConfig"]["minSize"] >= 2 and group["capacityType"] == "ON_DEMAND"


def test_node_role_has_only_the_policies_nodes_need(stack):
    attached = sorted(a.inputs["policyArn"].rsplit("/", 1)[1]
                      for a in stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                      if a.name.startswith("eks-node-"))
    expected = ["AmazonEC2ContainerRegistryPullOnly", "AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy"]
    if stack.stack == "dev":  # nodeSsmAccess: true
        expected.append("AmazonSSMManagedInstanceCore")
    assert attached == sorted(expected)
