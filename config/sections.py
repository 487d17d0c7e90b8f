"""The sections of a stack file, each the Args dataclass of its component, and the whole StackConfig.

Each section doubles as the args dataclass of its component (`leanstack.components` re-exports
`DatabaseArgs`), so a default documented here is the component's default, and each validates
its own fields on construction. Defaults are the lean, safe choice; the dev stack file relaxes
the safety ones explicitly (deletion protection, final snapshot, `protect`).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any, Literal

# --------------------------------------------------------------------------- sections
from leanstack.config.fields import (
    _HHMM,
    _WEEKDAY,
    AWS_REGIONS,
    CACHE_DEFAULT_VERSIONS,
    CACHE_ENGINE_VERSIONS,
    EMAIL_RE,
    ENV_NAME_RE,
    HOSTNAME_ALLOWED,
    HOSTNAME_RE,
    LOG_RETENTION_DAYS,
    REGION_ALLOWED,
    REGION_RE,
    SCRATCH_DATABASE_PREFIX,
    SECRETS_MANAGER_ARN_RE,
    SSM_PARAMETER_RE,
    SUBNET_ID_RE,
    URL_PATH_RE,
    Validated,
    _check_cidr,
    _check_db_class,
    _check_pg_version,
    _check_region,
    _check_secret_source,
    _drill_url_problem,
    _minutes,
    _overlaps,
    _show,
    calendar_problem,
    setting,
)
from leanstack.config.naming import PROJECT


@dataclass(frozen=True)
class NetworkArgs(Validated):
    """The VPC: two public subnets (host) and two private subnets (database, cache) in two AZs."""

    cidr: str = setting(
        "10.20.0.0/16",
        doc="VPC CIDR block; split into four equal subnets. Changing it replaces the VPC and everything in it.",
        check=_check_cidr,
    )
    existing_vpc_id: str = setting(
        "",
        doc="Use this existing VPC instead of creating one (then also give the subnet ids).",
        pattern=r"(vpc-[0-9a-f]{8,17})?",
        allowed="a VPC id such as vpc-0123456789abcdef0",
    )
    existing_public_subnet_ids: tuple[str, ...] = setting(
        (),
        doc="With existingVpcId: public subnets (with a route to an internet gateway) for the host.",
        pattern=SUBNET_ID_RE,
        allowed="subnet ids such as subnet-0123456789abcdef0",
    )
    existing_private_subnet_ids: tuple[str, ...] = setting(
        (),
        doc="With existingVpcId: private subnets in two different AZs for the database and cache.",
        pattern=SUBNET_ID_RE,
        allowed="subnet ids such as subnet-0123456789abcdef0",
    )


JOB_NAME_RE = r"[a-z0-9-]{1,40}"
ARGV_ITEM_RE = r"[^\x00]+"


@dataclass(frozen=True)
class JobArgs(Validated):
    """A scheduled job: a command run in a container of the serving release, on one host."""

    schedule: str = setting(
        doc="When it runs: a systemd OnCalendar expression, in UTC unless it names a timezone. "
        "Example: '*-*-* 03:15:00' (daily at 03:15), 'Mon..Fri 09:00', '*:0/15' (every 15 minutes).",
        check=calendar_problem,
    )
    command: tuple[str, ...] = setting(
        doc="The command run in the app's image with its config, secrets and database credentials, as Docker's "
        'CMD: a list is exec form (the argv, e.g. ["bin/report", "--daily"]), a string is shell form, run '
        "by /bin/sh -c (e.g. 'bin/report --daily && bin/cleanup').",
        pattern=ARGV_ITEM_RE,
        allowed="a list of non-empty arguments, or a string (run by /bin/sh -c)",
        unique=False,
        command=True,
    )

    def section_problem(self) -> tuple[str, str] | None:
        if not self.command:
            return ("command", 'missing; expected a list of non-empty arguments such as ["bin/report"]')
        return None


PROCESS_NAME_RE = r"[a-z0-9-]{1,30}"
# ElastiCache's maxmemory-policy values; every one but noeviction drops keys when memory runs out.
EVICTION_POLICIES = (
    "noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu", "volatile-random",
    "volatile-ttl",
)  # fmt: skip


@dataclass(frozen=True)
class ProcessArgs(Validated):
    """A long-running process beside the web container (a worker), like a Procfile line."""

    command: tuple[str, ...] = setting(
        doc="The command (argv list) run in the app's image with its config, secrets and database credentials; "
        'no port. Example: ["bin/worker", "--queue", "default"].',
        pattern=ARGV_ITEM_RE,
        allowed="a list of non-empty arguments",
        unique=False,
    )
    count: int = setting(1, doc="How many copies run on each host that runs processes (the jobs host when "
                         "scaled out).", min=1, max=10)  # fmt: skip
    stop_timeout_seconds: int = setting(
        30,
        doc="On a deploy or stop, the process gets SIGTERM and this many seconds to finish its current job "
        "before it is killed.",
        min=1,
        max=3600,
    )

    def section_problem(self) -> tuple[str, str] | None:
        if not self.command:
            return ("command", 'missing; expected a list of non-empty arguments such as ["bin/worker"]')
        return None


@dataclass(frozen=True)
class AppArgs(Validated):
    """The application the host runs (one container behind nginx) and how it is shipped."""

    port: int = setting(
        3000,
        doc="Port the app listens on inside its container; the host publishes it on 127.0.0.1:port and, "
        "during a deploy, port+1.",
        min=1024,
        max=65534,
    )
    health_path: str = setting(
        "/healthz",
        doc="Path nginx and the site-down check call; the app answers 200 when healthy.",
        pattern=URL_PATH_RE,
        allowed="a URL path such as /healthz (letters, digits, '.', '_', '~', '-', '/')",
    )
    image: str = setting(
        "",
        doc="Image repository without a tag; empty means the stack's own ECR repository.",
        pattern=r"([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9._/-]+|",
        allowed="an image repository without a tag, such as ghcr.io/acme/web, or empty",
    )
    env: dict[str, str] = setting(
        doc="Plain environment variables for the app (name: value); never secrets.",
        key_pattern=ENV_NAME_RE,
        pattern=r"[^\x00-\x1f\x7f]*",
        allowed="a single-line value",
        default_factory=dict,
    )
    secrets: dict[str, str] = setting(
        doc="Secret environment variables: name -> SSM parameter name or Secrets Manager ARN, read at start. "
        "A name may be in env or in secrets, not both.",
        key_pattern=ENV_NAME_RE,
        pattern=f"{SSM_PARAMETER_RE}|{SECRETS_MANAGER_ARN_RE}",
        allowed="an SSM parameter name such as /leanstack/prod/app/stripe-key (up to 15 parts of letters, "
        "digits, '_', '.' and '-', each after one '/') or a Secrets Manager ARN",
        check=_check_secret_source,
        default_factory=dict,
    )
    registry_secret_arn: str = setting(
        "",
        doc="Secrets Manager secret ({username, password}) to pull an image from outside ECR.",
        pattern=f"({SECRETS_MANAGER_ARN_RE})?",
        allowed="a Secrets Manager ARN, or empty",
    )
    health_timeout_seconds: int = setting(
        60, doc="How long a new version may take to pass its health check during a deploy.", min=5, max=900
    )
    release_command: tuple[str, ...] = setting(
        (),
        doc="Runs once per deploy in a container of the new image, with the app's config, secrets and database "
        "credentials, before any traffic switches; a non-zero exit stops the deploy and the old version keeps "
        "serving. Migrations belong here and must be backward compatible. As Docker's CMD: a list is exec "
        'form (["bin/migrate"]), a string is shell form, run by /bin/sh -c ("bin/migrate --verbose").',
        pattern=ARGV_ITEM_RE,
        allowed="a list of non-empty arguments, or a string (run by /bin/sh -c)",
        unique=False,
        command=True,
    )
    jobs: dict[str, JobArgs] = setting(
        doc="Scheduled jobs: name -> {schedule, command}; each runs on one host (the jobs host when scaled out), "
        "never twice at once, and a failed run raises the job-failed alarm.",
        key_pattern=JOB_NAME_RE,
        allowed_key="a job name of 1-40 lower-case letters, digits and '-'",
        default_factory=dict,
    )
    processes: dict[str, ProcessArgs] = setting(
        doc="Long-running processes beside the web container (workers), like a Procfile: name -> {command, count, "
        "stopTimeoutSeconds}. Each runs the serving release's image with the app's config and secrets, no port, "
        "restarted when it exits; a deploy starts them after the release command and stops the old ones with "
        "SIGTERM and the timeout. They run on the jobs host when scaled out.",
        key_pattern=PROCESS_NAME_RE,
        allowed_key="a process name of 1-30 lower-case letters, digits and '-' (not web)",
        default_factory=dict,
    )
    keep_images: int = setting(
        30,
        doc="Newest images the ECR repository keeps; older ones expire unless a deploy marked them released "
        "(release-<tag>: never expired).",
        min=20,
        max=1000,
    )


@dataclass(frozen=True)
class ProxyHostArgs(Validated):
    """The one EC2 host running nginx in front of the app."""

    instance_type: str = setting(
        "t4g.small",
        doc="EC2 instance type; Graviton (t4g, m7g, c7g...) to match the arm64 AMI.",
        pattern=r"[a-z][a-z0-9]*g[a-z0-9-]*\.[a-z0-9]+",
        allowed="a Graviton (arm64) instance type such as t4g.small",
    )
    ami_id: str = setting(
        "",
        doc="Pin an AMI; empty looks up the current Amazon Linux 2023 arm64 AMI.",
        pattern=r"(ami-[0-9a-f]{8,17})?",
        allowed="an AMI id such as ami-0123456789abcdef0, or empty",
    )
    root_volume_gb: int = setting(20, doc="Root gp3 volume size in GiB (encrypted).", min=8, max=1024)
    max_body_mb: int = setting(10, doc="Largest request body nginx accepts, in MiB.", min=1, max=1024)
    hsts_max_age_seconds: int = setting(
        31536000, doc="Strict-Transport-Security max-age; 0 turns HSTS off.", min=0, max=63072000
    )


@dataclass(frozen=True)
class AutoscaleArgs(Validated):
    """Let AWS add and remove hosts with load, between min and max (max 0: off)."""

    min: int = setting(0, doc="Fewest hosts, at least 2 (one of them runs the backup jobs).", min=0, max=20)
    max: int = setting(0, doc="Most hosts; 0 turns autoscaling off.", min=0, max=20)


@dataclass(frozen=True)
class HostsArgs(Validated):
    """How many proxy hosts: one by default; more puts them behind a load balancer."""

    count: int = setting(
        1,
        doc="Proxy hosts. 1: the one host with an Elastic IP. More: an Auto Scaling group behind an "
        "Application Load Balancer (about $30/month for the load balancer, plus each host).",
        min=1,
        max=20,
    )
    autoscale: AutoscaleArgs = setting(
        AutoscaleArgs(),
        doc="Instead of a fixed count: scale on CPU between autoscale.min and autoscale.max hosts.",
    )

    @property
    def scaled(self) -> bool:
        """More than one host, so a load balancer in front of an Auto Scaling group."""
        return self.count > 1 or self.autoscale.max > 0


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
        "minutes instead of the last off-site dump. Costs the backup storage there ($0.095/GB-month) and its "
        "transfer. Same account only (RDS does not replicate to another account).",
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
                f"got {_show(self.backup_window)}; expected a window of at least 30 minutes",
            )
        # Both windows in minutes of the week, to reject an overlap RDS would refuse at apply time.
        days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        m_start_s, m_end_s = self.maintenance_window.split("-")
        m_start = days.index(m_start_s[:3]) * 1440 + _minutes(m_start_s[4:])
        m_end = days.index(m_end_s[:3]) * 1440 + _minutes(m_end_s[4:])
        if (m_end - m_start) % 10080 < 30:
            return (
                "maintenance_window",
                f"got {_show(self.maintenance_window)}; expected a window of at least 30 minutes",
            )
        for day in range(7):
            b_start = day * 1440 + start
            b_end = b_start + (end - start) % 1440
            if _overlaps(b_start, b_end, m_start, m_start + (m_end - m_start) % 10080):
                return (
                    "backup_window",
                    f"got {_show(self.backup_window)}; it overlaps maintenanceWindow {_show(self.maintenance_window)}",
                )
        return None


@dataclass(frozen=True)
class CacheArgs(Validated):
    """ElastiCache (Valkey or Redis OSS), off by default: off means no resources at all."""

    enabled: bool = setting(False, doc="Create the cache. Off by default: add it when the app needs it.")
    engine: Literal["valkey", "redis"] = setting("valkey", doc="valkey (cheaper) or redis (Redis OSS).")
    engine_version: str = setting(
        "",
        doc="Engine version (major.minor); empty: 8.0 for valkey, 7.1 (the last Redis OSS) for redis. "
        f"Allowed: valkey {', '.join(CACHE_ENGINE_VERSIONS['valkey'])}; "
        f"redis {', '.join(CACHE_ENGINE_VERSIONS['redis'])}.",
        pattern=r"(\d+\.\d+)?",
        allowed="major.minor such as 8.0, or empty for the engine's default",
    )
    node_type: str = setting(
        "cache.t4g.micro",
        doc="ElastiCache node type.",
        pattern=r"cache\.[a-z0-9]+\.[a-z0-9]+",
        allowed="a node type starting with 'cache.', such as cache.t4g.micro",
    )
    snapshot_retention_days: int = setting(1, doc="Days of daily cache snapshots; 0 disables.", min=0, max=35)
    replicas: int = setting(
        0,
        doc="Replica nodes; 1 or more turns on automatic failover and Multi-AZ (each adds a node's price).",
        min=0,
        max=5,
    )
    eviction_policy: str = setting(
        "",
        doc="maxmemory-policy: what the cache does when full. Empty: noeviction with app.processes (a queue's jobs "
        "must never be evicted; writes fail instead, loudly), else the engine's default volatile-lru. An evicting "
        "policy is refused with app.processes.",
        check=lambda v: None if v in ("", *EVICTION_POLICIES) else f"one of {', '.join(EVICTION_POLICIES)}, or empty",
        choices=("", *EVICTION_POLICIES),
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.engine_version:
            object.__setattr__(self, "engine_version", CACHE_DEFAULT_VERSIONS[self.engine])


@dataclass(frozen=True)
class CdnArgs(Validated):
    """Cloudflare in front of the host, on an existing zone."""

    zone_id: str = setting(
        doc="Cloudflare zone id of the domain (32 hex characters; Cloudflare dashboard > Overview).",
        pattern=r"[0-9a-f]{32}",
        allowed="32 lower-case hex characters",
    )
    proxied: bool = setting(
        True,
        doc=(
            "Cloudflare proxies the hostnames (orange cloud). Off is for debugging only: the origin is "
            "then open to the internet on 443 and browsers will not trust its Cloudflare origin certificate."
        ),
    )
    static_paths: tuple[str, ...] = setting(
        ("/assets/", "/static/"),
        doc="Path prefixes of static files Cloudflare may cache, as long as the origin's Cache-Control says.",
        pattern=r"/[A-Za-z0-9._~/-]*/",
        allowed="path prefixes starting and ending with '/', such as /assets/",
    )
    zone_name: str = setting(
        "",
        doc="The Cloudflare zone's name (its apex, such as example.com); it decides which hostnames the zone's "
        "certificate covers. Empty: the last two labels of domain (three under a suffix such as co.uk).",
        pattern=f"({HOSTNAME_RE})?",
        allowed=HOSTNAME_ALLOWED + ", or empty",
    )
    advanced_certificate: bool = setting(
        False,
        doc="The zone has a certificate that covers names two or more levels under it (Cloudflare Advanced "
        "Certificate Manager or Total TLS, paid). Off: Universal SSL, which covers the zone's apex and its "
        "first-level names only, so hostnames deeper than that are refused.",
    )


@dataclass(frozen=True)
class StorageArgs(Validated):
    """File storage for the app's uploads, off by default: off means no resources at all."""

    enabled: bool = setting(
        False,
        doc="Create the uploads bucket (in the stack's region), its replica in backup.region (versioned, Object "
        "Lock as backup.objectLockMode/objectLockDays) and the app's own AWS role, which may use the uploads "
        "bucket and nothing else.",
    )
    cors_origins: tuple[str, ...] = setting(
        (),
        doc="Origins allowed to upload straight from the browser (presigned PUT/POST), such as "
        "https://example.com. Empty: no CORS rule, uploads go through the app.",
        pattern=r"https://[a-z0-9.-]+(:[0-9]{1,5})?",
        allowed="an https origin without a path, such as https://example.com",
    )
    keep_deleted_days: int = setting(
        30,
        doc="Days the uploads bucket keeps an overwritten or deleted file's old version (the replica keeps "
        "them backup.expireAfterDays).",
        min=1,
        max=3650,
    )
    drill_files_sql: str = setting(
        "",
        doc="SQL the restore drill runs against the restored database, returning the object keys it references "
        "(first column), such as SELECT key FROM uploads; the drill checks a sample of them exists in the "
        "replica. Empty: no files check.",
        pattern=r"[^\x00]{0,4000}",
        allowed="SQL text of at most 4000 characters",
    )
    existing_replica: str = setting(
        "",
        doc="Recovery stacks only (python -m leanstack recover init): the name of the region-down stack's replica "
        "bucket, used as this stack's replica as it is; nothing is created or changed on it. Empty: a new replica.",
        pattern=r"([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?",
        allowed="3-63 lower-case letters, digits, '.' and '-'",
    )

    def section_problem(self) -> tuple[str, str] | None:
        """The first rule across this section's own fields that fails: (field, message), or None."""
        if not self.enabled and self.existing_replica:
            return ("existing_replica", "given with storage off; expected storage.enabled: true")
        if not self.enabled and (self.cors_origins or self.drill_files_sql):
            field = "cors_origins" if self.cors_origins else "drill_files_sql"
            return (field, "given with storage off; expected storage.enabled: true")
        return None


