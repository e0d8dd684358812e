"""Evaluation: scheduled lm-evaluation-harness runs against each served model, results kept, scores as metrics.

- The runner image (evaluation/Dockerfile) lives in a stack-owned ECR repository (scan on push,
  immutable tags, lifecycle); CI builds and pushes it; config takes its digest.
- A CronJob per model in `ml-jobs` runs evaluation/run.py: a /health check first (a model at zero
  on purpose is skipped, not failed), then lm_eval with `local-completions` against the model's
  Service, results to a private bucket (a Pod Identity limited to its prefix), scores to a
  Pushgateway that Prometheus scrapes.
- Its NetworkPolicy lets the job reach its model on 8000, the Pushgateway, DNS, the Pod Identity
  agent and HTTPS (S3, the dataset hub); the model's own policy admits `ml-jobs`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from catalog import footprints, metrics, namespaces
from catalog.charts import PUSHGATEWAY
from catalog.scheduling import POOL_LABEL, on_system_pool
from components import alerts
from components.grafana import Panel, dashboard, dashboard_config_map
from components.handles import ClusterHandle, PlatformContext
from components.iam import policy_document
from components.identity import PodIdentityArgs, pod_identity_role
from components.namespace import existing_namespace, in_namespace
from components.observability import MonitoringHandle
from components.secrets import SecretsHandle, SyncedSecret, external_secret
from components.storage import PrivateBucket, PrivateBucketArgs

SERVICE_ACCOUNT = "evaluation"
PUSHGATEWAY_URL = f"http://prometheus-pushgateway.{namespaces.MONITORING}.svc:{metrics.PUSHGATEWAY_PORT}"
PREFIX = "evaluations"
UID = 1000  # the image's user (evaluation/Dockerfile)


@dataclass(frozen=True)
class EvaluatedModel:
    name: str  # the served model's name (its Service and served name)
    model: str  # hub id, for the tokenizer
    serving_namespace: str
    tasks: Sequence[str]
    limit: int
    few_shot: int
    schedule: str
    budget_seconds: int
    interval_seconds: int
    floors: dict[str, float]
    may_be_at_zero: bool
    # The model's API key and hub token, synced into this namespace from the same Secrets Manager keys:
    # Secret `<model>-api-key` (key api-key) and `<model>-hub-token` (key token).
    api_key: SyncedSecret | None
    hub_token: SyncedSecret | None


@dataclass(frozen=True)
class EvaluationArgs:
    context: PlatformContext
    cluster: ClusterHandle
    secrets: SecretsHandle
    monitoring: MonitoringHandle
    namespace: str
    namespace_output: pulumi.Input[str]
    models: Sequence[EvaluatedModel]
    image_digest: str | None
    cpu_pool: str
    results_expire_days: int
    protect: bool


def ecr_lifecycle() -> str:
    """Keep the last 30 runner images; untagged layers go after 14 days."""
    return json.dumps({"rules": [
        {"rulePriority": 1, "description": "untagged", "selection": {
            "tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
         "action": {"type": "expire"}},
        {"rulePriority": 2, "description": "keep 30", "selection": {
            "tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30}, "action": {"type": "expire"}},
    ]})


def results_writer_policy(bucket_arn: str, key_arn: str, region: str) -> str:
    return policy_document([
        {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": f"{bucket_arn}/{PREFIX}/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn,
         "Condition": {"StringLike": {"s3:prefix": [f"{PREFIX}/*"]}}},
        {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": key_arn,
         "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}},
    ])


def cron_job(m: EvaluatedModel, namespace: pulumi.Input[str], image: pulumi.Input[str], bucket: pulumi.Input[str],
             cpu_pool: str, suspended: bool) -> dict:
    base_url = f"http://{m.name}.{m.serving_namespace}.svc:8000"
    args = ["--model", m.name, "--served-name", m.name, "--base-url", base_url, "--tokenizer", m.model,
            "--tasks", ",".join(m.tasks), "--limit", str(m.limit), "--few-shot", str(m.few_shot),
            "--bucket", bucket, "--pushgateway", PUSHGATEWAY_URL, *(["--may-be-at-zero"] if m.may_be_at_zero else [])]
    env = []
    if m.api_key:
        # lm_eval's API models send OPENAI_API_KEY as the bearer token.
        env.append({"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": m.api_key.name,
                                                                             "key": "api-key"}}})
    if m.hub_token:
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": m.hub_token.name, "key": "token"}}})
    labels = {"app.kubernetes.io/name": "evaluation", "app.kubernetes.io/instance": m.name}
    pod = {
        "serviceAccountName": SERVICE_ACCOUNT, "automountServiceAccountToken": False, "restartPolicy": "Never",
        "nodeSelector": {POOL_LABEL: cpu_pool},
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "lm-eval", "image": image, "args": args, "env": env,
            "resources": {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"memory": "4Gi"}},
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                "runAsNonRoot": True},
        }],
    }
    return {
        "metadata": {"name": f"evaluate-{m.name}", "namespace": namespace, "labels": labels},
        "spec": {
            "schedule": m.schedule, "timeZone": "Etc/UTC", "suspend": suspended,
            "concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": {
                "backoffLimit": 2,
                # The budget, and half again: a run past its budget alerts before it is killed.
                "activeDeadlineSeconds": m.budget_seconds * 3 // 2,
                "template": {"metadata": {"labels": labels}, "spec": pod}}},
        },
    }


def job_egress(models: Sequence[EvaluatedModel]) -> dict:
    """The evaluation pods may call their models, and the Pushgateway (the namespace allows DNS and HTTPS)."""
    serving = sorted({m.serving_namespace for m in models})
    return {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "evaluation"}}, "policyTypes": ["Egress"],
            "egress": [
                {"to": [in_namespace(n) for n in serving],
                 "ports": [{"protocol": "TCP", "port": 8000}]},
                {"to": [{**in_namespace(namespaces.MONITORING), "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus-pushgateway"}}}],
                 "ports": [{"protocol": "TCP", "port": metrics.PUSHGATEWAY_PORT}]}]}


def evaluation_rules(models: Sequence[EvaluatedModel], namespace: str, runbooks: str) -> list[dict]:
    rules = []
    for m in models:
        cronjob = f'namespace="{namespace}", cronjob="evaluate-{m.name}"'
        rules += [
            alerts.alert("EvaluationJobFailed",
                         f"kube_cronjob_status_last_successful_time{{{cronjob}}} < "
                         f"kube_cronjob_status_last_schedule_time{{{cronjob}}} and on () "
                         f"(time() - kube_cronjob_status_last_schedule_time{{{cronjob}}} > "
                         f"{m.budget_seconds * 3 // 2})", "0m", "warning",
                         f"The last evaluation of {m.name} did not succeed",
                         "Its last scheduled run failed, or ran out of time, and none succeeded since.", runbooks),
            alerts.alert("HighEvaluationLatency",
                         f'mlp_evaluation_last_run_duration_seconds{{model="{m.name}"}} > {m.budget_seconds}',
                         "0m", "warning", f"The evaluation of {m.name} took longer than its budget",
                         "The last run took {{ $value | humanizeDuration }}: lower the sample limit or the tasks, "
                         "or raise the budget.", runbooks),
            alerts.alert("EvaluationMissing",
                         f"time() - kube_cronjob_status_last_successful_time{{{cronjob}}} > "
                         f"{2 * m.interval_seconds}", "30m", "warning",
                         f"No evaluation of {m.name} succeeded for twice its schedule",
                         "The last success is {{ $value | humanizeDuration }} old.", runbooks),
        ]
        for task, floor in sorted(m.floors.items()):
            rules.append(alerts.alert(
                "ModelQualityRegressed",
                f'min(mlp_evaluation_score{{model="{m.name}", task="{task}"}}) < {floor:g}', "0m", "warning",
                f"{m.name} scores below {floor:g} on {task}",
                f"The last evaluation scored {{{{ $value }}}} on {task}, under its floor of {floor:g}.", runbooks))
    return [{"name": "ml-platform.evaluation", "rules": rules}]


def evaluation_dashboard() -> dict:
    return dashboard("mlp-evaluation", "ML platform: model evaluation", [
        Panel("Scores per model and task", "mlp_evaluation_score", "percentunit",
              "{{model}} {{task}} {{metric}}"),
        Panel("Last run status (1 ok, 0 failed, 2 skipped)", "mlp_evaluation_last_run_status", legend="{{model}}"),
        Panel("Run duration", "mlp_evaluation_last_run_duration_seconds", "s", "{{model}}"),
    ])


def pushgateway_values(system_pool: str) -> dict:
    return {**on_system_pool(system_pool), "resources": footprints.PUSHGATEWAY.resources(),
            # Scores keep their model and task labels, not the scraper's.
            "serviceMonitor": {"enabled": True, "honorLabels": True}}


class Evaluation(pulumi.ComponentResource):
    """ECR repository, results bucket and identity, Pushgateway, a CronJob per model, its policy, rules."""

    repository_url: pulumi.Output[str]
    results_bucket: pulumi.Output[str]

    def __init__(self, name: str, args: EvaluationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ml-platform:evaluation:Evaluation", name, None, opts)
        context, stateful = args.context, pulumi.ResourceOptions(parent=self, protect=args.protect)
        repository = aws.ecr.Repository(
            f"{name}-runner", name=f"{context.cluster_name}/lm-eval", image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True}, encryption_configurations=[{"encryption_type": "KMS"}],
            force_delete=False, opts=stateful)
        aws.ecr.LifecyclePolicy(f"{name}-runner", repository=repository.name, policy=ecr_lifecycle(),
                                opts=pulumi.ResourceOptions(parent=self))
        bucket = PrivateBucket(f"{name}-results", PrivateBucketArgs(context=context, protect=args.protect,
                                                                    expire_days=args.results_expire_days),
                               opts=pulumi.ResourceOptions(parent=self))
        pod_identity_role(f"{name}-writer", PodIdentityArgs(
            context=context, namespace=args.namespace, service_account=SERVICE_ACCOUNT,
            inline_policies={f"{name}-writer": pulumi.Output.all(bucket.arn, bucket.kms_key_arn).apply(
                lambda a: results_writer_policy(a[0], a[1], context.region))},
            associate_with=args.cluster.name), parent=self)

        jobs = existing_namespace(args.namespace_output, args.cluster, self)
        k8s.core.v1.ServiceAccount(f"{name}-account", metadata={"name": SERVICE_ACCOUNT, "namespace": jobs.namespace},
                                   automount_service_account_token=False, opts=jobs.opts)
        k8s.networking.v1.NetworkPolicy(f"{name}-egress", metadata={"name": "evaluation-egress",
                                                                    "namespace": jobs.namespace},
                                        spec=job_egress(args.models), opts=jobs.opts)
        monitoring = existing_namespace(namespaces.MONITORING, args.cluster, self)
        monitoring.chart(f"{name}-pushgateway", PUSHGATEWAY, pushgateway_values(context.system_pool_name),
                         depends_on=[args.monitoring.crds])
        # Until CI has pushed an image and config names its digest, the CronJobs stay suspended: the
        # all-zero digest below is never pulled (docs/evaluation.md, "First run").
        digest = args.image_digest or f"sha256:{'0' * 64}"
        image = repository.repository_url.apply(lambda url: f"{url}@{digest}")
        for m in args.models:
            for synced in (s for s in (m.api_key, m.hub_token) if s):
                jobs.custom_resource(f"{name}-{synced.name}", external_secret(synced, args.secrets.prefix,
                                                                            jobs.namespace),
                                     depends_on=[args.secrets.store])
            job = cron_job(m, jobs.namespace, image, bucket.bucket_name, args.cpu_pool, args.image_digest is None)
            k8s.batch.v1.CronJob(f"{name}-{m.name}", metadata=job["metadata"], spec=job["spec"], opts=jobs.opts)
        jobs.custom_resource(f"{name}-rules", alerts.prometheus_rule(
            "ml-platform-evaluation", jobs.namespace,
            evaluation_rules(args.models, args.namespace, args.monitoring.runbooks)), depends_on=[args.monitoring.stack])
        dashboard_config_map(f"{name}-dashboard", jobs, "dashboard-evaluation", "ml-platform-evaluation.json",
                             json.dumps(evaluation_dashboard(), sort_keys=True))
        self.repository_url = repository.repository_url
        self.results_bucket = bucket.bucket_name
        self.register_outputs({"repository_url": self.repository_url, "results_bucket": self.results_bucket})
