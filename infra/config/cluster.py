"""EKS cluster config: `ml-platform:cluster`."""

from __future__ import annotations

import ipaddress
import re

from pydantic import Field, field_validator

from catalog.eks import RELEASES
from catalog.model import Model, distinct
from infra.config.base import Cidr, private_network, retention

IAM_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$")


class Cluster(Model):
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
        distinct([arn.rsplit("/", 1)[1] for arn in principals], "admin principal names")
        return principals

    @field_validator("service_cidr")
    @classmethod
    def _service_range(cls, cidr: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
        private_network(cidr)
        if not 12 <= cidr.prefixlen <= 24:
            raise ValueError(f"EKS needs a service CIDR between /12 and /24, got {cidr}")
        return cidr

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, days: int) -> int:
        return retention(days)
