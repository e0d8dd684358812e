"""`mlp diff`: what a pull request changes, offline — resources, properties, replacements, cost, policy."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from infra import diff, offline
from infra.cli import main
from infra.config.stack_file import read_stack_config
from infra.render import plan_json
from policies import runner
from policies.cost_model import estimate

ROOT = Path(__file__).parent.parent


def test_every_recorded_type_has_a_replacement_entry(dev, prod):
    """A type the table does not know would diff without its replacements flagged."""
    recorded = {r.type for stack in (dev, prod) for r in stack.resources if r.custom}
    missing = sorted(recorded - set(diff.REPLACEMENTS))
    assert not missing, f"add these to catalog/replacements.json (from the provider's source): {missing}"
    assert all(diff.REPLACEMENTS[t].get("source") for t in recorded)


def _plan(recording, region="us-east-1") -> dict:
    """What `mlp plan --json` prints for `recording`, built in-process (a subprocess per side costs seconds)."""
    graphs = runner.build_graphs(recording)
    findings = runner.check(recording, runner.pack_config(recording.stack), graphs=graphs)
    return {**plan_json(recording, region, findings, estimate(graphs.outputs.resources)), "label": recording.stack}


@pytest.fixture(scope="module")
def changed_prod(prod, raw_config_module):
    """prod, and prod with training shrunk, the system pool's type changed and a secret moved."""
    config = raw_config_module("prod")
    pools = config["ml-platform:nodePools"]
    pools["training"]["maxSize"] = 10
    pools["system"]["instanceTypes"] = ["m6i.2xlarge"]
    config["ml-platform:secrets"]["externalSecrets"]["hub-token"]["remoteKey"] = "models/hub-token"
    return diff.compare(_plan(prod), _plan(offline.run("prod", raw=config)))


@pytest.fixture(scope="module")
def raw_config_module():
    return lambda stack: copy.deepcopy(read_stack_config(stack))


@pytest.fixture(scope="module")
def head_dev():
    """dev as the committed HEAD plans it: a git worktree and `mlp plan --json` in its own process."""
    return diff.plan_at("HEAD", "dev", ROOT)


def test_diff_shows_a_changed_pool_size_and_its_cost(changed_prod):
    pool = next(c for c in changed_prod.changed if c.key == "kubernetes:karpenter.sh/v1:NodePool karpenter-training")
    assert pool.properties["spec.limits.nvidia.com/gpu"] == (160, 80) or any(
        p.startswith("spec.limits") for p in pool.properties)
    assert not pool.replaces, "NodePool limits change in place"
    delta = changed_prod.as_json()["cost"]
    assert delta["ceiling"] < -100_000 and delta["baseline"] > 0, delta  # 10 fewer p4de; larger system nodes


def test_diff_flags_a_node_group_replacement(changed_prod):
    group = next(c for c in changed_prod.changed if c.key == "aws:eks/nodeGroup:NodeGroup eks-system")
    assert "instanceTypes[0]" in group.replaces


def test_diff_calls_out_a_protected_resource_it_would_replace(changed_prod):
    secret = next(c for c in changed_prod.changed if c.key == "aws:secretsmanager/secret:Secret secrets-hub-token")
    assert secret.replaces == ["name"] and secret.protected
    text = diff.render(changed_prod, tree=True)
    assert "! aws:secretsmanager/secret:Secret secrets-hub-token is protected and would be replaced (name)" in text
    assert "monthly cost: baseline" in text and "policy: 0 new finding(s)" in text
    document = changed_prod.as_json()
    assert document["schema"] == "mlp.diff/v1"
    assert {"resource", "component", "replace", "replacedBy", "protected", "properties"} <= set(document["changed"][0])


def test_diff_flags_a_protected_bucket_replacement(prod):
    left = _plan(prod)
    right = copy.deepcopy(left)
    bucket = next(r for r in right["resources"] if r["type"] == "aws:s3/bucket:Bucket" and r["name"] == "backup-bucket")
    bucket["inputs"]["objectLockEnabled"] = True  # S3 cannot turn object lock on in place
    (change,) = diff.compare(left, right).changed
    assert (change.key, change.replaces, change.protected) == ("aws:s3/bucket:Bucket backup-bucket",
                                                               ["objectLockEnabled"], True)


def test_the_same_stack_at_head_has_no_changes_and_exit_code_says_so(head_dev, monkeypatch, capsys):
    monkeypatch.setattr(diff, "plan", lambda stack, root, label=None: {**head_dev, "label": stack})
    monkeypatch.setattr(diff, "plan_at", lambda ref, stack, repo: head_dev)
    assert main(["diff", "dev", "--against", "HEAD", "--exit-code"]) == 0
    assert capsys.readouterr().out.startswith("diff dev@HEAD -> dev: 0 to add, 0 to remove, 0 to change")
    changed = {**head_dev, "resources": head_dev["resources"][1:], "label": "dev"}
    monkeypatch.setattr(diff, "plan", lambda stack, root, label=None: changed)
    assert main(["diff", "dev", "--against", "HEAD", "--exit-code"]) == 1


@pytest.mark.parametrize("argv, message", [
    (["diff", "dev"], "diff takes two stacks (mlp diff dev prod) or one and --against GIT_REF"),
    (["diff", "dev", "--against", "no-such-ref"], "no-such-ref: not a commit of"),
    (["diff", "nosuchstack", "dev"], "nosuchstack: cannot be planned"),
])
def test_a_side_that_cannot_be_planned_is_a_one_line_error(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err


SCHEMAS = ROOT / "docs" / "schemas"


def _valid(document: dict, schema: str) -> None:
    validator = jsonschema.Draft202012Validator(json.loads((SCHEMAS / schema).read_text()))
    errors = sorted(validator.iter_errors(json.loads(json.dumps(document, default=str))), key=str)
    assert not errors, f"{errors[0].message} at {list(errors[0].path)}"


def test_diff_json_validates_against_its_schema(changed_prod):
    _valid(changed_prod.as_json(), "mlp.diff.v1.json")


def test_plan_json_is_the_documented_schema(head_dev):
    _valid({k: v for k, v in head_dev.items()}, "mlp.plan.v1.json")
    plan = head_dev
    assert plan["schema"] == "mlp.plan/v1" and plan["stack"] == "dev"
    assert {"type", "name", "component", "protect", "inputs"} == set(plan["resources"][0])
    assert plan["cost"]["baseline"] > 0 and isinstance(plan["findings"], list)
    secret = next(r for r in plan["resources"] if r["type"] == "aws:secretsmanager/secretVersion:SecretVersion")
    assert secret["inputs"]["secretString"] == "[secret]", "secrets stay masked in what CI uploads"
