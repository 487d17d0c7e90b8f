"""Fixtures of the host tests: a real PostgreSQL, moto's S3, Secrets Manager, CloudWatch and SSM
as an HTTP server, Debian's nginx, and the test hosts built on them, all on loopback, started and
stopped by the tests. What the tests share besides fixtures: helpers.py and app_host.py."""

from __future__ import annotations

import itertools
import json
import logging
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from leanstack.host.backup.install import render_env_file
from leanstack.host.params import BackupSettings, HostParams
from leanstack.host.render import render_maintenance_tool
from support.nginx_harness import Pki, RunningNginx, loopback_paths, make_pki
from support.ports import free_port
from support.servers import SUPERUSER, SUPERUSER_PASSWORD, PostgresServer
from support.system import require_program
from tests.conftest import starts_servers
from tests.host.app_host import (
    API_KEY_PARAMETER,
    CONTAINER_PORT,
    DATABASE_SECRET,
    FAKE_AWS,
    FAKE_DOCKER,
    FAKE_STOP,
    REGION,
    REPOSITORY,
    SCRIPT,
    STAND_IN_DOCKER,
    AppHost,
    Host,
    deploy_python,
)
from tests.host.helpers import (
    APP_PASSWORD,
    APP_USER,
    BUCKET_REGION,
    FAKE_CREDENTIALS,
    HOST,
    HOST_REGION,
    OBSERVER,
    OTHER_HOST,
    STAND_IN_APP,
    Moto,
    RestoreHost,
    nginx_program,
)

# Random bytes do not compress, so this table makes a dump of several 5 MiB parts.
BULK_ROWS = 80_000
BULK_SQL = f"""
CREATE TABLE bulk (id integer PRIMARY KEY, payload bytea NOT NULL);
INSERT INTO bulk
SELECT g, decode((SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 16) WHERE g > 0), 'hex')
FROM generate_series(1, {BULK_ROWS}) g;
"""

_database_numbers = itertools.count(1)
# moto's server logs every request through werkzeug; the tests judge by results instead.
logging.getLogger("werkzeug").setLevel(logging.ERROR)


def postgres_bin_dir() -> Path:
    initdb = require_program("initdb", "postgresql", ("/usr/lib/postgresql/*/bin",))
    # Debian keeps the server programs off PATH; a PATH entry may be a symlink into them.
    bin_dir = Path(initdb).resolve().parent
    for program in ("pg_ctl", "postgres", "psql", "pg_dump", "pg_restore"):
        if not (bin_dir / program).exists():
            pytest.skip(f"{program} is not next to {initdb}")
    return bin_dir


@pytest.fixture(scope="session")
@starts_servers
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer(postgres_bin_dir())
    try:
        server.start()
        server.psql(f"CREATE ROLE {APP_USER} LOGIN CREATEDB PASSWORD '{APP_PASSWORD}';")
        server.psql(f"CREATE DATABASE bulk_template OWNER {APP_USER};")
        server.psql(BULK_SQL, database="bulk_template", user=APP_USER)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
@starts_servers
def moto() -> Iterator[Moto]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield Moto(endpoint=f"http://{host}:{port}", port=port)
    finally:
        server.stop()


@pytest.fixture()
def bucket(moto: Moto) -> str:
    """An Object Lock bucket with a default COMPLIANCE retention, as in production."""
    name = f"backups-{uuid.uuid4().hex[:12]}"
    s3 = moto.client_s3()
    s3.create_bucket(
        Bucket=name,
        CreateBucketConfiguration={"LocationConstraint": BUCKET_REGION},
        ObjectLockEnabledForBucket=True,
    )
    s3.put_object_lock_configuration(
        Bucket=name,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}},
        },
    )
    return name


@pytest.fixture()
def app_database(postgres: PostgresServer) -> Iterator[str]:
    name = f"app_{next(_database_numbers)}_{uuid.uuid4().hex[:6]}"
    postgres.psql(f"CREATE DATABASE {name} OWNER {APP_USER};")
    yield name
    postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")


@pytest.fixture()
def bulk_database(postgres: PostgresServer) -> Iterator[str]:
    name = f"bulk_{next(_database_numbers)}_{uuid.uuid4().hex[:6]}"
    postgres.psql(f"CREATE DATABASE {name} TEMPLATE bulk_template OWNER {APP_USER};")
    yield name
    postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")


@pytest.fixture()
def stack_name() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture()
def tool_env(
    postgres: PostgresServer, moto: Moto, bucket: str, app_database: str, stack_name: str, tmp_path: Path
) -> dict[str, str]:
    """The tools' whole environment: nothing leaks in from the developer's shell."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_REGION": HOST_REGION,
        "BACKUP_BUCKET_REGION": BUCKET_REGION,
        "BACKUP_BUCKET": bucket,
        "BACKUP_PREFIX": "backups",
        "DATABASE_URL": postgres.url(APP_USER, APP_PASSWORD, app_database),
        "DRILL_DATABASE_URL": postgres.url(SUPERUSER, SUPERUSER_PASSWORD, "postgres"),
        "STACK": stack_name,
        "METRICS_NAMESPACE": "LeanstackTest",
        "PG_BIN_DIR": str(postgres.bin_dir),
        "BACKUP_PART_SIZE_MIB": "5",
        "LEANSTACK_LOCK_DIR": str(tmp_path / "lock"),
    }


def server_user() -> str:
    """Who the drill's local PostgreSQL runs as when the tests run as root."""
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    pytest.skip("neither a postgres nor a nobody account exists")


