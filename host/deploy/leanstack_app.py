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
    leanstack-app run PORT      what systemd's leanstack-app@PORT.service runs: read the
                                secrets, then exec `docker run` for the image recorded for
                                PORT, with the secrets in the environment only

Runs on Amazon Linux 2023's system Python (3.9) with the standard library only; AWS reads
go through the preinstalled `aws` CLI with the instance role. Configuration is the JSON
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
    LEANSTACK_DOCKER            the docker program `run` execs (default: docker)

Exit codes: 0 done; 1 the deploy failed and the version that was serving still serves;
2 bad input or configuration; 3 another deploy holds the lock. Every failure is exactly one
line on stderr, starting with "leanstack-app:".
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
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
    path_rule = "an absolute path of letters, digits and ._+@/-"
    return Config(
        stack=_field(raw, "stack", str),
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
    )


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
# run: the systemd unit's ExecStart


def container_environment(config: Config) -> dict[str, str]:
    """The secrets and database settings the container gets, read now (not cached)."""
    values: dict[str, str] = {"PORT": str(config.container_port)}
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
    return values


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
    if config.log_group:
        # To CloudWatch Logs (which outlives the host) with the instance role; docker run
        # in the foreground also streams them to the unit's journal.
        argv += [
            "--log-driver",
            "awslogs",
            "--log-opt",
            f"awslogs-region={config.region}",
            "--log-opt",
            f"awslogs-group={config.log_group}",
            "--log-opt",
            f"awslogs-stream=app-{port}-{image.rsplit(':', 1)[-1]}",
        ]
    else:
        # The unit's journal only (through the attached output): no json files to fill the disk.
        argv += ["--log-driver", "none"]
    if os.path.exists(config.env_file):
        argv += ["--env-file", config.env_file]
    # `-e NAME` without a value: docker takes the value from its own environment, so no
    # secret appears in argv (visible in ps) or in a file.
    for name in names:
        argv += ["--env", name]
    return [*argv, image]


def run(config: Config, port_argument: str, env: Mapping[str, str]) -> NoReturn:
    if not port_argument.isdigit() or int(port_argument) not in config.ports:
        raise Failure(f"run: port {port_argument!r} is not allowed: one of {list(config.ports)}", EXIT_USAGE)
    port = int(port_argument)
    try:
        with open(image_path(config, port), encoding="utf-8") as handle:
            image = handle.read().strip()
    except OSError:
        raise Failure(f"run: no image recorded for port {port}; deploy one with `{PROGRAM} deploy TAG`") from None
    values = container_environment(config)
    docker = env.get("LEANSTACK_DOCKER") or "docker"
    argv = docker_run_argv(config, port, image, sorted(values), docker)
    sys.stdout.flush()
    try:
        os.execvpe(docker, argv, {**env, **values})
    except OSError as error:
        raise Failure(f"run: cannot start {docker}: {error.strerror}") from None


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


def deploy(config: Config, tag: str, env: Mapping[str, str]) -> None:
    if not TAG.fullmatch(tag):
        raise Failure(f"tag {tag!r} is not allowed: letters, digits and _.- (at most 128)", EXIT_USAGE)
    with deploy_lock(config):
        _deploy_locked(config, tag, env)


def _deploy_locked(config: Config, tag: str, env: Mapping[str, str]) -> None:
    image = f"{config.image}:{tag}"
    os.makedirs(config.state_dir, exist_ok=True)
    current = read_current(config)
    old_port = current["port"] if current else None
    new_port = config.ports[1] if old_port == config.ports[0] else config.ports[0]
    _say(f"deploying {image} on port {new_port} (serving now: {current['image'] if current else 'nothing'})")
    _pull(config, env, image)

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
    state = {"port": new_port, "image": image, "since": _now(), "previous": current["image"] if current else None}
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
        _deploy_locked(config, image[len(prefix) :], env)


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
    deploy(config, tags[-1], env)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    environment = dict(os.environ if env is None else env)
    usage = f"usage: {PROGRAM} deploy TAG | restart | status | boot | run PORT"
    try:
        if not arguments or arguments[0] not in ("deploy", "restart", "status", "boot", "run"):
            raise Failure(usage, EXIT_USAGE)
        command, rest = arguments[0], arguments[1:]
        if len(rest) != (1 if command in ("deploy", "run") else 0):
            raise Failure(usage, EXIT_USAGE)
        config = load_config(environment)
        if command == "deploy":
            deploy(config, rest[0], environment)
        elif command == "restart":
            restart(config, environment)
        elif command == "boot":
            boot(config, environment)
        elif command == "run":
            run(config, rest[0], environment)
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