# An RSA key this size seals for as long as backups are kept (recovery-key new makes 4096).
RECOVERY_KEY_MIN_BITS = 3072


def _check_recovery_key(value: Any) -> str | None:
    """None when `value` is empty or an RSA public key of at least RECOVERY_KEY_MIN_BITS bits."""
    if not value:
        return None
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(base64.b64decode(str(value), validate=True))
    except ValueError:
        return "the base64 line printed by python -m leanstack recovery-key new (this is not a public key)"
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < RECOVERY_KEY_MIN_BITS:
        return f"an RSA public key of at least {RECOVERY_KEY_MIN_BITS} bits (python -m leanstack recovery-key new)"
    return None


@dataclass(frozen=True)
class BackupBucketArgs(Validated):
    """The off-site backup bucket, in a second region (optionally a second account)."""

    region: str = setting(
        doc="Region of the backup bucket; must differ from the stack's region. Changing it replaces the bucket.",
        pattern=REGION_RE,
        allowed=REGION_ALLOWED,
        check=_check_region,
        choices=AWS_REGIONS,
    )
    bucket_name: str = setting(
        "",
        doc="Bucket name; empty means leanstack-<stack>-backups-<suffix>. Changing it replaces the bucket.",
        pattern=r"([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?",
        allowed="3-63 lower-case letters, digits, '.' and '-'",
    )
    prefix: str = setting(
        "postgres",
        doc="Key prefix of the backups; each stack's host writes under <prefix>/<stack>/ only.",
        pattern=r"[a-z0-9][a-z0-9/_-]{0,62}",
        allowed="lower-case letters, digits, '/', '_' and '-'",
    )
    object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = setting(
        "COMPLIANCE",
        doc="COMPLIANCE: nobody, root included, can delete a backup before its lock expires. GOVERNANCE: "
        "privileged users can.",
    )
    object_lock_days: int = setting(30, doc="Days each backup object is locked against deletion.", min=1, max=3650)
    glacier_after_days: int = setting(
        30,
        doc="Move backups to Glacier Instant Retrieval after this many days; 0 keeps them in Standard.",
        min=0,
        max=3650,
    )
    expire_after_days: int = setting(
        365,
        doc="Backups expire this many days after they are written; an expired, overwritten or deleted version "
        "is kept as many days again before S3 removes it.",
        min=2,
        max=3650,
    )
    profile: str = setting(
        "",
        doc="AWS CLI profile of a second account for the bucket (isolates backups from the main account).",
        pattern=r"[A-Za-z0-9_.-]*",
        allowed="a profile name",
    )
    role_arn: str = setting(
        "",
        doc="IAM role to assume in a second account for the bucket.",
        pattern=r"(arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+)?",
        allowed="an IAM role ARN such as arn:aws:iam::123456789012:role/leanstack-backups",
    )
    backup_calendar: str = setting(
        "*-*-* 03:30:00",
        doc="When the host runs leanstack-backup (systemd OnCalendar, UTC unless it names a timezone).",
        check=calendar_problem,
    )
    drill_calendar: str = setting(
        "*-*-01 05:00:00",
        doc="When the host runs leanstack-restore-drill (systemd OnCalendar, UTC unless it names a timezone).",
        check=calendar_problem,
    )
    drill_target: Literal["local", "instance", "url"] = setting(
        "local",
        doc="Where the restore drill restores: local, a throw-away PostgreSQL of the database's major version on "
        "the host (needs no space on, nor even the presence of, the production instance); instance, a marked "
        "scratch database on the RDS instance (needs free storage there the size of the database); url, the "
        "server in drillDatabaseUrl.",
    )
    drill_database_url: str = setting(
        "",
        doc="Only with drillTarget: url. A maintenance database on the drill's server, without a password, "
        "such as postgresql://drill@db.internal:5432/postgres.",
    )
    drill_starts_app: bool = setting(
        False,
        doc="With drillTarget: local. After the restore, the drill starts the serving release's image against the "
        "scratch database on an isolated network (LEANSTACK_DRILL=1) and requires its health path to answer 200 "
        "within app.healthTimeoutSeconds.",
    )
    recovery_public_key: str = setting(
        "",
        doc="The recovery key's public half, the one base64 line `python -m leanstack recovery-key new` prints "
        "(its private half stays in the owner's password manager). Set: the host seals the app's SSM parameters "
        "and Secrets Manager secrets to it daily into sealed-secrets/<stack>/ of this bucket; "
        "`python -m leanstack secrets restore STACK --from-backup` opens them. Empty: no sealed copy.",
        pattern=r"[A-Za-z0-9+/=]*",
        allowed="the base64 line printed by python -m leanstack recovery-key new",
        check=_check_recovery_key,
    )
    existing_bucket: str = setting(
        "",
        doc="Recovery stacks only (python -m leanstack recover init): the name of the region-down stack's backup "
        "bucket, used as it is (its lock, policy and lifecycle stay untouched; nothing is created for it). This "
        "stack writes its own dumps there under <backup.prefix>/<stack>/ and restores the old stack's with "
        "leanstack-restore --from-stack OLD, so backup.region may equal aws:region.",
        pattern=r"([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?",
        allowed="3-63 lower-case letters, digits, '.' and '-'",
    )
    verify_sql: str = setting(
        "",
        doc="SQL the drill runs against the restored database, such as SELECT count(*) > 0 FROM users; every row's "
        "first column must be true. Empty: only row counts are compared with the backup's manifest.",
        pattern=r"[^\x00]{0,4000}",
        allowed="SQL text of at most 4000 characters",
    )

    def section_problem(self) -> tuple[str, str] | None:
        """The first rule across this section's own fields that fails: (field, message), or None."""
        if self.existing_bucket and (self.profile or self.role_arn):
            # The bucket policy there admits the region-down stack's host role only, by ARN.
            field = "profile" if self.profile else "role_arn"
            return (field, "given with backup.existingBucket; a recovery stack uses the bucket from this account only")
        if self.profile and self.role_arn:
            return ("role_arn", "give either backup.profile or backup.roleArn, not both")
        if self.expire_after_days <= self.object_lock_days:
            return (
                "expire_after_days",
                f"got {self.expire_after_days}; expected more than backup.objectLockDays "
                f"({self.object_lock_days}), or expired backups stay locked and billed",
            )
        if self.drill_target == "url" and not self.drill_database_url:
            return (
                "drill_database_url",
                "missing; drillTarget is url, so expected the drill server's URL such as "
                "postgresql://drill@db.internal:5432/postgres",
            )
        if self.drill_database_url and (problem := _drill_url_problem(self.drill_database_url)):
            # Never echoed: a mistyped URL may carry a password.
            return ("drill_database_url", f"not a usable URL; {problem}")
        if self.drill_starts_app and self.drill_target != "local":
            return (
                "drill_starts_app",
                f"got true with drillTarget {_show(self.drill_target)}; expected drillTarget: local (the app the "
                "drill starts reaches only the host's throw-away PostgreSQL)",
            )
        if self.drill_database_url and self.drill_target != "url":
            return (
                "drill_database_url",
                f"got a URL with drillTarget {_show(self.drill_target)}; expected it only with drillTarget: url",
            )
        if self.glacier_after_days and self.expire_after_days < self.glacier_after_days + 90:
            return (
                "glacier_after_days",
                f"got {self.glacier_after_days}; Glacier Instant Retrieval bills 90 days minimum, so expected "
                f"expireAfterDays ({self.expire_after_days}) >= glacierAfterDays + 90, or 0 to skip Glacier",
            )
        return None


