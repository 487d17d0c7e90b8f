"""The alarm sections of the recovery sheet: a heading per runbook anchor, and the deeper steps of each.

Alarm sections are keyed by the anchor each alarm's description links to ("Runbook: #site-down"); an
alarm whose anchor has no section here is an error, so the descriptions and this sheet cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from leanstack.config import StackConfig
from leanstack.mocks import Resource, StackRun
from leanstack.runbook.facts import (
    ALARM,
    APP_TOOL,
    APP_UNIT_GLOB,
    RecoveryFacts,
    RunbookError,
    github_anchor,
    recovery_facts,
)

ANCHOR_RE = re.compile(r"Runbook: #([a-z0-9-]+)")

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


@dataclass(frozen=True)
class AlarmPhrases:
    """The pieces several alarm steps share, pinned to the stack and region."""

    stack: str
    region: str
    s: str  # " --stack NAME"
    session: str  # how to open the SSM session on the host
    app_unit: str  # where the app's status and log are
    replace: str  # how to replace the one host
    health: str  # the app's health path, asked on the host


def alarm_phrases(f: RecoveryFacts, config: StackConfig) -> AlarmPhrases:
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
    return AlarmPhrases(stack, region, s, session, app_unit, replace, health)


def alarm_steps(run: StackRun, config: StackConfig) -> dict[str, list[str]]:
    """Deeper steps per alarm section, after the alarm's own description (what users feel, first check).

    Every command is pinned to the stack and region; every step on a host says how to open the session.
    """
    p = alarm_phrases(recovery_facts(run, config), config)
    steps = {**_web_steps(p), **_data_and_worker_steps(p), **_host_timer_steps(p)}
    if config.hosts.scaled:
        # Scaled out, the hosts sit behind a load balancer and the groups replace them.
        steps["site-down"] = [
            "Open the URL in the alarm yourself. A Cloudflare 52x page: Cloudflare cannot reach the load balancer; "
            "a 503 from the load balancer: no healthy host; a leanstack 502/504 page: nginx is up and the app is not.",
            "Hosts healthy? EC2 console > Target groups > the stack's group > Targets, and "
            "[Unhealthy targets](#unhealthy-targets) if that alarm fired too.",
            f"On a host (open a session: `aws ssm start-session --region {p.region} --target <its instance id>`): "
            f"`sudo systemctl status nginx`, {p.app_unit}.",
            "Every host broken by one change (a deploy, a new AMI): roll back; the group replaces hosts on its own "
            "once they pass the health check again.",
            "If Cloudflare's checks are being challenged (bot protection), allow Route 53's health checkers.",
        ]
    return steps


def _web_steps(p: AlarmPhrases) -> dict[str, list[str]]:
    """What users see first: the site, its errors, its hosts and load balancer, its latency."""
    stack, region, s, session, app_unit, replace, health = (
        p.stack,
        p.region,
        p.s,
        p.session,
        p.app_unit,
        p.replace,
        p.health,
    )
    return {
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
    }


def _data_and_worker_steps(p: AlarmPhrases) -> dict[str, list[str]]:
    """The database's connections, restore tests and storage, and the workers."""
    stack, region, s, session = p.stack, p.region, p.s, p.session
    return {
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
    }


def _host_timer_steps(p: AlarmPhrases) -> dict[str, list[str]]:
    """The host's timers (backups, drills, jobs) and the uploads' replication."""
    stack, region, s, session = p.stack, p.region, p.s, p.session
    return {
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


def alarm_anchor(alarm: Resource) -> str | None:
    match = ANCHOR_RE.search(str(alarm.inputs.get("alarmDescription", "")))
    return match.group(1) if match else None


def sorted_alarms(run: StackRun) -> list[Resource]:
    return sorted(run.of_type(ALARM), key=lambda r: str(r.inputs.get("name", r.name)))


@dataclass(frozen=True)
class AlarmEntry:
    """One alarm as its section lists it: its name, region and own description (what users feel, first check)."""

    name: str
    region: str
    description: str


@dataclass(frozen=True)
class AlarmSection:
    heading: str
    alarms: tuple[AlarmEntry, ...]
    steps: tuple[str, ...]


@dataclass(frozen=True)
class AlarmSheet:
    """What the alarms part of the sheet states: where pages and tickets go, every alarm by section."""

    tickets: str  # the email tickets go to
    other_regions: tuple[str, ...]  # regions other than the stack's that hold an alarm
    summary: tuple[tuple[str, str, str], ...]  # (link to its section, name, region) per alarm
    sections: tuple[AlarmSection, ...]
    automatic: tuple[tuple[str, str], ...]  # (name, description) of the alarms that act rather than email


def alarm_sheet(run: StackRun, config: StackConfig) -> AlarmSheet:
    """The alarms grouped by the section their description links to; raises RunbookError on a missing section."""
    alarms = sorted_alarms(run)
    sections: dict[str, list[Resource]] = {}
    automatic: list[Resource] = []
    for alarm in alarms:
        anchor = alarm_anchor(alarm)
        if anchor is None:
            automatic.append(alarm)
            continue
        if anchor not in ALARM_HEADINGS:
            raise RunbookError(f"alarm {alarm.inputs.get('name')} links to #{anchor}, which this runbook lacks")
        sections.setdefault(anchor, []).append(alarm)
    summary = tuple(
        (f"[{ALARM_HEADINGS[a]}](#{a})", f"`{alarm.inputs.get('name')}`", alarm.region)
        for a, grouped in sections.items()
        for alarm in grouped
    )
    every_steps = alarm_steps(run, config)
    ordered = []
    for anchor, heading in ALARM_HEADINGS.items():
        if anchor not in sections:
            continue
        if github_anchor(heading) != anchor:
            raise RunbookError(f"heading {heading!r} does not produce the anchor #{anchor}")
        entries = tuple(
            AlarmEntry(
                str(alarm.inputs.get("name")),
                alarm.region,
                ANCHOR_RE.sub("", str(alarm.inputs.get("alarmDescription", ""))).strip(),
            )
            for alarm in sections[anchor]
        )
        ordered.append(AlarmSection(heading, entries, tuple(every_steps[anchor])))
    return AlarmSheet(
        tickets=config.alerts.ticket_email or config.alert_email,
        other_regions=tuple(sorted({a.region for a in alarms if a.region and a.region != config.region})),
        summary=summary,
        sections=tuple(ordered),
        automatic=tuple((str(a.inputs.get("name")), str(a.inputs.get("alarmDescription", ""))) for a in automatic),
    )
