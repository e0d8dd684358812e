"""Stack config: good files parse; every kind of mistake is one clear line naming file and key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from infra.config import ConfigError, PlatformConfig, parse
from infra.config.stack_file import read_stack_config

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """Set `ml-platform:section.a.b` (or a top-level key) to value."""

    def mutate(cfg: dict[str, Any]) -> None:
        key, *rest = path.split(".")
        target = cfg
        for part in [key, *rest][:-1]:
            target = target[part]
        target[[key, *rest][-1]] = value

    return mutate


def _rename(path: str, new_key: str) -> Mutation:
    def mutate(cfg: dict[str, Any]) -> None:
        key, *rest = path.split(".")
        target = cfg
        for part in [key, *rest][:-1]:
            target = target[part]
        target[new_key] = target.pop([key, *rest][-1])

    return mutate


def _drop(path: str) -> Mutation:
    def mutate(cfg: dict[str, Any]) -> None:
        key, *rest = path.split(".")
        target = cfg
        for part in [key, *rest][:-1]:
            target = target[part]
        del target[[key, *rest][-1]]

    return mutate


def _both(*mutations: Mutation) -> Mutation:
    def mutate(cfg: dict[str, Any]) -> None:
        for m in mutations:
            m(cfg)

    return mutate


BAD = {
    "typo in a key": (
        _rename("ml-platform:network.natGateways", "natGateway"),
        "ml-platform:network.natGateway: unknown key; did you mean 'natGateways'?"),
    "typo in a section name": (
        _rename("ml-platform:nodePools", "ml-platform:nodepools"),
        "ml-platform:nodepools: unknown key; did you mean 'nodePools'?"),
    "wrong type": (
        _set("ml-platform:nodePools.cpu.minSize", "two"),
        "ml-platform:nodePools.cpu.minSize: Input should be a valid integer"),
    "min above max": (
        _both(_set("ml-platform:nodePools.system.minSize", 5), _set("ml-platform:nodePools.system.maxSize", 3)),
        "ml-platform:nodePools.system: maxSize must be >= minSize (got 3 < 5)"),
    "desired outside min..max": (
        _set("ml-platform:nodePools.system.desiredSize", 9),
        "ml-platform:nodePools.system: desiredSize must be between minSize and maxSize (got 9, not in 2..3)"),
    "impossible size": (
        _set("ml-platform:nodePools.cpu.maxSize", 1000),
        "ml-platform:nodePools.cpu.maxSize: Input should be less than or equal to 450 (got 1000)"),
    "service CIDR overlaps the VPC": (
        _set("ml-platform:cluster.serviceCidr", "10.20.128.0/20"),
        "cluster.serviceCidr 10.20.128.0/20 overlaps network.cidr 10.20.0.0/16"),
    "unknown instance type": (
        _set("ml-platform:nodePools.cpu.instanceTypes", ["c6i.xlarge", "c9z.mega"]),
        "ml-platform:nodePools.cpu.instanceTypes: unknown instance type c9z.mega; allowed (catalog/instances.py): "),
    "instance type of the wrong GPU for the role": (
        _set("ml-platform:nodePools.inference.instanceTypes", ["p4d.24xlarge"]),
        "ml-platform:nodePools.inference: role inference runs A10G, L4; p4d.24xlarge does not fit"),
    "GPU instance in the cpu pool": (
        _set("ml-platform:nodePools.cpu.instanceFamilies", ["c6i", "g5"]),
        "ml-platform:nodePools.cpu: role cpu runs no GPU; g5.xlarge, g5.2xlarge, g5.4xlarge"),
    "empty AZ list": (
        _set("ml-platform:network.availabilityZones", []),
        "ml-platform:network.availabilityZones: List should have at least 2 items after validation, not 0 (got [])"),
    "too many AZs": (
        _set("ml-platform:network.availabilityZones", [f"us-east-1{c}" for c in "abcdefg"]),
        "ml-platform:network.availabilityZones: List should have at most 6 items"),
    "repeated AZ": (
        _set("ml-platform:network.availabilityZones", ["us-east-1a", "us-east-1a"]),
        "ml-platform:network.availabilityZones: availability zones must be unique, us-east-1a repeated"),
    "AZ outside the region": (
        _set("ml-platform:network.availabilityZones", ["us-east-1a", "eu-west-1b"]),
        "network.availabilityZones: 'eu-west-1b' is not an AZ of region us-east-1"),
    "bad pool name": (
        _rename("ml-platform:nodePools.cpu", "CPU_pool"),
        "ml-platform:nodePools: pool name 'CPU_pool' must be 1-20 lowercase letters, digits or '-'"),
    "invalid CIDR": (
        _set("ml-platform:network.cidr", "10.20.0.0/33"),
        "ml-platform:network.cidr: Input is not a valid IPv4 network (got '10.20.0.0/33')"),
    "public VPC range": (
        _set("ml-platform:network.cidr", "8.8.0.0/16"),
        "ml-platform:network.cidr: must be a private (RFC 1918) range, got 8.8.0.0/16"),
    "VPC too small for its subnets": (
        _both(_set("ml-platform:network.cidr", "10.20.0.0/26"), _set("ml-platform:cluster.serviceCidr", "172.20.0.0/16")),
        "ml-platform:network: 10.20.0.0/26 is too small for 2 AZs: public subnets would be /31"),
    "API open to the internet": (
        _set("ml-platform:cluster.publicAccessCidrs", ["0.0.0.0/0"]),
        "ml-platform:cluster.publicAccessCidrs: 0.0.0.0/0 opens the API to the internet"),
    "EKS version without pinned addons": (
        _set("ml-platform:cluster.version", "1.29"),
        "ml-platform:cluster.version: EKS version '1.29' is not pinned here; allowed: 1.34, 1.35, 1.36"),
    "misspelt enum value": (
        _set("ml-platform:network.natGateways", "perAZ"),
        "ml-platform:network.natGateways: Input should be 'single' or 'perAz' (got 'perAZ')"),
    "no system pool": (
        _drop("ml-platform:nodePools.system"),
        "ml-platform:nodePools: exactly one pool must have role system (got 0: [])"),
    "spot system pool": (
        _set("ml-platform:nodePools.system.capacityTypes", ["spot"]),
        "the system pool 'system' runs the controllers: it needs minSize >= 1 and ON_DEMAND capacity"),
    "CloudWatch retention that does not exist": (
        _set("ml-platform:network.flowLogs.retentionDays", 10),
        "ml-platform:network.flowLogs: retentionDays 10 is not a CloudWatch retention period; allowed: 1, 3, 5"),
    "admin principal that is not an ARN": (
        _set("ml-platform:cluster.adminPrincipals", ["platform-admin"]),
        "ml-platform:cluster.adminPrincipals: 'platform-admin' is not an IAM role or user ARN"),
    "no admin principal": (
        _set("ml-platform:cluster.adminPrincipals", []),
        "ml-platform:cluster.adminPrincipals: List should have at least 1 item"),
    "missing required key": (
        _drop("ml-platform:tags.owner"),
        "ml-platform:tags.owner: missing; this key is required"),
    "missing region": (
        _drop("aws:region"),
        "aws:region: missing; set the AWS region, e.g. us-east-1"),
    "unknown instance family": (
        _set("ml-platform:nodePools.cpu.instanceFamilies", ["c6i", "z9x"]),
        "ml-platform:nodePools.cpu.instanceFamilies: unknown instance family z9x; allowed: c6i, c7i, g5, g6, m6i, "),
    "GPU limit below one node's GPUs": (
        _set("ml-platform:nodePools.training.limits", {"cpu": 1000, "memoryGiB": 10000, "gpus": 4}),
        "ml-platform:nodePools.training: limits (cpu 1000, memoryGiB 10000, gpus 4) are below one p4d.24xlarge "
        "(96 vCPU, 1152 GiB, 8 GPUs): Karpenter could never launch a node"),
    "p5 where not allowed": (
        _set("ml-platform:nodePools.training.instanceTypes", ["p4d.24xlarge", "p5.48xlarge"]),
        "ml-platform:nodePools.training: role training runs A100; p5.48xlarge does not fit "
        "(H100 needs allowH100: true)"),
    "managed pool at zero with no autoscaler": (
        _both(_set("ml-platform:nodePools.cpu.provisioner", "managed"),
              _set("ml-platform:nodePools.cpu.capacityTypes", ["spot"])),
        "ml-platform:nodePools.cpu: a managed pool at minSize 0 never scales up (no autoscaler runs for managed "
        "node groups); use provisioner: karpenter to scale from zero, or minSize >= 1"),
    "managed pool with two capacity types": (
        _both(_set("ml-platform:nodePools.cpu.provisioner", "managed"), _set("ml-platform:nodePools.cpu.minSize", 1)),
        "ml-platform:nodePools.cpu: a managed node group has one capacity type, got ['spot', 'on-demand']"),
    "Karpenter pool with a floor": (
        _set("ml-platform:nodePools.inference.minSize", 2),
        "ml-platform:nodePools.inference: Karpenter pools scale from zero on demand: drop minSize and desiredSize"),
    "system pool on Karpenter": (
        _set("ml-platform:nodePools.system.provisioner", "karpenter"),
        "ml-platform:nodePools.system: the system pool runs Karpenter itself, so it must be provisioner: managed"),
    "unpinned AMI alias": (
        _set("ml-platform:karpenter.amiAlias", "al2023@latest"),
        "ml-platform:karpenter.amiAlias: 'al2023@latest' is not a pinned AL2023 alias like al2023@v20260903"),
    "Karpenter pools without the controller": (
        _drop("ml-platform:karpenter"),
        "ml-platform: nodePools cpu, training, inference use provisioner karpenter: add an ml-platform:karpenter"),
    "EFA on the inference pool": (
        _set("ml-platform:nodePools.inference.efa", True),
        "ml-platform:nodePools.inference: efa is only for Karpenter training pools"),
    "time-slicing on the training pool": (
        _set("ml-platform:nodePools.training.timeSlicingReplicas", 4),
        "ml-platform:nodePools.training: timeSlicingReplicas is only for inference pools"),
    "malformed Karpenter duration": (
        _set("ml-platform:nodePools.cpu.disruption", {"consolidateAfter": "5 minutes"}),
        "ml-platform:nodePools.cpu.disruption.consolidateAfter: '5 minutes' is not a Karpenter duration"),
    "unknown consolidation policy": (
        _set("ml-platform:nodePools.cpu.disruption", {"consolidationPolicy": "Aggressive"}),
        "ml-platform:nodePools.cpu.disruption.consolidationPolicy: Input should be 'WhenEmpty', "
        "'WhenEmptyOrUnderutilized' or 'Balanced' (got 'Aggressive')"),
    "unknown pool role (whose defaults cannot apply)": (
        _set("ml-platform:nodePools.l4", {"role": "gpu", "provisioner": "karpenter", "instanceTypes": ["g6.xlarge"],
                                          "maxSize": 2}),
        "ml-platform:nodePools.l4.role: Input should be 'system', 'cpu', 'training' or 'inference' (got 'gpu')"),
    "repeated endpoint": (
        _set("ml-platform:network.endpoints", ["s3", "s3"]),
        "ml-platform:network.endpoints: endpoints must be unique, s3 repeated"),
    "repeated instance type": (
        _set("ml-platform:nodePools.inference.instanceTypes", ["g5.xlarge", "g5.xlarge"]),
        "ml-platform:nodePools.inference.instanceTypes: instance types must be unique, g5.xlarge repeated"),
    "repeated admin principal name": (
        _set("ml-platform:cluster.adminPrincipals", ["arn:aws:iam::111122223333:role/admin",
                                                    "arn:aws:iam::444455556666:role/admin"]),
        "ml-platform:cluster.adminPrincipals: admin principal names must be unique, admin repeated"),
    "private endpoint with no deployer network": (
        _both(_set("ml-platform:cluster.publicAccessCidrs", [])),
        "ml-platform:cluster: deployer: missing; with no publicAccessCidrs the API endpoint is private, and "
        "without a deployer network nothing could ever reach it to create the Kubernetes objects"),
    "peering deployer without its VPC": (
        _set("ml-platform:cluster.deployer", {"connection": "peering", "cidrs": ["10.100.0.0/24"]}),
        "ml-platform:cluster.deployer: peering needs vpcId, the deployer VPC id like vpc-0123456789abcdef0"),
    "inVpc deployer outside the VPC": (
        _set("ml-platform:cluster.deployer", {"connection": "inVpc", "cidrs": ["10.100.0.0/24"]}),
        "cluster.deployer.cidrs: 10.100.0.0/24 is not inside network.cidr 10.20.0.0/16"),
    "peered deployer inside the VPC": (
        _set("ml-platform:cluster.deployer", {"connection": "transitGateway", "transitGatewayId": "tgw-0123456789abcdef0",
                                              "cidrs": ["10.20.255.0/24"]}),
        "cluster.deployer.cidrs: 10.20.255.0/24 overlaps network.cidr 10.20.0.0/16; a transitGateway route cannot"),
    "drain that may never end": (
        _set("ml-platform:nodePools.training.terminationGracePeriod", "Never"),
        "ml-platform:nodePools.training.terminationGracePeriod: 'Never' is not a Karpenter duration like 15m"),
    "EFA pool without its zone": (
        _both(_set("ml-platform:nodePools.training.efa", True),
              _set("ml-platform:nodePools.training.instanceTypes", ["p4d.24xlarge"])),
        "ml-platform:nodePools.training: efa needs efaZoneId: EFA nodes share one zone, named by its zone ID"),
    "EFA zone by name": (
        _both(_set("ml-platform:nodePools.training.efa", True), _set("ml-platform:nodePools.training.efaZoneId",
                                                                     "us-east-1a")),
        "nodePools.training.efaZoneId: 'us-east-1a' is not a zone ID like use1-az4"),
    "EFA zone of another region": (
        _both(_set("ml-platform:nodePools.training.efa", True), _set("ml-platform:nodePools.training.efaZoneId",
                                                                     "usw2-az1")),
        "nodePools.training.efaZoneId: 'usw2-az1' is not a zone of us-east-1 (its zone IDs start with use1-az)"),
    "team namespace nobody creates": (
        _set("ml-platform:tenancy.teams.research.namespaces", {"ml-research": "engineer"}),
        "tenancy.teams.research.namespaces.ml-research: no such team namespace; the stack creates ml-training, "
        "ml-inference, ml-jobs"),
    "GPU quota above the pools' capacity": (
        _set("ml-platform:tenancy.namespaces", {"ml-inference": {"purpose": "serving", "poolRoles": ["inference"],
                                                                 "quota": {"gpus": 40}}}),
        "tenancy.namespaces.ml-inference.quota.gpus: 40 exceeds the GPU capacity of its pools, 16 (inference: 16; "
        "nodes x GPUs x slices)"),
    "unknown access role": (
        _set("ml-platform:tenancy.teams.research.namespaces", {"ml-training": "owner"}),
        "ml-platform:tenancy.teams.research.namespaces.ml-training: Input should be 'read-only', 'engineer' or "
        "'admin' (got 'owner')"),
    "Pod Security level typo": (
        _set("ml-platform:tenancy.namespaces", {"ml-training": {"purpose": "t", "poolRoles": ["training"],
                                                                "podSecurity": "restriced"}}),
        "ml-platform:tenancy.namespaces.ml-training.podSecurity: Input should be 'restricted', 'baseline' or "
        "'privileged' (got 'restriced')"),
    "team namespace with a reserved name": (
        _set("ml-platform:tenancy.namespaces", {"monitoring": {"purpose": "t", "poolRoles": ["cpu"]}}),
        "ml-platform:tenancy.namespaces: namespace 'monitoring' is reserved for Kubernetes or a platform component"),
    "team principal who is a cluster admin": (
        _set("ml-platform:tenancy.teams.research.principals", ["arn:aws:iam::111122223333:role/platform-admin"]),
        "tenancy.teams.research.principals: arn:aws:iam::111122223333:role/platform-admin is a cluster admin "
        "already (cluster.adminPrincipals): one access entry per principal"),
    "ExternalSecret into a namespace nobody creates": (
        _set("ml-platform:secrets.externalSecrets.hub-token.namespace", "serving"),
        "secrets.externalSecrets.hub-token.namespace: 'serving' is no namespace the stack creates (ml-training, "
        "ml-inference, ml-jobs, external-secrets, velero, monitoring, gpu, keda)"),
    "secret key outside the stack's prefix": (
        _set("ml-platform:secrets.externalSecrets.hub-token.remoteKey", "../prod/hub-token"),
        "ml-platform:secrets.externalSecrets.hub-token.remoteKey: '../prod/hub-token' must be a relative key like "
        "hub-token"),
    "DR region equal to the stack's": (
        _set("ml-platform:drRegion", "us-east-1"),
        "ml-platform: drRegion: 'us-east-1' must be another AWS region than us-east-1"),
    "backup schedule that is not cron": (
        _set("ml-platform:backup", {"schedules": {"teams": {"schedule": "every 6 hours"}}}),
        "ml-platform:backup.schedules.teams.schedule: 'every 6 hours' is not a cron schedule: five fields"),
    "backup of a namespace nobody creates": (
        _set("ml-platform:backup", {"schedules": {"teams": {"namespaces": ["ml-training", "research"]}}}),
        "backup.schedules.teams.namespaces: 'research' is no team namespace the stack creates (ml-training, "
        "ml-inference, ml-jobs)"),
    "cluster-scoped backup that names namespaces": (
        _set("ml-platform:backup", {"schedules": {"cluster": {"clusterResources": True,
                                                              "namespaces": ["ml-jobs"]}}}),
        "ml-platform:backup.schedules.cluster: a clusterResources schedule backs up cluster-scoped"),
    "DR region without volume data in the backups": (
        _set("ml-platform:drRegion", "us-west-2"),
        "backup.moveVolumeData must be true with drRegion us-west-2: EBS snapshots stay in us-east-1"),
    "system pool too small for what runs on it": (
        _set("ml-platform:nodePools.system.minSize", 1),
        "nodePools.system: 1 x m6i.large give pods 1930m CPU / 7518Mi / 29 pods, and the stack places "),
    "Prometheus retention in the wrong unit": (
        _set("ml-platform:observability.prometheus.retention", "15days"),
        "ml-platform:observability.prometheus.retention: '15days' is not a Prometheus duration like 15d, 4w or "
        "720h (units ms s m h d w y)"),
    "Prometheus retention size in Kubernetes units": (
        _set("ml-platform:observability.prometheus.retentionSize", "20Gi"),
        "ml-platform:observability.prometheus.retentionSize: '20Gi' is not a Prometheus size like 40GB"),
    "retention size larger than the volume": (
        _set("ml-platform:observability.prometheus.retentionSize", "60GB"),
        "ml-platform:observability.prometheus: retentionSize 60GB leaves no room on a 30 GiB volume"),
    "receiver with no secret": (
        _set("ml-platform:observability.receivers.chat.secret", "slack"),
        "observability.receivers.chat.secret: 'slack' is no ExternalSecret in namespace monitoring "
        "(secrets.externalSecrets); its URL or key lives in Secrets Manager, never in config"),
    "receiver key its secret does not have": (
        _set("ml-platform:observability.receivers.chat.key", "webhook"),
        "observability.receivers.chat.key: 'webhook' is not a key of ExternalSecret alertmanager-receivers "
        "(it has slack-webhook-url)"),
    "alert threshold out of range": (
        _set("ml-platform:observability.thresholds", {"gpuIdlePercent": 150}),
        "ml-platform:observability.thresholds.gpuIdlePercent: Input should be less than or equal to 100"),
    "runbook URL that is not a URL": (
        _set("ml-platform:observability.runbooksUrl", "docs/runbooks"),
        "ml-platform:observability.runbooksUrl: 'docs/runbooks' is not an https URL"),
    "recovery window Secrets Manager does not have": (
        _set("ml-platform:secrets.recoveryWindowDays", 3),
        "ml-platform:secrets.recoveryWindowDays: Secrets Manager keeps deleted secrets 7 to 30 days, or 0"),
    "unknown endpoint": (
        _set("ml-platform:network.endpoints", ["s3", "dynamodb"]),
        "ml-platform:network.endpoints.1: Input should be 's3', 'ecr' or 'sts' (got 'dynamodb')"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_config_is_one_clear_line(case, raw_config):
    mutate, expected = BAD[case]
    cfg = raw_config("dev")
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        parse(cfg, stack="dev")
    message = str(err.value)
    assert "\n" not in message, f"expected one line, got:\n{message}"
    assert message.startswith("Pulumi.dev.yaml: "), message
    assert expected in message, message
    assert "Traceback" not in message


def test_every_problem_is_reported_at_once(raw_config):
    cfg = raw_config("prod")
    cfg["ml-platform:network"]["natGateways"] = "many"
    cfg["ml-platform:nodePools"]["system"]["maxSize"] = 0
    with pytest.raises(ConfigError) as err:
        parse(cfg, stack="prod")
    lines = str(err.value).splitlines()
    assert len(lines) == 2, lines
    assert all(line.startswith("Pulumi.prod.yaml: ") for line in lines)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shipped_stack_files_parse(stack, raw_config):
    cfg = parse(raw_config(stack), stack=stack)
    assert cfg.cluster_name == f"ml-platform-{stack}"
    assert cfg.default_tags["environment"] == stack


def test_dev_and_prod_differ_as_data(raw_config):
    dev, prod = parse(raw_config("dev"), stack="dev"), parse(raw_config("prod"), stack="prod")
    assert (dev.network.nat_gateways, prod.network.nat_gateways) == ("single", "perAz")
    assert dev.cluster.public_access_cidrs and not prod.cluster.public_access_cidrs
    assert all(p.provisioner == "karpenter" and p.capacity_types == ["spot"]
               for p in dev.workload_pools.values() if p.gpu)
    assert all(p.capacity_types == ["on-demand"] for p in prod.workload_pools.values() if p.gpu)
    assert (dev.node_pools["training"].efa, prod.node_pools["training"].efa) == (False, True)
    assert (dev.karpenter.replicas, prod.karpenter.replicas) == (1, 2)
    assert (dev.protect_stateful, prod.protect_stateful) == (False, True)


def test_a_new_pool_needs_only_role_provisioner_types_and_max_size(raw_config):
    cfg = raw_config("dev")
    cfg["ml-platform:nodePools"]["l4"] = {"role": "inference", "provisioner": "karpenter",
                                          "instanceTypes": ["g6.xlarge"], "maxSize": 2}
    pools = parse(cfg, stack="dev").node_pools
    assert pools["l4"].disk_size_gib == 200, "inference nodes get room for cached model weights"
    assert "disk_size_gib" not in pools["l4"].model_fields_set, "a role default is not a value the user set"
    assert pools["inference"].disk_size_gib == 200 and "disk_size_gib" in pools["inference"].model_fields_set


def test_duplicate_yaml_key_is_rejected(tmp_path):
    (tmp_path / "Pulumi.dup.yaml").write_text(
        "config:\n  ml-platform:network:\n    cidr: 10.0.0.0/16\n  ml-platform:network:\n    cidr: 10.1.0.0/16\n")
    with pytest.raises(ConfigError, match=r"^Pulumi.dup.yaml: line 4: key 'ml-platform:network' is defined twice$"):
        read_stack_config("dup", tmp_path)


def test_missing_stack_file_names_the_stacks_that_exist(tmp_path):
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    with pytest.raises(ConfigError, match=r"^Pulumi.qa.yaml: no such stack file; stacks here: dev$"):
        read_stack_config("qa", tmp_path)


def test_broken_yaml_names_the_line(tmp_path):
    (tmp_path / "Pulumi.bad.yaml").write_text("config:\n  aws:region: [us-east-1\n")
    with pytest.raises(ConfigError, match=r"^Pulumi.bad.yaml: line \d+: not valid YAML"):
        read_stack_config("bad", tmp_path)


def _models(model, seen=None):
    seen = seen if seen is not None else set()
    if model in seen:
        return seen
    seen.add(model)
    for field in model.model_fields.values():
        for candidate in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                _models(candidate, seen)
    return seen


def test_every_config_key_is_documented():
    for model in _models(PlatformConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