@dataclass(frozen=True)
class SlackArgs(Validated):
    """A Slack channel that receives the page topic through AWS Chatbot; both ids or neither."""

    workspace_id: str = setting(
        "",
        doc="The Slack workspace (team) id, as the AWS Chatbot console shows it after authorising it, such as "
        "T0123ABCDE.",
        pattern=r"(T[A-Z0-9]{8,11})?",
        allowed="a Slack workspace id such as T0123ABCDE (T and 8-11 upper-case letters or digits), or empty",
    )
    channel_id: str = setting(
        "",
        doc="The Slack channel id (channel details > About, at the bottom), such as C0123ABCDEF.",
        pattern=r"([CG][A-Z0-9]{8,11})?",
        allowed="a Slack channel id such as C0123ABCDEF (C or G and 8-11 upper-case letters or digits), or empty",
    )

    def section_problem(self) -> tuple[str, str] | None:
        if bool(self.workspace_id) != bool(self.channel_id):
            missing = "channel_id" if self.workspace_id else "workspace_id"
            return (missing, "missing; alerts.slack needs both workspaceId and channelId, or neither")
        return None

    @property
    def enabled(self) -> bool:
        return bool(self.workspace_id)


@dataclass(frozen=True)
class AlertThresholds(Validated):
    """When the alarms page: on user pain and data at risk only, never on a busy server."""

    error_rate_percent: int = setting(
        5,
        doc="Page when more than this percent of user requests get a 5xx for 5 minutes in a row.",
        min=1,
        max=50,
    )
    min_requests_per_minute: int = setting(
        10,
        doc="The 5xx share only counts in minutes with at least this many user requests (health checks "
        "excluded), so one failed request at 3 a.m. does not page.",
        min=1,
        max=100000,
    )
    site_down_minutes: int = setting(
        3,
        doc="Page when the site-down health check (through the CDN) has failed for this many minutes.",
        min=1,
        max=30,
    )
    database_free_storage_percent: int = setting(
        10,
        doc="Page when the database's free storage falls below this percent of its allocated size.",
        min=5,
        max=50,
    )
    backup_stale_hours: int = setting(
        26,
        doc="Page when no off-site backup has succeeded for this many hours (more than the backup interval).",
        min=2,
        max=168,
    )
    latency_p95_ms: int = setting(
        1000,
        doc="Page when the 95th percentile of user requests' response time (nginx's request time on one host, the "
        "load balancer's TargetResponseTime when scaled out; health checks excluded) stays above this many "
        "milliseconds for 5 minutes. Minutes with too few requests to make a percentile do not count.",
        min=50,
        max=60000,
    )
    database_connections_percent: int = setting(
        80,
        doc="Page when the database's connections stay above this percent of its class's max_connections (RDS's "
        "default LEAST(DBInstanceClassMemory/9531392, 5000), estimated from the class's memory) for 5 minutes.",
        min=50,
        max=95,
    )
    ticket_email: str = setting(
        "",
        doc="Address for tickets: alarms that can wait for working hours (restore drill stale or failed, the "
        "budget, a failed job, files at risk, a crash-looping worker). Empty: alertEmail gets both pages and tickets.",
        pattern=f"({EMAIL_RE})?",
        allowed="an email address such as tickets@example.com, or empty",
    )
    slack: SlackArgs = setting(
        SlackArgs(),
        doc="Post pages to a Slack channel through AWS Chatbot (the workspace must be authorised in the Chatbot "
        "console once): {workspaceId, channelId}. Empty: email only.",
    )


