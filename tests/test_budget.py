"""Runtime cost guardrail: one budget figure (the pack's), alerts before and when it is spent, pools tagged."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_each_stack_has_a_budget_of_the_pack_config_s_figure(stack):
    (budget,) = stack.of_type("aws:budgets/budget:Budget")
    pack = json.loads((ROOT / "policies" / f"config.{stack.stack}.json").read_text())
    assert float(budget.inputs["limitAmount"]) == pack["cost-monthly-budget"]["monthlyBudgetUsd"]
    assert budget.inputs["costFilters"] == [{"name": "TagKeyValue", "values": [f"user:environment${stack.stack}"]}]
    alerts = {(n["notificationType"], n["threshold"]) for n in budget.inputs["notifications"]}
    assert alerts == {("FORECASTED", 80), ("ACTUAL", 100)}
    assert all(n["subscriberEmailAddresses"] for n in budget.inputs["notifications"])


def test_every_node_carries_its_workload_type_for_cost_allocation(stack):
    for node_class in stack.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"):
        assert node_class.inputs["spec"]["tags"]["workload-type"] in ("training", "inference", "batch")
    for template in stack.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        assert all(spec["tags"]["workload-type"] for spec in template.inputs["tagSpecifications"])
