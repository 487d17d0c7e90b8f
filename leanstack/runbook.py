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

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from leanstack.mocks import Resource, StackRun, read_stack_config, run_program
from leanstack.plan import build_plan
from leanstack.settings import StackConfig, backup_interval_hours, load_stack_config

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
STATEFUL_TYPES = {
    "aws:rds/instance:Instance": "PostgreSQL database",
    "aws:elasticache/replicationGroup:ReplicationGroup": "cache (rebuildable: holds nothing that cannot be recomputed)",
    "aws:s3/bucket:Bucket": "S3 bucket",
}
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

# Deeper steps per alarm section, after the alarm's own description (what users feel, first check).
ALARM_STEPS: dict[str, tuple[str, list[str]]] = {
    "site-down": (
        "Site down",
        [
            "Open the URL in the alarm yourself. A Cloudflare 52x page: Cloudflare cannot reach the origin; "
            "a leanstack 502/504 page: nginx is up and the app is not.",
            "Host running? `aws ec2 describe-instance-status --include-all-instances --instance-ids "
            "$(pulumi stack output hostInstanceId)`.",
            "On the host (see [Access](#access-and-secrets)): `systemctl status nginx`, your app's unit, "
            "`curl -sk https://127.0.0.1/healthz -H 'Host: <hostname>'`.",
            "Host broken beyond repair: `pulumi up --replace <instance URN>` (the host holds no state; the "
            "Elastic IP moves to the new one).",
            "If Cloudflare's checks are being challenged (bot protection), allow Route 53's health checkers.",
        ],
    ),
    "error-rate": (
        "Error rate",
        [
            "CloudWatch Logs Insights on the access-log group: "
            "`filter status >= 500 | stats count() by uri, upstream_status | sort count desc`.",
            "A deploy in the last hour? Roll the app back first, investigate after.",
            "502/504 from nginx with an empty upstream_status: the app is down or too slow (5 s health, "
            "60 s default timeout).",
            "Database errors in the app log: check the database alarms and RDS events.",
        ],
    ),
    "host-still-broken": (
        "Host still broken",
        [
            "EC2 console > the instance > Status checks, and Actions > Monitor > Get system log.",
            "Replace it: `pulumi up --replace <instance URN>` (find the URN with `pulumi stack --show-urns`).",
        ],
    ),
    "unhealthy-targets": (
        "Unhealthy targets",
        [
            "EC2 console > Target groups > the stack's group > Targets: the reason per host (timeout, 5xx, TLS).",
            "On that host (SSM, see [Access](#access-and-secrets)): `systemctl status nginx` and your app's unit.",
            "The group should have replaced it: EC2 console > Auto Scaling groups > Activity says why not "
            "(capacity, a launch failure). A host that keeps failing after a deploy: roll the app back.",
            "Replace one by hand: `aws autoscaling terminate-instance-in-auto-scaling-group --instance-id <id> "
            "--no-should-decrement-desired-capacity`.",
        ],
    ),
    "load-balancer-errors": (
        "Load balancer errors",
        [
            "503 from the load balancer: no healthy host. Check the target group's healthy count and "
            "[Unhealthy targets](#unhealthy-targets).",
            "502: a host refused the connection or the TLS handshake (nginx down, certificate not fetched): "
            "`journalctl -u nginx` on the hosts.",
            "504: hosts too slow (the app or the database); check the database alarms and the app's log.",
        ],
    ),
    "database-storage-low": (
        "Database storage low",
        [
            "RDS console > the database > Monitoring > Free storage space.",
            "At the autoscaling ceiling? Raise `leanstack:database.maxAllocatedStorageGb` and `pulumi up`.",
            "Otherwise find what grew: `SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) FROM pg_class "
            "ORDER BY pg_total_relation_size(oid) DESC LIMIT 10;`",
        ],
    ),
    "backup-stale": (
        "Backup stale",
        [
            "On the host: `systemctl status leanstack-backup.timer leanstack-backup.service` and "
            "`journalctl -u leanstack-backup --since -2d`: the last line says why it failed.",
            "Run one now: `sudo systemctl start leanstack-backup` and watch the journal.",
            "Host gone or replaced? The alarm also fires when nothing reports: check the host first.",
        ],
    ),
    "restore-drill-stale": (
        "Restore drill stale",
        [
            "On the host: `systemctl list-timers leanstack-restore-drill.timer`.",
            "Run one now: `sudo leanstack-restore-drill` (it prints the recovery time and the backup's age).",
        ],
    ),
    "restore-drill-failed": (
        "Restore drill failed",
        [
            "`journalctl -u leanstack-restore-drill` on the host: the one-line reason (checksum, row counts, "
            "verification SQL).",
            "Fix the cause, then `sudo leanstack-restore-drill` until it passes: until then, treat the newest "
            "backups as unproven and keep RDS's own snapshots.",
        ],
    ),
}


