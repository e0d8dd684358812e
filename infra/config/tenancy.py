"""Tenancy config: `ml-platform:tenancy` — team namespaces, their quotas, and who may do what in them.

A namespace lists the pool roles its pods may use; its GPU quota may not
exceed their GPU capacity (nodes x GPUs per node x slices). Teams are IAM
principals bound, per namespace, to one of the platform's roles.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from catalog import namespaces
from catalog.model import Model
from infra.config.base import dns_labels, principal_arns

PodSecurity = Literal["restricted", "baseline", "privileged"]
AccessRole = Literal["read-only", "engineer", "admin"]
PoolRole = Literal["cpu", "training", "inference"]
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti)?$")
# Namespaces Kubernetes or the platform's own components own: no team namespace may take their names.
RESERVED = (*namespaces.KUBERNETES, *namespaces.PLATFORM)


class Quota(Model):
    """ResourceQuota of a team namespace; unset values are the capacity of the namespace's pools."""

    cpu: int | None = Field(None, ge=1, description="requests.cpu, vCPUs; default: the pools' cpu limits.")
    memory_gib: int | None = Field(None, alias="memoryGiB", ge=1,
                                   description="requests.memory, GiB; default: the pools' memory limits.")
    gpus: int | None = Field(None, ge=0, description="requests.nvidia.com/gpu (slices counted); default and "
                             "maximum: the GPU capacity of the namespace's pools.")
    pods: int = Field(200, ge=1, description="Pods at once.")
    storage_gib: int = Field(2000, alias="storageGiB", ge=1, description="requests.storage of all PVCs, GiB.")


class ContainerDefaults(Model):
    """LimitRange defaults, so a container that states no resources still gets sane ones."""

    cpu_request: str = Field("250m", description="Default CPU request.")
    memory_request: str = Field("512Mi", description="Default memory request.")
    cpu_limit: str = Field("1", description="Default CPU limit.")
    memory_limit: str = Field("1Gi", description="Default memory limit.")

    @field_validator("cpu_request", "memory_request", "cpu_limit", "memory_limit")
    @classmethod
    def _quantity(cls, value: str) -> str:
        if not QUANTITY.match(value):
            raise ValueError(f"{value!r} is not a Kubernetes quantity like 250m, 1, 512Mi or 2Gi")
        return value


class TeamNamespace(Model):
    purpose: str = Field(min_length=1, description="What runs here (docs, the namespace's annotation).")
    pool_roles: list[PoolRole] = Field(min_length=1, description="Pool roles its pods may use (quota bound).")
    pod_security: PodSecurity = Field("restricted", description="Pod Security Standards level; baseline or "
                                      "privileged only with a documented reason (docs/tenancy.md).")
    quota: Quota = Field(default_factory=Quota, description="ResourceQuota, GPUs included.")
    container_defaults: ContainerDefaults = Field(default_factory=ContainerDefaults,
                                                  description="LimitRange defaults for containers.")
    https_egress: Literal["internet", "vpc"] = Field(
        "internet", description="HTTPS out: to 0.0.0.0/0 (AWS APIs without VPC endpoints, model hubs) or only "
        "inside the VPC (its endpoints).")
    readable_secrets: list[str] = Field(default_factory=list,
                                        description="Secrets the engineer role may read, by name.")


def _default_namespaces() -> dict[str, TeamNamespace]:
    return {
        "ml-training": TeamNamespace(purpose="training jobs on the A100 and CPU pools",
                                     pool_roles=["training", "cpu"]),
        "ml-inference": TeamNamespace(purpose="model servers on the inference pools", pool_roles=["inference"]),
        "ml-jobs": TeamNamespace(purpose="batch and evaluation jobs", pool_roles=["cpu", "inference"]),
    }


class Team(Model):
    principals: list[str] = Field(min_length=1, description="IAM role/user ARNs of the team (people and CI).")
    namespaces: dict[str, AccessRole] = Field(min_length=1, description="Namespace -> the team's role there.")

    @field_validator("principals")
    @classmethod
    def _arns(cls, principals: list[str]) -> list[str]:
        return principal_arns(principals, "principal")


class Tenancy(Model):
    """Team namespaces and team access (`ml-platform:tenancy`)."""

    namespaces: dict[str, TeamNamespace] = Field(
        default_factory=_default_namespaces,
        description="Team namespaces by name; default ml-training, ml-inference, ml-jobs.")
    teams: dict[str, Team] = Field(default_factory=dict, description="Teams by name: principals and their roles.")

    @field_validator("namespaces")
    @classmethod
    def _names(cls, namespaces: dict[str, TeamNamespace]) -> dict[str, TeamNamespace]:
        dns_labels(namespaces, "namespace")
        for name in namespaces:
            if name in RESERVED:
                raise ValueError(f"namespace {name!r} is reserved for Kubernetes or a platform component; "
                                 f"reserved: {', '.join(RESERVED)}")
        return namespaces

    @field_validator("teams")
    @classmethod
    def _team_names(cls, teams: dict[str, Team]) -> dict[str, Team]:
        dns_labels(teams, "team")
        return teams
