"""Evaluation: the runner's pins, what run.py does, the rendered CronJob, its alerts, and config mistakes."""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

import pytest
from promtool_harness import check_and_test

from infra.config import ConfigError, parse

ROOT = Path(__file__).parent.parent
RUNNER = ROOT / "evaluation"
ALERT_TESTS = Path(__file__).parent / "alerts" / "evaluation.test.yaml"
CRONJOB = "kubernetes:batch/v1:CronJob"


def _runner():
    spec = importlib.util.spec_from_file_location("evaluation_run", RUNNER / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_runner_image_is_pinned_by_digest_with_every_package_hashed():
    dockerfile = (RUNNER / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", base), base
    assert "--require-hashes" in dockerfile and re.search(r"^USER 1000", dockerfile, re.M)
    requirements = (RUNNER / "requirements.txt").read_text()
    packages = re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+) \\$", requirements, re.M)
    assert ("lm-eval", "0.4.13") in packages
    blocks = re.split(r"\n(?=[A-Za-z])", requirements.split("\n", 1)[1])
    assert all("--hash=sha256:" in block for block in blocks if "==" in block), "a package without its hash"
    assert not [p for p, _ in packages if p == "torch"], "API models need no torch"


def test_the_runner_asks_lm_eval_for_local_completions_on_the_model_s_service():
    run = _runner()
    args = run.parse(["--model", "qwen", "--served-name", "qwen", "--base-url", "http://qwen.ml-inference.svc:8000",
                      "--tokenizer", "Qwen/Qwen2.5-1.5B-Instruct", "--tasks", "gsm8k,mmlu_pro", "--bucket", "b",
                      "--pushgateway", "http://pg:9091", "--limit", "200", "--few-shot", "5"])
    command = run.lm_eval_command(args, Path("/tmp/out"))
    assert command[:3] == ["lm_eval", "--model", "local-completions"]
    model_args = dict(kv.split("=", 1) for kv in command[command.index("--model_args") + 1].split(","))
    assert model_args["base_url"] == "http://qwen.ml-inference.svc:8000/v1/completions"
    assert model_args["tokenizer"] == "Qwen/Qwen2.5-1.5B-Instruct" and model_args["model"] == "qwen"
    assert command[command.index("--limit") + 1] == "200" and command[command.index("--num_fewshot") + 1] == "5"


def test_scores_become_metrics_and_a_skip_is_not_a_failure():
    run = _runner()
    results = {"results": {"gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 0.62,
                                     "exact_match_stderr,strict-match": 0.02, "exact_match,flexible-extract": 0.65}}}
    found = run.scores(results)
    assert found == {("gsm8k", "exact_match_strict_match"): 0.62, ("gsm8k", "exact_match_flexible_extract"): 0.65}
    text = run.metrics_text("qwen", "succeeded", 1234.0, found)
    assert 'mlp_evaluation_score{model="qwen",task="gsm8k",metric="exact_match_strict_match"} 0.62' in text
    assert 'mlp_evaluation_last_run_status{model="qwen"} 1' in text
    assert 'mlp_evaluation_last_run_status{model="qwen"} 2' in run.metrics_text("qwen", "skipped", 1.0, {})


def test_a_model_at_zero_on_purpose_is_skipped_and_a_down_one_fails(monkeypatch):
    run = _runner()
    pushed = []
    monkeypatch.setattr(run, "healthy", lambda url: False)
    monkeypatch.setattr(run, "push", lambda gateway, model, text: pushed.append(text))
    argv = ["--model", "q", "--served-name", "q", "--base-url", "http://q:8000", "--tokenizer", "o/q", "--tasks",
            "gsm8k", "--bucket", "b", "--pushgateway", "http://pg:9091", "--limit", "1", "--few-shot", "0"]
    assert run.main([*argv, "--may-be-at-zero"]) == 0
    assert run.main(argv) == 1
    assert ['mlp_evaluation_last_run_status{model="q"} 2' in pushed[0],
            'mlp_evaluation_last_run_status{model="q"} 0' in pushed[1]] == [True, True]


def _job(stack):
    (job,) = stack.of_type(CRONJOB)
    return job.inputs


def test_each_evaluation_is_a_forbid_concurrency_cronjob_with_a_deadline_and_no_token(stack):
    job = _job(stack)
    spec = job["spec"]
    assert spec["concurrencyPolicy"] == "Forbid" and spec["jobTemplate"]["spec"]["backoffLimit"] == 2
    budget = {"dev": 3600, "prod": 3 * 3600}[stack.stack]
    assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] == budget * 3 // 2
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"] is True
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert re.fullmatch(r"\d{12}\.dkr\.ecr\.us-east-1\.amazonaws\.com/ml-platform-\w+/lm-eval@sha256:[0-9a-f]{64}",
                        container["image"])
    # No digest in config yet: nothing can run, so the job is suspended.
    assert spec["suspend"] is True
    args = container["args"]
    assert args[args.index("--base-url") + 1].endswith(".ml-inference.svc:8000")
    assert ("--may-be-at-zero" in args) is (stack.stack == "dev")


