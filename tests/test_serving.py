"""Serving: every model proven to fit its pool before anything is created, and what each model becomes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from promtool_harness import check_and_test

from infra.config import ConfigError, parse

ALERT_TESTS = Path(__file__).parent / "alerts" / "serving.test.yaml"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def _with_model(raw_config, stack: str, **model):
    cfg = raw_config(stack)
    name = next(iter(cfg["ml-platform:serving"]["models"]))
    cfg["ml-platform:serving"]["models"][name] = {**cfg["ml-platform:serving"]["models"][name], **model}
    return cfg


def _error(cfg, stack: str) -> str:
    with pytest.raises(ConfigError) as err:
        parse(cfg, stack=stack)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"Pulumi.{stack}.yaml: "), message
    return message


def _inference_types(cfg, types):
    cfg["ml-platform:nodePools"]["inference"] = {**cfg["ml-platform:nodePools"]["inference"], "instanceTypes": types}
    return cfg


def test_a_70b_model_on_one_a10g_is_refused_with_the_numbers(raw_config):
    cfg = _with_model(raw_config, "prod", model="meta-llama/Llama-3.1-70B-Instruct")
    assert _error(cfg, "prod").endswith(
        "serving.models.llama-3-1-8b: meta-llama/Llama-3.1-70B-Instruct needs 135.5 GiB of GPU memory (weights 131.5 "
        "+ KV cache 2.5 for 8192 tokens + overhead 1.5), but 1 x A10G (24 GiB) at gpuMemoryUtilization 0.9 gives "
        "21.6 GiB: use more GPUs per replica (a type with more GPUs, e.g. g5.12xlarge), quantization, or a shorter "
        "maxModelLen")


def test_the_same_70b_fits_four_a10gs_when_quantized(raw_config):
    cfg = _inference_types(_with_model(raw_config, "prod", model="meta-llama/Llama-3.1-70B-Instruct", gpus=4,
                                       quantization="awq", cpu="8", memory="64Gi", replicas={"min": 1, "max": 2}),
                           ["g5.12xlarge"])
    assert parse(cfg, stack="prod").serving.models["llama-3-1-8b"].gpus == 4


def test_more_gpus_than_a_node_has_is_refused(raw_config):
    cfg = _with_model(raw_config, "prod", gpus=2)
    assert _error(cfg, "prod").endswith(
        "serving.models.llama-3-1-8b.gpus: 2 GPUs per replica, but a g5.xlarge (the pool's smallest type) has 1")


def test_tensor_parallelism_must_divide_the_attention_heads(raw_config):
    cfg = _inference_types(_with_model(raw_config, "prod", model="Qwen/Qwen2.5-0.5B-Instruct", gpus=4, cpu="8",
                                       memory="64Gi", hubTokenSecret=None), ["g5.12xlarge"])
    assert _error(cfg, "prod").endswith("serving.models.llama-3-1-8b.gpus: tensor parallel size 4 does not divide "
                                        "Qwen/Qwen2.5-0.5B-Instruct's 14 attention heads")


def test_a_time_sliced_replica_gets_a_slice_of_the_memory_not_all_of_it(raw_config):
    cfg = _with_model(raw_config, "dev", gpuMemoryUtilization=0.9)
    assert _error(cfg, "dev").endswith(
        "serving.models.qwen-1-5b.gpuMemoryUtilization: pool inference shares each GPU 4 ways, so a replica gets "
        "one GPU and at most 0.25 of its memory (got 1 GPUs at 0.9): 4 vLLM pods at 0.9 on one GPU all run out "
        "of memory")


def test_a_model_too_big_for_its_slice_is_refused(raw_config):
    cfg = _with_model(raw_config, "dev", model="Qwen/Qwen2.5-7B-Instruct")
    assert "Qwen/Qwen2.5-7B-Instruct needs 15.9 GiB of GPU memory" in _error(cfg, "dev")


def test_a_pod_bigger_than_a_node_after_its_daemonsets_never_schedules(raw_config):
    cfg = _with_model(raw_config, "prod", cpu="4", memory="16Gi")
    assert _error(cfg, "prod").endswith(
        "serving.models.llama-3-1-8b.cpu/memory: one g5.xlarge gives pods 3920m CPU / 15391Mi; its DaemonSets take "
        "350m / 520Mi and llama-3-1-8b needs 4000m / 16384Mi more")


def test_a_model_that_could_never_reach_its_max_replicas_is_refused(raw_config):
    cfg = _with_model(raw_config, "dev", replicas={"min": 0, "max": 20})
    assert _error(cfg, "dev").endswith(
        "serving.models: pool inference holds at most 16 GPUs (nodes x GPUs x slices), and its models may need 21 "
        "at their max replicas plus one rollout surge each (qwen-1-5b 21): lower replicas.max or raise the pool's "
        "maxSize")


@pytest.mark.parametrize("model, expected", [
    ({"replicas": {"min": 0, "max": 2}, "autoscaling": {}},
     "replicas.min 0 needs autoscaling.wake (a cron window): at zero there is no vLLM metric to wake on"),
    ({"model": "acme/house-model-13b"}, "serving.models.qwen-1-5b.facts: acme/house-model-13b is not in "
     "catalog/models.py; give its facts"),
    ({"image": "vllm/vllm-openai:latest"}, "'vllm/vllm-openai:latest' is not a pinned vLLM release"),
    ({"pool": "cpu"}, "serving.models.qwen-1-5b.pool: 'cpu' is no inference pool (inference pools: inference)"),
    ({"clients": ["research"]}, "serving.models.qwen-1-5b.clients: 'research' is no team namespace"),
    ({"maxModelLen": 65536}, "serving.models.qwen-1-5b.maxModelLen: 65536 exceeds Qwen/Qwen2.5-1.5B-Instruct's "
     "context of 32768"),
    ({"apiKeySecret": "hub-token"}, "serving.models.qwen-1-5b.apiKeySecret: ExternalSecret hub-token has no key "
     "'api-key' (it has token)"),
    ({"extraArgs": ["--max-model-len=999"]}, "--max-model-len is set from this model's own keys"),
    ({"cacheGiB": 190}, "serving.models.qwen-1-5b.cacheGiB: 190 GiB does not fit pool inference's 200 GiB root "
     "volume less 30 GiB"),
])
def test_serving_mistakes_are_one_line_naming_the_key(raw_config, model, expected):
    assert expected in _error(_with_model(raw_config, "dev", **model), "dev")


def _servers(stack):
    return {r.inputs["metadata"]["name"]: r for r in stack.of_type(DEPLOYMENT)
            if r.inputs["metadata"]["labels"].get("app.kubernetes.io/component") == "model-server"}


def test_each_model_runs_vllm_on_its_pool_with_its_gpus_requested_and_limited(stack):
    (server,) = _servers(stack).values()
    pod = server.inputs["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["requests"]["nvidia.com/gpu"] == container["resources"]["limits"][
        "nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"ml-platform/pool": "inference"}
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"} in pod[
        "tolerations"]
    assert container["command"] == ["vllm", "serve"] and container["image"] == "vllm/vllm-openai:v0.31.0"
    args = container["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == "1" and args[args.index("--port") + 1] == "8000"
    assert container["startupProbe"]["httpGet"] == {"path": "/health", "port": 8000}
    assert container["startupProbe"]["periodSeconds"] * container["startupProbe"]["failureThreshold"] == 600
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 2000
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                            "runAsNonRoot": True}
    assert pod["automountServiceAccountToken"] is False
    assert server.inputs["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert server.ignore_changes == ["spec.replicas"], "KEDA owns the replica count"


def test_prod_reads_its_hub_token_and_api_key_from_external_secrets(prod, dev):
    (container,) = _servers(prod)["llama-3-1-8b"].inputs["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["HF_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "hub-token", "key": "token"}}
    assert env["VLLM_API_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "llama-api-key", "key": "api-key"}}
    assert "--api-key" not in container["args"], "a key in args shows in the pod spec"
    (dev_container,) = _servers(dev)["qwen-1-5b"].inputs["spec"]["template"]["spec"]["containers"]
    assert "HF_TOKEN" not in {e["name"] for e in dev_container["env"]}, "an open model needs no token"


def test_only_its_clients_and_prometheus_reach_a_model_and_only_on_8000(stack):
    (policy,) = [p for p in stack.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                 if p.inputs["metadata"]["name"].endswith("-ingress")]
    (rule,) = policy.inputs["spec"]["ingress"]
    assert [f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for f in rule["from"]] == [
        "ml-inference", "ml-jobs", "monitoring"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]


def test_keda_scales_on_the_model_s_queue_and_wakes_dev_in_working_hours(stack):
    (scaler,) = stack.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")
    spec = scaler.inputs["spec"]
    prometheus = next(t for t in spec["triggers"] if t["type"] == "prometheus")["metadata"]
    served = next(iter(_servers(stack)))
    assert prometheus["query"] == f'sum(vllm:num_requests_waiting{{model_name="{served}"}})'
    assert prometheus["serverAddress"] == "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
    assert prometheus["threshold"] == "5"
    if stack.stack == "dev":
        assert spec["minReplicaCount"] == 0 and spec["cooldownPeriod"] >= 1800
        cron = next(t for t in spec["triggers"] if t["type"] == "cron")["metadata"]
        assert cron == {"timezone": "Europe/Berlin", "start": "0 7 * * 1-5", "end": "0 20 * * 1-5",
                        "desiredReplicas": "1"}
    else:
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 8)
    keda = stack.named("kubernetes:helm.sh/v3:Release", "autoscaling-keda")
    assert keda.urn in scaler.dependencies, "the ScaledObject waits for KEDA's CRDs and webhook"


def test_prometheus_admits_keda_and_keda_reaches_only_prometheus(stack):
    (admit,) = [p for p in stack.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                if p.inputs["metadata"]["name"] == "allow-from-keda"]
    assert admit.inputs["metadata"]["namespace"] == "monitoring"
    assert admit.inputs["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 9090}]


def test_serving_rules_pass_promtool_and_fire_on_synthetic_series(dev, tmp_path):
    rules = dev.named("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "serving-rules").inputs["spec"]["groups"]
    check_and_test(rules, ALERT_TESTS, tmp_path)


def test_every_serving_alert_has_its_runbook(stack):
    rules = stack.named("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "serving-rules").inputs["spec"]["groups"]
    root = Path(__file__).parent.parent / "docs" / "runbooks"
    for rule in rules[0]["rules"]:
        page = rule["annotations"]["runbook_url"].rsplit("/", 1)[1]
        assert f"# {rule['alert']}" in (root / page).read_text()


def test_the_rendered_serving_objects_are_stable(stack):
    """Golden manifests: a change to what a model becomes shows in review (UPDATE_GOLDEN=1 to accept)."""
    import os

    objects = {f"{r.type} {r.name}": r.inputs for r in stack.resources
               if r.parent and "serving:Serving" in r.parent}
    text = json.dumps(copy.deepcopy(objects), indent=1, sort_keys=True, default=str) + "\n"
    golden = Path(__file__).parent / "golden" / f"{stack.stack}.serving.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.read_text() == text
