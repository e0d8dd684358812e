"""Availability zone IDs: the same physical zone in every account, unlike zone names.

A zone ID is `<region code>-az<N>`; the region code abbreviates the region
name (us-east-1 -> use1, eu-west-1 -> euw1, ap-southeast-2 -> apse2,
us-gov-west-1 -> usgw1), as the EC2 DescribeAvailabilityZones ZoneId field shows.
Which zone ID a zone *name* is differs per account, so only the region can be
checked offline; the name-to-ID mapping and the instance type offerings are
checked against the account before `up` (docs/karpenter.md).
"""

from __future__ import annotations

import re

_WORDS = {"north": "n", "south": "s", "east": "e", "west": "w", "central": "c", "northeast": "ne",
          "southeast": "se", "northwest": "nw", "southwest": "sw", "gov": "g", "iso": "i", "isob": "ib"}
ZONE_ID = re.compile(r"^([a-z]+[0-9]+)-az[0-9]+$")


def region_code(region: str) -> str | None:
    """`use1` for us-east-1; None for a region name this cannot abbreviate."""
    country, *words, number = region.split("-")
    if not number.isdigit() or any(w not in _WORDS for w in words):
        return None
    return country + "".join(_WORDS[w] for w in words) + number


def zone_id_problem(zone_id: str, region: str) -> str | None:
    """Why `zone_id` cannot be a zone of `region`, or None."""
    match = ZONE_ID.match(zone_id)
    if not match:
        return f"{zone_id!r} is not a zone ID like use1-az4 (zone names such as us-east-1a differ per account)"
    code = region_code(region)
    if code is not None and match.group(1) != code:
        return f"{zone_id!r} is not a zone of {region} (its zone IDs start with {code}-az)"
    return None
