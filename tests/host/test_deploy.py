"""`leanstack-app`, run for real: Debian's nginx with the rendered config on loopback, in
front of real HTTP server processes standing in for the old and new app containers.

No container engine runs on these machines. The deploy script's container steps are the
commands it lets the environment replace: "start" launches the script's own `serve PORT`
(the systemd unit's ExecStart) in the background, with a stand-in `docker` that reads the
`docker run` arguments it is given and becomes a small HTTP app on the published port. A
stand-in `aws` serves the secrets from files. Everything else is the real script, the real
nginx and real processes: the upstream switch, the graceful reload, the lock. One test drives
the host through `leanstack.deploy` (the CLI), with moto's SSM holding the release history
and the test running each sent command on the test host as the SSM agent would.

The stand-in app's behaviour comes from its image tag: "broken" answers 500 on the health
path, "slow" starts listening only after 0.7 s.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from leanstack.deploy import HOST_TOOL
from leanstack.deploy import main as deploy_cli
from leanstack.mocks import STACKS_ENV
from tests.conftest import SHIPPED
from tests.host.app_host import API_KEY_PARAMETER, CONTAINER_PORT, DATABASE_SECRET, REPOSITORY, Host, Load


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _locked(path: Path) -> bool:
    """Whether another process holds the flock on `path` (tested by trying to take it)."""
    if not path.exists():
        return False
    with path.open("rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("leanstack-app: "), lines[0]
    return lines[0]


def test_first_deploy_runs_the_image_with_secrets_only_in_its_environment(host: Host) -> None:
    done = host.deploy("v1")

    assert f"deployed {REPOSITORY}:v1: serving on port {host.ports[0]}\n" in done.stdout
    answer = host.get()
    assert answer == {
        "version": "v1",
        "port": host.ports[0],
        "password": "first-password",
        "api_key": "api-key-1",
        "greeting": "hello world",
    }
    assert host.current()["port"] == host.ports[0]
    assert host.current()["image"] == f"{REPOSITORY}:v1"
    assert f"server 127.0.0.1:{host.ports[0]} max_fails=0;" in host.upstream()
    assert (host.state / "pulls.log").read_text().splitlines() == [f"{REPOSITORY}:v1"]
    recorded = json.loads((host.state / f"docker-{host.ports[0]}.json").read_text())
    argv = recorded["argv"]
    assert argv[argv.index("--publish") + 1] == f"127.0.0.1:{host.ports[0]}:{CONTAINER_PORT}"
    assert argv[argv.index("--name") + 1] == f"app-{host.ports[0]}"
    assert argv[-1] == f"{REPOSITORY}:v1"
    logging = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--log-opt"]
    assert argv[argv.index("--log-driver") + 1] == "awslogs"
    assert logging == [
        "awslogs-region=eu-west-1",
        "awslogs-group=/leanstack/test/app",
        f"awslogs-stream=app-{host.ports[0]}-v1",
    ]
    assert {"DATABASE_PASSWORD", "API_KEY", "DATABASE_HOST"} <= set(recorded["environment"])
    assert recorded["environment"]["DATABASE_HOST"] == "db.internal"
    # Secrets reach docker through its environment, never its argv (visible in ps).
    assert not any("first-password" in arg or "api-key-1" in arg for arg in argv)


def test_good_deploy_switches_with_zero_failed_requests(host: Host) -> None:
    host.deploy("v1")
    with Load(host) as load:
        load.wait_for(30)
        started = time.monotonic()
        done = host.run("deploy", "v2")
        finished = time.monotonic()
        load.wait_for(50)
    assert done.returncode == 0, done.stdout + done.stderr

    assert load.failures == [], load.failures[:5]
    assert load.versions()["v1"] >= 30
    after = load.versions(after=finished)
    assert set(after) == {"v2"} and after["v2"] >= 50, after
    assert host.current()["port"] == host.ports[1]
    assert f"server 127.0.0.1:{host.ports[1]} max_fails=0;" in host.upstream()
    assert not _listening(host.ports[0]), "the old version still runs"
    print(
        f"\nswitch: {len(load.results)} requests, 0 failed, deploy took {finished - started:.2f} s, "
        f"versions {dict(load.versions())}"
    )


def test_a_failing_health_check_never_gets_traffic_and_the_old_version_serves(host: Host) -> None:
    host.deploy("v1")
    # The broken version answers from its first second on; waiting longer proves nothing.
    host.configure(health_timeout_seconds=2.5)
    upstream_before = host.upstream()
    with Load(host) as load:
        load.wait_for(20)
        done = host.run("deploy", "v2-broken")
        load.wait_for(20)

    assert done.returncode == 1
    line = _one_line(done.stderr)
    assert "v2-broken failed its health check" in line and "HTTP 500" in line
    assert "the old version serves" in line
    assert load.failures == []
    assert set(load.versions()) == {"v1"}
    # Only the deploy script's health checks ever reached the broken version.
    seen = host.requests_seen("v2-broken")
    assert seen and set(seen) == {"/healthz"}, seen
    assert not _listening(host.ports[1]), "the failed container was not removed"
    assert host.upstream() == upstream_before
    assert host.current()["image"].endswith(":v1")
    assert host.get()["version"] == "v1"


@dataclass
class LocalAgent:
    """SSM Run Command with the test host as its instance: moto records the command (and
    holds the release history), and this runs the command's text on the test host the way
    the SSM agent runs AWS-RunShellScript, then reports its exit code and output."""

    moto: Any
    host: Host
    results: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)

    def send_command(self, **kwargs: Any) -> Any:
        assert kwargs["DocumentName"] == "AWS-RunShellScript"
        (command,) = kwargs["Parameters"]["commands"]
        program, *arguments = shlex.split(command)
        assert program == HOST_TOOL, command
        sent = self.moto.send_command(**kwargs)
        self.results[sent["Command"]["CommandId"]] = self.host.run(*arguments)
        return sent

    def get_command_invocation(self, **kwargs: Any) -> Any:
        done = self.results[kwargs["CommandId"]]
        return {
            "Status": "Success" if done.returncode == 0 else "Failed",
            "ResponseCode": done.returncode,
            "StandardOutputContent": done.stdout,
            "StandardErrorContent": done.stderr,
        }

    def get_parameter(self, **kwargs: Any) -> Any:
        return self.moto.get_parameter(**kwargs)

    def put_parameter(self, **kwargs: Any) -> Any:
        return self.moto.put_parameter(**kwargs)


class TestStackHost:
    """ec2:DescribeInstances for the one named host: it carries stack test's tags (the CLI checks them)."""

    def describe_instances(self, **kwargs: Any) -> Any:
        tags = [{"Key": "Name", "Value": "leanstack-test-host"}, {"Key": "Stack", "Value": "test"}]
        return {"Reservations": [{"Instances": [{"InstanceId": "i-0123456789abcdef0", "Tags": tags}]}]}


