"""Subnet CIDR plan: computed from the VPC CIDR so nobody types subnet ranges by hand.

The VPC is split in two halves. The first half holds one private subnet per AZ
(large: pods take VPC IPs under the VPC CNI). The second half holds one small
public subnet per AZ, for NAT gateways and load balancers only.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

# AWS subnets are between /16 and /28.
SMALLEST_SUBNET_PREFIX = 28
# Public subnets are this many bits smaller than private ones (1/8 of the size).
PUBLIC_SHRINK_BITS = 3


class SubnetPlanError(ValueError):
    """The VPC CIDR cannot hold the requested subnets."""


@dataclass(frozen=True)
class SubnetPlan:
    private: tuple[ipaddress.IPv4Network, ...]
    public: tuple[ipaddress.IPv4Network, ...]


def plan_subnets(vpc: ipaddress.IPv4Network, az_count: int) -> SubnetPlan:
    """One private and one public subnet per AZ, all inside `vpc`, none overlapping."""
    if az_count < 1:
        raise SubnetPlanError("need at least one availability zone")
    if vpc.prefixlen < 16:
        raise SubnetPlanError(f"a VPC CIDR must be /16 or smaller, got {vpc}")
    bits = max(1, math.ceil(math.log2(az_count)))
    private_prefix = vpc.prefixlen + 1 + bits
    public_prefix = private_prefix + PUBLIC_SHRINK_BITS
    if public_prefix > SMALLEST_SUBNET_PREFIX:
        raise SubnetPlanError(
            f"{vpc} is too small for {az_count} AZs: public subnets would be /{public_prefix}, "
            f"AWS allows /{SMALLEST_SUBNET_PREFIX} at most; use a larger VPC CIDR (a /16 is advised)"
        )
    private_half, public_half = vpc.subnets(prefixlen_diff=1)
    private = tuple(private_half.subnets(new_prefix=private_prefix))[:az_count]
    public = tuple(public_half.subnets(new_prefix=public_prefix))[:az_count]
    return SubnetPlan(private=private, public=public)
