"""The typed stack config: one frozen dataclass per section, validated from a plain dict.

`load_stack_config(raw, stack)` takes the stack's config as Pulumi hands it over (keys
like `leanstack:database`, values either typed or the JSON strings the engine passes)
and returns a `StackConfig`, or raises `ConfigError` with one line naming the full key,
the value given and what is allowed. Nothing here imports Pulumi, so the tests (and
`python -m leanstack`) can validate a stack file without the Pulumi runtime, and the
JSON Schema for the stack files is generated from these same dataclasses.

Each section doubles as the args dataclass of its component (`components.database`
re-exports `DatabaseArgs`), so a default documented here is the component's default.
Defaults are the lean, safe choice; the dev stack file relaxes the safety ones
explicitly (deletion protection, final snapshot, `protect`).
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib.util
import ipaddress
import itertools
import json
import re
import types
import typing
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

PROJECT = "leanstack"

# --------------------------------------------------------------------------- errors


class ConfigError(ValueError):
    """One invalid stack-config key; `str()` is the one line a user sees."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


def _show(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------------- field helpers
#
# A field's metadata carries what the validator and the JSON Schema need:
#   doc      what the key means (shown in the schema, so editors show it on hover)
#   min/max  numeric bounds
#   pattern  a regex a string must match fully, with `allowed` saying it in words
#   check    a function returning an error message (or None) for values a regex can't judge
#   choices  the closed list of values `check` accepts, for the JSON Schema (an enum)
#   (what a change of the value replaces or restarts is not here: leanstack/resource_facts.py
#   holds it per resource type, and the diff reads it from there)

Check = Callable[[Any], str | None]


def setting(
    default: Any = dataclasses.MISSING,
    *,
    doc: str,
    min: float | None = None,
    max: float | None = None,
    pattern: str | None = None,
    allowed: str | None = None,
    check: Check | None = None,
    key_pattern: str | None = None,
    choices: tuple[str, ...] | None = None,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    metadata = {
        "choices": choices,
        "key_pattern": key_pattern,
        "doc": doc,
        "min": min,
        "max": max,
        "pattern": pattern,
        "allowed": allowed,
        "check": check,
    }
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


HOSTNAME_RE = r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]"
HOSTNAME_ALLOWED = "a lower-case DNS name such as example.com (letters, digits, '-' and '.')"
EMAIL_RE = r"[A-Za-z0-9._%+-]+@" + HOSTNAME_RE.replace("[a-z", "[A-Za-z")


def _provider_regions() -> tuple[str, ...]:
    """The regions the AWS provider accepts: its `Region` enum, read from the installed pulumi_aws.

    Read from the package's source rather than imported, so validating a stack stays Pulumi-free
    and fast; upgrading pulumi_aws brings new regions with it.
    """
    spec = importlib.util.find_spec("pulumi_aws")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        source = Path(location) / "_enums.py"
        if not source.exists():
            continue
        for node in ast.parse(source.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and node.name == "Region":
                return tuple(
                    stmt.value.value
                    for stmt in node.body
                    if isinstance(stmt, ast.Assign)
                    and isinstance(stmt.value, ast.Constant)
                    and isinstance(stmt.value.value, str)
                )
    raise RuntimeError("pulumi_aws is not installed (or has no Region enum): cannot check region names")


AWS_REGIONS = _provider_regions()
REGION_RE = r"[a-z]{2}(-[a-z]+)+-\d{1,2}"
REGION_ALLOWED = "an AWS region the provider knows (pulumi_aws.Region), such as us-east-1"


def _check_region(value: Any) -> str | None:
    if value in AWS_REGIONS:
        return None
    close = sorted(difflib.get_close_matches(str(value), AWS_REGIONS, n=3, cutoff=0.85))
    return REGION_ALLOWED + (f"; did you mean {' or '.join(close)}?" if close else "")


URL_PATH_RE = r"/[A-Za-z0-9._~/-]*"
SUBNET_ID_RE = r"subnet-[0-9a-f]{8,17}"


def _check_cidr(value: Any) -> str | None:
    try:
        net = ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        return "a valid IPv4 network such as 10.20.0.0/16"
    if net.version != 4 or not net.is_private or not 16 <= net.prefixlen <= 24:
        return "a private IPv4 network from /16 to /24 (room for four subnets), such as 10.20.0.0/16"
    return None


def _check_pg_version(value: Any) -> str | None:
    major = str(value).split(".")[0]
    if re.fullmatch(r"\d+(\.\d+)?", str(value)) and major in POSTGRES_MAJOR_VERSIONS:
        return None
    return f"one of {', '.join(POSTGRES_MAJOR_VERSIONS)} (or a minor version of one, such as 17.4)"


def postgres_parameter_family(engine_version: str) -> str:
    """The RDS parameter group family of a PostgreSQL version: postgres<major> (17.4 -> postgres17)."""
    return f"postgres{engine_version.split('.')[0]}"


# ElastiCache versions per engine for node-based clusters, oldest first. Redis OSS ends at 7.1 on
# ElastiCache (newer Redis is not open source; AWS moved on to Valkey); 4.0 and 5.0 are past standard
# support. Valkey 7.2 is Redis OSS 7.2's successor. Source: the ElastiCache User Guide, "Engine
# versions and upgrading in ElastiCache" (docs.aws.amazon.com/AmazonElastiCache/latest/dg/engine-versions.html).
CACHE_ENGINE_VERSIONS: dict[str, tuple[str, ...]] = {
    "valkey": ("7.2", "8.0", "8.1", "8.2", "9.0"),
    "redis": ("6.2", "7.0", "7.1"),
}
# The default per engine: the newest Redis OSS there is; for Valkey the 8.0 line, in every region.
CACHE_DEFAULT_VERSIONS = {"valkey": "8.0", "redis": "7.1"}


# Names app.env and app.secrets may not use, with the reason the error gives. Secrets reach the
# docker CLI's own environment on the host (`docker run --env NAME` passes them on), and both reach
# the container, so a name the host's programs, the shell, the C library or leanstack interpret is
# refused. Allowed on purpose: LANG/LC_*, TZ, PYTHON* and NODE_* (the app's own runtime settings,
# which the docker CLI, a Go program, ignores), HTTP(S)_PROXY (the app may need one; the docker
# CLI only uses it for a TCP daemon, which the host has not).
RESERVED_ENV_NAMES: dict[str, str] = {
    "PORT": "leanstack sets it to app.port",
    "REDIS_URL": "reserved: leanstack will set it when the cache is on",
    "PATH": "the host's docker CLI and the container find their programs with it",
    "HOME": "the docker CLI reads its config from it, and the image sets it for the app",
    "HOSTNAME": "Docker sets it to the container's name",
    "TMPDIR": "the docker CLI and the C library put temporary files there",
    **dict.fromkeys(("USER", "LOGNAME", "SHELL", "PWD", "OLDPWD"), "the login session sets it"),
    **dict.fromkeys(("IFS", "ENV", "BASH_ENV", "CDPATH", "SHELLOPTS", "BASHOPTS", "PS4"), "shells interpret it"),
    **dict.fromkeys(
        ("GLIBC_TUNABLES", "GCONV_PATH", "LOCPATH", "NLSPATH", "HOSTALIASES", "RES_OPTIONS", "LOCALDOMAIN"),
        "the C library interprets it",
    ),
    **dict.fromkeys(("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"), "systemd interprets it"),
}
RESERVED_ENV_PREFIXES: dict[str, str] = {
    "DATABASE_": "leanstack sets DATABASE_HOST, _PORT, _NAME, _USER and _PASSWORD",
    "LEANSTACK_": "reserved for leanstack's own settings",
    "AWS_": "reserved: leanstack will set the app's AWS settings",
    "DOCKER_": "the docker CLI on the host reads it as its own setting (DOCKER_HOST redirects it)",
    "LD_": "the dynamic loader interprets it (LD_PRELOAD runs code in every program started)",
    "MALLOC_": "the C library interprets it",
    "BASH_FUNC_": "bash imports functions from it",
    "SYSTEMD_": "systemd interprets it",
}
# The shape of a name, with the reserved ones excluded (so the JSON Schema flags them in editors).
ENV_NAME_RE = (
    f"(?!(?:{'|'.join(sorted(RESERVED_ENV_NAMES))})$)"
    f"(?!{'|'.join(sorted(RESERVED_ENV_PREFIXES))})"
    r"[A-Z_][A-Z0-9_]{0,63}"
)


def env_name_problem(name: str) -> str | None:
    """Why `name` cannot be one of the app's variables, or None when it can."""
    if name in RESERVED_ENV_NAMES:
        return f"{RESERVED_ENV_NAMES[name]}; choose another name"
    for prefix, why in RESERVED_ENV_PREFIXES.items():
        if name.startswith(prefix):
            return f"{prefix}* names are not allowed: {why}; choose another name"
    if not re.fullmatch(ENV_NAME_RE, name):
        return "expected upper-case letters, digits and '_', not starting with a digit, at most 64"
    return None


# An SSM parameter name as AWS accepts it (PutParameter's naming constraints): segments of
# a-zA-Z0-9_.- after single slashes, at most 15 levels and 1011 characters, and not starting with
# aws or ssm in any case. leanstack wants the leading slash (the host's role is scoped by path).
SSM_PARAMETER_RE = r"(/[A-Za-z0-9_.-]+){1,15}"
SSM_PARAMETER_MAX = 1011


def _check_secret_source(value: Any) -> str | None:
    text = str(value)
    if not text.startswith("/"):
        return None
    if len(text) > SSM_PARAMETER_MAX:
        return f"an SSM parameter name of at most {SSM_PARAMETER_MAX} characters (AWS's limit)"
    if text[1:4].lower() in ("aws", "ssm"):
        return "an SSM parameter name not starting with aws or ssm (AWS reserves them)"
    return None


# A Secrets Manager secret ARN (the host's leanstack-app checks the same shape on its own).
SECRETS_MANAGER_ARN_RE = r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@!-]+"

# The host tools (drill, restore) name every database they create leanstack_...; an app
# database with that prefix could be taken for one of theirs.
SCRATCH_DATABASE_PREFIX = "leanstack_"


def final_snapshot_name(stack: str) -> str:
    """The RDS final snapshot of the stack's database (components.database, the recovery sheet)."""
    return f"{PROJECT}-{stack}-final"


def _drill_url_problem(url: str) -> str | None:
    """What is wrong with a drill server URL (a maintenance database URL without a password), or None."""
    parts = urllib.parse.urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if (
        parts.scheme not in ("postgres", "postgresql")
        or not parts.hostname
        or not parts.path.strip("/")
        or not port_ok
        or any(c.isspace() or ord(c) < 32 for c in url)
    ):
        return "expected a URL such as postgresql://drill@db.internal:5432/postgres (scheme, host, database name)"
    if parts.password is not None:
        return "expected no password in it: stack config is not secret (the value is not shown here)"
    return None


# CloudWatch Logs only accepts these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)

# RDS's time windows: hh24:mi in UTC, weekdays as RDS spells them (it refuses 24:00 and 25:00).
_HHMM = r"([01]\d|2[0-3]):[0-5]\d"
_WEEKDAY = r"(mon|tue|wed|thu|fri|sat|sun)"

# PostgreSQL major versions RDS offers that are not past end of standard support.
POSTGRES_MAJOR_VERSIONS = ("14", "15", "16", "17")

# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class NetworkArgs:
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


@dataclass(frozen=True)
class AppArgs:
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
    keep_images: int = setting(
        30,
        doc="Newest images the ECR repository keeps; older ones expire unless a deploy marked them released "
        "(release-<tag>: never expired).",
        min=20,
        max=1000,
    )


@dataclass(frozen=True)
class ProxyHostArgs:
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
class AutoscaleArgs:
    """Let AWS add and remove hosts with load, between min and max (max 0: off)."""

    min: int = setting(0, doc="Fewest hosts, at least 2 (one of them runs the backup jobs).", min=0, max=20)
    max: int = setting(0, doc="Most hosts; 0 turns autoscaling off.", min=0, max=20)


@dataclass(frozen=True)
class HostsArgs:
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
class DatabaseArgs:
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


@dataclass(frozen=True)
class CacheArgs:
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

    def __post_init__(self) -> None:
        if not self.engine_version:
            object.__setattr__(self, "engine_version", CACHE_DEFAULT_VERSIONS[self.engine])


@dataclass(frozen=True)
class CdnArgs:
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
class BackupBucketArgs:
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
        doc="Key prefix the host writes backups under.",
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
        doc="When the host runs leanstack-backup (systemd OnCalendar, UTC).",
        pattern=r"[A-Za-z0-9*:,./~ -]{1,64}",
        allowed="a systemd OnCalendar expression such as *-*-* 03:30:00",
    )
    drill_calendar: str = setting(
        "*-*-01 05:00:00",
        doc="When the host runs leanstack-restore-drill (systemd OnCalendar, UTC).",
        pattern=r"[A-Za-z0-9*:,./~ -]{1,64}",
        allowed="a systemd OnCalendar expression such as *-*-01 05:00:00",
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
    verify_sql: str = setting(
        "",
        doc="SQL the drill runs against the restored database, such as SELECT count(*) > 0 FROM users; every row's "
        "first column must be true. Empty: only row counts are compared with the backup's manifest.",
        pattern=r"[^\x00]{0,4000}",
        allowed="SQL text of at most 4000 characters",
    )


@dataclass(frozen=True)
class AlertThresholds:
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


@dataclass(frozen=True)
class RecoveryTargets:
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


@dataclass(frozen=True)
class BudgetArgs:
    """The stack's AWS Budgets cost budget (see components/budget.py)."""

    monthly_usd: int = setting(
        0,
        doc="Monthly budget in whole USD; e-mails alertEmail when actual spend passes 80% and 100%. 0 = 1.5 x what the "
        "config's hosts, load balancer, database and cache cost a month (leanstack/pricing.json), rounded up.",
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
        "doc": "Address that receives every alarm (confirm the subscription email AWS sends).",
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

# --------------------------------------------------------------------------- naming


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _fields(cls: type[Any]) -> dict[str, dataclasses.Field[Any]]:
    return {camel(f.name): f for f in dataclasses.fields(cls)}


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if not close:
        lowered = {k.lower(): k for k in known}
        if key.lower() in lowered:
            close = [lowered[key.lower()]]
    hint = f"; did you mean {close[0]}?" if close else f"; known keys: {', '.join(sorted(known))}"
    return "unknown key" + hint


# --------------------------------------------------------------------------- value parsing


def _decode(value: Any) -> Any:
    """Pulumi passes object values as JSON strings; typed YAML values arrive as they are."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _parse_scalar(key: str, value: Any, hint: Any, meta: Mapping[str, Any]) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(key, f"got {_show(value)}; allowed: {', '.join(map(str, choices))}")
        return value
    if hint is bool:
        # The engine passes scalars as strings ("true"); YAML gives real booleans.
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ConfigError(key, f"got {_show(value)}; expected true or false")
        return value
    if hint is int:
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"got {_show(value)}; expected a whole number{_range(meta)}")
        low, high = meta.get("min"), meta.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(key, f"got {value}; expected a whole number{_range(meta)}")
        return value
    if hint is str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)  # `engineVersion: 17` in YAML is a number; accept it as "17"
        if not isinstance(value, str):
            raise ConfigError(key, f"got {_show(value)}; expected a string")
        pattern = meta.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            raise ConfigError(key, f"got {_show(value)}; expected {meta.get('allowed') or 'match ' + pattern}")
        check = meta.get("check")
        if check is not None:
            problem = check(value)
            if problem:
                raise ConfigError(key, f"got {_show(value)}; expected {problem}")
        return value
    raise TypeError(f"unsupported setting type {hint!r} for {key}")  # a bug in this module


def _range(meta: Mapping[str, Any]) -> str:
    low, high = meta.get("min"), meta.get("max")
    if low is not None and high is not None:
        return f" from {low:g} to {high:g}"
    if low is not None:
        return f" of at least {low:g}"
    if high is not None:
        return f" of at most {high:g}"
    return ""


def _parse_value(key: str, value: Any, hint: Any, meta: Mapping[str, Any]) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        (item_hint, _ellipsis) = typing.get_args(hint)
        value = _decode(value)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(key, f"got {_show(value)}; expected a list of {meta.get('allowed') or 'values'}")
        items = tuple(_parse_scalar(f"{key}[{i}]", item, item_hint, meta) for i, item in enumerate(value))
        if len(set(items)) != len(items):
            raise ConfigError(key, f"got {_show(value)}; expected no duplicates")
        return items
    if origin is dict:
        value = _decode(value)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(key, f"got {_show(value)}; expected an object of NAME: value")
        parsed: dict[str, Any] = {}
        for name, item in sorted(value.items()):
            if not re.fullmatch(meta["key_pattern"], str(name)):
                problem = env_name_problem(str(name)) or f"expected a name matching {meta['key_pattern']}"
                raise ConfigError(f"{key}.{name}", f"not allowed: {problem}")
            parsed[str(name)] = _parse_scalar(f"{key}.{name}", item, str, meta)
        return parsed
    if dataclasses.is_dataclass(hint):
        return _parse_section(key, value, typing.cast(type[Any], hint))
    if isinstance(hint, types.UnionType):
        raise TypeError(f"unsupported union for {key}")
    return _parse_scalar(key, value, hint, meta)


def _parse_section(key: str, raw: Any, cls: type[Any]) -> Any:
    raw = _decode(raw)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(key, f"got {_show(raw)}; expected an object with keys {', '.join(_fields(cls))}")
    known = _fields(cls)
    hints = typing.get_type_hints(cls)
    for name in raw:
        if name not in known:
            raise ConfigError(f"{key}.{name}", _suggest(str(name), list(known)))
    values: dict[str, Any] = {}
    for name, f in known.items():
        if name in raw:
            values[f.name] = _parse_value(f"{key}.{name}", raw[name], hints[f.name], f.metadata)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}.{name}", f"missing; expected {f.metadata.get('allowed') or 'a value'}")
    return cls(**values)


# --------------------------------------------------------------------------- whole stack


def load_stack_config(raw: Mapping[str, Any], stack: str) -> StackConfig:
    """Validate a stack's config (the `config:` map of Pulumi.<stack>.yaml) into a StackConfig.

    Raises ConfigError for the first problem found, naming the full key.
    """
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,20}", stack):
        raise ConfigError("stack", f"got {_show(stack)}; expected lower-case letters, digits and '-', at most 21")
    ours = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith(f"{PROJECT}:")}
    known = [*SCALARS, *SECTIONS]
    for name in ours:
        if name not in known:
            raise ConfigError(f"{PROJECT}:{name}", _suggest(name, known))

    region = raw.get("aws:region")
    if region is None:
        raise ConfigError("aws:region", "missing; expected the stack's AWS region such as us-east-1")
    region = _parse_scalar(
        "aws:region", region, str, {"pattern": REGION_RE, "allowed": REGION_ALLOWED, "check": _check_region}
    )

    for name, spec in SCALARS.items():
        if spec["required"] and name not in ours:
            raise ConfigError(f"{PROJECT}:{name}", f"missing; expected {spec['allowed']}")
    domain = _parse_scalar(f"{PROJECT}:domain", ours["domain"], str, SCALARS["domain"])
    given = _parse_value(f"{PROJECT}:hostnames", ours.get("hostnames", []), tuple[str, ...], SCALARS["hostnames"])
    hostnames = given or (domain, f"www.{domain}")
    for i, name in enumerate(hostnames):
        if name != domain and not name.endswith("." + domain):
            raise ConfigError(f"{PROJECT}:hostnames[{i}]", f"got {_show(name)}; expected {domain} or a name under it")

    sections: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        key = f"{PROJECT}:{name}"
        if name not in ours and name in REQUIRED_SECTIONS:
            missing = [k for k, f in _fields(cls).items() if f.default is dataclasses.MISSING]
            raise ConfigError(key, f"missing; expected an object with at least {', '.join(missing)}")
        sections[name] = _parse_section(key, ours.get(name), cls)

    _check_certificate_covers(domain, hostnames, bool(given), sections["cdn"])
    alert_email = _parse_scalar(f"{PROJECT}:alertEmail", ours["alertEmail"], str, SCALARS["alertEmail"])
    owner = _parse_scalar(f"{PROJECT}:owner", ours["owner"], str, SCALARS["owner"]) if "owner" in ours else ""
    config = StackConfig(
        stack=stack,
        region=region,
        domain=domain,
        hostnames=hostnames,
        alert_email=alert_email,
        owner=owner,
        **sections,
    )
    _check_across(config)
    return config


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


def _check_certificate_covers(domain: str, hostnames: tuple[str, ...], given: bool, cdn: CdnArgs) -> None:
    """Every hostname is one Cloudflare's certificate for the zone covers, or visitors get a TLS error.

    Universal SSL (free, on by default) covers the zone's apex and `*.zone`: one level, as any
    wildcard certificate. www.dev.example.com in zone example.com is two levels down.
    """
    p = PROJECT
    zone = cdn.zone_name or guess_zone(domain)
    if domain != zone and not domain.endswith("." + zone):
        raise ConfigError(
            f"{p}:cdn.zoneName",
            f"got {_show(zone)}; expected the zone domain {domain} is in: {domain} or a parent of it",
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
            f"got {_show(name)}; {why}: remove it, or set cdn.zoneName if the zone is deeper, or "
            "cdn.advancedCertificate: true if a paid certificate covers it",
        )


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
    why = f"stack {c.stack!r} is production (see leanstack.settings.is_production)"
    if c.is_production:
        if not c.owner:
            raise ConfigError(f"{p}:owner", f'missing; {why}, so expected who owns it, e.g. "Ada, ada@example.com"')
        if not c.recovery.rto_minutes:
            raise ConfigError(f"{p}:recovery.rtoMinutes", f"missing; {why}, so expected minutes such as 240")
        if not c.recovery.rpo_hours:
            raise ConfigError(f"{p}:recovery.rpoHours", f"missing; {why}, so expected hours such as 25")
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
                f"got {_show(c.backup.backup_calendar)}; cannot tell how often it runs to check recovery.rpoHours; "
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


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _check_app_parameters(c: StackConfig) -> None:
    """The host role reads parameters under /leanstack/<stack>/ only: another stack's are out of reach."""
    own = f"/{PROJECT}/{c.stack}/"
    for name, source in sorted(c.app.secrets.items()):
        if source.startswith("/") and not source.startswith(own):
            raise ConfigError(
                f"{PROJECT}:app.secrets.{name}",
                f"got {_show(source)}; expected an SSM parameter under {own} (the host may read only its own "
                "stack's parameters) or a Secrets Manager ARN",
            )


def _check_across(c: StackConfig) -> None:
    """Rules that involve more than one key."""
    p = PROJECT
    if c.backup.region == c.region:
        raise ConfigError(
            f"{p}:backup.region",
            f"got {_show(c.backup.region)}, the stack's own region; expected another region so that backups "
            "survive a regional outage",
        )
    if c.backup.profile and c.backup.role_arn:
        raise ConfigError(f"{p}:backup.roleArn", "give either backup.profile or backup.roleArn, not both")
    if c.backup.expire_after_days <= c.backup.object_lock_days:
        raise ConfigError(
            f"{p}:backup.expireAfterDays",
            f"got {c.backup.expire_after_days}; expected more than backup.objectLockDays "
            f"({c.backup.object_lock_days}), or expired backups stay locked and billed",
        )
    if c.backup.drill_target == "url" and not c.backup.drill_database_url:
        raise ConfigError(
            f"{p}:backup.drillDatabaseUrl",
            "missing; drillTarget is url, so expected the drill server's URL such as "
            "postgresql://drill@db.internal:5432/postgres",
        )
    if c.backup.drill_database_url and (problem := _drill_url_problem(c.backup.drill_database_url)):
        # Never echoed: a mistyped URL may carry a password.
        raise ConfigError(f"{p}:backup.drillDatabaseUrl", f"not a usable URL; {problem}")
    if c.backup.drill_starts_app and c.backup.drill_target != "local":
        raise ConfigError(
            f"{p}:backup.drillStartsApp",
            f"got true with drillTarget {_show(c.backup.drill_target)}; expected drillTarget: local (the app the "
            "drill starts reaches only the host's throw-away PostgreSQL)",
        )
    if c.backup.drill_database_url and c.backup.drill_target != "url":
        raise ConfigError(
            f"{p}:backup.drillDatabaseUrl",
            f"got a URL with drillTarget {_show(c.backup.drill_target)}; expected it only with drillTarget: url",
        )
    if c.backup.glacier_after_days and c.backup.expire_after_days < c.backup.glacier_after_days + 90:
        raise ConfigError(
            f"{p}:backup.glacierAfterDays",
            f"got {c.backup.glacier_after_days}; Glacier Instant Retrieval bills 90 days minimum, so expected "
            f"expireAfterDays ({c.backup.expire_after_days}) >= glacierAfterDays + 90, or 0 to skip Glacier",
        )

    _check_scale_out(c)
    _check_app(c)
    _check_app_parameters(c)
    _check_cache_version(c)
    db = c.database
    if db.max_allocated_storage_gb <= db.allocated_storage_gb:
        raise ConfigError(
            f"{p}:database.maxAllocatedStorageGb",
            f"got {db.max_allocated_storage_gb}; expected more than allocatedStorageGb ({db.allocated_storage_gb})",
        )
    start, end = (_minutes(t) for t in db.backup_window.split("-"))
    if (end - start) % 1440 < 30:
        raise ConfigError(
            f"{p}:database.backupWindow",
            f"got {_show(db.backup_window)}; expected a window of at least 30 minutes",
        )
    # Both windows in minutes of the week, to reject an overlap RDS would refuse at apply time.
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    m_start_s, m_end_s = db.maintenance_window.split("-")
    m_start = days.index(m_start_s[:3]) * 1440 + _minutes(m_start_s[4:])
    m_end = days.index(m_end_s[:3]) * 1440 + _minutes(m_end_s[4:])
    if (m_end - m_start) % 10080 < 30:
        raise ConfigError(
            f"{p}:database.maintenanceWindow",
            f"got {_show(db.maintenance_window)}; expected a window of at least 30 minutes",
        )
    for day in range(7):
        b_start = day * 1440 + start
        b_end = b_start + (end - start) % 1440
        if _overlaps(b_start, b_end, m_start, m_start + (m_end - m_start) % 10080):
            raise ConfigError(
                f"{p}:database.backupWindow",
                f"got {_show(db.backup_window)}; it overlaps maintenanceWindow {_show(db.maintenance_window)}",
            )

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
            f"got {_show(c.cache.engine_version)}; expected one of {', '.join(versions)} for engine "
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


def _overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    week = 10080
    return any(a_start + shift < b_end and b_start < a_end + shift for shift in (-week, 0, week))


# --------------------------------------------------------------------------- JSON Schema


def _schema_for(hint: Any, meta: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if meta.get("doc"):
        out["description"] = meta["doc"]
    origin = typing.get_origin(hint)
    if origin is tuple:
        item = _schema_for(typing.get_args(hint)[0], {k: v for k, v in meta.items() if k != "doc"})
        out.update(type="array", items=item, uniqueItems=True)
    elif origin is dict:
        value_schema = _schema_for(str, {k: v for k, v in meta.items() if k != "doc"})
        out.update(
            type="object",
            propertyNames={"pattern": f"^(?:{meta['key_pattern']})$"},
            additionalProperties=value_schema,
        )
    elif origin is Literal:
        out["enum"] = list(typing.get_args(hint))
    elif hint is bool:
        out["type"] = "boolean"
    elif hint is int:
        out["type"] = "integer"
        if meta.get("min") is not None:
            out["minimum"] = meta["min"]
        if meta.get("max") is not None:
            out["maximum"] = meta["max"]
    elif hint is str:
        out["type"] = "string"
        if meta.get("choices"):
            out["enum"] = list(meta["choices"])
        elif meta.get("pattern"):
            out["pattern"] = f"^(?:{meta['pattern']})$"
    elif dataclasses.is_dataclass(hint):
        out.update(_section_schema(typing.cast(type[Any], hint)))
    return out


def _json_default(value: Any) -> Any:
    """A field's default as JSON: tuples as lists, a nested section as its camelCase object."""
    if isinstance(value, tuple):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: _json_default(getattr(value, f.name)) for name, f in _fields(type(value)).items()}
    return value


def _section_schema(cls: type[Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    props: dict[str, Any] = {}
    required: list[str] = []
    for name, f in _fields(cls).items():
        prop = _schema_for(hints[f.name], f.metadata)
        if f.default is not dataclasses.MISSING:
            default = f.default
            prop["default"] = _json_default(default)
        elif f.default_factory is not dataclasses.MISSING:
            prop["default"] = f.default_factory()
        else:
            required.append(name)
        props[name] = prop
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if cls.__doc__:
        schema["description"] = cls.__doc__.strip().splitlines()[0]
    if required:
        schema["required"] = required
    return schema


def json_schema() -> dict[str, Any]:
    """JSON Schema for stacks/Pulumi.<stack>.yaml, generated from the dataclasses above."""
    config_props: dict[str, Any] = {
        "aws:region": {
            "type": "string",
            "description": "The stack's AWS region.",
            "enum": list(AWS_REGIONS),
        }
    }
    for name, spec in SCALARS.items():
        hint: Any = tuple[str, ...] if name == "hostnames" else str
        config_props[f"{PROJECT}:{name}"] = _schema_for(hint, spec)
    for name, cls in SECTIONS.items():
        config_props[f"{PROJECT}:{name}"] = _section_schema(cls)
    required = ["aws:region"] + [f"{PROJECT}:{n}" for n, s in SCALARS.items() if s["required"]]
    required += [f"{PROJECT}:{n}" for n in REQUIRED_SECTIONS]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "leanstack stack config (stacks/Pulumi.<stack>.yaml)",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": config_props,
                "required": required,
                # Other namespaces (aws:, cloudflare:) belong to the providers; unknown leanstack: keys are errors.
                "propertyNames": {"anyOf": [{"enum": sorted(config_props)}, {"not": {"pattern": f"^{PROJECT}:"}}]},
            },
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
            "encryptionsalt": {"type": "string"},
        },
        "required": ["config"],
    }
