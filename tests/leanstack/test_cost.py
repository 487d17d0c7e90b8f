"""The cost model: prices by resource type from leanstack/pricing.json, never a silent zero."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from leanstack.cost import FREE, NOT_PRICED, PRICED_TYPES, estimate, load_pricing, money
from leanstack.mocks import StackRun
from leanstack.plan import build_plan
from tests.conftest import run_with

REQUIRED_REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1")


def _resource(kind: str, name: str, inputs: dict[str, Any], region: str = "us-east-1") -> dict[str, Any]:
    return {
        "component": "Test",
        "type": kind,
        "name": name,
        "urn": f"urn:pulumi:dev::leanstack::{kind}::{name}",
        "id": name,
        "inputs": inputs,
        "options": {"protect": False, "retainOnDelete": False, "provider": "aws", "region": region},
    }


def _plan(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"stack": "dev", "components": ["Test"], "resources": list(resources), "outputs": {}}


def _price(resource: dict[str, Any]) -> dict[str, Any]:
    price: dict[str, Any] = estimate(_plan(resource))["resources"][resource["urn"]]
    return price


def test_pricing_file_states_its_source_date_and_covers_the_regions() -> None:
    pricing = load_pricing()
    assert pricing["takenOn"] == "2026-11-22"
    assert "could not be re-checked live" in pricing["about"]
    for page in ("ec2", "ebs", "publicIpv4", "rds", "elasticache", "secretsManager", "cloudwatch", "route53", "s3"):
        assert pricing["sources"][page].startswith("https://aws.amazon.com/")
    for region in REQUIRED_REGIONS:
        table = pricing["regions"][region]
        for key in ("ebsGp3GbMonth", "publicIpv4Hourly", "rdsGp3GbMonth", "s3StandardGbMonth", "s3GlacierIrGbMonth"):
            assert table[key] > 0, (region, key)
        for kind in ("t4g.micro", "t4g.small", "t4g.medium"):
            assert table["ec2Hourly"][kind] > 0
        for klass in ("db.t4g.micro", "db.t4g.small", "db.t4g.medium"):
            assert table["rdsPostgresHourly"][klass] > 0
        assert table["elasticacheRedisHourly"]["cache.t4g.micro"] > 0
        assert table["publicIpv4Hourly"] == 0.005


def test_dev_database_host_and_address_are_priced_from_the_table(dev: StackRun) -> None:
    cost = estimate(build_plan(dev))
    by_name = {r.name: cost["resources"][r.urn] for r in dev.resources if r.urn in cost["resources"]}
    # db.t4g.micro Single-AZ 730 h x $0.016 + 20 GB gp3 x $0.115 + the RDS-managed secret $0.40.
    assert by_name["database-instance"]["monthly"] == 14.38
    assert "RDS-managed master secret $0.4" in by_name["database-instance"]["basis"]
    # t4g.small 730 h x $0.0168 + 20 GB gp3 x $0.08.
    assert by_name["host-instance"]["monthly"] == 13.86
    assert by_name["host-ip"]["monthly"] == 3.65
    assert cost["total"] == money(sum(c["monthly"] for c in cost["components"].values()))


def test_prod_database_is_multi_az_priced_double(prod: StackRun) -> None:
    cost = estimate(build_plan(prod))
    db = next(cost["resources"][r.urn] for r in prod.resources if r.type == "aws:rds/instance:Instance")
    # db.t4g.small Multi-AZ 730 h x $0.064 + 20 GB x $0.115 x 2 + $0.40.
    assert db["monthly"] == 51.72 and "Multi-AZ" in db["basis"]


def test_cache_is_priced_by_engine_and_node_count() -> None:
    plan = build_plan(run_with({"leanstack:cache": {"enabled": True}}))
    group = next(r for r in plan["resources"] if r["type"] == "aws:elasticache/replicationGroup:ReplicationGroup")
    valkey = copy.deepcopy(group)
    valkey["inputs"].update(engine="valkey", nodeType="cache.t4g.micro", numCacheClusters=1)
    redis = copy.deepcopy(valkey)
    redis["inputs"]["engine"] = "redis"
    two = copy.deepcopy(redis)
    two["inputs"]["numCacheClusters"] = 2
    assert _price(valkey)["monthly"] == 9.34  # 80% of Redis OSS
    assert _price(redis)["monthly"] == 11.68
    assert _price(two)["monthly"] == 23.36
    assert plan["cost"]["components"]["Cache"]["monthly"] > 0


@pytest.mark.parametrize(
    ("inputs", "monthly"),
    [
        ({"period": 300, "metricName": "CPU"}, 0.10),
        ({"period": 10, "metricName": "CPU"}, 0.30),
        (
            {
                "metricQueries": [
                    {"id": "e", "expression": "a+b"},
                    {"id": "a", "metric": {"period": 60}},
                    {"id": "b", "metric": {"period": 60}},
                ]
            },
            0.20,
        ),
    ],
)
def test_alarms_standard_high_resolution_and_metric_math(inputs: dict[str, Any], monthly: float) -> None:
    assert _price(_resource("aws:cloudwatch/metricAlarm:MetricAlarm", "a", inputs))["monthly"] == monthly


@pytest.mark.parametrize(
    ("inputs", "monthly"),
    [
        ({"type": "HTTPS", "fqdn": "example.com"}, 2.75),  # non-AWS endpoint: $0.75 + HTTPS $2
        ({"type": "HTTPS_STR_MATCH", "fqdn": "example.com", "searchString": "ok"}, 4.75),
        ({"type": "HTTPS", "ipAddress": "203.0.113.7"}, 1.50),  # AWS endpoint: $0.50 + HTTPS $1
        ({"type": "HTTP", "ipAddress": "203.0.113.7"}, 0.50),
    ],
)
def test_route53_health_checks_price_endpoint_and_optional_features(inputs: dict[str, Any], monthly: float) -> None:
    assert _price(_resource("aws:route53/healthCheck:HealthCheck", "hc", inputs, region=""))["monthly"] == monthly


def test_secrets_parameters_logs_and_buckets() -> None:
    assert _price(_resource("aws:secretsmanager/secret:Secret", "s", {}))["monthly"] == 0.40
    assert _price(_resource("aws:ssm/parameter:Parameter", "p", {"type": "SecureString"}))["status"] == "free"
    assert _price(_resource("aws:ssm/parameter:Parameter", "p", {"tier": "Advanced"}))["monthly"] == 0.05
    logs = _price(_resource("aws:cloudwatch/logGroup:LogGroup", "l", {"retentionInDays": 30}))
    assert logs["monthly"] == 0.53 and logs["assumptions"]
    bucket = _price(_resource("aws:s3/bucket:Bucket", "b", {"objectLockEnabled": True}, region="eu-central-1"))
    assert bucket["monthly"] == 0.49 and any("20 GB" in a for a in bucket["assumptions"])  # 20 GB x $0.0245


def test_backup_bucket_lifecycle_moves_most_bytes_to_glacier_ir(prod: StackRun) -> None:
    plan = build_plan(prod)
    bucket = next(r for r in plan["resources"] if r["name"] == "backups-bucket")
    price = plan["cost"]["resources"][bucket["urn"]]
    assert "Glacier IR" in price["basis"] and price["monthly"] < 20 * 0.023


def test_unknown_types_and_regions_are_not_priced_never_zero() -> None:
    unknown = _resource("aws:kinesis/stream:Stream", "k", {})
    far = _resource("aws:ec2/eip:Eip", "ip", {}, region="me-south-1")
    odd = _resource("aws:ec2/instance:Instance", "i", {"instanceType": "x9.huge"})
    cost = estimate(_plan(unknown, far, odd, _resource("aws:ec2/eip:Eip", "ok", {})))
    for r in (unknown, far, odd):
        assert cost["resources"][r["urn"]]["status"] == NOT_PRICED
        assert cost["resources"][r["urn"]]["monthly"] is None
    assert [n["name"] for n in cost["notPriced"]] == ["ip", "i", "k"]
    assert cost["total"] == 3.65
    assert cost["components"]["Test"]["notPriced"] == ["k", "ip", "i"]


def test_free_and_priced_types_do_not_overlap() -> None:
    assert not set(FREE) & PRICED_TYPES
