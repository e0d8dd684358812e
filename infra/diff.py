"""`mlp diff`: what differs between two planned stacks, offline — the preview a pull request gets without a cloud.

Each side is planned in its own process from its own checkout (`mlp plan --json`), so a module moved
between commits is no problem; `--against REF` plans the same stack from a temporary git worktree.
Resources are matched by type and name (what Pulumi's URN keeps); a changed input that forces
replacement (catalog/replacements.json, read from the providers' sources at their pinned versions)
is flagged, and a replacement of a protected resource is called out: `pulumi up` would refuse it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPLACEMENTS = json.loads((Path(__file__).parent.parent / "catalog" / "replacements.json").read_text())
SCHEMA = "mlp.diff/v1"


class PlanError(RuntimeError):
    """One side could not be planned (config error, a commit without `mlp plan --json`, a bad ref)."""


@dataclass
class Change:
    key: str  # "<type> <name>"
    component: str
    properties: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # path -> (old, new)
    replaces: list[str] = field(default_factory=list)  # the changed properties that force replacement
    protected: bool = False


@dataclass
class Diff:
    left: dict
    right: dict
    added: list[dict]
    removed: list[dict]
    changed: list[Change]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def as_json(self) -> dict:
        return {
            "schema": SCHEMA, "left": _side(self.left), "right": _side(self.right),
            "added": [_ref(r) for r in self.added], "removed": [_ref(r) for r in self.removed],
            "changed": [{"resource": c.key, "component": c.component, "replace": bool(c.replaces),
                         "replacedBy": c.replaces, "protected": c.protected,
                         "properties": {p: {"old": o, "new": n} for p, (o, n) in c.properties.items()}}
                        for c in self.changed],
            "cost": {k: self.right["cost"][k] - self.left["cost"][k] for k in ("baseline", "ceiling")},
            "policy": policy_delta(self.left, self.right),
        }


def _side(plan: dict) -> dict:
    return {"stack": plan["stack"], "label": plan.get("label", plan["stack"]), "resources": len(plan["resources"])}


def _ref(resource: dict) -> dict:
    return {"resource": f"{resource['type']} {resource['name']}", "component": resource["component"]}


def plan(stack: str, root: Path, label: str | None = None) -> dict:
    """`mlp plan STACK --json` of the checkout at `root`, run with that checkout's own code."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-m", "infra.cli", "plan", stack, "--cwd", str(root), "--json"],
                          cwd=root, env=env, capture_output=True, text=True, check=False)
    try:
        result = json.loads(done.stdout)
    except json.JSONDecodeError:
        detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PlanError(f"{label or stack}: cannot be planned ({detail})") from None
    result["label"] = label or stack
    return result


def plan_at(ref: str, stack: str, repo: Path) -> dict:
    """The stack as commit `ref` plans it, from a temporary worktree."""
    with tempfile.TemporaryDirectory(prefix="mlp-diff-") as tmp:
        worktree = Path(tmp) / "tree"
        added = subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(worktree), ref],
                               capture_output=True, text=True, check=False)
        if added.returncode:
            raise PlanError(f"{ref}: not a commit of {repo} ({added.stderr.strip().splitlines()[-1]})")
        try:
            return plan(stack, worktree, f"{stack}@{ref}")
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(worktree)],
                           capture_output=True, check=False)


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """Leaves by dotted path (lists by index), so a change names exactly what moved."""
    if isinstance(value, Mapping):
        found: dict[str, Any] = {}
        for key, item in value.items():
            found.update(flatten(item, f"{path}.{key}" if path else str(key)))
        return found or {path: {}}
    if isinstance(value, list):
        found = {}
        for i, item in enumerate(value):
            found.update(flatten(item, f"{path}[{i}]"))
        return found or {path: []}
    return {path: value}


def forces_replacement(type_: str, path: str) -> bool:
    entry = REPLACEMENTS.get(type_) or {}
    replace = entry.get("replace") or []
    top = path.split("[", 1)[0]
    return any(top == p or top.startswith(f"{p}.") or path == p for p in replace)


