"""GPU enablement: device plugin, DCGM and EFA plugin land exactly on the nodes the GPU pools create."""

from __future__ import annotations

import pytest
import yaml
from k8s_match import affinity_matches, selector_matches, tolerates

RELEASE = "kubernetes:helm.sh/v3:Release"


def _release(recording, chart):
    found = [r for r in recording.of_type(RELEASE) if r.inputs["name"] == chart]
    return found[0] if found else None


def _pool_nodes(recording):
    """Pool name -> (labels, taints) as Karpenter NodePools or managed node groups set them."""
    nodes = {}
    for pool in recording.of_type("kubernetes:karpenter.sh/v1:NodePool"):
        template = pool.inputs["spec"]["template"]
        nodes[pool.inputs["metadata"]["name"]] = (template["metadata"]["labels"], template["spec"].get("taints", []))
    for group in recording.of_type("aws:eks/nodeGroup:NodeGroup"):
        taints = [{**t, "effect": {"NO_SCHEDULE": "NoSchedule"}[t["effect"]]} for t in group.inputs.get("taints", [])]
        nodes[group.inputs["labels"]["ml-platform/pool"]] = (group.inputs["labels"], taints)
    return nodes


@pytest.fixture(params=["dev", "prod", "managed"])
def any_stack(request, dev, prod, managed):
    return {"dev": dev, "prod": prod, "managed": managed}[request.param]


def test_device_plugin_is_pinned(stack):
    release = _release(stack, "nvidia-device-plugin").inputs
    assert release["version"] == "0.20.0"
    assert release["repositoryOpts"] == {"repo": "https://nvidia.github.io/k8s-device-plugin"}
    assert release["values"]["priorityClassName"] == "system-node-critical"
    assert release["values"]["gfd"] == {"enabled": True}, "GPU feature discovery lets pods select GPU model/memory"


def test_device_plugin_runs_on_every_gpu_node_and_nowhere_else(any_stack):
    values = _release(any_stack, "nvidia-device-plugin").inputs["values"]
    for pool, (labels, taints) in _pool_nodes(any_stack).items():
        gpu = labels.get("ml-platform/role") in ("training", "inference")
        assert affinity_matches(values["affinity"], labels) == gpu, pool
        if gpu:
            for taint in taints:
                assert any(tolerates(t, taint) for t in values["tolerations"]), f"{pool}: {taint} not tolerated"


def test_feature_discovery_workers_follow_the_gpu_nodes(stack):
    nfd = _release(stack, "nvidia-device-plugin").inputs["values"]["nfd"]
    for pool, (labels, taints) in _pool_nodes(stack).items():
        gpu = labels.get("ml-platform/role") in ("training", "inference")
        assert selector_matches(nfd["worker"]["nodeSelector"], labels) == gpu, pool
        assert all(any(tolerates(t, taint) for t in nfd["worker"]["tolerations"]) for taint in taints) or not gpu
    for part in ("master", "gc"):
        assert nfd[part]["nodeSelector"] == {"ml-platform/pool": "system"}


def test_dev_inference_shares_each_gpu_four_ways(dev):
    values = _release(dev, "nvidia-device-plugin").inputs["values"]
    labels, _ = _pool_nodes(dev)["inference"]
    config_name = labels["nvidia.com/device-plugin.config"]
    config = yaml.safe_load(values["config"]["map"][config_name])
    assert config == {"version": "v1", "sharing": {"timeSlicing": {"resources": [
        {"name": "nvidia.com/gpu", "replicas": 4}]}}}
    assert values["config"]["default"] == "default" and "default" in values["config"]["map"]
    assert "nvidia.com/device-plugin.config" not in _pool_nodes(dev)["training"][0]
    assert values["migStrategy"] == "none", "otherwise the chart adds SYS_ADMIN for MIG"


def test_prod_does_not_time_slice(prod):
    assert "config" not in _release(prod, "nvidia-device-plugin").inputs["values"]


def test_dcgm_exporter_scrapes_gpu_nodes(stack):
    release = _release(stack, "dcgm-exporter").inputs
    assert release["version"] == "4.8.2"
    values = release["values"]
    for pool, (labels, taints) in _pool_nodes(stack).items():
        gpu = labels.get("ml-platform/role") in ("training", "inference")
        assert selector_matches(values["nodeSelector"], labels) == gpu, pool
        if gpu:
            assert all(any(tolerates(t, taint) for t in values["tolerations"]) for taint in taints)
    assert values["serviceMonitor"] == {"enabled": False}, "no Prometheus operator CRDs in the stack yet"


def test_efa_plugin_only_where_a_pool_uses_efa(dev, prod):
    assert _release(dev, "aws-efa-k8s-device-plugin") is None
    values = _release(prod, "aws-efa-k8s-device-plugin").inputs["values"]
    labels, taints = _pool_nodes(prod)["training"]
    assert selector_matches(values["nodeSelector"], labels)
    assert all(any(tolerates(t, taint) for t in values["tolerations"]) for taint in taints)
    assert ".dkr.ecr.us-east-1.amazonaws.com/" in values["image"]["repository"]


def test_gpu_namespace_admits_the_privileged_plugins(stack):
    (namespace,) = [n for n in stack.of_type("kubernetes:core/v1:Namespace") if n.inputs["metadata"]["name"] == "gpu"]
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    for chart in ("nvidia-device-plugin", "dcgm-exporter"):
        assert _release(stack, chart).inputs["namespace"] == "gpu"


def _requires_sys_admin(values: dict) -> bool:
    """The device plugin chart v0.20.0's own decision (templates/_helpers.tpl: securityContext,
    requiresCapSysAdmin, allPossibleMigStrategiesAreNone, deviceListStrategyIncludesVolumeMount)."""
    if values.get("securityContext") or values.get("compatWithCPUManager"):
        return False  # explicit securityContext / privileged: judged elsewhere
    config = values.get("config") or {}
    has_config_map = bool(config.get("name") or config.get("map"))
    mig = values.get("migStrategy")
    mig_not_none = (mig != "none") if mig else has_config_map
    strategy = values.get("deviceListStrategy")
    volume_mounts = ("volume-mounts" in strategy) if strategy else has_config_map
    return mig_not_none or volume_mounts


def test_device_plugin_runs_without_sys_admin_even_when_time_sliced(stack):
    values = stack.named("kubernetes:helm.sh/v3:Release", "gpu-device-plugin").inputs["values"]
    assert not _requires_sys_admin(values), "the chart would add SYS_ADMIN to the plugin container"
    if stack.stack == "dev":
        assert values["config"]["map"], "dev shares GPUs: the case where the chart adds SYS_ADMIN by default"
    assert _requires_sys_admin({**values, "deviceListStrategy": None}) == bool(values.get("config")), \
        "the chart's rule as read: a config map without an explicit strategy means SYS_ADMIN"
