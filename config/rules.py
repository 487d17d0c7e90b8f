"""Rules across sections: what one section's value means for another's (run by the loader)."""

from __future__ import annotations

import itertools
import re

from leanstack.config.fields import ConfigError, camel, shown
from leanstack.config.naming import PROJECT
from leanstack.config.sections.cache import CACHE_ENGINE_VERSIONS
from leanstack.config.sections.cdn import CdnArgs
from leanstack.config.sections.stack import StackConfig

# --------------------------------------------------------------------------- hostnames the CDN can serve

# Second-level labels under which country-code domains are registered (example.co.uk, example.com.au).
_SECOND_LEVEL_SUFFIXES = frozenset({"co", "com", "net", "org", "gov", "edu", "ac", "ne", "or", "gob", "nic"})


def guess_zone(domain: str) -> str:
    """The zone a domain is most likely in: its last two labels, three under a suffix such as co.uk.

    A guess (no public-suffix list offline): cdn.zoneName states the zone when it is wrong.
    """
    labels = domain.split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL_SUFFIXES else 2
    return ".".join(labels[-keep:])


def check_certificate_covers(domain: str, hostnames: tuple[str, ...], given: bool, cdn: CdnArgs) -> None:
    """Every hostname is one Cloudflare's certificate for the zone covers, or visitors get a TLS error.

    Universal SSL (free, on by default) covers the zone's apex and `*.zone`: one level, as any
    wildcard certificate. www.dev.example.com in zone example.com is two levels down.
    """
    p = PROJECT
    zone = cdn.zone_name or guess_zone(domain)
    if domain != zone and not domain.endswith("." + zone):
        raise ConfigError(
            f"{p}:cdn.zoneName",
            f"got {shown(zone)}; expected the zone domain {domain} is in: {domain} or a parent of it",
        )
    if cdn.advanced_certificate:
        return
    for i, name in enumerate(hostnames):
        depth = name.count(".") - zone.count(".")
        if depth <= 1:
            continue
        why = (
            f"{name} is {depth} levels under the zone {zone}, and Cloudflare's Universal SSL certificate covers "
            f"{zone} and *.{zone} only, so visitors would get a TLS error"
        )
        if not given:
            shallow = [h for h in hostnames if h.count(".") - zone.count(".") <= 1]
            raise ConfigError(
                f"{p}:hostnames",
                f"missing, so {domain} and www.{domain}; {why}: set hostnames: [{', '.join(shallow)}] (no www), "
                f"or cdn.zoneName if the zone is {domain}, or cdn.advancedCertificate: true if a paid certificate "
                "covers it",
            )
        raise ConfigError(
            f"{p}:hostnames[{i}]",
            f"got {shown(name)}; {why}: remove it, or set cdn.zoneName if the zone is deeper, or "
            "cdn.advancedCertificate: true if a paid certificate covers it",
        )


# Margin on top of the backup interval for the worst-case recovery point: the timer's random delay
# (up to 10 minutes) plus the time the dump and upload take.
BACKUP_MARGIN_HOURS = 1
_SHORTHAND_HOURS = {"minutely": 1 / 60, "hourly": 1, "daily": 24, "weekly": 168}


def _hour_values(spec: str) -> list[int] | None:
    """The hours of the day a systemd OnCalendar hour field matches: *, 3, 0,12, 0/6, 1..5."""
    hours: set[int] = set()
    for part in spec.split(","):
        step_match = re.fullmatch(r"(\*|\d{1,2})/(\d{1,2})", part)
        range_match = re.fullmatch(r"(\d{1,2})\.\.(\d{1,2})", part)
        if part == "*":
            hours.update(range(24))
        elif step_match:
            start = 0 if step_match.group(1) == "*" else int(step_match.group(1))
            step = int(step_match.group(2))
            if step == 0:
                return None
            hours.update(range(start, 24, step))
        elif range_match:
            hours.update(range(int(range_match.group(1)), int(range_match.group(2)) + 1))
        elif re.fullmatch(r"\d{1,2}", part):
            hours.add(int(part))
        else:
            return None
    if not hours or max(hours) > 23:
        return None
    return sorted(hours)


def backup_interval_hours(calendar: str) -> float | None:
    """The longest gap between two runs of a daily-or-more-often OnCalendar expression, in hours.

    Understands the shorthands (hourly, daily, weekly) and `*-*-* H:MM[:SS]` forms whose hour field
    is *, a list, a range or a step; returns None for anything else (weekday lists, monthly dates),
    which the RPO check then refuses rather than guess.
    """
    text = calendar.strip().removesuffix(" UTC").strip()
    if text in _SHORTHAND_HOURS:
        return float(_SHORTHAND_HOURS[text])
    match = re.fullmatch(r"(?:\*-\*-\*\s+)?([0-9*,./]+):([0-9*,./]+)(?::[0-9*,./]+)?", text)
    if match is None:
        return None
    hours = _hour_values(match.group(1))
    if hours is None:
        return None
    # Several runs within an hour (minute field *, a list or a step) only shorten the gaps: the hour
    # field bounds them from above, which is the safe side for an RPO check.
    gaps = [b - a for a, b in itertools.pairwise(hours)] + [hours[0] + 24 - hours[-1]]
    return float(max(gaps))


