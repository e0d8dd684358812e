"""Prices per region: the shipped records, and `mlp prices` against the Price List API's documented shape."""

from __future__ import annotations

import json
from datetime import date

import botocore.session
import pytest
from botocore.stub import Stubber

from catalog.instances import INSTANCES
from catalog.prices import prices_for, recorded
from infra import prices

REGION = "eu-west-2"


def test_us_east_1_prices_every_instance_in_the_table():
    book = recorded()["us-east-1"]
    assert set(book.instances) == set(INSTANCES)
    assert book.instances["p4d.24xlarge"] < 25, "P4d after AWS's June 2025 cut (was 32.77 $/h)"


def test_a_region_without_a_record_falls_back_visibly():
    book = prices_for("mx-central-1")
    assert (book.region, book.fallback_for) == ("us-east-1", "mx-central-1")
    assert book.label == "us-east-1 prices of 2026-07-06; none recorded for mx-central-1"


def item(usage_type: str, usd: float, begin: str = "0", family: str = "Compute Instance") -> str:
    """One PriceList entry as GetProducts returns it: a JSON document inside a string."""
    return json.dumps({
        "product": {"productFamily": family, "sku": "SKU1", "attributes": {"usagetype": usage_type,
                                                                           "regionCode": REGION}},
        "serviceCode": "AmazonEC2",
        "terms": {"OnDemand": {"SKU1.JRTCKXETXF": {
            "sku": "SKU1", "offerTermCode": "JRTCKXETXF", "effectiveDate": "2026-11-01T00:00:00Z",
            "priceDimensions": {"SKU1.JRTCKXETXF.6YS6EN2CT7": {
                "unit": "Hrs", "beginRange": begin, "endRange": "Inf", "pricePerUnit": {"USD": f"{usd:.10f}"}}}}}},
        "version": "20261101000000", "publicationDate": "2026-11-01T00:00:00Z"})


FIXED_ANSWERS = {
    "eksStandard": [item("EUW2-AmazonEKS-Hours:perCluster", 0.10), item("EUW2-AmazonEKS-Hours:extendedSupport", 0.5)],
    "eksExtendedSurcharge": [item("EUW2-AmazonEKS-Hours:perCluster", 0.10),
                             item("EUW2-AmazonEKS-Hours:extendedSupport", 0.50)],
    # A look-alike usage type and a second tier must not be taken for the price.
    "natGatewayHour": [item("EUW2-RegionalNatGateway-Hours", 0.9), item("EUW2-NatGateway-Hours", 0.05),
                       item("EUW2-NatGateway-Bytes", 0.05)],
    "natGatewayGb": [item("EUW2-NatGateway-Hours", 0.05), item("EUW2-NatGateway-Bytes", 0.05)],
    "interfaceEndpointAzHour": [item("EUW2-VpcEndpoint-Hours", 0.011), item("EUW2-VpcEndpoint-GWLBE-Hours", 0.2)],
    "ebsGp3GbMonth": [item("EUW2-EBS:VolumeUsage.gp3", 0.0928)],
    "logIngestionGb": [item("EUW2-DataProcessing-Bytes", 0.5967), item("EUW2-DataProcessing-Bytes", 0.0, "1")],
    "kmsKeyMonth": [item("EUW2-KMS-Keys", 1.0), item("EUW2-KMS-Requests", 0.03)],
    "secretsManagerSecretMonth": [item("EUW2-AWSSecretsManager-Secrets", 0.4),
                                  item("EUW2-AWSSecretsManagerAPIRequest", 0.000005)],
}


def stubbed(instance_price, fixed=FIXED_ANSWERS):
    client = botocore.session.get_session().create_client(
        "pricing", region_name="us-east-1", aws_access_key_id="offline", aws_secret_access_key="offline")
    stub = Stubber(client)
    for name in INSTANCES:
        params = {"ServiceCode": "AmazonEC2", "Filters": prices.ec2_filters(REGION, name), "FormatVersion": "aws_v1"}
        price = instance_price(name)
        answer = [] if price is None else [item(f"EUW2-BoxUsage:{name}", price)]
        if name == "p4d.24xlarge":  # the answer over two pages
            stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [], "NextToken": "page-2"},
                              params)
            params = {**params, "NextToken": "page-2"}
        stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": answer}, params)
    for key, query in prices.FIXED.items():
        stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": fixed[key]}, {
            "ServiceCode": query.service, "Filters": prices._filters(REGION, query.filters),
            "FormatVersion": "aws_v1"})
    stub.activate()
    return client, stub


def test_prices_records_every_instance_and_fixed_price(tmp_path, capsys):
    client, stub = stubbed(lambda name: None if name == "p5.48xlarge" else round(len(name) * 0.1, 4))
    assert prices.main([REGION], tmp_path, client=client) == 0
    stub.assert_no_pending_responses()
    record = json.loads((tmp_path / f"{REGION}.json").read_text())
    assert record["region"] == REGION and record["date"] == date.today().isoformat()
    assert set(record["instances"]) == set(INSTANCES) - {"p5.48xlarge"}
    assert record["instances"]["p4d.24xlarge"] == 1.2, "read from the second page"
    assert record["fixed"] == {
        "eksClusterHour": {"STANDARD": 0.1, "EXTENDED": 0.6}, "natGatewayHour": 0.05, "natGatewayGb": 0.05,
        "interfaceEndpointAzHour": 0.011, "ebsGp3GbMonth": 0.0928, "logIngestionGb": 0.5967, "kmsKeyMonth": 1.0,
        "secretsManagerSecretMonth": 0.4}
    assert "not offered there: p5.48xlarge" in record["sources"]["instances"]
    assert "pricing:GetProducts" in record["sources"]["fixed"]
    assert "note: eu-west-2 offers no on-demand p5.48xlarge" in capsys.readouterr().out
    assert recorded(tmp_path)[REGION].label == f"{REGION} prices of {date.today().isoformat()}"


def test_an_ambiguous_price_is_an_error_not_a_guess(tmp_path, capsys):
    fixed = {**FIXED_ANSWERS, "kmsKeyMonth": [item("EUW2-KMS-Keys", 1.0), item("KMS-Keys", 1.2)]}
    client, _ = stubbed(lambda name: 1.0, fixed)
    assert prices.main([REGION], tmp_path, client=client) == 1
    assert capsys.readouterr().err == ("error: eu-west-2: awskms KMS-Keys: several prices (1.0, 1.2) "
                                       "in the Price List API answer\n")
    assert not (tmp_path / f"{REGION}.json").exists()


@pytest.mark.parametrize("key", sorted(prices.FIXED))
def test_a_missing_fixed_price_is_an_error(key, tmp_path, capsys):
    client, _ = stubbed(lambda name: 1.0, {**FIXED_ANSWERS, key: []})
    assert prices.main([REGION], tmp_path, client=client) == 1
    assert "no priced product in the Price List API answer" in capsys.readouterr().err
