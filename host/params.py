"""The values the host's files are rendered from.

`components.proxy_host` builds a `HostParams` from the validated stack config and the
resolved outputs of other components, and `host.render` turns it into the nginx config
and the cloud-init document. Keeping this a plain frozen dataclass lets the tests render
and run the host's files without Pulumi.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from leanstack.host.agent import contract


@dataclass(frozen=True)
class HostFile:
    """One file cloud-init writes on the host."""

    path: str
    content: str
    permissions: str = "0644"
    owner: str = "root:root"


@dataclass(frozen=True)
class BackupSettings:
    """What `leanstack-backup` and `leanstack-restore-drill` need on the host.

    The database password is never here: the tools read it from the RDS-managed secret
    (`database_secret_arn`) each time they connect, because RDS rotates it.
    """

    bucket: str
    bucket_region: str
    prefix: str
    database_name: str
    database_host: str
    database_port: int
    database_user: str
    database_secret_arn: str
    # Where the restore drill restores (backup.drillTarget): "local", a throw-away PostgreSQL
    # of the database's major version started on the host in a temporary data directory, so a
    # drill never needs space on, or even the presence of, the production instance; "instance",
    # a marked scratch database on the RDS instance; "url", the server in drill_database_url.
    drill_target: str = "local"
    # Only with drill_target "url": a maintenance database URL on the drill's server.
    drill_database_url: str = ""
    # backup.drillStartsApp: after the restore, start the serving release's image against the
    # scratch database on an isolated network (LEANSTACK_DRILL=1) and require its health path.
    drill_starts_app: bool = False
    # backup.verifySql: SQL run against the restored database; any error fails the drill.
    verify_sql: str = ""
    # With file storage: the uploads' replica bucket (in the backup region) and SQL returning
    # the object keys the restored data references; the drill checks a sample exists there.
    files_bucket: str = ""
    files_sql: str = ""
    # systemd OnCalendar expressions, UTC.
    backup_calendar: str = "*-*-* 03:30:00"
    drill_calendar: str = "*-*-01 05:00:00"
    metrics_namespace: str = contract.METRICS_NAMESPACE_PREFIX
    stack: str = "dev"
    # Where the database is at run time (contract.database_parameter): set, the env file names
    # this SSM parameter and `region`, and never the endpoint or the secret ARN above, which a
    # recovery changes (the host would be replaced for it).
    database_parameter: str = ""
    region: str = ""
    # Scale mode: the hosts sit behind a load balancer, so `leanstack-restore --swap` needs the
    # maintenance page on every host first (the laptop's `maintenance STACK on`).
    behind_load_balancer: bool = False


@dataclass(frozen=True)
class BackupJobs:
    """When the host's backup and restore-drill timers run and how the drill restores (the stack's backup.*)."""

    backup_calendar: str = "*-*-* 03:30:00"
    drill_calendar: str = "*-*-01 05:00:00"
    drill_target: str = "local"
    drill_database_url: str = ""
    drill_starts_app: bool = False
    verify_sql: str = ""


@dataclass(frozen=True)
class HostParams:
    """Everything the nginx config and cloud-init document are rendered from."""

    stack: str
    region: str
    # Hostnames nginx answers for; validated by the stack config (RFC 1123, no `;`, no spaces).
    hostnames: tuple[str, ...]
    app_port: int
    health_path: str = "/healthz"
    # True when Cloudflare proxies the hostnames: nginx then requires Cloudflare's
    # origin-pull client certificate and trusts CF-Connecting-IP from Cloudflare's ranges only.
    cdn_proxied: bool = True
    cloudflare_ipv4_cidrs: tuple[str, ...] = ()
    cloudflare_ipv6_cidrs: tuple[str, ...] = ()
    # True when the host sits behind the stack's Application Load Balancer (scale mode): the
    # load balancer verifies Cloudflare's client certificate and connects without SNI and
    # without a client certificate, so nginx asks for none, serves the origin certificate to
    # a handshake without SNI, answers the health check whatever its Host header, and takes
    # the client's address only from a peer in `load_balancer_cidrs` (the VPC's CIDR blocks).
    behind_load_balancer: bool = False
    load_balancer_cidrs: tuple[str, ...] = ()
    hsts_max_age_seconds: int = 31536000
    max_body_mb: int = 10
    # SSM Parameter Store path holding the origin certificate and key as SecureStrings:
    # <prefix>/origin-cert and <prefix>/origin-key. cloud-init fetches them with the
    # instance role at boot; they are never inlined in user data.
    tls_parameter_prefix: str = contract.tls_parameter_prefix("dev")
    # CloudWatch Logs group that receives nginx's JSON access log.
    access_log_group: str = contract.access_log_group("dev")
    metrics_namespace: str = contract.METRICS_NAMESPACE_PREFIX
    backup: BackupSettings | None = None
    extra_files: tuple[HostFile, ...] = field(default=())
