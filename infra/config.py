"""Typed stack configuration: `Pulumi.<stack>.yaml` → one frozen `PlatformConfig`.

Every `ml-platform:*` key of the stack file is one section below. Parsing
happens once, before any resource exists, so a bad file never leaves a
partial stack. Errors are collected and reported together, one line each,
naming the file, the key path as written in YAML, what was given and what
is allowed.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pulumi
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.eks_release import RELEASES
from components.subnets import SubnetPlanError, plan_subnets
from policies.pricing import INSTANCES

PROJECT = "ml-platform"

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy API).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
                      1096, 1827, 2192, 2557, 2922, 3288, 3653)

# EKS managed node groups hold at most 450 nodes (EKS service quotas).
MAX_NODES_PER_GROUP = 450

POOL_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,18}[a-z0-9])?$")
IAM_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$")

# Which GPU models each pool role may run: the instance table decides membership.
ROLE_GPU_MODELS: dict[str, frozenset[str | None]] = {
    "system": frozenset({None}),
    "cpu": frozenset({None}),
    "training": frozenset({"A100"}),
    "inference": frozenset({"A10G"}),
}


class ConfigError(pulumi.RunError):
    """Bad stack configuration. Pulumi prints a RunError without a traceback."""


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


def _private_network(value: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    if not value.is_private:
        raise ValueError(f"must be a private (RFC 1918) range, got {value}")
    return value


Cidr = Annotated[ipaddress.IPv4Network, Field(strict=False)]


class Tags(_Model):
    """Cost-allocation tags put on every AWS resource (plus environment and project)."""

    owner: str = Field(min_length=1, description="Team that owns the stack; the `owner` tag.")
    cost_center: str = Field(min_length=1, description="Billing code; the `cost-center` tag.")
    extra: dict[str, str] = Field(default_factory=dict, description="Further tags for every resource.")


class FlowLogs(_Model):
    destination: Literal["cloudwatch", "s3"] = Field(
        "cloudwatch", description="Where VPC flow logs go: a CloudWatch log group or an S3 bucket."
    )
    retention_days: int = Field(
        description="Days flow logs are kept (CloudWatch retention or S3 expiry)."
    )

    @model_validator(mode="after")
    def _retention_allowed(self) -> FlowLogs:
        if self.destination == "cloudwatch" and self.retention_days not in LOG_RETENTION_DAYS:
            raise ValueError(
                f"retentionDays {self.retention_days} is not a CloudWatch retention period; "
                f"allowed: {', '.join(map(str, LOG_RETENTION_DAYS))}"
            )
        if self.retention_days < 1:
            raise ValueError(f"retentionDays must be >= 1 (got {self.retention_days})")
        return self


class Network(_Model):
    cidr: Cidr = Field(description="VPC IPv4 CIDR; subnets are carved from it (a /16 is advised).")
    availability_zones: list[str] = Field(
        min_length=2, max_length=6, description="AZs to spread subnets over, 2 to 6, in the stack's region."
    )
    nat_gateways: Literal["single", "perAz"] = Field(
        description="`single`: one NAT for all AZs (cheap, one AZ's outage cuts egress); `perAz`: one per AZ (HA)."
    )
    flow_logs: FlowLogs = Field(description="VPC flow log destination and retention.")
    endpoints: list[Literal["s3", "ecr", "sts"]] = Field(
        default_factory=list,
        description="VPC endpoints: s3 (gateway, free), ecr and sts (interface, billed per AZ-hour).",
    )

    _private = field_validator("cidr")(_private_network)

    @field_validator("availability_zones")
    @classmethod
    def _unique_azs(cls, azs: list[str]) -> list[str]:
        duplicates = sorted({az for az in azs if azs.count(az) > 1})
        if duplicates:
            raise ValueError(f"availability zones must be unique, {', '.join(duplicates)} repeated")
        return azs

    @field_validator("endpoints")
    @classmethod
    def _unique_endpoints(cls, endpoints: list[str]) -> list[str]:
        if len(set(endpoints)) != len(endpoints):
            raise ValueError(f"endpoints must be unique, got {endpoints}")
        return endpoints

    @model_validator(mode="after")
    def _subnets_fit(self) -> Network:
        try:
            plan_subnets(self.cidr, len(self.availability_zones))
        except SubnetPlanError as exc:
            raise ValueError(str(exc)) from None
        return self


class Cluster(_Model):
    version: str = Field(description="EKS Kubernetes version; addon versions are pinned per version.")
    public_access_cidrs: list[Cidr] = Field(
        default_factory=list,
        description="CIDRs allowed to reach the public API endpoint; empty = private endpoint only.",
    )
    admin_principals: list[str] = Field(
        min_length=1,
        description="IAM role/user ARNs granted cluster admin through EKS access entries. "
        "Include the role that runs `pulumi up`.",
    )
    service_cidr: Cidr = Field(
        ipaddress.IPv4Network("172.20.0.0/16"),
        description="Kubernetes Service IPv4 range; must not overlap the VPC.",
    )
    log_retention_days: int = Field(
        90, description="Days control-plane logs are kept in CloudWatch."
    )
    node_ssm_access: bool = Field(
        False, description="Attach AmazonSSMManagedInstanceCore to nodes (shell access without SSH)."
    )

    @field_validator("version")
    @classmethod
    def _known_version(cls, version: str) -> str:
        if version not in RELEASES:
            raise ValueError(f"EKS version {version!r} is not pinned here; allowed: {', '.join(RELEASES)}")
        return version

    @field_validator("public_access_cidrs")
    @classmethod
    def _no_open_endpoint(cls, cidrs: list[ipaddress.IPv4Network]) -> list[ipaddress.IPv4Network]:
        for cidr in cidrs:
            if cidr.prefixlen == 0:
                raise ValueError(f"{cidr} opens the API to the internet; list the CIDRs that need access")
        return cidrs

    @field_validator("admin_principals")
    @classmethod
    def _principal_arns(cls, principals: list[str]) -> list[str]:
        for arn in principals:
            if not IAM_PRINCIPAL.match(arn):
                raise ValueError(f"{arn!r} is not an IAM role or user ARN (arn:aws:iam::<account>:role/<name>)")
        names = [arn.rsplit("/", 1)[1] for arn in principals]
        if len(set(names)) != len(names):
            raise ValueError(f"admin principals must have distinct names, got {names}")
        return principals

    @field_validator("service_cidr")
    @classmethod
    def _service_range(cls, cidr: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
        _private_network(cidr)
        if not 12 <= cidr.prefixlen <= 24:
            raise ValueError(f"EKS needs a service CIDR between /12 and /24, got {cidr}")
        return cidr

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, days: int) -> int:
        if days not in LOG_RETENTION_DAYS:
            raise ValueError(f"{days} is not a CloudWatch retention period; allowed: "
                             f"{', '.join(map(str, LOG_RETENTION_DAYS))}")
        return days


class NodePool(_Model):
    role: Literal["system", "cpu", "training", "inference"] = Field(
        description="What the pool runs: system controllers, CPU jobs, A100 training or A10G inference."
    )
    provisioner: Literal["managed"] = Field(
        "managed", description="`managed`: an EKS managed node group."
    )
    instance_types: list[str] = Field(min_length=1, description="EC2 instance types, from policies/pricing.py.")
    capacity_type: Literal["ON_DEMAND", "SPOT"] = Field(
        "ON_DEMAND", description="On-demand or spot capacity."
    )
    min_size: int = Field(ge=0, description="Fewest nodes; 0 lets a GPU pool scale to zero.")
    desired_size: int | None = Field(None, ge=0, description="Nodes at creation; defaults to minSize.")
    max_size: int = Field(ge=1, le=MAX_NODES_PER_GROUP, description="Most nodes (EKS allows 450 per group).")
    disk_size_gib: int = Field(alias="diskSizeGiB", ge=20, le=16384, description="Encrypted gp3 root volume per node, GiB.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra node labels.")
    critical_addons_only: bool = Field(
        False, description="Taint the pool `CriticalAddonsOnly=true:NoSchedule` (system pool only)."
    )

    @field_validator("instance_types")
    @classmethod
    def _known_types(cls, types_: list[str]) -> list[str]:
        unknown = [t for t in types_ if t not in INSTANCES]
        if unknown:
            raise ValueError(
                f"unknown instance type {', '.join(unknown)}; allowed (policies/pricing.py): {', '.join(INSTANCES)}"
            )
        if len(set(types_)) != len(types_):
            raise ValueError(f"instance types must be unique, got {types_}")
        return types_

    @model_validator(mode="after")
    def _consistent(self) -> NodePool:
        desired = self.desired
        if self.min_size > self.max_size:
            raise ValueError(f"maxSize must be >= minSize (got {self.max_size} < {self.min_size})")
        if not self.min_size <= desired <= self.max_size:
            raise ValueError(
                f"desiredSize must be between minSize and maxSize (got {desired}, not in {self.min_size}..{self.max_size})"
            )
        allowed = ROLE_GPU_MODELS[self.role]
        wrong = [t for t in self.instance_types if INSTANCES[t].gpu_model not in allowed]
        if wrong:
            wants = ", ".join(sorted(m or "no GPU" for m in allowed))
            raise ValueError(f"role {self.role} runs {wants}; {', '.join(wrong)} does not fit")
        if self.critical_addons_only and self.role != "system":
            raise ValueError("criticalAddonsOnly is only for the system pool")
        return self

    @property
    def desired(self) -> int:
        return self.min_size if self.desired_size is None else self.desired_size

    @property
    def gpu(self) -> bool:
        return self.role in ("training", "inference")


class PlatformConfig(_Model):
    """The whole stack, parsed from the `ml-platform:*` keys of `Pulumi.<stack>.yaml`."""

    stack: str = Field(description="Pulumi stack name; the `environment` tag.")
    region: str = Field(description="AWS region, from `aws:region`.")
    tags: Tags = Field(description="Cost-allocation tags (owner, costCenter, extra).")
    network: Network = Field(description="VPC, subnets, NAT, flow logs, endpoints.")
    cluster: Cluster = Field(description="EKS version, API endpoint access, admins, logs.")
    node_pools: dict[str, NodePool] = Field(description="Node pools keyed by DNS-safe name.")
    protect_stateful: bool = Field(
        description="Protect stateful resources (KMS keys, log buckets) from `pulumi destroy`."
    )

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
        if system.min_size < 1 or system.capacity_type != "ON_DEMAND":
            raise ValueError(
                f"the system pool {systems[0]!r} runs the controllers: it needs minSize >= 1 and ON_DEMAND capacity"
            )
        return pools

    @model_validator(mode="after")
    def _cross_checks(self) -> PlatformConfig:
        for az in self.network.availability_zones:
            if not az.startswith(self.region) or not az[len(self.region):].isalpha():
                raise ValueError(f"network.availabilityZones: {az!r} is not an AZ of region {self.region}")
        if self.cluster.service_cidr.overlaps(self.network.cidr):
            raise ValueError(
                f"cluster.serviceCidr {self.cluster.service_cidr} overlaps network.cidr {self.network.cidr}"
            )
        return self

    @property
    def cluster_name(self) -> str:
        return f"{PROJECT}-{self.stack}"

    @property
    def system_pool(self) -> tuple[str, NodePool]:
        return next((n, p) for n, p in self.node_pools.items() if p.role == "system")

    @property
    def workload_pools(self) -> dict[str, NodePool]:
        return {n: p for n, p in self.node_pools.items() if p.role != "system"}

    @property
    def default_tags(self) -> dict[str, str]:
        return {
            **self.tags.extra,
            "environment": self.stack,
            "project": PROJECT,
            "owner": self.tags.owner,
            "cost-center": self.tags.cost_center,
        }


# --- loading -----------------------------------------------------------------------------


def parse(values: Mapping[str, Any], *, stack: str, source: str | None = None) -> PlatformConfig:
    """Validate raw stack config (`{"aws:region": ..., "ml-platform:network": {...}}`).

    Raises ConfigError with one line per problem, each naming `source`.
    """
    source = source or f"Pulumi.{stack}.yaml"
    sections: dict[str, Any] = {"stack": stack}
    problems: list[str] = []
    if "aws:region" in values:
        sections["region"] = values["aws:region"]
    for key, value in values.items():
        namespace, _, section = key.partition(":")
        if namespace != PROJECT:
            continue
        if section in ("stack", "region"):
            problems.append(f"{source}: {key}: unknown key (the stack name and aws:region set this)")
        else:
            sections[section] = value
    try:
        config = PlatformConfig.model_validate(sections)
    except ValidationError as exc:
        problems.extend(f"{source}: {_describe(err)}" for err in _one_per_mistake(exc.errors()))
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def load() -> PlatformConfig:
    """Read the running stack's config from the Pulumi engine (real run or offline engine)."""
    stack = pulumi.get_stack()
    raw = pulumi.runtime.config.CONFIG.get()
    return parse({key: _decode(value) for key, value in raw.items()}, stack=stack)


