"""Issue 15, finding 7 (cost): more priced regions, each dated and sourced, and a partial total says so.

A stack moved to a region the price table lacked showed `$3.31/month` with 19 resources unpriced,
as if that were the total. The headline of plan and diff now says the total is partial and how
many resources it leaves out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from leanstack.cost import load_pricing
from leanstack.diff import diff_plans
from leanstack.diff import render_markdown as diff_markdown
from leanstack.diff import render_text as diff_text
from leanstack.mocks import run_program
from leanstack.plan import build_plan
from leanstack.plan import render_markdown as plan_markdown
from leanstack.plan import render_text as plan_text
from tests.conftest import merged, read_stack_config

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ADDED_REGIONS = ("us-east-2", "eu-west-2", "eu-north-1", "ap-northeast-1", "ap-south-1", "ca-central-1", "sa-east-1")
# Graviton 7 classes are priced in the US regions only (see the file's notes); t4g is everywhere.
US_ONLY = re.compile(r"(db\.|cache\.)?[mc]7g\.")


def _priced_items(table: dict[str, Any]) -> set[str]:
    items = set()
    for key, value in table.items():
        if isinstance(value, dict):
            items |= {f"{key}.{k}" for k in value if not US_ONLY.match(k)}
        else:
            items.add(key)
    return items


@pytest.mark.parametrize("region", ADDED_REGIONS)
def test_added_regions_price_every_item_and_say_how_they_were_taken(region: str) -> None:
    pricing = load_pricing()
    table = pricing["regions"][region]
    assert _priced_items(table) == _priced_items(pricing["regions"]["us-east-1"])
    for key, value in table.items():
        for number in value.values() if isinstance(value, dict) else [value]:
            assert isinstance(number, int | float) and number > 0, (region, key)
    source = pricing["regionSources"][region]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", source["takenOn"])
    # Nothing in these seven could be checked against a published page here: the file must say so.
    assert source["verified"] == "no" and source["how"].startswith("NOT VERIFIED")


def test_every_priced_region_is_dated_and_sourced() -> None:
    pricing = load_pricing()
    assert sorted(pricing["regionSources"]) == sorted(pricing["regions"])
    for region, source in pricing["regionSources"].items():
        assert source["verified"] in ("no", "partly", "yes") and source["how"], region


@pytest.fixture(scope="module")
def unpriced_region_plan() -> dict[str, Any]:
    """The fixture dev stack moved to a region the price table lacks (me-south-1)."""
    raw = merged(read_stack_config("dev", FIXTURES), {"aws:region": "me-south-1"})
    return build_plan(run_program("dev", raw))


def test_a_partial_plan_total_says_so_and_how_much_is_left_out(unpriced_region_plan: dict[str, Any]) -> None:
    plan = unpriced_region_plan
    unpriced, total = len(plan["cost"]["notPriced"]), len(plan["resources"])
    assert unpriced > 0
    expected = f"(PARTIAL: {unpriced} of {total} resources not priced and not counted)"
    headline = plan_text(plan).splitlines()[2]
    assert headline.startswith("Summary: $") and expected in headline, headline
    assert expected in plan_markdown(plan).splitlines()[2]
    assert f"+ {unpriced} not priced**" in plan_markdown(plan)


def test_a_fully_priced_plan_total_is_not_called_partial(unpriced_region_plan: dict[str, Any]) -> None:
    # Only the free resources (VPC, IAM roles) of the same plan: nothing left unpriced.
    kept = [r for r in unpriced_region_plan["resources"] if r["type"] in ("aws:ec2/vpc:Vpc", "aws:iam/role:Role")]
    plan = {k: v for k, v in unpriced_region_plan.items() if k not in ("cost", "summary", "policies")}
    plan.update(resources=kept, components=sorted({r["component"] for r in kept}))
    assert "PARTIAL" not in plan_text(plan) and "PARTIAL" not in plan_markdown(plan)
    assert plan_text(plan).splitlines()[2].startswith("Summary: $0.00/month at on-demand list prices")


def test_a_diff_with_unpriced_resources_says_its_totals_are_partial(unpriced_region_plan: dict[str, Any]) -> None:
    unpriced = len(unpriced_region_plan["cost"]["notPriced"])
    stack = diff_plans("dev", None, unpriced_region_plan)
    assert stack["cost"]["notPriced"] == {"before": 0, "after": unpriced}
    result = {"base": "main", "head": "work", "stacks": {"dev": stack}, "risks": [], "changed": True}
    expected = f"PARTIAL: 0 → {unpriced} resources not priced, not in the totals"
    assert expected in diff_text(result) and expected in diff_markdown(result)


def test_every_instance_price_says_what_the_dated_public_source_showed() -> None:
    """Each EC2, RDS and ElastiCache figure records its check against one named, dated dataset
    (support/price_check.py redoes the check from a clone of it)."""
    pricing = load_pricing()
    checked = pricing["checkedAgainst"]
    source = checked["source"]
    assert source["repository"].startswith("https://github.com/") and re.fullmatch(r"[0-9a-f]{40}", source["commit"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", source["date"])
    for region, table in pricing["regions"].items():
        for kind in ("ec2Hourly", "rdsPostgresHourly", "elasticacheRedisHourly"):
            for item, figure in table.get(kind, {}).items():
                entry = checked["prices"][region][f"{kind}.{item}"]
                assert entry.startswith(("agrees (", "changed from ", "ambiguous: ")), (region, kind, item)
                if entry.startswith("changed from "):
                    assert float(entry.split()[2]) != figure, (region, kind, item)
