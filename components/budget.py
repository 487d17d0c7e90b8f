"""Budget: an AWS Budgets cost budget for the stack, emailing when actual spend passes 80% and 100%.

Builds:
- one monthly COST budget named leanstack-<stack>, filtered to the stack's resources by the
  `Stack` tag every resource carries (the provider's default tags), with two notifications on
  ACTUAL spend (not forecast: a forecast in the first days of a month is noise): at 80% and at
  100% of the limit, both e-mailed to the stack's alert address.

The limit: `budget.monthlyUsd`, or by default 1.5 x what the config's hosts, load balancer,
database and cache cost a month at the prices in leanstack/pricing.json (the same pricing
functions the plan uses, fed the sizes the config asks for), rounded up to a whole dollar. Those
items are most of a stack's bill (tests/components/test_budget.py checks they are at least 80%
of the plan's priced total for every test stack), so the default sits between 1.2x and 1.5x the
plan's estimate; it moves only when the config or the price table does, never with usage.

Before it can filter: the `Stack` tag must be activated as a cost allocation tag, once per
account, in the Billing console (Cost allocation tags) or with
`aws ce update-cost-allocation-tags-status --cost-allocation-tags-status TagKey=Stack,Status=Active`.
leanstack does not do it with Pulumi (aws.costexplorer.CostAllocationTag): the setting is
account-wide, so two stacks would each claim it and destroying one would deactivate it for the
other; in an AWS Organization only the management account may change it; and AWS lists a new
tag key for activation only up to 24 hours after a resource first carries it. Until the tag is
active, the budget sees no spend and never alerts (the README's setup steps say so).

Cost: the first two budgets of an account are free; each one beyond is billed daily. A dev and a
prod stack fit in the free two; the plan prices the budget as free and says so.

Replacement: renaming the stack replaces the budget (its name); changing the limit or the
address updates it in place.

Example:
    Budget("budget", limit_usd=45, email="ops@example.com", stack="prod")
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from leanstack.components.base import LeanComponent
from leanstack.config.naming import stack_prefix

__all__ = ["ALERT_PERCENTS", "Budget"]

ALERT_PERCENTS = (80, 100)
# The tag every resource of a stack carries (components.providers.default_tags); Billing prefixes user tags.
STACK_TAG = "Stack"


class Budget(LeanComponent):
    name: str

    def __init__(
        self,
        name: str,
        *,
        limit_usd: float,
        email: str,
        stack: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, opts)
        if limit_usd <= 0:
            raise ValueError(f"Budget {name}: limit_usd must be above 0, got {limit_usd}")
        self.name = stack_prefix(stack)
        self.budget = aws.budgets.Budget(
            self.child_name("monthly"),
            name=self.name,
            budget_type="COST",
            limit_amount=f"{limit_usd:.2f}",
            limit_unit="USD",
            time_unit="MONTHLY",
            cost_filters=[aws.budgets.BudgetCostFilterArgs(name="TagKeyValue", values=[f"user:{STACK_TAG}${stack}"])],
            notifications=[
                aws.budgets.BudgetNotificationArgs(
                    comparison_operator="GREATER_THAN",
                    threshold=percent,
                    threshold_type="PERCENTAGE",
                    notification_type="ACTUAL",
                    subscriber_email_addresses=[email],
                )
                for percent in ALERT_PERCENTS
            ],
            tags=self.tags,
            opts=self.child_opts(),
        )
        self.register_outputs({"name": self.name})
