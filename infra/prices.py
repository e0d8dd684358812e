"""`mlp prices REGION...`: record a region's on-demand prices from the AWS Price List Query API.

Run by a person with AWS credentials (any principal allowed `pricing:GetProducts`);
writes catalog/price_records/<region>.json, which the cost estimate of every
stack in that region then uses. Every instance type of catalog/instances.py
and every fixed price the estimate uses is read; anything not found is an
error, never a guess.

What is asked for (ServiceCode, filters, usage types) follows the API
reference (docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html)
and the queries of two maintained readers of it: aws/karpenter-provider-aws
pkg/providers/pricing/pricing.go (EC2 on-demand) and infracost
internal/resources/aws/{eks_cluster,nat_gateway,vpc_endpoint,ebs_volume,
cloudwatch_log_group,kms_key}.go (the fixed prices). Usage types carry a
region prefix (`USE1-`, `EU-`; none for some EC2 types in us-east-1), so
they are matched by suffix.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from catalog.instances import INSTANCES
from catalog.prices import FIXED_FIELDS, RECORDS, PriceBook, from_record

# The Price List Query API answers in us-east-1 (also eu-central-1 and ap-south-1).
PRICING_ENDPOINT_REGION = "us-east-1"
API = "AWS Price List Query API (pricing:GetProducts)"


class PriceError(RuntimeError):
    """A price the record needs was not found, or was ambiguous."""


@dataclass(frozen=True)
class Query:
    """One fixed price: which products, and which usage type among them."""

    service: str
    filters: Mapping[str, str]
    usage_type: str  # matched as the whole usage type or its suffix after a region prefix


FIXED: Mapping[str, Query] = {
    "eksStandard": Query("AmazonEKS", {"productFamily": "Compute"}, "AmazonEKS-Hours:perCluster"),
    # Extended support is billed on top of the standard hour.
    "eksExtendedSurcharge": Query("AmazonEKS", {"productFamily": "Compute"}, "AmazonEKS-Hours:extendedSupport"),
    "natGatewayHour": Query("AmazonEC2", {"productFamily": "NAT Gateway"}, "NatGateway-Hours"),
    "natGatewayGb": Query("AmazonEC2", {"productFamily": "NAT Gateway"}, "NatGateway-Bytes"),
    "interfaceEndpointAzHour": Query("AmazonVPC", {"productFamily": "VpcEndpoint"}, "VpcEndpoint-Hours"),
    "ebsGp3GbMonth": Query("AmazonEC2", {"productFamily": "Storage", "volumeApiName": "gp3"},
                           "EBS:VolumeUsage.gp3"),
    "logIngestionGb": Query("AmazonCloudWatch", {"productFamily": "Data Payload"}, "DataProcessing-Bytes"),
    "kmsKeyMonth": Query("awskms", {"productFamily": "Encryption Key"}, "KMS-Keys"),
    "secretsManagerSecretMonth": Query("AWSSecretsManager", {"productFamily": "Secret"}, "AWSSecretsManager-Secrets"),
}


def _filters(region: str, fields: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in {"regionCode": region, **fields}.items()]


def ec2_filters(region: str, instance_type: str) -> list[dict[str, str]]:
    """Linux, shared tenancy, no pre-installed software, on-demand: Karpenter's query, one type."""
    return _filters(region, {"instanceType": instance_type, "operatingSystem": "Linux", "tenancy": "Shared",
                             "preInstalledSw": "NA", "capacitystatus": "Used", "marketoption": "OnDemand",
                             "productFamily": "Compute Instance"})


def _products(client: Any, service: str, filters: list[dict[str, str]]) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator("get_products").paginate(
            ServiceCode=service, Filters=filters, FormatVersion="aws_v1"):
        for item in page.get("PriceList", []):
            yield json.loads(item)  # each item is a JSON document in a string


def _first_tier_usd(product: Mapping[str, Any]) -> float | None:
    for term in (product.get("terms") or {}).get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            if dimension.get("beginRange", "0") == "0":
                return float(dimension["pricePerUnit"]["USD"])
    return None


def _one_price(products: Sequence[Mapping[str, Any]], what: str, region: str,
               usage_type: str | None = None) -> float:
    prices = set()
    for product in products:
        found = str((product.get("product") or {}).get("attributes", {}).get("usagetype", ""))
        if usage_type is not None and found != usage_type and not found.endswith(f"-{usage_type}"):
            continue
        price = _first_tier_usd(product)
        if price:
            prices.add(price)
    if len(prices) != 1:
        detail = "no priced product" if not prices else f"several prices ({', '.join(map(str, sorted(prices)))})"
        raise PriceError(f"{region}: {what}: {detail} in the Price List API answer")
    return prices.pop()


def fetch(client: Any, region: str, today: date) -> PriceBook:
    """Every price the estimate needs for `region`, read through a `pricing` client."""
    instances = {}
    for name in INSTANCES:
        products = list(_products(client, "AmazonEC2", ec2_filters(region, name)))
        if products:
            instances[name] = _one_price(products, f"EC2 {name} Linux on-demand", region)
    missing = [name for name in INSTANCES if name not in instances]
    fixed = {key: _one_price(list(_products(client, q.service, _filters(region, q.filters))),
                             f"{q.service} {q.usage_type}", region, q.usage_type)
             for key, q in FIXED.items()}
    fetched = f"{API}, regionCode {region}, fetched {today.isoformat()}"
    return from_record({
        "region": region,
        "date": today.isoformat(),
        "sources": {"instances": f"{fetched}: AmazonEC2 Linux, shared tenancy, on-demand"
                                 + (f"; not offered there: {', '.join(missing)}" if missing else ""),
                    "fixed": f"{fetched}: " + "; ".join(f"{k} {q.service} {q.usage_type}" for k, q in FIXED.items())},
        "instances": instances,
        "fixed": {
            "eksClusterHour": {"STANDARD": fixed["eksStandard"],
                               "EXTENDED": round(fixed["eksStandard"] + fixed["eksExtendedSurcharge"], 6)},
            **{key: fixed[key] for key in FIXED_FIELDS if key != "eksClusterHour"},
        },
    })


def write(book: PriceBook, directory: Path = RECORDS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{book.region}.json"
    path.write_text(json.dumps(book.to_record(), indent=2) + "\n")
    return path


def main(regions: Sequence[str], out: Path | None, client: Any = None) -> int:
    """Record each region; one line per problem (no credentials, API refusal, a price not found)."""
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        print("error: mlp prices needs boto3: pip install boto3 (it is in the project's dev extra)", file=sys.stderr)
        return 2
    client = client or boto3.client("pricing", region_name=PRICING_ENDPOINT_REGION)
    for region in regions:
        try:
            book = fetch(client, region, date.today())
        except (PriceError, BotoCoreError, ClientError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        unpriced = [name for name in INSTANCES if name not in book.instances]
        if unpriced:
            print(f"note: {region} offers no on-demand {', '.join(unpriced)}; pools cannot use them there")
        print(f"wrote {write(book, out or RECORDS)}")
    return 0
