"""The scheduling contract between node pools and workloads: labels and taints.

Pools (managed node groups now, Karpenter NodePools later) set these; the
device plugin and model servers select and tolerate them. Deriving both sides
from one place keeps them from drifting apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog.instances import INSTANCES
from catalog.pools import NodePool

GPU_RESOURCE = "nvidia.com/gpu"
POOL_LABEL = "ml-platform/pool"
# Plain labels common workload manifests select on (`workload-type: training, accelerator: nvidia-a100`).
WORKLOAD_TYPE_LABEL = "workload-type"
ACCELERATOR_LABEL = "accelerator"
ACCELERATORS = {None: "cpu", "A100": "nvidia-a100", "A10G": "nvidia-a10g", "L4": "nvidia-l4", "H100": "nvidia-h100"}
ROLE_LABEL = "ml-platform/role"
GPU_MODEL_LABEL = "ml-platform/gpu-model"
# The NVIDIA device plugin chart's default node affinity accepts this label.
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
EFA_LABEL = "ml-platform/efa"
# The device plugin picks a named config from its config map per node by this label.
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str  # Kubernetes spelling: NoSchedule, NoExecute, PreferNoSchedule

    @property
    def eks_effect(self) -> str:
        """The EKS node group API spells effects NO_SCHEDULE, NO_EXECUTE, PREFER_NO_SCHEDULE."""
        return {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE",
                "PreferNoSchedule": "PREFER_NO_SCHEDULE"}[self.effect]

    def toleration(self) -> dict[str, str]:
        return {"key": self.key, "operator": "Equal", "value": self.value, "effect": self.effect}

    def as_k8s(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value, "effect": self.effect}


GPU_TAINT = Taint("nvidia.com/gpu", "present", "NoSchedule")
CRITICAL_ADDONS_TAINT = Taint("CriticalAddonsOnly", "true", "NoSchedule")
# Controllers tolerate the system pool's taint whatever its value (as upstream charts do).
CRITICAL_ADDONS_TOLERATION = {"key": CRITICAL_ADDONS_TAINT.key, "operator": "Exists"}


def pool_labels(name: str, pool: NodePool) -> dict[str, str]:
    """Labels every node of the pool carries; config labels cannot override ours."""
    labels = {**pool.labels, POOL_LABEL: name, ROLE_LABEL: pool.role}
    if pool.workload_type is not None:
        labels[WORKLOAD_TYPE_LABEL] = pool.workload_type
        labels[ACCELERATOR_LABEL] = ACCELERATORS[INSTANCES[pool.types[0]].gpu_model]
    if pool.gpu:
        # Config validation allows one GPU model per role, so the first type speaks for all.
        labels[GPU_PRESENT_LABEL] = "true"
        labels[GPU_MODEL_LABEL] = str(INSTANCES[pool.types[0]].gpu_model)
    if pool.efa:
        labels[EFA_LABEL] = "true"
    if pool.time_slicing_replicas:
        labels[DEVICE_PLUGIN_CONFIG_LABEL] = time_slicing_config(pool.time_slicing_replicas)
    return labels


def time_slicing_config(replicas: int) -> str:
    """Name of the device plugin config that shares each GPU among `replicas` pods."""
    return f"time-sliced-{replicas}"


def gpu_node_affinity() -> dict:
    """Required node affinity for GPU-node DaemonSets: nodes the GPU pools label."""
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": GPU_PRESENT_LABEL, "operator": "In", "values": ["true"]}]}]}}}


def pool_taints(pool: NodePool) -> list[Taint]:
    if pool.gpu:
        return [GPU_TAINT]
    if pool.critical_addons_only:
        return [CRITICAL_ADDONS_TAINT]
    return []


def cost_tags(pool) -> dict[str, str]:
    """Tags every node of a pool carries for cost allocation (activate `workload-type` in Billing: docs/ci.md)."""
    return {WORKLOAD_TYPE_LABEL: pool.workload_type or pool.role}


def on_system_pool(system_pool: str) -> dict:
    """The nodeSelector and toleration that put a controller on the system pool (its CriticalAddonsOnly taint)."""
    return {"nodeSelector": {POOL_LABEL: system_pool}, "tolerations": [CRITICAL_ADDONS_TOLERATION]}
