"""The shipped stacks against the whole pack: clean as shipped, and each classic mistake caught."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from infra.cli import main
from infra.offline import Recording
from policies import runner
from policies.cost_model import estimate
from policies.pack import RULES

# `mlp` runs in-process here; each stack is recorded once per worker (conftest.recorded_once).
pytestmark = pytest.mark.usefixtures("recorded_once")

DOCS = Path(__file__).resolve().parent.parent / "docs" / "policies.md"


def _mutated(recording: Recording, mutate) -> Recording:
    clone = Recording(recording.stack, copy.deepcopy(recording.resources), recording.outputs, recording.secret_outputs)
    mutate(clone)
    return clone


def _fired(recording: Recording) -> dict[str, list[str]]:
    fired: dict[str, list[str]] = {}
    for finding in runner.check(recording):
        if finding.level == "mandatory":
            fired.setdefault(finding.rule, []).append(finding.message)
    return fired


def test_shipped_stacks_have_no_mandatory_violation(stack):
    assert _fired(stack) == {}


def test_advisory_findings_are_justified_in_the_docs(stack):
    documented = DOCS.read_text()
    for finding in runner.check(stack):
        if finding.level == "advisory":
            assert f"`{finding.rule}`" in documented.split("## Advisory findings", 1)[1], finding


def _named(recording, type_, name):
    return next(r for r in recording.resources if r.type == type_ and r.name == name)


def _nodepool(recording, name):
    return next(r for r in recording.of_type("kubernetes:karpenter.sh/v1:NodePool")
                if r.inputs["metadata"]["name"] == name).inputs["spec"]


MUTATIONS = {
    "make a bucket public": ("prod", lambda rec: _named(
        rec, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "network-flow-logs-public-access"
    ).inputs.update(blockPublicPolicy=False, restrictPublicBuckets=False), "s3-block-public-access"),
    "turn off IMDSv2": ("dev", lambda rec: next(
        r for r in rec.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass") if r.inputs["metadata"]["name"] == "cpu"
    ).inputs["spec"]["metadataOptions"].update(httpTokens="optional"), "karpenter-nodeclass-imdsv2"),
    "add a p5 to dev": ("dev", lambda rec: next(
        r for r in _nodepool(rec, "training")["template"]["spec"]["requirements"]
        if r["key"] == "node.kubernetes.io/instance-type")["values"].append("p5.48xlarge"),
        "cost-allowed-instance-families"),
    "remove a NodePool's limits": ("prod", lambda rec: _nodepool(rec, "inference").pop("limits"),
                                   "cost-nodepool-limits"),
    "raise a pool's max past the budget": ("dev", lambda rec: _nodepool(rec, "training")["limits"].update(
        **{"cpu": "960", "memory": "11520Gi", "nvidia.com/gpu": "80"}), "cost-monthly-budget"),
    "open the prod API endpoint": ("prod", lambda rec: rec.of_type("aws:eks/cluster:Cluster")[0].inputs[
        "vpcConfig"].update(endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/0"]), "eks-endpoint-access"),
}


@pytest.mark.parametrize("case", list(MUTATIONS))
def test_breaking_the_real_stack_fires_the_right_rule(case, dev, prod):
    stack_name, mutate, rule = MUTATIONS[case]
    fired = _fired(_mutated({"dev": dev, "prod": prod}[stack_name], mutate))
    assert rule in fired, fired


def test_budget_violation_names_the_cost_drivers(dev):
    fired = _fired(_mutated(dev, MUTATIONS["raise a pool's max past the budget"][1]))
    (message,) = fired["cost-monthly-budget"]
    assert "exceeds the budget $25,000" in message and "Karpenter pool training" in message


def test_estimate_reflects_the_environments(dev, prod):
    dev_est = estimate(runner.build_graphs(dev).outputs.resources)
    prod_est = estimate(runner.build_graphs(prod).outputs.resources)
    assert 0 < dev_est.baseline < prod_est.baseline < dev_est.ceiling < prod_est.ceiling
    lines = {line.item: line for line in prod_est.lines}
    assert lines["NAT gateways x3"].baseline > {l.item: l for l in dev_est.lines}["NAT gateways x1"].baseline
    assert lines["Karpenter pool training"].baseline == 0, "Karpenter pools cost nothing when idle"
    # prod training ceiling: 160 GPUs of p4de (8 per node) at on-demand, plus 1000 GiB gp3 per node
    assert lines["Karpenter pool training"].ceiling == pytest.approx(20 * (27.44705 * 730 + 1000 * 0.08))
    # Each Secrets Manager secret costs a month's fee, and each of its replicas another (hub token, alert
    # receivers, Velero's repository password, Grafana's admin password, and in prod the model's API key;
    # prod replicates all five).
    assert lines["Secrets Manager secrets x10"].baseline == pytest.approx(10 * 0.4)
    assert {l.item: l for l in dev_est.lines}["Secrets Manager secrets x4"].baseline == pytest.approx(4 * 0.4)
    # Prometheus and Alertmanager volumes: prod 2 x 100 GiB + 2 x 2 GiB of gp3.
    assert lines["monitoring volumes 204 GiB"].baseline == pytest.approx(204 * 0.08)


def test_mlp_check_passes_the_shipped_stacks(capsys):
    assert main(["check", "prod"]) == 0
    out = capsys.readouterr().out
    assert f"policies: all {len(RULES)} rules pass" in out and "monthly cost estimate" in out


def test_mlp_check_fails_on_a_mandatory_violation(tmp_path, capsys):
    config = tmp_path / "tight.json"
    config.write_text(json.dumps({"cost-monthly-budget": {"monthlyBudgetUsd": 1000, "enforcementLevel": "mandatory"}}))
    assert main(["check", "dev", "--policy-pack-config", str(config)]) == 1
    assert "mandatory     cost-monthly-budget" in capsys.readouterr().out


def test_organisation_rules_advise_by_default_and_name_the_key_that_sets_them(tmp_path, capsys):
    """Another team's stack is configured differently, not wrong: with no pack config, budgets, caps, allowed
    types and tag lists advise, and say which key changes them; the shipped configs make them mandatory."""
    config = tmp_path / "other-team.json"
    config.write_text(json.dumps({"cost-monthly-budget": {"monthlyBudgetUsd": 1000},
                                  "cost-allowed-instance-families": {"allowedFamilies": ["m6i"]}}))
    assert main(["check", "dev", "--policy-pack-config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "advisory      cost-monthly-budget" in out and "(monthlyBudgetUsd in the pack config)" in out
    assert "set allowedFamilies in the pack config to change the list" in out
    organisation = {"cost-allowed-instance-families", "cost-allowed-gpu-models", "cost-max-pool-size", "cost-max-gpus",
                    "cost-ebs-volume-cap", "cost-node-tags", "cost-monthly-budget", "aws-required-tags"}
    levels = {r.name: r.enforcement_level.value for r in RULES}
    assert {levels[n] for n in organisation} == {"advisory"}
    assert levels["s3-block-public-access"] == levels["eks-secrets-encryption"] == "mandatory", "security stays"
    for stack in ("dev", "prod"):
        shipped = json.loads((Path(__file__).parent.parent / "policies" / f"config.{stack}.json").read_text())
        assert {n: shipped[n]["enforcementLevel"] for n in organisation} == {
            **{n: "mandatory" for n in organisation}, "aws-required-tags": "remediate"}
