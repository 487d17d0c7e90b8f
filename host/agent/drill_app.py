"""The drill's optional app start (backup.drillStartsApp): the serving release's image run on
an isolated network against the scratch database, which must answer its health path."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
)

if TYPE_CHECKING:
    pass

from . import contract
from .aws import AWS_ERRORS, aws_session, client_config, describe_aws_error
from .backup_settings import Connection, Settings
from .common import Failure, command_from, env_value, http_status
from .dumps import shown
from .local_server import LOCAL_PORT, LocalServer
from .postgres import StderrTail

# ---------------------------------------------------------------------------------------
# The app: its config (written by leanstack-app's installer), health, and the drill's start

# A private, internal Docker network: the drill's app container reaches nothing but the
# drill's database socket (mounted), and the host reaches it at this fixed address.
DRILL_NETWORK = "leanstack-drill"
DRILL_NETWORK_SUBNET = "10.255.255.0/29"
DRILL_APP_ADDRESS = "10.255.255.2"


@dataclass(frozen=True)
class App:
    image: str
    serving_image: Optional[str]
    serving_port: Optional[int]
    container_port: int
    health_path: str
    health_timeout_seconds: float
    env_file: str
    # Where leanstack-app reads the app's config in SSM (empty: the env file holds it).
    parameters_path: str = ""
    region: str = ""


def read_app(env: Mapping[str, str]) -> Optional[App]:
    """The app's config and its serving release (state_dir/current.json), or None when the
    host runs no app."""
    path = env.get("LEANSTACK_APP_CONFIG", "").strip() or contract.APP_CONFIG_PATH
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise Failure(f"cannot read the app config {path}: {error}") from None

    def field(key: str, kind: type, default: Any = None) -> Any:
        value = raw.get(key, default) if isinstance(raw, dict) else None
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise Failure(f"the app config {path}: {key} is {shown(value)}, not a {kind.__name__}")
        return value

    serving_image, serving_port = None, None
    current_path = os.path.join(str(field("state_dir", str)), "current.json")
    try:
        with open(current_path, encoding="utf-8") as handle:
            current = json.load(handle)
        serving_image, serving_port = str(current["image"]), int(current["port"])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise Failure(f"cannot read the serving release from {current_path}: {error}") from None
    return App(
        image=field("image", str),
        serving_image=serving_image,
        serving_port=serving_port,
        container_port=field("container_port", int),
        health_path=field("health_path", str),
        health_timeout_seconds=float(field("health_timeout_seconds", float, 60.0)),
        env_file=field("env_file", str, ""),
        parameters_path=field("parameters_path", str, ""),
        region=field("region", str, ""),
    )


def app_plain_env(app: App, settings: Settings) -> Dict[str, str]:
    """The app's plain values, read as leanstack-app reads them: `<path>/config`'s "env", then
    `<path>/env/<NAME>` (set with `python -m leanstack config set`), which wins. Never the
    `<path>/secret/` values or the config's secret references: a drill copy must not act with
    production's keys."""
    if not app.parameters_path:
        return {}
    path = app.parameters_path.rstrip("/")
    client = aws_session().client("ssm", region_name=app.region or settings.region, config=client_config())
    found: Dict[str, str] = {}
    try:
        for page in client.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True):
            for parameter in page.get("Parameters", []):
                found[parameter["Name"]] = parameter.get("Value", "")
    except AWS_ERRORS as error:
        raise Failure(f"cannot read the app's config under {path}: {describe_aws_error(error)}") from None
    values: Dict[str, str] = {}
    raw = found.get(path + "/config")
    if raw is not None:
        try:
            config = json.loads(raw)
        except ValueError:
            raise Failure(f"the app's config {path}/config is not JSON") from None
        env = config.get("env", {}) if isinstance(config, dict) else None
        if not isinstance(env, dict):
            raise Failure(f"the app's config {path}/config: env is not a mapping")
        values.update({str(name): str(value) for name, value in env.items()})
    prefix = path + "/env/"
    values.update({name[len(prefix) :]: value for name, value in found.items() if name.startswith(prefix)})
    # They reach the docker CLI's environment (by name), as leanstack-app's do: the same refusal.
    for name in sorted(values):
        reason = contract.reserved_env_reason(name)
        if reason:
            raise Failure(
                f"the app's config under {path}: {name!r} is refused: {reason}; the drill never passes it to docker"
            )
    return values


