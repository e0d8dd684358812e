"""Instance facts: the one table behind config validation, fit checks and the cost estimate.

Specs (vCPU, memory, GPUs, EFA interfaces): aws/karpenter-provider-aws @ v1.14.1
  (commit bde00654cd31, tagged 2026-08-20), website/content/en/docs/reference/instance-types.md
  (from EC2 DescribeInstanceTypes). Specs are the same in every region; prices are per
  region, in catalog/prices.py.
GPU memory is per GPU, AWS's published figure (A10G/L4: 24 GiB; the API reports 22888 MiB).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InstanceType:
    vcpu: int
    memory_gib: int
    gpus: int
    gpu_model: str | None
    gpu_memory_gib: int
    efa_interfaces: int


# fmt: off
INSTANCES: dict[str, InstanceType] = {
    "c6i.large": InstanceType(2, 4, 0, None, 0, 0),
    "c6i.xlarge": InstanceType(4, 8, 0, None, 0, 0),
    "c6i.2xlarge": InstanceType(8, 16, 0, None, 0, 0),
    "c6i.4xlarge": InstanceType(16, 32, 0, None, 0, 0),
    "c6i.8xlarge": InstanceType(32, 64, 0, None, 0, 0),
    "c7i.large": InstanceType(2, 4, 0, None, 0, 0),
    "c7i.xlarge": InstanceType(4, 8, 0, None, 0, 0),
    "c7i.2xlarge": InstanceType(8, 16, 0, None, 0, 0),
    "c7i.4xlarge": InstanceType(16, 32, 0, None, 0, 0),
    "c7i.8xlarge": InstanceType(32, 64, 0, None, 0, 0),
    "m6i.large": InstanceType(2, 8, 0, None, 0, 0),
    "m6i.xlarge": InstanceType(4, 16, 0, None, 0, 0),
    "m6i.2xlarge": InstanceType(8, 32, 0, None, 0, 0),
    "m6i.4xlarge": InstanceType(16, 64, 0, None, 0, 0),
    "p4d.24xlarge": InstanceType(96, 1152, 8, "A100", 40, 4),
    "p4de.24xlarge": InstanceType(96, 1152, 8, "A100", 80, 4),
    "p5.48xlarge": InstanceType(192, 2048, 8, "H100", 80, 32),
    "g5.xlarge": InstanceType(4, 16, 1, "A10G", 24, 0),
    "g5.2xlarge": InstanceType(8, 32, 1, "A10G", 24, 0),
    "g5.4xlarge": InstanceType(16, 64, 1, "A10G", 24, 0),
    "g5.8xlarge": InstanceType(32, 128, 1, "A10G", 24, 1),
    "g5.12xlarge": InstanceType(48, 192, 4, "A10G", 24, 1),
    "g5.48xlarge": InstanceType(192, 768, 8, "A10G", 24, 1),
    "g6.xlarge": InstanceType(4, 16, 1, "L4", 24, 0),
    "g6.2xlarge": InstanceType(8, 32, 1, "L4", 24, 0),
    "g6.4xlarge": InstanceType(16, 64, 1, "L4", 24, 0),
    "g6.12xlarge": InstanceType(48, 192, 4, "L4", 24, 1),
}
# fmt: on

FAMILIES = sorted({name.split(".", 1)[0] for name in INSTANCES})