def compare(left: dict, right: dict) -> Diff:
    before = {f"{r['type']} {r['name']}": r for r in left["resources"]}
    after = {f"{r['type']} {r['name']}": r for r in right["resources"]}
    changed = []
    for key in sorted(before.keys() & after.keys()):
        old, new = flatten(before[key]["inputs"]), flatten(after[key]["inputs"])
        props = {p: (old.get(p), new.get(p)) for p in sorted(old.keys() | new.keys()) if old.get(p) != new.get(p)}
        if props:
            type_ = after[key]["type"]
            changed.append(Change(key, after[key]["component"], props,
                                  [p for p in props if forces_replacement(type_, p)],
                                  bool(before[key].get("protect"))))
    return Diff(left, right, [after[k] for k in sorted(after.keys() - before.keys())],
                [before[k] for k in sorted(before.keys() - after.keys())], changed)


def policy_delta(left: dict, right: dict) -> dict:
    def keyed(plan: dict) -> set[tuple[str, str, str, str]]:
        return {(f["rule"], f["level"], f["resource"], f["message"]) for f in plan["findings"]}
    return {"new": [dict(zip(("rule", "level", "resource", "message"), f, strict=True))
                    for f in sorted(keyed(right) - keyed(left))],
            "gone": [dict(zip(("rule", "level", "resource", "message"), f, strict=True))
                     for f in sorted(keyed(left) - keyed(right))]}


def render(diff: Diff, tree: bool = False) -> str:
    """Per component: what is added, removed, changed; replacements flagged; cost and policy deltas."""
    lines = [f"diff {diff.left['label']} -> {diff.right['label']}: {len(diff.added)} to add, {len(diff.removed)} to "
             f"remove, {len(diff.changed)} to change ({sum(1 for c in diff.changed if c.replaces)} replaced)"]
    components = sorted({r["component"] for r in diff.added + diff.removed} | {c.component for c in diff.changed})
    for component in components:
        added = [r for r in diff.added if r["component"] == component]
        removed = [r for r in diff.removed if r["component"] == component]
        changed = [c for c in diff.changed if c.component == component]
        lines.append(f"  {component}: +{len(added)} -{len(removed)} ~{len(changed)}")
        if not tree:
            continue
        lines += [f"    + {r['type']} {r['name']}" for r in added]
        lines += [f"    - {r['type']} {r['name']}" for r in removed]
        for c in changed:
            mark = "!" if c.replaces and c.protected else ("+-" if c.replaces else "~")
            lines.append(f"    {mark} {c.key}" + (" (replaced)" if c.replaces else ""))
            lines += [f"        {p}: {_short(o)} -> {_short(n)}" for p, (o, n) in list(c.properties.items())[:12]]
    for c in diff.changed:
        if c.replaces and c.protected:
            lines.append(f"  ! {c.key} is protected and would be replaced ({', '.join(c.replaces)}): "
                         f"`pulumi up` refuses until it is unprotected")
    cost = {k: diff.right["cost"][k] - diff.left["cost"][k] for k in ("baseline", "ceiling")}
    lines.append(f"monthly cost: baseline {_usd(diff.left['cost']['baseline'])} -> {_usd(diff.right['cost']['baseline'])}"
                 f" ({cost['baseline']:+,.0f}), ceiling {_usd(diff.left['cost']['ceiling'])} -> "
                 f"{_usd(diff.right['cost']['ceiling'])} ({cost['ceiling']:+,.0f})")
    policy = policy_delta(diff.left, diff.right)
    lines.append(f"policy: {len(policy['new'])} new finding(s), {len(policy['gone'])} resolved")
    lines += [f"  + {f['level']:<13} {f['rule']}  {f['resource']}: {f['message']}" for f in policy["new"]]
    return "\n".join(lines)


def _usd(value: float) -> str:
    return f"${value:,.0f}"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."
