"""The app's long-running processes (app.processes, the workers): one systemd unit per copy,
written from SSM by `sync-processes`, each running `leanstack-app process NAME N` in the
foreground, and their ProcessRestarts metric.

A copy is a container of the serving release's image with the app's environment (config,
secrets, database credentials, REDIS_URL), no port, named worker-<name>-<n>; its output goes
to the app's log group, stream worker-<name>-<n>-<tag>. systemd restarts it 5 s after it
exits with an error, forever (a crash loop stays visible: the ProcessRestarts metric and the
stack's worker-crash-loop alarm). A deploy restarts every copy once the new version serves,
so after the release command: `systemctl restart` runs ExecStop, `docker stop --time
<stop_timeout_seconds>` (SIGTERM to the process through docker's init, SIGKILL when the grace
runs out), then starts the new image. Processes run where the jobs run (the one host, or the
jobs host when scaled out). Python 3.9, standard library only (+ boto3 for the metric).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from typing import Any

from . import contract
from .app_config import EXIT_USAGE, Config
from .app_parameters import PROCESS_NAME, AppConfig, Process, read_app_config
from .app_runtime import _checked, _read_text, _run, _say, _write_atomically, boto3_client
from .common import Failure
from .containers import run_in_container, serving_image

PROCESS_UNIT_PREFIX = contract.PROCESS_UNIT_PREFIX
RESTART_SECONDS = 5
# Beyond the grace docker gives the process: time for docker itself to stop and remove the container.
STOP_MARGIN_SECONDS = 30


def process_units(name: str, process: Process) -> dict[str, str]:
    """One service per copy (file name -> text)."""
    units: dict[str, str] = {}
    for copy in range(1, process.count + 1):
        container = contract.process_container(name, copy)
        units[
            contract.process_unit(name, copy)
        ] = f"""# Written by `leanstack-app sync-processes` from the app's config in SSM; do not edit.
[Unit]
Description=leanstack process {name} {copy} of {process.count}
Requires=docker.service
After=docker.service network-online.target
Wants=network-online.target
# Restarted however often it fails: a crash loop shows in ProcessRestarts instead of a unit given up on.
StartLimitIntervalSec=0

[Service]
Type=simple
ExecStart={contract.APP_COMMAND.path} process {name} {copy}
# SIGTERM through docker's init, then SIGKILL after the grace; the container is removed either way.
ExecStop=/usr/bin/docker stop --time {process.stop_timeout_seconds} {container}
ExecStopPost=-{contract.APP_COMMAND.path} process-exited {name} {copy}
Restart=on-failure
RestartSec={RESTART_SECONDS}
TimeoutStopSec={process.stop_timeout_seconds + STOP_MARGIN_SECONDS}
# docker run returns 128+15 when docker stop ended the container with SIGTERM: a clean stop.
SuccessExitStatus=143
SyslogIdentifier={container}

[Install]
WantedBy=multi-user.target
"""
    return units


def _configured(config: Config, name: str, copy: str) -> tuple[AppConfig, Process, int]:
    if not PROCESS_NAME.fullmatch(name) or not copy.isdigit():
        raise Failure(
            f"process: {name!r} {copy!r} is not allowed: NAME (lower-case letters, digits, -) and N", EXIT_USAGE
        )
    app = read_app_config(config)
    if app is None or name not in app.processes:
        configured = ", ".join(sorted(app.processes)) if app is not None else ""
        raise Failure(f"process {name!r} is not configured; configured: {configured or 'none'}")
    process = app.processes[name]
    if not 1 <= int(copy) <= process.count:
        raise Failure(f"process {name}: copy {copy} is not configured (count {process.count})")
    return app, process, int(copy)


def process_argv(config: Config, name: str, copy: int, process: Process) -> tuple[str, tuple[str, ...]]:
    """The container's name and command for one copy (what `docker run` receives after the image)."""
    return contract.process_container(name, copy), process.command


