"""The recovery branches of the sheet, in triage order, each ending with the steps every branch shares."""

from __future__ import annotations

import dataclasses

from leanstack.config import StackConfig
from leanstack.mocks import StackRun
from leanstack.runbook.branches_data import database_dropped, rows_deleted
from leanstack.runbook.branches_hosts import host_gone, instance_deleted
from leanstack.runbook.branches_region import region_down
from leanstack.runbook.facts import RecoveryFacts, recovery_facts
from leanstack.runbook.steps import Branch, closing_steps

# The anchors of the branches, in triage order: what `--branch` accepts.
BRANCH_NAMES = (
    "rows-deleted-or-corrupted",
    "app-database-dropped",
    "instance-deleted",
    "host-gone",
    "region-down",
)


def recovery_branches(run: StackRun, config: StackConfig) -> list[Branch]:
    """The recovery branches of the sheet, in triage order."""
    f = recovery_facts(run, config)
    s = f" --stack {config.stack}"
    branches = [
        rows_deleted(f, config),
        database_dropped(f, config),
        instance_deleted(f, config, s),
        host_gone(f, config),
        region_down(f, config),
    ]
    return [
        dataclasses.replace(b, steps=b.steps + closing_steps(f, config, _branch_regions(b, f, config)))
        for b in branches
    ]


def _branch_regions(branch: Branch, f: RecoveryFacts, config: StackConfig) -> tuple[str, ...]:
    """Where the branch's closing alarm check looks: region down, the recovery stack's regions."""
    if branch.heading != "Region down":
        return f.alarm_regions
    return tuple(sorted({config.backup.region, *(r for r in f.alarm_regions if r != f.region)}))
