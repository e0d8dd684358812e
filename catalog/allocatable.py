"""What one node can give pods: its capacity less kube-reserved and the kubelet's eviction threshold.

The AL2023 formula, from nodeadm (awslabs/amazon-eks-ami v20260724, commit 81fec2e8):
- nodeadm/internal/kubelet/config.go:283-286, 416-443: kube-reserved CPU is 6 % of the first core,
  1 % of the second, 0.5 % of the third and fourth and 0.25 % of every further core; kube-reserved
  memory is 11 MiB x maxPods + 255 MiB; no system-reserved.
- config.go:110-114: eviction-hard memory.available 100Mi.
- eni_max_pods.go:75-76: maxPods = ENIs x (IPv4 addresses per ENI - 1) + 2, no cap; ENIs and addresses
  per type from nodeadm/internal/kubelet/instance-info.jsonl (below, for the types catalog/instances.py has).
EKS managed node groups may pass a lower maxPods; the memory reserve then shrinks, so this is conservative.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog.instances import INSTANCES

EVICTION_MEMORY_MIB = 100
# type -> (default ENIs, IPv4 addresses per ENI)
# fmt: off
ENIS: dict[str, tuple[int, int]] = {
    "c6i.large": (3, 10), "c6i.xlarge": (4, 15), "c6i.2xlarge": (4, 15), "c6i.4xlarge": (8, 30),
    "c6i.8xlarge": (8, 30),
    "c7i.large": (3, 10), "c7i.xlarge": (4, 15), "c7i.2xlarge": (4, 15), "c7i.4xlarge": (8, 30),
    "c7i.8xlarge": (8, 30),
    "m6i.large": (3, 10), "m6i.xlarge": (4, 15), "m6i.2xlarge": (4, 15), "m6i.4xlarge": (8, 30),
    "p4d.24xlarge": (15, 50), "p4de.24xlarge": (15, 50), "p5.48xlarge": (2, 50),
    "g5.xlarge": (4, 15), "g5.2xlarge": (4, 15), "g5.4xlarge": (8, 30), "g5.8xlarge": (8, 30),
    "g5.12xlarge": (15, 50), "g5.48xlarge": (7, 50),
    "g6.xlarge": (4, 15), "g6.2xlarge": (4, 15), "g6.4xlarge": (8, 30), "g6.12xlarge": (8, 30),
}
# fmt: on


@dataclass(frozen=True)
class Allocatable:
    cpu_millicores: int
    memory_mib: int
    pods: int


def max_pods(instance_type: str) -> int:
    enis, addresses = ENIS[instance_type]
    return enis * (addresses - 1) + 2


def reserved_cpu_millicores(vcpu: int) -> int:
    """nodeadm's getCPUMillicoresToReserve: a step function over the cores."""
    total = vcpu * 1000
    reserved = 0
    for start, end, basis_points in ((0, 1000, 600), (1000, 2000, 100), (2000, 4000, 50), (4000, total, 25)):
        if total > start:
            reserved += (min(total, end) - start) * basis_points // 10000
    return reserved


def allocatable(instance_type: str) -> Allocatable:
    spec, pods = INSTANCES[instance_type], max_pods(instance_type)
    return Allocatable(cpu_millicores=spec.vcpu * 1000 - reserved_cpu_millicores(spec.vcpu),
                       memory_mib=spec.memory_gib * 1024 - (11 * pods + 255) - EVICTION_MEMORY_MIB, pods=pods)
