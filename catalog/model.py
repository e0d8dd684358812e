"""The base of every typed spec and config model: frozen, unknown keys refused, camelCase in YAML."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


def distinct(values: list, what: str) -> list:
    """`values` unchanged, or a ValueError naming the repeated ones."""
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{what} must be unique, {', '.join(repeated)} repeated")
    return values


# A Go duration as Kubernetes controllers read it (Karpenter, ESO): 30s, 15m, 2h, 1h30m.
GO_DURATION = re.compile(r"^([0-9]+(s|m|h))+$")


def go_duration(value: str, examples: str, what: str = "duration") -> str:
    """`value`, or a ValueError saying what a duration looks like."""
    if not GO_DURATION.match(value):
        raise ValueError(f"{value!r} is not a {what} like {examples}")
    return value