PERSON_RE = r"([A-Za-z0-9][A-Za-z0-9 .,'@_+()-]{0,79})?"
PERSON_ALLOWED = 'a name, team or email of 1-80 characters such as "Ada Lovelace, ada@example.com"'
# The systems a recovery is split into, in the order the sheet lists them.
RECOVERY_SYSTEMS = ("database", "files", "secrets", "host", "dns", "deploy")


def _check_no_secret(value: Any) -> str | None:
    """Where a credential lives, never the credential: refuse what looks like a key, token or password."""
    text = str(value)
    if "-----BEGIN" in text or re.search(r"[A-Za-z0-9+/=_-]{24,}", text) or re.search(r"(?i)password\s*[:=]", text):
        return "where the credential lives (a place and who holds it), never the credential itself"
    return None


# A state backend URL as `pulumi login` takes it: s3://, gs://, azblob://, file://, https:// (no user:password@).
STATE_URL_RE = re.compile(r"\b(?:s3|gs|azblob|file|https)://[^\s@,;]+")


def _check_state_place(value: Any) -> str | None:
    """Where the state and its passphrase are: a backend URL may be long, but never carries a credential."""
    text = str(value)
    if re.search(r"://[^\s/]*@", text):
        return "where the state and its passphrase are, with no user or password in the URL"
    return _check_no_secret(STATE_URL_RE.sub("URL", text))


