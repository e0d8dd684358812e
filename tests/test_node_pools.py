"""Managed node groups: each managed pool as configured; GPU pools tainted; nodes locked down.

The shipped stacks keep only the system pool managed; the `managed` fixture
runs dev with every workload pool managed to cover that path for GPU pools too.
"""

from __future__ import annotations

import pytest
from conftest import _managed_pools, launch_template, node_group

from infra.config import parse
from infra.config.stack_file import read_stack_config

POOLS = ["system", "cpu", "training", "inference"]


def test_every_managed_pool_exists_with_its_sizes_and_types(managed):
    raw = read_stack_config("dev")
    _managed_pools(raw)
    pools = parse(raw, stack="managed").node_pools
    assert sorted(pools) == sorted(POOLS)
    for name, pool in pools.items():
        group = node_group(managed, name).inputs
        assert group["scalingConfig"] == {"minSize": pool.min_size, "desiredSize": pool.desired,
                                          "maxSize": pool.max_size}, name
        assert group["instanceTypes"] == pool.types, name
        assert group["capacityType"] == pool.capacity_types[0].upper().replace("-", "_"), name


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_system_pool_sizes_come_from_config(stack_name, dev, prod):
    recording = {"dev": dev, "prod": prod}[stack_name]
    cfg = parse(read_stack_config(stack_name), stack=stack_name).node_pools["system"]
    group = node_group(recording, "system").inputs
    assert group["scalingConfig"] == {"minSize": cfg.min_size, "desiredSize": cfg.desired, "maxSize": cfg.max_size}
    assert group["instanceTypes"] == cfg.instance_types


def test_shipped_stacks_manage_only_the_system_pool(stack):
    prefixes = sorted(g.inputs["nodeGroupNamePrefix"] for g in stack.of_type("aws:eks/nodeGroup:NodeGroup"))
    assert prefixes == ["system-"]


@pytest.mark.parametrize("pool", ["training", "inference"])
def test_managed_gpu_pools_are_tainted_labelled_and_on_the_nvidia_ami(managed, pool):
    group = node_group(managed, pool).inputs
    assert group["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert group["labels"]["nvidia.com/gpu.present"] == "true"
    assert group["labels"]["ml-platform/gpu-model"] == {"training": "A100", "inference": "A10G"}[pool]
    assert group["labels"]["ml-platform/pool"] == pool
    assert group["amiType"] == "AL2023_x86_64_NVIDIA"


def test_managed_cpu_pool_is_untainted_on_the_standard_ami(managed):
    group = node_group(managed, "cpu").inputs
    assert not group.get("taints")
    assert group["amiType"] == "AL2023_x86_64_STANDARD"
    assert "nvidia.com/gpu.present" not in group["labels"]


def test_system_pool_is_reserved_for_critical_addons(stack):
    group = node_group(stack, "system").inputs
    assert group["taints"] == [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}]
    assert group["capacityType"] == "ON_DEMAND"


@pytest.mark.parametrize("pool", POOLS)
def test_nodes_require_imdsv2_with_one_hop(managed, pool):
    options = launch_template(managed, pool).inputs["metadataOptions"]
    assert options["httpTokens"] == "required"
    assert options["httpPutResponseHopLimit"] == 1


@pytest.mark.parametrize("pool, size", [("system", 50), ("cpu", 100), ("training", 500), ("inference", 200)])
def test_root_volumes_are_encrypted_gp3_sized_per_pool(managed, pool, size):
    (mapping,) = launch_template(managed, pool).inputs["blockDeviceMappings"]
    assert mapping["deviceName"] == "/dev/xvda"
    assert mapping["ebs"]["encrypted"] == "true"
    assert mapping["ebs"]["volumeType"] == "gp3"
    assert mapping["ebs"]["volumeSize"] == size


@pytest.mark.parametrize("pool", POOLS)
def test_nodes_get_no_public_ip(managed, pool):
    private = {s.id for s in managed.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name}
    assert set(node_group(managed, pool).inputs["subnetIds"]) == private
    assert "networkInterfaces" not in launch_template(managed, pool).inputs


def test_instances_and_volumes_carry_cost_tags(managed):
    for spec in launch_template(managed, "training").inputs["tagSpecifications"]:
        assert spec["tags"]["cost-center"] and spec["tags"]["environment"] == "managed"


def test_node_roles_have_only_the_policies_nodes_need_and_not_the_cni_policy(stack):
    """vpc-cni's policy is on aws-node's Pod Identity role (test_cluster.py), not on what every pod can reach."""
    for prefix in ("eks-node-", "karpenter-node-"):
        attached = sorted(a.inputs["policyArn"].rsplit("/", 1)[1]
                          for a in stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                          if a.name.startswith(prefix))
        expected = ["AmazonEC2ContainerRegistryPullOnly", "AmazonEKSWorkerNodePolicy"]
        if stack.stack == "dev":  # nodeSsmAccess: true
            expected.append("AmazonSSMManagedInstanceCore")
        assert attached == sorted(expected), prefix


def test_without_karpenter_pools_there_is_no_karpenter(managed):
    assert not managed.of_type("ml-platform:karpenter:Karpenter")
    assert managed.of_type("ml-platform:gpu:Gpu"), "managed GPU pools still need the device plugin"