@pytest.fixture()
def local_env(tool_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The drill with its default target: a throw-away local PostgreSQL."""
    # Not under pytest's tmp_path: its 0700 parents would keep the server's user out.
    work_dir = Path(tempfile.mkdtemp(prefix="leanstack-drill-work-"))
    work_dir.chmod(0o755)
    env = {key: value for key, value in tool_env.items() if key != "DRILL_DATABASE_URL"}
    env.update(DRILL_WORK_DIR=str(work_dir), DRILL_SERVER_USER=server_user())
    try:
        yield env
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


# The host tests' machines, each started per test: `host` for the app tests (nginx in front of
# leanstack-app's processes), `app_host` that host with its config in moto's SSM, `restore_host`
# for the restore tests (nginx in front of a stand-in app on a real database).
@pytest.fixture(scope="session")
@starts_servers
def nginx() -> str:
    """Debian's nginx, with the modules the rendered config needs."""
    return nginx_program()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), (HOST, OTHER_HOST))


@pytest.fixture
@starts_servers
def host(nginx: str, pki: Pki, tmp_path: Path) -> Iterator[Host]:
    ports = (free_port(), free_port())
    params = HostParams(
        stack="test",
        region="eu-west-1",
        hostnames=(HOST,),
        app_port=ports[0],
        cloudflare_ipv4_cidrs=("127.0.0.1/32",),
    )
    # Two workers: a reload then really hands over between sets of processes.
    paths = loopback_paths(tmp_path / "nginx", free_port(), workers="2")
    running = RunningNginx(
        nginx,
        params,
        paths,
        tmp_path / "nginx",
        client_ca=pki.pull_ca,
        origin_cert=pki.origin_cert,
        origin_key=pki.origin_key,
    )
    fake = tmp_path / "fake"
    (fake / "secrets").mkdir(parents=True)
    bin_dir = fake / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(FAKE_AWS)
    (bin_dir / "aws").chmod(0o755)
    (fake / "docker.py").write_text(FAKE_DOCKER)
    (fake / "stop.py").write_text(FAKE_STOP)
    (fake / "secrets" / DATABASE_SECRET.rsplit("/", 1)[-1]).write_text(
        json.dumps({"username": "app", "password": "first-password"})
    )
    (fake / "secrets" / "api-key").write_text("api-key-1")
    env_file = tmp_path / "app.env"
    env_file.write_text("# plain values from app.env\nGREETING=hello world\n")
    config = {
        "stack": "test",
        "region": "eu-west-1",
        "image": REPOSITORY,
        "ports": list(ports),
        "container_port": CONTAINER_PORT,
        "health_path": "/healthz",
        "health_timeout_seconds": 8,
        "drain_timeout_seconds": 20,
        "env_file": str(env_file),
        "secrets": {"API_KEY": API_KEY_PARAMETER},
        "database": {
            "host": "db.internal",
            "port": 5432,
            "name": "app",
            "user": "app",
            "secret_arn": DATABASE_SECRET,
        },
        "releases_parameter": "/leanstack/test/releases",
        "log_group": "/leanstack/test/app",
        "upstream_path": paths.upstream_path,
        "nginx_pid_path": paths.pid_path,
        "state_dir": str(tmp_path / "state"),
        "lock_path": str(tmp_path / "run" / "leanstack-app.lock"),
    }
    (tmp_path / "app.json").write_text(json.dumps(config))
    python = sys.executable
    nginx_args = f"{nginx} -p {tmp_path / 'nginx'} -e {tmp_path / 'nginx' / 'startup-error.log'} -c {running.conf}"
    env = {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "LANG": "C.UTF-8",
        "FAKE_STATE": str(fake),
        "LEANSTACK_APP_CONFIG": str(tmp_path / "app.json"),
        "LEANSTACK_APP_PULL": f"sh -c 'echo \"$1\" >>{fake}/pulls.log' pull {{image}}",
        # The script's own `serve PORT`, detached like a service, with the stand-in docker.
        "LEANSTACK_APP_START": (
            f'sh -c \'setsid {deploy_python()} {SCRIPT} serve "$1" >>{fake}/app-"$1".out 2>&1 </dev/null & '
            f'echo $! >{fake}/app-"$1".pid\' start {{port}}'
        ),
        "LEANSTACK_APP_STOP": f"{python} {fake / 'stop.py'} {{port}}",
        "LEANSTACK_DOCKER": str(bin_dir / "docker"),
        "LEANSTACK_NGINX_CHECK": f"{nginx_args} -t -q",
        "LEANSTACK_NGINX_RELOAD": f"{nginx_args} -s reload",
    }
    # `docker` must be one program for execvpe: a two-line wrapper around the stand-in.
    (bin_dir / "docker").write_text(f'#!/bin/sh\nexec {python} {fake / "docker.py"} "$@"\n')
    (bin_dir / "docker").chmod(0o755)
    with running:
        test_host = Host(tmp_path, running, pki, ports, env)
        try:
            yield test_host
        finally:
            for port in ports:
                subprocess.run([python, str(fake / "stop.py"), str(port)], env=env, timeout=20, check=False)


