"""The names the host and the laptop share, in one place: where the agent is installed, its
commands and units, the files it reads, and every SSM path, log group and metric namespace of
a stack, as functions of the stack's name.

The laptop side (config, components, policy, the CLI) imports this module
(`leanstack.host.agent.contract`); nothing else writes these names. On the host the agent's
own modules read it. Python 3.9, standard library only.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Sequence, Tuple, Union

# The project's name: the first segment of every SSM path and log group, the prefix of every
# physical name (config/naming.py builds those from it). A fork renames the project here.
PROJECT = "leanstack"
# The CloudWatch namespace prefix of every stack's own metrics: Leanstack/<stack>.
METRICS_NAMESPACE_PREFIX = "Leanstack"

# ---------------------------------------------------------------------------------------
# A stack's names in AWS


def parameter_root(stack: str) -> str:
    """The stack's SSM path (no trailing slash): the host role reads this path and nothing else."""
    return f"/{PROJECT}/{stack}"


def app_parameters_path(stack: str) -> str:
    """The app's config in SSM: <root>/app/config (Pulumi), <root>/app/env/NAME, <root>/app/secret/NAME."""
    return f"{parameter_root(stack)}/app"


def releases_parameter(stack: str) -> str:
    """The release history `deploy` keeps; a new host deploys its newest serving tag at boot."""
    return f"{parameter_root(stack)}/releases"


def database_parameter(stack: str) -> str:
    """Where the database is, written by `pulumi up` and read by the host at each use: JSON
    {"host", "port", "secret_arn"}. A restored instance (new endpoint, new secret) reaches the
    host here, never through its user data, so recovery never replaces the host."""
    return f"{parameter_root(stack)}/database"


def tls_parameter_prefix(stack: str) -> str:
    """The origin certificate and key (<prefix>/origin-cert, <prefix>/origin-key), SecureStrings."""
    return f"{parameter_root(stack)}/tls"


def cache_token_parameter(stack: str) -> str:
    """The cache's AUTH token (SecureString)."""
    return f"{parameter_root(stack)}/cache/auth-token"


def access_log_group(stack: str) -> str:
    """nginx's JSON access log in CloudWatch Logs."""
    return f"/{PROJECT}/{stack}/nginx/access"


def app_log_group(stack: str) -> str:
    """The app containers' output in CloudWatch Logs (Docker's awslogs driver)."""
    return f"/{PROJECT}/{stack}/app"


def metrics_namespace(stack: str) -> str:
    """The CloudWatch namespace of the stack's own metrics (backups, drills, jobs, disk, access log)."""
    return f"{METRICS_NAMESPACE_PREFIX}/{stack}"


# Where the host's sealed copies of the app's config and secrets go in the backup bucket:
# <SEALED_PREFIX>/<stack>/<stamp>.json.
SEALED_PREFIX = "sealed-secrets"


def sealed_prefix(stack: str) -> str:
    return f"{SEALED_PREFIX}/{stack}"


def stack_backup_prefix(prefix: str, stack: str) -> str:
    """<prefix>/<stack>: the one folder of the backup bucket a stack's host writes (its dumps,
    <prefix>/<stack>/<database>/<stamp>.dump and .manifest.json, and its drill reports,
    <prefix>/<stack>/_drills/). Dumps written before per-stack folders sit in
    <prefix>/<database>/ and are read, not written, as a fallback."""
    return f"{prefix}/{stack}" if prefix else stack


# ---------------------------------------------------------------------------------------
# The agent on the host

# The agent's modules are installed as the package `leanstack_agent` in this directory; each
# command is a short entry script that puts it first on sys.path and calls the command's main.
AGENT_LIB_DIR = "/usr/local/lib/leanstack"
AGENT_PACKAGE = "leanstack_agent"


class Command(NamedTuple):
    """One of the agent's commands: its name, where its entry script is, the module with its main."""

    name: str
    path: str
    module: str


