"""Subnet CIDR maths: every subnet inside the VPC, none overlapping, one of each kind per AZ."""

from __future__ import annotations

import ipaddress
import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.subnets import SubnetPlanError, plan_subnets

private_vpcs = st.builds(
    lambda base, prefix: ipaddress.IPv4Network(f"{base}/{prefix}", strict=False),
    st.sampled_from(["10.0.0.0", "10.128.0.0", "172.16.0.0", "192.168.0.0"]),
    st.integers(min_value=16, max_value=22),
)


@given(vpc=private_vpcs, azs=st.integers(min_value=2, max_value=6))
def test_subnets_fit_the_vpc_and_never_overlap(vpc, azs):
    fits = vpc.prefixlen + 1 + math.ceil(math.log2(azs)) + 3 <= 28
    if not fits:
        with pytest.raises(SubnetPlanError, match="is too small"):
            plan_subnets(vpc, azs)
        return
    plan = plan_subnets(vpc, azs)
    subnets = [*plan.private, *plan.public]
    assert len(plan.private) == len(plan.public) == azs
    assert all(s.subnet_of(vpc) for s in subnets)
    assert not any(a.overlaps(b) for a, b in itertools.combinations(subnets, 2))
    assert all(s.prefixlen <= 28 for s in subnets)
    # Private subnets hold the pods, so they are the larger ones.
    assert plan.private[0].num_addresses > plan.public[0].num_addresses


def test_a_slash_16_over_three_azs_gives_large_private_subnets():
    plan = plan_subnets(ipaddress.IPv4Network("10.30.0.0/16"), 3)
    assert [str(s) for s in plan.private] == ["10.30.0.0/19", "10.30.32.0/19", "10.30.64.0/19"]
    assert [str(s) for s in plan.public] == ["10.30.128.0/22", "10.30.132.0/22", "10.30.136.0/22"]


def test_too_small_a_vpc_is_refused_with_the_reason():
    with pytest.raises(SubnetPlanError, match=r"10.0.0.0/24 is too small for 6 AZs: public subnets would be /31"):
        plan_subnets(ipaddress.IPv4Network("10.0.0.0/24"), 6)
