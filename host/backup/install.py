"""The host files of the backup and restore-drill tools, for cloud-init to write.

`backup_host_files(settings)` returns every file: the tool, its drill and restore
wrappers, the environment file (no secrets), the drill's verification SQL and the systemd
services and timers. cloud-init installs `BACKUP_PACKAGES` and enables `BACKUP_UNITS`.

On the host:

    sudo leanstack-restore-drill                      the drill, by hand (reads backup.env)
    sudo leanstack-restore [--backup STAMP] [--database leanstack_NAME]
                                                      restore into a new database, compare
    sudo leanstack-restore --swap [--backup STAMP]    ... and switch the app to it
    sudo leanstack-restore --swap --use-restored NAME switch to (or back to) a database
                                                      leanstack-restore made

What the tools need from AWS, for the host role (no delete anywhere on the bucket):
s3:ListBucket (on the prefix), s3:GetObject, s3:PutObject, s3:AbortMultipartUpload on
`<bucket>/<prefix>/*`; secretsmanager:GetSecretValue on the database secret (and
kms:Decrypt if it uses a customer key); cloudwatch:PutMetricData (condition
cloudwatch:namespace = the metrics namespace). With the files check (files_bucket):
s3:GetObject on the replica bucket's objects (the drill's HeadObject; it downloads nothing).

The tool's code is the agent's (host/agent, shipped through the host-files bucket by
`leanstack.host.boot`); here is its entry script.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from leanstack.host.agent import contract
from leanstack.host.params import BackupSettings, HostFile
from leanstack.host.shipping import entry_file

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"

BACKUP_TOOL_PATH = contract.BACKUP_COMMAND.path
DRILL_TOOL_PATH = contract.DRILL_TOOL_PATH
RESTORE_TOOL_PATH = contract.RESTORE_TOOL_PATH
ENV_FILE_PATH = contract.BACKUP_ENV_PATH
VERIFY_SQL_PATH = contract.VERIFY_SQL_PATH
FILES_SQL_PATH = contract.FILES_SQL_PATH
DRILL_WORK_DIR = contract.DRILL_WORK_DIR
DRILL_TARGETS = contract.DRILL_TARGETS
UNIT_DIR = contract.UNIT_DIR

# Amazon Linux 2023 package names. They cannot be verified here (no AL2023 repository
# reachable from this machine): postgresql17 is the client (psql, pg_dump, pg_restore),
# which must be at least the RDS server's major version; postgresql17-server is the
# drill's local PostgreSQL (initdb, pg_ctl, postgres; not started as a service);
# python3-boto3 is boto3 for the system Python 3.9.
BACKUP_PACKAGES: tuple[str, ...] = ("postgresql17", "postgresql17-server", "python3-boto3")

BACKUP_UNITS: tuple[str, ...] = (contract.BACKUP_TIMER, contract.DRILL_TIMER)

_ARN_REGION = re.compile(r"^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
# systemd EnvironmentFile values: one line, no control characters.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def env_line(name: str, value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError(f"{name} must be a single line without control characters")
    quoted = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}="{quoted}"'


def checked_calendar(expression: str, field_name: str) -> str:
    """The OnCalendar value; BackupSettings' calendars are UTC, so say so to systemd."""
    if _CONTROL.search(expression) or not expression.strip():
        raise ValueError(f"{field_name} must be one non-empty line")
    expression = expression.strip()
    return expression if expression.endswith(" UTC") else f"{expression} UTC"


