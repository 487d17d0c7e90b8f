"""The host files of the backup and restore-drill tools, for cloud-init to write.

`backup_host_files(settings)` returns every file: the tool, its drill wrapper, the
environment file (no secrets) and the systemd services and timers. cloud-init installs
`BACKUP_PACKAGES` and enables `BACKUP_UNITS`.

What the tools need from AWS, for the host role (no delete anywhere on the bucket):
s3:ListBucket (on the prefix), s3:GetObject, s3:PutObject, s3:AbortMultipartUpload on
`<bucket>/<prefix>/*`; secretsmanager:GetSecretValue on the database secret (and
kms:Decrypt if it uses a customer key); cloudwatch:PutMetricData (condition
cloudwatch:namespace = the metrics namespace).

Size: the tool is about 47 KB (about 14 KB gzipped), so it does not fit EC2's 16 KB of raw
user data: cloud-init must get the user data gzip-compressed (it accepts that), and with
the other host files even that may not fit; then the tool is better delivered another way
(e.g. an S3 object the instance role may read) than trimmed.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from host.params import BackupSettings, HostFile

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"

BACKUP_TOOL_PATH = "/usr/local/bin/leanstack-backup"
DRILL_TOOL_PATH = "/usr/local/bin/leanstack-restore-drill"
ENV_FILE_PATH = "/etc/leanstack/backup.env"
UNIT_DIR = "/etc/systemd/system"

# Amazon Linux 2023 package names. They cannot be verified here (no AL2023 repository
# reachable from this machine): postgresql17 is the client (psql, pg_dump, pg_restore),
# which must be at least the RDS server's major version; python3-boto3 is boto3 for the
# system Python 3.9.
BACKUP_PACKAGES: tuple[str, ...] = ("postgresql17", "python3-boto3")

BACKUP_UNITS: tuple[str, ...] = ("leanstack-backup.timer", "leanstack-restore-drill.timer")

_ARN_REGION = re.compile(r"^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):")
# systemd EnvironmentFile values: one line, no control characters.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def _env_line(name: str, value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError(f"{name} must be a single line without control characters")
    quoted = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}="{quoted}"'


def _calendar(expression: str, field_name: str) -> str:
    """The OnCalendar value; BackupSettings' calendars are UTC, so say so to systemd."""
    if _CONTROL.search(expression) or not expression.strip():
        raise ValueError(f"{field_name} must be one non-empty line")
    expression = expression.strip()
    return expression if expression.endswith(" UTC") else f"{expression} UTC"


def render_env_file(settings: BackupSettings) -> str:
    match = _ARN_REGION.match(settings.database_secret_arn)
    if match is None:
        raise ValueError(
            "database_secret_arn must be a Secrets Manager ARN: its region is where the tools "
            "read the secret and publish metrics"
        )
    if "@" in settings.drill_database_url.split("//", 1)[-1].split("/", 1)[0]:
        user_info = settings.drill_database_url.split("//", 1)[-1].split("@", 1)[0]
        if ":" in user_info:
            raise ValueError("drill_database_url must not carry a password: the env file holds no secrets")
    values = {
        "AWS_REGION": match.group(1),
        "BACKUP_BUCKET": settings.bucket,
        "BACKUP_BUCKET_REGION": settings.bucket_region,
        "BACKUP_PREFIX": settings.prefix,
        "DATABASE_SECRET_ARN": settings.database_secret_arn,
        "DATABASE_HOST": settings.database_host,
        "DATABASE_PORT": str(settings.database_port),
        "DATABASE_NAME": settings.database_name,
        "DATABASE_USER": settings.database_user,
        "DATABASE_SSLMODE": "require",
        "DRILL_DATABASE_URL": settings.drill_database_url,
        "STACK": settings.stack,
        "METRICS_NAMESPACE": settings.metrics_namespace,
    }
    assignments = "\n".join(_env_line(name, value) for name, value in values.items())
    return _template("backup.env.in").substitute(assignments=assignments)


def _service(name: str, description: str, exec_start: str, timeout: str) -> HostFile:
    content = _template("service.in").substitute(
        name=name, description=description, exec_start=exec_start, timeout=timeout
    )
    return HostFile(path=f"{UNIT_DIR}/{name}.service", content=content)


def _timer(name: str, description: str, calendar: str, randomized_delay: str) -> HostFile:
    content = _template("timer.in").substitute(
        description=description, calendar=calendar, randomized_delay=randomized_delay
    )
    return HostFile(path=f"{UNIT_DIR}/{name}.timer", content=content)


def backup_host_files(settings: BackupSettings) -> tuple[HostFile, ...]:
    """Every file the host needs for daily backups and monthly restore drills."""
    tool = (HERE / "leanstack_backup.py").read_text(encoding="utf-8")
    return (
        HostFile(path=BACKUP_TOOL_PATH, content=tool, permissions="0755"),
        HostFile(path=DRILL_TOOL_PATH, content=_template("restore-drill.in").substitute(), permissions="0755"),
        HostFile(path=ENV_FILE_PATH, content=render_env_file(settings), permissions="0640"),
        _service(
            "leanstack-backup",
            "leanstack: stream a pg_dump of the application database to the off-site bucket",
            BACKUP_TOOL_PATH,
            "6h",
        ),
        _timer(
            "leanstack-backup",
            "leanstack: daily off-site database backup",
            _calendar(settings.backup_calendar, "backup_calendar"),
            "10min",
        ),
        _service(
            "leanstack-restore-drill",
            "leanstack: restore the newest backup into a scratch database and check it",
            DRILL_TOOL_PATH,
            "12h",
        ),
        _timer(
            "leanstack-restore-drill",
            "leanstack: monthly restore drill",
            _calendar(settings.drill_calendar, "drill_calendar"),
            "30min",
        ),
    )