def test_rollback_from_the_cli_restores_the_previous_version(
    host: Host, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_SESSION_TOKEN="testing")
    env = {"LEANSTACK_HOST_INSTANCE_ID": "i-0123456789abcdef0"}
    # Stack test's file: the CLI takes the region from it (and refuses a stack without one).
    stack_text = (
        (SHIPPED / "stacks" / "Pulumi.dev.yaml").read_text().replace("aws:region: us-east-1", "aws:region: eu-west-1")
    )
    (tmp_path / "Pulumi.test.yaml").write_text(stack_text)
    monkeypatch.setenv(STACKS_ENV, str(tmp_path))
    with mock_aws():
        agent = LocalAgent(boto3.client("ssm", region_name="eu-west-1"), host)

        def cli(*argv: str) -> int:
            return deploy_cli(list(argv), ssm=agent, env=env, sleep=lambda _: None, ec2=TestStackHost())

        assert cli("deploy", "test", "v1") == 0
        assert cli("deploy", "test", "v2") == 0
        assert host.get()["version"] == "v2"
        host.configure(health_timeout_seconds=1.5)
        assert cli("deploy", "test", "v3-broken") == 1
        assert host.get()["version"] == "v2"
        capsys.readouterr()

        assert cli("rollback", "test") == 0

        assert "rolling test back from v2 to v1" in capsys.readouterr().out
        assert host.get()["version"] == "v1"
        assert host.current()["port"] == host.ports[0]
        assert host.current()["previous"] == f"{REPOSITORY}:v2"
        assert not _listening(host.ports[1])
        history = json.loads(agent.moto.get_parameter(Name="/leanstack/test/releases")["Parameter"]["Value"])
    assert [(entry["tag"], entry["action"], entry["result"]) for entry in history] == [
        ("v1", "deploy", "succeeded"),
        ("v2", "deploy", "succeeded"),
        ("v3-broken", "deploy", "failed"),
        ("v1", "rollback", "succeeded"),
    ]
    assert "failed its health check" in history[2]["detail"]


