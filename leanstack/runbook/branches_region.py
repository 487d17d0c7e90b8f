"""The region-down branch: rebuild the stack as its recovery stack in the backup region, from the off-site copies."""

from __future__ import annotations

from leanstack.config import StackConfig
from leanstack.config.naming import stack_prefix
from leanstack.host.agent.contract import stack_backup_prefix
from leanstack.recover import recovery_stack
from leanstack.runbook.facts import RecoveryFacts
from leanstack.runbook.steps import Branch, load_branch


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
