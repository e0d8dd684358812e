"""The whole platform config: one `PlatformConfig` per stack, and its cross-section checks."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from catalog import footprints, namespaces
from catalog.fit import pool_fit_problem
from catalog.model import Model
from catalog.pools import NodePool
from catalog.zones import zone_id_problem
from infra.config.backup import Backup
from infra.config.base import PROJECT
from infra.config.cluster import Cluster
from infra.config.evaluation import Evaluation
from infra.config.network import Network, Tags
from infra.config.observability import Observability
from infra.config.secrets import Secrets
from infra.config.serving import Serving
from infra.config.serving_fit import serving_problem
from infra.config.tenancy import Tenancy

POOL_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,18}[a-z0-9])?$")
# A dated AL2023 release (awslabs/amazon-eks-ami): `@latest` would roll every node,
# GPU nodes and their NVIDIA driver included, whenever AWS ships an AMI.
AMI_ALIAS = re.compile(r"^al2023@v\d{8}$")


class Karpenter(Model):
    """The Karpenter controller (`ml-platform:karpenter`)."""

    replicas: int = Field(2, ge=1, le=3, description="Controller replicas; 2 for HA (one per system node).")
    ami_alias: str = Field(description="Pinned AL2023 alias for every Karpenter node, e.g. al2023@v20260903.")

    @field_validator("ami_alias")
    @classmethod
    def _pinned(cls, alias: str) -> str:
        if not AMI_ALIAS.match(alias):
            raise ValueError(f"{alias!r} is not a pinned AL2023 alias like al2023@v20260903 (@latest is not allowed)")
        return alias


class Gpu(Model):
    """GPU enablement (`ml-platform:gpu`)."""

    dcgm_exporter: bool = Field(True, description="Run the DCGM exporter on GPU nodes for GPU metrics.")


class PlatformConfig(Model):
    """The whole stack, parsed from the `ml-platform:*` keys of `Pulumi.<stack>.yaml`."""

    stack: str = Field(description="Pulumi stack name; the `environment` tag.")
    region: str = Field(description="AWS region, from `aws:region`.")
    tags: Tags = Field(description="Cost-allocation tags (owner, costCenter, extra).")
    network: Network = Field(description="VPC, subnets, NAT, flow logs, endpoints.")
    cluster: Cluster = Field(description="EKS version, API endpoint access, admins, logs.")
    node_pools: dict[str, NodePool] = Field(description="Node pools keyed by DNS-safe name.")
    karpenter: Karpenter | None = Field(None, description="Karpenter controller; required by karpenter pools.")
    gpu: Gpu = Field(default_factory=Gpu, description="NVIDIA device plugin and DCGM exporter.")
    tenancy: Tenancy = Field(default_factory=Tenancy, description="Team namespaces, quotas and team access.")
    secrets: Secrets = Field(default_factory=Secrets, description="External Secrets Operator and what it syncs.")
    backup: Backup = Field(default_factory=Backup, description="Velero schedules, volume data and its bucket.")
    observability: Observability = Field(description="Prometheus, alerts and their receivers, container logs.")
    serving: Serving = Field(default_factory=Serving, description="vLLM model servers on the inference pools.")
    evaluation: Evaluation = Field(default_factory=Evaluation, description="Scheduled evaluations of served models.")
    budget_emails: list[str] = Field(
        min_length=1, description="Who AWS Budgets tells at 80 % of the forecast and 100 % of the actual spend.")
    dr_region: str | None = Field(
        None, description="Disaster-recovery region (prod): secrets and backups are replicated there, each with "
                          "their own key.")
    protect_stateful: bool = Field(
        description="Protect stateful resources (KMS keys, log buckets) from `pulumi destroy`."
    )

    @field_validator("budget_emails")
    @classmethod
    def _emails(cls, emails: list[str]) -> list[str]:
        for email in emails:
            if not re.match(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", email):
                raise ValueError(f"{email!r} is not an email address")
        return emails

    @field_validator("node_pools")
    @classmethod
    def _pool_names(cls, pools: dict[str, NodePool]) -> dict[str, NodePool]:
        for name in pools:
            if not POOL_NAME.match(name):
                raise ValueError(
                    f"pool name {name!r} must be 1-20 lowercase letters, digits or '-', starting with a letter"
                )
        systems = [n for n, p in pools.items() if p.role == "system"]
        if len(systems) != 1:
            raise ValueError(f"exactly one pool must have role system (got {len(systems)}: {systems})")
        system = pools[systems[0]]
        if system.min_size < 1 or system.capacity_types != ["on-demand"]:
            raise ValueError(
                f"the system pool {systems[0]!r} runs the controllers: it needs minSize >= 1 and ON_DEMAND capacity"
            )
        return pools

    @model_validator(mode="after")
    def _cross_checks(self) -> PlatformConfig:
        karpenter_pools = [n for n, p in self.node_pools.items() if p.provisioner == "karpenter"]
        if karpenter_pools and self.karpenter is None:
            raise ValueError(f"nodePools {', '.join(karpenter_pools)} use provisioner karpenter: "
                             f"add an ml-platform:karpenter section (replicas, amiAlias)")
        for az in self.network.availability_zones:
            if not az.startswith(self.region) or not az[len(self.region):].isalpha():
                raise ValueError(f"network.availabilityZones: {az!r} is not an AZ of region {self.region}")
        for name, pool in self.node_pools.items():
            problem = pool.efa_zone_id and zone_id_problem(pool.efa_zone_id, self.region)
            if problem:
                raise ValueError(f"nodePools.{name}.efaZoneId: {problem}")
        self._check_tenancy()
        self._check_secrets()
        self._check_backup()
        self._check_receivers()
        problem = serving_problem(self.serving, self.workload_pools, list(self.tenancy.namespaces),
                                  self.secrets.external_secrets, self.backup.move_volume_data)
        if problem:
            raise ValueError(problem)
        self._check_evaluation()
        self._check_system_pool()
        deployer = self.cluster.deployer
        if deployer is not None:
            for cidr in deployer.cidrs:
                inside = cidr.subnet_of(self.network.cidr)
                if deployer.connection == "inVpc" and not inside:
                    raise ValueError(f"cluster.deployer.cidrs: {cidr} is not inside network.cidr {self.network.cidr}; "
                                     f"an inVpc deployer runs in this stack's VPC")
                if deployer.connection != "inVpc" and cidr.overlaps(self.network.cidr):
                    raise ValueError(f"cluster.deployer.cidrs: {cidr} overlaps network.cidr {self.network.cidr}; "
                                     f"a {deployer.connection} route cannot reach an address inside this VPC")
        if self.cluster.service_cidr.overlaps(self.network.cidr):
            raise ValueError(
                f"cluster.serviceCidr {self.cluster.service_cidr} overlaps network.cidr {self.network.cidr}"
            )
        return self

    def _check_tenancy(self) -> None:
        for name, namespace in self.tenancy.namespaces.items():
            pools = self.pools_of(namespace.pool_roles)
            if not pools:
                raise ValueError(f"tenancy.namespaces.{name}.poolRoles: no pool of role "
                                 f"{' or '.join(namespace.pool_roles)} in nodePools")
            gpus = self.capacity(namespace.pool_roles)[2]
            if namespace.quota.gpus is not None and namespace.quota.gpus > gpus:
                detail = ", ".join(f"{n}: {p.effective_limits.gpus}" for n, p in pools.items())
                raise ValueError(f"tenancy.namespaces.{name}.quota.gpus: {namespace.quota.gpus} exceeds the GPU "
                                 f"capacity of its pools, {gpus} ({detail}; nodes x GPUs x slices)")
        admins = set(self.cluster.admin_principals)
        owner: dict[str, str] = {}
        for team_name, team in self.tenancy.teams.items():
            for namespace in team.namespaces:
                if namespace not in self.tenancy.namespaces:
                    raise ValueError(f"tenancy.teams.{team_name}.namespaces.{namespace}: no such team namespace; the "
                                     f"stack creates {', '.join(self.tenancy.namespaces)}")
            for arn in team.principals:
                if arn in admins:
                    raise ValueError(f"tenancy.teams.{team_name}.principals: {arn} is a cluster admin already "
                                     f"(cluster.adminPrincipals): one access entry per principal")
                if arn in owner:
                    raise ValueError(f"tenancy.teams.{team_name}.principals: {arn} is in team {owner[arn]} too")
                owner[arn] = team_name

    def _check_secrets(self) -> None:
        created = self.namespaces
        for name, secret in self.secrets.external_secrets.items():
            if secret.namespace not in created:
                raise ValueError(f"secrets.externalSecrets.{name}.namespace: {secret.namespace!r} is no namespace the "
                                 f"stack creates ({', '.join(created)})")
        dr = self.dr_region
        if dr is not None and (dr == self.region or not re.match(r"^[a-z]{2}(-[a-z]+)+-[0-9]$", dr)):
            raise ValueError(f"drRegion: {dr!r} must be another AWS region than {self.region}: replicas in "
                             f"the same region do not survive its loss")

    def _check_backup(self) -> None:
        teams = list(self.tenancy.namespaces)
        for name, schedule in self.backup.schedules.items():
            for namespace in schedule.namespaces or ():
                if namespace not in teams:
                    raise ValueError(f"backup.schedules.{name}.namespaces: {namespace!r} is no team namespace the "
                                     f"stack creates ({', '.join(teams)})")
        if self.dr_region and not self.backup.move_volume_data:
            raise ValueError(f"backup.moveVolumeData must be true with drRegion {self.dr_region}: EBS snapshots stay "
                             f"in {self.region}, so without it the DR copies hold no volume data")

    def _check_evaluation(self) -> None:
        evaluation = self.evaluation
        if evaluation.models and evaluation.namespace not in self.tenancy.namespaces:
            raise ValueError(f"evaluation.namespace: {evaluation.namespace!r} is no team namespace "
                             f"({', '.join(self.tenancy.namespaces)})")
        for name in evaluation.models:
            if name not in self.serving.models:
                raise ValueError(f"evaluation.models.{name}: no served model of that name (serving.models: "
                                 f"{', '.join(self.serving.models) or 'none'})")
        if evaluation.models and not self.pools_of(["cpu"]):
            raise ValueError("evaluation.models: the jobs run on a cpu pool, and nodePools has none")

    def _check_receivers(self) -> None:
        for kind, receiver in self.observability.receivers:
            if receiver is None:
                continue
            where = f"observability.receivers.{kind}"
            secret = self.secrets.external_secrets.get(receiver.secret)
            if secret is None or secret.namespace != namespaces.MONITORING:
                raise ValueError(f"{where}.secret: {receiver.secret!r} is no ExternalSecret in namespace "
                                 f"{namespaces.MONITORING} (secrets.externalSecrets); its URL or key lives in "
                                 f"Secrets Manager, never in config")
            if receiver.key not in secret.properties:
                raise ValueError(f"{where}.key: {receiver.key!r} is not a key of ExternalSecret {receiver.secret} "
                                 f"(it has {', '.join(secret.properties)})")
            if receiver.type == "slack" and not receiver.channel:
                raise ValueError(f"{where}.channel: a slack receiver needs its channel, e.g. #ml-platform-alerts")

    def _check_system_pool(self) -> None:
        name, pool = self.system_pool
        problem = pool_fit_problem(pool.types, pool.min_size, self.system_pool_pods)
        if problem:
            raise ValueError(f"nodePools.{name}: {problem}; raise minSize or use a larger instance type")

    @property
    def system_pool_pods(self) -> list[footprints.Placed]:
        """Every pod the stack places on the system pool, DaemonSets included (their requests in catalog)."""
        f = footprints
        placed = [*f.every_node(self.backup.move_volume_data), f.COREDNS, f.EBS_CSI_CONTROLLER, f.SNAPSHOT_CONTROLLER,
                  f.Placed("external-secrets", f.ESO_CONTROLLER, self.secrets.replicas),
                  f.Placed("external-secrets-webhook", f.ESO_WEBHOOK, 1),
                  f.Placed("external-secrets-cert-controller", f.ESO_CERT_CONTROLLER, 1),
                  f.Placed("velero", f.VELERO_SERVER, 1)]
        observability = self.observability
        placed += [f.Placed("prometheus", f.together(f.PROMETHEUS, f.CONFIG_RELOADER), observability.prometheus.replicas),
                   f.Placed("alertmanager", f.together(f.ALERTMANAGER, f.CONFIG_RELOADER),
                            observability.alertmanager_replicas),
                   f.Placed("prometheus-operator", f.PROMETHEUS_OPERATOR, 1),
                   f.Placed("grafana", f.together(f.GRAFANA, f.GRAFANA_SIDECAR), 1),
                   f.Placed("kube-state-metrics", f.KUBE_STATE_METRICS, 1)]
        if self.karpenter is not None:
            placed.append(f.Placed("karpenter", f.KARPENTER_CONTROLLER, self.karpenter.replicas))
        if self.evaluation.models:
            placed.append(f.Placed("prometheus-pushgateway", f.PUSHGATEWAY, 1))
        if self.serving.models:
            placed += [f.Placed("keda-operator", f.KEDA_OPERATOR, 1),
                       f.Placed("keda-metrics-apiserver", f.KEDA_METRICS_SERVER, 1),
                       f.Placed("keda-admission-webhooks", f.KEDA_WEBHOOKS, 1)]
        return placed

    @property
    def namespaces(self) -> list[str]:
        """Every namespace the stack creates: the team namespaces and the platform components' own."""
        gpu = [namespaces.GPU] if any(p.gpu for p in self.workload_pools.values()) else []
        keda = [namespaces.KEDA] if self.serving.models else []
        system = [namespaces.EXTERNAL_SECRETS, namespaces.VELERO, namespaces.MONITORING, *gpu, *keda]
        return [*self.tenancy.namespaces, *system]

    def pools_of(self, roles: list[str]) -> dict[str, NodePool]:
        return {n: p for n, p in self.workload_pools.items() if p.role in roles}

    def capacity(self, roles: list[str]) -> tuple[int, int, int]:
        """vCPU, memory GiB and GPUs (slices counted) the pools of `roles` may hold at most."""
        limits = [p.effective_limits for p in self.pools_of(roles).values()]
        return (sum(limit.cpu for limit in limits), sum(limit.memory_gib for limit in limits),
                sum(limit.gpus for limit in limits))

    @property
    def cluster_name(self) -> str:
        return f"{PROJECT}-{self.stack}"

    @property
    def system_pool(self) -> tuple[str, NodePool]:
        return next((n, p) for n, p in self.node_pools.items() if p.role == "system")

    @property
    def workload_pools(self) -> dict[str, NodePool]:
        return {n: p for n, p in self.node_pools.items() if p.role != "system"}

    def pools_by(self, provisioner: str) -> dict[str, NodePool]:
        return {n: p for n, p in self.workload_pools.items() if p.provisioner == provisioner}

    @property
    def default_tags(self) -> dict[str, str]:
        return {
            **self.tags.extra,
            "environment": self.stack,
            "project": PROJECT,
            "owner": self.tags.owner,
            "cost-center": self.tags.cost_center,
        }
