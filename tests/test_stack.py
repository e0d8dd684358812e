"""Whole stacks: both run to completion, export what operators need, keep stable names."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from infra.cli import main

# `mlp` runs in-process here; each stack is recorded once per worker (conftest.recorded_once).
pytestmark = pytest.mark.usefixtures("recorded_once")

GOLDEN = Path(__file__).parent / "golden"


def test_stack_outputs(stack):
    assert set(stack.outputs) == {"clusterName", "clusterEndpoint", "kubeconfig", "oidcProviderArn", "vpcId",
                                  "privateSubnetIds", "publicSubnetIds", "backupBucket", "backupRoleName", "containerLogGroup",
                                  "evaluationRepository", "evaluationResultsBucket",
                                  *(["backupReplicaBucket"] if stack.stack == "prod" else [])}
    assert stack.outputs["clusterName"] == f"ml-platform-{stack.stack}"
    assert stack.outputs["clusterEndpoint"].startswith("https://")
    assert len(stack.outputs["privateSubnetIds"]) == len(stack.outputs["publicSubnetIds"]) >= 2


def test_kubeconfig_is_exported_as_a_secret(stack):
    assert stack.secret_outputs == {"kubeconfig"}


def test_every_resource_belongs_to_a_component(stack):
    for resource in stack.resources:
        if resource.custom and not resource.type.startswith("pulumi:providers:"):
            assert stack.component_of(resource) is not None, f"{resource.type} {resource.name} has no component"


def test_child_names_are_unique_per_type(stack):
    seen = [(r.type, r.name) for r in stack.resources]
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_resource_inventory_is_stable(stack_name, dev, prod):
    """A rename replaces cloud resources: it must show up here. Regenerate with UPDATE_GOLDEN=1."""
    recording = {"dev": dev, "prod": prod}[stack_name]
    inventory = "\n".join(sorted(f"{r.type} {r.name}" for r in recording.resources)) + "\n"
    path = GOLDEN / f"{stack_name}.inventory.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(inventory)
    assert path.read_text() == inventory


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_helm_values_are_stable(stack_name, dev, prod):
    """Every chart, version and value each release sets: a values change shows in review. UPDATE_GOLDEN=1."""
    recording = {"dev": dev, "prod": prod}[stack_name]
    releases = {r.name: {key: r.inputs.get(key) for key in ("chart", "version", "repositoryOpts", "namespace",
                                                              "values", "skipCrds")}
                for r in recording.of_type("kubernetes:helm.sh/v3:Release")}
    rendered = json.dumps(releases, indent=2, sort_keys=True) + "\n"
    path = GOLDEN / f"{stack_name}.helm-values.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(rendered)
    assert path.read_text() == rendered


def test_plan_summarises_by_component_and_ends_with_a_verdict(capsys):
    assert main(["plan", "dev"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ml-platform dev: ") and "--tree for every resource" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 5}
    assert {"network", "eks", "karpenter", "serving", "observability", "backup"} <= set(rows)
    assert "\x1b[" not in out, "no colour when stdout is not a terminal"
    assert out.rstrip().splitlines()[-1].startswith("dev: ") and "policy passes" in out.rstrip().splitlines()[-1]


def test_plan_prints_the_tree_by_component(capsys):
    assert main(["plan", "dev", "--tree"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ml-platform dev: ")
    for component in ("network (network:Network)", "eks (cluster:Cluster)", "karpenter (karpenter:Karpenter)",
                      "gpu (gpu:Gpu)", "eks-system (node_pools:ManagedNodeGroup): 2"):
        assert component in out


def test_plan_on_bad_config_exits_non_zero_with_one_line(tmp_path, capsys):
    (tmp_path / "Pulumi.broken.yaml").write_text(
        (Path(__file__).parent.parent / "Pulumi.dev.yaml").read_text().replace("natGateways: single",
                                                                               "natGateways: sometimes"))
    assert main(["plan", "broken", "--cwd", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("error: Pulumi.broken.yaml: ml-platform:network.natGateways: "
                            "Input should be 'single' or 'perAz' (got 'sometimes')\n")


def test_plan_writes_a_resource_record(tmp_path, capsys, prod):
    assert main(["plan", "prod", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "prod.resources.json").read_text())
    assert record["outputs"]["kubeconfig"] == "[secret]", "secret outputs never reach the record"
    assert record["outputs"]["clusterName"] == prod.outputs["clusterName"]
    by_urn = {r["urn"]: r for r in record["resources"]}
    assert sorted(by_urn) == sorted(r.urn for r in prod.resources)
    cluster = prod.named("aws:eks/cluster:Cluster", "eks")
    written = by_urn[cluster.urn]
    assert (written["type"], written["name"], written["parent"], written["protect"]) == (
        cluster.type, cluster.name, cluster.parent, cluster.protect)
    assert written["inputs"] == json.loads(json.dumps(cluster.inputs, default=str))
    key = prod.named("aws:kms/key:Key", "eks-secrets")
    assert by_urn[key.urn]["protect"] is True, "prod protects its stateful resources"
    # A YAML file per Kubernetes object, by component: what `kubectl apply --dry-run` takes.
    files = sorted((tmp_path / "prod.manifests").rglob("*.yaml"))
    declared = [r for r in prod.resources if r.custom and r.type.startswith("kubernetes:")
                and not r.type.startswith("kubernetes:helm.sh")]
    objects = [yaml.safe_load(f.read_text()) for f in files if not f.name.startswith("helm-release-")]
    assert len(objects) == len(declared)
    assert all(o["apiVersion"] and o["kind"] and o["metadata"]["name"] for o in objects)
    release = yaml.safe_load((tmp_path / "prod.manifests" / "backup" / "helm-release-velero-velero.yaml").read_text())
    assert (release["chart"], release["version"]) == ("velero", "12.1.0")
    graph = (tmp_path / "prod.graph.mmd").read_text()
    assert graph.startswith("graph LR") and "  serving --> autoscaling" in graph


def test_plan_shows_the_region_and_the_pool_values_in_effect(capsys):
    assert main(["plan", "dev"]) == 0
    out = capsys.readouterr().out
    assert "\nregion: us-east-1\n" in out
    pools = out.split("node pools (* = default, not set in Pulumi.dev.yaml):\n", 1)[1].split("\n\n", 1)[0]
    rows = {line.split()[0]: line.split() for line in pools.splitlines()[1:]}
    assert rows["system"][2] == "managed*", "the system pool's provisioner comes from the default"
    assert rows["training"][-1] == "192/2304Gi/16*", "2 x p4d.24xlarge: limits derived from maxSize"
    assert rows["cpu"][-1] == "80/320Gi/0", "limits the stack file sets are not marked"


def test_a_region_without_prices_is_estimated_at_us_east_1_and_says_so(tmp_path, capsys):
    text = (Path(__file__).parent.parent / "Pulumi.dev.yaml").read_text()
    (tmp_path / "Pulumi.eu.yaml").write_text(text.replace("us-east-1", "mx-central-1"))
    assert main(["plan", "eu", "--cwd", str(tmp_path)]) == 0, "an advisory finding does not block"
    out = capsys.readouterr().out
    assert "monthly cost estimate (USD, us-east-1 prices of 2026-07-06; none recorded for mx-central-1)" in out
    assert "advisory      cost-region-priced" in out


def test_plan_preview_lists_the_mandatory_rules_a_first_preview_cannot_verify(capsys):
    assert main(["plan", "prod", "--preview"]) == 0
    out = capsys.readouterr().out
    section = out.split("first preview: ", 1)[1]
    assert section.startswith(tuple(f"{n} mandatory checks cannot verify" for n in range(1, 100))), section[:80]
    rows = {tuple(line.split()) for line in section.splitlines()[1:] if line.strip()}
    # IAM documents built from ARNs, and the cluster's key ARN, exist only after create.
    assert ("karpenter-controller-node-lifecycle", "iam-no-wildcard-admin") in rows
    assert ("eks", "eks-secrets-encryption") in rows
    assert ("stack", "s3-deny-insecure-transport") in rows
    # What config alone decides is checked in a first preview too.
    assert not {r for r in rows if r[1] in ("launch-template-imdsv2", "eks-endpoint-access",
                                            "node-group-launch-template", "launch-template-ebs-encrypted")}

