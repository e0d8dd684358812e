"""The pack itself: its roster, its metadata, and that it loads as a real CrossGuard pack."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from policy_harness import findings, resource
from pulumi_policy import PolicyComplianceFramework, StackValidationPolicy
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policies.pack import RULES

ROOT = Path(__file__).resolve().parent.parent

# Adding, removing or downgrading a rule must show up in review: change this roster with it.
ROSTER = [
    ("launch-template-imdsv2", "mandatory"),
    ("karpenter-nodeclass-imdsv2", "mandatory"),
    ("launch-template-ebs-encrypted", "mandatory"),
    ("karpenter-nodeclass-ebs-encrypted", "mandatory"),
    ("launch-template-no-public-ip", "mandatory"),
    ("karpenter-nodeclass-no-public-ip", "mandatory"),
    ("node-group-launch-template", "mandatory"),
    ("instance-imdsv2", "mandatory"),
    ("instance-ebs-encrypted", "mandatory"),
    ("subnet-no-auto-public-ip", "mandatory"),
    ("security-group-no-open-ingress", "mandatory"),
    ("vpc-flow-logs", "mandatory"),
    ("vpc-private-cidr", "mandatory"),
    ("eks-secrets-encryption", "mandatory"),
    ("eks-control-plane-logging", "mandatory"),
    ("eks-endpoint-access", "mandatory"),
    ("eks-supported-version", "mandatory"),
    ("eks-access-entries", "mandatory"),
    ("eks-no-implicit-creator-admin", "advisory"),
    ("eks-no-aws-auth-configmap", "mandatory"),
    ("kms-key-rotation", "mandatory"),
    ("s3-block-public-access", "mandatory"),
    ("s3-kms-encryption", "mandatory"),
    ("s3-versioning", "mandatory"),
    ("s3-deny-insecure-transport", "mandatory"),
    ("s3-no-force-destroy", "mandatory"),
    ("s3-acls-disabled", "mandatory"),
    ("s3-no-public-acl", "mandatory"),
    ("ebs-encrypted", "mandatory"),
    ("sqs-encrypted", "mandatory"),
    ("sqs-deny-insecure-transport", "mandatory"),
    ("log-group-retention", "mandatory"),
    ("secretsmanager-customer-key", "mandatory"),
    ("secretsmanager-replicated", "mandatory"),
    ("iam-no-wildcard-admin", "mandatory"),
    ("iam-no-service-wildcards", "mandatory"),
    ("iam-trust-one-service-account", "mandatory"),
    ("iam-cni-policy-not-on-node-role", "advisory"),
    ("k8s-no-privileged", "mandatory"),
    ("k8s-no-privilege-escalation", "mandatory"),
    ("k8s-run-as-non-root", "mandatory"),
    ("k8s-drop-all-capabilities", "mandatory"),
    ("k8s-no-host-namespaces", "mandatory"),
    ("k8s-no-host-path", "mandatory"),
    ("k8s-resources-set", "mandatory"),
    ("k8s-image-pinned", "mandatory"),
    ("k8s-deployment-probes", "mandatory"),
    ("k8s-gpu-requests-tolerate-gpu-taint", "mandatory"),
    ("k8s-pdb-for-replicated-deployments", "mandatory"),
    ("k8s-namespace-pod-security", "mandatory"),
    ("k8s-internal-load-balancers", "mandatory"),
    ("k8s-no-literal-secret-env", "mandatory"),
    ("k8s-no-secret-manifests", "mandatory"),
    ("helm-chart-pinned", "mandatory"),
    ("k8s-namespace-default-deny", "mandatory"),
    ("k8s-no-default-namespace", "advisory"),
    ("k8s-no-default-service-account-token", "mandatory"),
    ("k8s-rbac-no-wildcards", "mandatory"),
    ("k8s-no-cluster-admin-binding", "mandatory"),
    ("k8s-rbac-secrets-narrow", "mandatory"),
    ("k8s-read-only-roles-read-only", "mandatory"),
    ("k8s-namespace-gpu-quota", "mandatory"),
    ("velero-schedule-coverage", "mandatory"),
    ("prometheus-alert-metadata", "mandatory"),
    ("alertmanager-receiver-secrets", "mandatory"),
    ("k8s-storageclass-encrypted", "mandatory"),
    ("monitoring-volumes-encrypted", "mandatory"),
    ("k8s-gpu-request-equals-limit", "mandatory"),
    ("k8s-gpu-server-network-policy", "mandatory"),
    ("keda-max-within-pool", "mandatory"),
    ("k8s-cronjob-bounded", "mandatory"),
    ("k8s-cronjob-image-digest", "mandatory"),
    ("cost-allowed-instance-families", "advisory"),
    ("cost-allowed-gpu-models", "advisory"),
    ("cost-nodepool-limits", "mandatory"),
    ("cost-gpu-scale-to-zero", "mandatory"),
    ("cost-gpu-spot", "mandatory"),
    ("cost-max-pool-size", "advisory"),
    ("cost-max-gpus", "advisory"),
    ("cost-ebs-volume-cap", "advisory"),
    ("cost-nat-gateway-count", "advisory"),
    ("aws-required-tags", "advisory"),
    ("cost-node-tags", "advisory"),
    ("cost-monthly-budget", "advisory"),
    ("cost-region-priced", "advisory"),
    ("cost-eks-standard-support-only", "mandatory"),
]


def test_roster_is_pinned():
    assert [(r.name, r.enforcement_level.value) for r in RULES] == ROSTER
    assert len(RULES) >= 45


def test_names_are_unique_stable_kebab_case():
    names = [r.name for r in RULES]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", n) for n in names)


def test_every_rule_carries_its_metadata():
    for rule in RULES:
        assert rule.description.endswith("."), rule.name
        assert rule.severity is not None, rule.name
        assert isinstance(rule.framework, PolicyComplianceFramework), rule.name
        assert rule.remediation_steps and rule.url.endswith(f"#{rule.name}"), rule.name


def test_cis_controls_mapped():
    controls = {r.framework.reference for r in RULES if r.framework.name == "CIS Amazon EKS Benchmark"}
    assert {"2.1.1", "4.1.5", "4.2.1", "4.2.4", "4.2.5", "4.3.2", "4.4.1", "4.5.2", "5.3.1", "5.4.1"} <= controls


def test_stack_rules_cover_whole_picture_checks():
    stack_rules = {r.name for r in RULES if isinstance(r, StackValidationPolicy)}
    assert {"vpc-flow-logs", "k8s-namespace-default-deny", "cost-monthly-budget"} <= stack_rules


def test_rules_read_props_as_the_analyzer_gives_them():
    """Props are read-only proxies: isinstance(dict/list) checks and json.dumps(props) break in real previews."""
    for path in (ROOT / "policies").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"isinstance\([^)]*,\s*\(?(dict|list)\b", text), path.name
        assert not re.search(r"json\.dumps\([^)]*props", text), path.name


def test_a_value_unknown_at_preview_is_reported_as_unverifiable_not_passed():
    template = resource("aws:ec2/launchTemplate:LaunchTemplate", "lt", {
        "metadataOptions": {"httpTokens": UNKNOWN_STRING_VALUE, "httpPutResponseHopLimit": 1}})
    rule = next(r for r in RULES if r.name == "launch-template-imdsv2")
    (found,) = findings(rule, [template])
    assert found.level == "cannot-verify" and "cannot run during preview" in found.message


def test_importing_the_rules_starts_no_server():
    """Constructing PolicyPack serves forever: importing every other module must return at once."""
    modules = sorted(f"policies.{p.stem}" for p in (ROOT / "policies").glob("*.py") if p.stem != "__main__")
    code = f"import sys, {', '.join(modules)}; print('policies.__main__' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "False\n"), done.stderr


def test_the_pack_starts_as_the_pulumi_cli_runs_it():
    """`pulumi preview --policy-pack policies` runs policies/__main__.py; it must serve and print its port."""
    process = subprocess.Popen([sys.executable, str(ROOT / "policies" / "__main__.py")], cwd=ROOT / "policies",
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        port = process.stdout.readline().strip()
        assert port.isdigit(), process.stderr.read() if process.poll() is not None else port
    finally:
        process.kill()
        process.wait()


def test_the_rule_tables_in_the_docs_are_the_rules():
    """docs/policies.md is written from the rules' metadata (python -m infra.policy_docs): no stale row."""
    from infra import policy_docs

    page = policy_docs.PAGE.read_text()
    assert policy_docs.render(page) == page, "docs/policies.md is out of date: run python -m infra.policy_docs"
    tabled = {name for modules in policy_docs.TABLES.values() for module in modules for name in
              (rule.name for rule in module.RULES)}
    assert tabled == {rule.name for rule in RULES}, "a rule module is missing from infra/policy_docs.TABLES"


