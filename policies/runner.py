"""The offline policy runner: the pack's own rule objects over a recorded stack.

It builds the SDK's own argument objects (ResourceValidationArgs,
StackValidationArgs, PolicyResource) from what infra/offline.py recorded,
wraps every property in the SDK's unknown-checking proxy as the analyzer
does, merges pack config the way the CLI does (schema defaults under
policies/config.<stack>.json), and handles not-applicable, unknown values
and remediation as the analyzer does. Tests, `mlp check` and `mlp plan`
all go through `check()`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from policies.pack import RULES

CONFIG_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Finding:
    rule: str
    level: str  # mandatory | advisory | remediated | cannot-verify
    resource: str  # resource name, or "stack"
    urn: str | None
    message: str
    rule_level: str = ""  # the rule's enforcement level (for cannot-verify: what a preview degrades)


def pack_config(stack: str, directory: Path = CONFIG_DIR) -> dict[str, Any]:
    """The stack's `--policy-pack-config` file (policies/config.<stack>.json), or none."""
    path = directory / f"config.{stack}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _level(policy: Any, config: Mapping[str, Any]) -> EnforcementLevel:
    value = config.get(policy.name)
    if isinstance(value, str):
        return EnforcementLevel(value)
    if isinstance(value, Mapping) and "enforcementLevel" in value:
        return EnforcementLevel(value["enforcementLevel"])
    return policy.enforcement_level or EnforcementLevel.ADVISORY


def _rule_config(policy: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """A rule's pack config as the CLI hands it over: JSON through protobuf, so every number a float."""
    value = config.get(policy.name)
    return json.loads(json.dumps(dict(value)), parse_int=float) if isinstance(value, Mapping) else {}


def _wire(value: Any) -> Any:
    """Properties as the engine sends them to the analyzer: JSON data, every number a float."""
    return json.loads(json.dumps(value, default=str), parse_int=float)


def _plain(value: Any, proxy_secrets: bool = False) -> Any:
    """What a rule receives: secrets unwrapped by the SDK's own deserializer (kept as Secret markers
    where `proxy_secrets`, as remediations get them)."""
    data = _wire(value)
    return deserialize_properties(data, proxy_secrets) if isinstance(data, Mapping) else data


def _options(resource: Any) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect=resource.protect, ignore_changes=list(resource.ignore_changes),
                                 delete_before_replace=None, aliases=[],
                                 custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[],
                                 parent=resource.parent)


@dataclass(frozen=True)
class Graph:
    """Recorded resources as the SDK's PolicyResource graph, and each resource's provider."""

    resources: list[PolicyResource]
    provider_of: dict[str, PolicyProviderResource]
    raw: dict[str, Any]  # urn -> the properties as the engine sends them (secrets still marked)


class Graphs:
    """What the analyzer gives each kind of rule: resource rules see inputs, stack rules outputs.

    Each is built when first read, once: a check of resource rules alone never builds the other.
    """

    def __init__(self, recording: Any):
        self._recording = recording

    @cached_property
    def inputs(self) -> Graph:
        return _graph(self._recording, lambda r: r.inputs)

    @cached_property
    def outputs(self) -> Graph:
        # What the provider computed (ids, ARNs) over the inputs it echoes back.
        return _graph(self._recording, lambda r: {**r.state, **r.inputs})


def build_graphs(recording: Any) -> Graphs:
    """Built once per plan: rules, the cost estimate and renderers all read the same ones."""
    return Graphs(recording)


def _graph(recording: Any, props: Any) -> Graph:
    by_urn: dict[str, PolicyResource] = {}
    raw = {r.urn: _wire(props(r)) for r in recording.resources}
    for r in recording.resources:
        # deserialize_properties builds new containers: `raw` stays as the engine sent it.
        by_urn[r.urn] = PolicyResource(r.type, unknown_checking_proxy(deserialize_properties(raw[r.urn])),
                                       r.urn, r.name, _options(r), None, None, [], {})
    providers = {r.urn: PolicyProviderResource(r.type, unknown_checking_proxy(_plain(r.inputs)), r.urn, r.name)
                 for r in recording.resources if r.type.startswith("pulumi:providers:")}
    provider_of: dict[str, PolicyProviderResource] = {}
    for r in recording.resources:
        node = by_urn[r.urn]
        node.parent = by_urn.get(r.parent or "")
        node.dependencies = [by_urn[u] for u in r.dependencies if u in by_urn]
        node.property_dependencies = {k: [by_urn[u] for u in urns if u in by_urn]
                                      for k, urns in r.property_dependencies.items()}
        provider = providers.get((r.provider or "").rsplit("::", 1)[0])
        if provider is not None:
            node.provider = provider
            provider_of[r.urn] = provider
    return Graph(list(by_urn.values()), provider_of, raw)