def test_a_second_deploy_at_the_same_time_is_refused(host: Host) -> None:
    host.deploy("v1")
    first = host.start("deploy", "v2-slow")
    try:
        lock = host.directory / "run" / "leanstack-app.lock"
        deadline = time.monotonic() + 10
        while not _locked(lock) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _locked(lock), "the first deploy did not take the lock"
        started = time.monotonic()
        second = host.run("deploy", "v3")
        refused_in = time.monotonic() - started
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()

    assert second.returncode == 3
    assert "another deploy is running (pid " in _one_line(second.stderr)
    assert refused_in < 2, refused_in
    assert first.returncode == 0, out + err
    assert host.get()["version"] == "v2-slow"
    assert host.requests_seen("v3") == []
    assert [line for line in (host.state / "pulls.log").read_text().splitlines() if line.endswith(":v3")] == []


def test_restart_after_a_password_rotation_uses_the_new_password_without_dropping_requests(host: Host) -> None:
    host.deploy("v1")
    assert host.get()["password"] == "first-password"
    host.set_secret(DATABASE_SECRET.rsplit("/", 1)[-1], json.dumps({"username": "app", "password": "rotated"}))

    with Load(host) as load:
        load.wait_for(20)
        done = host.run("restart")
        finished = time.monotonic()
        load.wait_for(20)

    assert done.returncode == 0, done.stdout + done.stderr
    assert load.failures == []
    assert host.get() == {
        "version": "v1",
        "port": host.ports[1],
        "password": "rotated",
        "api_key": "api-key-1",
        "greeting": "hello world",
    }
    assert set(load.versions(after=finished)) == {"v1"}


def test_a_restart_during_a_deploy_waits_for_it_then_restarts_what_it_deployed(host: Host) -> None:
    host.deploy("v1")
    deploying = host.start("deploy", "v2-slow")
    try:
        lock = host.directory / "run" / "leanstack-app.lock"
        deadline = time.monotonic() + 10
        while not _locked(lock) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _locked(lock)
        host.set_secret(DATABASE_SECRET.rsplit("/", 1)[-1], json.dumps({"username": "app", "password": "rotated"}))
        restarted = host.run("restart")
        out, err = deploying.communicate(timeout=60)
    finally:
        if deploying.poll() is None:
            deploying.kill()
            deploying.communicate()

    assert deploying.returncode == 0, out + err
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    answer = host.get()
    assert (answer["version"], answer["password"]) == ("v2-slow", "rotated")


def test_nginx_refusing_the_new_upstream_leaves_everything_as_it_was(host: Host) -> None:
    host.deploy("v1")
    before = host.upstream()
    host.env["LEANSTACK_NGINX_CHECK"] = "sh -c 'echo \"nginx: [emerg] test failure\" >&2; exit 1'"

    done = host.run("deploy", "v2")

    assert done.returncode == 1
    assert "nginx -t failed: nginx: [emerg] test failure; upstream restored" in _one_line(done.stderr)
    assert host.upstream() == before
    assert not _listening(host.ports[1])
    assert host.get()["version"] == "v1"


def test_a_failed_pull_changes_nothing(host: Host) -> None:
    host.deploy("v1")
    host.env["LEANSTACK_APP_PULL"] = "sh -c 'echo \"manifest unknown\" >&2; exit 1'"

    done = host.run("deploy", "v9")

    assert done.returncode == 1
    assert _one_line(done.stderr) == f"leanstack-app: pulling {REPOSITORY}:v9 failed: manifest unknown; nothing changed"
    assert not (host.state / f"docker-{host.ports[1]}.json").exists()
    assert host.get()["version"] == "v1"