def render_env_file(settings: BackupSettings) -> str:
    if settings.database_parameter:
        if not _REGION.fullmatch(settings.region):
            raise ValueError(f"region must be an AWS region such as eu-west-1, not {settings.region!r}")
        region = settings.region
    else:
        match = _ARN_REGION.match(settings.database_secret_arn)
        if match is None:
            raise ValueError(
                "database_secret_arn must be a Secrets Manager ARN: its region is where the tools "
                "read the secret and publish metrics"
            )
        region = match.group(1)
    if "@" in settings.drill_database_url.split("//", 1)[-1].split("/", 1)[0]:
        user_info = settings.drill_database_url.split("//", 1)[-1].split("@", 1)[0]
        if ":" in user_info:
            raise ValueError("drill_database_url must not carry a password: the env file holds no secrets")
    if settings.drill_target not in DRILL_TARGETS:
        raise ValueError(f"drill_target must be one of {', '.join(DRILL_TARGETS)}, not {settings.drill_target!r}")
    if settings.drill_target == "url" and not settings.drill_database_url:
        raise ValueError("drill_target url needs drill_database_url")
    if settings.drill_starts_app and settings.drill_target != "local":
        raise ValueError("drill_starts_app needs drill_target local: the drill's app reaches only that server")
    values = {
        "AWS_REGION": region,
        "BACKUP_BUCKET": settings.bucket,
        "BACKUP_BUCKET_REGION": settings.bucket_region,
        "BACKUP_PREFIX": settings.prefix,
        # Where the database is: read at each run from the parameter (a recovery changes it), or given.
        **(
            {"DATABASE_PARAMETER": settings.database_parameter}
            if settings.database_parameter
            else {
                "DATABASE_SECRET_ARN": settings.database_secret_arn,
                "DATABASE_HOST": settings.database_host,
                "DATABASE_PORT": str(settings.database_port),
            }
        ),
        "DATABASE_NAME": settings.database_name,
        "DATABASE_USER": settings.database_user,
        "DATABASE_SSLMODE": "require",
        "DRILL_TARGET": settings.drill_target,
        "DRILL_DATABASE_URL": settings.drill_database_url if settings.drill_target == "url" else "",
        "DRILL_WORK_DIR": DRILL_WORK_DIR,
        "DRILL_STARTS_APP": "1" if settings.drill_starts_app else "0",
        "VERIFY_SQL_FILE": VERIFY_SQL_PATH if settings.verify_sql.strip() else "",
        "STACK": settings.stack,
        "METRICS_NAMESPACE": settings.metrics_namespace,
    }
    if bool(settings.files_bucket) != bool(settings.files_sql.strip()):
        raise ValueError("files_bucket and files_sql go together: the drill checks the SQL's keys in the bucket")
    if settings.behind_load_balancer:
        values["BEHIND_LOAD_BALANCER"] = "1"
    if settings.files_bucket:
        # The replica lives in the backup region, beside the backups (FILES_BUCKET_REGION's default).
        values.update(FILES_BUCKET=settings.files_bucket, FILES_SQL_FILE=FILES_SQL_PATH)
    assignments = "\n".join(env_line(name, value) for name, value in values.items())
    return _template("backup.env.in").substitute(assignments=assignments)


def service_unit(
    name: str, description: str, exec_start: str, timeout: str, extra: str = "", unit_extra: str = ""
) -> HostFile:
    content = _template("service.in").substitute(
        name=name, description=description, exec_start=exec_start, timeout=timeout, extra=extra, unit_extra=unit_extra
    )
    return HostFile(path=f"{UNIT_DIR}/{name}.service", content=content)


def timer_unit(name: str, description: str, calendar: str, randomized_delay: str) -> HostFile:
    content = _template("timer.in").substitute(
        description=description, calendar=calendar, randomized_delay=randomized_delay
    )
    return HostFile(path=f"{UNIT_DIR}/{name}.timer", content=content)


def drill_credentials_service() -> HostFile:
    """The oneshot that writes the host role's credentials for the drill before each drill."""
    content = _template("drill-credentials.service.in").substitute(
        drill_service=contract.DRILL_SERVICE,
        exec_start=BACKUP_TOOL_PATH,
        path=contract.DRILL_CREDENTIALS_PATH,
        runtime_directory=contract.RUN_DIR.removeprefix("/run/"),
    )
    return HostFile(path=f"{UNIT_DIR}/{contract.DRILL_CREDENTIALS_SERVICE}", content=content)