@pytest.fixture
def app_host(host: Host, moto: Moto, tmp_path: Path) -> Iterator[AppHost]:
    stack = f"ops-{uuid.uuid4().hex[:8]}"
    host.configure(stack=stack, parameters_path=f"/leanstack/{stack}/app", unit_dir=str(tmp_path / "units"))
    docker = host.state / "bin" / "docker"
    docker.write_text(f'#!/bin/sh\nexec {sys.executable} {STAND_IN_DOCKER} "$@"\n')
    host.env.update(FAKE_CREDENTIALS, AWS_ENDPOINT_URL=moto.endpoint, AWS_REGION=REGION)
    yield AppHost(host, moto, stack)


@pytest.fixture()
@starts_servers
def restore_host(
    nginx: str,
    postgres: PostgresServer,
    moto: Moto,
    bucket: str,
    app_database: str,
    stack_name: str,
    tmp_path: Path,
) -> Iterator[RestoreHost]:
    secrets = moto.session().client("secretsmanager", region_name=HOST_REGION, endpoint_url=moto.endpoint)
    arn = secrets.create_secret(
        Name=f"rds!{app_database}", SecretString=json.dumps({"username": APP_USER, "password": APP_PASSWORD})
    )["ARN"]
    settings = BackupSettings(
        bucket=bucket,
        bucket_region=BUCKET_REGION,
        prefix="backups",
        database_name=app_database,
        database_host="127.0.0.1",
        database_port=postgres.port,
        database_user=APP_USER,
        database_secret_arn=arn,
        metrics_namespace="LeanstackTest",
        stack=stack_name,
    )
    env_file = tmp_path / "backup.env"
    # The rendered file; only TLS differs, which the test server does not offer.
    env_file.write_text(render_env_file(settings).replace('DATABASE_SSLMODE="require"', 'DATABASE_SSLMODE="disable"'))
    app_port = free_port()
    state = tmp_path / "app-state"
    state.mkdir()
    (state / "current.json").write_text(json.dumps({"port": app_port, "image": "registry.example/app:v42"}))
    app_config = tmp_path / "app.json"
    app_config.write_text(
        json.dumps(
            {
                "image": "registry.example/app",
                "container_port": 8080,
                "health_path": "/healthz",
                "health_timeout_seconds": 10,
                "state_dir": str(state),
            }
        )
    )
    app = subprocess.Popen(
        [sys.executable, str(STAND_IN_APP)],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PORT": str(app_port),
            "PG_BIN_DIR": str(postgres.bin_dir),
            "DATABASE_HOST": "127.0.0.1",
            "DATABASE_PORT": str(postgres.port),
            "DATABASE_NAME": app_database,
            "DATABASE_USER": APP_USER,
            "DATABASE_PASSWORD": APP_PASSWORD,
        },
        stderr=subprocess.PIPE,
    )
    directory = tmp_path / "nginx"
    paths = loopback_paths(directory, free_port(), tls=False)
    maintenance_tool = tmp_path / "leanstack-maintenance"
    maintenance_tool.write_text(render_maintenance_tool(paths=paths))
    observed = tmp_path / "observed.jsonl"
    observer = tmp_path / "observe.py"
    observer.write_text(OBSERVER)
    params = HostParams(stack="test", region=HOST_REGION, hostnames=(HOST,), app_port=app_port, cdn_proxied=False)
    try:
        assert app.stderr is not None and app.stderr.readline().strip() == b"listening"
        with RunningNginx(nginx, params, paths, directory):
            yield RestoreHost(
                env={
                    # What `sudo` leaves: PATH (the PostgreSQL programs are on it on the host)
                    # and the instance role (moto's credentials and endpoint here).
                    "PATH": f"{postgres.bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                    "HOME": str(tmp_path),
                    **FAKE_CREDENTIALS,
                    "AWS_ENDPOINT_URL": moto.endpoint,
                    "LEANSTACK_BACKUP_ENV": str(env_file),
                    "LEANSTACK_APP_CONFIG": str(app_config),
                    "LEANSTACK_LOCK_DIR": str(tmp_path / "lock"),
                    "LEANSTACK_MAINTENANCE": f"{sys.executable} {maintenance_tool}",
                    "LEANSTACK_APP_RESTART": f"{sys.executable} {observer} {paths.listen_port} {HOST} {observed}",
                },
                nginx_port=paths.listen_port,
                observed=observed,
                maintenance_page=Path(paths.maintenance_page),
            )
    finally:
        app.kill()
        app.wait()
        leftovers = postgres.psql(
            "SELECT datname FROM pg_database WHERE datname LIKE 'leanstack_restore_%' "
            f"OR datname LIKE '{app_database}_before_restore_%';"
        )
        for name in leftovers.split():
            postgres.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')
