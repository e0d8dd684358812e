"""The rule tables of docs/policies.md, written from the rules' own metadata.

`python -m infra.policy_docs` rewrites them; tests/test_policy_pack.py fails
when the page and the pack disagree, so a rule cannot change without its row.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from policies import backup, cost, data, eks, iam, kubernetes, network, nodes, observability, rbac, serving

PAGE = Path(__file__).resolve().parent.parent / "docs" / "policies.md"
# Table heading -> the rule modules it lists, in roster order.
TABLES = {
    "AWS security (policies/nodes.py, network.py, eks.py, data.py, iam.py)": [nodes, network, eks, data, iam],
    "Kubernetes (policies/kubernetes.py)": [kubernetes],
    "RBAC, tenancy and platform workloads (policies/rbac.py, backup.py, observability.py, serving.py)":
        [rbac, backup, observability, serving],
    "Cost (policies/cost.py)": [cost],
}
HEADER = ("| rule | level | severity | checks | when the property is unset | framework | how to fix | config |\n"
          "|---|---|---|---|---|---|---|---|")


def _framework(rule: Any) -> str:
    framework = rule.framework
    if framework is None:
        return ""
    return f"CIS {framework.reference}" if framework.name.startswith("CIS") else f"EKS BP {framework.reference}"


def _config(rule: Any) -> str:
    properties = rule.config_schema.properties if rule.config_schema else {}
    return ", ".join(f"`{key}` (default `{prop.get('default')}`)" for key, prop in properties.items())


def row(rule: Any) -> str:
    cells = [f'<a id="{rule.name}"></a>`{rule.name}`', rule.enforcement_level.value, rule.severity.value,
             rule.description, rule.unset, _framework(rule), rule.remediation_steps, _config(rule)]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def render(page: str) -> str:
    """`page` with each rule table replaced by one written from the rules."""
    for heading, modules in TABLES.items():
        table = "\n".join([HEADER, *(row(rule) for module in modules for rule in module.RULES)])
        pattern = re.compile(rf"(\n## {re.escape(heading)}\n\n)\| rule .*?(?=\n\n|\Z)", re.S)
        page, found = pattern.subn(lambda m, t=table: m.group(1) + t, page)
        if found != 1:
            raise SystemExit(f"{PAGE}: no table under '## {heading}'")
    return page


if __name__ == "__main__":
    current = PAGE.read_text()
    written = render(current)
    if "--check" in sys.argv[1:]:
        sys.exit(0 if written == current else f"{PAGE} is out of date: run python -m infra.policy_docs")
    PAGE.write_text(written)