def test_every_rule_says_what_an_unset_property_means():
    """Absent is judged by AWS's (or Kubernetes') default: each rule says which, and where that is written."""
    assert [rule.name for rule in RULES if not rule.unset.strip()] == []


def test_the_built_pack_needs_nothing_outside_its_directory(tmp_path):
    """`pulumi policy publish` uploads one directory: everything the pack imports is in it or in its requirements."""
    import ast

    from packaging.requirements import Requirement

    from infra.policy_pack import build

    pack = build(tmp_path / "policy-pack")
    config = (pack / "PulumiPolicy.yaml").read_text()
    assert "virtualenv: venv" in config and ".." not in config, "the virtualenv must lie inside the pack"
    required = {Requirement(line).name.lower().replace("-", "_")
                for line in (pack / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")}
    assert {"pulumi_policy", "pydantic"} <= required
    local = {p.name for p in pack.iterdir() if p.is_dir()}
    for path in pack.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            for module in names:
                top = module.split(".")[0]
                assert top in sys.stdlib_module_names or top in local or top in required or top == "google", (
                    f"{path.relative_to(pack)} imports {module}, which the published pack would not have")
    assert sorted(p.name for p in (pack / "catalog" / "price_records").iterdir()) == sorted(
        p.name for p in (ROOT / "catalog" / "price_records").iterdir())
