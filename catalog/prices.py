"""Prices per region: one record per region under catalog/price_records/, with its sources and date.

us-east-1 comes from Karpenter's generated price file at the pinned release
(it covers only us-east-1). Other regions are written by `mlp prices REGION`
from AWS's Price List API (infra/prices.py). A region with no record is
estimated at us-east-1 prices and says so (`PriceBook.fallback_for`): a cost
estimate never silently uses another region's prices.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from types import MappingProxyType

RECORDS = Path(__file__).resolve().parent / "price_records"
DEFAULT_REGION = "us-east-1"

# Assumptions, not prices: what a month of use looks like where the plan cannot know.
HOURS_PER_MONTH = 730
SPOT_DISCOUNT = 0.6  # spot at 40 % of on-demand; real discounts vary by type and AZ (GPU less)
NAT_GB_PER_MONTH = 500  # data through the NAT gateways per stack
LOG_GB_PER_MONTH = 20  # per log group (control plane or flow logs)

# The fixed (non-instance) prices every record carries: record key -> PriceBook field.
FIXED_FIELDS = {"eksClusterHour": "eks_cluster_hour", "natGatewayHour": "nat_gateway_hour",
                "natGatewayGb": "nat_gateway_gb", "interfaceEndpointAzHour": "interface_endpoint_az_hour",
                "ebsGp3GbMonth": "ebs_gp3_gb_month", "logIngestionGb": "log_ingestion_gb",
                "kmsKeyMonth": "kms_key_month", "secretsManagerSecretMonth": "secret_month"}


@dataclass(frozen=True)
class PriceBook:
    """On-demand USD prices of one region: instances per hour, and the fixed prices the estimate uses."""

    region: str
    date: str
    sources: Mapping[str, str]
    instances: Mapping[str, float]
    eks_cluster_hour: Mapping[str, float]  # by support type: STANDARD, EXTENDED
    nat_gateway_hour: float
    nat_gateway_gb: float
    interface_endpoint_az_hour: float
    ebs_gp3_gb_month: float
    log_ingestion_gb: float
    kms_key_month: float
    secret_month: float  # a Secrets Manager secret; each replica is billed as one more
    # The region the stack is in when this book is another region's (no record for it).
    fallback_for: str | None = field(default=None)

    @property
    def label(self) -> str:
        """How estimates name their prices: `us-east-1 prices of 2026-07-06[; none recorded for X]`."""
        text = f"{self.region} prices of {self.date}"
        return f"{text}; none recorded for {self.fallback_for}" if self.fallback_for else text

    def hourly(self, instance_type: str, spot: bool = False) -> float:
        price = self.instances[instance_type]
        return price * (1 - SPOT_DISCOUNT) if spot else price

    def to_record(self) -> dict:
        """The JSON record this book is stored as (catalog/price_records/<region>.json)."""
        fixed = {key: getattr(self, attr) for key, attr in FIXED_FIELDS.items()}
        return {"region": self.region, "date": self.date, "sources": dict(self.sources),
                "instances": dict(self.instances),
                "fixed": {**fixed, "eksClusterHour": dict(self.eks_cluster_hour)}}


def from_record(record: Mapping) -> PriceBook:
    fixed = {attr: record["fixed"][key] for key, attr in FIXED_FIELDS.items()}
    return PriceBook(region=record["region"], date=record["date"],
                     sources=MappingProxyType(dict(record["sources"])),
                     instances=MappingProxyType(dict(record["instances"])),
                     **{**fixed, "eks_cluster_hour": MappingProxyType(dict(fixed["eks_cluster_hour"]))})


@cache
def recorded(directory: Path = RECORDS) -> Mapping[str, PriceBook]:
    """Every region with a price record."""
    books = (from_record(json.loads(path.read_text())) for path in sorted(directory.glob("*.json")))
    return MappingProxyType({book.region: book for book in books})


def prices_for(region: str | None) -> PriceBook:
    """The region's prices; us-east-1's, marked as a fallback, where none are recorded."""
    books = recorded()
    region = region or DEFAULT_REGION
    if region in books:
        return books[region]
    return replace(books[DEFAULT_REGION], fallback_for=region)
