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

from leanstack.config.naming import physical_name
from leanstack.deploy import (
    HOST_TOOL,
    RELEASES_LIMIT_BYTES,
    Deployer,
    DeployError,
    Release,
    find_hosts,
    find_target,
    format_releases,
    main,
)
from leanstack.host.agent.blue_green import serving_tags
from leanstack.mocks import StackRun
from tests.leanstack.helpers import REGION, ScriptedSsm, TaggedHosts, launch_group, remove_hosts

# The commands read the stack files: the tests' copies, in the region moto answers in.
pytestmark = pytest.mark.usefixtures("stacks_in_the_tests_region")

INSTANCE = "i-0123456789abcdef0"
ENV = {"LEANSTACK_HOST_INSTANCE_ID": INSTANCE, "AWS_REGION": REGION, "LEANSTACK_DEPLOYED_BY": "ci"}


PROD_HOST = TaggedHosts({INSTANCE: "prod"})


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
    options.setdefault("ec2", TaggedHosts({INSTANCE: argv[1] if len(argv) > 1 else "dev"}))
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

    explicit = find_target("dev", instance_id=INSTANCE, region=REGION, env={}, stack_outputs=stack_outputs)
    assert (explicit.instance_id, explicit.region, asked) == (INSTANCE, REGION, [])
    from_env = find_target("dev", env={**ENV, "AWS_REGION": "eu-west-3"}, stack_outputs=stack_outputs)
    assert (from_env.instance_id, from_env.region, asked) == (INSTANCE, REGION, []), "the region is the stack file's"
    from_stack = find_target("prod", env={}, stack_outputs=stack_outputs)
    assert (from_stack.instance_id, from_stack.region, asked) == ("i-0fedcba9876543210", REGION, ["prod"])