def _check_recovery(c: StackConfig) -> None:
    """Owner and recovery targets: required for production, and an RPO the backups can meet."""
    p = PROJECT
    why = f"stack {c.stack!r} is production (see leanstack.config.is_production)"
    if c.is_production:
        if not c.owner:
            raise ConfigError(f"{p}:owner", f'missing; {why}, so expected who owns it, e.g. "Ada, ada@example.com"')
        if not c.recovery.rto_minutes:
            raise ConfigError(f"{p}:recovery.rtoMinutes", f"missing; {why}, so expected minutes such as 240")
        if not c.recovery.rpo_hours:
            raise ConfigError(f"{p}:recovery.rpoHours", f"missing; {why}, so expected hours such as 25")
        if not c.recovery.second_person:
            raise ConfigError(
                f"{p}:recovery.secondPerson",
                f"missing; {why}, so expected who can run recovery when the owner cannot, "
                'e.g. "Grace, grace@example.com"',
            )
    state = c.recovery.credentials.pulumi_state
    if re.search(rf"(?:\bregion=|[.-]){re.escape(c.region)}\b", state):
        raise ConfigError(
            f"{p}:recovery.credentials.pulumiState",
            f"got {shown(state)}, which names {c.region}; expected Pulumi state outside aws:region: recovering from a "
            f"region outage there needs the state, so keep it in another region",
        )
    if c.recovery.rto_minutes and c.recovery.rto_minutes < 30:
        raise ConfigError(
            f"{p}:recovery.rtoMinutes",
            f"got {c.recovery.rto_minutes}; expected at least 30: a new host boots and a restore runs in no less",
        )
    if c.recovery.rpo_hours:
        interval = backup_interval_hours(c.backup.backup_calendar)
        if interval is None:
            raise ConfigError(
                f"{p}:backup.backupCalendar",
                f"got {shown(c.backup.backup_calendar)}; cannot tell how often it runs to check recovery.rpoHours; "
                'expected a daily or more frequent form such as "*-*-* 03:30:00" or "*-*-* 00/6:00:00"',
            )
        worst = interval + BACKUP_MARGIN_HOURS
        if c.recovery.rpo_hours < worst:
            raise ConfigError(
                f"{p}:recovery.rpoHours",
                f"got {c.recovery.rpo_hours}; backups every {interval:g} h (backup.backupCalendar) can lose up to "
                f"{worst:g} h of data, so expected at least {worst:g}, or back up more often",
            )
    interval = backup_interval_hours(c.backup.backup_calendar)
    if interval is not None and c.alerts.backup_stale_hours <= interval:
        raise ConfigError(
            f"{p}:alerts.backupStaleHours",
            f"got {c.alerts.backup_stale_hours}; expected more than the backup interval ({interval:g} h, "
            "backup.backupCalendar), or the alarm fires between two good backups",
        )


def _check_app_parameters(c: StackConfig) -> None:
    """The host role reads parameters under /leanstack/<stack>/ only: another stack's are out of reach."""
    own = f"/{PROJECT}/{c.stack}/"
    for job_name, job in sorted(c.app.jobs.items()):
        if problem := job.section_problem():
            raise ConfigError(f"{PROJECT}:app.jobs.{job_name}.{camel(problem[0])}", problem[1])
    for process_name, process in sorted(c.app.processes.items()):
        if process_name == "web":
            raise ConfigError(
                f"{PROJECT}:app.processes.web", "web is the serving container (app.port); name the worker otherwise"
            )
        if problem := process.section_problem():
            raise ConfigError(f"{PROJECT}:app.processes.{process_name}.{camel(problem[0])}", problem[1])
    policy = c.cache.eviction_policy
    if c.app.processes and c.cache.enabled and policy and policy != "noeviction":
        raise ConfigError(
            f"{PROJECT}:cache.evictionPolicy",
            f"got {shown(policy)} with app.processes; a worker's queue on a cache that evicts loses jobs when memory "
            "runs out, silently: expected noeviction (the default with workers; a full cache then refuses writes, "
            "which the app sees)",
        )
    for name, source in sorted(c.app.secrets.items()):
        if source.startswith("/") and not source.startswith(own):
            raise ConfigError(
                f"{PROJECT}:app.secrets.{name}",
                f"got {shown(source)}; expected an SSM parameter under {own} (the host may read only its own "
                "stack's parameters) or a Secrets Manager ARN",
            )