# Steps that differ when the hosts are scaled out behind a load balancer (hosts.count > 1).
SCALED_STEPS: dict[str, list[str]] = {
    "site-down": [
        "Open the URL in the alarm yourself. A Cloudflare 52x page: Cloudflare cannot reach the load balancer; "
        "a 503 from the load balancer: no healthy host; a leanstack 502/504 page: nginx is up and the app is not.",
        "Hosts healthy? EC2 console > Target groups > the stack's group > Targets, and "
        "[Unhealthy targets](#unhealthy-targets) if that alarm fired too.",
        "On a host (see [Access](#access-and-secrets)): `systemctl status nginx`, your app's unit.",
        "Every host broken by one change (a deploy, a new AMI): roll back; the group replaces hosts on its own "
        "once they pass the health check again.",
        "If Cloudflare's checks are being challenged (bot protection), allow Route 53's health checkers.",
    ],
}

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
    s = f" --stack {config.stack}"
    region = config.region
    return [
        "## Backups: where they live and how to restore",
        "",
        f"- **Off-site dumps**: S3 bucket `pulumi stack output backupBucket{s}` in {config.backup.region}, under "
        f"`<backupPrefix>/<databaseName>/<UTC time>.dump`, each with a `.manifest.json` (sha256, size, row counts). "
        f"Object Lock {config.backup.object_lock_mode} for {config.backup.object_lock_days} days: nobody can "
        f"delete them early{' (not even root)' if config.backup.object_lock_mode == 'COMPLIANCE' else ''}; expired "
        f"after {config.backup.expire_after_days} days.",
        f"- **RDS automated backups**: {config.database.backup_retention_days} day(s) of point-in-time recovery in "
        f"{region}, same account.",
        "",
        "Find the newest complete backup (one with a manifest):",
        "",
        "```sh",
        f"BUCKET=$(pulumi stack output backupBucket{s})",
        f"BACKUP_REGION=$(pulumi stack output backupRegion{s})",
        f'FOLDER="$(pulumi stack output backupPrefix{s})/$(pulumi stack output databaseName{s})"',
        'aws s3 ls "s3://$BUCKET/$FOLDER/" --region "$BACKUP_REGION" | grep manifest.json | sort | tail -3',
        "```",
        "",
        "Prove it restores (a drill: restores into a scratch database, checks row counts, drops it):",
        "",
        "```sh",
        f"aws ssm start-session --region {region} --target {_host_target(config)}",
        "sudo leanstack-restore-drill",
        "```",
        "",
        "Restore into a **new** database on the instance (never over the live one), in the SSM session:",
        "",
        "```sh",
        "sudo -i",
        "set -a; . /etc/leanstack/backup.env; set +a   # bucket, prefix, database host and secret ARN; no secrets",
        "df -h /tmp   # the dump is downloaded first (pg_restore --jobs needs a file): it must fit",
        'STAMP=$(aws s3 ls "s3://$BACKUP_BUCKET/$BACKUP_PREFIX/$DATABASE_NAME/" --region "$BACKUP_BUCKET_REGION" \\',
        "  | awk '{print $4}' | grep '.manifest.json$' | sort | tail -1 | sed 's/.manifest.json$//')",
        'aws s3 cp "s3://$BACKUP_BUCKET/$BACKUP_PREFIX/$DATABASE_NAME/$STAMP.dump" /tmp/restore.dump \\',
        '  --region "$BACKUP_BUCKET_REGION"',
        'aws s3 cp "s3://$BACKUP_BUCKET/$BACKUP_PREFIX/$DATABASE_NAME/$STAMP.manifest.json" - \\',
        '  --region "$BACKUP_BUCKET_REGION" | grep sha256; sha256sum /tmp/restore.dump   # must match',
        'export PGPASSWORD=$(aws secretsmanager get-secret-value --region "$AWS_REGION" \\',
        '  --secret-id "$DATABASE_SECRET_ARN" --query SecretString --output text \\',
        "  | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"password\"])')",
        'export PGHOST="$DATABASE_HOST" PGPORT="$DATABASE_PORT" PGUSER="$DATABASE_USER" PGSSLMODE=require',
        'createdb "${DATABASE_NAME}_restored"',
        'pg_restore --no-owner --exit-on-error --jobs 2 --dbname "${DATABASE_NAME}_restored" /tmp/restore.dump',
        "rm /tmp/restore.dump",
        "```",
        "",
        "Then point the app at the restored database (or rename: `ALTER DATABASE ... RENAME TO ...` with the app "
        "stopped), and run `sudo leanstack-backup` so a fresh backup exists.",
        "",
        "From RDS's own backups instead (to a point in time, into a new instance; then bring it under Pulumi with "
        "`leanstack:database.identifier` or copy the data across):",
        "",
        "```sh",
        f"aws rds restore-db-instance-to-point-in-time --region {region} \\",
        f"  --source-db-instance-identifier {config.database.identifier or f'leanstack-{config.stack}'} \\",
        f"  --target-db-instance-identifier {config.database.identifier or f'leanstack-{config.stack}'}-restored "
        "--use-latest-restorable-time",
        "```",
        "",
    ]


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
        "If the state itself is damaged: `pulumi stack import --file state-backup.json`. The database has "
        + (
            "Pulumi `protect` and deletion protection: a change that would replace or delete it is refused."
            if config.database.protect and config.database.deletion_protection
            else "no protection in this stack: read the preview before `pulumi up`."
        ),
        "",
    ]


