"""`leanstack:database`: RDS PostgreSQL, its backups, windows and protections."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from leanstack.config.fields import (
    LOG_RETENTION_DAYS,
    SCRATCH_DATABASE_PREFIX,
    Validated,
    default_max_connections,
    setting,
    shown,
)

# PostgreSQL major versions RDS offers that are not past end of standard support.
POSTGRES_MAJOR_VERSIONS = ("14", "15", "16", "17")
# RDS's time windows: hh24:mi in UTC, weekdays as RDS spells them (it refuses 24:00 and 25:00).
_HHMM = r"([01]\d|2[0-3]):[0-5]\d"
_WEEKDAY = r"(mon|tue|wed|thu|fri|sat|sun)"


def _check_db_class(value: Any) -> str | None:
    if default_max_connections(str(value)) is None:
        return (
            "a db.t*, db.m* or db.r* class of a size from micro to 24xlarge (the connections alarm's threshold "
            "comes from the class's memory)"
        )
    return None


def _check_pg_version(value: Any) -> str | None:
    major = str(value).split(".")[0]
    if re.fullmatch(r"\d+(\.\d+)?", str(value)) and major in POSTGRES_MAJOR_VERSIONS:
        return None
    return f"one of {', '.join(POSTGRES_MAJOR_VERSIONS)} (or a minor version of one, such as 17.4)"


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    week = 10080
    return any(a_start + shift < b_end and b_start < a_end + shift for shift in (-week, 0, week))


@dataclass(frozen=True)
class AwsBackupArgs(Validated):
    """RDS restores proven: the instance under an AWS Backup plan, copied off-site, restored monthly as a test."""

    enabled: bool = setting(
        False,
        doc="Put the RDS instance under an AWS Backup plan: continuous backup (point-in-time, "
        "backupRetentionDays) and daily snapshots, each copied to a vault in backup.region locked like the "
        "backup bucket, and a monthly AWS Backup restore test of the newest snapshot (result to the ticket "
        "topic, a failure alarmed). Costs the snapshots' storage there and here, and one test restore a month.",
    )
    snapshot_days: int = setting(
        35, doc="Days the daily snapshots are kept, here and (at least backup.objectLockDays) in the copy.", min=7,
        max=3650,
    )  # fmt: skip


@dataclass(frozen=True)
class DatabaseArgs(Validated):
    """RDS PostgreSQL in the private subnets."""

    identifier: str = setting(
        "",
        doc="RDS instance identifier; empty means leanstack-<stack>. Changing it replaces the database.",
        pattern=r"([a-z][a-z0-9-]{0,62})?",
        allowed="lower-case letters, digits and '-', starting with a letter, at most 63",
    )
    engine_version: str = setting(
        "17",
        doc="PostgreSQL major version (or a minor one such as 17.4); its parameter group family is "
        "postgres<major>, so a major change brings a new parameter group.",
        check=_check_pg_version,
    )
    instance_class: str = setting(
        "db.t4g.micro",
        doc="RDS instance class.",
        pattern=r"db\.[a-z0-9]+\.[a-z0-9]+",
        allowed="an RDS instance class starting with 'db.', such as db.t4g.micro",
        check=_check_db_class,
    )
    allocated_storage_gb: int = setting(20, doc="Initial gp3 storage in GiB.", min=20, max=65536)
    max_allocated_storage_gb: int = setting(
        100, doc="Storage autoscaling ceiling in GiB (must exceed allocatedStorageGb).", min=21, max=65536
    )
    multi_az: bool = setting(False, doc="A standby in the second AZ with automatic failover (doubles cost).")
    read_replicas: int = setting(
        0,
        doc="Read replicas, each with its own endpoint, for reads that may lag a few seconds; each costs "
        "what the primary's class costs Single-AZ. Adding or removing one never touches the primary.",
        min=0,
        max=5,
    )
    replica_multi_az: bool = setting(False, doc="Give each read replica a standby in another AZ (doubles its cost).")
    backup_retention_days: int = setting(
        7, doc="Days of RDS automated backups (point-in-time recovery window).", min=1, max=35
    )
    cross_region_backups: bool = setting(
        False,
        doc="Replicate RDS automated backups (snapshots and transaction logs, backupRetentionDays kept) to "
        "backup.region, for point-in-time recovery there when the stack's region is down: a recovery point of "
        "minutes instead of the last off-site dump. Costs the backup storage there (per GB-month) and its "
        "transfer between regions, both priced in the plan. Same account only (RDS does not replicate to another "
        "account).",
    )
    aws_backup: AwsBackupArgs = setting(
        AwsBackupArgs(),
        doc="Opt-in AWS Backup plan for the instance, copied to backup.region and restore-tested monthly: "
        "{enabled: true}.",
    )
    deletion_protection: bool = setting(True, doc="RDS refuses to delete the instance while on.")
    final_snapshot: bool = setting(
        True, doc="Take a final snapshot, named leanstack-<stack>-final, when the instance is deleted."
    )
    protect: bool = setting(True, doc="Pulumi `protect`: `pulumi destroy` and replacements are refused.")
    database_name: str = setting(
        "app",
        doc="Database created on the instance; not starting with leanstack_ (the host tools' scratch databases). "
        "Changing it replaces the database.",
        pattern=r"[a-z][a-z0-9_]{0,62}",
        allowed="lower-case letters, digits and '_', starting with a letter",
        check=lambda v: (
            f"a name not starting with {SCRATCH_DATABASE_PREFIX} (the host tools name their scratch databases so)"
            if str(v).startswith(SCRATCH_DATABASE_PREFIX)
            else None
        ),
    )
    username: str = setting(
        "app",
        doc="Master user name; its password is managed by RDS in Secrets Manager. Changing it replaces the database.",
        pattern=r"[a-z][a-z0-9_]{0,15}",
        allowed="lower-case letters, digits and '_', starting with a letter, at most 16",
    )
    maintenance_window: str = setting(
        "sun:04:00-sun:05:00",
        doc="Weekly maintenance window, UTC (ddd:hh:mm-ddd:hh:mm).",
        pattern=f"{_WEEKDAY}:{_HHMM}-{_WEEKDAY}:{_HHMM}",
        allowed="ddd:hh:mm-ddd:hh:mm in UTC, such as sun:04:00-sun:05:00",
    )
    backup_window: str = setting(
        "02:00-03:00",
        doc="Daily RDS backup window, UTC (hh:mm-hh:mm); must not overlap the maintenance window.",
        pattern=f"{_HHMM}-{_HHMM}",
        allowed="hh:mm-hh:mm in UTC, such as 02:00-03:00",
    )
    slow_query_ms: int = setting(
        500,
        doc="Log statements slower than this (log_min_duration_statement); -1 disables.",
        min=-1,
        max=600000,
    )
    log_retention_days: int = setting(
        30,
        doc="Days CloudWatch keeps the exported PostgreSQL logs.",
        check=lambda v: None if v in LOG_RETENTION_DAYS else f"one of {LOG_RETENTION_DAYS}",
    )

    def section_problem(self) -> tuple[str, str] | None:
        """The first rule across this section's own fields that fails: (field, message), or None."""
        if self.max_allocated_storage_gb <= self.allocated_storage_gb:
            return (
                "max_allocated_storage_gb",
                f"got {self.max_allocated_storage_gb}; "
                f"expected more than allocatedStorageGb ({self.allocated_storage_gb})",
            )
        start, end = (_minutes(t) for t in self.backup_window.split("-"))
        if (end - start) % 1440 < 30:
            return (
                "backup_window",
                f"got {shown(self.backup_window)}; expected a window of at least 30 minutes",
            )
        # Both windows in minutes of the week, to reject an overlap RDS would refuse at apply time.
        days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        m_start_s, m_end_s = self.maintenance_window.split("-")
        m_start = days.index(m_start_s[:3]) * 1440 + _minutes(m_start_s[4:])
        m_end = days.index(m_end_s[:3]) * 1440 + _minutes(m_end_s[4:])
        if (m_end - m_start) % 10080 < 30:
            return (
                "maintenance_window",
                f"got {shown(self.maintenance_window)}; expected a window of at least 30 minutes",
            )
        for day in range(7):
            b_start = day * 1440 + start
            b_end = b_start + (end - start) % 1440
            if _overlaps(b_start, b_end, m_start, m_start + (m_end - m_start) % 10080):
                return (
                    "backup_window",
                    f"got {shown(self.backup_window)}; it overlaps maintenanceWindow {shown(self.maintenance_window)}",
                )
        return None