BACKUP_COMMAND = Command("leanstack-backup", "/usr/local/bin/leanstack-backup", "backup_cli")
APP_COMMAND = Command("leanstack-app", "/usr/local/sbin/leanstack-app", "app_cli")
SEAL_COMMAND = Command("leanstack-seal-secrets", "/usr/local/bin/leanstack-seal-secrets", "seal_job")
CREDENTIALS_COMMAND = Command("leanstack-credentials", "/usr/local/bin/leanstack-credentials", "credentials")
COMMANDS: tuple[Command, ...] = (BACKUP_COMMAND, APP_COMMAND, SEAL_COMMAND, CREDENTIALS_COMMAND)
# Shell wrappers that run a leanstack-backup subcommand (`sudo leanstack-restore ...`).
DRILL_TOOL_PATH = "/usr/local/bin/leanstack-restore-drill"
RESTORE_TOOL_PATH = "/usr/local/bin/leanstack-restore"
MAINTENANCE_TOOL_PATH = "/usr/local/bin/leanstack-maintenance"
# Boot-time scripts: the origin certificate from SSM, the files too large for user data.
TLS_FETCH_SCRIPT_PATH = "/usr/local/sbin/leanstack-fetch-origin-tls"
HOST_FILES_FETCH_SCRIPT_PATH = "/usr/local/sbin/leanstack-fetch-host-files"

# The agent's files in /etc (rendered from the stack, no secrets).
ETC_DIR = "/etc/leanstack"
BACKUP_ENV_PATH = f"{ETC_DIR}/backup.env"
SEAL_ENV_PATH = f"{ETC_DIR}/sealed-secrets.env"
CREDENTIALS_ENV_PATH = f"{ETC_DIR}/credentials.env"
APP_CONFIG_PATH = f"{ETC_DIR}/app.json"
APP_ENV_PATH = f"{ETC_DIR}/app.env"
VERIFY_SQL_PATH = f"{ETC_DIR}/drill-verify.sql"
FILES_SQL_PATH = f"{ETC_DIR}/drill-files.sql"
UNIT_DIR = "/etc/systemd/system"

# State.
APP_STATE_DIR = "/var/lib/leanstack/app"
APP_LOCK_PATH = "/run/leanstack-app.lock"
# The drill's throw-away PostgreSQL (on disk: AL2023's /tmp is in memory); StateDirectory= of its unit.
DRILL_WORK_DIR = "/var/lib/leanstack-restore-drill"
# StateDirectory=leanstack-credentials of the endpoint's unit (DynamicUser: a link into /var/lib/private).
CREDENTIALS_TOKEN_PATH = "/var/lib/leanstack-credentials/token"
# The host role's short-lived credentials for the drill unit, which cannot reach the metadata
# service: written (root only, 0600) by DRILL_CREDENTIALS_SERVICE before each drill, copied for
# the drill's user into its RuntimeDirectory (DRILL_RUN_DIR), removed when the drill stops.
RUN_DIR = "/run/leanstack"
DRILL_CREDENTIALS_NAME = "drill-aws-credentials"
DRILL_CREDENTIALS_PATH = f"{RUN_DIR}/{DRILL_CREDENTIALS_NAME}"
# The instance metadata service (IPv4 and the Nitro IPv6 address): the drill unit may not reach it.
METADATA_ADDRESSES = ("169.254.169.254", "fd00:ec2::254")

# The app's credentials endpoint (container-credentials protocol).
CREDENTIALS_ADDRESS = "169.254.170.2"
CREDENTIALS_PORT = 51680
CREDENTIALS_PATH = f"/{PROJECT}/credentials"

# Where the restore drill restores (backup.drillTarget).
DRILL_TARGETS = ("local", "instance", "url")
# What the app is told about its database; the password is read at each container start.
DATABASE_VARIABLES = ("DATABASE_HOST", "DATABASE_PORT", "DATABASE_NAME", "DATABASE_USER", "DATABASE_PASSWORD")

# ---------------------------------------------------------------------------------------
# systemd units

BACKUP_SERVICE = "leanstack-backup.service"
BACKUP_TIMER = "leanstack-backup.timer"
DRILL_SERVICE = "leanstack-restore-drill.service"
DRILL_TIMER = "leanstack-restore-drill.timer"
DRILL_CREDENTIALS_SERVICE = "leanstack-restore-drill-credentials.service"
# The drill unit's RuntimeDirectory= (its unit's name): its lock and its copy of the credentials.
DRILL_RUN_DIR = f"/run/{DRILL_SERVICE.rsplit('.', 1)[0]}"
SEAL_TIMER = "leanstack-seal-secrets.timer"
CREDENTIALS_SERVICE = "leanstack-credentials.service"
HOST_FILES_SERVICE = "leanstack-host-files.service"
APP_UNIT_TEMPLATE = "leanstack-app@.service"
APP_BOOT_SERVICE = "leanstack-app-boot.service"
APP_CONFIG_SERVICE = "leanstack-app-config.service"
APP_CONFIG_TIMER = "leanstack-app-config.timer"
JOB_UNIT_PREFIX = "leanstack-job-"
# One unit per copy of each long-running process (app.processes): leanstack-process-<name>-<n>.service.
PROCESS_UNIT_PREFIX = "leanstack-process-"


