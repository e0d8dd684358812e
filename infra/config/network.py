"""Network and tagging config: `ml-platform:network`, `ml-platform:tags`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from catalog.model import Model, distinct
from catalog.subnets import SubnetPlanError, plan_subnets
from infra.config.base import Cidr, private_network, retention


class Tags(Model):
    """Cost-allocation tags put on every AWS resource (plus environment and project)."""

    owner: str = Field(min_length=1, description="Team that owns the stack; the `owner` tag.")
    cost_center: str = Field(min_length=1, description="Billing code; the `cost-center` tag.")
    extra: dict[str, str] = Field(default_factory=dict, description="Further tags for every resource.")


class FlowLogs(Model):
    destination: Literal["cloudwatch", "s3"] = Field(
        "cloudwatch", description="Where VPC flow logs go: a CloudWatch log group or an S3 bucket."
    )
    retention_days: int = Field(
        description="Days flow logs are kept (CloudWatch retention or S3 expiry)."
    )

    @model_validator(mode="after")
    def _retention_allowed(self) -> FlowLogs:
        if self.destination == "cloudwatch":
            retention(self.retention_days, "retentionDays ")
        if self.retention_days < 1:
            raise ValueError(f"retentionDays must be >= 1 (got {self.retention_days})")
        return self


class Network(Model):
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

    _private = field_validator("cidr")(private_network)

    @field_validator("availability_zones")
    @classmethod
    def _unique_azs(cls, azs: list[str]) -> list[str]:
        return distinct(azs, "availability zones")

    @field_validator("endpoints")
    @classmethod
    def _unique_endpoints(cls, endpoints: list[str]) -> list[str]:
        return distinct(endpoints, "endpoints")

    @model_validator(mode="after")
    def _subnets_fit(self) -> Network:
        try:
            plan_subnets(self.cidr, len(self.availability_zones))
        except SubnetPlanError as exc:
            raise ValueError(str(exc)) from None
        return self
