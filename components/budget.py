"""Runtime cost guardrail: an AWS Budget per stack, on the same monthly figure the policy pack enforces.

The pack's `cost-monthly-budget` stops a preview whose ceiling exceeds the budget; this budget
watches what is spent. Its amount is read from policies/config.<stack>.json by the composition, not
written twice. It alerts at 80 % of the forecast and 100 % of the actual spend, for the stack's
`environment` cost allocation tag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.handles import PlatformContext


@dataclass(frozen=True)
class BudgetArgs:
    context: PlatformContext
    stack: str
    monthly_usd: float
    emails: Sequence[str]


def notifications(emails: Sequence[str]) -> list[dict]:
    return [{"comparison_operator": "GREATER_THAN", "threshold": threshold, "threshold_type": "PERCENTAGE",
             "notification_type": kind, "subscriber_email_addresses": list(emails)}
            for threshold, kind in ((80, "FORECASTED"), (100, "ACTUAL"))]


class Budget(pulumi.ComponentResource):
    def __init__(self, name: str, args: BudgetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ml-platform:budget:Budget", name, None, opts)
        aws.budgets.Budget(
            f"{name}-monthly", name=f"{args.context.cluster_name}-monthly", budget_type="COST",
            limit_amount=f"{args.monthly_usd:.0f}", limit_unit="USD", time_unit="MONTHLY",
            # The provider's default tags put environment=<stack> on everything; Billing must activate the key.
            cost_filters=[{"name": "TagKeyValue", "values": [f"user:environment${args.stack}"]}],
            notifications=notifications(args.emails), opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})
