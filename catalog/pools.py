"""Node pool config: `ml-platform:nodePools.<name>`.

A pool is provisioned either as an EKS managed node group (`managed`: fixed
size, for the system pool) or by Karpenter (`karpenter`: scales from zero on
demand). Sizes, limits and instance choices are checked against the instance
table in catalog/instances.py, so a pool that could never launch a node is a
config error, not a pod stuck Pending.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Literal

from pydantic import Field, field_validator, model_validator

from catalog.instances import FAMILIES, INSTANCES
from catalog.model import Model, distinct, go_duration

# EKS managed node groups hold at most 450 nodes (EKS service quotas).
MAX_NODES_PER_GROUP = 450
DURATION = re.compile(r"^(([0-9]+(s|m|h))+|Never)$")  # Karpenter v1 NodePool duration pattern
# How long Karpenter may drain a node before it deletes the pods anyway: long enough for a training
# job to write a checkpoint, short for stateless CPU and inference work. Without it a PDB with no
# allowed disruptions or a do-not-disrupt pod blocks a drain, and `pulumi destroy`, forever.
ROLE_GRACE: dict[str | None, str] = {"cpu": "30m", "training": "2h", "inference": "15m"}

# Which GPU models each pool role may run; H100 (p5) only with allowH100.
ROLE_GPU_MODELS: dict[str, frozenset[str | None]] = {
    "system": frozenset({None}),
    "cpu": frozenset({None}),
    "training": frozenset({"A100"}),
    "inference": frozenset({"A10G", "L4"}),
}


# The plain labels existing manifests select on (`workload-type`, `accelerator`), by role.
ROLE_WORKLOAD_TYPE: dict[str | None, str] = {"cpu": "training", "training": "training", "inference": "inference"}

# Root volume per node by role: images and scratch for CPU work, datasets and checkpoints
# staged on training nodes, model weights cached on inference nodes.
ROLE_DISK_GIB: dict[str | None, int] = {"system": 50, "cpu": 100, "training": 500, "inference": 200}


class Limits(Model):
    """Karpenter NodePool limits: the most this pool may hold in total."""

    cpu: int = Field(ge=1, description="Total vCPUs across the pool's nodes.")
    memory_gib: int = Field(alias="memoryGiB", ge=1, description="Total memory across the pool's nodes, GiB.")
    gpus: int = Field(0, ge=0, description="Total nvidia.com/gpu across the pool's nodes, as Karpenter counts them "
                      "from node capacity: with time-slicing, each GPU counts once per slice.")
    nodes: int | None = Field(None, ge=1, description="Most nodes; time-sliced pools always get it (maxSize).")


class Budget(Model):
    nodes: str = Field(pattern=r"^((100|[0-9]{1,2})%|[0-9]+)$",
                       description="Nodes (count or percentage) that may be disrupted at once.")
    schedule: str | None = Field(None, description="Cron schedule when this budget applies (with duration).")
    duration: str | None = Field(None, pattern=r"^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$",
                                 description="How long the budget applies after each schedule hit.")
    reasons: list[Literal["Underutilized", "Empty", "Drifted"]] | None = Field(
        None, description="Disruption reasons the budget limits; all when unset.")

    @model_validator(mode="after")
    def _paired(self) -> Budget:
        if (self.schedule is None) != (self.duration is None):
            raise ValueError("schedule and duration must be set together")
        return self


class Disruption(Model):
    """How Karpenter may remove this pool's nodes."""

    consolidation_policy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized", "Balanced"] = Field(
        "WhenEmptyOrUnderutilized",
        description="WhenEmpty never moves running pods (training); the others also repack underused nodes.")
    consolidate_after: str = Field("5m", description="Wait after the last pod change before consolidating.")
    expire_after: str = Field("720h", description="Replace nodes older than this (fresh AMIs, patched kernels).")
    budgets: list[Budget] = Field(default_factory=lambda: [Budget(nodes="10%")], max_length=50,
                                  description="Disruption budgets.")

    @field_validator("consolidate_after", "expire_after")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not DURATION.match(value):
            raise ValueError(f"{value!r} is not a Karpenter duration like 30s, 5m, 720h or Never")
        return value


