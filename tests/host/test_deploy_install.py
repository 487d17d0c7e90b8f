"""The app's host files: rendered, checked by the host tool's own parser, by systemd and by
cloud-init, and refused when a setting cannot be written safely."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from leanstack.host.agent.app_config import parse_config
from leanstack.host.agent.common import Failure
from leanstack.host.agent.containers import container_environment
from leanstack.host.agent.credentials import container_token
from leanstack.host.deploy.install import (
    APP_PACKAGES,
    APP_UNITS,
    AppDatabase,
    AppSettings,
    app_host_files,
    render_app_config,
    render_env_file,
)
from leanstack.host.params import HostParams
from leanstack.host.render import USER_DATA_LIMIT_BYTES, render_cloud_config, render_user_data
from leanstack.host.shipping import agent_modules
from support.system import require_program

ECR_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/leanstack-prod-app"
DB_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b-AbCdEf"


def _settings(**changes: object) -> AppSettings:
    base = AppSettings(
        stack="prod",
        region="eu-west-1",
        image=ECR_IMAGE,
        port=3000,
        env={"LOG_LEVEL": "info", "PUBLIC_URL": "https://example.com/a b"},
        secrets={"STRIPE_KEY": "/leanstack/prod/app/stripe-key", "SENTRY_DSN": DB_SECRET.replace("rds!db", "sentry")},
        database=AppDatabase("db.abc.eu-west-1.rds.amazonaws.com", 5432, "app", "app", DB_SECRET),
        log_group="/leanstack/prod/app",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _params() -> HostParams:
    return HostParams(
        stack="prod",
        region="eu-west-1",
        hostnames=("example.com",),
        app_port=3000,
        cloudflare_ipv4_cidrs=("173.245.48.0/20",),
        tls_parameter_prefix="/leanstack/prod/tls",
    )


def _files() -> dict[str, str]:
    return {f.path: f.content for f in app_host_files(_settings())}


def test_config_is_what_the_host_tool_reads() -> None:
    config = parse_config(json.loads(_files()["/etc/leanstack/app.json"]))
    assert config.image == ECR_IMAGE
    assert config.ports == (3000, 3001)
    assert config.container_port == 3000
    assert config.upstream_path == "/etc/nginx/leanstack-upstream.conf"
    assert config.releases_parameter == "/leanstack/prod/releases"
    assert config.log_group == "/leanstack/prod/app"
    assert config.database is not None and config.database.secret_arn == DB_SECRET
    assert dict(config.secrets) == dict(_settings().secrets)


def test_secrets_are_references_and_the_env_file_is_root_only() -> None:
    config = json.loads(_files()["/etc/leanstack/app.json"])
    # Names of parameters and secrets only: the values are read at each container start.
    assert set(config["database"]) == {"host", "port", "name", "user", "secret_arn"}
    assert config["secrets"]["STRIPE_KEY"] == "/leanstack/prod/app/stripe-key"
    modes = {f.path: (f.permissions, f.owner) for f in app_host_files(_settings())}
    assert modes["/etc/leanstack/app.env"] == ("0600", "root:root")
    assert modes["/usr/local/sbin/leanstack-app"] == ("0755", "root:root")


def test_env_file_is_docker_env_file_format() -> None:
    text = render_env_file(_settings())
    assert text.splitlines()[1:] == ["LOG_LEVEL=info", "PUBLIC_URL=https://example.com/a b"]


def test_ecr_gets_the_credential_helper_and_other_registries_do_not() -> None:
    docker = json.loads(_files()["/root/.docker/config.json"])
    assert docker == {"credHelpers": {"123456789012.dkr.ecr.eu-west-1.amazonaws.com": "ecr-login"}}
    other = {f.path for f in app_host_files(_settings(image="ghcr.io/acme/app"))}
    assert "/root/.docker/config.json" not in other


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"port": 65535}, "app.port"),
        ({"env": {"DATABASE_PASSWORD": "x"}}, "app.env: 'DATABASE_PASSWORD'"),
        ({"env": {"STRIPE_KEY": "x"}}, "app.env: 'STRIPE_KEY'"),
        ({"env": {"BAD-NAME": "x"}}, "app.env: 'BAD-NAME'"),
        ({"env": {"MULTI": "a\nb"}}, "app.env.MULTI"),
        ({"secrets": {"KEY": "stripe-key"}}, "app secrets.KEY"),
        ({"secrets": {"PORT": "/a/b"}}, "app secrets.PORT: 'PORT' is refused"),
        ({"image": "Registry/App:latest"}, "app image"),
        ({"health_path": "/h;x"}, "app health_path"),
        ({"registry_secret_arn": "secret"}, "app registry_secret_arn"),
        ({"releases_parameter": "releases"}, "app releases_parameter"),
        ({"log_group": "app logs"}, "app log_group"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace(".", r"\.")):
        app_host_files(_settings(**changes))


@pytest.mark.servers
def test_cloud_config_with_the_app_passes_cloud_init_schema(tmp_path: Path) -> None:
    document = render_cloud_config(
        _params(), extra_files=app_host_files(_settings()), packages=APP_PACKAGES, enable_units=APP_UNITS
    )
    parsed = yaml.safe_load(document)
    assert ["systemctl", "enable", "--now", "docker.service"] in parsed["runcmd"]
    # Docker first, then the boot unit that deploys the recorded release with it.
    assert parsed["runcmd"].index(["systemctl", "enable", "--now", "docker.service"]) < parsed["runcmd"].index(
        ["systemctl", "enable", "--now", "leanstack-app-boot.service"]
    )
    cloud_init = require_program("cloud-init", "cloud-init")
    path = tmp_path / "user-data.yaml"
    path.write_text(document, encoding="utf-8")
    checked = subprocess.run(
        [cloud_init, "schema", "--config-file", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_user_data_fits_when_the_agent_travels_through_the_host_files_bucket() -> None:
    files = app_host_files(_settings())
    user_data = render_user_data(_params(), extra_files=files, packages=APP_PACKAGES, enable_units=APP_UNITS)
    size = len(base64.b64decode(user_data))
    assert size <= USER_DATA_LIMIT_BYTES
    document = gzip.decompress(base64.b64decode(user_data)).decode()
    assert "leanstack-app@.service" in document and "from leanstack_agent.app_cli import main" in document
    # Inline, the agent's modules would not fit beside nginx's files: they are fetched at boot.
    with pytest.raises(ValueError, match="exceeds EC2's limit"):
        render_user_data(
            _params(), extra_files=[*files, *agent_modules()], packages=APP_PACKAGES, enable_units=APP_UNITS
        )
    print(f"\nuser data with the app's files (agent fetched): {size} bytes gzipped of {USER_DATA_LIMIT_BYTES}")


def _verify_units(tmp_path: Path, names: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    analyze = require_program("systemd-analyze", "systemd")
    units = tmp_path / "units"
    units.mkdir()
    for f in app_host_files(_settings()):
        if f.path.startswith("/etc/systemd/system/"):
            # systemd checks that each program exists; none of these is installed here.
            text = f.content
            for program in ("/usr/local/sbin/leanstack-app", "/usr/bin/docker"):
                text = text.replace(program, "/bin/true")
            (units / Path(f.path).name).write_text(text)
    # The units name docker.service and nginx.service; stand-ins keep verify about ours.
    for dependency in ("docker.service", "nginx.service"):
        (units / dependency).write_text("[Service]\nExecStart=/bin/true\n")
    return subprocess.run(
        [analyze, "verify", *(str(units / name) for name in names)],
        capture_output=True,
        text=True,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{units}:"},
        timeout=60,
        check=False,
    )


@pytest.mark.servers
def test_units_parse_with_systemd(tmp_path: Path) -> None:
    checked = _verify_units(
        tmp_path,
        (
            "leanstack-app@3001.service",
            "leanstack-app-boot.service",
            "leanstack-app-config.service",
            "leanstack-app-config.timer",
        ),
    )
    assert checked.returncode == 0, checked.stderr
    assert "leanstack-app" not in checked.stderr, checked.stderr


def test_render_app_config_checks_with_the_host_parser() -> None:
    with pytest.raises(ValueError, match=r"^app upstream_path"):
        render_app_config(_settings(), upstream_path="relative/path")


def test_with_the_config_in_ssm_no_app_value_is_in_the_host_files() -> None:
    settings = _settings(env={}, secrets={}, parameters_path="/leanstack/prod/app", runs_jobs=False)
    config = json.loads(render_app_config(settings))
    assert (config["parameters_path"], config["runs_jobs"], config["unit_dir"]) == (
        "/leanstack/prod/app",
        False,
        "/etc/systemd/system",
    )
    assert parse_config(config).parameters_path == "/leanstack/prod/app"
    env_file = next(f for f in app_host_files(settings) if f.path.endswith("app.env"))
    assert [line for line in env_file.content.splitlines() if not line.startswith("#")] == []
    with pytest.raises(ValueError, match=r"^app: with parameters_path, app.env and app.secrets belong in the SSM"):
        render_app_config(_settings(parameters_path="/leanstack/prod/app"))
    with pytest.raises(ValueError, match=r"^app parameters_path: 'leanstack/prod' is not an SSM path"):
        render_app_config(_settings(env={}, secrets={}, parameters_path="leanstack/prod"))
    timer = next(f for f in app_host_files(settings) if f.path.endswith("leanstack-app-config.timer"))
    assert "OnUnitInactiveSec=2min\n" in timer.content
    assert "leanstack-app-config.timer" in APP_UNITS


def test_with_the_apps_own_role_each_container_gets_the_endpoint_its_own_token_and_the_bucket(
    tmp_path: Path,
) -> None:
    role = "arn:aws:iam::123456789012:role/leanstack-prod-app"
    settings = _settings(
        app_role_arn=role, stack_values={"UPLOADS_BUCKET": "up-1", "UPLOADS_BUCKET_REGION": "eu-west-1"}
    )
    raw = json.loads(render_app_config(settings))
    assert raw["identity"]["token_file"] == "/var/lib/leanstack-credentials/token"
    token = tmp_path / "token"
    token.write_text("s3cr3t-token\n", encoding="ascii")
    config = replace(parse_config(raw), database=None, secrets={}, credentials_token_file=str(token))
    env = container_environment(config, ECR_IMAGE + ":v1", None, "app-8001")
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://169.254.170.2:51680/leanstack/credentials"
    # Issue 21 item 8: the container's own token, never the endpoint's secret every container shared.
    assert env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] == container_token("s3cr3t-token", "app-8001")
    job = container_environment(config, ECR_IMAGE + ":v1", None, "job-nightly")
    assert job["AWS_CONTAINER_AUTHORIZATION_TOKEN"] == container_token("s3cr3t-token", "job-nightly")
    assert "s3cr3t-token" not in (env["AWS_CONTAINER_AUTHORIZATION_TOKEN"], job["AWS_CONTAINER_AUTHORIZATION_TOKEN"])
    assert (env["UPLOADS_BUCKET"], env["UPLOADS_BUCKET_REGION"]) == ("up-1", "eu-west-1")
    token.unlink()
    with pytest.raises(Failure, match=r"^cannot read the credentials token .*leanstack-credentials"):
        container_environment(config, ECR_IMAGE + ":v1", None, "app-8001")
    # Without the app's role (storage off) no AWS variable is set.
    plain = replace(config, credentials_uri="", credentials_token_file="", stack_values={})
    assert not [k for k in container_environment(plain, ECR_IMAGE + ":v1", None, "app-8001") if k.startswith("AWS_")]
    bad = {**raw, "identity": {**raw["identity"], "credentials_uri": "http://10.0.0.1:80/x"}}
    with pytest.raises(Failure, match=r"^config identity.credentials_uri"):
        parse_config(bad)
