"""Tags by which controllers find the AWS resources this platform creates.

Karpenter selects subnets and security groups by the discovery tag; the AWS
load balancer controller picks subnets by the ELB role tags.
"""

from __future__ import annotations

KARPENTER_DISCOVERY_TAG = "karpenter.sh/discovery"
INTERNAL_ELB_TAG = "kubernetes.io/role/internal-elb"
PUBLIC_ELB_TAG = "kubernetes.io/role/elb"