def app_unit(port: int) -> str:
    """The serving container's unit on `port`."""
    return f"leanstack-app@{port}.service"


def process_unit(process: str, copy: int) -> str:
    """The unit of copy `copy` (1, 2, ...) of a long-running process."""
    return f"{PROCESS_UNIT_PREFIX}{process}-{copy}.service"


def process_container(process: str, copy: int) -> str:
    """The container's name (and the first part of its log stream): worker-<name>-<n>."""
    return f"worker-{process}-{copy}"


# What the agent publishes (Count 1, by Stack and by Stack+Process) each time a process's container
# exits with an error and systemd restarts it; the stack's worker-crash-loop alarm watches it.
PROCESS_RESTARTS_METRIC = "ProcessRestarts"


def job_unit(job: str, kind: str = "service") -> str:
    """A scheduled job's unit (`kind`: service or timer)."""
    return f"{JOB_UNIT_PREFIX}{job}.{kind}"


def job_container(job: str) -> str:
    """A job's container: one fixed name, so never two runs of one job, and its unit finds it."""
    return f"job-{job}"


# ---------------------------------------------------------------------------------------
# The app's variables

# Names the app's variables may not use, with the reason the error gives; `validate` refuses them
# in app.env and app.secrets, and the agent refuses them from SSM, whatever wrote them. Secrets reach the
# docker CLI's own environment on the host (`docker run --env NAME` passes them on), and both reach
# the container, so a name the host's programs, the shell, the C library or leanstack interpret is
# refused. Allowed on purpose: LANG/LC_*, TZ, PYTHON* and NODE_* (the app's own runtime settings,
# which the docker CLI, a Go program, ignores), HTTP(S)_PROXY (the app may need one; the docker
# CLI only uses it for a TCP daemon, which the host has not).
RESERVED_ENV_NAMES: Dict[str, str] = {
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
RESERVED_ENV_PREFIXES: Dict[str, str] = {
    "DATABASE_": "leanstack sets DATABASE_HOST, _PORT, _NAME, _USER and _PASSWORD",
    "LEANSTACK_": "reserved for leanstack's own settings",
    "AWS_": "reserved: leanstack will set the app's AWS settings",
    "DOCKER_": "the docker CLI on the host reads it as its own setting (DOCKER_HOST redirects it)",
    "LD_": "the dynamic loader interprets it (LD_PRELOAD runs code in every program started)",
    "MALLOC_": "the C library interprets it",
    "BASH_FUNC_": "bash imports functions from it",
    "SYSTEMD_": "systemd interprets it",
}
# The reserved names leanstack itself gives the app's container (through the docker CLI's
# environment, by name); no other reserved name ever reaches docker.
LEANSTACK_SET_NAMES = (
    "PORT",
    "LEANSTACK_RELEASE",
    "REDIS_URL",
    *DATABASE_VARIABLES,
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)


def reserved_env_reason(name: str) -> Optional[str]:
    """Why `name` is reserved (the app may not set it), or None when the app may use it."""
    if name in RESERVED_ENV_NAMES:
        return RESERVED_ENV_NAMES[name]
    for prefix, why in RESERVED_ENV_PREFIXES.items():
        if name.startswith(prefix):
            return f"{prefix}* names are reserved: {why}"
    return None


# ---------------------------------------------------------------------------------------
# The app's commands (app.releaseCommand, app.jobs.<name>.command)

# As Docker's CMD: a list is exec form (the argv itself), a string is shell form, run by this shell.
SHELL_FORM = ("/bin/sh", "-c")


def command_argv(command: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    """The argv of a command: a list as it is (exec form), a string through `/bin/sh -c` (shell
    form), as Docker's CMD takes them; "bin/report --daily" is two words, not one program."""
    if isinstance(command, str):
        return (*SHELL_FORM, command)
    return tuple(command)
