"""Render an offline plan for people: the resource tree by component, the pools in effect, the cost."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import yaml
from rich.table import Table

from infra.config import NodePool, PlatformConfig
from infra.offline import Recording, Resource
from policies.cost_model import Estimate

COMPONENT_PREFIX = "ml-platform:"


def summary_title(recording: Recording) -> str:
    return (f"ml-platform {recording.stack}: {sum(1 for r in recording.resources if r.custom)} resources "
            f"(offline plan; --tree for every resource)")


def summary_table(recording: Recording):
    """The default view: one row per top-level component and its resources by kind of cloud."""
    held = components(recording)
    table = Table()
    for column, justify in (("component", "left"), ("AWS", "right"), ("Kubernetes", "right"), ("Helm", "right"),
                            ("other", "right")):
        table.add_column(column, justify=justify)
    counts: dict[str, Counter] = {}
    for r in recording.resources:
        if not r.custom or r.type.startswith("pulumi:providers:"):
            continue
        kind = ("Helm" if r.type.startswith("kubernetes:helm.sh") else "AWS" if r.type.startswith("aws:")
                else "Kubernetes" if r.type.startswith("kubernetes:") else "other")
        counts.setdefault(held[r.urn], Counter())[kind] += 1
    for component in sorted(counts):
        c = counts[component]
        table.add_row(component, *(str(c[k] or "") for k in ("AWS", "Kubernetes", "Helm", "other")))
    return table


def render_tree(recording: Recording) -> str:
    """Components nested as the program builds them; under each, its own resources counted by type."""
    by_parent: dict[str | None, list[Resource]] = {}
    for resource in recording.resources:
        by_parent.setdefault(resource.parent, []).append(resource)
    stack_urn = next((r.parent for r in recording.resources if r.parent and r.parent.endswith(
        f"pulumi:pulumi:Stack::ml-platform-{recording.stack}")), None)
    custom = sum(1 for r in recording.resources if r.custom)
    lines = [f"ml-platform {recording.stack}: {custom} cloud resources, "
             f"{len(recording.resources) - custom} components (offline plan, no cloud)"]

    def walk(parent: str | None, depth: int) -> None:
        children = by_parent.get(parent, [])
        counts = Counter(r.type for r in children if not r.type.startswith(COMPONENT_PREFIX))
        pad = "  " * depth
        for type_, count in sorted(counts.items()):
            lines.append(f"{pad}{count:>3}  {type_}")
        for component in sorted((r for r in children if r.type.startswith(COMPONENT_PREFIX)), key=lambda r: r.name):
            total = _subtree_size(component, by_parent)
            lines.append(f"{pad}{component.name} ({component.type.removeprefix(COMPONENT_PREFIX)}): {total}")
            walk(component.urn, depth + 1)

    walk(stack_urn, 0)
    return "\n".join(lines)


def _subtree_size(component: Resource, by_parent: dict[str | None, list[Resource]]) -> int:
    return sum(1 + _subtree_size(child, by_parent) if not child.custom else 1
               for child in by_parent.get(component.urn, []))


def write_record(recording: Recording, out: Path) -> Path:
    """Every resource as JSON (type, name, parent, inputs, options) for diffing and review."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{recording.stack}.resources.json"
    path.write_text(json.dumps({
        "stack": recording.stack,
        "outputs": {k: "[secret]" if k in recording.secret_outputs else v for k, v in recording.outputs.items()},
        "resources": [
            {"urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent, "protect": r.protect,
             "ignoreChanges": r.ignore_changes, "inputs": r.inputs}
            for r in sorted(recording.resources, key=lambda r: r.urn)
        ],
    }, indent=2, sort_keys=True, default=str))
    return path


def render_cost(est: Estimate) -> str:
    """The monthly estimate, baseline to ceiling, one line per cost driver (policies/cost_model.py)."""
    width = max((len(line.item) for line in est.lines), default=0)
    lines = [f"monthly cost estimate (USD, {est.prices.label}): "
             f"baseline ${est.baseline:,.0f}, ceiling ${est.ceiling:,.0f}"]
    lines += [f"  {line.item:<{width}}  ${line.baseline:>10,.0f}  ${line.ceiling:>10,.0f}"
              for line in sorted(est.lines, key=lambda line: line.ceiling, reverse=True)]
    return "\n".join(lines)


