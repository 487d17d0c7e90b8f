"""leanstack-app's deploys: pull, release command, start the new version beside the old one,
health check, switch nginx's upstream, drain and stop the old one; restart, reload of the
config and the boot-time deploy of the recorded release."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from typing import Any

from .app_config import EXIT_BUSY, EXIT_USAGE, NEW_WORKERS_SECONDS, RESTART_WAIT_SECONDS, TAG, Config
from .app_parameters import read_app_config
from .app_runtime import (
    _aws,
    _last_line,
    _now,
    _read_text,
    _run,
    _say,
    _secret_json,
    _write_atomically,
    image_path,
    read_current,
)
from .common import Failure, http_status
from .containers import container_environment, release_command
from .jobs import sync_jobs


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


# ---------------------------------------------------------------------------------------
# deploy


def _health(url: str, timeout: float) -> str | None:
    """None when the app answered 2xx; otherwise what it did instead."""
    status = http_status(url, timeout)
    if not status.isdigit():
        return status
    return None if 200 <= int(status) < 300 else f"HTTP {status}"


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
    container_environment(config, image, app, f"app-{new_port}")
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
