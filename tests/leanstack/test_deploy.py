"""leanstack/deploy.py against moto's SSM: the command sent, the release history in
Parameter Store, the choice of the previous good tag, the one-line errors.

moto records `send_command` but runs nothing, and reports every invocation as a Success
with no output. Where a test needs the host's answer (a failed health check, a refused
second deploy, a command still running), `ScriptedSsm` passes everything to moto except
`get_command_invocation`, whose answers the test lists. The host side itself is tested for
real in tests/host/test_deploy.py and tests/host/test_deploy_cli.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from host.deploy.leanstack_app import serving_tags
from leanstack.deploy import (
    HOST_TOOL,
    RELEASES_LIMIT_BYTES,
    Deployer,
    DeployError,
    find_target,
    format_releases,
    main,
)

REGION = "eu-west-1"
INSTANCE = "i-0123456789abcdef0"
ENV = {"LEANSTACK_HOST_INSTANCE_ID": INSTANCE, "AWS_REGION": REGION, "LEANSTACK_DEPLOYED_BY": "ci"}


@pytest.fixture(scope="module")
def moto_ssm() -> Iterator[Any]:
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_SESSION_TOKEN="testing")
    with mock_aws():
        yield boto3.client("ssm", region_name=REGION)


# Commands sent by earlier tests of the module (moto keeps them; starting it anew per test is slow).
_earlier_commands: set[str] = set()


@pytest.fixture
def ssm(moto_ssm: Any) -> Any:
    """moto's SSM with no release history and no command sent yet, as far as the test sees."""
    for stack in ("dev", "prod"):
        with contextlib.suppress(moto_ssm.exceptions.ParameterNotFound):
            moto_ssm.delete_parameter(Name=f"/leanstack/{stack}/releases")
    _earlier_commands.update(command["CommandId"] for command in moto_ssm.list_commands()["Commands"])
    return moto_ssm


@dataclass
class ScriptedSsm:
    """moto's client, except that `get_command_invocation` gives the listed answers in turn.

    An answer is an invocation dict, or a string: the code of an error to raise.
    """

    moto: Any
    answers: list[dict[str, Any] | str]
    asked: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)

    def send_command(self, **kwargs: Any) -> Any:
        self.sent.append(kwargs)
        return self.moto.send_command(**kwargs)

    def get_command_invocation(self, **kwargs: Any) -> Any:
        answer = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        if isinstance(answer, str):
            raise ClientError({"Error": {"Code": answer, "Message": f"{answer} (scripted)"}}, "GetCommandInvocation")
        return answer

    def get_parameter(self, **kwargs: Any) -> Any:
        return self.moto.get_parameter(**kwargs)

    def put_parameter(self, **kwargs: Any) -> Any:
        return self.moto.put_parameter(**kwargs)


def _failed(stderr: str, code: int = 1) -> dict[str, Any]:
    return {"Status": "Failed", "ResponseCode": code, "StandardOutputContent": "", "StandardErrorContent": stderr}


def _history(ssm: Any, stack: str = "dev") -> list[dict[str, Any]]:
    value = ssm.get_parameter(Name=f"/leanstack/{stack}/releases")["Parameter"]["Value"]
    history: list[dict[str, Any]] = json.loads(value)
    return history


def _commands(ssm: Any) -> list[dict[str, Any]]:
    """The commands this test sent, in order."""
    return [command for command in ssm.list_commands()["Commands"] if command["CommandId"] not in _earlier_commands]


def _run(ssm: Any, *argv: str, **options: Any) -> int:
    return main(list(argv), ssm=ssm, env=ENV, stack_outputs=_no_pulumi, sleep=lambda _: None, **options)


def _no_pulumi(stack: str) -> dict[str, Any]:
    raise AssertionError("the stack's outputs were read although the environment names the host")


