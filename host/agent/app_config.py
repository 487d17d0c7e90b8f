"""leanstack-app's own settings: /etc/leanstack/app.json (no secrets), parsed and checked into
a `Config`; the grammars of tags, images, names and paths it accepts; exit codes."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import contract
from .common import Failure

PROGRAM = "leanstack-app"
DEFAULT_CONFIG_PATH = contract.APP_CONFIG_PATH

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUSY = 3

DEFAULT_COMMANDS = {
    "LEANSTACK_APP_PULL": "docker pull {image}",
    "LEANSTACK_APP_START": "systemctl enable --now leanstack-app@{port}.service",
    "LEANSTACK_APP_STOP": "systemctl disable --now leanstack-app@{port}.service",
    "LEANSTACK_NGINX_CHECK": "nginx -t -q",
    "LEANSTACK_NGINX_RELOAD": "systemctl reload nginx.service",
    "LEANSTACK_SYSTEMD_RELOAD": "systemctl daemon-reload",
    "LEANSTACK_JOB_ENABLE": "systemctl enable --now {unit}",
    "LEANSTACK_JOB_DISABLE": "systemctl disable --now {unit}",
}

# Docker's grammar for a tag; no digests: ECR's immutable tags make a tag name one image.
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# registry/path of an image, without tag or digest (lower case, as Docker requires).
REPOSITORY = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]{1,5})?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
HEALTH_PATH = re.compile(r"/[A-Za-z0-9._~/-]*")
SSM_NAME = re.compile(r"(?:/[A-Za-z0-9_.-]+)+")
SECRET_ARN = re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@!-]+")
HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
LOG_GROUP = re.compile(r"[A-Za-z0-9_./#-]{1,512}")
REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
ABSOLUTE_PATH = re.compile(r"/[A-Za-z0-9._+@/-]*")
# The app's credentials endpoint: plain http on an address the AWS SDKs accept for it.
CREDENTIALS_URI = re.compile(r"http://(127\.0\.0\.1|169\.254\.170\.2|169\.254\.170\.23):[0-9]{1,5}/[A-Za-z0-9._/-]*")
# What the app is told about its database; the password is read at each container start.
# How long `restart` waits for a running deploy (pull, health check, drain) to finish.
RESTART_WAIT_SECONDS = 1200.0
# How long a reloaded nginx may take to start its new workers.
NEW_WORKERS_SECONDS = 10.0
DATABASE_VARIABLES = contract.DATABASE_VARIABLES


class ReservedName(Failure):
    """A reserved variable name (contract.RESERVED_ENV_NAMES/PREFIXES) in the app's config,
    whatever wrote it: refused before any value reaches docker or the container."""

    def __init__(self, where: str, name: str) -> None:
        super().__init__(
            f"{where}: {name!r} is refused: {contract.reserved_env_reason(name)}; leanstack never passes it "
            "to docker or the app (unset it: python -m leanstack config STACK unset NAME)"
        )
        self.name = name


@dataclass(frozen=True)
class Database:
    """Where the app's database is. With `parameter`, host, port and secret_arn are read from that
    SSM parameter at each container start (`containers.database_location`)."""

    host: str
    port: int
    name: str
    user: str
    secret_arn: str
    parameter: str = ""


@dataclass(frozen=True)
class Config:
    stack: str
    region: str
    image: str
    ports: tuple[int, int]
    container_port: int
    health_path: str
    health_timeout_seconds: float
    drain_timeout_seconds: float
    env_file: str
    secrets: Mapping[str, str]
    database: Database | None
    registry_secret_arn: str
    releases_parameter: str
    log_group: str
    upstream_path: str
    nginx_pid_path: str
    state_dir: str
    lock_path: str
    # /leanstack/<stack>/app: the app's config in SSM (see the module docstring); "" = none.
    parameters_path: str = ""
    # Whether this host runs the scheduled jobs (the one host, or the jobs host scaled out).
    runs_jobs: bool = True
    unit_dir: str = contract.UNIT_DIR
    metrics_namespace: str = ""
    # The app's own AWS identity (with file storage): the host's credentials endpoint and the
    # file holding its token, and the stack's values for the app (UPLOADS_BUCKET...); see
    # host/credentials. Empty: the container gets no AWS credentials at all.
    credentials_uri: str = ""
    credentials_token_file: str = ""
    stack_values: Mapping[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------
# Configuration


def _field(raw: Mapping[str, Any], key: str, kind: type, default: Any = None, within: str = "") -> Any:
    value = raw.get(key, default)
    if value is None or isinstance(value, bool) or not isinstance(value, kind):
        raise Failure(f"config {within}{key}: {value!r} is not a {kind.__name__}", EXIT_USAGE)
    return value


def _matching(
    raw: Mapping[str, Any], key: str, pattern: re.Pattern[str], allowed: str, default: Any = None, within: str = ""
) -> str:
    value = _field(raw, key, str, default, within)
    if not pattern.fullmatch(value):
        raise Failure(f"config {within}{key}: {value!r} is not allowed: {allowed}", EXIT_USAGE)
    return str(value)


def _port(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise Failure(f"config {key}: {value!r} is not allowed: a port from 1 to 65535", EXIT_USAGE)
    return value


def _seconds(raw: Mapping[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
        raise Failure(f"config {key}: {value!r} is not allowed: seconds from 0 to 3600", EXIT_USAGE)
    return float(value)


def parse_config(raw: Any) -> Config:
    """The config file's JSON object, checked; `Failure` names the first bad key."""
    if not isinstance(raw, dict):
        raise Failure("config: not a JSON object", EXIT_USAGE)
    ports = raw.get("ports")
    if not isinstance(ports, list) or len(ports) != 2:
        raise Failure(f"config ports: {ports!r} is not allowed: two ports such as [3000, 3001]", EXIT_USAGE)
    pair = (_port(ports[0], "ports[0]"), _port(ports[1], "ports[1]"))
    if pair[0] == pair[1]:
        raise Failure(f"config ports: {ports!r} is not allowed: two different ports", EXIT_USAGE)
    secrets = _field(raw, "secrets", dict, {})
    for name, source in secrets.items():
        if not ENV_NAME.fullmatch(name):
            raise Failure(f"config secrets: {name!r} is not allowed: an environment variable name", EXIT_USAGE)
        if contract.reserved_env_reason(name):
            raise ReservedName(f"config secrets.{name}", name)
        if not isinstance(source, str) or not (SSM_NAME.fullmatch(source) or SECRET_ARN.fullmatch(source)):
            raise Failure(
                f"config secrets.{name}: {source!r} is not allowed: an SSM parameter name (/a/b) "
                "or a Secrets Manager ARN",
                EXIT_USAGE,
            )
    database = None
    raw_database = raw.get("database")
    if raw_database is not None:
        if not isinstance(raw_database, dict):
            raise Failure("config database: not an object", EXIT_USAGE)
        name = _matching(raw_database, "name", ENV_NAME, "a database name", within="database.")
        user = _matching(raw_database, "user", ENV_NAME, "a user name", within="database.")
        if "parameter" in raw_database:
            # Where the database is, read at each start (a restored instance needs no new user data).
            parameter = _matching(raw_database, "parameter", SSM_NAME, "an SSM parameter name", within="database.")
            database = Database(host="", port=0, name=name, user=user, secret_arn="", parameter=parameter)
        else:
            database = Database(
                host=_matching(raw_database, "host", HOSTNAME, "a hostname", within="database."),
                port=_port(raw_database.get("port"), "database.port"),
                name=name,
                user=user,
                secret_arn=_matching(
                    raw_database, "secret_arn", SECRET_ARN, "a Secrets Manager ARN", within="database."
                ),
            )
    registry_secret = _field(raw, "registry_secret_arn", str, "")
    if registry_secret and not SECRET_ARN.fullmatch(registry_secret):
        raise Failure(f"config registry_secret_arn: {registry_secret!r} is not a Secrets Manager ARN", EXIT_USAGE)
    releases_parameter = _field(raw, "releases_parameter", str, "")
    if releases_parameter and not SSM_NAME.fullmatch(releases_parameter):
        raise Failure(f"config releases_parameter: {releases_parameter!r} is not an SSM parameter name", EXIT_USAGE)
    log_group = _field(raw, "log_group", str, "")
    if log_group and not LOG_GROUP.fullmatch(log_group):
        raise Failure(f"config log_group: {log_group!r} is not a CloudWatch Logs group name", EXIT_USAGE)
    parameters_path = _field(raw, "parameters_path", str, "")
    if parameters_path and not SSM_NAME.fullmatch(parameters_path):
        raise Failure(
            f"config parameters_path: {parameters_path!r} is not an SSM path such as /leanstack/prod/app", EXIT_USAGE
        )
    runs_jobs = raw.get("runs_jobs", True)
    if not isinstance(runs_jobs, bool):
        raise Failure(f"config runs_jobs: {runs_jobs!r} is not allowed: true or false", EXIT_USAGE)
    stack = _field(raw, "stack", str)
    namespace = _field(raw, "metrics_namespace", str, "") or contract.metrics_namespace(stack)
    identity = _identity(raw.get("identity"))
    path_rule = "an absolute path of letters, digits and ._+@/-"
    return Config(
        stack=stack,
        region=_matching(raw, "region", REGION, "an AWS region such as eu-west-1"),
        image=_matching(raw, "image", REPOSITORY, "an image repository without tag, such as registry/name"),
        ports=pair,
        container_port=_port(raw.get("container_port"), "container_port"),
        health_path=_matching(raw, "health_path", HEALTH_PATH, "a URL path such as /healthz"),
        health_timeout_seconds=_seconds(raw, "health_timeout_seconds", 60),
        drain_timeout_seconds=_seconds(raw, "drain_timeout_seconds", 90),
        env_file=_matching(raw, "env_file", ABSOLUTE_PATH, path_rule),
        secrets=dict(secrets),
        database=database,
        registry_secret_arn=registry_secret,
        releases_parameter=releases_parameter,
        log_group=log_group,
        upstream_path=_matching(raw, "upstream_path", ABSOLUTE_PATH, path_rule),
        nginx_pid_path=_matching(raw, "nginx_pid_path", ABSOLUTE_PATH, path_rule),
        state_dir=_matching(raw, "state_dir", ABSOLUTE_PATH, path_rule),
        lock_path=_matching(raw, "lock_path", ABSOLUTE_PATH, path_rule),
        parameters_path=parameters_path,
        runs_jobs=runs_jobs,
        unit_dir=_matching(raw, "unit_dir", ABSOLUTE_PATH, path_rule, default=contract.UNIT_DIR),
        metrics_namespace=namespace,
        **identity,
    )


