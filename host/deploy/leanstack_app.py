#!/usr/bin/python3
"""leanstack-app: run the app's container on the host, deploy it blue/green, restart it.

    leanstack-app deploy TAG    pull <image>:TAG, start it on the idle one of the two app
                                ports, wait for its health path, point nginx's upstream at
                                it (graceful reload), wait for the old nginx workers to
                                finish their requests, then stop the old container
    leanstack-app restart       deploy the running tag again by the same path: the new
                                container reads the secrets afresh (after an RDS password
                                rotation), and no request is dropped; waits for a running
                                deploy to finish instead of being refused
    leanstack-app status        one line: the serving port and image
    leanstack-app boot          on a host that serves nothing yet (a new or replaced
                                host), deploy the newest serving tag of the release
                                history `python -m leanstack deploy` keeps in SSM
    leanstack-app deploy TAG --skip-release-command
                                the same without the release command (scaled out: the CLI
                                runs it once first, then rolls out host by host)
    leanstack-app release-command TAG
                                only run the release command in a container of TAG
    leanstack-app reload-config [--if-changed]
                                a restart when the app's SSM config changed (--if-changed:
                                compare parameter versions with the serving container's,
                                do nothing when equal; the config timer runs this), then
                                sync-jobs
    leanstack-app run [--tty] [--] CMD...
                                CMD in a fresh container of the serving release with the
                                app's config, secrets and database credentials; streams
                                its output, exits with its exit code (--tty: attach a
                                terminal, for an SSM session)
    leanstack-app run --interactive [--] CMD...
                                print the command that opens CMD in such a container from
                                an SSM session (the CLI wraps it in `aws ssm start-session`)
    leanstack-app job NAME      run the configured job NAME in a container of the serving
                                release; a run of NAME still going makes this one skip
                                (exit 0); publishes JobSuccess/JobFailure
    leanstack-app sync-jobs     (re)write the jobs' systemd units from the SSM config,
                                remove those of removed jobs, reload systemd
    leanstack-app serve PORT    what systemd's leanstack-app@PORT.service runs: read the
                                config and secrets, then exec `docker run` for the image
                                recorded for PORT, with the values in its environment only

App config in SSM Parameter Store (when `parameters_path` is set in app.json, normally
/leanstack/<stack>/app; read at every container start with GetParametersByPath,
recursive, decrypted, every page):

    <path>/config         String, JSON written by `pulumi up` from the stack file (no
                          secret values, only references):
                            {"env": {"NAME": "value"},
                             "secrets": {"NAME": "/ssm/parameter/name" | "arn:...secret"},
                             "release_command": ["bin/migrate"],            (optional)
                             "jobs": {"NAME": {"schedule": "<OnCalendar>",
                                               "command": ["bin/report"]}}, (optional)
                             "cache": {"host": "h", "port": 6379,
                                       "token": "/ssm/name" | "arn:..."}}   (optional)
    <path>/env/<NAME>     String: a plain value set outside the stack file (CLI)
    <path>/secret/<NAME>  SecureString: a secret set outside the stack file (CLI)

A name set under env/ or secret/ overrides the same name from the config parameter; one
name under both env/ and secret/, or in both "env" and "secrets", is refused. The
container also gets PORT (serving containers), LEANSTACK_RELEASE (the image tag),
DATABASE_HOST/PORT/NAME/USER/PASSWORD (with a database) and REDIS_URL
(rediss://:<token>@host:port, with "cache"); those names are refused in the config. A
missing `config` parameter, a reference that cannot be read or a bad name fails the start
with one line. Values reach docker only through its environment, by name (`--env NAME`),
never its argv, never a file. Jobs: NAME is [a-z0-9-] (at most 40), and its metrics
JobSuccess and JobFailure (0 or 1 per run, dimensions Stack and Stack+Job) go to the
namespace `metrics_namespace` (default Leanstack/<stack>).

Runs on Amazon Linux 2023's system Python (3.9) with the standard library; secret reads go
through the preinstalled `aws` CLI with the instance role, the SSM config path and the job
metrics through boto3 (python3-boto3; honours AWS_ENDPOINT_URL). Configuration is the JSON
file /etc/leanstack/app.json (written by cloud-init; no secrets in it) or
$LEANSTACK_APP_CONFIG. The steps that touch the container engine, systemd and nginx are
commands that the environment may replace (tests stand in plain processes for containers);
`{port}` and `{image}` in them are replaced by shell-quoted values:

    LEANSTACK_APP_PULL          default: docker pull {image} (after docker login when the
                                config names a registry secret)
    LEANSTACK_APP_START         default: systemctl enable --now leanstack-app@{port}.service
    LEANSTACK_APP_STOP          default: systemctl disable --now leanstack-app@{port}.service
    LEANSTACK_NGINX_CHECK       default: nginx -t -q
    LEANSTACK_NGINX_RELOAD      default: systemctl reload nginx.service
    LEANSTACK_DOCKER            the docker program `serve`, `run`, `job` and the
                                release command use (default: docker)
    LEANSTACK_SYSTEMD_RELOAD    default: systemctl daemon-reload
    LEANSTACK_JOB_ENABLE        default: systemctl enable --now {unit}
    LEANSTACK_JOB_DISABLE       default: systemctl disable --now {unit}

The release command (at most 30 min; `boot` and `restart` never run it) and one-off
commands run in containers named release-<pid> and run-<pid>, a job in job-<NAME>; none
publishes a port. Exit codes: 0 done; 1 the deploy failed and the version that was serving
still serves (or the step failed); 2 bad input or configuration; 3 another deploy holds the
lock; `run` and `job` exit with the command's own code. Every failure of the tool itself is
exactly one line on stderr, starting with "leanstack-app:".
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

PROGRAM = "leanstack-app"
DEFAULT_CONFIG_PATH = "/etc/leanstack/app.json"

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
DATABASE_VARIABLES = ("DATABASE_HOST", "DATABASE_PORT", "DATABASE_NAME", "DATABASE_USER", "DATABASE_PASSWORD")


class Failure(Exception):
    """A one-line reason; the exit code says what state the host is in."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Database:
    host: str
    port: int
    name: str
    user: str
    secret_arn: str


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
    unit_dir: str = "/etc/systemd/system"
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
        if not ENV_NAME.fullmatch(name) or name in DATABASE_VARIABLES or name == "PORT":
            raise Failure(f"config secrets: {name!r} is not allowed: an environment variable name", EXIT_USAGE)
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
        database = Database(
            host=_matching(raw_database, "host", HOSTNAME, "a hostname", within="database."),
            port=_port(raw_database.get("port"), "database.port"),
            name=_matching(raw_database, "name", ENV_NAME, "a database name", within="database."),
            user=_matching(raw_database, "user", ENV_NAME, "a user name", within="database."),
            secret_arn=_matching(raw_database, "secret_arn", SECRET_ARN, "a Secrets Manager ARN", within="database."),
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
    namespace = _field(raw, "metrics_namespace", str, "") or f"Leanstack/{stack}"
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
        unit_dir=_matching(raw, "unit_dir", ABSOLUTE_PATH, path_rule, default="/etc/systemd/system"),
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


# ---------------------------------------------------------------------------------------
# Host state: which port serves, which image runs on each port


def _write_atomically(path: str, text: str, mode: int = 0o644) -> None:
    """Write next to `path` and rename over it: readers see the old or the new file, whole."""
    directory = os.path.dirname(path) or "."
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".leanstack-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def read_current(config: Config) -> dict[str, Any] | None:
    """The serving port and image, or None before the first deploy."""
    path = os.path.join(config.state_dir, "current.json")
    try:
        with open(path, encoding="utf-8") as handle:
            current = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise Failure(f"cannot read {path}: {error}") from None
    if not isinstance(current, dict) or current.get("port") not in config.ports:
        raise Failure(f"{path} names no port of {list(config.ports)}; fix or remove it")
    return current


def image_path(config: Config, port: int) -> str:
    return os.path.join(config.state_dir, f"image-{port}")


def upstream_text(port: int) -> str:
    """The included upstream file; must match host/render.py's render_upstream."""
    return (
        "# The app container nginx proxies to; rewritten by leanstack-app deploy.\n"
        f"server 127.0.0.1:{port} max_fails=0;\n"
    )


@contextlib.contextmanager
def deploy_lock(config: Config, wait_seconds: float = 0) -> Iterator[None]:
    """The one-deploy-at-a-time flock; waits up to `wait_seconds` for it, then refuses."""
    os.makedirs(os.path.dirname(config.lock_path) or ".", exist_ok=True)
    descriptor = os.open(config.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() >= deadline:
                held_by = os.pread(descriptor, 200, 0).decode("utf-8", "replace").strip() or "unknown"
                raise Failure(
                    f"another deploy is running ({held_by}); nothing changed, try again when it has finished",
                    EXIT_BUSY,
                ) from None
            time.sleep(0.5)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"pid {os.getpid()} since {_now()}\n".encode(), 0)
        try:
            yield
        finally:
            # Empty again before the lock goes: the text names a deploy that is running.
            os.ftruncate(descriptor, 0)
    finally:
        os.close(descriptor)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---------------------------------------------------------------------------------------
# Commands the environment may replace


def _command(env: Mapping[str, str], name: str, **values: object) -> list[str]:
    template = env.get(name) or DEFAULT_COMMANDS[name]
    quoted = {key: shlex.quote(str(value)) for key, value in values.items()}
    try:
        return shlex.split(template.format(**quoted))
    except (KeyError, IndexError, ValueError) as error:
        raise Failure(f"{name}: {template!r} is not a usable command ({error})", EXIT_USAGE) from None


def _run(env: Mapping[str, str], name: str, timeout: float, **values: object) -> subprocess.CompletedProcess[str]:
    argv = _command(env, name, **values)
    try:
        return subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, env=dict(env), check=False
        )
    except FileNotFoundError:
        raise Failure(f"{name}: {argv[0]} not found") from None
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"timed out after {timeout:.0f} s")


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (done.stderr + "\n" + done.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {done.returncode}"


_STARTED = time.monotonic()


def _say(message: str) -> None:
    print(f"{PROGRAM}: [{time.monotonic() - _STARTED:.1f} s] {message}", flush=True)


# ---------------------------------------------------------------------------------------
# AWS reads through the `aws` CLI (the instance role; nothing stored on disk)


def _aws(region: str, arguments: Sequence[str], what: str) -> str:
    argv = ["aws", "--region", region, *arguments, "--output", "text"]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise Failure("the aws CLI is not installed") from None
    except subprocess.TimeoutExpired:
        raise Failure(f"reading {what} timed out after 60 s") from None
    if done.returncode != 0:
        raise Failure(f"cannot read {what}: {_last_line(done)}")
    # --output text ends the value with a newline.
    return done.stdout[:-1] if done.stdout.endswith("\n") else done.stdout


def read_secret(region: str, source: str) -> str:
    """An SSM parameter (decrypted) or a Secrets Manager secret's string."""
    if source.startswith("arn:"):
        return _aws(
            region,
            ["secretsmanager", "get-secret-value", "--secret-id", source, "--query", "SecretString"],
            source,
        )
    return _aws(
        region,
        ["ssm", "get-parameter", "--name", source, "--with-decryption", "--query", "Parameter.Value"],
        source,
    )


def _secret_json(region: str, arn: str, keys: Sequence[str]) -> dict[str, str]:
    try:
        value = json.loads(read_secret(region, arn))
    except ValueError:
        raise Failure(f"secret {arn} is not a JSON object") from None
    if not isinstance(value, dict) or not all(isinstance(value.get(key), str) for key in keys):
        raise Failure(f"secret {arn} lacks {' and '.join(keys)}")
    return {key: str(value[key]) for key in keys}


# ---------------------------------------------------------------------------------------
# The app's config in SSM Parameter Store (the contract is in the module docstring)

APP_CONFIG_KEYS = ("env", "secrets", "release_command", "jobs", "cache")
JOB_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
# One line, no control characters: what a unit file's value may hold.
ONE_LINE = re.compile(r"[^\x00-\x1f\x7f]{1,256}")
# Names leanstack sets itself; REDIS_URL only when the config names a cache.
RESERVED_NAMES = frozenset({"PORT", "LEANSTACK_RELEASE", *DATABASE_VARIABLES})


def config_parameter(path: str) -> str:
    return f"{path}/config"


def env_parameter(path: str, name: str) -> str:
    return f"{path}/env/{name}"


def secret_parameter(path: str, name: str) -> str:
    return f"{path}/secret/{name}"


@dataclass(frozen=True)
class Job:
    schedule: str
    command: tuple[str, ...]


@dataclass(frozen=True)
class AppConfig:
    """The app's config as read at one container start; `version` identifies what was read."""

    plain: Mapping[str, str]
    # name -> where to read it (an SSM name or a Secrets Manager ARN), or its value when it
    # came with the path read (secret/<NAME>, decrypted).
    secret_sources: Mapping[str, str]
    secret_values: Mapping[str, str]
    release_command: tuple[str, ...]
    jobs: Mapping[str, Job]
    cache: Mapping[str, Any] | None
    version: str


def _argv(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(a, str) and a for a in value):
        raise Failure(f"{key}: {value!r} is not allowed: a non-empty list of strings (an argv)")
    return tuple(value)


def _secret_source(value: Any, key: str) -> str:
    if not isinstance(value, str) or not (SSM_NAME.fullmatch(value) or SECRET_ARN.fullmatch(value)):
        raise Failure(f"{key}: {value!r} is not allowed: an SSM parameter name (/a/b) or a Secrets Manager ARN")
    return value


def _name(name: str, key: str, cache: bool) -> str:
    if not ENV_NAME.fullmatch(name):
        raise Failure(f"{key}: {name!r} is not allowed: a variable name of letters, digits and _")
    if name in RESERVED_NAMES or (cache and name == "REDIS_URL"):
        raise Failure(f"{key}: {name!r} is not allowed: leanstack sets it")
    return name


def parse_app_config(parameters: Mapping[str, str], versions: Mapping[str, int], path: str) -> AppConfig:
    """Everything under `path` (name -> value), checked; `Failure` names the parameter."""
    where = config_parameter(path)
    if where not in parameters:
        raise Failure(f"{where}: parameter not found (pulumi up writes it); the app cannot start without it")
    try:
        raw = json.loads(parameters[where])
    except ValueError:
        raise Failure(f"{where}: not JSON") from None
    if not isinstance(raw, dict):
        raise Failure(f"{where}: not a JSON object")
    unknown = sorted(set(raw) - set(APP_CONFIG_KEYS))
    if unknown:
        raise Failure(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(APP_CONFIG_KEYS)}")
    cache = raw.get("cache")
    if cache is not None:
        if not isinstance(cache, dict) or set(cache) != {"host", "port", "token"}:
            raise Failure(f"{where}: cache: {cache!r} is not allowed: {{host, port, token}}")
        if not isinstance(cache["host"], str) or not HOSTNAME.fullmatch(cache["host"]):
            raise Failure(f"{where}: cache.host: {cache['host']!r} is not a hostname")
        _port(cache["port"], f"{where}: cache.port")
        _secret_source(cache["token"], f"{where}: cache.token")
    plain: dict[str, str] = {}
    sources: dict[str, str] = {}
    for section, target in (("env", plain), ("secrets", sources)):
        values = raw.get(section, {})
        if not isinstance(values, dict):
            raise Failure(f"{where}: {section}: not an object")
        for name, value in values.items():
            key = f"{where}: {section}.{name}"
            _name(name, key, cache is not None)
            if section == "env":
                if not isinstance(value, str) or "\x00" in value:
                    raise Failure(f"{key}: the value must be a string")
                target[name] = value
            else:
                target[name] = _secret_source(value, key)
    both = sorted(set(plain) & set(sources))
    if both:
        raise Failure(f"{where}: {both[0]!r} is in both env and secrets; keep one")
    # What the CLI set outside the stack file overrides the stack file's value of that name.
    cli_plain: dict[str, str] = {}
    cli_secret: dict[str, str] = {}
    for name, value in parameters.items():
        for prefix, target in ((f"{path}/env/", cli_plain), (f"{path}/secret/", cli_secret)):
            if name.startswith(prefix):
                target[_name(name[len(prefix) :], name, cache is not None)] = value
    both = sorted(set(cli_plain) & set(cli_secret))
    if both:
        raise Failure(f"{env_parameter(path, both[0])}: also set as {secret_parameter(path, both[0])}; unset one")
    for name in [*cli_plain, *cli_secret]:
        plain.pop(name, None)
        sources.pop(name, None)
    plain.update(cli_plain)
    jobs: dict[str, Job] = {}
    raw_jobs = raw.get("jobs", {})
    if not isinstance(raw_jobs, dict):
        raise Failure(f"{where}: jobs: not an object")
    for name, job in raw_jobs.items():
        key = f"{where}: jobs.{name}"
        if not isinstance(name, str) or not JOB_NAME.fullmatch(name):
            raise Failure(f"{key}: the name is not allowed: lower-case letters, digits and - (at most 40)")
        if not isinstance(job, dict) or set(job) != {"schedule", "command"}:
            raise Failure(f"{key}: {job!r} is not allowed: {{schedule, command}}")
        if not isinstance(job["schedule"], str) or not ONE_LINE.fullmatch(job["schedule"]):
            raise Failure(f"{key}.schedule: {job['schedule']!r} is not a systemd OnCalendar expression")
        jobs[name] = Job(job["schedule"], _argv(job["command"], f"{key}.command"))
    release = raw.get("release_command")
    fingerprint = json.dumps(sorted(versions.items()))
    return AppConfig(
        plain=plain,
        secret_sources=sources,
        secret_values=cli_secret,
        release_command=() if release is None else _argv(release, f"{where}: release_command"),
        jobs=jobs,
        cache=cache,
        version=hashlib.sha256(fingerprint.encode()).hexdigest()[:16],
    )


def boto3_client(service: str, region: str) -> Any:
    """A boto3 client; boto3 is imported here: only hosts whose app config is in SSM need it."""
    # A newer boto3 warns on stderr about Python 3.9 itself: errors stay one line.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import boto3
        except ImportError:
            raise Failure(f"{service} needs boto3 (python3-boto3)") from None
        return boto3.client(service, region_name=region)  # type: ignore[call-overload]


def read_parameters(config: Config) -> tuple[dict[str, str], dict[str, int]]:
    """Every parameter under the app's path, decrypted, all pages: (values, versions)."""
    path = config.parameters_path
    values: dict[str, str] = {}
    versions: dict[str, int] = {}
    try:
        client = boto3_client("ssm", config.region)
        token = ""
        while True:
            page = client.get_parameters_by_path(
                Path=path, Recursive=True, WithDecryption=True, **({"NextToken": token} if token else {})
            )
            for parameter in page.get("Parameters", []):
                values[parameter["Name"]] = parameter["Value"]
                versions[parameter["Name"]] = int(parameter.get("Version", 0))
            token = page.get("NextToken") or ""
            if not token:
                return values, versions
    except Failure:
        raise
    except Exception as error:  # botocore's errors, whichever: one line
        text = " ".join(str(error).split())
        raise Failure(f"cannot read the app's config under {path}: {text}") from None


def read_app_config(config: Config) -> AppConfig | None:
    if not config.parameters_path:
        return None
    values, versions = read_parameters(config)
    return parse_app_config(values, versions, config.parameters_path)


# ---------------------------------------------------------------------------------------
# The container's environment and docker's argv


def _read_token(path: str) -> str:
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read().strip()
    except OSError as error:
        raise Failure(
            f"cannot read the credentials token {path}: {error.strerror} (is leanstack-credentials running?)"
        ) from None


def container_environment(config: Config, image: str, app: AppConfig | None) -> dict[str, str]:
    """Everything the container gets in its environment, read now (never cached).

    Plain values travel the same way as secrets: docker reads each from its own
    environment (`--env NAME`), so nothing lands in a file or in argv.
    """
    values: dict[str, str] = {"LEANSTACK_RELEASE": image.rsplit(":", 1)[-1]}
    if config.credentials_uri:
        # The app's own role, short-lived and refreshed by the SDK from the host's endpoint; the
        # token is read now, so a container started after the endpoint's first start has it.
        values.update(config.stack_values)
        values["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = config.credentials_uri
        values["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = _read_token(config.credentials_token_file)
    if config.database is not None:
        login = _secret_json(config.region, config.database.secret_arn, ("password",))
        values.update(
            DATABASE_HOST=config.database.host,
            DATABASE_PORT=str(config.database.port),
            DATABASE_NAME=config.database.name,
            DATABASE_USER=config.database.user,
            DATABASE_PASSWORD=login["password"],
        )
    for name, source in sorted(config.secrets.items()):
        values[name] = read_secret(config.region, source)
    if app is not None:
        values.update(app.plain)
        for name, source in sorted(app.secret_sources.items()):
            values[name] = read_secret(config.region, source)
        values.update(app.secret_values)
        if app.cache is not None:
            token = read_secret(config.region, str(app.cache["token"]))
            quoted = urllib.parse.quote(token, safe="")
            values["REDIS_URL"] = f"rediss://:{quoted}@{app.cache['host']}:{app.cache['port']}"
    return values


def _logging_argv(config: Config, stream: str) -> list[str]:
    if config.log_group:
        # To CloudWatch Logs (which outlives the host) with the instance role; an attached
        # docker run also streams the output to its caller (the unit's journal).
        return [
            "--log-driver",
            "awslogs",
            "--log-opt",
            f"awslogs-region={config.region}",
            "--log-opt",
            f"awslogs-group={config.log_group}",
            "--log-opt",
            f"awslogs-stream={stream}",
        ]
    # The caller's output only: no json files to fill the disk.
    return ["--log-driver", "none"]


def _environment_argv(config: Config, names: Sequence[str]) -> list[str]:
    argv: list[str] = []
    if os.path.exists(config.env_file):
        argv += ["--env-file", config.env_file]
    # `-e NAME` without a value: docker takes the value from its own environment, so no
    # value appears in argv (visible in ps) or in a file.
    for name in names:
        argv += ["--env", name]
    return argv


def docker_run_argv(config: Config, port: int, image: str, names: Sequence[str], docker: str) -> list[str]:
    argv = [
        docker,
        "run",
        "--rm",
        "--name",
        f"app-{port}",
        # deploy pulled it; a restart after a reboot must not depend on the registry.
        "--pull",
        "never",
        "--init",
        "--publish",
        f"127.0.0.1:{port}:{config.container_port}",
        "--label",
        f"leanstack.stack={config.stack}",
    ]
    argv += _logging_argv(config, f"app-{port}-{image.rsplit(':', 1)[-1]}")
    return [*argv, *_environment_argv(config, names), image]


def one_off_argv(
    config: Config, image: str, names: Sequence[str], docker: str, name: str, command: Sequence[str], tty: bool
) -> list[str]:
    """`docker run` for a command (release, job, one-off) in a fresh container: no port published."""
    argv = [docker, "run", "--rm", "--name", name, "--pull", "never", "--init"]
    argv += ["--label", f"leanstack.stack={config.stack}", "--label", f"leanstack.role={name.split('-', 1)[0]}"]
    if tty:
        argv += ["--interactive", "--tty"]
    argv += _logging_argv(config, f"{name}-{image.rsplit(':', 1)[-1]}")
    return [*argv, *_environment_argv(config, names), image, *command]


def serve(config: Config, port_argument: str, env: Mapping[str, str]) -> NoReturn:
    if not port_argument.isdigit() or int(port_argument) not in config.ports:
        raise Failure(f"serve: port {port_argument!r} is not allowed: one of {list(config.ports)}", EXIT_USAGE)
    port = int(port_argument)
    try:
        with open(image_path(config, port), encoding="utf-8") as handle:
            image = handle.read().strip()
    except OSError:
        raise Failure(f"serve: no image recorded for port {port}; deploy one with `{PROGRAM} deploy TAG`") from None
    app = read_app_config(config)
    values = {**container_environment(config, image, app), "PORT": str(config.container_port)}
    if app is not None:
        _write_atomically(os.path.join(config.state_dir, f"config-{port}"), app.version + "\n")
    docker = env.get("LEANSTACK_DOCKER") or "docker"
    argv = docker_run_argv(config, port, image, sorted(values), docker)
    sys.stdout.flush()
    try:
        os.execvpe(docker, argv, {**env, **values})
    except OSError as error:
        raise Failure(f"serve: cannot start {docker}: {error.strerror}") from None


def run_in_container(
    config: Config,
    env: Mapping[str, str],
    image: str,
    app: AppConfig | None,
    name: str,
    command: Sequence[str],
    *,
    tty: bool = False,
    capture: int = 0,
    timeout: float | None = None,
) -> tuple[int, list[str]]:
    """Run `command` in a fresh container of `image`, its output streamed to ours.

    Returns the exit code and, with `capture`, the output's last `capture` lines. A
    timeout removes the container (killing the docker client alone would leave it running).
    """
    values = container_environment(config, image, app)
    docker = env.get("LEANSTACK_DOCKER") or "docker"
    argv = one_off_argv(config, image, sorted(values), docker, name, command, tty)
    sys.stdout.flush()
    child_env = {**env, **values}
    try:
        if not capture:
            child = subprocess.Popen(argv, env=child_env)
            try:
                return child.wait(timeout=timeout), []
            except subprocess.TimeoutExpired:
                _remove_container(docker, name, child, env)
                return 124, [f"timed out after {timeout:g} s"]
            except KeyboardInterrupt:
                _remove_container(docker, name, child, env)
                raise
        tail: collections.deque[str] = collections.deque(maxlen=capture)
        child = subprocess.Popen(
            argv, env=child_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )

        def relay() -> None:
            # Streams the output on as it comes and keeps its tail; a thread, so a silent
            # command still meets its timeout.
            assert child.stdout is not None
            for raw in child.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                print(line, flush=True)
                if line.strip():
                    tail.append(line.strip())

        reader = threading.Thread(target=relay, daemon=True)
        reader.start()
        try:
            code = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _remove_container(docker, name, child, env)
            reader.join(timeout=5)
            return 124, [*tail, f"timed out after {timeout:g} s"]
        reader.join(timeout=30)
        return code, list(tail)
    except FileNotFoundError:
        raise Failure(f"cannot start {docker}: not found") from None


def _remove_container(docker: str, name: str, child: subprocess.Popen[Any], env: Mapping[str, str]) -> None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run([docker, "rm", "--force", name], env=dict(env), capture_output=True, timeout=60, check=False)
    child.kill()
    child.wait()


def serving_image(config: Config) -> str:
    current = read_current(config)
    if current is None:
        raise Failure(f"nothing is deployed yet; deploy a release with `{PROGRAM} deploy TAG` first")
    return str(current["image"])


def run_one_off(config: Config, command: Sequence[str], env: Mapping[str, str], tty: bool) -> int:
    image = serving_image(config)
    code, _ = run_in_container(config, env, image, read_app_config(config), f"run-{os.getpid()}", command, tty=tty)
    return code


def interactive_command(command: Sequence[str]) -> str:
    """What to run in an SSM session for a console in a fresh container of the serving release."""
    return shlex.join(["sudo", "/usr/local/sbin/leanstack-app", "run", "--tty", "--", *command])


# ---------------------------------------------------------------------------------------
# The release command


RELEASE_COMMAND_SECONDS = 1800.0
RELEASE_TAIL_LINES = 3


def release_command(config: Config, image: str, env: Mapping[str, str], app: AppConfig | None) -> bool:
    """Run the configured release command once in a container of `image`; `Failure` when it fails.

    False when none is configured.
    """
    if app is None or not app.release_command:
        return False
    _say(f"running the release command {shlex.join(app.release_command)} in {image}")
    tag = image.rsplit(":", 1)[-1]
    code, tail = run_in_container(
        config,
        env,
        image,
        app,
        f"release-{os.getpid()}",
        app.release_command,
        capture=RELEASE_TAIL_LINES,
        timeout=RELEASE_COMMAND_SECONDS,
    )
    if code != 0:
        last = " | ".join(tail) or "no output"
        raise Failure(
            f"the release command of {tag} exited {code} ({last[-400:]}); "
            "not deployed, the old version serves, the database is as the command left it"
        )
    _say(f"the release command of {tag} succeeded")
    return True


# ---------------------------------------------------------------------------------------
# deploy


def _health(url: str, timeout: float) -> str | None:
    """None when the app answered 2xx; otherwise what it did instead."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return f"no answer ({reason})"
    return None if 200 <= status < 300 else f"HTTP {status}"


def wait_healthy(config: Config, port: int) -> str | None:
    """Poll the new container's health path until it passes; None, or the last failure."""
    url = f"http://127.0.0.1:{port}{config.health_path}"
    deadline = time.monotonic() + config.health_timeout_seconds
    while True:
        problem = _health(url, timeout=min(5.0, config.health_timeout_seconds))
        if problem is None:
            return None
        if time.monotonic() >= deadline:
            return problem
        # A local request is cheap; polling often shortens every deploy.
        time.sleep(0.1)


def _children(parent: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        # Field 4 is the parent pid; the command name (field 2) may hold spaces, so split after it.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(parent) and fields[0] != "Z":
            found.add(int(entry))
    return found


def nginx_workers(config: Config) -> set[int]:
    """The nginx master's live children (its workers), or nothing when nginx is not running."""
    try:
        with open(config.nginx_pid_path, encoding="utf-8") as handle:
            master = int(handle.read().strip())
    except (OSError, ValueError):
        return set()
    return _children(master)


def wait_drained(config: Config, old_workers: set[int]) -> bool:
    """After a reload, wait until the workers that ran the old upstream have all exited.

    A reload starts new workers with the new upstream and asks the old ones to finish their
    requests and exit, so once they are gone nothing can reach the old container.
    """
    deadline = time.monotonic() + config.drain_timeout_seconds
    while True:
        alive = {pid for pid in old_workers if os.path.exists(f"/proc/{pid}")} & nginx_workers(config)
        if not alive:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _stop(env: Mapping[str, str], port: int) -> str | None:
    done = _run(env, "LEANSTACK_APP_STOP", 120, port=port)
    return None if done.returncode == 0 else _last_line(done)


def _pull(config: Config, env: Mapping[str, str], image: str) -> None:
    if config.registry_secret_arn and not env.get("LEANSTACK_APP_PULL"):
        login = _secret_json(config.region, config.registry_secret_arn, ("username", "password"))
        registry = config.image.split("/", 1)[0]
        docker = env.get("LEANSTACK_DOCKER") or "docker"
        done = subprocess.run(
            [docker, "login", "--username", login["username"], "--password-stdin", registry],
            input=login["password"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise Failure(f"docker login to {registry} failed: {_last_line(done)}")
    done = _run(env, "LEANSTACK_APP_PULL", 900, image=image)
    if done.returncode != 0:
        raise Failure(f"pulling {image} failed: {_last_line(done)}; nothing changed")


def _switch(config: Config, env: Mapping[str, str], image: str, new_port: int) -> set[int]:
    """Health-check the new container, then point nginx at it; returns the old nginx workers.

    Raises `Failure` with nginx still on the old upstream (its file restored) otherwise.
    """
    problem = wait_healthy(config, new_port)
    if problem is not None:
        raise Failure(
            f"{image} failed its health check http://127.0.0.1:{new_port}{config.health_path} for "
            f"{config.health_timeout_seconds:g} s (last: {problem}); removed it, the old version serves"
        )
    _say(f"{image} is healthy on port {new_port}; switching nginx")
    try:
        with open(config.upstream_path, encoding="utf-8") as handle:
            previous_upstream: str | None = handle.read()
    except FileNotFoundError:
        previous_upstream = None
    _write_atomically(config.upstream_path, upstream_text(new_port))
    checked = _run(env, "LEANSTACK_NGINX_CHECK", 60)
    old_workers = nginx_workers(config)
    reloaded = _run(env, "LEANSTACK_NGINX_RELOAD", 60) if checked.returncode == 0 else checked
    problem = None
    if reloaded.returncode != 0:
        step = "nginx -t" if checked.returncode != 0 else "the nginx reload"
        problem = f"{step} failed: {_last_line(reloaded)}"
    elif old_workers and not _wait_new_workers(config, old_workers):
        # The reload signal was sent but nginx kept its old workers: it did not load the file.
        problem = f"nginx did not start new workers within {NEW_WORKERS_SECONDS:g} s of the reload"
    if problem is not None:
        if previous_upstream is not None:
            _write_atomically(config.upstream_path, previous_upstream)
        raise Failure(f"{problem}; upstream restored, the old version serves")
    return old_workers


def _wait_new_workers(config: Config, old_workers: set[int]) -> bool:
    deadline = time.monotonic() + NEW_WORKERS_SECONDS
    while not nginx_workers(config) - old_workers:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _check_tag(tag: str) -> None:
    if not TAG.fullmatch(tag):
        raise Failure(f"tag {tag!r} is not allowed: letters, digits and _.- (at most 128)", EXIT_USAGE)


def deploy(config: Config, tag: str, env: Mapping[str, str], run_release_command: bool = True) -> None:
    _check_tag(tag)
    with deploy_lock(config):
        _deploy_locked(config, tag, env, run_release_command)


def run_release_command_only(config: Config, tag: str, env: Mapping[str, str]) -> None:
    """`release-command TAG`: pull and run it, under the deploy lock, and nothing else."""
    _check_tag(tag)
    with deploy_lock(config):
        image = f"{config.image}:{tag}"
        _pull(config, env, image)
        if not release_command(config, image, env, read_app_config(config)):
            _say("no release command configured; nothing to run")


def _deploy_locked(config: Config, tag: str, env: Mapping[str, str], run_release_command: bool) -> None:
    image = f"{config.image}:{tag}"
    os.makedirs(config.state_dir, exist_ok=True)
    current = read_current(config)
    old_port = current["port"] if current else None
    new_port = config.ports[1] if old_port == config.ports[0] else config.ports[0]
    _say(f"deploying {image} on port {new_port} (serving now: {current['image'] if current else 'nothing'})")
    _pull(config, env, image)
    # Read everything the container will read, once, before anything starts: a missing
    # parameter or secret is one line here rather than a failed health check later.
    app = read_app_config(config)
    container_environment(config, image, app)
    if run_release_command:
        # Before the new version starts: a failure leaves the old version serving, alone.
        release_command(config, image, env, app)

    # Whatever is left on the idle port (a crashed earlier attempt) goes first.
    _stop(env, new_port)
    _write_atomically(image_path(config, new_port), image + "\n")
    started = _run(env, "LEANSTACK_APP_START", 300, port=new_port, image=image)
    if started.returncode != 0:
        _stop(env, new_port)
        raise Failure(f"{image} did not start on port {new_port}: {_last_line(started)}; the old version serves")
    try:
        old_workers = _switch(config, env, image, new_port)
    except BaseException:
        # Anything short of a switched nginx leaves the old version serving, alone.
        _stop(env, new_port)
        raise
    state = {
        "port": new_port,
        "image": image,
        "since": _now(),
        "previous": current["image"] if current else None,
        # The config version the new container read (written by `serve`): reload-config compares it.
        "config_version": _read_text(os.path.join(config.state_dir, f"config-{new_port}")),
    }
    _write_atomically(os.path.join(config.state_dir, "current.json"), json.dumps(state) + "\n")

    if not wait_drained(config, old_workers):
        _say(
            f"warning: old nginx workers still busy after {config.drain_timeout_seconds:g} s; "
            "stopping the old version anyway"
        )
    if old_port is not None and old_port != new_port:
        problem = _stop(env, old_port)
        if problem is not None:
            _say(f"warning: stopping the old version on port {old_port} failed: {problem}")
    _say(f"deployed {image}: serving on port {new_port}")


def restart(config: Config, env: Mapping[str, str]) -> None:
    """Redeploy the serving image: a fresh container reads the secrets again.

    Unlike a deploy, a restart waits for a running deploy to finish rather than being
    refused: after a password rotation, the version that serves must restart whichever it is.
    """
    with deploy_lock(config, wait_seconds=RESTART_WAIT_SECONDS):
        current = read_current(config)
        if current is None:
            raise Failure("nothing is deployed yet; nothing to restart")
        image = str(current["image"])
        prefix = config.image + ":"
        if not image.startswith(prefix):
            raise Failure(f"the serving image {image} is not from {config.image}; deploy a tag first")
        _deploy_locked(config, image[len(prefix) :], env, run_release_command=False)


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def reload_config(config: Config, env: Mapping[str, str], if_changed: bool) -> None:
    """Restart blue/green when the app's SSM config changed, then bring the jobs' units in line."""
    app = read_app_config(config)
    if app is None:
        # The config travels in the host's files (no parameters_path): nothing can change it here.
        if if_changed:
            _say("the app's config is not in SSM; nothing to reload")
        else:
            restart(config, env)
        return
    current = read_current(config)
    if current is None:
        _say("nothing is deployed yet; the first deploy reads the config")
    elif if_changed and current.get("config_version") == app.version:
        _say(f"the app's config is unchanged (version {app.version}); nothing to restart")
    else:
        restart(config, env)
    sync_jobs(config, env, app)


# ---------------------------------------------------------------------------------------
# Scheduled jobs

JOB_UNIT_PREFIX = "leanstack-job-"
# Spreads the hosts of many stacks off the exact minute; small enough to keep schedules honest.
JOB_RANDOMIZED_DELAY = "30s"
JOB_TIMEOUT = "2h"


def job_lock_path(config: Config, name: str) -> str:
    return os.path.join(os.path.dirname(config.lock_path) or ".", f"{JOB_UNIT_PREFIX}{name}.lock")


def publish_job_metrics(config: Config, name: str, succeeded: bool) -> None:
    """JobSuccess and JobFailure (0 or 1) by Stack and by Stack+Job; a failure here only warns."""
    stack = [{"Name": "Stack", "Value": config.stack}]
    data: list[Any] = [
        {"MetricName": metric, "Dimensions": dimensions, "Value": float(value), "Unit": "Count"}
        for metric, value in (("JobSuccess", succeeded), ("JobFailure", not succeeded))
        for dimensions in (stack, [*stack, {"Name": "Job", "Value": name}])
    ]
    try:
        boto3_client("cloudwatch", config.region).put_metric_data(Namespace=config.metrics_namespace, MetricData=data)
    except Exception as error:  # metrics never change the job's result
        _say(f"warning: publishing JobSuccess/JobFailure failed: {' '.join(str(error).split())}")


def job(config: Config, name: str, env: Mapping[str, str]) -> int:
    """Run job `name` once; a run of it still going makes this one skip (exit 0)."""
    if not JOB_NAME.fullmatch(name):
        raise Failure(f"job: {name!r} is not allowed: lower-case letters, digits and - (at most 40)", EXIT_USAGE)
    path = job_lock_path(config, name)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            held_by = os.pread(descriptor, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            _say(f"job {name} is still running ({held_by}); skipped this run")
            return 0
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"pid {os.getpid()} since {_now()}\n".encode(), 0)
        try:
            code = _job_locked(config, name, env)
        except Failure:
            publish_job_metrics(config, name, succeeded=False)
            raise
        finally:
            os.ftruncate(descriptor, 0)
        publish_job_metrics(config, name, succeeded=code == 0)
        _say(f"job {name} {'succeeded' if code == 0 else f'failed (exit {code})'}")
        return code
    finally:
        os.close(descriptor)


def _job_locked(config: Config, name: str, env: Mapping[str, str]) -> int:
    app = read_app_config(config)
    if app is None or name not in app.jobs:
        raise Failure(f"job {name!r} is not configured; configured: {', '.join(sorted(app.jobs)) if app else 'none'}")
    image = serving_image(config)
    _say(f"job {name}: {shlex.join(app.jobs[name].command)} in {image}")
    # The container's name is fixed: never two of one job, and the unit's ExecStopPost finds it.
    code, _ = run_in_container(config, env, image, app, f"job-{name}", app.jobs[name].command)
    return code


def job_units(name: str, job_config: Job) -> dict[str, str]:
    """The service and timer of one job (file name -> text)."""
    unit = f"{JOB_UNIT_PREFIX}{name}"
    service = f"""# Written by `leanstack-app sync-jobs` from the app's config in SSM; do not edit.
[Unit]
Description=leanstack job {name}
Requires=docker.service
After=docker.service network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/leanstack-app job {name}
# A timeout ends the tool, not the container: remove it (no-op when it is gone).
ExecStopPost=-/usr/bin/docker rm --force job-{name}
TimeoutStartSec={JOB_TIMEOUT}
SyslogIdentifier=job-{name}
"""
    timer = f"""# Written by `leanstack-app sync-jobs` from the app's config in SSM; do not edit.
[Unit]
Description=leanstack job {name} ({job_config.schedule})

[Timer]
OnCalendar={job_config.schedule}
# A run missed while the host was off happens at boot.
Persistent=true
RandomizedDelaySec={JOB_RANDOMIZED_DELAY}

[Install]
WantedBy=timers.target
"""
    return {f"{unit}.service": service, f"{unit}.timer": timer}


def check_schedules(jobs: Mapping[str, Job]) -> None:
    """Each schedule through `systemd-analyze calendar`, so a bad one changes no unit."""
    for name, job_config in sorted(jobs.items()):
        try:
            done = subprocess.run(
                ["systemd-analyze", "calendar", job_config.schedule],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except FileNotFoundError:
            raise Failure("systemd-analyze is not installed; cannot check the jobs' schedules") from None
        if done.returncode != 0:
            raise Failure(f"jobs.{name}.schedule: {job_config.schedule!r} is not a systemd OnCalendar expression")


def sync_jobs(config: Config, env: Mapping[str, str], app: AppConfig | None = None) -> None:
    """Make the jobs' units match the config: write changed ones, remove stale ones, reload."""
    app = app if app is not None else read_app_config(config)
    jobs = dict(app.jobs) if app is not None and config.runs_jobs else {}
    check_schedules(jobs)
    wanted: dict[str, str] = {}
    for name, job_config in jobs.items():
        wanted.update(job_units(name, job_config))
    existing = {
        entry
        for entry in (os.listdir(config.unit_dir) if os.path.isdir(config.unit_dir) else [])
        if entry.startswith(JOB_UNIT_PREFIX) and entry.endswith((".service", ".timer"))
    }
    stale = sorted(existing - set(wanted))
    changed = sorted(n for n, text in wanted.items() if _read_text(os.path.join(config.unit_dir, n)) != text.strip())
    for unit in (n for n in stale if n.endswith(".timer")):
        _checked(env, "LEANSTACK_JOB_DISABLE", unit=unit)
    for unit in stale:
        os.unlink(os.path.join(config.unit_dir, unit))
    os.makedirs(config.unit_dir, exist_ok=True)
    for unit in changed:
        _write_atomically(os.path.join(config.unit_dir, unit), wanted[unit])
    if stale or changed:
        _checked(env, "LEANSTACK_SYSTEMD_RELOAD")
    for unit in sorted(n for n in changed if n.endswith(".timer")):
        _checked(env, "LEANSTACK_JOB_ENABLE", unit=unit)
    _say(
        f"jobs: {', '.join(sorted(jobs)) or 'none'}"
        + ("" if config.runs_jobs else " (this host runs no jobs)")
        + f"; {len(changed)} unit(s) written, {len(stale)} removed"
    )


def _checked(env: Mapping[str, str], name: str, **values: object) -> None:
    done = _run(env, name, 120, **values)
    if done.returncode != 0:
        raise Failure(f"{' '.join(_command(env, name, **values))} failed: {_last_line(done)}")


# ---------------------------------------------------------------------------------------
# The release history (shared with leanstack/deploy.py, which writes it)


def serving_tags(history: Any) -> list[str]:
    """The tags that served in turn, by the recorded history; the last one serves now.

    A successful deploy puts its tag on top (unless it is already there); a successful
    rollback takes the top one off, so rolling back twice goes two releases back rather
    than returning to the release it rolled back from. Failed and unfinished entries
    changed nothing on the host and are skipped.
    """
    serving: list[str] = []
    for entry in history if isinstance(history, list) else []:
        if not isinstance(entry, dict) or entry.get("result") != "succeeded":
            continue
        tag = entry.get("tag")
        if not isinstance(tag, str) or not TAG.fullmatch(tag):
            continue
        if entry.get("action") == "rollback" and serving:
            serving.pop()
        if not serving or serving[-1] != tag:
            serving.append(tag)
    return serving


def boot(config: Config, env: Mapping[str, str]) -> None:
    if read_current(config) is not None:
        _say("a release is deployed already; systemd starts it")
        return
    if not config.releases_parameter:
        _say("no release history configured; waiting for the first deploy")
        return
    try:
        text = _aws(
            config.region,
            ["ssm", "get-parameter", "--name", config.releases_parameter, "--query", "Parameter.Value"],
            config.releases_parameter,
        )
    except Failure as failure:
        if "ParameterNotFound" in str(failure):
            _say("no release recorded yet; waiting for the first deploy")
            return
        raise
    try:
        tags = serving_tags(json.loads(text))
    except ValueError:
        raise Failure(f"{config.releases_parameter} is not a JSON list of releases") from None
    if not tags:
        _say("no successful release recorded yet; waiting for the first deploy")
        return
    # The release command ran when this release was first deployed.
    deploy(config, tags[-1], env, run_release_command=False)


USAGE = (
    f"usage: {PROGRAM} deploy TAG [--skip-release-command] | release-command TAG | restart | "
    "reload-config [--if-changed] | status | boot | run [--tty | --interactive] [--] CMD... | "
    "job NAME | sync-jobs | serve PORT"
)


def _run_arguments(rest: Sequence[str]) -> tuple[str, list[str]]:
    """`run`'s mode (plain, --tty, --interactive) and its command."""
    mode = "plain"
    index = 0
    while index < len(rest) and rest[index] in ("--tty", "--interactive"):
        mode = rest[index][2:]
        index += 1
    command = list(rest[index:])
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise Failure(f"run: no command given; usage: {PROGRAM} run [--tty | --interactive] [--] CMD...", EXIT_USAGE)
    return mode, command


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    environment = dict(os.environ if env is None else env)
    arity = {"deploy": 1, "release-command": 1, "job": 1, "serve": 1}
    try:
        if not arguments:
            raise Failure(USAGE, EXIT_USAGE)
        command, rest = arguments[0], arguments[1:]
        flags = {
            "deploy": {"--skip-release-command"},
            "reload-config": {"--if-changed"},
        }.get(command, set())
        given = {a for a in rest if a in flags}
        positional = [a for a in rest if a not in flags]
        if command == "run":
            mode, one_off = _run_arguments(rest)
        elif command not in (*arity, "restart", "reload-config", "status", "boot", "sync-jobs") or len(
            positional
        ) != arity.get(command, 0):
            raise Failure(USAGE, EXIT_USAGE)
        if command == "run" and mode == "interactive":
            # Needs nothing from the host: the CLI runs this in the session it opens.
            print(interactive_command(one_off))
            return 0
        config = load_config(environment)
        if command == "deploy":
            deploy(config, positional[0], environment, run_release_command="--skip-release-command" not in given)
        elif command == "release-command":
            run_release_command_only(config, positional[0], environment)
        elif command == "restart":
            restart(config, environment)
        elif command == "reload-config":
            reload_config(config, environment, if_changed="--if-changed" in given)
        elif command == "boot":
            boot(config, environment)
        elif command == "serve":
            serve(config, positional[0], environment)
        elif command == "run":
            return run_one_off(config, one_off, environment, tty=mode == "tty")
        elif command == "job":
            return job(config, positional[0], environment)
        elif command == "sync-jobs":
            sync_jobs(config, environment)
        else:
            current = read_current(config)
            if current is None:
                print("nothing deployed")
            else:
                print(f"serving {current['image']} on port {current['port']} since {current.get('since')}")
        return 0
    except Failure as failure:
        print(f"{PROGRAM}: {failure}", file=sys.stderr, flush=True)
        return failure.code
    except OSError as error:
        print(f"{PROGRAM}: {error.filename or ''}: {error.strerror}", file=sys.stderr, flush=True)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
