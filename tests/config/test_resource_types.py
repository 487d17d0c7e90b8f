"""The table of resource types: every type a shipped stack creates has an entry, and each entry's
price rule, families and mock outputs are ones its readers know."""

from __future__ import annotations

from typing import Any

import pytest

from leanstack.config.resource_types import (
    ALARM,
    BUCKET,
    COMPONENT_PREFIX,
    LB_LOAD_BALANCER,
    MOCK_ACCOUNT,
    RDS_INSTANCE,
    S3_BUCKET,
    TYPES,
    MockCall,
    tokens_in,
    type_of,
)
from leanstack.cost import GLOBAL_RULES, REGIONAL_RULES
from leanstack.mocks import StackRun
from tests.conftest import run_with

# Every optional piece on, so the types only an option creates are enumerated too.
EVERYTHING_ON: dict[str, Any] = {
    "leanstack:cache": {"enabled": True},
    "leanstack:storage": {"enabled": True, "corsOrigins": ["https://example.com"]},
    "leanstack:database": {"crossRegionBackups": True},
}
AREAS = {"compute", "network", "database", "storage", "identity", "monitoring", "backup", "edge", "local", "provider"}


@pytest.mark.parametrize("stack", ["dev", "prod", "scale"])
def test_every_type_a_shipped_stack_creates_has_an_entry_with_facts(
    stack: str, dev: StackRun, prod: StackRun, scale: StackRun
) -> None:
    """The shipped stack as it is and with every option on: each custom resource's type has an entry
    that says what changing it does, and each resource is priced or known to be free."""
    runs = [{"dev": dev, "prod": prod, "scale": scale}[stack], run_with(EVERYTHING_ON, stack)]
    created = {r.type for run in runs for r in run.resources if not r.type.startswith(COMPONENT_PREFIX)}
    assert len(created) > 30
    missing = sorted(t for t in created if (entry := type_of(t)) is None or entry.facts is None)
    assert missing == []


def test_each_price_rule_the_table_names_is_the_cost_models_and_each_rule_is_used() -> None:
    rules = set(REGIONAL_RULES) | set(GLOBAL_RULES)
    named = {entry.price for entry in TYPES.values() if entry.price}
    assert named == rules
    assert not [t for t, e in TYPES.items() if e.price and e.free], "a type is priced or free, not both"


def test_each_entry_is_in_one_area_and_the_families_the_readers_use_are_filled() -> None:
    for token, entry in TYPES.items():
        assert entry.token == token
        assert len(AREAS & set(entry.families)) == 1, token
    assert tokens_in(BUCKET) >= {S3_BUCKET.token} and len(tokens_in(ALARM)) == 2
    assert {e.stateful for e in TYPES.values() if e.stateful} and S3_BUCKET.stateful and RDS_INSTANCE.stateful


def test_mock_outputs_are_deterministic_and_name_the_mock_account() -> None:
    call = MockCall(RDS_INSTANCE.token, "database-instance", "eu-west-1", {"identifier": "shop-prod"})
    assert RDS_INSTANCE.mock is not None and LB_LOAD_BALANCER.mock is not None
    ident, outputs = RDS_INSTANCE.mock(call)
    assert ident == "shop-prod" and RDS_INSTANCE.mock(call) == (ident, outputs)
    assert outputs["arn"] == f"arn:aws:rds:eu-west-1:{MOCK_ACCOUNT}:db:shop-prod"
    assert outputs["address"].endswith(".eu-west-1.rds.amazonaws.com")
    arn, lb = LB_LOAD_BALANCER.mock(MockCall(LB_LOAD_BALANCER.token, "web", "eu-west-1", {}))
    assert arn == lb["arn"] and lb["dnsName"].endswith(".eu-west-1.elb.amazonaws.com")