def _identity(raw: Any) -> dict[str, Any]:
    """config identity: {credentials_uri, token_file, values}, or absent (no AWS identity for the app)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise Failure("config identity: not an object", EXIT_USAGE)
    uri = _field(raw, "credentials_uri", str, within="identity.")
    if not CREDENTIALS_URI.fullmatch(uri):
        raise Failure(
            f"config identity.credentials_uri: {uri!r} is not an http URL on a link-local address", EXIT_USAGE
        )
    token_file = _matching(raw, "token_file", ABSOLUTE_PATH, "an absolute path", within="identity.")
    values = raw.get("values", {})
    if not isinstance(values, dict) or not all(
        isinstance(k, str) and ENV_NAME.fullmatch(k) and isinstance(v, str) for k, v in values.items()
    ):
        raise Failure("config identity.values: expected an object of variable names to text", EXIT_USAGE)
    return {"credentials_uri": uri, "credentials_token_file": token_file, "stack_values": dict(values)}


def load_config(env: Mapping[str, str]) -> Config:
    path = env.get("LEANSTACK_APP_CONFIG") or DEFAULT_CONFIG_PATH
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except OSError as error:
        raise Failure(f"cannot read config {path}: {error.strerror}", EXIT_USAGE) from None
    except ValueError as error:
        raise Failure(f"config {path} is not JSON: {error}", EXIT_USAGE) from None
    return parse_config(raw)
