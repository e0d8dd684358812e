"""What every rule module shares: rule construction with full metadata, config defaults, prop access.

Rules read props only with `.get`, `in` and iteration: in a real preview they
are read-only proxies (Mapping/Sequence), not dicts and lists, and reading a
value unknown at preview raises UnknownValueError, which the SDK reports as
"cannot run during preview". Nothing here catches it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyComplianceFramework,
    PolicyConfigSchema,
    ResourceValidationPolicy,
    Severity,
    StackValidationPolicy,
)

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY
REMEDIATE = EnforcementLevel.REMEDIATE

DOCS = "https://github.com/ml-platform/ml-platform/blob/main/docs/policies.md"

# Type tokens more than one rule module judges.
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
CLUSTER = "aws:eks/cluster:Cluster"
# Sources that mean "the whole internet".
OPEN = {"0.0.0.0/0", "::/0"}


def cis(control: str, title: str) -> PolicyComplianceFramework:
    return PolicyComplianceFramework(name="CIS Amazon EKS Benchmark", version="1.8.0", reference=control,
                                     specification=title)


def eks_bp(section: str) -> PolicyComplianceFramework:
    return PolicyComplianceFramework(name="Amazon EKS Best Practices Guide", reference=section,
                                     specification=f"https://docs.aws.amazon.com/eks/latest/best-practices/{section}.html")


def resource_rule(name: str, description: str, types: Sequence[str] | str,
                  check: Callable[[Any, dict], Iterator[str]] | None = None,
                  *, severity: Severity, remediation: str, level: EnforcementLevel = MANDATORY,
                  framework: PolicyComplianceFramework | None = None, config: dict[str, dict] | None = None,
                  remediate: Callable | None = None, tags: Sequence[str] = (),
                  with_args: Callable[[Any, dict], Iterator[str]] | None = None,
                  unset: str = "") -> ResourceValidationPolicy:
    """A rule over resources of `types`: `check(props, config)` yields one message per problem.

    `with_args(args, config)` replaces `check` for rules that need more than the props (the provider).
    `unset` says what AWS (or Kubernetes) does when the property the rule reads is left out, with its
    source, and so why the rule passes or fails it; docs/policies.md shows it beside the rule.
    """
    wanted = (types,) if isinstance(types, str) else tuple(types)
    schema = PolicyConfigSchema(properties=config) if config else None

    def validate(args, report_violation) -> None:
        if args.resource_type not in wanted:
            args.not_applicable(f"applies to {', '.join(wanted)}")
        merged = settings(args.get_config(), config)
        with malformed_as_violation(name, description, report_violation):
            for message in (with_args(args, merged) if with_args else check(args.props, merged)):
                report_violation(message, None)

    policy = ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=level, config_schema=schema,
        severity=severity, framework=framework, remediation_steps=remediation, url=f"{DOCS}#{name}",
        tags=list(tags), remediate=remediate)
    # The offline runner dispatches by type first; the analyzer still calls validate for every resource.
    policy.resource_types = frozenset(wanted)
    policy.unset = unset
    return policy


def stack_rule(name: str, description: str, check: Callable[[Sequence[Any], dict], Iterator[tuple[str, str | None]]],
               *, severity: Severity, remediation: str, level: EnforcementLevel = MANDATORY,
               framework: PolicyComplianceFramework | None = None, config: dict[str, dict] | None = None,
               tags: Sequence[str] = (), unset: str = "") -> StackValidationPolicy:
    """A rule over the whole stack: `check(resources, config)` yields (message, urn or None); `unset` as above."""
    schema = PolicyConfigSchema(properties=config) if config else None

    def validate(args, report_violation) -> None:
        with malformed_as_violation(name, description, report_violation):
            for message, urn in check(args.resources, settings(args.get_config(), config)):
                report_violation(message, urn)

    policy = StackValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=level, config_schema=schema,
        severity=severity, framework=framework, remediation_steps=remediation, url=f"{DOCS}#{name}",
        tags=list(tags))
    policy.unset = unset
    return policy


# What reading a value of the wrong shape raises (a string where a map or number belongs, a
# Statement that is not an object). UnknownValueError is none of these: it reaches the SDK.
MALFORMED = (TypeError, ValueError, AttributeError, KeyError, IndexError)


@contextmanager
def malformed_as_violation(name: str, description: str, report_violation: Callable) -> Iterator[None]:
    """A rule that raises in a real preview loses every result for its resource and names no rule:
    report the malformed value as this rule's violation instead (fail closed)."""
    try:
        yield
    except MALFORMED as exc:
        report_violation(f"cannot check that {description[:1].lower()}{description[1:].rstrip('.')}: a value "
                         f"has the wrong type or shape ({type(exc).__name__}: {exc}); fix the resource's inputs",
                         None)


def num(value: Any) -> str:
    """A number as people write it: pack config numbers arrive as floats (10.0 prints as 10)."""
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:g}"


def settings(given: Mapping[str, Any] | None, schema: dict[str, dict] | None) -> dict[str, Any]:
    """Pack config for a rule: the schema's defaults under what the pack config sets."""
    merged = {key: prop.get("default") for key, prop in (schema or {}).items()}
    merged.update({k: v for k, v in (given or {}).items() if k != "enforcementLevel"})
    return merged


def each_has(target_type: str, attached_type: str, prop: str, ok: Any, problem: str):
    """Stack check: every `target_type` resource has an `attached_type` resource whose `prop`
    comes from it (engine property dependencies, so it works before IDs are known) satisfying `ok`."""

    def check(resources, _config) -> Iterator[tuple[str, str | None]]:
        attached = of_type(resources, attached_type)
        for target in of_type(resources, target_type):
            if not any(ok(a.props) for a in attached if depends_on(a, prop, target)):
                yield problem.format(name=target.name), target.urn
    return check


def of_type(resources: Sequence[Any], type_: str) -> list[Any]:
    return [r for r in resources if r.resource_type == type_]


def depends_on(resource: Any, prop: str, target: Any) -> bool:
    """Does `resource`'s `prop` come from `target` (by the engine's property dependencies)?"""
    return any(dep.urn == target.urn for dep in (resource.property_dependencies or {}).get(prop, []))


def statements(document: Any) -> list[Mapping[str, Any]]:
    """Statements of an IAM policy given as JSON text or a mapping."""
    doc = json.loads(document) if isinstance(document, str) else document
    found = (doc or {}).get("Statement") or []
    return [found] if isinstance(found, Mapping) else list(found)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, Mapping)):
        return [value]
    return list(value)


def exempt_namespaces(default: Sequence[str], description: str = "Namespaces the rule does not judge.") -> dict:
    """The `exempt` config property of a rule over namespaces."""
    return {"type": "array", "items": {"type": "string"}, "default": list(default), "description": description}
