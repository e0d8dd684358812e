"""Instance facts and prices: the one table behind config validation, fit checks and cost.

Region: us-east-1, Linux, shared tenancy, on-demand $/hour.
Prices: aws/karpenter-provider-aws @ v1.14.1 (commit bde00654cd31, tagged 2026-08-20),
  pkg/providers/pricing/zz_generated.pricing_aws.go, us-east-1, generated 2026-07-06.
  P4d/P4de/P5 are after AWS's June 2025 cut (before: p4d 32.77, p4de 40.97, p5 98.32 $/h);
  price lists from before June 2025 overstate them by 33-44 %.
Specs (vCPU, memory, GPUs, EFA interfaces): same repository and tag,
  website/content/en/docs/reference/instance-types.md (from EC2 DescribeInstanceTypes).
GPU memory is per GPU, AWS's published figure (A10G/L4: 24 GiB; the API reports 22888 MiB).
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_REGION = "us-east-1"
PRICES_SOURCE = (
    "aws/karpenter-provider-aws v1.14.1 pkg/providers/pricing/zz_generated.pricing_aws.go (us-east-1)"
)
PRICES_DATE = "2026-07-06"


@dataclass(frozen=True)
class InstanceType:
    vcpu: int
    memory_gib: int
    gpus: int
    gpu_model: str | None
    gpu_memory_gib: int
    on_demand_usd_per_hour: float
    efa_interfaces: int


# fmt: off
INSTANCES: dict[str, InstanceType] = {
    "c6i.large": InstanceType(2, 4, 0, None, 0, 0.085, 0),
    "c6i.xlarge": InstanceType(4, 8, 0, None, 0, 0.17, 0),
    "c6i.2xlarge": InstanceType(8, 16, 0, None, 0, 0.34, 0),
    "c6i.4xlarge": InstanceType(16, 32, 0, None, 0, 0.68, 0),
    "c6i.8xlarge": InstanceType(32, 64, 0, None, 0, 1.36, 0),
    "c7i.large": InstanceType(2, 4, 0, None, 0, 0.08925, 0),
    "c7i.xlarge": InstanceType(4, 8, 0, None, 0, 0.1785, 0),
    "c7i.2xlarge": InstanceType(8, 16, 0, None, 0, 0.357, 0),
    "c7i.4xlarge": InstanceType(16, 32, 0, None, 0, 0.714, 0),
    "c7i.8xlarge": InstanceType(32, 64, 0, None, 0, 1.428, 0),
    "m6i.large": InstanceType(2, 8, 0, None, 0, 0.096, 0),
    "m6i.xlarge": InstanceType(4, 16, 0, None, 0, 0.192, 0),
    "m6i.2xlarge": InstanceType(8, 32, 0, None, 0, 0.384, 0),
    "m6i.4xlarge": InstanceType(16, 64, 0, None, 0, 0.768, 0),
    "p4d.24xlarge": InstanceType(96, 1152, 8, 'A100', 40, 21.957642, 4),
    "p4de.24xlarge": InstanceType(96, 1152, 8, 'A100', 80, 27.44705, 4),
    "p5.48xlarge": InstanceType(192, 2048, 8, 'H100', 80, 55.04, 32),
    "g5.xlarge": InstanceType(4, 16, 1, 'A10G', 24, 1.006, 0),
    "g5.2xlarge": InstanceType(8, 32, 1, 'A10G', 24, 1.212, 0),
    "g5.4xlarge": InstanceType(16, 64, 1, 'A10G', 24, 1.624, 0),
    "g5.8xlarge": InstanceType(32, 128, 1, 'A10G', 24, 2.448, 1),
    "g5.12xlarge": InstanceType(48, 192, 4, 'A10G', 24, 5.672, 1),
    "g5.48xlarge": InstanceType(192, 768, 8, 'A10G', 24, 16.288, 1),
    "g6.xlarge": InstanceType(4, 16, 1, 'L4', 24, 0.8048, 0),
    "g6.2xlarge": InstanceType(8, 32, 1, 'L4', 24, 0.9776, 0),
    "g6.4xlarge": InstanceType(16, 64, 1, 'L4', 24, 1.3232, 0),
    "g6.12xlarge": InstanceType(48, 192, 4, 'L4', 24, 4.6016, 1),
}
# fmt: on

# --- fixed and per-unit prices, us-east-1 (read 2026-11-23) -------------------------------------
# EKS: $0.10 per cluster-hour in standard support, $0.60 in extended support (AWS Containers blog,
#   "Amazon EKS extended support for Kubernetes versions pricing").
# NAT gateway: $0.045 per hour and per GB processed (aws.amazon.com/vpc/pricing).
# Interface endpoints: $0.01 per endpoint per AZ-hour (PrivateLink pricing; rate from secondary sources).
# EBS gp3: $0.08 per GB-month, 3,000 IOPS and 125 MB/s included (secondary sources, 2026-02).
# CloudWatch Logs ingestion (standard class): $0.50 per GB (secondary sources, 2026-06).
# KMS: $1 per customer-managed key per month (aws.amazon.com/kms/pricing).
HOURS_PER_MONTH = 730
EKS_CLUSTER_HOUR = {"STANDARD": 0.10, "EXTENDED": 0.60}
NAT_GATEWAY_HOUR = 0.045
NAT_GATEWAY_GB = 0.045
INTERFACE_ENDPOINT_AZ_HOUR = 0.01
EBS_GP3_GB_MONTH = 0.08
LOG_INGESTION_GB = 0.50
KMS_KEY_MONTH = 1.0

# Assumptions, not prices: what a month of use looks like where the plan cannot know.
SPOT_DISCOUNT = 0.6  # spot at 40 % of on-demand; real discounts vary by type and AZ (GPU less)
NAT_GB_PER_MONTH = 500  # data through the NAT gateways per stack
LOG_GB_PER_MONTH = 20  # per log group (control plane or flow logs)
