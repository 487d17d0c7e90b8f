"""The facts the recovery sheet states: names, regions, commands, read from the program's resources and the config.

Everything the sheet prints that depends on the stack is computed here, once; the prose lives in templates/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import leanstack.config.resource_types as resource_types
from leanstack.config import StackConfig
from leanstack.host.agent.contract import APP_COMMAND, APP_UNIT_TEMPLATE
from leanstack.mocks import StackRun

ALARM = resource_types.CLOUDWATCH_METRIC_ALARM.token
RDS_INSTANCE = resource_types.RDS_INSTANCE.token
EC2_INSTANCE = resource_types.EC2_INSTANCE.token
SECURITY_GROUP = resource_types.EC2_SECURITY_GROUP.token
S3_BUCKET = resource_types.S3_BUCKET.token
SSM_PARAMETER = resource_types.SSM_PARAMETER.token
STATEFUL_TYPES = {token: entry.stateful for token, entry in resource_types.TYPES.items() if entry.stateful}


class RunbookError(ValueError):
    """The program and this sheet disagree (e.g. an alarm links to a section that does not exist)."""


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower-case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def real_urn(urn: str) -> str:
    """The URN Pulumi gives a resource: the offline run also names the root stack in a child's type chain."""
    return urn.replace("::pulumi:pulumi:Stack$", "::")


# Where the drill restores, by backup.drillTarget.
DRILL_TARGETS = {
    "local": "into a throw-away PostgreSQL on the host, off production",
    "instance": "into a marked scratch database on the RDS instance, which needs free storage the size of the database",
    "url": "on the drill server of backup.drillDatabaseUrl",
}

RESTORE_COMMAND = "leanstack-restore"
DRILL_COMMAND = "leanstack-restore-drill"
MAINTENANCE_COMMAND = "leanstack-maintenance"
BACKUP_COMMAND = "leanstack-backup"
APP_TOOL = APP_COMMAND.name
# The app's systemd units, one per blue/green port (leanstack-app@<port>.service), as journalctl matches them.
APP_UNIT_GLOB = APP_UNIT_TEMPLATE.replace("@.service", "@*")
# The section every branch links to before its first `pulumi` command.
BEFORE_PULUMI = "Before any pulumi step"

LAPTOP = "laptop"
HOST = "host"
WHERE = {LAPTOP: "your laptop", HOST: "the host"}
# Who decides when `leanstack:owner` is empty, and where the secrets are when no password manager is named.
NO_OWNER = "nobody yet (set `leanstack:owner` before you need it); meanwhile, whoever is on call"
NO_PASSWORD_MANAGER = "the password manager; where: not written down, set recovery.credentials.passwordManager"


@dataclass(frozen=True)
class RecoveryFacts:
    """What the recovery steps name, read from the program's resources and the config."""

    stack: str
    region: str
    backup_region: str
    database_identifier: str
    database_name: str
    instance_class: str
    multi_az: bool
    max_allocated_storage: int
    retention_days: int
    backup_window: str
    log_exports: tuple[str, ...]
    subnet_group: str
    parameter_group: str
    security_group: str
    final_snapshot: str  # "" when the stack takes none
    keeps_automated_backups: bool
    instance_urn: str
    database_urn: str
    provider_urn: str
    host_urn: str  # the one host's instance; "" when scaled out (the groups own the hosts)
    host_dependents: tuple[tuple[str, str], ...]  # (type, name) of what names the host: updated when it is new
    bucket_name: str  # "" when AWS picks the suffix: then bucket_prefix
    bucket_prefix: str
    bucket_profile: str  # " --profile NAME" for a second account, else ""
    backup_prefix: str
    host_filters: str
    site_health_url: str
    alarm_prefix: str  # every alarm of the stack is named with it
    alarm_regions: tuple[str, ...]  # where the stack's alarms live (us-east-1 too, for the site-down alarm)

    @property
    def bucket_label(self) -> str:
        return self.bucket_name or f"{self.bucket_prefix}<random suffix>"

    @property
    def find_bucket(self) -> list[str]:
        if self.bucket_name:
            return [f"BUCKET={self.bucket_name}"]
        return [
            f"BUCKET=$(aws s3api list-buckets --region {self.backup_region}{self.bucket_profile} "
            f"--query \"Buckets[?starts_with(Name, '{self.bucket_prefix}')].Name | [0]\" --output text)"
        ]

    @property
    def open_shell(self) -> list[str]:
        return [
            f"HOST=$(aws ec2 describe-instances --region {self.region} --filters {self.host_filters} "
            "Name=instance-state-name,Values=running --query 'Reservations[0].Instances[0].InstanceId' --output text)",
            f'aws ssm start-session --region {self.region} --target "$HOST"',
        ]

    @property
    def find_security_group(self) -> str:
        return (
            f"SG=$(aws ec2 describe-security-groups --region {self.region} --filters "
            f"Name=group-name,Values={self.security_group} --query 'SecurityGroups[0].GroupId' --output text)"
        )

    def restore_options(self, point_in_time: bool) -> list[str]:
        """The options that give a restored instance the stack's settings (what the restore APIs accept).

        RestoreDBInstanceFromDBSnapshot has no MaxAllocatedStorage: the storage ceiling comes back with
        the `pulumi up` that adopts the instance (an in-place update the preview guide expects).
        """
        options = [
            f"--db-instance-class {self.instance_class} --db-subnet-group-name {self.subnet_group}",
            f'--vpc-security-group-ids "$SG" --db-parameter-group-name {self.parameter_group}',
            f"--{'' if self.multi_az else 'no-'}multi-az --storage-type gp3 --no-publicly-accessible "
            "--deletion-protection --copy-tags-to-snapshot",
            f"--enable-cloudwatch-logs-exports {' '.join(self.log_exports)} --manage-master-user-password",
            f"--backup-retention-period {self.retention_days} --preferred-backup-window {self.backup_window}"
            + (f" --max-allocated-storage {self.max_allocated_storage}" if point_in_time else ""),
        ]
        return options