@dataclass(frozen=True)
class SystemRecovery(Validated):
    """Who brings one system back, and how fast and how fresh; empty fields fall back to the stack's."""

    owner: str = setting("", doc="Who owns this system's recovery; empty: leanstack:owner.", pattern=PERSON_RE,
                         allowed=PERSON_ALLOWED)  # fmt: skip
    second: str = setting(
        "",
        doc="Who can approve and run it when the owner cannot; empty: recovery.secondPerson.",
        pattern=PERSON_RE,
        allowed=PERSON_ALLOWED,
    )
    rto_minutes: int = setting(0, doc="Minutes to bring it back; 0: recovery.rtoMinutes.", min=0, max=10080)
    rpo_hours: int = setting(0, doc="Hours of its data you accept to lose; 0: recovery.rpoHours.", min=0, max=720)


@dataclass(frozen=True)
class RecoveryCredentials(Validated):
    """Where each recovery credential lives (a vault, a safe, who holds it): never the credential itself."""

    aws_root_mfa: str = setting(
        "", doc="Where the AWS account root's password and MFA device are.", pattern=r"[^\x00-\x1f]{0,160}",
        allowed="one line of at most 160 characters", check=_check_no_secret,
    )  # fmt: skip
    registrar: str = setting(
        "", doc="Where the domain registrar's login is.", pattern=r"[^\x00-\x1f]{0,160}",
        allowed="one line of at most 160 characters", check=_check_no_secret,
    )  # fmt: skip
    cloudflare: str = setting(
        "", doc="Where the Cloudflare account's login and 2FA are.", pattern=r"[^\x00-\x1f]{0,160}",
        allowed="one line of at most 160 characters", check=_check_no_secret,
    )  # fmt: skip
    recovery_key: str = setting(
        "", doc="Where the recovery key's private half is (backup.recoveryPublicKey).", pattern=r"[^\x00-\x1f]{0,160}",
        allowed="one line of at most 160 characters", check=_check_no_secret,
    )  # fmt: skip
    code_hosting: str = setting(
        "", doc="Where the code host's login and 2FA recovery codes are (the repository the stack is deployed from).",
        pattern=r"[^\x00-\x1f]{0,160}", allowed="one line of at most 160 characters", check=_check_no_secret,
    )  # fmt: skip
    pulumi_state: str = setting(
        "", doc="Where the Pulumi state is (the pulumi login URL; it must not be in the stack's region) and where its "
        "credentials and the stack's secrets passphrase are.",
        pattern=r"[^\x00-\x1f]{0,160}", allowed="one line of at most 160 characters", check=_check_state_place,
    )  # fmt: skip
    password_manager: str = setting(
        "", doc="Where the team password manager's emergency access is (its recovery kit, who holds it).",
        pattern=r"[^\x00-\x1f]{0,160}", allowed="one line of at most 160 characters", check=_check_no_secret,
    )  # fmt: skip