def _drill_unit_settings() -> tuple[str, str]:
    """The drill unit's [Unit] and [Service] lines that keep it from the metadata service."""
    unit = f"Requires={contract.DRILL_CREDENTIALS_SERVICE}\nAfter={contract.DRILL_CREDENTIALS_SERVICE}\n"
    # The drill's copy, in its RuntimeDirectory (owned by its dynamic user, removed when it stops).
    # Copied as root by an ExecStartPre with "+" (no user, no sandbox, still in the unit's cgroup:
    # it reaches nothing). Not LoadCredential=: in the box (systemd 252 in a container) it loads nothing.
    copy = f"{contract.DRILL_RUN_DIR}/{contract.DRILL_CREDENTIALS_NAME}"
    owner = '"$$(stat -c %%u "$RUNTIME_DIRECTORY")"'
    group = '"$$(stat -c %%g "$RUNTIME_DIRECTORY")"'
    service = (
        "# No metadata service: restored dumps run in this unit's PostgreSQL, and whoever reaches\n"
        "# it takes the host role. The host role's credentials come from the file the unit above\n"
        "# wrote (only those: keys in the manager's environment are dropped); the drill reads a\n"
        "# copy only its user can read, and the file is removed when the drill stops.\n"
        f"IPAddressDeny={' '.join(contract.METADATA_ADDRESSES)}\n"
        f"ExecStartPre=+/usr/bin/sh -c 'install -m 0400 -o {owner} -g {group} "
        f'{contract.DRILL_CREDENTIALS_PATH} "$RUNTIME_DIRECTORY/{contract.DRILL_CREDENTIALS_NAME}"\'\n'
        f"Environment=AWS_SHARED_CREDENTIALS_FILE={copy}\n"
        "UnsetEnvironment=AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE\n"
        f"ExecStopPost=+/usr/bin/rm -f {contract.DRILL_CREDENTIALS_PATH}\n"
    )
    return unit, service


def backup_tool() -> HostFile:
    """leanstack-backup's entry script (its code, the agent's modules, travels through the host-files bucket)."""
    return entry_file(contract.BACKUP_COMMAND)


def backup_host_files(settings: BackupSettings) -> tuple[HostFile, ...]:
    """Every file the host needs for daily backups and monthly restore drills."""
    drill_unit_extra, drill_no_metadata = _drill_unit_settings()
    drill_extra = (
        "# The drill's local PostgreSQL: on disk, owned by the dynamic user, kept out of /tmp.\n"
        "StateDirectory=leanstack-restore-drill\n"
    ) + drill_no_metadata
    if settings.drill_starts_app:
        # docker run for the app's drill start (the socket is root-equivalent: opt-in only).
        drill_extra += "SupplementaryGroups=docker\n"
    verify: tuple[HostFile, ...] = (
        (HostFile(path=VERIFY_SQL_PATH, content=settings.verify_sql.rstrip("\n") + "\n", permissions="0644"),)
        if settings.verify_sql.strip()
        else ()
    )
    if settings.files_bucket:
        verify += (HostFile(path=FILES_SQL_PATH, content=settings.files_sql.rstrip("\n") + "\n", permissions="0644"),)
    return (
        backup_tool(),
        HostFile(
            path=DRILL_TOOL_PATH,
            content=_template("wrapper.in").substitute(command="leanstack-restore-drill", subcommand="restore-drill"),
            permissions="0755",
        ),
        HostFile(
            path=RESTORE_TOOL_PATH,
            content=_template("wrapper.in").substitute(command="leanstack-restore", subcommand="restore"),
            permissions="0755",
        ),
        HostFile(path=ENV_FILE_PATH, content=render_env_file(settings), permissions="0640"),
        *verify,
        service_unit(
            "leanstack-backup",
            "leanstack: stream a pg_dump of the application database to the off-site bucket",
            BACKUP_TOOL_PATH,
            "6h",
        ),
        timer_unit(
            "leanstack-backup",
            "leanstack: daily off-site database backup",
            checked_calendar(settings.backup_calendar, "backup_calendar"),
            "10min",
        ),
        service_unit(
            "leanstack-restore-drill",
            "leanstack: restore the newest backup into a scratch database and check it",
            DRILL_TOOL_PATH,
            "12h",
            drill_extra,
            drill_unit_extra,
        ),
        drill_credentials_service(),
        timer_unit(
            "leanstack-restore-drill",
            "leanstack: monthly restore drill",
            checked_calendar(settings.drill_calendar, "drill_calendar"),
            "30min",
        ),
    )
