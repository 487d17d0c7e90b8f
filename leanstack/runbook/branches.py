"""The recovery branches of the sheet, in triage order, each ending with the steps every branch shares.

Each branch's prose and commands are in templates/branches/<name>.yaml.j2; what it needs beyond the
recovery facts (a name, a folder, a URN) is computed here.
"""

from __future__ import annotations

import dataclasses

from leanstack.config import StackConfig
from leanstack.config.naming import stack_prefix
from leanstack.host.agent.contract import stack_backup_prefix
from leanstack.mocks import StackRun
from leanstack.recover import recovery_stack
from leanstack.runbook.facts import RecoveryFacts, real_urn, recovery_facts
from leanstack.runbook.steps import Branch, closing_steps, load_branch

# The anchors of the branches, in triage order: what `--branch` accepts.
BRANCH_NAMES = (
    "rows-deleted-or-corrupted",
    "app-database-dropped",
    "instance-deleted",
    "host-gone",
    "region-down",
)

# What `python -m leanstack db restore` is: RDS point-in-time recovery into a new instance beside the current one.
DB_RESTORE = "python -m leanstack db restore"

# What the swap's adopting `pulumi up` must (not) show.
SWAP_PREVIEW = (
    "~ aws:rds/instance:Instance     database-instance   update    fine: the restored one adopted",
    "+-aws:rds/instance:Instance     database-instance   replace   STOP: a new, empty database",
    "+-aws:ec2/instance:Instance     host-instance       replace   STOP: no host is replaced here",
)


def recovery_branches(run: StackRun, config: StackConfig) -> list[Branch]:
    """The recovery branches of the sheet, in triage order."""
    f = recovery_facts(run, config)
    branches = [
        rows_deleted(f, config),
        database_dropped(f, config),
        instance_deleted(f, config),
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


def rows_deleted(f: RecoveryFacts, config: StackConfig) -> Branch:
    """Data missing or wrong: copy the damaged rows back (the default), swap the whole database, or use a dump."""
    return load_branch(
        "rows_deleted.yaml.j2",
        f,
        config,
        DB_RESTORE=DB_RESTORE,
        swap_preview=SWAP_PREVIEW,
        folder=f"{stack_backup_prefix(config.backup.prefix, config.stack)}/{f.database_name}",
    )


def database_dropped(f: RecoveryFacts, config: StackConfig) -> Branch:
    """The app's database dropped on a standing instance: restore the newest dump, or the instance to T."""
    return load_branch("database_dropped.yaml.j2", f, config, DB_RESTORE=DB_RESTORE, swap_preview=SWAP_PREVIEW)


def instance_deleted(f: RecoveryFacts, config: StackConfig) -> Branch:
    """The RDS instance deleted: restore it under the same identifier, or fill an empty one from the dump."""
    return load_branch(
        "instance_deleted.yaml.j2",
        f,
        config,
        database_component=real_urn(f.database_urn),
        provider=f"--provider 'aws={real_urn(f.provider_urn)}' " if f.provider_urn else "",
    )


def host_gone(f: RecoveryFacts, config: StackConfig) -> Branch:
    """The host terminated or broken: the groups replace it, or `pulumi up` rebuilds it; no data is lost."""
    return load_branch("host_gone.yaml.j2", f, config)


def region_down(f: RecoveryFacts, config: StackConfig) -> Branch:
    """The stack's region impaired: wait for it, or bring up the recovery stack beside the backups."""
    rec = recovery_stack(config.stack)
    return load_branch(
        "region_down.yaml.j2",
        f,
        config,
        rec=rec,
        folder=f"s3://$BUCKET/{stack_backup_prefix(config.backup.prefix, config.stack)}/{f.database_name}",
        rec_host=f"Name=tag:Name,Values={stack_prefix(rec)}-host",
        repository=f"{stack_prefix(rec)}-app",
    )