@dataclass(frozen=True)
class RecoveryTargets(Validated):
    """The recovery targets the runbook states and the config is checked against. Required for production."""

    rto_minutes: int = setting(
        0,
        doc="Recovery time objective: minutes from disaster to the site serving again. 0 = not set (dev only).",
        min=0,
        max=10080,
    )
    rpo_hours: int = setting(
        0,
        doc="Recovery point objective: hours of data you accept to lose; at least the off-site backup interval "
        "plus 1 hour. 0 = not set (dev only).",
        min=0,
        max=720,
    )
    second_person: str = setting(
        "",
        doc="Who can approve and run recovery steps when the owner cannot (a name, team or email); required for "
        "production, so a recovery never waits on one person or one inbox.",
        pattern=PERSON_RE,
        allowed=PERSON_ALLOWED,
    )
    database: SystemRecovery = setting(SystemRecovery(), doc="The database: owner, second person, RTO and RPO.")
    files: SystemRecovery = setting(SystemRecovery(), doc="Uploaded files (storage): owner, second, RTO and RPO.")
    secrets: SystemRecovery = setting(SystemRecovery(), doc="The app's config and secrets: owner, second, RTO, RPO.")
    host: SystemRecovery = setting(SystemRecovery(), doc="The host(s): owner, second person, RTO and RPO.")
    dns: SystemRecovery = setting(SystemRecovery(), doc="DNS and the CDN (Cloudflare): owner, second, RTO and RPO.")
    deploy: SystemRecovery = setting(SystemRecovery(), doc="The deploy path (CI, images): owner, second, RTO, RPO.")
    credentials: RecoveryCredentials = setting(
        RecoveryCredentials(), doc="Where the recovery credentials live, without any secret."
    )

    def system(self, name: str, owner: str) -> SystemRecovery:
        """One system's recovery with the stack-wide values filled in where it leaves them empty."""
        own: SystemRecovery = getattr(self, name)
        return SystemRecovery(
            owner=own.owner or owner,
            second=own.second or self.second_person,
            rto_minutes=own.rto_minutes or self.rto_minutes,
            rpo_hours=own.rpo_hours or self.rpo_hours,
        )