def _alarm_sections(run: StackRun, config: StackConfig) -> list[str]:
    lines = ["## Alarms", ""]
    lines.append(
        f"Every alarm emails {config.alert_email} through the stack's SNS topic "
        "(`pulumi stack output alertTopicArn`)"
        + (
            ", except the site-down alarm, which lives in us-east-1 (where Route 53 publishes its metrics) and "
            "emails the same address through a second topic there."
            if config.region != "us-east-1"
            else "."
        )
    )
    lines += ["Nothing alarms on a merely busy server (CPU, memory): only on what users feel or data at risk.", ""]
    sections: dict[str, list[Resource]] = {}
    automatic: list[Resource] = []
    for alarm in _alarms(run):
        anchor = alarm_anchor(alarm)
        if anchor is None:
            automatic.append(alarm)
            continue
        if anchor not in ALARM_STEPS:
            raise RunbookError(f"alarm {alarm.inputs.get('name')} links to #{anchor}, which this runbook lacks")
        sections.setdefault(anchor, []).append(alarm)
    summary = [
        [f"[{ALARM_STEPS[a][0]}](#{a})", f"`{alarm.inputs.get('name')}`", alarm.region]
        for a, alarms in sections.items()
        for alarm in alarms
    ]
    lines += [*_table(["Alarm", "Name", "Region"], summary), ""]
    for anchor, (heading, steps) in ALARM_STEPS.items():
        if anchor not in sections:
            continue
        if github_anchor(heading) != anchor:
            raise RunbookError(f"heading {heading!r} does not produce the anchor #{anchor}")
        lines += [f"### {heading}", ""]
        for alarm in sections[anchor]:
            description = ANCHOR_RE.sub("", str(alarm.inputs.get("alarmDescription", ""))).strip()
            lines += [f"`{alarm.inputs.get('name')}` ({alarm.region}): {description}", ""]
        if config.hosts.scaled:
            steps = SCALED_STEPS.get(anchor, steps)
        lines += [f"{i}. {step}" for i, step in enumerate(steps, 1)] + [""]
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
    if any(r.type == "aws:ssm/parameter:Parameter" and "/cache/" in str(r.inputs.get("name")) for r in run.resources):
        lines.append(f"- **Cache auth token**: SSM SecureString `pulumi stack output cacheAuthTokenParameter{s}`.")
    lines += [
        "- **Pulumi state and config secrets**: wherever `pulumi login` points (see the README), encrypted with the "
        "stack's secrets provider.",
        "",
    ]
    return lines


def runbook_markdown(run: StackRun, config: StackConfig) -> str:
    """The recovery sheet for a run of the program and the config it ran with."""
    production = "yes" if config.is_production else "no"
    lines = [
        f"# Recovery sheet: stack `{config.stack}`",
        "",
        f"Generated by `python -m leanstack runbook {config.stack}` from stacks/Pulumi.{config.stack}.yaml and the "
        "program; regenerate it after every change rather than editing it.",
        "",
        f"- **Owner**: {config.owner or '(not set)'}",
        f"- **Site**: {', '.join(f'https://{h}' for h in config.hostnames)}",
        f"- **Region**: {config.region}; backups in {config.backup.region}",
        f"- **Alerts**: {config.alert_email}",
        f"- **Production**: {production}",
        "",
    ]
    lines += _services(run, config)
    lines += _targets(config)
    lines += _backups(run, config)
    lines += _rollback(config)
    lines += _alarm_sections(run, config)
    lines += _stateful(run)
    lines += _access(run, config)
    return "\n".join(lines).rstrip("\n") + "\n"


def render_runbook(stack: str) -> str:
    """The recovery sheet of stacks/Pulumi.<stack>.yaml (raises StackFileError/ConfigError on bad input)."""
    raw = read_stack_config(stack)
    config = load_stack_config(raw, stack)
    return runbook_markdown(run_program(stack, raw), config)
