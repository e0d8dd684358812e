"""GPU enablement: the NVIDIA device plugin (with GPU feature discovery), DCGM exporter, EFA plugin.

Every DaemonSet here derives its tolerations and node selection from
catalog/scheduling.py, the module the pools take their taints and labels
from, so the plugin always lands on exactly the nodes the GPU pools create.
GPU pools must use the NVIDIA AL2023 AMI variant (managed: AL2023_x86_64_NVIDIA;
Karpenter: the al2023 alias resolves it): the plain AMI has no driver and the
plugin fails with `libnvidia-ml.so.1` not found.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from catalog import metrics, namespaces
from catalog.charts import DCGM_EXPORTER, EFA_DEVICE_PLUGIN, NVIDIA_DEVICE_PLUGIN
from catalog.pools import NodePool
from catalog.scheduling import (
    EFA_LABEL,
    GPU_PRESENT_LABEL,
    GPU_TAINT,
    gpu_node_affinity,
    on_system_pool,
    time_slicing_config,
)
from components.handles import ClusterHandle, PlatformContext
from components.namespace import NamespaceArgs, platform_namespace

NAMESPACE = namespaces.GPU
# The plugins mount host paths (/var/lib/kubelet/device-plugins) and need host devices.
POD_SECURITY = "privileged"


@dataclass(frozen=True)
class GpuArgs:
    context: PlatformContext
    cluster: ClusterHandle
    pools: Mapping[str, NodePool]  # the GPU pools
    dcgm_exporter: bool


def device_plugin_values(pools: Mapping[str, NodePool], system_pool: str) -> dict:
    """Device plugin + GFD on GPU nodes only; NFD's controllers on the system pool."""
    on_system = on_system_pool(system_pool)
    values: dict = {
        "priorityClassName": "system-node-critical",
        "tolerations": [GPU_TAINT.toleration()],
        "affinity": gpu_node_affinity(),
        "gfd": {"enabled": True},
        # With a config map present (time-slicing) chart v0.20.0 adds SYS_ADMIN unless both are set
        # explicitly (templates/_helpers.tpl, requiresCapSysAdmin): no MIG, and a device list strategy
        # without volume-mounts. envvar is the plugin's own default.
        "migStrategy": "none",
        "deviceListStrategy": "envvar",
        "nfd": {"master": on_system, "gc": on_system,
                "worker": {"nodeSelector": {GPU_PRESENT_LABEL: "true"}, "tolerations": [GPU_TAINT.toleration()]}},
    }
    replicas = sorted({p.time_slicing_replicas for p in pools.values() if p.time_slicing_replicas})
    if replicas:
        # Nodes pick a config by the nvidia.com/device-plugin.config label their pool sets.
        values["config"] = {
            "default": "default",
            "map": {"default": "version: v1\n", **{time_slicing_config(n): time_slicing(n) for n in replicas}},
        }
    return values


def time_slicing(replicas: int) -> str:
    """Device plugin config (format of the plugin's README, v0.20.0) sharing each GPU `replicas` ways."""
    return ("version: v1\n"
            "sharing:\n"
            "  timeSlicing:\n"
            "    resources:\n"
            "    - name: nvidia.com/gpu\n"
            f"      replicas: {replicas}\n")


def dcgm_values() -> dict:
    return {
        "nodeSelector": {GPU_PRESENT_LABEL: "true"},
        "tolerations": [GPU_TAINT.toleration()],
        # The chart's own ServiceMonitor (on by default) would need the operator's CRDs before this release;
        # the observability component scrapes the exporter instead (catalog/metrics.py DCGM).
        "serviceMonitor": {"enabled": False},
    }


def efa_values(region: str) -> dict:
    """The chart pins a us-west-2 image; pull the same image from the stack's region."""
    return {
        "image": {"repository": f"602401143452.dkr.ecr.{region}.amazonaws.com/eks/aws-efa-k8s-device-plugin"},
        "nodeSelector": {EFA_LABEL: "true"},
        "tolerations": [GPU_TAINT.toleration()],
    }


class Gpu(pulumi.ComponentResource):
    """Installs what GPU nodes need to advertise `nvidia.com/gpu` (and EFA) and report GPU metrics."""

    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: GpuArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ml-platform:gpu:Gpu", name, None, opts)
        gpu = platform_namespace(
            f"{name}-namespace",
            # Prometheus in `monitoring` scrapes the DCGM exporter: default-deny would drop it.
            NamespaceArgs(NAMESPACE, POD_SECURITY, scraped_ports=[metrics.DCGM.port] if args.dcgm_exporter else []),
            args.cluster, parent=self)
        gpu.chart(f"{name}-device-plugin", NVIDIA_DEVICE_PLUGIN,
                  device_plugin_values(args.pools, args.context.system_pool_name))
        if args.dcgm_exporter:
            gpu.chart(f"{name}-dcgm-exporter", DCGM_EXPORTER, dcgm_values())
        if any(pool.efa for pool in args.pools.values()):
            gpu.chart(f"{name}-efa-device-plugin", EFA_DEVICE_PLUGIN, efa_values(args.context.region))

        self.namespace = gpu.namespace
        self.register_outputs({"namespace": self.namespace})
