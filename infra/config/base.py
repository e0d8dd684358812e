"""Shared pieces of the config models: the error type, common types and checks."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated

import pulumi
from croniter import croniter
from pydantic import Field

from catalog.model import distinct

PROJECT = "ml-platform"

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy API).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
                      1096, 1827, 2192, 2557, 2922, 3288, 3653)


class ConfigError(pulumi.RunError):
    """Bad stack configuration. Pulumi prints a RunError without a traceback."""


IAM_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def principal_arns(principals: list[str], what: str) -> list[str]:
    """IAM role/user ARNs whose names (the last path part, used in resource names) are distinct."""
    for arn in principals:
        if not IAM_PRINCIPAL.match(arn):
            raise ValueError(f"{arn!r} is not an IAM role or user ARN (arn:aws:iam::<account>:role/<name>)")
    distinct([arn.rsplit("/", 1)[1] for arn in principals], f"{what} names")
    return principals


def dns_labels(names: Iterable[str], what: str) -> None:
    for name in names:
        if not DNS_LABEL.match(name):
            raise ValueError(f"{what} name {name!r} must be a DNS label (lowercase letters, digits, '-')")


def private_network(value: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    if not value.is_private:
        raise ValueError(f"must be a private (RFC 1918) range, got {value}")
    return value


def retention(days: int, key: str = "") -> int:
    """`days`, or a ValueError (its message led by `key`) when CloudWatch has no such retention period."""
    if days not in LOG_RETENTION_DAYS:
        raise ValueError(f"{key}{days} is not a CloudWatch retention period; allowed: "
                         f"{', '.join(map(str, LOG_RETENTION_DAYS))}")
    return days


Cidr = Annotated[ipaddress.IPv4Network, Field(strict=False)]


# Cron as Velero and Kubernetes CronJobs parse it (robfig/cron v3 ParseStandard): five fields or a descriptor.
CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,?-]+$")


def cron(value: str) -> str:
    """`value`, or a ValueError saying what a cron schedule looks like."""
    fields = value.split()
    if value in CRON_DESCRIPTORS or (len(fields) == 5 and all(CRON_FIELD.match(f) for f in fields)
                                     and croniter.is_valid(value)):
        return value
    raise ValueError(f"{value!r} is not a cron schedule: five fields (minute hour day-of-month month day-of-week) "
                     f"like '0 */6 * * *', or one of {', '.join(CRON_DESCRIPTORS)}")


def longest_gap_seconds(schedule: str) -> int:
    """The longest gap between two runs of a cron schedule over a year of runs (alerts wait twice it)."""
    runs = croniter(schedule, datetime(2026, 1, 1))
    times = [runs.get_next(float) for _ in range(400)]
    return int(max(b - a for a, b in zip(times, times[1:], strict=False)))