class NodePool(Model):
    role: Literal["system", "cpu", "training", "inference"] = Field(
        description="What the pool runs: system controllers, CPU jobs, A100 training or A10G inference."
    )
    provisioner: Literal["managed", "karpenter"] = Field(
        "managed", description="`managed`: a fixed-size EKS managed node group; `karpenter`: scales on demand."
    )
    instance_types: list[str] = Field(default_factory=list, description="EC2 instance types, from catalog/instances.py.")
    instance_families: list[str] = Field(
        default_factory=list,
        description="Instance families (c6i, g5, ...): every size of the family in catalog/instances.py.")
    capacity_types: list[Literal["on-demand", "spot"]] = Field(
        default_factory=lambda: ["on-demand"],
        description="on-demand and/or spot; Karpenter takes spot first when both are allowed.")
    min_size: int = Field(0, ge=0, description="Managed pools: fixed node floor.")
    desired_size: int | None = Field(None, ge=0, description="Managed pools: nodes at creation; defaults to minSize.")
    max_size: int = Field(ge=1, le=MAX_NODES_PER_GROUP,
                          description="Most nodes; for Karpenter pools the default limits and cost ceiling.")
    disk_size_gib: int = Field(
        alias="diskSizeGiB", ge=20, le=16384,
        default_factory=lambda data: ROLE_DISK_GIB.get(data.get("role"), ROLE_DISK_GIB["cpu"]),
        description="Encrypted gp3 root volume per node, GiB; defaults per role (system 50, cpu 100, "
                    "training 500, inference 200).")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra node labels.")
    workload_type: Literal["training", "inference", "batch"] | None = Field(
        default_factory=lambda data: ROLE_WORKLOAD_TYPE.get(data.get("role")),
        description="The plain `workload-type` node label manifests select on; defaults per role (cpu and "
                    "training: training, inference: inference; none on the system pool). A CPU pool kept for "
                    "batch work says batch.")
    termination_grace_period: str = Field(
        default_factory=lambda data: ROLE_GRACE.get(data.get("role"), "30m"),
        description="Karpenter: longest drain of a node before its pods are deleted anyway (and the bound on "
                    "`pulumi destroy`); defaults per role (cpu 30m, training 2h, inference 15m).")
    critical_addons_only: bool = Field(
        False, description="Taint the pool `CriticalAddonsOnly=true:NoSchedule` (system pool only)."
    )
    limits: Limits | None = Field(None, description="Karpenter: total cpu/memory/GPU; default maxSize × largest type.")
    disruption: Disruption = Field(default_factory=Disruption, description="Karpenter: consolidation and expiry.")
    efa: bool = Field(False, description="Training: EFA networking and a cluster placement group for multi-node jobs.")
    efa_zone_id: str | None = Field(
        None, alias="efaZoneId",
        description="Training with efa: the one zone, by zone ID (use1-az4), the pool's nodes run in; pick one "
                    "that offers the pool's instance types in your account (docs/karpenter.md).")
    allow_h100: bool = Field(False, alias="allowH100", description="Training: allow H100 (p5) instances.")
    time_slicing_replicas: int | None = Field(
        None, ge=2, le=48, description="Inference: share each GPU among this many pods (NVIDIA time-slicing).")

    @field_validator("termination_grace_period")
    @classmethod
    def _grace(cls, value: str) -> str:
        # Karpenter v1 terminationGracePeriod pattern: a duration, never Never.
        return go_duration(value, "15m, 2h or 1h30m", "Karpenter duration")

    @field_validator("instance_types")
    @classmethod
    def _known_types(cls, types_: list[str]) -> list[str]:
        unknown = [t for t in types_ if t not in INSTANCES]
        if unknown:
            raise ValueError(
                f"unknown instance type {', '.join(unknown)}; allowed (catalog/instances.py): {', '.join(INSTANCES)}"
            )
        return distinct(types_, "instance types")

    @field_validator("instance_families")
    @classmethod
    def _known_families(cls, families: list[str]) -> list[str]:
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            raise ValueError(f"unknown instance family {', '.join(unknown)}; allowed: {', '.join(FAMILIES)}")
        return families

    @field_validator("capacity_types")
    @classmethod
    def _capacity(cls, types_: list[str]) -> list[str]:
        if not types_:
            raise ValueError("list on-demand and/or spot")
        return distinct(types_, "capacity types")

    @model_validator(mode="after")
    def _consistent(self) -> NodePool:
        if not self.types:
            raise ValueError("set instanceTypes or instanceFamilies")
        allowed = ROLE_GPU_MODELS[self.role] | ({"H100"} if self.allow_h100 else set())
        wrong = [t for t in self.types if INSTANCES[t].gpu_model not in allowed]
        if wrong:
            wants = ", ".join(sorted(m or "no GPU" for m in allowed))
            hint = " (H100 needs allowH100: true)" if any(INSTANCES[t].gpu_model == "H100" for t in wrong) else ""
            raise ValueError(f"role {self.role} runs {wants}; {', '.join(wrong)} does not fit{hint}")
        if self.critical_addons_only and self.role != "system":
            raise ValueError("criticalAddonsOnly is only for the system pool")
        if self.allow_h100 and self.role != "training":
            raise ValueError("allowH100 is only for training pools")
        if self.efa:
            self._check_efa()
        elif self.efa_zone_id is not None:
            raise ValueError("efaZoneId is only for pools with efa: true")
        if self.role == "system" and self.workload_type is not None:
            raise ValueError("the system pool runs controllers only: it takes no workloadType")
        if self.time_slicing_replicas and self.role != "inference":
            raise ValueError("timeSlicingReplicas is only for inference pools")
        if self.provisioner == "managed":
            self._check_managed()
        else:
            self._check_karpenter()
        return self

    def _check_efa(self) -> None:
        if self.role != "training" or self.provisioner != "karpenter":
            raise ValueError("efa is only for Karpenter training pools")
        without = [t for t in self.types if not INSTANCES[t].efa_interfaces]
        if without:
            raise ValueError(f"efa needs EFA-capable instance types; {', '.join(without)} has no EFA")
        if self.efa_zone_id is None:
            raise ValueError("efa needs efaZoneId: EFA nodes share one zone, named by its zone ID (like use1-az4) "
                             "because zone names map to different zones in each account")

    def _check_managed(self) -> None:
        if len(self.capacity_types) != 1:
            raise ValueError(f"a managed node group has one capacity type, got {self.capacity_types}")
        if self.min_size > self.max_size:
            raise ValueError(f"maxSize must be >= minSize (got {self.max_size} < {self.min_size})")
        if not self.min_size <= self.desired <= self.max_size:
            raise ValueError(f"desiredSize must be between minSize and maxSize "
                             f"(got {self.desired}, not in {self.min_size}..{self.max_size})")
        if self.min_size == 0:
            raise ValueError("a managed pool at minSize 0 never scales up (no autoscaler runs for managed "
                             "node groups); use provisioner: karpenter to scale from zero, or minSize >= 1")

    def _check_karpenter(self) -> None:
        if self.role == "system":
            raise ValueError("the system pool runs Karpenter itself, so it must be provisioner: managed")
        if self.desired_size is not None or self.min_size:
            raise ValueError("Karpenter pools scale from zero on demand: drop minSize and desiredSize")
        limits = self.effective_limits
        fits = [t for t in self.types if INSTANCES[t].vcpu <= limits.cpu
                and INSTANCES[t].memory_gib <= limits.memory_gib and self.counted_gpus(t) <= limits.gpus]
        if not fits:
            smallest = min(self.types, key=lambda t: (INSTANCES[t].gpus, INSTANCES[t].vcpu, INSTANCES[t].memory_gib))
            spec = INSTANCES[smallest]
            raise ValueError(
                f"limits (cpu {limits.cpu}, memoryGiB {limits.memory_gib}, gpus {limits.gpus}) are below one "
                f"{smallest} ({spec.vcpu} vCPU, {spec.memory_gib} GiB, {spec.gpus} GPUs): Karpenter could never "
                f"launch a node (\"all available instance types exceed limits\")")

    @cached_property
    def types(self) -> list[str]:
        """Instance types of the pool: the listed ones plus every priced size of the listed families."""
        expanded = [t for t in INSTANCES if t.split(".", 1)[0] in self.instance_families]
        return list(dict.fromkeys([*self.instance_types, *expanded]))

    @property
    def slices(self) -> int:
        """How many pods share each GPU (1 without time-slicing)."""
        return self.time_slicing_replicas or 1

    def counted_gpus(self, instance_type: str) -> int:
        """nvidia.com/gpu one node of `instance_type` advertises, and Karpenter counts against limits."""
        return INSTANCES[instance_type].gpus * self.slices

    @cached_property
    def gpu_capacity(self) -> int:
        """The pool's GPU capacity for the platform (quotas, fit checks): nodes x GPUs per node x slices."""
        return self.max_size * max(self.counted_gpus(t) for t in self.types)

    @cached_property
    def effective_limits(self) -> Limits:
        """Configured limits, or maxSize nodes of the pool's largest type in each dimension.

        A time-sliced pool is bounded by node count: its nodes advertise one GPU per slice.
        """
        nodes = self.max_size if self.time_slicing_replicas else None
        if self.limits is not None:
            return self.limits if self.limits.nodes or nodes is None else self.limits.model_copy(
                update={"nodes": nodes})
        specs = [INSTANCES[t] for t in self.types]
        return Limits(cpu=max(s.vcpu for s in specs) * self.max_size,
                      memory_gib=max(s.memory_gib for s in specs) * self.max_size,
                      gpus=self.gpu_capacity, nodes=nodes)

    @property
    def grace_seconds(self) -> int:
        return duration_seconds(self.termination_grace_period)

    @property
    def desired(self) -> int:
        return self.min_size if self.desired_size is None else self.desired_size

    @property
    def gpu(self) -> bool:
        return self.role in ("training", "inference")


def duration_seconds(duration: str) -> int:
    """Seconds in a Go-style duration like 1h30m or 45s."""
    return sum(int(n) * {"h": 3600, "m": 60, "s": 1}[unit] for n, unit in re.findall(r"([0-9]+)([hms])", duration))
