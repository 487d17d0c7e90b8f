"""The box, booted once per test session: the dev stack's host from its real rendered user data.

Marked `box`: these tests start real servers (dockerd, a systemd container, nginx, PostgreSQL,
moto). They need root and Docker; on a developer's machine without them they skip, under
CI=true they fail instead. KEEP_BOX=1 leaves the box running after the session, and
REUSE_BOX=1 (never under CI) tests the box such a session left instead of booting a new one.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from support.box.run import BUILD, box_exec, up
from support.nginx_harness import Response, request
from support.system import skip_or_fail
from tests.conftest import RECOVERY_PUBLIC_KEY, merged, read_stack_config

# BOX_TEST_NAME: another name, so two sessions on one machine (two worktrees) keep their own boxes.
NAME = os.environ.get("BOX_TEST_NAME", "leanstack-box-test")
# A worker (app.processes): the app image's python, printing in a loop; a short grace keeps deploys quick.
BOX_WORKER = "ticker"
BOX_WORKER_COMMAND = [
    "python3",
    "-c",
    "import itertools, time; [print('ticker alive', flush=True) or time.sleep(1) for _ in itertools.count()]",
]
# The dev stack with the host features dev leaves off: the app's own AWS identity (file storage,
# so leanstack-credentials runs), sealed secrets (so the seal timer runs), the drill starting
# the real app image against the restored data (as the restoring role, never a superuser) and a worker.
BOX_OVERRIDES = {
    "leanstack:storage": {"enabled": True},
    "leanstack:backup": {"recoveryPublicKey": RECOVERY_PUBLIC_KEY, "drillStartsApp": True},
    "leanstack:app": {"processes": {BOX_WORKER: {"command": BOX_WORKER_COMMAND, "count": 1, "stopTimeoutSeconds": 5}}},
}
REPO = Path(__file__).resolve().parent.parent.parent


@dataclass
class Box:
    values: dict[str, str]

    @property
    def name(self) -> str:
        return self.values["BOX_CONTAINER"]

    @property
    def port(self) -> int:
        return int(self.values["BOX_RESOLVE"].split(":")[1])

    @property
    def hostname(self) -> str:
        return self.values["BOX_RESOLVE"].split(":")[0]

    def sh(self, command: str, *, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """`command` in the box as root (bash -lc); fails the test with its output when `check`."""
        done = box_exec(self.name, command, check=False, timeout=timeout)
        if check and done.returncode != 0:
            pytest.fail(f"in the box: {command}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done

    def context(self, *, client_cert: bool = True) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.values["BOX_CA"])
        if client_cert:
            context.load_cert_chain(self.values["BOX_CLIENT_CERT"], self.values["BOX_CLIENT_KEY"])
        return context

    def get(self, path: str = "/", *, client_cert: bool = True, timeout: float = 10.0) -> Response:
        return request(
            self.port, path, host=self.hostname, context=self.context(client_cert=client_cert), timeout=timeout
        )

    def client(self, service: str, region: str | None = None) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name=region or self.values["AWS_REGION"],
            endpoint_url=self.values["AWS_ENDPOINT_URL"],
            aws_access_key_id="box",
            aws_secret_access_key="box",
        )

    def app_config(self) -> dict[str, Any]:
        return dict(json.loads(self.sh("cat /etc/leanstack/app.json").stdout))

    def wait(self, command: str, timeout: float = 120.0) -> str:
        """Run `command` in the box until it succeeds; its output."""
        deadline = time.monotonic() + timeout
        while True:
            done = self.sh(command, check=False)
            if done.returncode == 0:
                return done.stdout
            if time.monotonic() > deadline:
                pytest.fail(
                    f"in the box, never succeeded within {timeout:.0f} s: {command}\n{done.stdout}{done.stderr}"
                )
            time.sleep(1)


def _usable() -> None:
    if os.geteuid() != 0:
        skip_or_fail("the box needs root (mmdebstrap, dockerd)")
    done = subprocess.run(["sh", str(REPO / "support/box/dockerd.sh")], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        skip_or_fail(f"no Docker daemon: {done.stderr.strip()}")


@pytest.fixture(scope="session")
def box() -> Iterator[Box]:
    _usable()
    env_file = BUILD / f"{NAME}.env"
    running = subprocess.run(["docker", "inspect", NAME], capture_output=True, check=False).returncode == 0
    if os.environ.get("REUSE_BOX") and not os.environ.get("CI") and running and env_file.exists():
        reused = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        yield Box({key: value.strip("'") for key, value in reused.items()})
        return
    values = up("dev", merged(read_stack_config("dev"), BOX_OVERRIDES), name=NAME, env_file=env_file)
    yield Box(values)
    if not os.environ.get("KEEP_BOX"):
        subprocess.run(["docker", "rm", "--force", "--volumes", NAME], capture_output=True, check=False)
