"""The app's credentials endpoint, for real: the endpoint process assumes the app's role in
moto's STS on loopback, and a separate boto3 process, given only
AWS_CONTAINER_CREDENTIALS_FULL_URI and the token, finds the credentials on its own."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from leanstack.host.agent.credentials import container_token
from support.agent import agent_script
from support.ports import free_port
from support.servers import wait_until
from tests.conftest import starts_servers
from tests.host.helpers import FAKE_CREDENTIALS, HOST_REGION, Moto

ENDPOINT = agent_script("leanstack-credentials")
ROLE_ARN = "arn:aws:iam::123456789012:role/leanstack-test-app"
PATH = "/leanstack/credentials"

# A separate process with no keys at all: what the SDK in the app's container does.
CLIENT = """
import json, sys, time
import boto3
session = boto3.session.Session()
seen = []
for attempt in range(int(sys.argv[1])):
    if attempt:
        time.sleep(float(sys.argv[2]))
    identity = session.client("sts").get_caller_identity()
    seen.append({"key": session.get_credentials().get_frozen_credentials().access_key, "arn": identity["Arn"]})
print(json.dumps(seen))
"""


class Endpoint:
    def __init__(self, process: subprocess.Popen[str], port: int, token_file: Path) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}{PATH}"
        self.token_file = token_file

    @property
    def secret(self) -> str:
        return self.token_file.read_text().strip()

    @property
    def token(self) -> str:
        """The token the deploy tool gives the container app-8001."""
        return container_token(self.secret, "app-8001")


def endpoint_env(moto: Moto, tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_REGION": HOST_REGION,
        "APP_ROLE_ARN": ROLE_ARN,
        "LISTEN_ADDRESS": "127.0.0.1",
        "LISTEN_PORT": str(port),
        "TOKEN_FILE": str(tmp_path / "state" / "token"),
        **extra,
    }


@pytest.fixture()
@starts_servers
def endpoint(moto: Moto, tmp_path: Path) -> Iterator[Endpoint]:
    # 900 s credentials (the SDKs refetch them on every use: under their 15-minute margin),
    # assumed again once 3 s old: a refresh within the test's seconds.
    yield from start_endpoint(moto, tmp_path, DURATION_SECONDS="900", REFRESH_BEFORE_SECONDS="897")


def start_endpoint(moto: Moto, tmp_path: Path, **extra: str) -> Generator[Endpoint, None, None]:
    port = free_port()
    env = endpoint_env(moto, tmp_path, port, **extra)
    process = subprocess.Popen(
        [sys.executable, str(ENDPOINT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    started = Endpoint(process, port, tmp_path / "state" / "token")
    try:
        assert wait_until(lambda: _answers(started.url) or process.poll() is not None, timeout=20)
        assert process.poll() is None, process.communicate()[1]
        yield started
    finally:
        process.terminate()
        process.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def _status(url: str, headers: dict[str, str]) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def run_client(
    moto: Moto, tmp_path: Path, url: str, token: str, calls: int, pause: float
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "client-home"),
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": url,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": token,
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_DEFAULT_REGION": HOST_REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return subprocess.run(
        [sys.executable, "-c", CLIENT, str(calls), str(pause)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_sdk_picks_up_the_app_role_and_its_refresh(endpoint: Endpoint, moto: Moto, tmp_path: Path) -> None:
    done = run_client(moto, tmp_path, endpoint.url, endpoint.token, calls=2, pause=4)
    assert done.returncode == 0, done.stderr
    first, second = json.loads(done.stdout)
    # moto's STS answers GetCallerIdentity with the identity the access key belongs to.
    for seen in (first, second):
        assert seen["arn"] == "arn:aws:sts::123456789012:assumed-role/leanstack-test-app/leanstack-app"
        assert not seen["key"].startswith("testing")
    # The endpoint assumed the role again (3 s margin) and the SDK took the new keys itself.
    assert first["key"] != second["key"]
    assert len(endpoint.secret) >= 40
    assert oct(endpoint.token_file.stat().st_mode & 0o777) == "0o600"


def test_a_request_without_the_token_or_with_a_wrong_one_is_refused(
    endpoint: Endpoint, moto: Moto, tmp_path: Path
) -> None:
    assert _status(endpoint.url, {}) == 403
    assert _status(endpoint.url, {"Authorization": endpoint.token + "x"}) == 403
    assert _status(endpoint.url, {"Authorization": "Bearer " + endpoint.token}) == 403
    assert _status(endpoint.url + "/../other", {"Authorization": endpoint.token}) == 404
    assert _status(endpoint.url, {"Authorization": endpoint.token}) == 200
    refused = run_client(moto, tmp_path, endpoint.url, "wrong-token", calls=1, pause=0)
    assert refused.returncode != 0
    assert 'response 403 from container metadata: {"code": "AccessDenied"' in refused.stderr


def test_the_token_survives_a_restart(moto: Moto, tmp_path: Path) -> None:
    """Running containers keep the token they were given when the endpoint restarts."""
    from leanstack.host.agent.credentials import read_or_create_token

    path = tmp_path / "state" / "token"
    first = read_or_create_token(str(path))
    assert read_or_create_token(str(path)) == first


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"APP_ROLE_ARN": "app"}, "APP_ROLE_ARN must be an IAM role ARN"),
        ({"DURATION_SECONDS": "60"}, "DURATION_SECONDS must be a whole number from 900 to 3600, got '60'"),
        ({"REFRESH_BEFORE_SECONDS": "3600"}, "REFRESH_BEFORE_SECONDS (3600) must be below DURATION_SECONDS (3600)"),
        ({"CREDENTIALS_PATH": "creds"}, "CREDENTIALS_PATH must start with '/'"),
    ],
)
def test_bad_settings_are_one_line(moto: Moto, tmp_path: Path, env: dict[str, str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ENDPOINT)],
        env=endpoint_env(moto, tmp_path, free_port(), **env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr


def test_each_container_has_a_token_of_its_own_and_the_secret_opens_nothing(
    endpoint: Endpoint, moto: Moto, tmp_path: Path
) -> None:
    # Issue 21 item 8: every container shared the one static token, the endpoint's secret.
    blue, job = container_token(endpoint.secret, "app-8001"), container_token(endpoint.secret, "job-nightly")
    assert blue != job and blue.startswith("app-8001.") and endpoint.secret not in blue
    assert _status(endpoint.url, {"Authorization": blue}) == 200
    assert _status(endpoint.url, {"Authorization": job}) == 200
    # The secret itself, one container's MAC under another's name, and no token: nothing.
    assert _status(endpoint.url, {"Authorization": endpoint.secret}) == 403
    assert _status(endpoint.url, {"Authorization": "app-8002." + blue.split(".", 1)[1]}) == 403
    assert _status(endpoint.url, {}) == 403
    done = run_client(moto, tmp_path, endpoint.url, job, calls=1, pause=0)
    assert done.returncode == 0, done.stderr


def threads_of(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def test_idle_connections_do_not_hold_a_thread_each(moto: Moto, tmp_path: Path) -> None:
    # Issue 21 item 8: 300 idle connections held 302 threads, for ever.
    running = start_endpoint(moto, tmp_path, SOCKET_TIMEOUT_SECONDS="2", MAX_CONNECTIONS="16")
    endpoint = next(running)
    port = int(endpoint.url.split(":")[2].split("/")[0])
    idle = []
    try:
        for _ in range(300):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(1)
        assert threads_of(endpoint.process.pid) <= 16 + 4
        # The idle ones time out and free their slots: a real request gets through.
        assert wait_until(lambda: _status(endpoint.url, {"Authorization": endpoint.token}) == 200, timeout=10)
    finally:
        for connection in idle:
            connection.close()
        running.close()
