"""No rule raises on a malformed value, and secrets change nothing: as the real analyzer runs the pack.

A rule that raises in a real preview loses every rule's result for its
resource (or the whole stack check). Each recorded resource of both stacks is
fed to the pack with one value swapped for one of the wrong type: every leaf
and every container of its inputs, and of the JSON documents inside string
fields (IAM, bucket and queue policies).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra.offline import Recording, Resource
from policies import runner
from policies.pack import RULES

SECRET = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}
# Revealing config: thresholds low enough that the real stacks produce findings to compare.
REVEALING = {"cost-nat-gateway-count": {"maxNatGateways": 0}, "cost-max-gpus": {"maxGpus": 1},
             "eks-endpoint-access": {"requirePrivate": True}, "log-group-retention": {"minimumDays": 400},
             "cost-monthly-budget": {"monthlyBudgetUsd": 100}, "cost-max-pool-size": {"maxNodes": 1}}


def _wrong(value: Any) -> Any:
    """A value of another type than `value`."""
    if isinstance(value, (bool, int, float)):
        return "not-a-number"
    if isinstance(value, str):
        return {"unexpected": ["map"]}
    if isinstance(value, dict):
        return "not-a-map"
    if isinstance(value, list):
        return {"not": "a list"}
    return 7.5


def _variants(value: Any) -> Iterator[Any]:
    """`value` with exactly one node (leaf or container, JSON documents in strings included) swapped."""
    yield _wrong(value)
    if isinstance(value, dict) and SECRET.items() <= value.items():
        # A secret is an envelope the engine writes, never malformed itself: vary what it holds.
        for swapped in _variants(value["value"]):
            yield _secret(swapped)
    elif isinstance(value, dict):
        for key, item in value.items():
            for swapped in _variants(item):
                yield {**value, key: swapped}
    elif isinstance(value, list):
        for i, item in enumerate(value):
            for swapped in _variants(item):
                yield [*value[:i], swapped, *value[i + 1:]]
    elif isinstance(value, str) and value[:1] in "{[":
        try:
            document = json.loads(value)
        except ValueError:
            return
        for swapped in list(_variants(document))[1:]:
            yield json.dumps(swapped)


def _shape(value: Any) -> Any:
    """`value` with every leaf replaced by its type: what a rule's branches depend on."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return _shape(json.loads(value))
        except ValueError:
            return "str"
    return type(value).__name__


def _malformed(recordings: list[Recording]) -> Iterator[tuple[str, list[Resource]]]:
    seen = set()
    for recording in recordings:
        providers = {r.urn: r for r in recording.resources if r.type.startswith("pulumi:providers:")}
        for resource in recording.resources:
            if resource.type.startswith("pulumi:providers:"):
                continue
            # Twenty NetworkPolicies of one shape exercise the same rule code, in dev as in prod: swap values
            # in one of them.
            shape = (resource.type, json.dumps(_shape(resource.inputs), sort_keys=True))
            if shape in seen:
                continue
            seen.add(shape)
            # The resource's own provider: what a rule that reads the provider (region, tags) gets.
            provider = [p for urn, p in providers.items() if urn == (resource.provider or "").rsplit("::", 1)[0]]
            for key, value in resource.inputs.items():
                for i, swapped in enumerate(_variants(value)):
                    broken = copy.copy(resource)
                    broken.inputs = {**resource.inputs, key: swapped}
                    broken.state = {}
                    yield f"{recording.stack} {resource.type} {resource.name} {key} #{i}", [*provider, broken]


def test_no_rule_raises_on_a_value_of_the_wrong_type(dev, prod, plain_eks):
    """This platform's stacks and a plain EKS program it was not written for (tests/reference)."""
    raised, cases = [], 0
    for case, resources in _malformed([prod, dev, plain_eks]):
        cases += 1
        try:
            runner.check(Recording(case.split()[0], resources, {}, set()), {})
        except Exception as exc:  # noqa: BLE001 - the point: name every rule input that makes a rule raise
            raised.append(f"{case}: {type(exc).__name__}: {exc}")
    assert cases > 1000
    assert not raised, f"{len(raised)} of {cases} malformed inputs made a rule raise:\n" + "\n".join(raised[:25])


def _secret(value: Any) -> Any:
    return {**SECRET, "value": value}


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_secret_inputs_change_no_finding(stack_name, dev, prod):
    recording = {"dev": dev, "prod": prod}[stack_name]
    plain = runner.check(recording, REVEALING)
    secret = copy.deepcopy(recording)
    for resource in secret.resources:
        resource.inputs = {key: _secret(value) for key, value in resource.inputs.items()}
        resource.state = {key: _secret(value) for key, value in resource.state.items()}
    assert len(plain) >= 5, "the revealing config must produce findings to compare"
    assert runner.check(secret, REVEALING) == plain


def test_numbers_from_pack_config_print_the_same_offline_and_online(prod):
    found = runner.check(prod, {"cost-max-gpus": {"maxGpus": 10}, "log-group-retention": {"minimumDays": 400}},
                         rules=[r for r in RULES if r.name in ("cost-max-gpus", "log-group-retention")])
    messages = " | ".join(f.message for f in found)
    assert "its cap is 10" in messages and "keep at least 400 for" in messages, messages
    assert ".0" not in messages, messages


def test_a_malformed_value_fails_closed_as_the_rule_s_violation(dev):
    group = copy.deepcopy(dev.named("aws:cloudwatch/logGroup:LogGroup", "eks-control-plane"))
    group.inputs["retentionInDays"] = "forever"
    rule = next(r for r in RULES if r.name == "log-group-retention")
    (found,) = runner.check(Recording("dev", [group], {}, set()), {}, rules=[rule])
    assert (found.rule, found.level) == ("log-group-retention", "mandatory")
    assert found.message.startswith("cannot check that log groups keep logs for a finite, sufficient time: a value "
                                    "has the wrong type or shape (ValueError: could not convert string to float")


def test_stack_rules_see_outputs_and_resource_rules_see_inputs(dev):
    """As the analyzer: AnalyzeStack carries each resource's outputs (ids, ARNs), Analyze its inputs."""
    from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

    seen: dict[str, object] = {}

    def stack_check(args, report):
        queue = next(r for r in args.resources if r.resource_type == "aws:sqs/queue:Queue")
        seen["stack"] = queue.props.get("arn")

    def resource_check(args, report):
        if args.resource_type == "aws:sqs/queue:Queue":
            seen["resource"] = args.props.get("arn")

    probes = [StackValidationPolicy(name="probe-stack", description="d", validate=stack_check,
                                    enforcement_level=EnforcementLevel.ADVISORY),
              ResourceValidationPolicy(name="probe-resource", description="d", validate=resource_check,
                                       enforcement_level=EnforcementLevel.ADVISORY)]
    runner.check(dev, {}, rules=probes)
    assert seen["resource"] is None, "an ARN is an output: the inputs do not have it"
    assert str(seen["stack"]).startswith("arn:aws:sqs:us-east-1:"), seen