@pytest.mark.parametrize("command", ["deploy", "rollback", "releases"])
def test_a_stack_without_a_stack_file_or_in_another_region_is_bad_input_and_sends_nothing(
    command: str, ssm: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    tag = ["v1"] if command == "deploy" else []
    assert _run(ssm, command, "prdo", *tag) == 2
    assert capsys.readouterr().err.startswith("leanstack: unknown stack 'prdo': no stacks/Pulumi.prdo.yaml (stacks: ")
    assert _run(ssm, command, "dev", *tag, "--region", "eu-west-3") == 2
    assert capsys.readouterr().err == (
        "leanstack: --region eu-west-3: stack dev is in eu-west-1 (aws:region in stacks/Pulumi.dev.yaml); "
        "leave --region out or give that region\n"
    )
    assert _commands(ssm) == []


def test_a_named_host_of_another_stack_gets_nothing(ssm: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """LEANSTACK_HOST_INSTANCE_ID left at a prod host: a dev deploy is refused before anything is sent (moto's EC2)."""
    ec2 = boto3.client("ec2", region_name=REGION)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    tags = [{"Key": "Name", "Value": "leanstack-prod-host"}, {"Key": "Stack", "Value": "prod"}]
    prod_host = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=[{"ResourceType": "instance", "Tags": tags}]
    )["Instances"][0]["InstanceId"]
    env = {**ENV, "LEANSTACK_HOST_INSTANCE_ID": prod_host}
    for argv in (["deploy", "dev", "v1"], ["rollback", "dev"]):
        assert main(argv, ssm=ssm, ec2=ec2, env=env, stack_outputs=_no_pulumi, sleep=lambda _: None) == 2
        assert capsys.readouterr().err == (
            f"leanstack: instance {prod_host} (--instance-id or LEANSTACK_HOST_INSTANCE_ID) is not a host of stack "
            "dev: tagged Name=leanstack-prod-host, Stack=prod; expected Name=leanstack-dev-host, Stack=dev; "
            "nothing sent\n"
        )
    assert main(["deploy", "dev", "v1", "--instance-id", "i-0aaaaaaaaaaaaaaaa"], ssm=ssm, ec2=ec2, env=env) == 2
    assert "is not found in the stack's region; nothing sent" in capsys.readouterr().err
    assert (
        main(["deploy", "prod", "v1"], ssm=ssm, ec2=ec2, env=env, stack_outputs=_no_pulumi, sleep=lambda _: None) == 0
    )
    assert [c["InstanceIds"] for c in _commands(ssm)] == [[prod_host]]
    ec2.terminate_instances(InstanceIds=[prod_host])


def test_a_tag_not_in_the_stacks_registry_is_refused_unless_the_image_comes_from_elsewhere(
    ssm: Any, capsys: pytest.CaptureFixture[str], stacks_in_the_tests_region: Path
) -> None:
    ecr = _ecr_with("v7.0.0")
    assert _run(ssm, "deploy", "dev", "v7.0.1", ecr=ecr) == 2
    assert capsys.readouterr().err == (
        "leanstack: tag 'v7.0.1' is not in leanstack-dev-app: push the image first (or name an image from "
        "elsewhere in app.image); nothing sent\n"
    )
    assert _commands(ssm) == []
    dev = stacks_in_the_tests_region / "Pulumi.dev.yaml"
    shipped = dev.read_text()
    assert "\n  leanstack:app:\n" in shipped and "    image:" not in shipped
    try:
        dev.write_text(shipped.replace("\n  leanstack:app:\n", "\n  leanstack:app:\n    image: ghcr.io/acme/web\n"))
        assert _run(ssm, "deploy", "dev", "v7.0.1", ecr=ecr) == 0
    finally:
        dev.write_text(shipped)


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({"region": "eu-west-1"}, "stack dev has no hostInstanceId output"),
        ({"hostInstanceId": "i-0123; reboot", "region": "eu-west-1"}, "instance id 'i-0123; reboot' is not allowed"),
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
        "pass --instance-id or --all-hosts, or set LEANSTACK_HOST_INSTANCE_ID\n"
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


def test_format_releases_says_how_many_hosts_a_release_went_to() -> None:
    history = [
        Release(id="1", tag="v1", action="deploy", result="succeeded", started="2026-11-20T10:00:00Z"),
        Release(id="2", tag="v2", action="deploy", result="failed", started="2026-11-21T10:00:00Z", hosts="3"),
    ]
    first, second, serving = format_releases(history).splitlines()
    assert "hosts" not in first  # one host: nothing recorded, nothing said
    assert "failed" in second and second.endswith("on 3 hosts")
    assert serving == "serving now (as recorded): v1"


# --- several hosts ------------------------------------------------------------------------
#
# The hosts are moto EC2 instances launched by moto Auto Scaling groups, tagged as
# components/host_group.py tags them; `Fleet` stands in for SSM's answers as the host tool
# would give them, and remembers which tag each host serves: a deploy that succeeds switches
# the host, one that fails or is refused leaves it serving what it served (the host tool's
# promise, tested for real in tests/host/).


@pytest.fixture
def aws(ssm: Any) -> Iterator[tuple[Any, Any]]:
    """moto's EC2 and Auto Scaling, with no host of any stack when the test starts and ends."""
    ec2 = boto3.client("ec2", region_name=REGION)
    autoscaling = boto3.client("autoscaling", region_name=REGION)
    remove_hosts(ec2, autoscaling)
    yield ec2, autoscaling
    remove_hosts(ec2, autoscaling)


@dataclass
class Fleet:
    """SSM as the hosts would answer: `broken` lists (host, tag) pairs whose deploy ends with
    the given invocation; every other deploy succeeds and switches the host to the tag.

    moto records the commands and keeps the release history. `history_at_send` is the
    release history's newest result at each command sent: what a host booting then would read.
    """

    moto: Any
    serving: dict[str, str] = field(default_factory=dict)
    broken: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    sent: list[tuple[str, str]] = field(default_factory=list)
    release_commands: list[tuple[str, str]] = field(default_factory=list)
    history_at_send: list[str] = field(default_factory=list)
    _commands: dict[str, tuple[str, str]] = field(default_factory=dict)

    def send_command(self, **kwargs: Any) -> Any:
        (instance,) = kwargs["InstanceIds"]
        command = kwargs["Parameters"]["commands"][0]
        tag = command.rsplit(" ", 1)[1]
        if f"{HOST_TOOL} release-command " in command:
            # Runs the release command only: nothing switches (`broken` keys it as (host, "release:" + tag)).
            self.release_commands.append((instance, tag))
            done = self.moto.send_command(**kwargs)
            self._commands[done["Command"]["CommandId"]] = (instance, f"release:{tag}")
            return done
        assert command == f"{HOST_TOOL} deploy --skip-release-command {tag}", "scaled out: it ran once already"
        self.sent.append((instance, tag))
        with contextlib.suppress(self.moto.exceptions.ParameterNotFound):
            self.history_at_send.append(_history(self.moto)[-1]["result"])
        done = self.moto.send_command(**kwargs)
        self._commands[done["Command"]["CommandId"]] = (instance, tag)
        return done

    def get_command_invocation(self, **kwargs: Any) -> Any:
        instance, tag = self._commands[kwargs["CommandId"]]
        assert kwargs["InstanceId"] == instance
        if (instance, tag) in self.broken:
            return self.broken[instance, tag]
        if tag.startswith("release:"):
            return {"Status": "Success", "ResponseCode": 0, "StandardOutputContent": "", "StandardErrorContent": ""}
        self.serving[instance] = tag
        return {"Status": "Success", "ResponseCode": 0, "StandardOutputContent": "", "StandardErrorContent": ""}

    def get_parameter(self, **kwargs: Any) -> Any:
        return self.moto.get_parameter(**kwargs)

    def put_parameter(self, **kwargs: Any) -> Any:
        return self.moto.put_parameter(**kwargs)


SCALED_ENV = {"AWS_REGION": REGION, "LEANSTACK_DEPLOYED_BY": "ci"}


def _scaled_outputs(stack: str) -> dict[str, Any]:
    """What `pulumi stack output` prints for a scaled-out stack: no hostInstanceId."""
    return {"region": REGION, "hostWebGroup": f"leanstack-{stack}-web-1", "hostJobsGroup": f"leanstack-{stack}-jobs-1"}


def _run_scaled(fleet: Fleet, aws: tuple[Any, Any], *argv: str) -> int:
    ec2, autoscaling = aws
    return main(
        list(argv),
        ssm=fleet,
        env=SCALED_ENV,
        stack_outputs=_scaled_outputs,
        ec2=ec2,
        autoscaling=autoscaling,
        sleep=lambda _: None,
    )


def _fleet_on(ssm: Any, aws: tuple[Any, Any], tag: str, web: int, jobs: int = 1) -> tuple[Fleet, list[str]]:
    """`web` + `jobs` hosts of dev, all serving `tag` by a recorded deploy; the hosts in deploy order."""
    ec2, autoscaling = aws
    launch_group(ec2, autoscaling, "web", web)
    launch_group(ec2, autoscaling, "jobs", jobs)
    hosts = find_hosts("dev", ec2, autoscaling)
    fleet = Fleet(ssm)
    assert _run_scaled(fleet, aws, "deploy", "dev", tag) == 0
    assert fleet.serving == dict.fromkeys(hosts, tag)
    fleet.sent.clear()
    fleet.release_commands.clear()
    fleet.history_at_send.clear()
    return fleet, hosts


def test_the_hosts_are_the_stacks_running_in_service_ones_web_first_jobs_last(aws: tuple[Any, Any]) -> None:
    ec2, autoscaling = aws
    jobs = launch_group(ec2, autoscaling, "jobs", 1)
    web = launch_group(ec2, autoscaling, "web", 3)
    other_stack = launch_group(ec2, autoscaling, "web", 1, stack="prod")
    web_group = autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]
    (web_group_name,) = [g["AutoScalingGroupName"] for g in web_group if web[0] in str(g["Instances"])]
    autoscaling.enter_standby(
        AutoScalingGroupName=web_group_name, InstanceIds=[web[0]], ShouldDecrementDesiredCapacity=True
    )
    # A host outside any group (a single host, or one launched by hand) counts while running.
    loose = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "leanstack-dev-host"}]}],
    )["Instances"][0]["InstanceId"]
    stopped = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "leanstack-dev-host"}]}],
    )["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[stopped])

    hosts = find_hosts("dev", ec2, autoscaling)

    assert sorted(hosts[:-1]) == sorted([*web[1:], loose]), "standby, stopped and other stacks' hosts are left out"
    assert hosts[-1] == jobs[0], "the jobs host switches last"
    assert other_stack[0] not in hosts
    assert find_hosts("prod", ec2, autoscaling) == other_stack


@pytest.mark.parametrize("web", [1, 2])
def test_a_scaled_out_stack_is_deployed_host_by_host(
    ssm: Any, aws: tuple[Any, Any], web: int, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet, hosts = _fleet_on(ssm, aws, "v1", web=web)
    assert len(hosts) == web + 1
    capsys.readouterr()

    assert _run_scaled(fleet, aws, "deploy", "dev", "v2") == 0

    assert fleet.release_commands == [(hosts[-1], "v2")], "the release command once, on the jobs host, first"
    assert fleet.sent == [(host, "v2") for host in hosts], "one command per host, in order"
    assert fleet.serving == dict.fromkeys(hosts, "v2")
    # Until the last host switched, a host booting would read the previous release.
    assert fleet.history_at_send == ["deploying"] * len(hosts)
    last = _history(ssm)[-1]
    assert (last["tag"], last["result"], last["hosts"]) == ("v2", "succeeded", str(len(hosts)))
    out = capsys.readouterr().out
    for host in hosts:
        assert f"  {host}  switched to v2\n" in out
    assert f"dev: v2 is serving on {len(hosts)} hosts" in out


def test_the_second_host_failing_puts_the_first_back_and_never_reaches_the_third(
    ssm: Any, aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    fleet, hosts = _fleet_on(ssm, aws, "v1", web=2)
    first, second, third = hosts
    reason = "leanstack-app: app:v2 failed its health check for 60 s (last: HTTP 500); the old version serves"
    fleet.broken[second, "v2"] = _failed(reason)
    capsys.readouterr()

    assert _run_scaled(fleet, aws, "deploy", "dev", "v2") == 1

    assert fleet.sent == [(first, "v2"), (second, "v2"), (first, "v1")]
    assert fleet.serving == dict.fromkeys(hosts, "v1"), "the fleet is back on one version"
    last = _history(ssm)[-1]
    assert (last["tag"], last["result"], last["hosts"]) == ("v2", "failed", "3")
    assert last["detail"].startswith(f"rolled back: 1 host put back on v1; {second}: leanstack-app: app:v2 failed")
    assert len(json.dumps(last)) < 400, "per-host detail stays small: the history must fit in 4 KB"
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"leanstack: deploy of v2 to dev failed on {second} (host 2 of 3) (Failed): ")
    assert captured.err.endswith("; rolled back: the 1 host before it is back on v1, 1 after it not touched\n")
    assert f"  {first}  switched to v2, put back on v1\n" in captured.out
    assert f"  {second}  failed: {reason}\n" in captured.out
    assert f"  {third}  not touched\n" in captured.out
    # What a host launched now boots: the release that serves, not the failed one.
    assert serving_tags(_history(ssm))[-1] == "v1"


def test_a_busy_first_host_touches_nothing_and_exits_3(
    ssm: Any, aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    fleet, hosts = _fleet_on(ssm, aws, "v1", web=2)
    busy = "leanstack-app: another deploy is running (pid 4242 since 2026-01-01T00:00:00Z); nothing changed"
    fleet.broken[hosts[0], "v2"] = _failed(busy, code=3)
    capsys.readouterr()

    assert _run_scaled(fleet, aws, "deploy", "dev", "v2") == 3

    assert fleet.sent == [(hosts[0], "v2")]
    assert fleet.serving == dict.fromkeys(hosts, "v1")
    last = _history(ssm)[-1]
    assert (last["result"], last["detail"]) == ("refused", f"{hosts[0]}: {busy}")
    err = capsys.readouterr().err
    assert (
        err == f"leanstack: deploy of v2 to dev refused on {hosts[0]} (host 1 of 3) (Failed): {busy}; no host changed\n"
    )


def test_a_busy_later_host_puts_the_earlier_ones_back_and_exits_3(ssm: Any, aws: tuple[Any, Any]) -> None:
    fleet, hosts = _fleet_on(ssm, aws, "v1", web=2)
    fleet.broken[hosts[2], "v2"] = _failed("leanstack-app: another deploy is running (pid 1)", code=3)

    assert _run_scaled(fleet, aws, "deploy", "dev", "v2") == 3

    assert fleet.sent == [(hosts[0], "v2"), (hosts[1], "v2"), (hosts[2], "v2"), (hosts[1], "v1"), (hosts[0], "v1")]
    assert fleet.serving == dict.fromkeys(hosts, "v1")
    assert _history(ssm)[-1]["result"] == "refused"


def test_a_failed_put_back_says_which_hosts_serve_which_version(
    ssm: Any, aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    fleet, hosts = _fleet_on(ssm, aws, "v1", web=2)
    fleet.broken[hosts[1], "v2"] = _failed("leanstack-app: v2 broken")
    fleet.broken[hosts[0], "v1"] = _failed("leanstack-app: pulling app:v1 failed: no space left on device")
    capsys.readouterr()

    assert _run_scaled(fleet, aws, "deploy", "dev", "v2") == 1

    assert fleet.serving == {hosts[0]: "v2", hosts[1]: "v1", hosts[2]: "v1"}
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"the fleet is SPLIT: {hosts[0]} still on v2, the other hosts on v1; deploy v1 again" in err
    last = _history(ssm)[-1]
    assert last["result"] == "failed"
    assert last["detail"].startswith(f"split: {hosts[0]} left on v2; {hosts[1]}: leanstack-app: v2 broken")


def test_a_first_release_failing_on_a_later_host_leaves_it_where_it_reached(
    ssm: Any, aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    ec2, autoscaling = aws
    launch_group(ec2, autoscaling, "web", 2)
    hosts = find_hosts("dev", ec2, autoscaling)
    fleet = Fleet(ssm, broken={(hosts[1], "v1"): _failed("leanstack-app: v1 broken")})

    assert _run_scaled(fleet, aws, "deploy", "dev", "v1") == 1

    assert fleet.sent == [(hosts[0], "v1"), (hosts[1], "v1")], "there is nothing to put the first host back on"
    assert "the fleet is SPLIT" in capsys.readouterr().err


def test_a_scaled_out_rollback_that_fails_puts_the_hosts_back_on_the_serving_tag(
    ssm: Any, aws: tuple[Any, Any]
) -> None:
    fleet, hosts = _fleet_on(ssm, aws, "v1", web=2)
    assert _run_scaled(fleet, aws, "deploy", "dev", "v2") == 0
    fleet.broken[hosts[1], "v1"] = _failed("leanstack-app: pulling app:v1 failed: manifest unknown")
    fleet.sent.clear()

    assert _run_scaled(fleet, aws, "rollback", "dev") == 1

    assert fleet.sent == [(hosts[0], "v1"), (hosts[1], "v1"), (hosts[0], "v2")]
    assert fleet.serving == dict.fromkeys(hosts, "v2")
    assert serving_tags(_history(ssm)) == ["v1", "v2"]
    assert _run_scaled(fleet, aws, "rollback", "dev") == 1, "v1 still cannot be pulled on the second host"
    del fleet.broken[hosts[1], "v1"]
    assert _run_scaled(fleet, aws, "rollback", "dev") == 0
    assert fleet.serving == dict.fromkeys(hosts, "v1")


def test_a_host_launched_during_the_deploy_is_deployed_after_the_release_is_recorded(ssm: Any) -> None:
    hosts = ["i-0000000000000000a", "i-0000000000000000b"]
    late = "i-0000000000000000c"
    lookups = [hosts, [*hosts, late]]
    fleet = Fleet(ssm)
    deployer = Deployer(
        "dev", fleet, find_hosts=lambda: lookups.pop(0), env=SCALED_ENV, sleep=lambda _: None, say=lambda _: None
    )

    assert deployer.deploy("v2").result == "succeeded"

    assert fleet.sent == [(hosts[0], "v2"), (hosts[1], "v2"), (late, "v2")]
    # The late host is deployed only once the record says succeeded: from then on, a host
    # that boots takes v2 by itself.
    assert fleet.history_at_send == ["deploying", "deploying", "succeeded"]
    assert fleet.serving == dict.fromkeys([*hosts, late], "v2")


def test_a_host_launched_during_the_deploy_that_does_not_take_it_is_named(ssm: Any) -> None:
    hosts = ["i-0000000000000000a", "i-0000000000000000b"]
    late = "i-0000000000000000c"
    lookups = [hosts, [late, *hosts]]
    fleet = Fleet(ssm, broken={(late, "v2"): _failed("leanstack-app: another deploy is running", code=3)})
    deployer = Deployer(
        "dev", fleet, find_hosts=lambda: lookups.pop(0), env=SCALED_ENV, sleep=lambda _: None, say=lambda _: None
    )

    with pytest.raises(DeployError, match=f"succeeded on 2 hosts, but {late}, launched during it, did not take it"):
        deployer.deploy("v2")
    assert _history(ssm)[-1]["result"] == "succeeded", "the hosts it went to serve v2, and new hosts boot it"


def test_no_host_found_is_one_line_and_changes_nothing(
    ssm: Any, aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    ec2, autoscaling = aws
    launch_group(ec2, autoscaling, "web", 1, stack="prod")
    fleet = Fleet(ssm)

    assert _run_scaled(fleet, aws, "deploy", "dev", "v1") == 1

    assert capsys.readouterr().err == (
        "leanstack: found no host of dev: no running instance tagged Name=leanstack-dev-host "
        "that is InService in its Auto Scaling group; is the stack up, in this region?\n"
    )
    assert fleet.sent == []
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        _history(ssm)


def test_all_hosts_looks_them_up_without_pulumi_and_wins_over_the_environment(
    ssm: Any, aws: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As the app-deploy workflow runs it: no Pulumi login, AWS_REGION set."""
    ec2, autoscaling = aws
    hosts = launch_group(ec2, autoscaling, "web", 2)
    # No pulumi on the PATH: reading the stack's outputs would fail.
    monkeypatch.setenv("PATH", str(tmp_path))
    fleet = Fleet(ssm)
    env = {**SCALED_ENV, "LEANSTACK_HOST_INSTANCE_ID": INSTANCE}

    done = main(
        ["deploy", "dev", "v1", "--all-hosts"],
        ssm=fleet,
        env=env,
        ec2=ec2,
        autoscaling=autoscaling,
        sleep=lambda _: None,
    )

    assert done == 0
    assert sorted(fleet.serving) == sorted(hosts)


def test_all_hosts_and_instance_id_together_are_bad_input(ssm: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(ssm, "deploy", "dev", "v1", "--all-hosts", "--instance-id", INSTANCE) == 2
    assert capsys.readouterr().err == ("leanstack: argument --instance-id: not allowed with argument --all-hosts\n")
    assert _commands(ssm) == []


def test_hosts_named_on_the_command_line_switch_in_that_order_without_a_lookup(ssm: Any) -> None:
    class NoLookup(TaggedHosts):
        def describe_instances(self, **kwargs: Any) -> Any:
            assert "Filters" in kwargs and kwargs["Filters"][0]["Name"] == "instance-id", "looked the hosts up"
            return super().describe_instances(**kwargs)

        def describe_auto_scaling_groups(self, **kwargs: Any) -> Any:
            raise AssertionError("looked the hosts up although they were named")

    named = ["i-0000000000000000b", "i-0000000000000000a", "i-0000000000000000c"]
    fleet = Fleet(ssm)
    argv = ["deploy", "dev", "v1", *(part for host in named for part in ("--instance-id", host))]
    lookup = NoLookup(dict.fromkeys(named, "dev"))

    assert main(argv, ssm=fleet, env=SCALED_ENV, stack_outputs=_no_pulumi, ec2=lookup, autoscaling=lookup) == 0

    assert fleet.sent == [(host, "v1") for host in named]
    env = {**SCALED_ENV, "LEANSTACK_HOST_INSTANCE_ID": " ".join(reversed(named))}
    fleet.sent.clear()
    assert main(["deploy", "dev", "v2"], ssm=fleet, env=env, stack_outputs=_no_pulumi, ec2=lookup) == 0
    assert fleet.sent == [(host, "v2") for host in reversed(named)]


def test_a_malformed_instance_id_argument_is_bad_input(ssm: Any, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["deploy", "dev", "v1", "--instance-id", "i-0123456789abcdef0", "--instance-id", "i-12;reboot"]
    assert _run(ssm, *argv) == 2
    assert capsys.readouterr().err.startswith("leanstack: instance id 'i-12;reboot' is not allowed: an EC2 instance")
    assert _commands(ssm) == []


def test_the_deploy_help_names_the_aws_permissions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["deploy", "--help"])
    out = capsys.readouterr().out
    for permission in ("ec2:DescribeInstances", "autoscaling:DescribeAutoScalingGroups", "ssm:SendCommand"):
        assert permission in out


def test_a_later_host_that_does_not_answer_in_time_puts_the_earlier_ones_back(ssm: Any) -> None:
    hosts = ["i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c"]
    fleet = Fleet(ssm)
    deployer = Deployer(
        "dev", fleet, hosts, timeout_seconds=0, grace_seconds=0, sleep=lambda _: None, say=lambda _: None
    )
    deployer.deploy("v1")
    fleet.broken[hosts[1], "v2"] = {"Status": "InProgress"}
    fleet.sent.clear()

    with pytest.raises(DeployError, match=r"\(unknown\): SSM command .* still InProgress after 0 s.*rolled back: "):
        deployer.deploy("v2")

    assert fleet.sent == [(hosts[0], "v2"), (hosts[1], "v2"), (hosts[0], "v1")]
    assert fleet.serving[hosts[0]] == "v1"
    assert _history(ssm)[-1]["result"] == "failed"


def _ecr_with(tag: str, stack: str = "dev") -> Any:
    """moto's ECR (inside the module's mock) with the stack's repository holding one image `tag`."""
    ecr = boto3.client("ecr", region_name=REGION)
    name = f"leanstack-{stack}-app"
    with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"digest": "sha256:" + "b" * 64},
        "layers": [],
        "annotations": {"t": tag},
    }
    with contextlib.suppress(ecr.exceptions.ImageAlreadyExistsException):
        ecr.put_image(repositoryName=name, imageManifest=json.dumps(manifest), imageTag=tag)
    return ecr


def test_deploy_marks_the_image_released_before_sending_so_the_lifecycle_keeps_it(ssm: Any) -> None:
    ecr = _ecr_with("v9.0.1")
    assert _run(ssm, "deploy", "dev", "v9.0.1", ecr=ecr) == 0
    (image,) = ecr.batch_get_image(repositoryName="leanstack-dev-app", imageIds=[{"imageTag": "v9.0.1"}])["images"]
    tags = {
        t
        for d in ecr.describe_images(repositoryName="leanstack-dev-app")["imageDetails"]
        if d["imageDigest"] == image["imageId"]["imageDigest"]
        for t in d["imageTags"]
    }
    assert {"v9.0.1", "release-v9.0.1"} <= tags


@dataclass
class RefusingEcr:
    """moto's ECR, except that PutImage is refused (deploy credentials without ecr:PutImage)."""

    moto: Any

    def batch_get_image(self, **kwargs: Any) -> Any:
        return self.moto.batch_get_image(**kwargs)

    def put_image(self, **kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "PutImage")


def test_a_deploy_whose_image_cannot_be_marked_released_sends_nothing(
    ssm: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ecr = RefusingEcr(_ecr_with("v9.0.2"))
    assert _run(ssm, "deploy", "dev", "v9.0.2", ecr=ecr) == 1
    assert _commands(ssm) == []
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot mark leanstack-dev-app:v9.0.2 released" in err
    (entry,) = _history(ssm)
    assert (entry["tag"], entry["result"]) == ("v9.0.2", "failed")
    assert "cannot mark" in entry["detail"]


def test_images_leaving_the_history_lose_their_mark_and_only_those(ssm: Any) -> None:
    ecr = _ecr_with("v9.1.0", stack="prod")
    for n in range(1, 4):
        _ecr_with(f"v9.1.{n}", stack="prod")
    # An image marked by hand long ago, no longer in any history: unmarked by the next deploy.
    image = ecr.batch_get_image(repositoryName="leanstack-prod-app", imageIds=[{"imageTag": "v9.1.0"}])["images"][0]
    ecr.put_image(
        repositoryName="leanstack-prod-app",
        imageManifest=image["imageManifest"],
        imageManifestMediaType=image["imageManifestMediaType"],
        imageTag="release-v9.1.0",
    )
    env = {**ENV, "LEANSTACK_HOST_INSTANCE_ID": INSTANCE}
    for tag in ("v9.1.1", "v9.1.2", "v9.1.3"):
        assert (
            main(
                ["deploy", "prod", tag],
                ssm=ssm,
                ecr=ecr,
                env=env,
                stack_outputs=_no_pulumi,
                sleep=lambda _: None,
                ec2=PROD_HOST,
            )
            == 0
        )
    assert (
        main(
            ["rollback", "prod"],
            ssm=ssm,
            ecr=ecr,
            env=env,
            stack_outputs=_no_pulumi,
            sleep=lambda _: None,
            ec2=PROD_HOST,
        )
        == 0
    )
    listed = ecr.list_images(repositoryName="leanstack-prod-app")["imageIds"]
    marked = {i["imageTag"] for i in listed if i.get("imageTag", "").startswith("release-")}
    assert marked == {"release-v9.1.1", "release-v9.1.2", "release-v9.1.3"}
    # Unmarking removed the tag, not the image.
    assert "v9.1.0" in {i.get("imageTag") for i in listed}


def test_scaled_out_a_failed_release_command_stops_the_deploy_before_any_host_switches(
    ssm: Any, aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    fleet, hosts = _fleet_on(ssm, aws, "v1", web=2)
    reason = (
        "leanstack-app: the release command of v2 exited 1 (== 20261201 AddNotNull: migrating | "
        'PG::NotNullViolation: column "email" contains null values); the old version serves'
    )
    fleet.broken[hosts[-1], "release:v2"] = _failed(reason)
    capsys.readouterr()

    assert _run_scaled(fleet, aws, "deploy", "dev", "v2") == 1

    assert fleet.release_commands == [(hosts[-1], "v2")]
    assert fleet.sent == [], "no host was asked to switch"
    assert fleet.serving == dict.fromkeys(hosts, "v1")
    last = _history(ssm)[-1]
    assert (last["tag"], last["result"]) == ("v2", "failed")
    assert last["detail"].endswith("contains null values); the old version serves")
    assert last["detail"].startswith("release command: ")
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"leanstack: deploy of v2 to dev stopped: the release command failed on {hosts[-1]} (Failed)")
    assert "PG::NotNullViolation" in err and err.endswith("no host changed, the previous version serves\n")
    assert serving_tags(_history(ssm))[-1] == "v1"


def test_one_host_runs_its_release_command_inside_its_own_deploy(ssm: Any) -> None:
    assert _run(ssm, "deploy", "dev", "v7") == 0
    (command,) = _commands(ssm)
    assert command["Parameters"]["commands"] == [f"{HOST_TOOL} deploy v7"]


def test_the_hosts_the_program_makes_carry_the_tags_the_commands_check(dev: StackRun, scale: StackRun) -> None:
    """The named-host check (check_hosts_of_stack) asks for Name and Stack: every host the program makes has both."""
    host = dev.one("aws:ec2/instance:Instance")
    assert host.inputs["tags"]["Name"] == physical_name("dev", "host")
    provider = next(p for p in dev.of_type("pulumi:providers:aws") if host.provider.endswith(f"::{p.name}"))
    assert json.loads(provider.inputs["defaultTags"])["tags"]["Stack"] == "dev"
    for template in scale.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        (instance_tags,) = [t["tags"] for t in template.inputs["tagSpecifications"] if t["resourceType"] == "instance"]
        assert (instance_tags["Name"], instance_tags["Stack"]) == (physical_name("scale", "host"), "scale")
