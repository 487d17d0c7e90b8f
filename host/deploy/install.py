"""The host files that run the app, for cloud-init to write.

`app_host_files(settings)` returns every file: the `leanstack-app` tool, its config
(/etc/leanstack/app.json, no secrets), the app's plain environment (/etc/leanstack/app.env),
the templated systemd unit `leanstack-app@<port>.service`, the boot unit that brings back
the recorded release on a new host, the config timer (`leanstack-app reload-config
--if-changed` every two minutes: a blue/green restart when the app's config in SSM changed,
then the jobs' units), and Docker's credential-helper config for ECR. The jobs' own units
are not here: `leanstack-app sync-jobs` writes them from SSM, so a job change never touches
the user data (never replaces the host).
cloud-init installs `APP_PACKAGES` and enables `APP_UNITS` (in that order: Docker first).
nginx's included upstream file is written by `host.render.host_files` with the nginx config.

The tool's code is the agent's (host/agent), which travels through the host-files bucket
(`leanstack.host.boot`); here is its entry script (`APP_TOOL_PATH`), and the units wait for
`leanstack-host-files.service`.

What the host role needs (see `leanstack-app`'s docstring for the steps):
- ecr:GetAuthorizationToken (resource "*"), and ecr:BatchGetImage,
  ecr:GetDownloadUrlForLayer, ecr:BatchCheckLayerAvailability on the app repository;
- logs:CreateLogStream and logs:PutLogEvents on `log_group` (Docker's awslogs driver);
- ssm:GetParameter on each `secrets` parameter and on `releases_parameter`, and
  ssm:GetParametersByPath on `parameters_path` (all under /leanstack/<stack>/, which the role
  already reads), kms:Decrypt for SecureStrings under a customer key;
- cloudwatch:PutMetricData in the stack's namespace (the jobs' JobSuccess/JobFailure; granted);
- secretsmanager:GetSecretValue on the database secret (already granted for the backups),
  on each `secrets` ARN and on `registry_secret_arn`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from leanstack.host.agent import contract
from leanstack.host.agent.app_config import ENV_NAME, parse_config
from leanstack.host.agent.common import Failure
from leanstack.host.credentials.install import TOKEN_PATH, container_environment
from leanstack.host.params import HostFile
from leanstack.host.shipping import entry_file

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"

APP_TOOL_PATH = contract.APP_COMMAND.path
APP_CONFIG_PATH = contract.APP_CONFIG_PATH
APP_ENV_PATH = contract.APP_ENV_PATH
APP_STATE_DIR = contract.APP_STATE_DIR
APP_LOCK_PATH = contract.APP_LOCK_PATH
UNIT_DIR = contract.UNIT_DIR
APP_UNIT_TEMPLATE = contract.APP_UNIT_TEMPLATE
BOOT_UNIT = contract.APP_BOOT_SERVICE
DOCKER_CONFIG_PATH = "/root/.docker/config.json"

# Amazon Linux 2023 package names; not verifiable here (no AL2023 repository reachable
# from this machine). amazon-ecr-credential-helper lets Docker pull from ECR with the
# instance role, so no registry password is stored or refreshed on the host.
# python3-boto3: leanstack-app reads the app's config from SSM and publishes the jobs' metrics with it.
APP_PACKAGES: tuple[str, ...] = ("docker", "amazon-ecr-credential-helper", "python3-boto3")
CONFIG_UNIT = contract.APP_CONFIG_SERVICE
CONFIG_TIMER = contract.APP_CONFIG_TIMER
APP_UNITS: tuple[str, ...] = ("docker.service", BOOT_UNIT, CONFIG_TIMER)

_ECR_REGISTRY = re.compile(r"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class AppDatabase:
    """Where the app's database is; the password is read from `secret_arn` at each start."""

    host: str
    port: int
    name: str
    user: str
    secret_arn: str
    # contract.database_parameter: set, host, port and secret_arn are read from it at each
    # container start and are not written to the host (a recovery changes them).
    parameter: str = ""