def wait_for_200(url: str, timeout: float, still_running: Callable[[], bool] = lambda: True) -> Optional[str]:
    """None once `url` answers 200 within `timeout` seconds; else the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        answer = http_status(url, min(5.0, timeout))
        if answer == "200":
            return None
        if time.monotonic() >= deadline:
            return answer
        if not still_running():
            return f"{answer}, and the app exited"
        time.sleep(0.2)


def docker_drill_argv(app: App, image: str, name: str, socket_dir: str, names: Sequence[str] = ()) -> List[str]:
    argv = [
        "docker",
        "run",
        "--rm",
        "--name",
        name,
        "--pull",
        "never",
        "--init",
        "--network",
        DRILL_NETWORK,
        "--ip",
        DRILL_APP_ADDRESS,
        "--log-driver",
        "none",
        "--volume",
        f"{socket_dir}:{socket_dir}",
    ]
    # The docker CLI reads an env file itself, as the drill's user: the host's app.env is root's
    # (0600), and the plain values it once held come from the app's SSM config (app_plain_env).
    if app.env_file and os.access(app.env_file, os.R_OK):
        argv += ["--env-file", app.env_file]
    # Names only: docker takes the values from its environment, so the password is in no argv.
    for variable in (*names, "LEANSTACK_DRILL", "PORT", *contract.DATABASE_VARIABLES):
        argv += ["--env", variable]
    return [*argv, image]


def drill_start_app(
    settings: Settings, local: LocalServer, scratch: Connection, drill_id: str, report: Dict[str, Any]
) -> float:
    """Start the serving release against the scratch database and wait for its health path.

    One command (DRILL_APP_START, default `docker run` on the internal network
    leanstack-drill, created when missing): the app gets LEANSTACK_DRILL=1, PORT and the
    DATABASE_* variables of the scratch database (the socket directory of the drill's
    PostgreSQL, mounted), its plain values (its env file, or its SSM config), but none of its
    secrets: a drill copy must not act with production's keys. Returns the seconds until the health path answered 200.
    """
    app = read_app(settings.env)
    if app is None or app.serving_image is None:
        raise Failure("backup.drillStartsApp is on, but no release of the app is deployed on this host")
    report["app_image"] = app.serving_image
    plain = app_plain_env(app, settings)
    name = f"leanstack-drill-{drill_id}"
    address = env_value(settings.env, "DRILL_APP_ADDRESS", DRILL_APP_ADDRESS)
    argv = command_from(
        settings.env,
        "DRILL_APP_START",
        docker_drill_argv(app, app.serving_image, name, local.socket_dir, sorted(plain)),
        image=app.serving_image,
        name=name,
        port=str(app.container_port),
        socket_dir=local.socket_dir,
    )
    if "DRILL_APP_START" not in settings.env:
        subprocess.run(
            ["docker", "network", "create", "--internal", "--subnet", DRILL_NETWORK_SUBNET, DRILL_NETWORK],
            capture_output=True,
            check=False,
        )
    values = {
        **plain,
        "LEANSTACK_DRILL": "1",
        "PORT": str(app.container_port),
        "DATABASE_HOST": local.socket_dir,
        "DATABASE_PORT": str(LOCAL_PORT),
        "DATABASE_NAME": scratch.database,
        # The role the drill restored as: no superuser, so no COPY ... TO PROGRAM on the host.
        "DATABASE_USER": scratch.user,
        "DATABASE_PASSWORD": scratch.password or "",
    }
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **values},
            start_new_session=True,
        )
    except OSError as error:
        raise Failure(f"cannot start the app for the drill ({argv[0]}): {error.strerror}") from None
    assert process.stderr is not None
    app_errors = StderrTail(process.stderr)
    try:
        url = f"http://{address}:{app.container_port}{app.health_path}"
        problem = wait_for_200(url, app.health_timeout_seconds, lambda: process.poll() is None)
        if problem is not None:
            said = app_errors.last("")
            raise Failure(
                f"the app ({app.serving_image}) did not answer 200 on {app.health_path} within "
                f"{app.health_timeout_seconds:g} s against the restored data: {problem}"
                + (f"; it said: {said}" if said else "")
            )
        return time.monotonic() - started
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if "DRILL_APP_START" not in settings.env:
            subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False)
