"""EKS cluster config: `ml-platform:cluster`."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from catalog.eks import RELEASES
from catalog.model import Model
from infra.config.base import Cidr, principal_arns, private_network, retention

VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
TGW_ID = re.compile(r"^tgw-[0-9a-f]{8,17}$")
ROUTE_TABLE_ID = re.compile(r"^rtb-[0-9a-f]{8,17}$")


class Deployer(Model):
    """The network of the machine that runs `pulumi up`: how it reaches the API endpoint from the first `up`."""

    connection: Literal["peering", "transitGateway", "inVpc"] = Field(
        description="peering: VPC peering to an existing deployer VPC; transitGateway: attach this VPC to an "
        "existing transit gateway; inVpc: the deployer runs inside this stack's VPC (two-phase first up).")
    cidrs: list[Cidr] = Field(min_length=1, description="Deployer addresses; 443 on the API endpoint is opened "
                              "to them and (peering, transitGateway) routed to them.")
    vpc_id: str | None = Field(None, description="peering: the deployer VPC (vpc-...).")
    peer_account_id: str | None = Field(None, pattern=r"^\d{12}$",
                                        description="peering: the deployer VPC's account, if not this one "
                                        "(the peering is then accepted there).")
    transit_gateway_id: str | None = Field(None, description="transitGateway: the gateway (tgw-...).")
    route_table_ids: list[str] = Field(
        default_factory=list,
        description="peering (same account): deployer route tables that get a route back to this VPC.")

    @model_validator(mode="after")
    def _connection_fields(self) -> Deployer:
        if self.connection == "peering" and not (self.vpc_id and VPC_ID.match(self.vpc_id)):
            raise ValueError(f"peering needs vpcId, the deployer VPC id like vpc-0123456789abcdef0 "
                             f"(got {self.vpc_id!r})")
        if self.connection == "transitGateway" and not (self.transit_gateway_id and
                                                         TGW_ID.match(self.transit_gateway_id)):
            raise ValueError(f"transitGateway needs transitGatewayId like tgw-0123456789abcdef0 "
                             f"(got {self.transit_gateway_id!r})")
        bad = [t for t in self.route_table_ids if not ROUTE_TABLE_ID.match(t)]
        if bad:
            raise ValueError(f"routeTableIds must be route table ids like rtb-0123456789abcdef0, got {bad}")
        if self.route_table_ids and (self.connection != "peering" or self.peer_account_id):
            raise ValueError("routeTableIds is for peering within this account: other connections route "
                             "the way back on their own side (docs/deploying.md)")
        return self


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
    cni_policy_on_node_role: bool = Field(
        False, description="Transition only: keep AmazonEKS_CNI_Policy on the node role while an existing "
        "cluster's aws-node pods restart onto vpc-cni's Pod Identity role (docs/cluster.md).")
    deployer: Deployer | None = Field(
        None, description="Where `pulumi up` runs from; required with a private-only endpoint (docs/deploying.md).")

    @model_validator(mode="after")
    def _reachable(self) -> Cluster:
        if not self.public_access_cidrs and self.deployer is None:
            raise ValueError("deployer: missing; with no publicAccessCidrs the API endpoint is private, and without a "
                             "deployer network nothing could ever reach it to create the Kubernetes objects "
                             "(set deployer.connection: peering, transitGateway or inVpc; docs/deploying.md)")
        return self

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
        return principal_arns(principals, "admin principal")

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
