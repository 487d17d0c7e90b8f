"""What the host tests share besides fixtures (those are in conftest.py): the backup tool and how
to run it, moto's endpoint, the regions and the app's database user, readers of what the tool left
in S3 and CloudWatch, the drill's stand-in app, the restore's test host, the site's hostnames and
the nginx program."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import boto3
from mypy_boto3_cloudwatch import CloudWatchClient
from mypy_boto3_s3 import S3Client
from mypy_boto3_s3.literals import BucketLocationConstraintType

from leanstack.host.params import BackupSettings, HostFile
from support.agent import agent_script
from support.servers import PostgresServer
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


def tool_command(command: str) -> list[str]:
    """How to run a tool; BACKUP_TOOL_PYTHON picks another interpreter (e.g. a 3.9 with boto3)."""
    python = os.environ.get("BACKUP_TOOL_PYTHON") or sys.executable
    return [python, str(TOOL), command]


def run_tool(command: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tool_command(command), env=env, capture_output=True, text=True, timeout=timeout, check=False)


def start_tool(command: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(tool_command(command), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


HOST = "app.leanstack.test"
OTHER_HOST = "www.leanstack.test"


def nginx_program() -> str:
    nginx = require_program("nginx", "nginx", extra_dirs=("/usr/sbin",))
    built = subprocess.run([nginx, "-V"], capture_output=True, text=True, check=True).stderr
    for needed in ("--with-http_ssl_module", "--with-http_realip_module"):
        assert needed in built, f"{nginx} lacks {needed}; install Debian's 'nginx' package"
    assert "--without-http_gzip_module" not in built
    return nginx


STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


def assert_one_line_failure(result: object, *fragments: str, status: int = 1) -> str:
    assert hasattr(result, "returncode") and hasattr(result, "stderr")
    stderr: str = result.stderr
    assert result.returncode == status, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {stderr!r}"
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def object_keys(s3: S3Client, bucket: str) -> list[str]:
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def cloudwatch(moto: Moto) -> CloudWatchClient:
    return moto.session().client("cloudwatch", region_name=HOST_REGION, endpoint_url=moto.endpoint)


def metric_maximum(moto: Moto, stack: str, name: str, namespace: str = "LeanstackTest") -> float | None:
    now = datetime.datetime.now(datetime.UTC)
    points = cloudwatch(moto).get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=[{"Name": "Stack", "Value": stack}],
        StartTime=now - datetime.timedelta(hours=1),
        EndTime=now + datetime.timedelta(hours=1),
        Period=3600,
        Statistics=["Maximum"],
    )["Datapoints"]
    return max((point["Maximum"] for point in points), default=None)


def metric_names(moto: Moto, stack: str) -> set[str]:
    listed = cloudwatch(moto).list_metrics(Namespace="LeanstackTest", Dimensions=[{"Name": "Stack", "Value": stack}])[
        "Metrics"
    ]
    return {metric["MetricName"] for metric in listed}


def scratch_databases(postgres: PostgresServer) -> list[str]:
    listed = postgres.psql("SELECT datname FROM pg_database WHERE datname LIKE 'leanstack_drill%' ORDER BY 1;")
    return listed.split()


def drill_reports(s3: S3Client, bucket: str) -> list[dict[str, object]]:
    keys = [key for key in object_keys(s3, bucket) if key.startswith("backups/") and "/_drills/" in key]
    return [json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) for key in keys]


def backup_and_manifest(s3: S3Client, bucket: str, database: str) -> tuple[str, dict[str, object]]:
    # <prefix>/<stack>/<database>/: each stack's own folder.
    keys = [key for key in object_keys(s3, bucket) if key.startswith("backups/") and f"/{database}/" in key]
    dumps = [key for key in keys if key.endswith(".dump")]
    assert len(dumps) == 1, keys
    manifest_key = dumps[0].removesuffix(".dump") + ".manifest.json"
    assert manifest_key in keys
    return dumps[0], json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())


STAND_IN_APP = Path(__file__).resolve().parent / "stand_in_app.py"
CUSTOMERS_SQL = (
    "CREATE TABLE customers (id int PRIMARY KEY, name text);"
    "INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 300) g;"
)


def plant(moto: Moto, bucket: str, key: str, body: bytes) -> None:
    moto.client_s3().put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256")


def app_config(tmp_path: Path, container_port: int, health_timeout: float) -> Path:
    state = tmp_path / "app-state"
    state.mkdir(parents=True)
    (state / "current.json").write_text(json.dumps({"port": 3000, "image": "registry.example/app:v42"}))
    config = tmp_path / "app.json"
    config.write_text(
        json.dumps(
            {
                "image": "registry.example/app",
                "container_port": container_port,
                "health_path": "/healthz",
                "health_timeout_seconds": health_timeout,
                "env_file": str(tmp_path / "app.env"),
                "state_dir": str(state),
            }
        )
    )
    return config


BACKUP_SETTINGS = BackupSettings(
    bucket="leanstack-prod-backups",
    bucket_region="eu-central-1",
    prefix="prod",
    database_name="app",
    database_host="app.abc123.eu-west-1.rds.amazonaws.com",
    database_port=5432,
    database_user="leanstack",
    database_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0a1b2c-AbCdEf",
    drill_database_url="",
    backup_calendar="*-*-* 03:30:00",
    drill_calendar="*-*-01 05:00:00",
    metrics_namespace="Leanstack",
    stack="prod",
)


def install_into(root: Path, files: tuple[HostFile, ...]) -> None:
    for file in files:
        target = root / file.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(file.content, encoding="utf-8")
        target.chmod(int(file.permissions, 8))


# Stands in for `leanstack-app restart`: records what nginx answers users meanwhile.
OBSERVER = """
import json, sys, urllib.error, urllib.request
seen = {}
for path in ("/", "/healthz"):
    request = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}{path}", headers={"Host": sys.argv[2]})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            seen[path] = [response.status, response.headers.get("Retry-After"), response.read().decode()]
    except urllib.error.HTTPError as error:
        seen[path] = [error.code, error.headers.get("Retry-After"), error.read().decode()]
with open(sys.argv[3], "a") as handle:
    handle.write(json.dumps(seen) + "\\n")
"""


@dataclass
class RestoreHost:
    """The restore tests' host: nginx in front of a stand-in app, the tool's environment as `sudo` leaves it."""

    env: dict[str, str]
    nginx_port: int
    observed: Path
    maintenance_page: Path


def leanstack_restore(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    python = os.environ.get("BACKUP_TOOL_PYTHON") or sys.executable
    return subprocess.run(
        [python, str(TOOL), "restore", *arguments], env=env, capture_output=True, text=True, timeout=180, check=False
    )
