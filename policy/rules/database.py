"""The database's own backups and protections: retention outside dev, deletion protection in production."""

from __future__ import annotations

from collections.abc import Iterator

from leanstack.policy.rules.resource_types import RDS, RDS_CLUSTER
from leanstack.policy.rules.view import Rule, StackView, Subject, known


def _rds_retention(db: Subject, view: StackView) -> Iterator[str]:
    days = db.get("backupRetentionPeriod")
    if view.stack == "dev" or view.stack.startswith("dev-") or not known(days):
        return
    if not isinstance(days, int | float) or days < 7:
        shown = f"{days:g}" if isinstance(days, int | float) else "0"
        yield f"{db.name} keeps {shown} day(s) of backups in stack {view.stack}; set backup_retention_period >= 7"


def _rds_production_protection(db: Subject, view: StackView) -> Iterator[str]:
    # A read replica holds a copy of its source's data, nothing of its own: deleting it loses
    # nothing, and RDS refuses a final snapshot of one. The source carries the protection.
    if not view.production or db.get("replicateSourceDb"):
        return
    if known(db.get("deletionProtection")) and db.get("deletionProtection") is not True:
        yield f"{db.name} is a production database without deletion protection; set deletion_protection=True"
    skip = db.get("skipFinalSnapshot")
    if known(skip) and (skip is True or not db.get("finalSnapshotIdentifier")):
        yield (
            f"{db.name} is a production database deleted without a final snapshot; set skip_final_snapshot=False "
            "and a final_snapshot_identifier"
        )


def _rds_production_keeps_automated_backups(db: Subject, view: StackView) -> Iterator[str]:
    if not view.production or db.get("replicateSourceDb"):
        return
    keep = db.get("deleteAutomatedBackups")
    # Unset means AWS's default: deleted with the instance.
    if known(keep) and keep is not False:
        yield (
            f"{db.name} is a production database whose automated backups are deleted with it, so point-in-time "
            "recovery dies with the instance; set delete_automated_backups=False"
        )


RDS_BACKUP_RETENTION = Rule(
    "rds-backup-retention",
    "RDS keeps at least 7 days of automated backups outside dev.",
    (RDS, RDS_CLUSTER),
    _rds_retention,
)
RDS_PRODUCTION_PROTECTION = Rule(
    "rds-production-protection",
    "A production database (not a read replica: its data is the source's) has deletion protection and a "
    "final snapshot.",
    (RDS, RDS_CLUSTER),
    _rds_production_protection,
)
RDS_PRODUCTION_KEEPS_AUTOMATED_BACKUPS = Rule(
    "rds-production-keeps-automated-backups",
    "A production database (not a read replica) keeps its automated backups when it is deleted.",
    (RDS,),
    _rds_production_keeps_automated_backups,
)
