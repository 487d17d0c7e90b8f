"""The recovery sheet: one Markdown page per stack, generated from the program and its config.

`render_runbook(stack)` runs the real program offline (`leanstack.mocks`) with
stacks/Pulumi.<stack>.yaml and writes down what someone woken at 3 a.m. needs: what runs
where, what it costs and who owns it, the recovery targets and how the stack meets them,
where the backups are and the exact commands to restore them, how to roll back an
infrastructure change, what every alarm means and what to check first, who can get in and
where the secrets live. `runbook_markdown(run, config)` does the same for a run already made.

The output is deterministic (no timestamps, sorted) and never contains a secret value: it
names where secrets live, never what they are. Commands use `pulumi stack output <name>`
rather than pasted values, so the sheet stays right after a host is replaced.

Alarm sections are keyed by the anchor each alarm's description links to ("Runbook:
#site-down"); an alarm whose anchor has no section here is an error, so the descriptions
and this sheet cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import leanstack.config.resource_types as resource_types
from leanstack.config import StackConfig, backup_interval_hours, load_stack_config
from leanstack.config.naming import stack_prefix
from leanstack.config.sections import STATE_URL_RE
from leanstack.host.agent.contract import APP_COMMAND, APP_UNIT_TEMPLATE, stack_backup_prefix
from leanstack.mocks import Resource, StackRun, read_stack_config, run_program
from leanstack.plan import build_plan
from leanstack.recover import recovery_stack

ALARM = resource_types.CLOUDWATCH_METRIC_ALARM.token
RDS_INSTANCE = resource_types.RDS_INSTANCE.token
EC2_INSTANCE = resource_types.EC2_INSTANCE.token
SECURITY_GROUP = resource_types.EC2_SECURITY_GROUP.token
S3_BUCKET = resource_types.S3_BUCKET.token
SSM_PARAMETER = resource_types.SSM_PARAMETER.token
STATEFUL_TYPES = {token: entry.stateful for token, entry in resource_types.TYPES.items() if entry.stateful}
ANCHOR_RE = re.compile(r"Runbook: #([a-z0-9-]+)")


class RunbookError(ValueError):
    """The program and this sheet disagree (e.g. an alarm links to a section that does not exist)."""


@dataclass(frozen=True)
class Service:
    component: str
    what: str


# What each component is, in the words of someone who has to fix it.
SERVICES: tuple[Service, ...] = (
    Service("Cdn", "Cloudflare in front of the site: DNS, TLS for visitors, caching of static files"),
    Service("ProxyHost", "the one EC2 host: nginx in front of the app, backup and restore-drill timers"),
    Service(
        "HostGroup",
        "scaled out: the hosts in Auto Scaling groups behind an Application Load Balancer; the one 'jobs' host "
        "runs the backup and restore-drill timers",
    ),
    Service("Database", "RDS PostgreSQL: the application's data"),
    Service("Cache", "ElastiCache (Valkey/Redis): a cache the app can rebuild"),
    Service("BackupBucket", "off-site, object-locked S3 bucket holding the daily database dumps"),
    Service("Alerts", "the SNS topic(s) every alarm emails"),
    Service("UptimeCheck", "Route 53 health check asking for the site through the CDN"),
    Service("Network", "the VPC: public subnets for the host, private ones for database and cache"),
    Service("OriginCertificate", "the Cloudflare origin certificate the host presents to Cloudflare"),
)

# The heading of each alarm section, keyed by the anchor the alarms' descriptions link to.
ALARM_HEADINGS: dict[str, str] = {
    "site-down": "Site down",
    "error-rate": "Error rate",
    "host-still-broken": "Host still broken",
    "unhealthy-targets": "Unhealthy targets",
    "load-balancer-errors": "Load balancer errors",
    "latency": "Latency",
    "database-connections-high": "Database connections high",
    "rds-restore-test-failed": "RDS restore test failed",
    "worker-crash-loop": "Worker crash loop",
    "database-storage-low": "Database storage low",
    "backup-stale": "Backup stale",
    "restore-drill-stale": "Restore drill stale",
    "restore-drill-failed": "Restore drill failed",
    "job-failed": "Job failed",
    "files-at-risk": "Files at risk",
}


def alarm_steps(run: StackRun, config: StackConfig) -> dict[str, list[str]]:
    """Deeper steps per alarm section, after the alarm's own description (what users feel, first check).

    Every command is pinned to the stack and region; every step on a host says how to open the session.
    """
    f = recovery_facts(run, config)
    stack, region, s = config.stack, config.region, f" --stack {config.stack}"
    session = f"open a session: `{f.open_shell[0]}` then `{f.open_shell[1]}`"
    app_unit = (
        f"the app: `sudo {APP_TOOL} status` (the serving image and port), its unit's log "
        f"`sudo journalctl -u '{APP_UNIT_GLOB}' -n 50 --no-pager`"
    )
    replace = (
        f"`pulumi up{s} --replace '{f.host_urn}'` (the host holds no state; the Elastic IP moves to the new one; "
        "before any `pulumi` step: [Before any pulumi step](#before-any-pulumi-step))"
    )
    health = f"curl -s -o /dev/null -w '%{{http_code}}\\n' http://127.0.0.1:PORT{config.app.health_path}"
    steps: dict[str, list[str]] = {
        "site-down": [
            "Open the URL in the alarm yourself. A Cloudflare 52x page: Cloudflare cannot reach the origin; "
            "a leanstack 502/504 page: nginx is up and the app is not.",
            f"Host running? `ID=$(pulumi stack output hostInstanceId{s}) && aws ec2 describe-instance-status "
            f'--region {region} --include-all-instances --instance-ids "${{ID:?no instance id: see Before any '
            'pulumi step}"`.',
            f"On the host ({session}): `sudo systemctl status nginx`, {app_unit}, and the app's health path "
            f"directly: `{health}` (PORT: the port `status` printed).",
            f"Host broken beyond repair: {replace}.",
            "If Cloudflare's checks are being challenged (bot protection), allow Route 53's health checkers.",
        ],
        "error-rate": [
            "CloudWatch Logs Insights on the access-log group: "
            "`filter status >= 500 | stats count() by uri, upstream_status | sort count desc`.",
            "A deploy in the last hour? Roll the app back first "
            f"(`python -m leanstack rollback {stack} --region {region}`), investigate after.",
            "502/504 from nginx with an empty upstream_status: the app is down or too slow (5 s health, "
            "60 s default timeout).",
            "Database errors in the app log "
            f"(`python -m leanstack logs {stack} --region {region} --since 1h`): check the database alarms and RDS "
            "events.",
        ],
        "host-still-broken": [
            "EC2 console > the instance > Status checks, and Actions > Monitor > Get system log.",
            f"Replace it: {replace}.",
        ],
        "unhealthy-targets": [
            "EC2 console > Target groups > the stack's group > Targets: the reason per host (timeout, 5xx, TLS).",
            f"On that host (open a session: `aws ssm start-session --region {region} --target <its instance id>`): "
            f"`sudo systemctl status nginx` and {app_unit}.",
            "The group should have replaced it: EC2 console > Auto Scaling groups > Activity says why not "
            "(capacity, a launch failure). A host that keeps failing after a deploy: roll the app back.",
            f"Replace one by hand: `aws autoscaling terminate-instance-in-auto-scaling-group --region {region} "
            "--instance-id <id> --no-should-decrement-desired-capacity`.",
        ],
        "load-balancer-errors": [
            "503 from the load balancer: no healthy host. Check the target group's healthy count and "
            "[Unhealthy targets](#unhealthy-targets).",
            "502: a host refused the connection or the TLS handshake (nginx down, certificate not fetched): on "
            f"each host (open a session: `aws ssm start-session --region {region} --target <its instance id>`), "
            "`sudo journalctl -u nginx -n 50 --no-pager`.",
            "504: hosts too slow (the app or the database); check the database alarms and the app's log.",
        ],
        "latency": [
            f"Open the stack's dashboard (CloudWatch > Dashboards > leanstack-{stack}, region {region}): p95 next to "
            "database CPU and connections says whether the database is the bottleneck.",
            "Which requests: CloudWatch Logs Insights on the access-log group: "
            "`filter request_time > 1 | stats count(), pct(request_time, 95) by uri | sort count desc`.",
            "Slow statements: the PostgreSQL log group (statements over `database.slowQueryMs` are logged).",
            "A deploy in the last hour (the dashboard's container starts)? Roll the app back first "
            f"(`python -m leanstack rollback {stack} --region {region}`).",
        ],
        "database-connections-high": [
            "Who holds them: `SELECT application_name, state, count(*) FROM pg_stat_activity GROUP BY 1, 2 "
            "ORDER BY 3 DESC;` (many `idle in transaction`: a leak in the app).",
            "The real limit: `SHOW max_connections;` (the alarm's figure is estimated from the class's memory).",
            f"Relief now: restart the app (`python -m leanstack restart {stack} --region {region}`) to drop leaked "
            "connections; lasting: a smaller pool per process, a pooler, or a larger `database.instanceClass`.",
        ],
        "rds-restore-test-failed": [
            "AWS Backup console > Jobs > Restore jobs: the failed job's status message (a subnet group or security "
            "group it could not use, a snapshot that would not restore).",
            "Restore testing > the stack's plan: the last runs; start one by hand from a recovery point there to "
            "check the fix.",
            "Until a test passes, count on the off-site dumps (the restore drill) for recovery.",
        ],
        "worker-crash-loop": [
            f"Why it exits: `python -m leanstack logs {stack} --region {region} --filter worker-` (each process "
            "copy logs to its own stream, worker-<name>-<n>).",
            f"A deploy just went out? Roll the app back (`python -m leanstack rollback {stack} --region {region}`); "
            "the queue keeps the jobs meanwhile (the cache's noeviction).",
            f"On the jobs host ({session}): `sudo systemctl status 'leanstack-process-*'` and "
            "`sudo journalctl -u 'leanstack-process-*' -n 50 --no-pager`.",
        ],
        "database-storage-low": [
            "RDS console > the database > Monitoring > Free storage space.",
            f"At the autoscaling ceiling? Raise `leanstack:database.maxAllocatedStorageGb` and `pulumi up{s}` "
            "(its preview updates `database-instance` in place, `~`; a replace is a stop).",
            "Otherwise find what grew: `SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) FROM pg_class "
            "ORDER BY pg_total_relation_size(oid) DESC LIMIT 10;`",
        ],
        "backup-stale": [
            f"On the host ({session}): `sudo systemctl status leanstack-backup.timer leanstack-backup.service` and "
            "`sudo journalctl -u leanstack-backup --since -2d --no-pager`: the last line says why it failed.",
            "Run one now: `sudo systemctl start leanstack-backup` and watch the journal.",
            "Host gone or replaced? The alarm also fires when nothing reports: check the host first.",
        ],
        "restore-drill-stale": [
            f"On the host ({session}): `sudo systemctl list-timers leanstack-restore-drill.timer`.",
            "Run one now: `sudo leanstack-restore-drill` (it prints the recovery time and the backup's age).",
        ],
        "restore-drill-failed": [
            f"On the host ({session}): `sudo journalctl -u leanstack-restore-drill -n 50 --no-pager`: the one-line "
            "reason (checksum, row counts, verification SQL).",
            "Fix the cause, then `sudo leanstack-restore-drill` until it passes: until then, treat the newest "
            "backups as unproven and keep RDS's own snapshots.",
        ],
        "job-failed": [
            "Which job: CloudWatch > Metrics > the stack's namespace > Stack, Job > JobFailure (the job with a 1).",
            f"Why: `python -m leanstack logs {stack} --region {region} --since 1d --filter job-<name>` (its "
            "container's output).",
            f"Run it again once fixed: on the jobs host ({session}), `sudo {APP_TOOL} job <name>` (a run still going "
            f"makes it skip), or from your laptop `python -m leanstack run {stack} --region {region} -- "
            "<its command>`.",
        ],
        "files-at-risk": [
            "New uploads are not reaching the off-site replica: `aws s3api head-object --region "
            f"{region} --bucket <uploadsBucket> --key <a recent key>` shows `ReplicationStatus` (FAILED, or PENDING "
            "for over an hour).",
            f"FAILED: the replication role (`leanstack-{stack}-uploads-replication`) or the replica's bucket policy "
            f"was changed by hand, or the backup account's provider lost access; `pulumi preview --diff{s}` shows "
            "the drift.",
            "Files written while it failed are not replicated on their own once it is fixed: copy them with S3 "
            "Batch Replication (S3 console > the uploads bucket > Replication > Create Batch Operations job).",
        ],
    }
    if config.hosts.scaled:
        # Scaled out, the hosts sit behind a load balancer and the groups replace them.
        steps["site-down"] = [
            "Open the URL in the alarm yourself. A Cloudflare 52x page: Cloudflare cannot reach the load balancer; "
            "a 503 from the load balancer: no healthy host; a leanstack 502/504 page: nginx is up and the app is not.",
            "Hosts healthy? EC2 console > Target groups > the stack's group > Targets, and "
            "[Unhealthy targets](#unhealthy-targets) if that alarm fired too.",
            f"On a host (open a session: `aws ssm start-session --region {region} --target <its instance id>`): "
            f"`sudo systemctl status nginx`, {app_unit}.",
            "Every host broken by one change (a deploy, a new AMI): roll back; the group replaces hosts on its own "
            "once they pass the health check again.",
            "If Cloudflare's checks are being challenged (bot protection), allow Route 53's health checkers.",
        ]
    return steps


# --------------------------------------------------------------------------- helpers


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower-case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _component_costs(run: StackRun) -> Callable[[str], str]:
    """Monthly cost per component, from the priced plan (`leanstack.cost`'s list prices)."""
    components: dict[str, Any] = build_plan(run)["cost"]["components"]

    def lookup(component: str) -> str:
        entry = components.get(component)
        if not entry:
            return "see `python -m leanstack plan`"
        text = f"${entry['monthly']:,.2f}"
        return text + (" + usage not priced" if entry.get("notPriced") else "")

    return lookup


def _alarms(run: StackRun) -> list[Resource]:
    return sorted(run.of_type(ALARM), key=lambda r: str(r.inputs.get("name", r.name)))


def alarm_anchor(alarm: Resource) -> str | None:
    match = ANCHOR_RE.search(str(alarm.inputs.get("alarmDescription", "")))
    return match.group(1) if match else None


def _physical(resource: Resource) -> str:
    """The name the resource has in AWS, from the inputs only (the mocks invent the rest)."""
    for key in ("identifier", "bucket", "replicationGroupId"):
        value = resource.inputs.get(key)
        if isinstance(value, str) and value:
            return value
    prefix = resource.inputs.get("bucketPrefix")
    if isinstance(prefix, str) and prefix:
        return f"{prefix}<random suffix>"
    return resource.name


# --------------------------------------------------------------------------- sections


def _host_target(config: StackConfig) -> str:
    """The instance id to open a shell on: the one host, or, scaled out, the jobs host (it runs the backups)."""
    s = f" --stack {config.stack}"
    if not config.hosts.scaled:
        return f"$(pulumi stack output hostInstanceId{s})"
    return (
        f"$(aws autoscaling describe-auto-scaling-groups --region {config.region} --auto-scaling-group-names "
        f"$(pulumi stack output hostJobsGroup{s}) --query 'AutoScalingGroups[0].Instances[0].InstanceId' "
        "--output text)"
    )


def _services(run: StackRun, config: StackConfig) -> list[str]:
    present = {r.component for r in run.resources}
    cost = _component_costs(run)
    rows = []
    for service in SERVICES:
        if service.component not in present:
            continue
        regions = sorted({r.region for r in run.resources if r.component == service.component and r.region})
        where = ", ".join(regions) or (
            "Cloudflare (global)" if service.component in ("Cdn", "OriginCertificate") else "global"
        )
        if service.component == "UptimeCheck":
            where = "Route 53 (global), alarm in " + ", ".join(regions)
        rows.append([service.component, service.what, where, cost(service.component), config.owner or "(not set)"])
    return ["## Services", "", *_table(["Service", "What it is", "Where it runs", "Monthly cost", "Owner"], rows), ""]


def _targets(config: StackConfig) -> list[str]:
    rto, rpo = config.recovery.rto_minutes, config.recovery.rpo_hours
    interval = backup_interval_hours(config.backup.backup_calendar)
    every = f"every {interval:g} h" if interval is not None else f"on `{config.backup.backup_calendar}`"
    lines = ["## Recovery targets", ""]
    lines.append(f"- **RTO** (time to serve again): {f'{rto} minutes' if rto else 'not set (not production)'}.")
    lines.append(f"- **RPO** (data you may lose): {f'{rpo} hours' if rpo else 'not set (not production)'}.")
    lines += [
        "",
        "How the stack meets them:",
        "",
        f"- **Recovery point**: `leanstack-backup` streams a dump off-site {every} "
        f"(`{config.backup.backup_calendar}` UTC), so the worst case loses one interval plus the time a backup "
        f"takes; the config check refuses an RPO tighter than that. The *backup stale* alarm fires after "
        f"{config.alerts.backup_stale_hours} h without a good backup. Inside the region, RDS point-in-time "
        f"recovery ({config.database.backup_retention_days} day(s) kept) loses about 5 minutes.",
        f"- **Recovery time**: the restore drill (`{config.backup.drill_calendar}` UTC, and on demand) restores the "
        "newest backup into a scratch database and publishes how long it took as `RestoreDrillDurationSeconds` "
        f"(namespace `Leanstack`, dimension `Stack={config.stack}`): that number plus a new host's boot (minutes) "
        "and a DNS-free cut-over ("
        + ("the load balancer" if config.hosts.scaled else "the Elastic IP")
        + " and Cloudflare stay) is the recovery time to compare with the RTO.",
        "",
    ]
    return lines


def _backups(run: StackRun, config: StackConfig) -> list[str]:
    facts = recovery_facts(run, config)
    b = config.backup
    final = (
        f"- **Final snapshot**: RDS takes `{facts.final_snapshot}` when the instance is deleted; it stays until "
        "someone deletes it."
        if facts.final_snapshot
        else "- **Final snapshot**: none (`database.finalSnapshot` is off in this stack)."
    )
    kept = (
        "kept after the instance is deleted, for their retention period"
        if facts.keeps_automated_backups
        else "deleted with the instance (not production)"
    )
    folder = f"{stack_backup_prefix(b.prefix, config.stack)}/{facts.database_name}"
    return [
        "## Backups: where they live",
        "",
        f"- **Off-site dumps**: S3 bucket `{facts.bucket_label}` in {b.region}, under "
        f"`{folder}/<UTC time>.dump`, each with a `.manifest.json` (sha256, size, row "
        f"counts). Object Lock {b.object_lock_mode} for {b.object_lock_days} days: nobody can delete them early"
        f"{' (not even root)' if b.object_lock_mode == 'COMPLIANCE' else ''}; nobody can write over one (the bucket "
        f"refuses a write without If-None-Match); expired after {b.expire_after_days} days.",
        f"- **RDS automated backups**: {config.database.backup_retention_days} day(s) of point-in-time recovery in "
        f"{config.region}, same account; {kept}.",
        final,
        "",
        "The newest complete backups (a dump counts once its manifest exists), from your laptop:",
        "",
        "```sh",
        *facts.find_bucket,
        f'aws s3 ls "s3://$BUCKET/{folder}/" --region {b.region}{facts.bucket_profile} | grep manifest.json | tail -3',
        "```",
        "",
        f"Prove the newest one restores, on the host (`{DRILL_COMMAND}`: restores it {DRILL_TARGETS[b.drill_target]}, "
        "checks it, throws it away, and prints the restore time and the backup's age):",
        "",
        "```sh",
        *facts.open_shell,
        f"sudo {DRILL_COMMAND}",
        "```",
        "",
    ]


# --------------------------------------------------------------------------- recovery

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


@dataclass(frozen=True)
class Step:
    """One numbered step: what and why, where it runs, its commands, and how to check it worked.

    `only` marks a conditional step ("when you copy rows back"): it is rendered first, in bold, so
    nobody runs a step of the path they did not take. `opens_session` marks the step that opens the
    SSM session every following step on the host runs in.
    """

    text: str
    where: str = ""
    commands: tuple[str, ...] = ()
    check: str = ""
    check_commands: tuple[str, ...] = ()
    # What the step's `pulumi preview` must (not) look like, as diff lines: "fine" or "STOP".
    preview: tuple[str, ...] = ()
    only: str = ""
    opens_session: bool = False


@dataclass(frozen=True)
class Branch:
    """One answer to "what is gone?": symptoms, what is lost, numbered steps, how to undo the switch.

    `keeps` names what the undo needs (a side table, the old instance): no step drops one of them
    unless it is marked conditional on being sure.
    """

    heading: str
    symptoms: str
    loses: str
    steps: tuple[Step, ...]
    undo: tuple[str, ...] = ()
    keeps: tuple[str, ...] = ()

    @property
    def anchor(self) -> str:
        return github_anchor(self.heading)


def preview_line(sign: str, type_: str, name: str, operation: str, note: str) -> str:
    """One line of an expected preview, in the columns `pulumi preview` prints (sign, type, name, operation)."""
    return f"{sign:<2}{type_ + ' ':<31}{name + ' ':<20}{operation + ' ':<10}{note}"


def _host_previews(f: RecoveryFacts, sign: str, operation: str, note: str) -> tuple[str, ...]:
    """A new host: it is created or replaced, what names it is updated, and the data is never touched."""
    return (
        preview_line(sign, EC2_INSTANCE, "host-instance", operation, note),
        *(preview_line("~", t, n, "update", "fine: names the new host") for t, n in f.host_dependents),
        preview_line("+-", RDS_INSTANCE, "database-instance", "replace", "STOP: never for a host"),
        preview_line("-", S3_BUCKET, "...", "delete", "STOP: never for a host"),
    )


def _health_check(f: RecoveryFacts) -> tuple[str, ...]:
    return (f"curl -sS -o /dev/null -w '%{{http_code}}\\n' {f.site_health_url}   # 200",)


def _shell_step(f: RecoveryFacts, only: str = "") -> Step:
    return Step(
        "Open a session on the host (SSM: no SSH, no key); the steps *on the host* below run in it.",
        LAPTOP,
        tuple(f.open_shell),
        check="the prompt changes to the host's (`sh-5.2$`); `Target not connected` or `None`: the host is not "
        "running, see [Host gone](#host-gone).",
        only=only,
        opens_session=True,
    )


BEFORE_PULUMI_LINK = f"first, once per shell: [{BEFORE_PULUMI}](#{github_anchor(BEFORE_PULUMI)})"


def _closing_steps(f: RecoveryFacts, config: StackConfig, regions: tuple[str, ...] = ()) -> tuple[Step, ...]:
    """Every branch ends here: no alarm of the stack left firing, and the owner told."""
    second = config.recovery.second_person
    return (
        Step(
            "Make sure every alarm of the stack is back to OK (the site-down alarm needs "
            f"{config.alerts.site_down_minutes} minutes of good answers to clear: run it again then).",
            LAPTOP,
            tuple(
                f"aws cloudwatch describe-alarms --region {region} --alarm-name-prefix {f.alarm_prefix} "
                "--state-value ALARM --query 'MetricAlarms[].AlarmName' --output text"
                for region in (regions or f.alarm_regions)
            ),
            check="each command prints nothing; an alarm still listed: go to its section under [Alarms](#alarms).",
        ),
        Step(
            f"Tell the owner, {config.owner or NO_OWNER}"
            + (f", and the second person, {second}" if second else "")
            + ": what happened and when, what was lost (the branch's *Data lost*, in minutes or rows), what you "
            "ran, and what is left to clean up. Write the same in the incident notes.",
            check="they answered that they read it.",
        ),
    )


def recovery_branches(run: StackRun, config: StackConfig) -> list[Branch]:
    """The recovery branches of the sheet, in triage order."""
    f = recovery_facts(run, config)
    s = f" --stack {config.stack}"
    branches = [
        _rows_deleted(f, config),
        _database_dropped(f, config),
        _instance_deleted(f, config, s),
        _host_gone(f, config, s),
        _region_down(f, config, s),
    ]
    return [
        dataclasses.replace(b, steps=b.steps + _closing_steps(f, config, _branch_regions(b, f, config)))
        for b in branches
    ]


def _branch_regions(branch: Branch, f: RecoveryFacts, config: StackConfig) -> tuple[str, ...]:
    """Where the branch's closing alarm check looks: region down, the recovery stack's regions."""
    if branch.heading != "Region down":
        return f.alarm_regions
    return tuple(sorted({config.backup.region, *(r for r in f.alarm_regions if r != f.region)}))


BRANCH_NAMES = (
    "rows-deleted-or-corrupted",
    "app-database-dropped",
    "instance-deleted",
    "host-gone",
    "region-down",
)

# What `python -m leanstack db restore` is: RDS point-in-time recovery into a new instance beside the current one.
DB_RESTORE = "python -m leanstack db restore"


def _rows_deleted(f: RecoveryFacts, config: StackConfig) -> Branch:
    b = config.backup
    db = f.database_name
    folder = f"{stack_backup_prefix(b.prefix, config.stack)}/{db}"
    stack, region = config.stack, config.region
    copy, swap, dump = "when you copy rows back", "when you swap the whole database", "when point-in-time is out"
    sure = "when you merged rows back and are sure of the merge"
    psql_env = (
        "sudo -i",
        "set -a; . /etc/leanstack/backup.env; set +a   # names only, no secrets",
        'eval "$(leanstack-backup database-env)"   # where the database is now (no password)',
        'export PGPASSWORD=$(aws secretsmanager get-secret-value --region "$AWS_REGION" '
        '--secret-id "$DATABASE_SECRET_ARN" --query SecretString --output text '
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"password\"])')",
        'export PGPORT="$DATABASE_PORT" PGUSER="$DATABASE_USER" PGSSLMODE=require',
    )
    merge = (
        f'psql -h "$DATABASE_HOST" -d {db} -v ON_ERROR_STOP=1 '
        '-c "CREATE TABLE restored_rows (LIKE TABLE INCLUDING ALL)" '
        "-c \"\\copy restored_rows FROM '/tmp/rows.csv' CSV\"",
        "shred -u /tmp/rows.csv   # customer rows: never leave them on the host",
        f'psql -h "$DATABASE_HOST" -d {db}   # BEGIN; INSERT INTO TABLE SELECT * FROM restored_rows ON CONFLICT DO '
        "NOTHING; check; COMMIT;",
    )
    merge_check = (
        "count the rows you expected back before COMMIT (ROLLBACK leaves the live data as it was), and "
        "`ls /tmp/rows.csv` answers `No such file or directory`."
    )
    steps = (
        Step(
            f"Stop the damage first: roll the app back (`python -m leanstack rollback {stack} --region {region}`) "
            "or stop the job that writes bad data. Find when the damage started, in UTC: the deploy's time in the "
            "releases, or the first bad request in the logs. T below is a minute before it.",
            LAPTOP,
            (
                f"python -m leanstack releases {stack} --region {region}",
                f"python -m leanstack logs {stack} --region {region} --since 1d --filter WORD   # WORD: the table, "
                "the route",
            ),
            check="you have written T down (`YYYY-MM-DD HH:MM:SS`, UTC) and nothing writes bad data any more.",
        ),
        Step(
            "The owner decides: copy back only the damaged rows (the default, and what to do when the owner cannot "
            "be reached within a quarter of the RTO: nothing is lost), or swap the whole database for its state at "
            f"T (everything written since T is lost). Point-in-time recovery reaches back "
            f"{f.retention_days} day(s); T older than that: the off-site dumps, the steps marked "
            f"*{dump}*. Restoring beside the live database is harmless, so step 3 can start while the owner "
            "decides.",
            check="the decision and who made it are in the incident notes.",
        ),
        Step(
            "Restore the database as it was at T into a new instance beside the current one (the current one is "
            "not touched; same subnet group, parameter group, security group, encryption and TLS). It waits until "
            "the new instance is available (10-30 minutes) and prints its identifier (RESTORED_INSTANCE) and endpoint "
            "(RESTORED_HOST below), and its own secret if it has one (use it for `--secret-id` then). The extra "
            "instance costs what the current one does while it exists.",
            LAPTOP,
            (f'{DB_RESTORE} {stack} --to "T"   # T: YYYY-MM-DD HH:MM:SS, UTC',),
            check="it ends printing the new instance's endpoint; an error has switched nothing: read its line.",
            only=copy,
        ),
        _shell_step(f, only=copy),
        Step(
            "Copy the damaged rows from the restored instance into a side table of the live database, then merge "
            "them in one transaction and look before you commit. TABLE and WHERE_CLAUSE are yours to fill in; "
            "the CSV holds customer rows, so it is shredded as soon as it is loaded.",
            HOST,
            (
                *psql_env,
                f'psql -h RESTORED_HOST -d {db} -c "\\copy (SELECT * FROM TABLE WHERE WHERE_CLAUSE) '
                "TO '/tmp/rows.csv' CSV\"",
                *merge,
            ),
            check=merge_check,
            only=copy,
        ),
        Step(
            f"Swap instead: restore to T and switch the app to the restored instance, with the maintenance page up "
            f"meanwhile. The current instance is kept (renamed, protected) for the undo the command prints; it "
            f"also prints how Pulumi adopts the new instance without replacing anything: run that step as printed "
            f"({BEFORE_PULUMI_LINK}).",
            LAPTOP,
            (f'{DB_RESTORE} {stack} --to "T" --swap',),
            preview=(
                "~ aws:rds/instance:Instance     database-instance   update    fine: the restored one adopted",
                "+-aws:rds/instance:Instance     database-instance   replace   STOP: a new, empty database",
                "+-aws:ec2/instance:Instance     host-instance       replace   STOP: no host is replaced here",
            ),
            check="it ends printing the undo line (copy it into the incident notes), the preview of its adoption "
            "step looks like the diff above, and the site answers 200:",
            check_commands=_health_check(f),
            only=swap,
        ),
        Step(
            "Find the newest off-site dump taken before T (its time is its name).",
            LAPTOP,
            (
                *f.find_bucket,
                f'aws s3 ls "s3://$BUCKET/{folder}/" --region {b.region}{f.bucket_profile} | grep manifest.json',
            ),
            check="a dump older than T is listed: STAMP is its name before `.manifest.json`.",
            only=dump,
        ),
        _shell_step(f, only=dump),
        Step(
            f"Restore that dump into a new database beside the live one on the same instance (the live one is not "
            f"touched), copy the damaged rows from it and merge them as above. `{RESTORE_COMMAND}` verifies the "
            "checksum while streaming, compares the row counts with the manifest and prints the restored "
            "database's name (RESTORED: `leanstack_restore_...`).",
            HOST,
            (
                f"sudo {RESTORE_COMMAND} --backup STAMP",
                *psql_env,
                'psql -h "$DATABASE_HOST" -d RESTORED -c "\\copy (SELECT * FROM TABLE WHERE WHERE_CLAUSE) '
                "TO '/tmp/rows.csv' CSV\"",
                *merge,
                'psql -h "$DATABASE_HOST" -d postgres -c "DROP DATABASE RESTORED"   # the copy, not the live one',
            ),
            check="the restore says the row counts match the manifest; then as above: " + merge_check,
            only=dump,
        ),
        _shell_step(f, only=sure),
        Step(
            "Clean up, once the owner agrees the merge is right (until then the undo needs it): drop the side table.",
            HOST,
            (*psql_env, f'psql -h "$DATABASE_HOST" -d {db} -c "DROP TABLE restored_rows"'),
            check="psql answers `DROP TABLE`.",
            only=sure,
        ),
        Step(
            "Delete the restored instance step 3 made (RESTORED_INSTANCE: the identifier it printed); it costs "
            "money while it exists.",
            LAPTOP,
            (
                f"aws rds modify-db-instance --region {region} --db-instance-identifier RESTORED_INSTANCE "
                "--no-deletion-protection --apply-immediately",
                f"aws rds delete-db-instance --region {region} --db-instance-identifier RESTORED_INSTANCE "
                "--skip-final-snapshot --delete-automated-backups",
            ),
            check="RESTORED_INSTANCE is `deleting`, then gone from this list:",
            check_commands=(
                f"aws rds describe-db-instances --region {region} --query 'DBInstances[].[DBInstanceIdentifier,"
                "DBInstanceStatus]' --output text",
            ),
            only="when you copied rows back from step 3's instance and are sure of the merge",
        ),
    )
    return Branch(
        "Rows deleted or corrupted",
        "The app runs, but data is missing or wrong: a bad deploy or migration, a mistaken DELETE or UPDATE.",
        "Nothing, if you copy back only the damaged rows (the default); everything written since T if you swap "
        "the whole database; with the off-site dumps (T beyond point-in-time recovery) the same, from the dump.",
        steps,
        undo=(
            "Rows merged: the merge was one transaction; reverse it with the rows in `restored_rows` "
            "(kept until the owner is sure: only then does the clean-up step drop it).",
            "Swapped: run the undo line the swap printed (it switches the app back to the kept instance).",
        ),
        keeps=("restored_rows",),
    )


def _database_dropped(f: RecoveryFacts, config: StackConfig) -> Branch:
    db = f.database_name
    stack, region = config.stack, config.region
    find_drop: tuple[str, ...] = (
        f"python -m leanstack logs {stack} --region {region} --since 1d --filter 'does not exist'",
    )
    if "postgresql" in f.log_exports:
        find_drop += (
            f"aws logs filter-log-events --region {region} --log-group-name "
            f"/aws/rds/instance/{f.database_identifier}/postgresql --filter-pattern '\"does not exist\"' "
            "--limit 1 --query 'events[0].message' --output text",
        )
    steps = (
        Step(
            "Find when it was dropped: the first `does not exist` error is a moment after the drop. Write that "
            "time down (T below, a minute earlier, UTC).",
            LAPTOP,
            find_drop,
            check="you have T; the first line's time is the drop, give or take the app's next connection.",
        ),
        Step(
            "The owner decides between the newest dump (what the restore below takes: everything since it is "
            "lost) and point-in-time recovery to T (about 5 minutes lost; the whole instance as it was at T, "
            "other databases included). Restoring the dump into a new database is harmless (it touches nothing "
            "the app uses) and takes minutes: do the next two steps at once, while the owner decides. If the "
            "owner cannot be reached within a quarter of the RTO, take the dump when it is younger than "
            f"{config.recovery.rpo_hours or 25} h, else point-in-time.",
            check="the decision and who made it are in the incident notes.",
        ),
        _shell_step(f),
        Step(
            "Restore the newest complete backup into a new database. It works without the app's "
            "database; it verifies the checksum while streaming, compares row counts with the manifest, "
            f"and prints the next step: `sudo {RESTORE_COMMAND} --swap --use-restored leanstack_restore_...`.",
            HOST,
            (f"sudo {RESTORE_COMMAND}",),
            check="it ends saying the row counts match; if that backup fails, give the previous one with "
            f"`sudo {RESTORE_COMMAND} --backup STAMP` (list them as in [Backups](#backups-where-they-live)).",
        ),
        Step(
            "Switch the app to it, with the line the restore printed (RESTORED: the name in it): a maintenance "
            "page (503 with Retry-After) while the databases are renamed and the app restarts; the page "
            "lifts once the app's health path answers 200. If the switch fails, nothing is switched.",
            HOST,
            (f"sudo {RESTORE_COMMAND} --swap --use-restored RESTORED",),
            check=f"the app serves again (`sudo {APP_TOOL} status`), and from your laptop the site answers 200:",
            check_commands=_health_check(f),
            only="when the owner took the dump",
        ),
        Step(
            f"Restore the instance as it was at T and switch the app to it (as in [Rows deleted or corrupted]"
            f"(#rows-deleted-or-corrupted), the swap): the current instance is kept, renamed, for the undo the "
            f"command prints, with the dump restored on it, unused. It also prints how Pulumi adopts the new "
            f"instance without replacing anything: run that step as printed ({BEFORE_PULUMI_LINK}).",
            LAPTOP,
            (f'{DB_RESTORE} {stack} --to "T" --swap   # T: YYYY-MM-DD HH:MM:SS, UTC',),
            preview=(
                "~ aws:rds/instance:Instance     database-instance   update    fine: the restored one adopted",
                "+-aws:rds/instance:Instance     database-instance   replace   STOP: a new, empty database",
                "+-aws:ec2/instance:Instance     host-instance       replace   STOP: no host is replaced here",
            ),
            check="it ends printing the undo line (copy it into the incident notes) and the site answers 200:",
            check_commands=_health_check(f),
            only="when the owner took point-in-time",
        ),
        _shell_step(f),
        Step(
            "Take a fresh backup of the restored data now, rather than at the next timer.",
            HOST,
            (f"sudo systemctl start {BACKUP_COMMAND}",),
            check="it succeeded (its last line names the dump it wrote):",
            check_commands=(f"sudo journalctl -u {BACKUP_COMMAND} -n 5 --no-pager",),
        ),
    )
    return Branch(
        "App database dropped",
        f'The app logs `database "{db}" does not exist`; users get errors on every page.',
        "Everything written since the newest backup (its manifest's `started_at`); about 5 minutes with "
        "point-in-time recovery.",
        steps,
        undo=(
            "The app's database was gone, so the switch replaced nothing (it says `there was no app "
            f"database`); had there been one, it printed `to undo the switch: sudo {RESTORE_COMMAND} --swap "
            "--use-restored ...`: run that line.",
            f"To take the restored data out of service while you decide, `sudo {MAINTENANCE_COMMAND} on` shows "
            "users the maintenance page.",
            f"The maintenance page stays up when the app does not come back after a switch: `sudo "
            f"{MAINTENANCE_COMMAND} off` lifts it by hand (`sudo {MAINTENANCE_COMMAND} status` says whether it "
            "is on).",
        ),
    )


def _host_gone(f: RecoveryFacts, config: StackConfig, s: str) -> Branch:
    region = f.region
    list_hosts = (
        f"aws ec2 describe-instances --region {region} --filters {f.host_filters} "
        "--query 'Reservations[].Instances[].[InstanceId,State.Name]' --output text",
    )
    if config.hosts.scaled:
        rebuild: tuple[Step, ...] = (
            Step(
                "This stack is scaled out: its Auto Scaling groups replace a lost or unhealthy host by themselves "
                "within minutes. Watch them do it.",
                LAPTOP,
                tuple(
                    f"aws autoscaling describe-scaling-activities --region {region} --auto-scaling-group-name "
                    f'"$(pulumi stack output {output}{s})" --max-records 3 '
                    "--query 'Activities[].[StatusCode,Description]' --output text"
                    for output in ("hostWebGroup", "hostJobsGroup")
                ),
                check=f"a `Successful` launch, and after the boot the site answers 200 ({BEFORE_PULUMI_LINK}):",
                check_commands=_health_check(f),
            ),
            Step(
                "The groups did not replace it (a launch failure, a group changed by hand): put the stack back "
                f"as the repository describes it ({BEFORE_PULUMI_LINK}). Read the preview like this diff, "
                "then apply it.",
                LAPTOP,
                (f"pulumi refresh{s} --yes", f"pulumi preview --diff{s}", f"pulumi up{s}"),
                preview=(
                    "~ aws:autoscaling/group:Group   ...                 update    fine: the group put back",
                    "+-aws:rds/instance:Instance     database-instance   replace   STOP: never for a lost host",
                    "- aws:s3/bucket:Bucket          ...                 delete    STOP: never for a lost host",
                ),
                check="after `up` and the boot, the site answers 200:",
                check_commands=_health_check(f),
                only="when no launch succeeded within 15 minutes",
            ),
        )
    else:
        rebuild = (
            Step(
                "This stack runs one host and nothing replaces it by itself: rebuild it from the repository "
                f"({BEFORE_PULUMI_LINK}). `refresh` notices the host is gone and drops it from the state; "
                "`up` builds a new one; the Elastic IP moves to it, Cloudflare keeps pointing at it. Read the "
                "preview like this diff, then apply it.",
                LAPTOP,
                (f"pulumi refresh{s} --yes", f"pulumi preview --diff{s}", f"pulumi up{s}"),
                preview=_host_previews(f, "+", "create", "fine: the new host"),
                check="after `up` and a few minutes of boot, the site answers 200:",
                check_commands=_health_check(f),
                only="when step 1 shows the host terminated, or none",
            ),
            Step(
                "It runs but fails its status checks (or the alarm [Host still broken](#host-still-broken) fired): "
                "`refresh` and `up` see nothing to do for a running host, so replace it by name (the URN in "
                f"single quotes: it contains `$`; {BEFORE_PULUMI_LINK}).",
                LAPTOP,
                (f"pulumi preview --diff{s} --replace '{f.host_urn}'", f"pulumi up{s} --replace '{f.host_urn}'"),
                preview=_host_previews(f, "+-", "replace", "fine: you asked for it"),
                check="after `up` and the boot the site answers 200:",
                check_commands=_health_check(f),
                only="when step 1 shows the host running",
            ),
        )
    steps = (
        Step(
            "Confirm which hosts exist, their state and their status checks.",
            LAPTOP,
            (
                *list_hosts,
                f"aws ec2 describe-instance-status --region {region} --include-all-instances --filters "
                f"Name=instance-status.status,Values=impaired --query 'InstanceStatuses[].InstanceId' --output text",
            ),
            check="the first command lists the host(s) and their state; the second the impaired ones.",
        ),
        *rebuild,
        _shell_step(f),
        Step(
            "Prove the new host's backups and restores work.",
            HOST,
            (f"sudo systemctl start {BACKUP_COMMAND}", f"sudo {DRILL_COMMAND}"),
            check="the backup's last line names the dump it wrote, and the drill ends `passed` with the restore time:",
            check_commands=(f"sudo journalctl -u {BACKUP_COMMAND} -n 5 --no-pager",),
        ),
    )
    return Branch(
        "Host gone",
        "The SSM session fails and EC2 shows the host terminated, or it fails its status checks; Cloudflare "
        "shows a 52x page. The database is fine.",
        "Nothing: the host holds no data (the app's data is in RDS, its backups off-site).",
        steps,
    )


RESTORE_STARTED = (
    'it prints the new instance with `"DBInstanceStatus": "creating"`; an error here has created nothing, so fix '
    "the option it names and run it again."
)


def _instance_deleted(f: RecoveryFacts, config: StackConfig, s: str) -> Branch:
    region, ident = f.region, f.database_identifier
    stack = config.stack
    snapshot, automated, dump = "from the final snapshot", "from the automated backups", "from the off-site dump"
    default = "the final snapshot" if f.final_snapshot else "the retained automated backups"
    restore_final = (
        Step(
            "Restore the final snapshot (everything up to the deletion) under the same identifier, with the "
            "stack's settings. This API takes no `--max-allocated-storage`: the storage ceiling "
            f"({f.max_allocated_storage} GB) comes back with the adopting `pulumi up` (an update the preview "
            "guide expects).",
            LAPTOP,
            (
                f.find_security_group,
                f"aws rds restore-db-instance-from-db-snapshot --region {region} \\",
                f"  --db-snapshot-identifier {f.final_snapshot} --db-instance-identifier {ident} \\",
                *(f"  {line} \\" for line in f.restore_options(point_in_time=False)[:-1]),
                f"  {f.restore_options(point_in_time=False)[-1]}",
            ),
            check=RESTORE_STARTED,
            only=snapshot,
        ),
    )
    from_automated = Step(
        "Restore the retained automated backups (for an earlier minute than the latest, replace "
        "`--use-latest-restorable-time` with `--restore-time 2026-01-31T09:15:00Z`). A deleted instance has no "
        "identifier to name, so the restore names its resource id.",
        LAPTOP,
        (
            f.find_security_group,
            f"DBI=$(aws rds describe-db-instance-automated-backups --region {region} --db-instance-identifier {ident} "
            "--query 'DBInstanceAutomatedBackups[?Status==`retained`].DbiResourceId | [0]' --output text)",
            f"aws rds restore-db-instance-to-point-in-time --region {region} \\",
            f'  --source-dbi-resource-id "$DBI" --target-db-instance-identifier {ident} \\',
            "  --use-latest-restorable-time \\",
            *(f"  {line} \\" for line in f.restore_options(point_in_time=True)[:-1]),
            f"  {f.restore_options(point_in_time=True)[-1]}",
        ),
        check=RESTORE_STARTED,
        only=automated,
    )
    component = real_urn(f.database_urn)
    provider = f"--provider 'aws={real_urn(f.provider_urn)}' " if f.provider_urn else ""
    restored = f"{snapshot} or {automated}" if f.final_snapshot else automated
    steps = (
        Step(
            "Confirm it is gone, see what is left (retained automated backups: point-in-time recovery up to "
            "minutes before the deletion; the final snapshot), and write down the old endpoint from the state "
            f"(OLD below; {BEFORE_PULUMI_LINK}).",
            LAPTOP,
            (
                f"aws rds describe-db-instances --region {region} --db-instance-identifier {ident}   "
                "# DBInstanceNotFound: gone",
                f"aws rds describe-db-instance-automated-backups --region {region} --db-instance-identifier {ident} "
                "--query 'DBInstanceAutomatedBackups[].[DbiResourceId,Status,RestoreWindow.LatestTime]' "
                "--output text",
                *(
                    (
                        f"aws rds describe-db-snapshots --region {region} --db-snapshot-identifier "
                        f"{f.final_snapshot} --query 'DBSnapshots[].[Status,SnapshotCreateTime]' --output text",
                    )
                    if f.final_snapshot
                    else ()
                ),
                f"pulumi stack output databaseAddress{s}   # OLD",
            ),
            check="the first command answers DBInstanceNotFound, and you have OLD written down.",
        ),
        Step(
            "The owner picks the source: "
            + ("the final snapshot if it exists (nothing lost), else " if f.final_snapshot else "")
            + "the retained automated backups (minutes lost), else the off-site dump (up to a backup interval "
            f"lost). If the owner cannot be reached within a quarter of the RTO, take {default} (the "
            "first one step 1 listed).",
            check="the source and who chose it are in the incident notes.",
        ),
        *(restore_final if f.final_snapshot else ()),
        from_automated,
        Step(
            "Build an empty instance under the same identifier and fill it from the dump: `refresh` drops the "
            "deleted instance from the state, `up` creates it (the preview shows `+ database-instance create`: "
            "expected here, and nothing replaced), then run [App database dropped](#app-database-dropped)'s steps "
            "on the host (restore the newest dump, switch to it) and continue here with the steps that apply "
            "(freeing the final snapshot's name, the restart) "
            f"({BEFORE_PULUMI_LINK}).",
            LAPTOP,
            (f"pulumi refresh{s} --yes", f"pulumi preview --diff{s}", f"pulumi up{s}"),
            preview=(
                "+ aws:rds/instance:Instance     database-instance   create    fine: the empty instance",
                "~ aws:ssm/parameter:Parameter   ...                 update    fine: the new secret ARN",
                "+-aws:ec2/instance:Instance     host-instance       replace   STOP: no host is replaced here",
            ),
            check="`up` ends without an error and the instance is available:",
            check_commands=(
                f"aws rds describe-db-instances --region {region} --db-instance-identifier {ident} "
                "--query 'DBInstances[0].DBInstanceStatus' --output text   # available",
            ),
            only=dump,
        ),
        Step(
            "Wait until it is available (10-30 minutes).",
            LAPTOP,
            (f"aws rds wait db-instance-available --region {region} --db-instance-identifier {ident}",),
            check="the endpoint it prints is OLD from step 1 (same identifier), so the host needs no change of "
            "address:",
            check_commands=(
                f"aws rds describe-db-instances --region {region} --db-instance-identifier {ident} "
                "--query 'DBInstances[0].[DBInstanceStatus,Endpoint.Address]' --output text",
            ),
            only=restored,
        ),
        *(
            (
                Step(
                    f"Free the name `{f.final_snapshot}` now: RDS takes the final snapshot under that name, so "
                    "until it is free a second deletion of this instance could take none. Copy it to a dated "
                    "name (kept until the restored instance has passed a drill), then delete the original.",
                    LAPTOP,
                    (
                        f"COPY={f.final_snapshot}-$(date -u +%Y%m%d)",
                        f"aws rds copy-db-snapshot --region {region} --source-db-snapshot-identifier "
                        f'{f.final_snapshot} --target-db-snapshot-identifier "$COPY"',
                        f'aws rds wait db-snapshot-available --region {region} --db-snapshot-identifier "$COPY"',
                        f"aws rds delete-db-snapshot --region {region} --db-snapshot-identifier {f.final_snapshot}",
                    ),
                    check=f"the dated copy is listed and `{f.final_snapshot}` is not:",
                    check_commands=(
                        f"aws rds describe-db-snapshots --region {region} --db-instance-identifier {ident} "
                        "--snapshot-type manual --query 'DBSnapshots[].[DBSnapshotIdentifier,Status]' --output text",
                    ),
                    only=f"when step 1 listed `{f.final_snapshot}`",
                ),
            )
            if f.final_snapshot
            else ()
        ),
        Step(
            "Bring it back under Pulumi without replacing anything. The restored instance has the old identifier, "
            "which is how Pulumi finds an RDS instance: a refresh reads it in its place. If the refresh dropped "
            "`database-instance` from the state instead, adopt it by identifier with `pulumi import`. Nothing "
            f"changes in the stack file ({BEFORE_PULUMI_LINK}).",
            LAPTOP,
            (
                f"pulumi refresh{s} --yes",
                f"pulumi stack{s} --show-urns | grep database-instance || \\",
                f"  pulumi import aws:rds/instance:Instance database-instance {ident}{s} \\",
                f"    --parent 'database={component}' {provider}--protect",
                f"pulumi preview --diff{s}",
                f"pulumi up{s}",
            ),
            check="no host is replaced: the preview updates `database-instance` in place (settings the restore "
            "could not set) and the parameter that holds the database's secret ARN (the restored instance has a "
            "new secret); nothing else. If a replace appears, stop and ask. `up` ends without an error.",
            preview=(
                "~ aws:rds/instance:Instance     database-instance   update    fine: settings put back",
                "~ aws:ssm/parameter:Parameter   ...                 update    fine: the new secret ARN",
                "+-aws:ec2/instance:Instance     host-instance       replace   STOP: no host is replaced here",
                "+-aws:rds/instance:Instance     database-instance   replace   STOP: a new, empty database",
                "+ aws:rds/instance:Instance     database-instance   create    STOP: import it first",
            ),
            only=restored,
        ),
        Step(
            "The site stays down until the app reads the restored instance's new secret: `pulumi up` wrote its ARN "
            "where the host reads it at each start, so restart the app (blue/green, one host at a time).",
            LAPTOP,
            (f"python -m leanstack restart {stack} --region {region}",),
            check="the site answers 200:",
            check_commands=_health_check(f),
        ),
        _shell_step(f),
        Step(
            "Prove the restored data is readable and a backup of it exists.",
            HOST,
            (f"sudo systemctl start {BACKUP_COMMAND}", f"sudo {DRILL_COMMAND}"),
            check="the backup's last line names the dump it wrote, and the drill ends `passed` with the restore time:",
            check_commands=(f"sudo journalctl -u {BACKUP_COMMAND} -n 5 --no-pager",),
        ),
    )
    return Branch(
        "Instance deleted",
        f"`aws rds describe-db-instances --region {region} --db-instance-identifier {ident}` answers "
        "DBInstanceNotFound; the app cannot connect.",
        "Nothing from the final snapshot; minutes from the retained automated backups; up to a backup interval "
        "from the off-site dump.",
        steps,
        undo=("The old instance is gone; nothing to switch back.",),
    )


NO_PASSWORD_MANAGER = "the password manager; where: not written down, set recovery.credentials.passwordManager"


def _region_down(f: RecoveryFacts, config: StackConfig, s: str) -> Branch:
    b = config.backup
    old = config.stack
    rec = recovery_stack(old)
    folder = f"s3://$BUCKET/{stack_backup_prefix(b.prefix, old)}/{f.database_name}"
    hostnames = ", ".join(config.hostnames)
    replica = " --replica-bucket REPLICA" if config.storage.enabled else ""
    repository = f"{stack_prefix(rec)}-app"
    rec_host = f"Name=tag:Name,Values={stack_prefix(rec)}-host"
    steps: list[Step] = [
        Step(
            "The owner decides: wait for the region (the database and its automated backups come back with it) "
            f"or bring up the recovery stack `{rec}` in {b.region}, beside the backups, losing what was written "
            "since the newest one. Compare AWS's estimate with the RTO "
            f"({config.recovery.rto_minutes or 'not set'} minutes). *Estimate: 10 min.*",
            check="the decision and who made it are in the incident notes.",
        ),
        Step(
            "Find the backup bucket and check its newest dump (BUCKET below). *Estimate: 5 min.*",
            LAPTOP,
            tuple(f.find_bucket),
            check="one manifest is listed; its name is the newest dump's time (what you will lose since):",
            check_commands=(
                f'aws s3 ls "{folder}/" --region {b.region}{f.bucket_profile} | grep manifest.json | tail -1',
            ),
        ),
        Step(
            f"Write stacks/Pulumi.{rec}.yaml: this stack's file in {b.region}, reusing the backup bucket"
            + (" and the uploads replica (REPLICA: output uploadsReplicaBucket)" if config.storage.enabled else "")
            + (" as they are" if config.storage.enabled else " as it is")
            + " (nothing is created or changed on them), with the app's secret references moved to "
            f"{b.region}. *Estimate: 5 min.*",
            LAPTOP,
            (f"python -m leanstack recover init {old} --backup-bucket $BUCKET{replica}",),
            check=f"`validate` says stacks/Pulumi.{rec}.yaml is valid:",
            check_commands=(f"python -m leanstack validate {rec}",),
        ),
        Step(
            f"Free the site's DNS records ({hostnames}): the recovery stack's Cdn creates the same records, "
            "pointed at its new host, and Cloudflare refuses a second record of a name. Delete them in the "
            f"Cloudflare dashboard, then drop them from `{old}`'s state (kept outside {f.region}, as this stack "
            "requires), so it never recreates them when its region returns. Each URN in single quotes: it "
            "contains `$`. Visitors get Cloudflare errors until the recovery stack is up; the site is down "
            f"already ({BEFORE_PULUMI_LINK}). *Estimate: 10 min.*",
            LAPTOP,
            (f"pulumi state delete --stack {old} 'URN'   # for each URN the check lists",),
            check="run again, this lists no URN:",
            check_commands=(f"pulumi stack --stack {old} --show-urns | grep DnsRecord",),
        ),
    ]
    if b.recovery_public_key:
        steps.append(
            Step(
                "Before `pulumi up`: put the app's config and secrets back from their sealed copy, as the recovery "
                f"stack's. `--into {rec}` writes `{old}`'s own values (never the ones Pulumi writes) under "
                f"/leanstack/{rec}/ in {b.region}, with every reference inside moved there, creates the Secrets "
                f"Manager secrets in {b.region} and writes their new ARNs into stacks/Pulumi.{rec}.yaml (which the "
                "new host's role is granted). Paste the recovery key's private half when asked (from "
                f"{config.recovery.credentials.recovery_key or 'the password manager'}: it is read from the "
                "terminal, never written to a file; an encrypted PEM file made with `openssl pkey -aes256` works "
                "too, with `--key-file`, asking its passphrase); the restore lists what it writes and asks before "
                f"writing. It also prints the release `{old}` last ran (TAG below). *Estimate: 15 min.*",
                LAPTOP,
                (
                    f"python -m leanstack secrets restore {old} --from-backup --bucket $BUCKET "
                    f"--bucket-region {b.region} --region {b.region} --into {rec}",
                ),
                check=f"the app's parameters are under /leanstack/{rec}/ and the stack file's secret ARNs name "
                f"{b.region}:",
                check_commands=(
                    f"aws ssm get-parameters-by-path --region {b.region} --path /leanstack/{rec}/ --recursive "
                    "--query 'Parameters[].Name' --output text",
                    f"grep -o 'arn:aws:secretsmanager:[^\"]*' stacks/Pulumi.{rec}.yaml",
                ),
            )
        )
    steps.append(
        Step(
            "Build the recovery stack: a new host, an empty database, an empty image registry"
            + (", a new uploads bucket" if config.storage.enabled else "")
            + f" and the DNS records ({BEFORE_PULUMI_LINK}). *Estimate: 25 min (the database dominates).*",
            LAPTOP,
            (f"pulumi stack init --stack {rec}", f"pulumi up --stack {rec}"),
            preview=(
                "+ ...                           every resource      create    fine: a new stack",
                "~ ...                           ...                 update    STOP: a new stack updates nothing",
                "- ...                           ...                 delete    STOP: a new stack deletes nothing",
            ),
            check="`pulumi up` ends without an error and the new host runs:",
            check_commands=(
                f"aws ec2 describe-instances --region {b.region} --filters {rec_host} "
                "--query 'Reservations[].Instances[].[InstanceId,State.Name]' --output text",
            ),
        )
    )
    if not b.recovery_public_key:
        kept = config.recovery.credentials.password_manager or NO_PASSWORD_MANAGER
        steps.append(
            Step(
                "This stack has no recovery key (`backup.recoveryPublicKey` is empty), so there is no sealed copy of "
                f"the app's config and secrets: they were in {f.region} only. Set each again by hand under the "
                f"recovery stack, from where the team keeps them ({kept}). *Estimate: 15 min, plus the hunt for "
                "each value.*",
                LAPTOP,
                (
                    f"python -m leanstack config {rec} set NAME=VALUE --region {b.region}   # each plain value",
                    f"python -m leanstack config {rec} set NAME --secret --region {b.region}   # each secret, from "
                    "stdin",
                ),
                check="every variable the app needs is listed (secrets by reference only):",
                check_commands=(f"python -m leanstack config {rec} list --region {b.region}",),
            )
        )
    steps.append(
        Step(
            f"Put the app's image into the recovery stack's registry ({repository} in {b.region}: it starts "
            f"empty, and `{old}`'s is in {f.region}): build the release `{old}` last ran from its commit (TAG: "
            + (
                "the 12-character tag the restore printed, or the last app-deploy run's"
                if b.recovery_public_key
                else "the 12-character tag of the last app-deploy run"
            )
            + ") and push it, then deploy it. "
            "A rebuild, not the same bytes: what the build pulls (base image, packages) may have moved on since. "
            "*Estimate: 15 min.*",
            LAPTOP,
            (
                'git checkout "$TAG"',
                f"REPOSITORY=$(aws ecr describe-repositories --region {b.region} --repository-names {repository} "
                "--query 'repositories[0].repositoryUri' --output text)",
                f"aws ecr get-login-password --region {b.region} | docker login --username AWS --password-stdin "
                '"${REPOSITORY%%/*}"',
                'docker buildx build --platform linux/arm64 --provenance=false --push --tag "$REPOSITORY:$TAG" app',
                f'python -m leanstack deploy {rec} "$TAG" --all-hosts --region {b.region}',
            ),
            check=f"the image is in {b.region} and the recovery stack's history has it as succeeded:",
            check_commands=(
                f"aws ecr describe-images --region {b.region} --repository-name {repository} --image-ids "
                "imageTag=\"$TAG\" --query 'imageDetails[0].imageDigest' --output text",
                f"python -m leanstack releases {rec} --region {b.region}",
            ),
        )
    )
    if config.storage.enabled:
        steps.append(
            Step(
                "Copy the uploaded files back: the recovery stack's uploads bucket starts empty, the replica "
                f"(REPLICA, in {b.region}) has every file. `aws s3 sync` copies the current version of each file "
                "as a new object (new version ids and dates; the replica keeps its older versions), and brings "
                f"back files deleted in `{old}` since delete markers were never replicated. The new bucket "
                "replicates the copies into the replica again, as new versions: its storage grows by the files' "
                "size until backup.expireAfterDays ages those out. *Estimate: 5 min, plus about 1 min per GB.*",
                LAPTOP,
                (
                    f"UPLOADS=$(pulumi stack output --stack {rec} uploadsBucket)",
                    f'aws s3 sync "s3://REPLICA" "s3://$UPLOADS" --source-region {b.region} --region {b.region}',
                ),
                check="both list the same number of files:",
                check_commands=(
                    f'aws s3 ls "s3://REPLICA" --recursive --region {b.region} | wc -l',
                    f'aws s3 ls "s3://$UPLOADS" --recursive --region {b.region} | wc -l',
                ),
            )
        )
    steps += [
        Step(
            f"Open a session on the recovery stack's new host (in {b.region}); the next step runs in it.",
            LAPTOP,
            (
                f"HOST=$(aws ec2 describe-instances --region {b.region} --filters {rec_host} "
                "Name=instance-state-name,Values=running --query 'Reservations[0].Instances[0].InstanceId' "
                "--output text)",
                f'aws ssm start-session --region {b.region} --target "$HOST"',
            ),
            check="the prompt changes to the host's.",
            opens_session=True,
        ),
        Step(
            f"On the new host, restore `{old}`'s newest complete dump from the old bucket (`--from-stack {old}`: "
            "the recovery stack's own dumps are kept apart from it; it runs pg_restore into a new database, "
            "verifying the checksum and the row counts), then switch the app to it with the line it "
            "prints (RESTORED: the name in it). *Estimate: 15 min, plus about 2 min per GB of dump.*",
            HOST,
            (
                f"sudo {RESTORE_COMMAND} --from-stack {old}",
                f"sudo {RESTORE_COMMAND} --swap --use-restored RESTORED",
            ),
            check="the restore ends saying the row counts match, and the site answers 200 through Cloudflare:",
            check_commands=_health_check(f),
        ),
    ]
    return Branch(
        "Region down",
        f"The AWS Health Dashboard shows {f.region} impaired: the host and the database do not answer.",
        "Nothing if you wait for the region; everything since the newest off-site backup if you rebuild in "
        f"{b.region}. Times below are estimates, not measurements: about 2 h in all for a small database.",
        tuple(steps),
        undo=(
            f"When {f.region} is back, `{old}` still holds its old data and, without its DNS records, "
            f"serves nobody: decide which to keep, copy the rows written to `{rec}` meanwhile, then move the "
            f"records back the same way (delete them, `pulumi state delete --stack {rec} 'URN'`, `pulumi up --stack "
            f"{old}`). `pulumi destroy --stack {rec}` leaves the backup bucket and replica: they "
            "were never its resources.",
        ),
    )


def real_urn(urn: str) -> str:
    """The URN Pulumi gives a resource: the offline run also names the root stack in a child's type chain."""
    return urn.replace("::pulumi:pulumi:Stack$", "::")


def _render_step(number: int, step: Step) -> list[str]:
    where = f" *On {WHERE[step.where]}.*" if step.where else ""
    only = f"**Only {step.only}:** " if step.only else ""
    # What belongs to the item is indented as deep as its text, or Markdown ends the list (from step 10 on).
    pad = " " * len(f"{number}. ")
    lines = [f"{number}. {only}{step.text}{where}"]
    if step.commands:
        lines += ["", f"{pad}```sh", *(f"{pad}{c}" for c in step.commands), f"{pad}```"]
    if step.preview:
        lines += [
            "",
            f"{pad}**Expected preview** (what `pulumi preview` and `pulumi up` show before they ask; on a STOP line "
            "answer `no` and ask):",
            "",
            f"{pad}```diff",
            *(f"{pad}{c}" for c in step.preview),
            f"{pad}```",
        ]
    if step.check:
        lines += ["", f"{pad}**Check**: {step.check}"]
    if step.check_commands:
        lines += ["", f"{pad}```sh", *(f"{pad}{c}" for c in step.check_commands), f"{pad}```"]
    lines.append("")
    return lines


NO_OWNER = "nobody yet (set `leanstack:owner` before you need it); meanwhile, whoever is on call"

SYSTEM_NAMES = {
    "database": "Database",
    "files": "Uploaded files",
    "secrets": "App config and secrets",
    "host": "Host(s)",
    "dns": "DNS and CDN (Cloudflare)",
    "deploy": "Deploy path (CI, images)",
}
CREDENTIAL_NAMES = {
    "aws_root_mfa": "AWS account root and its MFA",
    "registrar": "Domain registrar",
    "cloudflare": "Cloudflare account",
    "recovery_key": "Recovery key (private half)",
    "code_hosting": "Code hosting (the repository)",
    "pulumi_state": "Pulumi state and its passphrase",
    "password_manager": "Password manager (emergency access)",
}


def _people(config: StackConfig) -> list[str]:
    """Who recovers each system, its targets, and where the recovery credentials live (no secret)."""
    r = config.recovery
    rows = []
    for name, label in SYSTEM_NAMES.items():
        one = r.system(name, config.owner)
        rows.append(
            [
                label,
                one.owner or "(not set)",
                one.second or "(not set)",
                f"{one.rto_minutes} min" if one.rto_minutes else "not set",
                f"{one.rpo_hours} h" if one.rpo_hours else "not set",
            ]
        )
    lines = ["## Who recovers what", ""]
    lines += _table(["System", "Owner", "Second person", "RTO", "RPO"], rows)
    lines += ["", "Where the recovery credentials live (never the credentials themselves):", ""]
    for key, label in CREDENTIAL_NAMES.items():
        where = getattr(r.credentials, key)
        lines.append(f"- **{label}**: {where or 'not written down (set `leanstack:recovery.credentials`)'}")
    lines.append("")
    return lines


def _stack_facts(config: StackConfig, f: RecoveryFacts) -> list[str]:
    """What this stack is, stated rather than left to a condition the reader must resolve at 3 a.m."""
    c = config.recovery.credentials
    if config.hosts.scaled:
        hosts = (
            "**Hosts**: scaled out: web hosts in an Auto Scaling group behind a load balancer and one jobs host "
            "(backups, drills, jobs) in a group of its own; the groups replace a lost host by themselves."
        )
    else:
        hosts = (
            "**Hosts**: one host (`host-instance`), not scaled out: nothing replaces it by itself; "
            "[Host gone](#host-gone) rebuilds it with `pulumi up`."
        )
    database = (
        f"**Database**: `{f.database_identifier}`, "
        + (
            "Multi-AZ (a failed instance or zone fails over in a minute or two, no restore)"
            if f.multi_az
            else "single-AZ (a failed instance is a restore)"
        )
        + f"; point-in-time recovery over {f.retention_days} day(s); "
        + (
            f"final snapshot `{f.final_snapshot}` on deletion."
            if f.final_snapshot
            else "no final snapshot on deletion."
        )
    )
    if config.backup.recovery_public_key:
        key = (
            "**Recovery key**: set. The host seals the app's config and secrets daily into the backup bucket; "
            f"the private half: {c.recovery_key or 'not written down (set recovery.credentials.recoveryKey)'}."
        )
    else:
        key = (
            "**Recovery key**: none (`backup.recoveryPublicKey` is empty), so the app's config and secrets have no "
            f"sealed copy off-site: they live in {f.region} only. Keep every value in the password manager ("
            f"{c.password_manager or NO_PASSWORD_MANAGER}); "
            "a region-down recovery sets them by hand from there."
        )
    state = (
        f"**Pulumi state**: must be outside {f.region} (a requirement of this sheet: the region-down branch reads "
        f"and changes it while {f.region} is gone). Where it is and its passphrase: "
        f"{c.pulumi_state or 'not written down (set recovery.credentials.pulumiState)'}."
    )
    return ["**This stack**:", "", f"- {hosts}", f"- {database}", f"- {key}", f"- {state}", ""]


def _before_pulumi_section(config: StackConfig) -> list[str]:
    """What every `pulumi` command needs, once per shell: state login, passphrase, AWS and Cloudflare."""
    c = config.recovery.credentials
    stack, region = config.stack, config.region
    url = STATE_URL_RE.search(c.pulumi_state)
    login = (
        f"pulumi login {url.group(0)}   # recovery.credentials.pulumiState"
        if url
        else f"pulumi login BACKEND   # BACKEND: {c.pulumi_state or 'the state URL (recovery.credentials.pulumiState)'}"
    )
    return [
        f"### {BEFORE_PULUMI}",
        "",
        "In your clone of the repository (set up as the README's quick start says), once per shell, before the "
        "first `pulumi` command of any branch. Where each credential lives: "
        "[Who recovers what](#who-recovers-what).",
        "",
        "```sh",
        login,
        "read -rs PULUMI_CONFIG_PASSPHRASE && export PULUMI_CONFIG_PASSPHRASE   # the stack's passphrase, not echoed",
        "export AWS_PROFILE=PROFILE   # credentials that may change the stack's AWS account",
        "read -rs CLOUDFLARE_API_TOKEN && export CLOUDFLARE_API_TOKEN   # only if cloudflare:apiToken is not "
        "in the stack's config",
        "```",
        "",
        "**Check**: each line answers as its comment says:",
        "",
        "```sh",
        f"aws sts get-caller-identity --region {region} --query Account --output text   # the stack's account",
        f"pulumi config get aws:region --stack {stack}   # {region}: logged in, the stack exists",
        f"pulumi config --stack {stack} --show-secrets > /dev/null && echo passphrase ok",
        f'pulumi config get cloudflare:apiToken --stack {stack} > /dev/null || test -n "$CLOUDFLARE_API_TOKEN" '
        "&& echo cloudflare ok",
        "```",
        "",
    ]


def _triage(branches: list[Branch], f: RecoveryFacts, config: StackConfig) -> list[str]:
    return [
        "## What is gone? Start here",
        "",
        f"**Who decides**: {config.owner or NO_OWNER} decides whether and when to restore, and so what data "
        "may be lost; whoever is on call runs the steps. If the owner cannot be reached within a quarter of the RTO, "
        "the person on call decides (each branch says what to take then) and writes down why.",
        "",
        "Keep a copy of this sheet outside AWS: the region-down branch needs it when nothing else answers.",
        "",
        "Where a step runs: *your laptop* has AWS credentials for the account and the AWS CLI v2 (`pulumi` only "
        f"where a step says so, in your clone of the repository: [{BEFORE_PULUMI}](#{github_anchor(BEFORE_PULUMI)})); "
        "*the host* is an SSM session on it, opened by the step before, where the commands need nothing installed "
        "or sourced: `sudo` is enough. A step marked **Only when ...** belongs to one path: skip it on the others. "
        "Values are this stack's, rendered from its program; names AWS picks (instance ids, the bucket's suffix) "
        "are looked up by tag or prefix.",
        "",
        *_stack_facts(config, f),
        "First look, from your laptop:",
        "",
        "```sh",
        f"aws rds describe-db-instances --region {f.region} --db-instance-identifier {f.database_identifier} "
        "--query 'DBInstances[0].DBInstanceStatus' --output text",
        f"aws ec2 describe-instances --region {f.region} --filters {f.host_filters} "
        "--query 'Reservations[].Instances[].[InstanceId,State.Name]' --output text",
        *_health_check(f),
        "```",
        "",
        *_table(
            ["What you see", "What is gone", "Data lost", "Go to"],
            [[b.symptoms, b.heading, b.loses, f"[{b.heading}](#{b.anchor})"] for b in branches],
        ),
        "",
    ]


def _branch_lines(branch: Branch) -> list[str]:
    lines = [f"### {branch.heading}", "", f"**What you see**: {branch.symptoms}", ""]
    lines += [f"**Data lost**: {branch.loses}", ""]
    for number, step in enumerate(branch.steps, 1):
        lines += _render_step(number, step)
    if branch.undo:
        lines += ["**Undo the switch**:", ""] + [f"- {u}" for u in branch.undo] + [""]
    return lines


def _recovery(run: StackRun, config: StackConfig, only: str | None = None) -> list[str]:
    """Triage, what `pulumi` needs, then every branch (or only the one named `only`)."""
    branches = recovery_branches(run, config)
    chosen = [b for b in branches if only is None or b.anchor == only]
    # Always there: the triage's own text points to it, and most branches need it.
    lines = _triage(branches, recovery_facts(run, config), config) + _before_pulumi_section(config)
    for branch in chosen:
        lines += _branch_lines(branch)
    return lines


def _rollback(config: StackConfig) -> list[str]:
    s = f" --stack {config.stack}"
    return [
        "## Roll back an infrastructure change",
        "",
        "Infrastructure changes are commits; undo one with another commit, never by hand in the console:",
        "",
        "```sh",
        f"pulumi stack history{s}                  # what changed, when, from which commit",
        f"pulumi stack export{s} > state-backup.json  # keep a copy of the state before touching anything",
        "git revert <commit>                           # the change that hurt",
        f"pulumi preview --diff{s}                 # read it: a replaced database or bucket is a red flag",
        f"pulumi up{s}",
        "```",
        "",
        f"If the state itself is damaged: `pulumi stack import{s} --file state-backup.json`. The database has "
        + (
            "Pulumi `protect` and deletion protection: a change that would replace or delete it is refused."
            if config.database.protect and config.database.deletion_protection
            else "no protection in this stack: read the preview before `pulumi up`."
        ),
        "",
    ]


def _app_operations(config: StackConfig) -> list[str]:
    """The app's scheduled jobs and maintenance mode: what runs on its own, and how to show users a 503 page."""
    stack = config.stack
    where = "the jobs host (the one host of the jobs group)" if config.hosts.scaled else "the host"
    lines = ["## App jobs and maintenance mode", ""]
    if config.app.jobs:
        lines += [
            f"Scheduled jobs (`app.jobs`) run on {where}, one run at a time, in UTC unless a timezone is named:",
            "",
        ]
        rows = [
            [f"`{name}`", f"`{job.schedule}`", f"`{' '.join(job.command)}`", f"`leanstack-job-{name}.timer`"]
            for name, job in sorted(config.app.jobs.items())
        ]
        lines += [*_table(["Job", "Schedule (OnCalendar)", "Command", "Timer"], rows), ""]
        lines += ["A failed run raises [Job failed](#job-failed).", ""]
    else:
        lines += ["No scheduled jobs (`app.jobs` is empty).", ""]
    lines += [
        "**Maintenance mode** shows users a 503 page with `Retry-After` while the health path reports the truth "
        "(the uptime check alarms if the site is really down). Use it when the app must not take writes: a "
        "migration that is not backward compatible, a restore (the restore's `--swap` turns it on itself), a "
        "data repair. Not for a deploy: deploys switch without dropping requests.",
        "",
        "```sh",
        f'python -m leanstack maintenance {stack} on --message "Back at 14:00 UTC" --region {config.region}',
        f"python -m leanstack maintenance {stack} off --region {config.region}",
        "```",
        "",
    ]
    return lines


def _alarm_sections(run: StackRun, config: StackConfig) -> list[str]:
    lines = ["## Alarms", ""]
    tickets = config.alerts.ticket_email or config.alert_email
    lines.append(
        f"Pages (someone now) email {config.alert_email} through the page topic "
        f"(`pulumi stack output alertTopicArn --stack {config.stack}`)"
        + (" and post to Slack through AWS Chatbot" if config.alerts.slack.enabled else "")
        + f"; tickets (working hours: the restore drill, a failed job, files at risk, the budget) email {tickets} "
        f"through the ticket topic (`pulumi stack output ticketTopicArn --stack {config.stack}`)"
        + (
            ". The site-down alarm lives in us-east-1 (where Route 53 publishes its metrics) and pages through a "
            "second page topic there."
            if config.region != "us-east-1"
            else "."
        )
    )
    lines += ["Nothing alarms on a merely busy server (CPU, memory): only on what users feel or data at risk.", ""]
    regions = sorted({a.region for a in _alarms(run) if a.region and a.region != config.region})
    lines += [
        "**Mute a noisy alarm for a while** (the emails stop; its state still changes and shows in the console). "
        "CloudWatch has no timer for it: write the undo line into the incident notes and your calendar.",
        "",
        "```sh",
        f"aws cloudwatch disable-alarm-actions --region {config.region} --alarm-names NAME   # mute",
        f"aws cloudwatch enable-alarm-actions --region {config.region} --alarm-names NAME    # undo: it emails again",
        "```",
        "",
        "**Check**: `ActionsEnabled` is False while muted, True after the undo:",
        "",
        "```sh",
        f"aws cloudwatch describe-alarms --region {config.region} --alarm-names NAME "
        "--query 'MetricAlarms[].[AlarmName,ActionsEnabled,StateValue]' --output text",
        "```",
        "",
    ]
    if regions:
        lines += [
            f"NAME: the alarm's name below; for the one in {', '.join(regions)}, give that region as `--region`.",
            "",
        ]
    sections: dict[str, list[Resource]] = {}
    automatic: list[Resource] = []
    for alarm in _alarms(run):
        anchor = alarm_anchor(alarm)
        if anchor is None:
            automatic.append(alarm)
            continue
        if anchor not in ALARM_HEADINGS:
            raise RunbookError(f"alarm {alarm.inputs.get('name')} links to #{anchor}, which this runbook lacks")
        sections.setdefault(anchor, []).append(alarm)
    summary = [
        [f"[{ALARM_HEADINGS[a]}](#{a})", f"`{alarm.inputs.get('name')}`", alarm.region]
        for a, alarms in sections.items()
        for alarm in alarms
    ]
    lines += [*_table(["Alarm", "Name", "Region"], summary), ""]
    every_steps = alarm_steps(run, config)
    for anchor, heading in ALARM_HEADINGS.items():
        if anchor not in sections:
            continue
        if github_anchor(heading) != anchor:
            raise RunbookError(f"heading {heading!r} does not produce the anchor #{anchor}")
        lines += [f"### {heading}", ""]
        for alarm in sections[anchor]:
            description = ANCHOR_RE.sub("", str(alarm.inputs.get("alarmDescription", ""))).strip()
            lines += [f"`{alarm.inputs.get('name')}` ({alarm.region}): {description}", ""]
        lines += [f"{i}. {step}" for i, step in enumerate(every_steps[anchor], 1)] + [""]
    if automatic:
        lines += ["### Automatic actions", ""]
        lines += [
            f"- `{a.inputs.get('name')}`: {a.inputs.get('alarmDescription', '')} (acts, does not email)"
            for a in automatic
        ]
        lines.append("")
    return lines


def _stateful(run: StackRun) -> list[str]:
    rows = []
    for resource in sorted(run.resources, key=lambda r: (r.type, r.name)):
        what = STATEFUL_TYPES.get(resource.type)
        if what is None:
            continue
        if resource.component == "BackupBucket":
            what = "S3 bucket: the off-site database backups"
        elif resource.inputs.get("forceDestroy") is True:
            what = "S3 bucket: files rebuilt from the repository on every `pulumi up` (nothing to restore)"
        guards = [
            label
            for label, on in (
                ("Pulumi protect", resource.protect),
                ("retained on delete", resource.retain_on_delete),
                ("RDS deletion protection", resource.inputs.get("deletionProtection") is True),
                ("final snapshot", resource.inputs.get("skipFinalSnapshot") is False),
                ("Object Lock", resource.inputs.get("objectLockEnabled") is True),
            )
            if on
        ]
        rows.append(
            [f"`{resource.name}`", f"`{_physical(resource)}`", what, resource.region, ", ".join(guards) or "none"]
        )
    return [
        "## Stateful resources",
        "",
        "What holds data, and what stops it from being deleted by accident:",
        "",
        *_table(["Resource", "Physical name", "What", "Region", "Guards"], rows),
        "",
    ]


def _access(run: StackRun, config: StackConfig) -> list[str]:
    s = f" --stack {config.stack}"
    lines = [
        "## Access and secrets",
        "",
        f"- **Shell on the host**: SSM Session Manager only (no SSH key, no port 22): "
        f"`aws ssm start-session --region {config.region} --target {_host_target(config)}`"
        + (" (the jobs host; any host of the groups takes a session the same way). " if config.hosts.scaled else ". ")
        + "Who can get in = who has `ssm:StartSession` on the instance in this AWS account (IAM).",
        "- **Database**: private subnets, reachable only from the host's security group, TLS only.",
        f"- **Database password**: managed and rotated every 7 days by RDS in Secrets Manager "
        f"(`pulumi stack output databaseSecretArn{s}`); never in config, state or on disk.",
        f"- **Origin certificate and key**: SSM Parameter Store SecureStrings under `/leanstack/{config.stack}/tls/`.",
    ]
    if any(r.type == SSM_PARAMETER and "/cache/" in str(r.inputs.get("name")) for r in run.resources):
        lines.append(f"- **Cache auth token**: SSM SecureString `pulumi stack output cacheAuthTokenParameter{s}`.")
    lines += [
        "- **Pulumi state and config secrets**: wherever `pulumi login` points, encrypted with the stack's secrets "
        f"provider; it must be outside {config.region} (see [This stack](#what-is-gone-start-here)). Where: "
        f"{config.recovery.credentials.pulumi_state or 'not written down (set recovery.credentials.pulumiState)'}.",
        "",
    ]
    return lines


class UnknownBranchError(ValueError):
    """`--branch` named no branch of the sheet."""


def runbook_markdown(run: StackRun, config: StackConfig, branch: str | None = None) -> str:
    """The recovery sheet for a run of the program and the config it ran with.

    With `branch` (one of BRANCH_NAMES): the title, the triage, what `pulumi` needs (when the branch runs it)
    and that branch only, a page to print on its own.
    """
    if branch is not None and branch not in BRANCH_NAMES:
        raise UnknownBranchError(f"--branch: got {branch!r}; expected one of {', '.join(BRANCH_NAMES)}")
    production = "yes" if config.is_production else "no"
    lines = [
        f"# Recovery sheet: stack `{config.stack}`",
        "",
        f"Generated by `python -m leanstack runbook {config.stack}` from stacks/Pulumi.{config.stack}.yaml and the "
        "program; regenerate it after every change rather than editing it.",
        "",
        f"- **Owner**: {config.owner or '(not set)'}",
        f"- **Second person**: {config.recovery.second_person or '(not set)'}",
        f"- **Site**: {', '.join(f'https://{h}' for h in config.hostnames)}",
        f"- **Region**: {config.region}; backups in {config.backup.region}",
        f"- **Alerts**: {config.alert_email}",
        f"- **Production**: {production}",
        "",
    ]
    if branch is not None:
        lines[2] = (
            f"One branch of the sheet (`python -m leanstack runbook {config.stack} --branch {branch}`); the whole "
            f"sheet, with the sections its links point to: `python -m leanstack runbook {config.stack}`."
        )
        lines += _recovery(run, config, branch)
        return "\n".join(lines).rstrip("\n") + "\n"
    lines += _recovery(run, config)
    lines += _people(config)
    lines += _services(run, config)
    lines += _targets(config)
    lines += _backups(run, config)
    lines += _rollback(config)
    lines += _app_operations(config)
    lines += _alarm_sections(run, config)
    lines += _stateful(run)
    lines += _access(run, config)
    return "\n".join(lines).rstrip("\n") + "\n"


def render_runbook(stack: str, repo: Path | None = None, branch: str | None = None) -> str:
    """The recovery sheet of <repo>/stacks/Pulumi.<stack>.yaml (default: this repository's), or one branch of it.

    Raises StackFileError/ConfigError on a bad stack file, UnknownBranchError on a branch it lacks (before
    running the program).
    """
    if branch is not None and branch not in BRANCH_NAMES:
        raise UnknownBranchError(f"--branch: got {branch!r}; expected one of {', '.join(BRANCH_NAMES)}")
    raw = read_stack_config(stack, repo)
    config = load_stack_config(raw, stack)
    return runbook_markdown(run_program(stack, raw), config, branch)