@dataclass(frozen=True)
class AppSettings:
    """What the host needs to run the app: stack config `app.*` plus the stack's resources."""

    stack: str
    region: str
    # The image repository without a tag, e.g. <account>.dkr.ecr.<region>.amazonaws.com/<name>.
    image: str
    # app.port: the app listens here inside its container; the host publishes it on
    # 127.0.0.1:port and 127.0.0.1:port+1, one per version during a deploy.
    port: int
    health_path: str = "/healthz"
    # app.env: plain values, written to a root-only file.
    env: Mapping[str, str] = field(default_factory=dict)
    # app.secrets: variable name -> SSM parameter name or Secrets Manager ARN, read at start.
    secrets: Mapping[str, str] = field(default_factory=dict)
    database: AppDatabase | None = None
    # Pull credentials ({"username", "password"}) for an image outside ECR.
    registry_secret_arn: str = ""
    health_timeout_seconds: int = 60
    # The release history `python -m leanstack deploy` keeps; a new host deploys its newest
    # serving tag at boot.
    releases_parameter: str = ""
    # CloudWatch Logs group for the app's output (created by the stack); empty: journald only.
    log_group: str = ""
    # Where the app's config lives in SSM, normally /leanstack/<stack>/app (the contract is in
    # leanstack-app's docstring); empty: app.env and app.secrets travel in the host's files.
    parameters_path: str = ""
    # Whether this host runs app.jobs: the one host, or the jobs host when scaled out.
    runs_jobs: bool = True
    # The stack's CloudWatch namespace (JobSuccess, JobFailure); empty: Leanstack/<stack>.
    metrics_namespace: str = ""
    # The app's own AWS role (with file storage), served by the host's credentials endpoint
    # (host/credentials), and the stack's values the app is given with it (UPLOADS_BUCKET...).
    app_role_arn: str = ""
    stack_values: Mapping[str, str] = field(default_factory=dict)


def app_ports(port: int) -> tuple[int, int]:
    """The two host ports a deploy alternates between."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65534:
        raise ValueError(f"app.port: {port!r} is not allowed: a port from 1 to 65534 (the next one is used too)")
    return port, port + 1


def render_app_config(
    settings: AppSettings,
    *,
    upstream_path: str = "/etc/nginx/leanstack-upstream.conf",
    nginx_pid_path: str = "/run/nginx.pid",
) -> str:
    """/etc/leanstack/app.json, checked by the same parser `leanstack-app` uses on the host."""
    releases = settings.releases_parameter or contract.releases_parameter(settings.stack)
    if settings.parameters_path and (settings.env or settings.secrets):
        # The point of the SSM path: a config change never touches the user data (the host).
        raise ValueError(
            "app: with parameters_path, app.env and app.secrets belong in the SSM config, not the host's files"
        )
    config = {
        "stack": settings.stack,
        "region": settings.region,
        "image": settings.image,
        "ports": list(app_ports(settings.port)),
        "container_port": settings.port,
        "health_path": settings.health_path,
        "health_timeout_seconds": settings.health_timeout_seconds,
        "drain_timeout_seconds": 90,
        "env_file": APP_ENV_PATH,
        "secrets": dict(sorted(settings.secrets.items())),
        "database": None
        if settings.database is None
        else {
            "parameter": settings.database.parameter,
            "name": settings.database.name,
            "user": settings.database.user,
        }
        if settings.database.parameter
        else {
            "host": settings.database.host,
            "port": settings.database.port,
            "name": settings.database.name,
            "user": settings.database.user,
            "secret_arn": settings.database.secret_arn,
        },
        "registry_secret_arn": settings.registry_secret_arn,
        "releases_parameter": releases,
        "log_group": settings.log_group,
        "upstream_path": upstream_path,
        "nginx_pid_path": nginx_pid_path,
        "state_dir": APP_STATE_DIR,
        "lock_path": APP_LOCK_PATH,
        "parameters_path": settings.parameters_path,
        "runs_jobs": settings.runs_jobs,
        "unit_dir": UNIT_DIR,
        "metrics_namespace": settings.metrics_namespace,
    }
    if settings.app_role_arn:
        config["identity"] = {
            "credentials_uri": container_environment()["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
            "token_file": TOKEN_PATH,
            "values": dict(sorted(settings.stack_values.items())),
        }
    try:
        parse_config(config)
    except Failure as failure:
        raise ValueError(str(failure).replace("config ", "app ", 1)) from None
    return json.dumps(config, indent=2) + "\n"


def render_env_file(settings: AppSettings) -> str:
    """The app's plain environment in `docker run --env-file` format (KEY=value, no quoting)."""
    lines = ["# app.env from the stack config; secrets are not here (read at container start)."]
    for name, value in sorted(settings.env.items()):
        if not ENV_NAME.fullmatch(name):
            raise ValueError(f"app.env: {name!r} is not allowed: a variable name of letters, digits and _")
        reason = contract.reserved_env_reason(name)
        if reason:
            raise ValueError(f"app.env: {name!r} is not allowed: {reason}")
        if name in settings.secrets:
            raise ValueError(f"app.env: {name!r} is not allowed: it is in app.secrets")
        if not isinstance(value, str) or _CONTROL.search(value):
            raise ValueError(f"app.env.{name}: the value must be one line of text without control characters")
        lines.append(f"{name}={value}")
    return "\n".join(lines) + "\n"


