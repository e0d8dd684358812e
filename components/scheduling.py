"""The scheduling contract between node pools and workloads: labels and taints.

Pools (managed node groups now, Karpenter NodePools later) set these; the
device plugin and model servers select and tolerate them. Deriving both sides
from one place keeps them from drifting apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.config import NodePool
from policies.pricing import INSTANCES

POOL_LABEL = "ml-platform/pool"
ROLE_LABEL = "ml-platform/role"
GPU_MODEL_LABEL = "ml-platform/gpu-model"
# The NVIDIA device plugin chart's default node affinity accepts this label.
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"


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


GPU_TAINT = Taint("nvidia.com/gpu", "present", "NoSchedule")
CRITICAL_ADDONS_TAINT = Taint("CriticalAddonsOnly", "true", "NoSchedule")


def pool_labels(name: str, pool: NodePool) -> dict[str, str]:
    """Labels every node of the pool carries; config labels cannot override ours."""
    labels = {**pool.labels, POOL_LABEL: name, ROLE_LABEL: pool.role}
    if pool.gpu:
        # Config validation allows one GPU model per role, so the first type speaks for all.
        labels[GPU_PRESENT_LABEL] = "true"
        labels[GPU_MODEL_LABEL] = str(INSTANCES[pool.instance_types[0]].gpu_model)
    return labels


def pool_taints(pool: NodePool) -> list[Taint]:
    if pool.gpu:
        return [GPU_TAINT]
    if pool.critical_addons_only:
        return [CRITICAL_ADDONS_TAINT]
    return []
