"""Fixtures for the backup tools: a real PostgreSQL and moto's S3, Secrets Manager and
CloudWatch as an HTTP server, all on loopback, started and stopped by the tests."""

from __future__ import annotations

import itertools
import logging
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from mypy_boto3_s3 import S3Client
from mypy_boto3_s3.literals import BucketLocationConstraintType

from support.agent import agent_script
from support.servers import SUPERUSER, SUPERUSER_PASSWORD, PostgresServer
from support.system import require_program

TOOL = agent_script("leanstack-backup")
HOST_REGION = "eu-west-1"
BUCKET_REGION: BucketLocationConstraintType = "eu-central-1"
APP_USER = "app"
APP_PASSWORD = "app-password-ÄÖ-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
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


@dataclass(frozen=True)
class Moto:
    endpoint: str
    port: int

    def session(self) -> boto3.session.Session:
        """Credentials passed explicitly: the tests leave this process's environment alone."""
        return boto3.session.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        )

    def client_s3(self) -> S3Client:
        return self.session().client("s3", region_name=BUCKET_REGION, endpoint_url=self.endpoint)


@pytest.fixture(scope="session")
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


def tool_command(command: str) -> list[str]:
    """How to run a tool; BACKUP_TOOL_PYTHON picks another interpreter (e.g. a 3.9 with boto3)."""
    python = os.environ.get("BACKUP_TOOL_PYTHON") or sys.executable
    return [python, str(TOOL), command]


def run_tool(command: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tool_command(command), env=env, capture_output=True, text=True, timeout=timeout, check=False)


def start_tool(command: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(tool_command(command), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


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