def test_a_missing_secret_keeps_the_new_version_out(host: Host) -> None:
    host.deploy("v1")
    host.configure(health_timeout_seconds=1.5)
    (host.state / "secrets" / "api-key").unlink()

    done = host.run("deploy", "v2")

    assert done.returncode == 1
    # The deploy reads what the container would before starting it: one line, nothing started.
    assert f"leanstack-app: cannot read {API_KEY_PARAMETER}: An error occurred (ParameterNotFound)" in _one_line(
        done.stderr
    )
    assert not (host.state / f"app-{host.ports[1]}.out").exists()
    assert host.get()["version"] == "v1"

    # A secret that goes missing between that read and the start: `serve` (the unit) cannot
    # read it, so no container starts, and its log says why.
    (host.state / "secrets" / "api-key").write_text("api-key-1")
    secret = host.state / "secrets" / "api-key"
    host.env["LEANSTACK_APP_START"] = f"sh -c 'rm -f {secret}; exec \"$@\"' wrap " + host.env["LEANSTACK_APP_START"]

    started_without = host.run("deploy", "v2")

    assert started_without.returncode == 1
    assert "failed its health check" in _one_line(started_without.stderr)
    out = (host.state / f"app-{host.ports[1]}.out").read_text()
    assert f"leanstack-app: cannot read {API_KEY_PARAMETER}: An error occurred (ParameterNotFound)" in out
    assert host.get()["version"] == "v1"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("deploy", "v1;reboot"), "tag 'v1;reboot' is not allowed"),
        (("deploy",), "usage: leanstack-app deploy TAG"),
        (("rollback",), "usage: leanstack-app deploy TAG"),
        (("serve", "22"), "serve: port '22' is not allowed"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(host: Host, arguments: tuple[str, ...], message: str) -> None:
    done = host.run(*arguments)
    assert done.returncode == 2
    assert message in _one_line(done.stderr)
    assert not (host.directory / "state" / "current.json").exists()


def test_nothing_deployed_restart_and_status(host: Host) -> None:
    restart = host.run("restart")
    assert restart.returncode == 1
    assert _one_line(restart.stderr) == "leanstack-app: nothing is deployed yet; nothing to restart"
    assert host.run("status").stdout == "nothing deployed\n"
    host.deploy("v1")
    assert host.run("status").stdout.startswith(f"serving {REPOSITORY}:v1 on port {host.ports[0]} since ")


def test_a_bad_config_file_is_named(host: Host) -> None:
    host.configure(secrets={"API_KEY": "not-a-parameter"})
    done = host.run("deploy", "v1")
    assert done.returncode == 2
    assert "config secrets.API_KEY: 'not-a-parameter' is not allowed" in _one_line(done.stderr)


def test_boot_on_a_new_host_deploys_the_newest_serving_release(host: Host) -> None:
    nothing = host.run("boot")
    assert nothing.returncode == 0, nothing.stderr
    assert "no release recorded yet; waiting for the first deploy" in nothing.stdout
    assert not (host.directory / "state" / "current.json").exists()

    history = [
        {"tag": "v1", "action": "deploy", "result": "succeeded"},
        {"tag": "v2", "action": "deploy", "result": "succeeded"},
        {"tag": "v3", "action": "deploy", "result": "failed"},
        {"tag": "v4", "action": "deploy", "result": "deploying"},
    ]
    host.set_secret("releases", json.dumps(history))
    done = host.run("boot")

    assert done.returncode == 0, done.stdout + done.stderr
    assert host.get()["version"] == "v2"
    again = host.run("boot")
    assert "a release is deployed already" in again.stdout
    assert host.current()["image"].endswith(":v2")


def test_the_database_is_found_through_its_parameter_at_each_start(host: Host) -> None:
    """Issue 22: app.json names where the database is (an SSM parameter `pulumi up` writes), not
    its endpoint or secret; a restored instance reaches the app at the next start, no new user data."""
    host.configure(database={"parameter": "/leanstack/test/database", "name": "app", "user": "app"})
    restored = DATABASE_SECRET.replace("1234", "5678")
    host.set_secret(restored.rsplit("/", 1)[-1], json.dumps({"username": "app", "password": "restored-password"}))
    host.set_secret("database", json.dumps({"host": "db.internal", "port": 5432, "secret_arn": DATABASE_SECRET}))
    host.deploy("v1")
    first = json.loads((host.state / f"docker-{host.ports[0]}.json").read_text())["environment"]
    assert (first["DATABASE_HOST"], first["DATABASE_PORT"], first["DATABASE_NAME"]) == ("db.internal", "5432", "app")
    assert host.get()["password"] == "first-password"

    # After the recovery: the parameter names the restored instance; a restart picks it up.
    host.set_secret("database", json.dumps({"host": "db-restored.internal", "port": 6543, "secret_arn": restored}))
    done = host.run("restart")
    assert done.returncode == 0, done.stdout + done.stderr
    second = json.loads((host.state / f"docker-{host.ports[1]}.json").read_text())["environment"]
    assert (second["DATABASE_HOST"], second["DATABASE_PORT"]) == ("db-restored.internal", "6543")
    assert host.get()["password"] == "restored-password"

    host.set_secret("database", "not json")
    broken = host.run("restart")
    assert broken.returncode == 1
    assert broken.stderr.startswith("leanstack-app: /leanstack/test/database: not the database's location")
    assert host.get()["password"] == "restored-password"
