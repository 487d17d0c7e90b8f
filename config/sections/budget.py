"""`leanstack:budget`: the stack's AWS Budgets cost budget."""

from __future__ import annotations

from dataclasses import dataclass

from leanstack.config.fields import Validated, setting


@dataclass(frozen=True)
class BudgetArgs(Validated):
    """The stack's AWS Budgets cost budget (see components/budget.py)."""

    monthly_usd: int = setting(
        0,
        doc="Monthly budget in whole USD; e-mails alertEmail when actual spend passes 80% and 100%. 0 = 1.5 x what the "
        "config's hosts, load balancer, database, cache and dashboard cost a month (leanstack/pricing.json), rounded "
        "up.",
        min=0,
        max=1000000,
    )