@dataclass(frozen=True)
class BudgetArgs(Validated):
    """The stack's AWS Budgets cost budget (see components/budget.py)."""

    monthly_usd: int = setting(
        0,
        doc="Monthly budget in whole USD; e-mails alertEmail when actual spend passes 80% and 100%. 0 = 1.5 x what the "
        "config's hosts, load balancer, database, cache and dashboard cost a month (leanstack/pricing.json), rounded "
        "up.",
        min=0,
        max=1000000,
    )


@dataclass(frozen=True)
class StackConfig:
    """The whole validated stack config."""

    stack: str
    region: str
    domain: str
    hostnames: tuple[str, ...]
    alert_email: str
    cdn: CdnArgs
    backup: BackupBucketArgs
    network: NetworkArgs = field(default_factory=NetworkArgs)
    app: AppArgs = field(default_factory=AppArgs)
    host: ProxyHostArgs = field(default_factory=ProxyHostArgs)
    hosts: HostsArgs = field(default_factory=HostsArgs)
    database: DatabaseArgs = field(default_factory=DatabaseArgs)
    cache: CacheArgs = field(default_factory=CacheArgs)
    storage: StorageArgs = field(default_factory=StorageArgs)
    alerts: AlertThresholds = field(default_factory=AlertThresholds)
    recovery: RecoveryTargets = field(default_factory=RecoveryTargets)
    budget: BudgetArgs = field(default_factory=BudgetArgs)
    owner: str = ""

    @property
    def is_production(self) -> bool:
        """Production: named prod/production/prod-*, or its database is protected (see `is_production`)."""
        return is_production(self.stack, self.database)

    @property
    def name_prefix(self) -> str:
        """Prefix of physical names: leanstack-<stack>."""
        return f"{PROJECT}-{self.stack}"