def _decode(value: Any) -> Any:
    """Pulumi hands structured config to programs as JSON text."""
    if isinstance(value, str) and value[:1] in "{[" or value in ("true", "false"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _one_per_mistake(errors: list[Any]) -> list[Any]:
    """A misspelt key is one mistake: drop the 'missing' error for the key it was meant to be."""
    meant = set()
    for err in errors:
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(err["loc"][:-1])
            meant.update((err["loc"][:-1], hint) for hint in difflib.get_close_matches(str(err["loc"][-1]), allowed, n=1))
    return [e for e in errors if not (e["type"] == "missing" and (e["loc"][:-1], e["loc"][-1]) in meant)]


def _describe(err: Any) -> str:
    """One line for a pydantic error: key path, what is wrong, what was given."""
    loc = [str(part) for part in err["loc"]]
    if loc and loc[0] not in ("stack", "region"):
        loc[0] = f"{PROJECT}:{loc[0]}"
    elif loc and loc[0] == "region":
        loc[0] = "aws:region"
    path = ".".join(loc) or PROJECT
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(err["loc"][:-1])
        hint = difflib.get_close_matches(str(err["loc"][-1]), allowed, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"{path}: unknown key{suggestion} (allowed: {', '.join(allowed)})"
    if kind == "missing":
        hint = "set the AWS region, e.g. us-east-1" if path == "aws:region" else "this key is required"
        return f"{path}: missing; {hint}"
    message = err["msg"].removeprefix("Value error, ")
    if kind.startswith(("literal_", "int_", "string_", "bool_", "list_", "dict_", "too_", "greater_", "less_", "ip_")) \
            or kind.endswith("_type") or kind.endswith("_parsing"):
        return f"{path}: {message} (got {err['input']!r})"
    return f"{path}: {message}"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The YAML keys the model at `loc` accepts, for 'unknown key' messages."""
    model: Any = PlatformConfig
    for part in loc:
        if isinstance(part, int) or not (isinstance(model, type) and issubclass(model, BaseModel)):
            model = _unwrap(model, container=True)
            continue
        field = next((f for n, f in model.model_fields.items() if f.alias == part or n == part), None)
        model = _unwrap(field.annotation) if field else None
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or n for n, f in model.model_fields.items() if model is not PlatformConfig
                or n not in ("stack", "region")]
    return []


def _unwrap(annotation: Any, container: bool = False) -> Any:
    """Strip Optional; with container=True, step into dict values or list items."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        origin = typing.get_origin(annotation)
    if container and origin in (dict, list):
        return typing.get_args(annotation)[-1]
    return annotation