def check_across(c: StackConfig) -> None:
    """Rules that involve more than one key."""
    p = PROJECT
    # The one exception: a recovery stack (backup.existingBucket) runs in the region that held the
    # backups because its own region is gone; it reads and extends them there until that returns.
    if c.backup.region == c.region and not c.backup.existing_bucket:
        raise ConfigError(
            f"{p}:backup.region",
            f"got {shown(c.backup.region)}, the stack's own region; expected another region so that backups "
            "survive a regional outage",
        )
    if problem := c.backup.section_problem():
        raise ConfigError(f"{p}:backup.{camel(problem[0])}", problem[1])

    if problem := c.storage.section_problem():
        raise ConfigError(f"{p}:storage.{camel(problem[0])}", problem[1])

    if problem := c.alerts.slack.section_problem():
        raise ConfigError(f"{p}:alerts.slack.{camel(problem[0])}", problem[1])

    _check_scale_out(c)
    _check_app(c)
    _check_app_parameters(c)
    _check_cache_version(c)
    db = c.database
    if problem := db.section_problem():
        raise ConfigError(f"{p}:database.{camel(problem[0])}", problem[1])

    private = c.network.existing_private_subnet_ids
    if c.network.existing_vpc_id:
        if db.multi_az and len(private) < 2:
            raise ConfigError(
                f"{p}:database.multiAz",
                f"got true with {len(private)} private subnet(s); Multi-AZ needs "
                "network.existingPrivateSubnetIds in two AZs",
            )
        if len(private) < 2:
            raise ConfigError(
                f"{p}:network.existingPrivateSubnetIds",
                f"got {len(private)} subnet(s); expected at least 2 in different AZs (RDS requires two AZs)",
            )
        if not c.network.existing_public_subnet_ids:
            raise ConfigError(
                f"{p}:network.existingPublicSubnetIds",
                "missing; expected at least one public subnet for the host",
            )
    elif private or c.network.existing_public_subnet_ids:
        raise ConfigError(
            f"{p}:network.existingVpcId",
            "missing; existing subnet ids are only used together with existingVpcId",
        )
    _check_recovery(c)


def _check_app(c: StackConfig) -> None:
    """A variable is either plain or secret: the host would otherwise set it twice, one value silently lost."""
    for name in sorted(set(c.app.env) & set(c.app.secrets)):
        raise ConfigError(
            f"{PROJECT}:app.secrets.{name}",
            "also in app.env; a name may be in app.env or app.secrets, not both: remove one",
        )


def _check_cache_version(c: StackConfig) -> None:
    versions = CACHE_ENGINE_VERSIONS[c.cache.engine]
    if c.cache.engine_version not in versions:
        newer = ""
        if c.cache.engine == "redis":
            newer = " (Redis OSS ends at 7.1; Valkey has 8.x: set cache.engine: valkey)"
        raise ConfigError(
            f"{PROJECT}:cache.engineVersion",
            f"got {shown(c.cache.engine_version)}; expected one of {', '.join(versions)} for engine "
            f"{c.cache.engine}{newer}",
        )


def _check_scale_out(c: StackConfig) -> None:
    """More hosts, replicas: the combinations AWS or leanstack's jobs-host design cannot take."""
    p = PROJECT
    hosts, autoscale = c.hosts, c.hosts.autoscale
    if autoscale.max or autoscale.min:
        if hosts.count != 1:
            raise ConfigError(
                f"{p}:hosts.count",
                f"got {hosts.count}; expected 1 (the default) with hosts.autoscale, which sets the number of hosts: "
                "give one or the other",
            )
        if autoscale.max == 0:
            raise ConfigError(
                f"{p}:hosts.autoscale.max",
                f"missing; expected at least autoscale.min ({autoscale.min}) to turn autoscaling on",
            )
        if autoscale.min < 2:
            raise ConfigError(
                f"{p}:hosts.autoscale.min",
                f"got {autoscale.min}; expected at least 2: one host runs the backup jobs, at least one more serves",
            )
        if autoscale.max < autoscale.min:
            raise ConfigError(
                f"{p}:hosts.autoscale.max",
                f"got {autoscale.max}; expected at least autoscale.min ({autoscale.min})",
            )
    if c.cache.replicas and not c.cache.enabled:
        raise ConfigError(f"{p}:cache.replicas", f"got {c.cache.replicas}; expected 0 while cache.enabled is false")
    if c.database.replica_multi_az and not c.database.read_replicas:
        raise ConfigError(f"{p}:database.replicaMultiAz", "got true; expected false while database.readReplicas is 0")
