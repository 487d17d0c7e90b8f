"""The facts of the sheet's reference sections (services, targets, backups, people, stateful resources, access).

Each function returns values a template prints; the prose around them is in templates/.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leanstack.config import StackConfig, backup_interval_hours
from leanstack.config.sections import STATE_URL_RE
from leanstack.host.agent.contract import stack_backup_prefix
from leanstack.mocks import Resource, StackRun
from leanstack.plan import build_plan
from leanstack.runbook.facts import SSM_PARAMETER, STATEFUL_TYPES


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


def service_rows(run: StackRun, config: StackConfig) -> list[list[str]]:
    """Per component the stack creates: what it is, where it runs, its monthly cost (from the priced plan), owner."""
    present = {r.component for r in run.resources}
    components: dict[str, Any] = build_plan(run)["cost"]["components"]
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
        cost = _monthly_cost(components.get(service.component))
        rows.append([service.component, service.what, where, cost, config.owner or "(not set)"])
    return rows


def _monthly_cost(entry: dict[str, Any] | None) -> str:
    """A component's monthly cost, from the priced plan (`leanstack.cost`'s list prices)."""
    if not entry:
        return "see `python -m leanstack plan`"
    text = f"${entry['monthly']:,.2f}"
    return text + (" + usage not priced" if entry.get("notPriced") else "")


def backup_every(config: StackConfig) -> str:
    """How often a dump goes off-site: "every 24 h", or the calendar itself when it is not a fixed interval."""
    interval = backup_interval_hours(config.backup.backup_calendar)
    return f"every {interval:g} h" if interval is not None else f"on `{config.backup.backup_calendar}`"


def backup_folder(config: StackConfig, database_name: str) -> str:
    """Where the stack's dumps of the database sit in the backup bucket."""
    return f"{stack_backup_prefix(config.backup.prefix, config.stack)}/{database_name}"


def people_rows(config: StackConfig) -> list[list[str]]:
    """Who recovers each system, and its targets."""
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
    return rows


def credential_places(config: StackConfig) -> list[tuple[str, str]]:
    """(label, where it lives) per recovery credential; never the credential itself."""
    c = config.recovery.credentials
    return [(label, getattr(c, key)) for key, label in CREDENTIAL_NAMES.items()]


def job_rows(config: StackConfig) -> list[list[str]]:
    return [
        [f"`{name}`", f"`{job.schedule}`", f"`{' '.join(job.command)}`", f"`leanstack-job-{name}.timer`"]
        for name, job in sorted(config.app.jobs.items())
    ]


def pulumi_login(config: StackConfig) -> str:
    """The `pulumi login` line: the state URL when recovery.credentials.pulumiState holds one."""
    state = config.recovery.credentials.pulumi_state
    url = STATE_URL_RE.search(state)
    if url:
        return f"pulumi login {url.group(0)}   # recovery.credentials.pulumiState"
    return f"pulumi login BACKEND   # BACKEND: {state or 'the state URL (recovery.credentials.pulumiState)'}"


def host_target(config: StackConfig) -> str:
    """The instance id to open a shell on: the one host, or, scaled out, the jobs host (it runs the backups)."""
    s = f" --stack {config.stack}"
    if not config.hosts.scaled:
        return f"$(pulumi stack output hostInstanceId{s})"
    return (
        f"$(aws autoscaling describe-auto-scaling-groups --region {config.region} --auto-scaling-group-names "
        f"$(pulumi stack output hostJobsGroup{s}) --query 'AutoScalingGroups[0].Instances[0].InstanceId' "
        "--output text)"
    )


def has_cache_token(run: StackRun) -> bool:
    """Whether the stack keeps a cache auth token in SSM."""
    return any(r.type == SSM_PARAMETER and "/cache/" in str(r.inputs.get("name")) for r in run.resources)


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


def stateful_rows(run: StackRun) -> list[list[str]]:
    """What holds data, and what stops it from being deleted by accident."""
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
    return rows
