"""The drill unit's AWS credentials without the metadata service: `leanstack-backup
drill-credentials PATH` writes the default chain's credentials as a shared credentials file
(0600, with their expiry), boto3 reads it, and the drill runs on it alone against moto."""

from __future__ import annotations

import datetime
import json
import os
import stat
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest

from support.servers import PostgresServer
from tests.host.helpers import APP_USER, FAKE_CREDENTIALS, Moto, assert_one_line_failure, run_tool, tool_command

CUSTOMERS_SQL = "CREATE TABLE customers (id int PRIMARY KEY); INSERT INTO customers SELECT generate_series(1, 50);"
# The metadata service stays out of every run here: a missing credential fails at once.
NO_METADATA = {"AWS_EC2_METADATA_DISABLED": "true"}


def without_keys(env: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key not in FAKE_CREDENTIALS} | NO_METADATA


def write_credentials(env: dict[str, str], path: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*tool_command("drill-credentials"), str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def read_with_boto3(path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The credentials boto3's default chain finds with only AWS_SHARED_CREDENTIALS_FILE set."""
    for name in (*FAKE_CREDENTIALS, "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path.parent / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return boto3.session.Session(botocore_session=botocore.session.Session()).get_credentials()


class ContainerEndpoint(BaseHTTPRequestHandler):
    """A credentials endpoint that hands out expiring credentials, as the metadata service does."""

    expiration = ""

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "AccessKeyId": "ASIAEXPIRING",
                "SecretAccessKey": "expiring-secret",
                "Token": "expiring-token",
                "Expiration": self.expiration,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture()
def endpoint() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), ContainerEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/credentials"
    finally:
        server.shutdown()
        server.server_close()


def test_the_file_holds_the_chains_credentials_root_only_and_boto3_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run" / "drill-aws-credentials"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **FAKE_CREDENTIALS, **NO_METADATA}
    written = write_credentials(env, path)
    assert written.returncode == 0, written.stderr
    assert written.stdout.strip() == f"wrote {path} (0600): credentials from env, static keys without an expiry"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    credentials = read_with_boto3(path, monkeypatch)
    assert credentials.method == "shared-credentials-file"
    frozen = credentials.get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == ("testing", "testing", "testing")


def test_expiring_credentials_are_written_with_their_expiry(
    tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expiry = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=3)).replace(microsecond=0)
    ContainerEndpoint.expiration = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
    path = tmp_path / "drill-aws-credentials"
    path.write_text("[default]\naws_access_key_id = OLD\naws_secret_access_key = OLD\n")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint,
        **NO_METADATA,
    }
    written = write_credentials(env, path)
    assert written.returncode == 0, written.stderr
    when = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert written.stdout.strip() == f"wrote {path} (0600): credentials from container-role, valid until {when}"
    assert f"# from container-role, valid until {when}.\n" in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # replaced, not the old file's mode kept
    frozen = read_with_boto3(path, monkeypatch).get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == ("ASIAEXPIRING", "expiring-secret", "expiring-token")


def test_bad_arguments_and_no_credentials_write_nothing(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **FAKE_CREDENTIALS, **NO_METADATA}
    missing = subprocess.run(
        tool_command("drill-credentials"), env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert_one_line_failure(missing, "expected one argument, the file to write", status=2)
    assert_one_line_failure(write_credentials(env, "relative/file"), "PATH must be an absolute path", status=2)
    assert not (tmp_path / "relative").exists()
    path = tmp_path / "drill-aws-credentials"
    none = write_credentials(without_keys(env), path)
    assert_one_line_failure(none, "no AWS credentials")
    assert not path.exists()


def test_the_drill_runs_on_the_file_alone(
    postgres: PostgresServer,
    moto: Moto,
    app_database: str,
    tool_env: dict[str, str],
    local_env: dict[str, str],
    tmp_path: Path,
) -> None:
    postgres.psql(CUSTOMERS_SQL, app_database, APP_USER)
    assert run_tool("backup", tool_env).returncode == 0
    path = tmp_path / "credentials" / "aws"
    # As in the drill's unit: no keys in the environment, no metadata service, only the file.
    drill_env = without_keys(local_env) | {"AWS_SHARED_CREDENTIALS_FILE": str(path)}
    before = run_tool("restore-drill", drill_env)
    assert before.returncode == 1 and "Unable to locate credentials" in before.stderr, before.stderr
    written = write_credentials(tool_env, path)
    assert written.returncode == 0, written.stderr
    drilled = run_tool("restore-drill", drill_env)
    assert drilled.returncode == 0, drilled.stderr
    assert drilled.stdout.startswith("restore drill ok: ") and "(local target)" in drilled.stdout


def test_a_value_that_would_break_the_file_is_refused() -> None:
    from leanstack.host.agent.common import Failure
    from leanstack.host.agent.drill_credentials import render

    assert render("AKIA", "secret", None, "env", None).endswith("aws_secret_access_key = secret\n")
    for access_key, secret_key in (("AKIA", "secret\naws_session_token = planted"), ("", "secret"), (None, "s")):
        with pytest.raises(Failure, match="not one plain line; nothing written"):
            render(access_key, secret_key, "token", "env", None)