def render_docker_config(image: str) -> str | None:
    """Docker's config naming the ECR credential helper for the image's registry, if ECR."""
    registry = image.split("/", 1)[0]
    if not _ECR_REGISTRY.match(registry):
        return None
    return json.dumps({"credHelpers": {registry: "ecr-login"}}, indent=2) + "\n"


BOOT_UNIT_TEXT = f"""# Brings back the app on a new host: deploys the newest serving release recorded in SSM
# (nothing when the host already runs one, or none was ever deployed). Written by leanstack.
[Unit]
Description=leanstack: deploy the recorded release on a new host
Requires=docker.service
After=docker.service nginx.service network-online.target leanstack-host-files.service leanstack-credentials.service
Wants=network-online.target leanstack-host-files.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={APP_TOOL_PATH} boot
TimeoutStartSec=20min

[Install]
WantedBy=multi-user.target
"""


def app_tool() -> HostFile:
    """leanstack-app's entry script (its code, the agent's modules, travels through the host-files bucket)."""
    return entry_file(contract.APP_COMMAND)


CONFIG_UNIT_TEXT = f"""# Brings the app in line with its config in SSM: a blue/green restart when a parameter under
# the app's path changed since the serving container read it, then the jobs' units. Written
# by leanstack; started by leanstack-app-config.timer.
[Unit]
Description=leanstack: restart the app when its config in SSM changed; sync the jobs
After=docker.service nginx.service network-online.target leanstack-app-boot.service
Wants=network-online.target

[Service]
Type=oneshot
ExecStart={APP_TOOL_PATH} reload-config --if-changed
TimeoutStartSec=20min
"""

CONFIG_TIMER_TEXT = """# Every two minutes: a change made by `pulumi up` or the config CLI reaches the app within
# minutes with no one acting. Written by leanstack.
[Unit]
Description=leanstack: check the app's config in SSM for changes

[Timer]
OnBootSec=2min
OnUnitInactiveSec=2min
RandomizedDelaySec=20s

[Install]
WantedBy=timers.target
"""


def app_host_files(
    settings: AppSettings,
    *,
    upstream_path: str = "/etc/nginx/leanstack-upstream.conf",
    nginx_pid_path: str = "/run/nginx.pid",
) -> tuple[HostFile, ...]:
    """Every file the app needs on the host; `ValueError` names the first bad setting."""
    files = [
        app_tool(),
        HostFile(
            APP_CONFIG_PATH,
            render_app_config(settings, upstream_path=upstream_path, nginx_pid_path=nginx_pid_path),
        ),
        HostFile(APP_ENV_PATH, render_env_file(settings), permissions="0600"),
        HostFile(f"{UNIT_DIR}/{APP_UNIT_TEMPLATE}", (TEMPLATES / APP_UNIT_TEMPLATE).read_text(encoding="utf-8")),
        HostFile(f"{UNIT_DIR}/{BOOT_UNIT}", BOOT_UNIT_TEXT),
        HostFile(f"{UNIT_DIR}/{CONFIG_UNIT}", CONFIG_UNIT_TEXT),
        HostFile(f"{UNIT_DIR}/{CONFIG_TIMER}", CONFIG_TIMER_TEXT),
    ]
    docker_config = render_docker_config(settings.image)
    if docker_config is not None:
        files.append(HostFile(DOCKER_CONFIG_PATH, docker_config, permissions="0600"))
    return tuple(files)
