"""Cache: off by default (no resources); on, an encrypted one-node group reachable only from the host."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from leanstack.mocks import StackRun
from tests.components.helpers import children, is_secret_input


@pytest.fixture(scope="module")
def with_cache(run_dev_with_module: Callable[[dict[str, Any]], StackRun]) -> StackRun:
    return run_dev_with_module({"leanstack:cache": {"enabled": True}})


@pytest.fixture(scope="module")
def run_dev_with_module() -> Callable[[dict[str, Any]], StackRun]:
    from tests.conftest import run_with

    return run_with


def test_off_means_zero_resources(dev: StackRun, prod: StackRun) -> None:
    for run in (dev, prod):
        assert children(run, "Cache") == []
        assert not any(r.type.startswith("aws:elasticache/") for r in run.resources)
        assert "cacheAddress" not in run.outputs


def test_one_encrypted_valkey_node(with_cache: StackRun) -> None:
    group = with_cache.one("aws:elasticache/replicationGroup:ReplicationGroup")
    inputs = group.inputs
    assert (inputs["engine"], inputs["nodeType"], inputs["numCacheClusters"]) == (
        "valkey",
        "cache.t4g.micro",
        1,
    )
    assert inputs["atRestEncryptionEnabled"] is True and inputs["transitEncryptionEnabled"] is True
    assert is_secret_input(group, "authToken")


def test_auth_token_is_kept_as_a_secure_parameter(with_cache: StackRun) -> None:
    param = next(p for p in with_cache.of_type("aws:ssm/parameter:Parameter") if p.component == "Cache")
    assert param.inputs["name"] == "/leanstack/dev/cache/auth-token"
    assert param.inputs["type"] == "SecureString" and is_secret_input(param, "value")
    assert with_cache.outputs["cacheAuthTokenParameter"] == "/leanstack/dev/cache/auth-token"


def test_private_and_reachable_only_from_the_host(with_cache: StackRun) -> None:
    subnets = with_cache.one("aws:elasticache/subnetGroup:SubnetGroup").inputs["subnetIds"]
    assert subnets == [with_cache.named(f"network-private-{x}").id for x in "ab"]
    sg = with_cache.named("cache-sg")
    assert sg.inputs.get("ingress", []) == []
    rules = [
        r
        for r in with_cache.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.component == "Cache"
    ]
    assert len(rules) == 1
    rule = rules[0].inputs
    assert (rule["fromPort"], rule["toPort"]) == (6379, 6379)
    assert rule["securityGroupId"] == sg.id
    assert rule["referencedSecurityGroupId"] == with_cache.named("host-sg").id


def test_replicas_bring_failover_multi_az_and_a_reader_endpoint(
    with_cache: StackRun, run_dev_with_module: Callable[[dict[str, Any]], StackRun]
) -> None:
    single = with_cache.one("aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert (single["automaticFailoverEnabled"], single["multiAzEnabled"]) == (False, False)
    assert "cacheReaderAddress" not in with_cache.outputs
    run = run_dev_with_module({"leanstack:cache": {"enabled": True, "replicas": 1}})
    group = run.one("aws:elasticache/replicationGroup:ReplicationGroup")
    assert group.inputs["numCacheClusters"] == 2
    assert (group.inputs["automaticFailoverEnabled"], group.inputs["multiAzEnabled"]) == (True, True)
    assert run.outputs["cacheReaderAddress"] == group.outputs["readerEndpointAddress"]
    assert run.outputs["cacheAddress"] == group.outputs["primaryEndpointAddress"]
    # The group is the same resource, changed in place: no new identifier, subnets or encryption.
    for key in ("replicationGroupId", "subnetGroupName", "atRestEncryptionEnabled", "engine"):
        assert group.inputs[key] == single[key]