def recovery_facts(run: StackRun, config: StackConfig) -> RecoveryFacts:
    primary = next(r for r in run.of_type(RDS_INSTANCE) if not r.inputs.get("replicateSourceDb"))
    inputs = primary.inputs
    identifier = str(inputs["identifier"])
    group = next(
        (r for r in run.of_type(SECURITY_GROUP) if r.component == "Database"),
        None,
    )
    bucket = next(r for r in run.of_type(S3_BUCKET) if r.component == "BackupBucket")
    host = next((r for r in run.of_type(EC2_INSTANCE) if r.component == "ProxyHost"), None)
    host_filters = f"Name=tag:Name,Values={config.name_prefix}-host"
    if config.hosts.scaled:
        host_filters += " Name=tag:Role,Values=jobs"
    profile = f" --profile {config.backup.profile}" if config.backup.profile else ""
    return RecoveryFacts(
        stack=config.stack,
        region=config.region,
        backup_region=config.backup.region,
        database_identifier=identifier,
        database_name=str(inputs.get("dbName") or config.database.database_name),
        instance_class=str(inputs["instanceClass"]),
        multi_az=inputs.get("multiAz") is True,
        max_allocated_storage=int(inputs.get("maxAllocatedStorage") or 0),
        retention_days=int(inputs.get("backupRetentionPeriod") or 0),
        backup_window=str(inputs.get("backupWindow") or ""),
        log_exports=tuple(str(x) for x in inputs.get("enabledCloudwatchLogsExports") or ()),
        subnet_group=str(inputs.get("dbSubnetGroupName") or identifier),
        parameter_group=str(inputs.get("parameterGroupName") or ""),
        security_group=str(group.inputs.get("name")) if group is not None else f"{identifier}-db",
        final_snapshot=str(inputs.get("finalSnapshotIdentifier") or "") if not inputs.get("skipFinalSnapshot") else "",
        keeps_automated_backups=inputs.get("deleteAutomatedBackups") is False,
        instance_urn=primary.urn,
        database_urn=primary.parent,
        provider_urn=primary.provider,
        host_urn=real_urn(host.urn) if host is not None else "",
        host_dependents=tuple(
            sorted((r.type, r.name) for r in run.resources if host is not None and host.urn in r.dependencies)
        ),
        bucket_name=str(bucket.inputs.get("bucket") or ""),
        bucket_prefix=str(bucket.inputs.get("bucketPrefix") or ""),
        bucket_profile=profile,
        backup_prefix=config.backup.prefix,
        host_filters=host_filters,
        site_health_url=f"https://{config.hostnames[0]}{config.app.health_path}",
        alarm_prefix=f"{config.name_prefix}-",
        alarm_regions=tuple(sorted({a.region for a in run.of_type(ALARM) if a.region} or {config.region})),
    )