def test_prod_jobs_send_the_model_s_api_key_synced_into_ml_jobs(prod):
    (container,) = _job(prod)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env["OPENAI_API_KEY"] == {"name": "llama-3-1-8b-api-key", "key": "api-key"}
    copy = prod.named("kubernetes:external-secrets.io/v1:ExternalSecret", "evaluation-llama-3-1-8b-api-key")
    assert copy.inputs["metadata"]["namespace"] == "ml-jobs"
    assert copy.inputs["spec"]["data"][0]["remoteRef"]["key"] == "ml-platform/prod/serving/llama-3-1-8b-api-key"


def test_the_jobs_reach_their_model_and_the_model_admits_them(stack):
    policies = {(p.inputs["metadata"]["namespace"], p.inputs["metadata"]["name"]): p.inputs["spec"]
                for p in stack.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    egress = policies[("ml-jobs", "evaluation-egress")]["egress"]
    assert egress[0]["ports"] == [{"protocol": "TCP", "port": 8000}]
    assert egress[1]["ports"] == [{"protocol": "TCP", "port": 9091}]
    served = next(k for k in policies if k[0] == "ml-inference" and k[1].endswith("-ingress"))
    sources = [f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
               for f in policies[served]["ingress"][0]["from"]]
    assert "ml-jobs" in sources
    assert policies[("monitoring", "allow-from-ml-jobs")]["ingress"][0]["ports"] == [{"protocol": "TCP",
                                                                                      "port": 9091}]


def test_results_go_to_a_private_bucket_through_an_identity_limited_to_its_prefix(stack):
    bucket = stack.named("aws:s3/bucket:Bucket", "evaluation-results")
    assert bucket.protect is (stack.stack == "prod")
    statements = json.loads(stack.named("aws:iam/rolePolicy:RolePolicy", "evaluation-writer").inputs["policy"])[
        "Statement"]
    assert statements[0]["Resource"] == f"{bucket.state['arn']}/evaluations/*"
    assert statements[1]["Condition"] == {"StringLike": {"s3:prefix": ["evaluations/*"]}}
    repository = stack.named("aws:ecr/repository:Repository", "evaluation-runner").inputs
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert stack.named("aws:ecr/lifecyclePolicy:LifecyclePolicy", "evaluation-runner")


def test_evaluation_rules_pass_promtool_and_fire_on_synthetic_series(dev, tmp_path):
    rules = dev.named("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "evaluation-rules").inputs["spec"][
        "groups"]
    check_and_test(rules, ALERT_TESTS, tmp_path)
    tested = set(re.findall(r"alertname: (\w+)", ALERT_TESTS.read_text()))
    assert tested == {r["alert"] for r in rules[0]["rules"]}
    for rule in rules[0]["rules"]:
        page = rule["annotations"]["runbook_url"].rsplit("/", 1)[1]
        assert f"# {rule['alert']}" in (ROOT / "docs" / "runbooks" / page).read_text()


def test_the_rendered_cronjobs_are_stable(stack):
    """Golden files (UPDATE_GOLDEN=1 to accept a change)."""
    text = json.dumps(_job(stack), indent=1, sort_keys=True, default=str) + "\n"
    golden = Path(__file__).parent / "golden" / f"{stack.stack}.evaluation-cronjob.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.read_text() == text


@pytest.mark.parametrize("evaluation, expected", [
    ({"models": {"mistral": {"tasks": ["gsm8k"]}}},
     "evaluation.models.mistral: no served model of that name (serving.models: qwen-1-5b)"),
    ({"models": {"qwen-1-5b": {"tasks": ["gsm8k"], "floors": {"gsm8k": 1.5}}}},
     "the floor of gsm8k is 1.5: scores run from 0 to 1"),
    ({"models": {"qwen-1-5b": {"tasks": ["gsm8k"], "schedule": "daily"}}}, "'daily' is not a cron schedule"),
    ({"models": {"qwen-1-5b": {"tasks": ["GSM 8K"]}}}, "'GSM 8K' is not an lm-evaluation-harness task name"),
    ({"models": {"qwen-1-5b": {"tasks": ["gsm8k"], "floors": {"mmlu": 0.5}}}},
     "floors name tasks this evaluation does not run: mmlu"),
    ({"imageDigest": "latest", "models": {}}, "'latest' is not an image digest like sha256:<64 hex digits>"),
])
def test_evaluation_mistakes_are_one_line_naming_the_key(raw_config, evaluation, expected):
    cfg = raw_config("dev")
    cfg["ml-platform:evaluation"] = evaluation
    with pytest.raises(ConfigError) as err:
        parse(cfg, stack="dev")
    assert "\n" not in str(err.value) and expected in str(err.value), str(err.value)
