"""The names the host and the laptop share, in one place: where the agent is installed, its
commands and units, the files it reads, and every SSM path, log group and metric namespace of
a stack, as functions of the stack's name.

The laptop side (config, components, policy, the CLI) imports this module
(`leanstack.host.agent.contract`); nothing else writes these names. On the host the agent's
own modules read it. Python 3.9, standard library only.
"""

from __future__ import annotations

from typing import NamedTuple

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

# The app's credentials endpoint (container-credentials protocol).
CREDENTIALS_ADDRESS = "169.254.170.2"
CREDENTIALS_PORT = 51680
CREDENTIALS_PATH = f"/{PROJECT}/credentials"

# ---------------------------------------------------------------------------------------
# systemd units

BACKUP_SERVICE = "leanstack-backup.service"
BACKUP_TIMER = "leanstack-backup.timer"
DRILL_SERVICE = "leanstack-restore-drill.service"
DRILL_TIMER = "leanstack-restore-drill.timer"
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
