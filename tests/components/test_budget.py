"""Issue 15, finding 8: an AWS Budgets budget per stack watches actual spend against the plan."""

from __future__ import annotations

import pytest

from leanstack.budget_basis import budget_basis_usd, default_limit_usd
from leanstack.config import ConfigError, load_stack_config
from leanstack.mocks import StackRun
from leanstack.plan import build_plan
from tests.conftest import merged, read_stack_config, run_with

BUDGET = "aws:budgets/budget:Budget"


def test_each_stack_emails_the_alert_address_at_80_and_100_percent_of_actual_spend(dev: StackRun) -> None:
    budget = dev.one(BUDGET).inputs
    assert (budget["budgetType"], budget["timeUnit"], budget["limitUnit"]) == ("COST", "MONTHLY", "USD")
    assert budget["name"] == "leanstack-dev" == dev.outputs["budgetName"]
    # Only this stack's resources: the Stack tag every resource carries (activated in Billing,
    # see docs/getting-started.md).
    assert budget["costFilters"] == [{"name": "TagKeyValue", "values": ["user:Stack$dev"]}]
    alerts = sorted((n["threshold"], n["notificationType"], n["thresholdType"]) for n in budget["notifications"])
    assert alerts == [(80, "ACTUAL", "PERCENTAGE"), (100, "ACTUAL", "PERCENTAGE")]
    emails = {e for n in budget["notifications"] for e in n["subscriberEmailAddresses"]}
    assert emails == {load_stack_config(read_stack_config("dev"), "dev").alert_email}


@pytest.mark.parametrize("stack", ["dev", "prod", "scale", "cache"])
def test_the_default_limit_is_about_one_and_a_half_times_the_plan(stack: str, dev: StackRun) -> None:
    if stack == "cache":
        run = run_with({"leanstack:cache": {"enabled": True, "replicas": 1}})
        config = merged(read_stack_config("dev"), {"leanstack:cache": {"enabled": True, "replicas": 1}})
        stack = "dev"
    else:
        run = dev if stack == "dev" else run_with({}, stack=stack)
        config = read_stack_config(stack)
    cfg = load_stack_config(config, stack)
    total = build_plan(run)["cost"]["total"]
    limit = float(run.one(BUDGET).inputs["limitAmount"])
    assert limit == default_limit_usd(cfg) and limit == int(limit)
    assert 0.8 * total <= budget_basis_usd(cfg) <= total
    assert 1.2 * total <= limit <= 1.5 * total + 1


def test_the_budget_is_priced_free_within_the_accounts_first_two(dev: StackRun) -> None:
    price = build_plan(dev)["cost"]["resources"][dev.one(BUDGET).urn]
    assert (price["status"], price["monthly"]) == ("priced", 0.0)
    assert "2 free budgets" in price["basis"] and "$0.02/day" in price["basis"]


def test_a_configured_monthly_amount_wins_and_a_negative_one_is_refused() -> None:
    run = run_with({"leanstack:budget": {"monthlyUsd": 250}})
    assert run.one(BUDGET).inputs["limitAmount"] == "250.00"
    with pytest.raises(ConfigError, match=r"^leanstack:budget\.monthlyUsd: "):
        load_stack_config(merged(read_stack_config("dev"), {"leanstack:budget": {"monthlyUsd": -5}}), "dev")