def run_process(config: Config, name: str, copy: str, env: Mapping[str, str]) -> int:
    """`process NAME N`: copy N of the process in the foreground; its exit code is the container's."""
    app, process, number = _configured(config, name, copy)
    image = serving_image(config)
    container, command = process_argv(config, name, number, process)
    # A container of that name left by a killed host would make docker refuse the run.
    _run(env, "LEANSTACK_PROCESS_CLEAR", 60, container=container)
    _say(f"process {name} {number}: {shlex.join(command)} in {image}")
    code, _ = run_in_container(config, env, image, app, container, command)
    return code


def publish_restart(config: Config, name: str) -> None:
    """ProcessRestarts 1 by Stack and by Stack+Process; a failure here only warns."""
    stack = [{"Name": "Stack", "Value": config.stack}]
    data: list[Any] = [
        {"MetricName": contract.PROCESS_RESTARTS_METRIC, "Dimensions": dimensions, "Value": 1.0, "Unit": "Count"}
        for dimensions in (stack, [*stack, {"Name": "Process", "Value": name}])
    ]
    try:
        boto3_client("cloudwatch", config.region).put_metric_data(Namespace=config.metrics_namespace, MetricData=data)
    except Exception as error:  # the metric never blocks the restart
        _say(f"warning: publishing {contract.PROCESS_RESTARTS_METRIC} failed: {' '.join(str(error).split())}")


def process_exited(config: Config, name: str, copy: str, env: Mapping[str, str]) -> int:
    """`process-exited NAME N` (the unit's ExecStopPost): count a failed exit, remove the container."""
    if not PROCESS_NAME.fullmatch(name) or not copy.isdigit():
        raise Failure(f"process-exited: {name!r} {copy!r} is not allowed", EXIT_USAGE)
    # systemd sets SERVICE_RESULT for ExecStopPost: "success" after a clean stop, else why it ended.
    result = env.get("SERVICE_RESULT", "success")
    _run(env, "LEANSTACK_PROCESS_CLEAR", 60, container=contract.process_container(name, int(copy)))
    if result != "success":
        _say(f"process {name} {copy} ended ({result}, exit {env.get('EXIT_STATUS', '?')}); systemd restarts it")
        publish_restart(config, name)
    return 0


def sync_processes(config: Config, env: Mapping[str, str], app: AppConfig | None = None, restart: bool = False) -> None:
    """Make the processes' units match the config; `restart`: every copy restarts (a deploy's new image)."""
    app = app if app is not None else read_app_config(config)
    processes = dict(app.processes) if app is not None and config.runs_jobs else {}
    wanted: dict[str, str] = {}
    for name, process in sorted(processes.items()):
        wanted.update(process_units(name, process))
    existing = {
        entry
        for entry in (os.listdir(config.unit_dir) if os.path.isdir(config.unit_dir) else [])
        if entry.startswith(PROCESS_UNIT_PREFIX) and entry.endswith(".service")
    }
    stale = sorted(existing - set(wanted))
    changed = sorted(n for n, text in wanted.items() if _read_text(os.path.join(config.unit_dir, n)) != text.strip())
    for unit in stale:
        # Stopped with its grace (ExecStop) before its file goes.
        _checked(env, "LEANSTACK_PROCESS_DISABLE", unit=unit)
        os.unlink(os.path.join(config.unit_dir, unit))
    os.makedirs(config.unit_dir, exist_ok=True)
    for unit in changed:
        _write_atomically(os.path.join(config.unit_dir, unit), wanted[unit])
    if stale or changed:
        _checked(env, "LEANSTACK_SYSTEMD_RELOAD")
    for unit in changed:
        _checked(env, "LEANSTACK_PROCESS_ENABLE", unit=unit)
    restarted = sorted(wanted) if restart else changed
    for unit in restarted:
        _checked(env, "LEANSTACK_PROCESS_RESTART", unit=unit)
    _say(
        f"processes: {', '.join(f'{n} x{p.count}' for n, p in sorted(processes.items())) or 'none'}"
        + ("" if config.runs_jobs else " (this host runs no processes)")
        + f"; {len(changed)} unit(s) written, {len(stale)} removed, {len(restarted)} restarted"
    )
