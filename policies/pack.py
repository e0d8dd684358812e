"""The rule roster: every rule of the pack, in one list. Importing it starts nothing."""

from __future__ import annotations

from policies import aws, cost, kubernetes

RULES = [*aws.RULES, *kubernetes.RULES, *cost.RULES]
