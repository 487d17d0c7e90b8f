"""The app's scheduled jobs: their systemd units (written from SSM by `sync-jobs`), one run
under a lock, and their JobSuccess/JobFailure metrics."""

from __future__ import annotations

import errno
import fcntl
import os
import shlex
import subprocess
from collections.abc import Mapping
from typing import Any

from . import contract
from .app_config import EXIT_USAGE, Config
from .app_parameters import JOB_NAME, AppConfig, Job, read_app_config
from .app_runtime import _checked, _last_line, _now, _read_text, _run, _say, _write_atomically, boto3_client
from .common import Failure
from .containers import run_in_container, serving_image

# ---------------------------------------------------------------------------------------
# Scheduled jobs

JOB_UNIT_PREFIX = contract.JOB_UNIT_PREFIX
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


def _check_job_name(command: str, name: str) -> None:
    if not JOB_NAME.fullmatch(name):
        raise Failure(f"{command}: {name!r} is not allowed: lower-case letters, digits and - (at most 40)", EXIT_USAGE)


def job(config: Config, name: str, env: Mapping[str, str], from_timer: bool = False) -> int:
    """Run job `name` once; a run of it still going makes this one skip (exit 0).

    `from_timer` (the unit's own run): a job removed from the config while its timer fired
    (sync-jobs removes the timer right after the config changes) exits 0 and publishes nothing."""
    _check_job_name("job", name)
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
            app = read_app_config(config)
            if from_timer and (app is None or name not in app.jobs):
                _say(f"job {name} was removed from the app's config; nothing to run (sync-jobs removes its timer)")
                return 0
            code = _job_locked(config, name, env, app)
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


def _job_locked(config: Config, name: str, env: Mapping[str, str], app: AppConfig | None) -> int:
    if app is None or name not in app.jobs:
        raise Failure(f"job {name!r} is not configured; configured: {', '.join(sorted(app.jobs)) if app else 'none'}")
    image = serving_image(config)
    _say(f"job {name}: {shlex.join(app.jobs[name].command)} in {image}")
    code, _ = run_in_container(config, env, image, app, contract.job_container(name), app.jobs[name].command)
    return code


def job_exited(config: Config, name: str, env: Mapping[str, str]) -> int:
    """`job-exited NAME` (the unit's ExecStopPost): remove the job's container if a stopped run left
    it (a timeout ends the tool, not the container); silent when it is gone, as after every run."""
    _check_job_name("job-exited", name)
    container = contract.job_container(name)
    done = _run(env, "LEANSTACK_PROCESS_CLEAR", 60, container=container)
    if done.returncode == 0 and done.stdout.strip():
        _say(f"job {name}: removed its container {container}, left by a stopped run")
    elif done.returncode != 0 and "no such container" not in (done.stdout + done.stderr).lower():
        _say(f"warning: cannot remove the container {container}: {_last_line(done)}")
    return 0


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
# --from-timer: a run the timer started after the job left the config does nothing, successfully.
ExecStart={contract.APP_COMMAND.path} job {name} --from-timer
# A timeout ends the tool, not the container: remove it (quiet when it is gone).
ExecStopPost=-{contract.APP_COMMAND.path} job-exited {name}
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