# Top-level keys of the `leanstack:` namespace and the section dataclass of each object key.
SECTIONS: dict[str, type[Any]] = {
    "network": NetworkArgs,
    "app": AppArgs,
    "host": ProxyHostArgs,
    "hosts": HostsArgs,
    "database": DatabaseArgs,
    "cache": CacheArgs,
    "storage": StorageArgs,
    "cdn": CdnArgs,
    "backup": BackupBucketArgs,
    "alerts": AlertThresholds,
    "recovery": RecoveryTargets,
    "budget": BudgetArgs,
}
SCALARS: dict[str, dict[str, Any]] = {
    "domain": {
        "doc": "The site's apex domain, in the Cloudflare zone.",
        "pattern": HOSTNAME_RE,
        "allowed": HOSTNAME_ALLOWED,
        "required": True,
    },
    "hostnames": {
        "doc": "Hostnames served; empty means the domain and www.<domain>. Each must be one the zone's "
        "certificate covers: with Universal SSL, the zone's apex or a name one level under it.",
        "pattern": HOSTNAME_RE,
        "allowed": HOSTNAME_ALLOWED,
        "required": False,
    },
    "alertEmail": {
        "doc": "Address that receives pages, and tickets too unless alerts.ticketEmail is set (confirm the "
        "subscription emails AWS sends).",
        "pattern": EMAIL_RE,
        "allowed": "an email address such as ops@example.com",
        "required": True,
    },
    "owner": {
        "doc": "Who owns this stack (a name, team or email); shown in the runbook. Required for production.",
        "pattern": r"[A-Za-z0-9][A-Za-z0-9 .,'@_+()-]{0,79}",
        "allowed": 'a name, team or email of 1-80 characters such as "Ada Lovelace, ada@example.com"',
        "required": False,
    },
}
REQUIRED_SECTIONS = ("cdn", "backup")

# --------------------------------------------------------------------------- production and recovery

PRODUCTION_NAME_RE = r"prod|production|prod-[a-z0-9-]+"


def is_production(stack: str, database: DatabaseArgs) -> bool:
    """Whether a stack holds data people care about, and so must name an owner and recovery targets.

    A stack is production when its name is `prod`, `production` or starts with `prod-`, or when its
    database is protected (`database.protect` or `database.deletionProtection`, both on by default).
    The name alone is not enough (forks call it live, main, eu...), and a protected database is the
    stack saying its data matters; a disposable stack turns both protections off, as dev does.
    """
    return bool(re.fullmatch(PRODUCTION_NAME_RE, stack)) or database.protect or database.deletion_protection


def eviction_policy(cache: CacheArgs, app: AppArgs) -> str:
    """The cache's maxmemory-policy: as configured, else noeviction with workers; "" = the engine's default."""
    if cache.eviction_policy:
        return cache.eviction_policy
    return "noeviction" if app.processes else ""


# --------------------------------------------------------------------------- Args the program fills in


@dataclass(frozen=True)
class AlertsArgs(Validated):
    """Who the page and ticket topics reach."""

    email: str = setting(
        doc="The address that receives pages (and tickets, without ticket_email); AWS emails it a confirmation "
        "link first.",
        pattern=EMAIL_RE,
        allowed="an email address such as ops@example.com",
    )
    ticket_email: str = setting(
        "",
        doc="The address that receives tickets; empty: email.",
        pattern=f"({EMAIL_RE})?",
        allowed="an email address such as tickets@example.com, or empty",
    )
    slack: SlackArgs = setting(SlackArgs(), doc="A Slack channel the page topic posts to through AWS Chatbot.")


@dataclass(frozen=True)
class OriginCertificateArgs(Validated):
    """The hostnames the Cloudflare origin certificate covers."""

    hostnames: tuple[str, ...] = setting(
        doc="Hostnames the origin certificate covers (the CDN's hostnames).",
        pattern=HOSTNAME_RE,
        allowed=HOSTNAME_ALLOWED,
    )


@dataclass(frozen=True)
class UptimeCheckArgs(Validated):
    """The site-down check, asked from outside through the CDN."""

    hostname: str = setting(
        doc="The hostname the check calls over HTTPS.", pattern=HOSTNAME_RE, allowed=HOSTNAME_ALLOWED
    )
    health_path: str = setting(
        "/healthz",
        doc="Path the check calls; the app answers 200 when healthy.",
        pattern=URL_PATH_RE,
        allowed="a URL path such as /healthz (letters, digits, '.', '_', '~', '-', '/')",
    )
    site_down_minutes: int = setting(
        3, doc="Minutes the check must fail in a row before anyone is paged.", min=1, max=30
    )