def check(recording: Any, config: Mapping[str, Any] | None = None, rules: Sequence[Any] = RULES,
          graphs: Graphs | None = None) -> list[Finding]:
    """Every rule over the recorded stack; config is the stack's pack config (default: its file).

    A resource rule runs only on the resource types it declares (`resource_types`, set by
    policies.support.resource_rule): for the others it would only say "not applicable".
    """
    config = pack_config(recording.stack) if config is None else config
    graphs = graphs or build_graphs(recording)
    findings: list[Finding] = []
    for policy in rules:
        level = _level(policy, config)
        if level == EnforcementLevel.DISABLED:
            continue
        rule_config = _rule_config(policy, config)
        if isinstance(policy, ResourceValidationPolicy):
            types_ = getattr(policy, "resource_types", None)
            graph = graphs.inputs
            candidates = graph.resources if types_ is None else [r for r in graph.resources
                                                                  if r.resource_type in types_]
            for resource in candidates:
                findings += _check_resource(policy, level, resource, graph, rule_config)
        else:
            findings += _run(policy, level, StackValidationArgs(graphs.outputs.resources, rule_config), "stack", None)
    return findings


def _check_resource(policy: Any, level: EnforcementLevel, resource: PolicyResource, graph: Graph,
                    rule_config: dict) -> list[Finding]:
    provider = graph.provider_of.get(resource.urn)

    def args(props: Any) -> ResourceValidationArgs:
        return ResourceValidationArgs(resource.resource_type, props, resource.urn, resource.name, resource.opts,
                                      provider, rule_config)

    findings = _run(policy, level, args(resource.props), resource.name, resource.urn)
    if level == EnforcementLevel.REMEDIATE and findings:
        # Remediations get secrets as the SDK hands them: unwrapped on read, kept secret on write.
        fixed = policy.remediate(args(unknown_checking_proxy(
            deserialize_properties(_wire(graph.raw[resource.urn]), True))))
        if fixed is not None and not _run(policy, level, args(unknown_checking_proxy(_plain(fixed))),
                                          resource.name, resource.urn):
            return [Finding(policy.name, "remediated", resource.name, resource.urn, findings[0].message)]
        # The SDK reports a violation that remediation could not fix as mandatory.
        return [Finding(f.rule, "mandatory", f.resource, f.urn, f.message) for f in findings]
    return findings


def _run(policy: Any, level: EnforcementLevel, args: Any, resource: str, urn: str | None) -> list[Finding]:
    found: list[Finding] = []
    label = "mandatory" if level == EnforcementLevel.REMEDIATE else level.value

    def report(message: str, violation_urn: str | None = None) -> None:
        found.append(Finding(policy.name, label, resource, violation_urn or urn, message))

    try:
        policy.validate(args, report)
    except _NotApplicableError:
        return []
    except UnknownValueError as exc:
        return [Finding(policy.name, "cannot-verify", resource, urn, f"cannot run during preview: {exc.message}",
                        level.value)]
    return found


def degraded(findings: Sequence[Finding]) -> list[Finding]:
    """Mandatory (and remediate) rules a real preview could only report as advisory "cannot run"."""
    return [f for f in findings if f.level == "cannot-verify" and f.rule_level in ("mandatory", "remediate")]


def render_degraded(findings: Sequence[Finding]) -> str:
    rows = sorted(degraded(findings), key=lambda f: (f.resource, f.rule))
    if not rows:
        return "first preview: every mandatory rule can verify what it reads"
    lines = [f"first preview: {len(rows)} mandatory checks cannot verify values known only after create "
             f"(the SDK reports them as advisory); the offline plan checks them all:"]
    width = max(len(f.resource) for f in rows)
    lines += [f"  {f.resource:<{width}}  {f.rule}" for f in rows]
    return "\n".join(lines)


def render(findings: Sequence[Finding], rules: Sequence[Any] = RULES) -> str:
    """A table of findings, mandatory first."""
    if not findings:
        return f"policies: all {len(rules)} rules pass"
    order = {"mandatory": 0, "cannot-verify": 1, "advisory": 2, "remediated": 3}
    rows = sorted(findings, key=lambda f: (order.get(f.level, 9), f.rule, f.resource))
    width = max(len(f.rule) for f in rows)
    return "\n".join(f"{f.level:<13} {f.rule:<{width}}  {f.resource}: {f.message}" for f in rows)
