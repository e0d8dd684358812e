"""The rule roster: every rule of the pack, in one list. Importing it starts nothing."""

from __future__ import annotations

from policies import backup, cost, data, eks, iam, kubernetes, network, nodes, observability, rbac, serving

RULES = [*nodes.RULES, *network.RULES, *eks.RULES, *data.RULES, *iam.RULES, *kubernetes.RULES, *rbac.RULES,
         *backup.RULES, *observability.RULES, *serving.RULES, *cost.RULES]
