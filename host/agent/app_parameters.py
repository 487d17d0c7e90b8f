"""The app's config in SSM Parameter Store under `parameters_path` (the layout is in
app_cli's docstring): read, checked and parsed into an `AppConfig` (env, secrets, release
command, jobs, cache)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import contract
from .app_config import ENV_NAME, HOSTNAME, SECRET_ARN, SSM_NAME, Config, ReservedName, _port
from .app_runtime import boto3_client, publish_metric
from .common import Failure, one_line, read_parameters

# ---------------------------------------------------------------------------------------
# The app's config in SSM Parameter Store (the contract is in the module docstring)

APP_CONFIG_KEYS = ("env", "secrets", "release_command", "jobs", "cache")
JOB_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
# One line, no control characters: what a unit file's value may hold.
ONE_LINE = re.compile(r"[^\x00-\x1f\x7f]{1,256}")


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
    """A command as Docker's CMD takes it: a list is exec form, a string shell form (/bin/sh -c)."""
    if isinstance(value, str) and value.strip() and "\x00" not in value:
        return contract.command_argv(value)
    if not isinstance(value, list) or not value or not all(isinstance(a, str) and a for a in value):
        raise Failure(
            f"{key}: {value!r} is not allowed: a non-empty list of strings (exec form) or a string (shell form)"
        )
    return contract.command_argv(value)


def _secret_source(value: Any, key: str) -> str:
    if not isinstance(value, str) or not (SSM_NAME.fullmatch(value) or SECRET_ARN.fullmatch(value)):
        raise Failure(f"{key}: {value!r} is not allowed: an SSM parameter name (/a/b) or a Secrets Manager ARN")
    return value


def _name(name: str, key: str) -> str:
    if not ENV_NAME.fullmatch(name):
        raise Failure(f"{key}: {name!r} is not allowed: a variable name of letters, digits and _")
    if contract.reserved_env_reason(name):
        raise ReservedName(key, name)
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
            _name(name, key)
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
                target[_name(name[len(prefix) :], name)] = value
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


def read_app_parameters(config: Config) -> tuple[dict[str, str], dict[str, int]]:
    """Every parameter under the app's path, decrypted, all pages: (values, versions)."""
    path = config.parameters_path
    try:
        found = read_parameters(boto3_client("ssm", config.region), path)
    except Failure:
        raise
    except Exception as error:  # botocore's errors, whichever: one line
        raise Failure(f"cannot read the app's config under {path}: {one_line(str(error))}") from None
    return {p["name"]: p["value"] for p in found}, {p["name"]: p["version"] for p in found}


def read_app_config(config: Config) -> AppConfig | None:
    if not config.parameters_path:
        return None
    values, versions = read_app_parameters(config)
    try:
        return parse_app_config(values, versions, config.parameters_path)
    except ReservedName as refused:
        # The journal has the one line; the metric lets an alarm see it (the app keeps the
        # version that serves: nothing is started with the config that carries the name).
        publish_metric(config, "ReservedNameRefused", 1.0)
        raise refused from None
