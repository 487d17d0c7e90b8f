"""The app's containers: their environment (by name, never argv), docker's argv for the
serving, one-off, release and job containers, and running them."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shlex
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, NoReturn

from . import contract
from .app_config import EXIT_USAGE, HOSTNAME, PROGRAM, SECRET_ARN, Config, Database, ReservedName, _matching, _port
from .app_parameters import AppConfig, read_app_config
from .app_runtime import _say, _secret_json, _write_atomically, image_path, read_current, read_secret
from .common import Failure, one_line
from .credentials import container_token

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


def database_location(region: str, database: Database) -> Database:
    """The database with its host, port and secret read now from its SSM parameter, if it has one."""
    if not database.parameter:
        return database
    try:
        found = json.loads(read_secret(region, database.parameter))
        return replace(
            database,
            host=_matching(found, "host", HOSTNAME, "a hostname"),
            port=_port(found.get("port"), "port"),
            secret_arn=_matching(found, "secret_arn", SECRET_ARN, "a Secrets Manager ARN"),
        )
    except (ValueError, AttributeError, Failure) as error:
        raise Failure(f"{database.parameter}: not the database's location ({one_line(str(error))})") from None


def container_environment(config: Config, image: str, app: AppConfig | None, container: str) -> dict[str, str]:
    """Everything the container named `container` gets in its environment, read now (never cached).

    Plain values travel the same way as secrets: docker reads each from its own
    environment (`--env NAME`), so nothing lands in a file or in argv.
    """
    values: dict[str, str] = {"LEANSTACK_RELEASE": image.rsplit(":", 1)[-1]}
    if config.credentials_uri:
        # The app's own role, short-lived and refreshed by the SDK from the host's endpoint. The
        # container's own token, derived from the endpoint's secret (read now, so a container
        # started after the endpoint's first start has it) and its name: never the secret.
        values.update(config.stack_values)
        values["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = config.credentials_uri
        values["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = container_token(
            _read_token(config.credentials_token_file), container
        )
    if config.database is not None:
        database = database_location(config.region, config.database)
        login = _secret_json(config.region, database.secret_arn, ("password",))
        values.update(
            DATABASE_HOST=database.host,
            DATABASE_PORT=str(database.port),
            DATABASE_NAME=database.name,
            DATABASE_USER=database.user,
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


def docker_environment(env: Mapping[str, str], values: Mapping[str, str]) -> dict[str, str]:
    """The docker CLI's own environment: the host's (`env`) plus the container's `values`, which
    docker passes on by name. Docker, the loader and the shell read some names themselves
    (DOCKER_HOST, LD_PRELOAD, PATH, ...): of the reserved names only those leanstack sets reach
    it; parse_app_config refuses the others first, and this is the last check before docker."""
    foreign = sorted(
        name for name in values if contract.reserved_env_reason(name) and name not in contract.LEANSTACK_SET_NAMES
    )
    if foreign:
        raise ReservedName("the container's environment", foreign[0])
    return {**env, **values}


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
    values = {**container_environment(config, image, app, f"app-{port}"), "PORT": str(config.container_port)}
    if app is not None:
        _write_atomically(os.path.join(config.state_dir, f"config-{port}"), app.version + "\n")
    docker = env.get("LEANSTACK_DOCKER") or "docker"
    argv = docker_run_argv(config, port, image, sorted(values), docker)
    sys.stdout.flush()
    try:
        os.execvpe(docker, argv, docker_environment(env, values))
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
    values = container_environment(config, image, app, name)
    docker = env.get("LEANSTACK_DOCKER") or "docker"
    argv = one_off_argv(config, image, sorted(values), docker, name, command, tty)
    sys.stdout.flush()
    child_env = docker_environment(env, values)
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
    return shlex.join(["sudo", contract.APP_COMMAND.path, "run", "--tty", "--", *command])


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
