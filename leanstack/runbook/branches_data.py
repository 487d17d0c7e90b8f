"""The branches where the data is damaged and the instance stands: rows deleted or corrupted, database dropped."""

from __future__ import annotations

from leanstack.config import StackConfig
from leanstack.host.agent.contract import stack_backup_prefix
from leanstack.runbook.facts import (
    RecoveryFacts,
)
from leanstack.runbook.steps import Branch, load_branch

# What `python -m leanstack db restore` is: RDS point-in-time recovery into a new instance beside the current one.
DB_RESTORE = "python -m leanstack db restore"

# What the swap's adopting `pulumi up` must (not) show.
SWAP_PREVIEW = (
    "~ aws:rds/instance:Instance     database-instance   update    fine: the restored one adopted",
    "+-aws:rds/instance:Instance     database-instance   replace   STOP: a new, empty database",
    "+-aws:ec2/instance:Instance     host-instance       replace   STOP: no host is replaced here",
)


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