def test_deploy_sends_the_host_tool_through_run_command_and_records_it(
    ssm: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(ssm, "deploy", "dev", "v1.2.3") == 0

    (command,) = _commands(ssm)
    assert command["DocumentName"] == "AWS-RunShellScript"
    assert command["InstanceIds"] == [INSTANCE]
    assert command["Parameters"]["commands"] == [f"{HOST_TOOL} deploy v1.2.3"]
    assert command["Parameters"]["executionTimeout"] == ["1200"]
    assert command["Comment"] == "leanstack deploy dev v1.2.3"
    (entry,) = _history(ssm)
    assert entry["tag"] == "v1.2.3"
    assert entry["action"] == "deploy"
    assert entry["result"] == "succeeded"
    assert entry["command"] == command["CommandId"]
    assert entry["by"] == "ci"
    assert entry["started"] <= entry["finished"]
    parameter = ssm.get_parameter(Name="/leanstack/dev/releases")["Parameter"]
    assert parameter["Type"] == "String"
    assert "dev: v1.2.3 is serving" in capsys.readouterr().out


def test_a_failed_deploy_is_recorded_and_reported_in_one_line(ssm: Any, capsys: pytest.CaptureFixture[str]) -> None:
    reason = (
        "leanstack-app: 1234.dkr.ecr.eu-west-1.amazonaws.com/app:v2 failed its health check "
        "http://127.0.0.1:3001/healthz for 60 s (last: HTTP 500); removed it, the old version serves"
    )
    scripted = ScriptedSsm(ssm, ["InvocationDoesNotExist", {"Status": "InProgress"}, _failed(f"{reason}\n")])

    assert _run(scripted, "deploy", "dev", "v2") == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("leanstack: deploy of v2 to dev failed (Failed): leanstack-app: ")
    assert "the old version serves" in err
    assert scripted.asked == 3
    (entry,) = _history(ssm)
    assert (entry["tag"], entry["result"]) == ("v2", "failed")
    assert entry["detail"].endswith("the old version serves")


def test_a_deploy_refused_by_the_host_lock_exits_3_and_is_recorded_as_refused(
    ssm: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    busy = "leanstack-app: another deploy is running (pid 4242 since 2026-01-01T00:00:00Z); nothing changed"
    scripted = ScriptedSsm(ssm, [_failed(busy, code=3)])

    assert _run(scripted, "deploy", "dev", "v3") == 3

    assert "refused" in capsys.readouterr().err
    assert _history(ssm)[-1]["result"] == "refused"


def test_rollback_deploys_the_previous_good_tag(ssm: Any) -> None:
    for tag in ("v1", "v2"):
        assert _run(ssm, "deploy", "dev", tag) == 0
    assert _run(ScriptedSsm(ssm, [_failed("leanstack-app: broken")]), "deploy", "dev", "v3") == 1

    assert _run(ssm, "rollback", "dev") == 0

    assert _commands(ssm)[-1]["Parameters"]["commands"] == [f"{HOST_TOOL} deploy v1"]
    last = _history(ssm)[-1]
    assert (last["tag"], last["action"], last["result"]) == ("v1", "rollback", "succeeded")


def test_rolling_back_twice_goes_two_releases_back_not_forth(ssm: Any, capsys: pytest.CaptureFixture[str]) -> None:
    for tag in ("v1", "v2", "v3"):
        assert _run(ssm, "deploy", "dev", tag) == 0

    assert _run(ssm, "rollback", "dev") == 0
    assert _run(ssm, "rollback", "dev") == 0
    sent = [command["Parameters"]["commands"][0].rsplit(" ", 1)[1] for command in _commands(ssm)]
    assert sent == ["v1", "v2", "v3", "v2", "v1"]

    capsys.readouterr()
    assert _run(ssm, "rollback", "dev") == 1
    assert capsys.readouterr().err == "leanstack: no previous good release of dev to roll back to: only v1 has served\n"
    assert len(_commands(ssm)) == 5


def test_rollback_with_no_history_is_refused_before_sending_anything(
    ssm: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(ssm, "rollback", "prod") == 1
    assert "no release has succeeded yet" in capsys.readouterr().err
    assert _commands(ssm) == []


def test_releases_lists_the_history_with_what_serves(ssm: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(ssm, "releases", "dev") == 0
    assert capsys.readouterr().out == "no releases recorded\n"
    assert _run(ssm, "deploy", "dev", "v1") == 0
    assert _run(
        ScriptedSsm(ssm, [_failed("leanstack-app: pulling x:v2 failed: manifest unknown")]), "deploy", "dev", "v2"
    )
    capsys.readouterr()

    assert _run(ssm, "releases", "dev") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert "deploy" in lines[0] and "v1" in lines[0] and "succeeded" in lines[0] and "by ci" in lines[0]
    assert "failed" in lines[1] and "manifest unknown" in lines[1]
    assert lines[2] == "serving now (as recorded): v1"
    assert _run(ssm, "releases", "dev", "--json") == 0
    assert [entry["tag"] for entry in json.loads(capsys.readouterr().out)] == ["v1", "v2"]


def test_history_stays_within_a_standard_parameter_and_keeps_the_last_good_releases(ssm: Any) -> None:
    assert _run(ssm, "deploy", "dev", "v1") == 0
    assert _run(ssm, "deploy", "dev", "v2") == 0
    failing = ScriptedSsm(ssm, [_failed("leanstack-app: " + "a long reason " * 20)])
    for number in range(40):
        assert _run(failing, "deploy", "dev", f"broken-{number}") == 1

    value = ssm.get_parameter(Name="/leanstack/dev/releases")["Parameter"]["Value"]
    assert len(value.encode()) <= RELEASES_LIMIT_BYTES
    history = json.loads(value)
    tags = [entry["tag"] for entry in history]
    assert tags[:2] == ["v1", "v2"], "the two newest good releases were dropped"
    assert tags[-1] == "broken-39"
    assert 10 < len(history) < 42
    assert _run(ssm, "rollback", "dev") == 0
    assert _commands(ssm)[-1]["Parameters"]["commands"] == [f"{HOST_TOOL} deploy v1"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("deploy", "dev", "v1;reboot"), "leanstack: tag 'v1;reboot' is not allowed"),
        (("deploy", "dev", ".v1"), "leanstack: tag '.v1' is not allowed"),
        (("deploy", "dev/../x", "v1"), "leanstack: stack 'dev/../x' is not allowed"),
        (("deploy", "dev"), "leanstack: the following arguments are required: tag"),
        (("ship", "dev"), "leanstack: argument command: invalid choice: 'ship'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_sends_nothing(
    ssm: Any, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    assert _run(ssm, *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
    assert _commands(ssm) == []


def test_a_corrupt_history_is_named_not_overwritten(ssm: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ssm.put_parameter(Name="/leanstack/dev/releases", Value="{not json", Type="String")
    assert _run(ssm, "deploy", "dev", "v1") == 1
    assert capsys.readouterr().err == "leanstack: /leanstack/dev/releases is not JSON; fix or delete it\n"
    assert _commands(ssm) == []
    assert ssm.get_parameter(Name="/leanstack/dev/releases")["Parameter"]["Value"] == "{not json"


def test_a_command_that_cannot_be_sent_is_recorded_as_failed(ssm: Any, capsys: pytest.CaptureFixture[str]) -> None:
    class Unreachable(ScriptedSsm):
        def send_command(self, **kwargs: Any) -> Any:
            raise ClientError(
                {"Error": {"Code": "InvalidInstanceId", "Message": "Instances not in a valid state for account"}},
                "SendCommand",
            )

    assert _run(Unreachable(ssm, []), "deploy", "dev", "v1") == 1
    assert capsys.readouterr().err.startswith(f"leanstack: cannot send the deploy to {INSTANCE}: An error occurred")
    assert _history(ssm)[-1]["result"] == "failed"


def test_a_command_still_running_past_its_timeout_says_how_to_follow_it(ssm: Any) -> None:
    deployer = Deployer(
        "dev",
        ScriptedSsm(ssm, [{"Status": "InProgress"}]),
        INSTANCE,
        timeout_seconds=0,
        grace_seconds=0,
        sleep=lambda _: None,
        say=lambda _: None,
    )
    with pytest.raises(DeployError, match="still InProgress after 0 s; see `aws ssm get-command-invocation"):
        deployer.deploy("v1")
    assert _history(ssm)[-1]["result"] == "deploying", "an unfinished deploy is recorded as such, not as failed"


# --- finding the host --------------------------------------------------------------------


def test_the_host_comes_from_the_argument_then_the_environment_then_the_stack_outputs() -> None:
    outputs = {"hostInstanceId": "i-0fedcba9876543210", "region": "us-east-1"}
    asked: list[str] = []

    def stack_outputs(stack: str) -> dict[str, Any]:
        asked.append(stack)
        return outputs

    explicit = find_target("dev", instance_id=INSTANCE, region="eu-west-2", env={}, stack_outputs=stack_outputs)
    assert (explicit.instance_id, explicit.region, asked) == (INSTANCE, "eu-west-2", [])
    from_env = find_target("dev", env=ENV, stack_outputs=stack_outputs)
    assert (from_env.instance_id, from_env.region, asked) == (INSTANCE, REGION, [])
    from_stack = find_target("prod", env={}, stack_outputs=stack_outputs)
    assert (from_stack.instance_id, from_stack.region, asked) == ("i-0fedcba9876543210", "us-east-1", ["prod"])


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({"region": "eu-west-1"}, "stack dev has no hostInstanceId output"),
        ({"hostInstanceId": "i-0123; reboot", "region": "eu-west-1"}, "instance id 'i-0123; reboot' is not allowed"),
        ({"hostInstanceId": INSTANCE}, "region None is not allowed: pass --region or set AWS_REGION"),
    ],
)
def test_stack_outputs_that_do_not_name_a_host_are_refused(outputs: dict[str, Any], message: str) -> None:
    with pytest.raises(DeployError, match="^" + message.replace("(", r"\(").replace(";", ";")):
        find_target("dev", env={}, stack_outputs=lambda _: outputs)


def test_without_pulumi_the_error_says_what_to_pass(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["deploy", "dev", "v1"], env={}) == 1
    assert capsys.readouterr().err == (
        "leanstack: cannot find the host: pulumi is not installed; "
        "pass --instance-id or set LEANSTACK_HOST_INSTANCE_ID\n"
    )


def test_python_m_leanstack_deploy_module_runs_as_a_program() -> None:
    done = subprocess.run(
        ["python", "-m", "leanstack.deploy", "deploy", "dev", "bad tag"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **ENV},
    )
    assert done.returncode == 2
    assert done.stderr == "leanstack: tag 'bad tag' is not allowed: an image tag of letters, digits and _.- " + (
        "(at most 128, not starting with . or -)\n"
    )


# --- the history rule, shared with the host's boot -----------------------------------------


@pytest.mark.parametrize(
    ("entries", "serving"),
    [
        ([], []),
        ([("v1", "deploy", "succeeded")], ["v1"]),
        ([("v1", "deploy", "succeeded"), ("v2", "deploy", "failed")], ["v1"]),
        ([("v1", "deploy", "succeeded"), ("v2", "deploy", "deploying")], ["v1"]),
        ([("v1", "deploy", "succeeded"), ("v1", "deploy", "succeeded")], ["v1"]),
        ([("v1", "deploy", "succeeded"), ("v2", "deploy", "succeeded"), ("v1", "rollback", "succeeded")], ["v1"]),
        ([("v1", "deploy", "succeeded"), ("v2", "deploy", "succeeded"), ("v1", "rollback", "failed")], ["v1", "v2"]),
        # History trimmed below the rollback's target: the target still ends up serving.
        ([("v5", "deploy", "succeeded"), ("v3", "rollback", "succeeded")], ["v3"]),
        (
            [("v1", "deploy", "succeeded"), ("v2", "deploy", "succeeded"), ("v1", "deploy", "succeeded")],
            ["v1", "v2", "v1"],
        ),
    ],
)
def test_serving_tags(entries: list[tuple[str, str, str]], serving: list[str]) -> None:
    history = [
        {"id": str(i), "tag": tag, "action": action, "result": result}
        for i, (tag, action, result) in enumerate(entries)
    ]
    assert serving_tags(history) == serving


def test_serving_tags_skips_what_it_cannot_read() -> None:
    assert serving_tags({"not": "a list"}) == []
    assert serving_tags([None, {"tag": 5, "result": "succeeded"}, {"tag": "a b", "result": "succeeded"}]) == []


def test_format_releases_of_nothing() -> None:
    assert format_releases([]) == "no releases recorded\n"