def render_pools(cfg: PlatformConfig, source: str) -> str:
    """The node pools as the stack gets them, defaults included: `*` marks a value `source` does not set."""
    rows = [("pool", "role", "provisioner", "capacity", "nodes", "disk", "limits cpu/mem/gpu")]
    for name, pool in cfg.node_pools.items():
        karpenter = pool.provisioner == "karpenter"
        limits = pool.effective_limits
        rows.append((
            name, pool.role, _marked(pool, "provisioner", pool.provisioner),
            _marked(pool, "capacity_types", ",".join(pool.capacity_types)),
            f"0-{pool.max_size}" if karpenter else f"{pool.min_size}-{pool.max_size}",
            _marked(pool, "disk_size_gib", f"{pool.disk_size_gib} GiB"),
            _marked(pool, "limits", f"{limits.cpu}/{limits.memory_gib}Gi/{limits.gpus}") if karpenter else "-",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"node pools (* = default, not set in {source}):"]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def _marked(pool: NodePool, field: str, text: str) -> str:
    return text if field in pool.model_fields_set else f"{text}*"


SECRET_SIG = "4dabf18193072939515e22adb298388d"
PLAN_SCHEMA = "mlp.plan/v1"


def masked(value):
    """`value` with every secret the engine marked replaced by "[secret]"."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            return "[secret]"
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def components(recording: Recording) -> dict[str, str]:
    """Resource URN -> the top-level component that holds it (network, eks, serving...; "stack" if none)."""
    by_urn = {r.urn: r for r in recording.resources}
    found = {}
    for resource in recording.resources:
        outermost, parent = "stack", by_urn.get(resource.parent)
        while parent is not None:
            if parent.type.startswith(COMPONENT_PREFIX):
                outermost = parent.name
            parent = by_urn.get(parent.parent)
        found[resource.urn] = outermost
    return found


def plan_json(recording: Recording, region: str, findings, est: Estimate) -> dict:
    """The plan as data (schema mlp.plan/v1, docs/ci.md): what `mlp diff` compares and CI keeps."""
    held = components(recording)
    return {
        "schema": PLAN_SCHEMA, "stack": recording.stack, "region": region,
        "resources": [{"type": r.type, "name": r.name, "component": held[r.urn], "protect": r.protect,
                       "inputs": masked(r.inputs)}
                      for r in sorted(recording.resources, key=lambda r: (r.type, r.name)) if r.custom],
        "findings": [{"rule": f.rule, "level": f.level, "resource": f.resource, "message": f.message}
                     for f in findings],
        "cost": {"prices": est.prices.label, "baseline": round(est.baseline, 2), "ceiling": round(est.ceiling, 2),
                 "lines": [{"item": line.item, "baseline": round(line.baseline, 2), "ceiling": round(line.ceiling, 2)}
                           for line in est.lines]},
    }


def manifests(recording: Recording) -> dict[str, dict]:
    """Path under manifests/ (component/kind-namespace-name.yaml) -> every Kubernetes object the program
    declares, as `kubectl apply --dry-run` takes it; a Helm release as its chart, version and values."""
    held, found = components(recording), {}
    for r in recording.resources:
        if not r.custom or not r.type.startswith("kubernetes:") or r.type.startswith("pulumi:providers:"):
            continue
        inputs = masked(r.inputs)
        if r.type == "kubernetes:helm.sh/v3:Release":
            body = {"chart": inputs.get("chart"), "version": inputs.get("version"),
                    "repository": (inputs.get("repositoryOpts") or {}).get("repo"),
                    "namespace": inputs.get("namespace"), "values": inputs.get("values") or {}}
            name = f"helm-release-{inputs.get('namespace')}-{inputs.get('name') or r.name}"
        else:
            body = {k: v for k, v in inputs.items() if not k.startswith("__")}
            metadata = body.get("metadata") or {}
            name = f"{body.get('kind', 'object').lower()}-{metadata.get('namespace') or 'cluster'}-" \
                   f"{metadata.get('name') or r.name}"
        found[f"{held[r.urn]}/{name}.yaml"] = body
    return found


def mermaid(recording: Recording) -> str:
    """Components and which depends on which (from the recorded resource dependencies)."""
    held = components(recording)
    edges = set()
    for r in recording.resources:
        for dependency in (*r.dependencies, *(d for deps in r.property_dependencies.values() for d in deps)):
            source, target = held.get(r.urn), held.get(dependency)
            if source and target and source != target and "stack" not in (source, target):
                edges.add((source, target))
    nodes = sorted({c for c in held.values() if c != "stack"})
    return "\n".join(["graph LR", *(f"  {n}[{n}]" for n in nodes),
                      *(f"  {a} --> {b}" for a, b in sorted(edges))]) + "\n"


def write_plan(recording: Recording, out: Path) -> list[Path]:
    """`mlp plan --out`: the resource record, a YAML file per Kubernetes object, the component graph."""
    written = [write_record(recording, out)]
    root = out / f"{recording.stack}.manifests"
    for path, body in manifests(recording).items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(body, sort_keys=False, default_flow_style=False))
    written.append(root)
    graph = out / f"{recording.stack}.graph.mmd"
    graph.write_text(mermaid(recording))
    written.append(graph)
    return written
