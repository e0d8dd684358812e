"""Compose the platform from its components. The only place that sees the whole config."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from catalog import metrics, namespaces
from catalog.eks import RELEASES
from components import alerts
from components.autoscaling import Autoscaling, AutoscalingArgs
from components.backup import Backup, BackupArgs, ScheduleSpec
from components.budget import Budget, BudgetArgs
from components.cluster import Cluster, ClusterArgs
from components.evaluation import EvaluatedModel, Evaluation, EvaluationArgs
from components.gpu import Gpu, GpuArgs
from components.handles import ClusterHandle, PlatformContext
from components.iam import partition_of
from components.karpenter import Karpenter, KarpenterArgs
from components.network import DeployerLink, Network, NetworkArgs
from components.node_pools import NodePools, NodePoolsArgs
from components.node_role import NodeRolePolicies
from components.observability import Observability, ObservabilityArgs, PrometheusSpec
from components.secrets import Secrets, SecretsArgs, SecretsHandle, SyncedSecret
from components.serving import ModelServer, Serving, ServingArgs
from components.serving import Wake as ServingWake
from components.tenancy import TeamNamespaceSpec, TeamSpec, Tenancy, TenancyArgs, quota_hard
from infra.config import PlatformConfig
from policies import runner


def build(cfg: PlatformConfig) -> dict[str, pulumi.Output]:
    """Create every resource of the stack; return the stack outputs."""
    provider = aws.Provider("aws", region=cfg.region, default_tags={"tags": cfg.default_tags})
    on_aws = pulumi.ResourceOptions(providers=[provider])
    system_name, system_pool = cfg.system_pool
    context = PlatformContext(
        cluster_name=cfg.cluster_name,
        region=cfg.region,
        partition=partition_of(cfg.region),
        account_id=aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=provider)).account_id,
        tags=cfg.default_tags,
        system_pool_name=system_name,
    )

    network = Network(
        "network",
        NetworkArgs(
            context=context,
            cidr=cfg.network.cidr,
            availability_zones=cfg.network.availability_zones,
            nat_per_az=cfg.network.nat_gateways == "perAz",
            flow_logs_destination=cfg.network.flow_logs.destination,
            flow_logs_retention_days=cfg.network.flow_logs.retention_days,
            deployer_link=deployer_link(cfg),
            endpoints=cfg.network.endpoints,
            protect=cfg.protect_stateful,
        ),
        opts=on_aws,
    )
    node_policies = NodeRolePolicies(ssm=cfg.cluster.node_ssm_access, cni=cfg.cluster.cni_policy_on_node_role)
    cluster = Cluster(
        "eks",
        ClusterArgs(
            context=context,
            release=RELEASES[cfg.cluster.version],
            private_subnet_ids=network.private_subnet_ids,
            vpc_cidr=str(cfg.network.cidr),
            public_access_cidrs=[str(c) for c in cfg.cluster.public_access_cidrs],
            service_cidr=str(cfg.cluster.service_cidr),
            admin_principals=cfg.cluster.admin_principals,
            log_retention_days=cfg.cluster.log_retention_days,
            node_policies=node_policies,
            system_pool=system_pool,
            protect=cfg.protect_stateful,
            deployer_cidrs=[str(c) for c in cfg.cluster.deployer.cidrs] if cfg.cluster.deployer else [],
            deployer_path=network.deployer_path,
        ),
        opts=on_aws,
    )
    if cfg.pools_by("managed"):
        NodePools(
            "pools",
            NodePoolsArgs(context=context, cluster=cluster.handle, pools=cfg.pools_by("managed")),
            opts=on_aws,
        )
    if cfg.karpenter is not None:
        Karpenter(
            "karpenter",
            KarpenterArgs(
                context=context,
                cluster=cluster.handle,
                replicas=cfg.karpenter.replicas,
                ami_alias=cfg.karpenter.ami_alias,
                pools=cfg.pools_by("karpenter"),
                node_policies=node_policies,
            ),
            opts=on_aws,
        )
    tenancy = Tenancy("tenancy", TenancyArgs(context=context, cluster=cluster.handle, namespaces=team_namespaces(cfg),
                                             teams=[TeamSpec(name, team.principals, team.namespaces)
                                                    for name, team in cfg.tenancy.teams.items()]),
                      opts=on_aws)
    secrets = cfg.secrets
    dr_provider = aws.Provider("aws-dr", region=cfg.dr_region, default_tags={"tags": cfg.default_tags}) \
        if cfg.dr_region else None
    store = Secrets("secrets", SecretsArgs(
        context=context, cluster=cluster.handle, replicas=secrets.replicas,
        recovery_window_days=secrets.recovery_window_days, protect=cfg.protect_stateful,
        synced=[SyncedSecret(name, s.namespace, s.remote_key, s.properties, s.refresh_interval)
                for name, s in secrets.external_secrets.items()],
        namespaces=tenancy.namespace_outputs, platform_namespaces=[namespaces.VELERO, namespaces.MONITORING],
        copy_namespaces=[cfg.evaluation.namespace] if cfg.evaluation.models else [],
        dr_region=cfg.dr_region, dr_provider=dr_provider),
        opts=on_aws)
    backup = Backup("backup", BackupArgs(
        context=context, cluster=cluster.handle, secrets=store.handle,
        schedules=[ScheduleSpec(name, s.schedule, s.ttl,
                                [] if s.cluster_resources else s.namespaces or list(cfg.tenancy.namespaces),
                                s.cluster_resources)
                   for name, s in cfg.backup.schedules.items()],
        move_volume_data=cfg.backup.move_volume_data, noncurrent_days=cfg.backup.noncurrent_version_days,
        protect=cfg.protect_stateful, namespaces=tenancy.namespace_outputs,
        dr_region=cfg.dr_region, dr_provider=dr_provider),
        opts=on_aws)
    gpu_pools = {n: p for n, p in cfg.workload_pools.items() if p.gpu}
    if gpu_pools:
        Gpu(
            "gpu",
            GpuArgs(
                context=context,
                cluster=cluster.handle,
                pools=gpu_pools,
                dcgm_exporter=cfg.gpu.dcgm_exporter,
            ),
            opts=on_aws,
        )

    # One budget figure: the pack config's, which the cost-monthly-budget rule already enforces.
    budget = runner.pack_config(cfg.stack).get("cost-monthly-budget", {}).get("monthlyBudgetUsd")
    if budget:
        Budget("budget", BudgetArgs(context=context, stack=cfg.stack, monthly_usd=float(budget),
                                    emails=cfg.budget_emails), opts=on_aws)
    observability = observability_args(cfg, context, cluster.handle, store.handle, dcgm=bool(gpu_pools))
    monitoring = Observability("observability", observability, opts=on_aws)
    if cfg.serving.models:
        keda = Autoscaling("autoscaling", AutoscalingArgs(context=context, cluster=cluster.handle), opts=on_aws)
        Serving("serving", ServingArgs(
            context=context, cluster=cluster.handle, monitoring=monitoring.handle, autoscaler=keda.release,
            namespace=cfg.serving.namespace, namespace_output=tenancy.namespace_outputs[cfg.serving.namespace],
            models=model_servers(cfg)), opts=on_aws)
    if cfg.evaluation.models:
        evaluation = Evaluation("evaluation", EvaluationArgs(
            context=context, cluster=cluster.handle, secrets=store.handle, monitoring=monitoring.handle,
            namespace=cfg.evaluation.namespace, namespace_output=tenancy.namespace_outputs[cfg.evaluation.namespace],
            models=evaluated_models(cfg), image_digest=cfg.evaluation.image_digest,
            cpu_pool=next(iter(cfg.pools_of(["cpu"]))), results_expire_days=cfg.evaluation.results_expire_days,
            protect=cfg.protect_stateful), opts=on_aws)
        evaluation_outputs = {"evaluationRepository": evaluation.repository_url,
                              "evaluationResultsBucket": evaluation.results_bucket}
    else:
        evaluation_outputs = {}

    return {
        "clusterName": cluster.name,
        "clusterEndpoint": cluster.endpoint,
        "kubeconfig": cluster.kubeconfig,
        "oidcProviderArn": cluster.oidc_provider_arn,
        "vpcId": network.vpc_id,
        "privateSubnetIds": network.private_subnet_ids,
        "publicSubnetIds": network.public_subnet_ids,
        # Runbooks (docs/backup.md) read the bucket names from here: they are autonamed.
        "backupBucket": backup.bucket_name,
        "backupRoleName": backup.role_name,
        "containerLogGroup": monitoring.log_group_name,
        **evaluation_outputs,
        **({"backupReplicaBucket": backup.replica_bucket_name} if backup.replica_bucket_name else {}),
    }


def deployer_link(cfg: PlatformConfig) -> DeployerLink | None:
    deployer = cfg.cluster.deployer
    if deployer is None:
        return None
    return DeployerLink(connection=deployer.connection, cidrs=[str(c) for c in deployer.cidrs], vpc_id=deployer.vpc_id,
                        peer_account_id=deployer.peer_account_id, transit_gateway_id=deployer.transit_gateway_id,
                        route_table_ids=deployer.route_table_ids)


def team_namespaces(cfg: PlatformConfig) -> list[TeamNamespaceSpec]:
    """Each team namespace with its quota filled in: unset values are the capacity of its pools."""
    specs = []
    for name, namespace in cfg.tenancy.namespaces.items():
        cpu, memory, gpus = cfg.capacity(namespace.pool_roles)
        quota, defaults = namespace.quota, namespace.container_defaults
        specs.append(TeamNamespaceSpec(
            name=name, purpose=namespace.purpose, pod_security=namespace.pod_security,
            quota=quota_hard(quota.cpu or cpu, quota.memory_gib or memory,
                             gpus if quota.gpus is None else quota.gpus, quota.pods, quota.storage_gib),
            container_defaults={"default": {"cpu": defaults.cpu_limit, "memory": defaults.memory_limit},
                                "defaultRequest": {"cpu": defaults.cpu_request, "memory": defaults.memory_request}},
            https_to=["0.0.0.0/0"] if namespace.https_egress == "internet" else [str(cfg.network.cidr)],
            readable_secrets=namespace.readable_secrets))
    return specs


def observability_args(cfg: PlatformConfig, context: PlatformContext, cluster: ClusterHandle,
                       secrets: SecretsHandle, dcgm: bool) -> ObservabilityArgs:
    """What to scrape is what the stack runs; alert thresholds and routing come from config."""
    o = cfg.observability
    exporters = [*([metrics.KARPENTER] if cfg.karpenter else []), metrics.VELERO, metrics.EXTERNAL_SECRETS,
                 *([metrics.DCGM] if dcgm and cfg.gpu.dcgm_exporter else []), metrics.FLUENT_BIT]
    return ObservabilityArgs(
        context=context, cluster=cluster, secrets=secrets,
        prometheus=PrometheusSpec(o.prometheus.replicas, o.prometheus.retention, o.prometheus.retention_size,
                                  o.prometheus.storage_gib),
        alertmanager_replicas=o.alertmanager_replicas,
        receivers=[alerts.ReceiverSpec(kind, r.type, r.secret, r.key, r.channel) for kind, r in o.receivers if r],
        thresholds=alerts.Thresholds(**o.thresholds.model_dump()),
        backup_schedules=[alerts.BackupSchedule(name, s.interval_seconds) for name, s in cfg.backup.schedules.items()],
        runbooks=o.runbooks_url, exporters=exporters, gpus=dcgm and cfg.gpu.dcgm_exporter,
        node_cidr=str(cfg.network.cidr), log_retention_days=o.logs.retention_days, protect=cfg.protect_stateful,
        ingress_from={**({namespaces.KEDA: [metrics.PROMETHEUS_PORT]} if cfg.serving.models else {}),
                      **({cfg.evaluation.namespace: [metrics.PUSHGATEWAY_PORT]} if cfg.evaluation.models else {})})


def model_servers(cfg: PlatformConfig) -> list[ModelServer]:
    servers = []
    for name, m in cfg.serving.models.items():
        wake = m.autoscaling.wake
        servers.append(ModelServer(
            name=name, model=m.model, served_name=m.served_name or name, image=m.image, pool=m.pool, gpus=m.gpus,
            max_model_len=m.max_model_len, gpu_memory_utilization=m.gpu_memory_utilization, dtype=m.dtype,
            quantization=m.quantization, min_replicas=m.replicas.min, max_replicas=m.replicas.max, cpu=m.cpu,
            memory=m.memory, cache_gib=m.cache_gib, extra_args=m.extra_args,
            # Its evaluation jobs call it too.
            clients=[*m.clients, *([cfg.evaluation.namespace] if name in cfg.evaluation.models else [])],
            hub_token_secret=m.hub_token_secret, api_key_secret=m.api_key_secret,
            queue_per_replica=m.autoscaling.queue_per_replica, activation_queue=m.autoscaling.activation_queue,
            cooldown_seconds=m.autoscaling.cooldown_seconds,
            wake=ServingWake(wake.start, wake.end, wake.timezone) if wake else None,
            slo_latency_seconds=m.slo.p95_latency_seconds, slo_ttft_seconds=m.slo.p95_ttft_seconds))
    return servers


def evaluated_models(cfg: PlatformConfig) -> list[EvaluatedModel]:
    found = []
    for name, e in cfg.evaluation.models.items():
        served = cfg.serving.models[name]

        def copy(secret: str | None, suffix: str, served_name: str = name) -> SyncedSecret | None:
            if not secret:
                return None
            source = cfg.secrets.external_secrets[secret]
            return SyncedSecret(f"{served_name}-{suffix}", cfg.evaluation.namespace, source.remote_key,
                                source.properties, source.refresh_interval)
        found.append(EvaluatedModel(
            name=name, model=served.model, serving_namespace=cfg.serving.namespace, tasks=e.tasks, limit=e.limit,
            few_shot=e.few_shot, schedule=e.schedule, budget_seconds=e.budget_seconds,
            interval_seconds=e.interval_seconds, floors=e.floors,
            may_be_at_zero=served.replicas.min == 0, api_key=copy(served.api_key_secret, "api-key"),
            hub_token=copy(served.hub_token_secret, "hub-token")))
    return found
