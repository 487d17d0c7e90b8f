"""leanstack/operate.py against moto: the app's config in SSM, the commands sent to the hosts, the logs.

moto's SSM records `send_command` and answers every invocation with a canned Success, so the
commands and their parameters are checked here, and `ScriptedSsm` (from test_deploy) stands in
for a host's answer where the exit code or output matters. CloudWatch Logs is moto's.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from leanstack.deploy import HOST_TOOL
from leanstack.host.render import MAINTENANCE_TOOL_PATH
from leanstack.operate import filter_pattern, interactive_command, main, parse_since
from tests.leanstack.helpers import REGION, ScriptedSsm, TaggedHosts, launch_group, remove_hosts

# The commands read the stack files: the tests' copies, in the region moto answers in.
pytestmark = pytest.mark.usefixtures("stacks_in_the_tests_region")

HOST = "i-0123456789abcdef0"
ENV = {"AWS_REGION": REGION}
PATH = "/leanstack/dev/app"


@pytest.fixture(scope="module")
def clients() -> Iterator[dict[str, Any]]:
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_SESSION_TOKEN="testing")
    with mock_aws():
        yield {service: boto3.client(service, region_name=REGION) for service in ("ssm", "logs", "ec2", "autoscaling")}


@pytest.fixture
def ssm(clients: dict[str, Any]) -> Iterator[Any]:
    """moto's SSM holding the stack file's config parameter, and nothing set by the CLI."""
    client = clients["ssm"]
    config = {"env": {"LOG_LEVEL": "info"}, "secrets": {"STRIPE_KEY": f"{PATH}/stripe"}}
    client.put_parameter(Name=f"{PATH}/config", Value=json.dumps(config), Type="String", Overwrite=True)
    yield client
    names = [p["Name"] for p in client.get_parameters_by_path(Path=PATH, Recursive=True)["Parameters"]]
    for name in names:
        with contextlib.suppress(client.exceptions.ParameterNotFound):
            client.delete_parameter(Name=name)


def _no_pulumi(stack: str) -> dict[str, Any]:
    raise AssertionError("the stack's outputs were read although the arguments name the host and region")


def _run(*argv: str, stdin: str = "", **clients: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    clients.setdefault("ec2", TaggedHosts({HOST: "dev"}))
    code = main(
        list(argv),
        env={**ENV, "LEANSTACK_HOST_INSTANCE_ID": HOST},
        stack_outputs=_no_pulumi,
        stdin=io.StringIO(stdin),
        stdout=out,
        stderr=err,
        sleep=lambda _: None,
        **clients,
    )
    return code, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------- config


def _rows(out: str) -> list[str]:
    return [" ".join(line.split()) for line in out.splitlines()]


def test_config_set_list_unset_a_plain_value(ssm: Any) -> None:
    code, out, _ = _run("config", "dev", "set", "FEATURE_X=on", ssm=ssm)
    assert code == 0 and "FEATURE_X set (plain)" in out
    parameter = ssm.get_parameter(Name=f"{PATH}/env/FEATURE_X")["Parameter"]
    assert (parameter["Type"], parameter["Value"]) == ("String", "on")
    # A CLI value overrides the stack file's value of the same name.
    assert _run("config", "dev", "set", "LOG_LEVEL=debug", ssm=ssm)[0] == 0

    code, out, _ = _run("config", "dev", "list", ssm=ssm)
    assert code == 0
    assert _rows(out) == [
        "FEATURE_X on [set by `config set`]",
        "LOG_LEVEL debug [set by `config set` over the stack file]",
        f"STRIPE_KEY (secret from {PATH}/stripe) [stack file]",
    ]

    assert _run("config", "dev", "unset", "FEATURE_X", ssm=ssm)[0] == 0
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=f"{PATH}/env/FEATURE_X")
    code, _, err = _run("config", "dev", "unset", "FEATURE_X", ssm=ssm)
    assert code == 2 and err.startswith("leanstack: FEATURE_X: not set by `config set`")


def test_a_secret_comes_from_stdin_is_a_securestring_and_is_never_printed(ssm: Any) -> None:
    secret = "sk_live_5up3r53cr3t"
    code, out, err = _run("config", "dev", "set", "MAIL_KEY", "--secret", stdin=secret + "\n", ssm=ssm)
    assert code == 0, err
    parameter = ssm.get_parameter(Name=f"{PATH}/secret/MAIL_KEY", WithDecryption=True)["Parameter"]
    assert (parameter["Type"], parameter["Value"]) == ("SecureString", secret)
    code, out, err = _run("config", "dev", "list", ssm=ssm)
    assert "MAIL_KEY (secret, version 1) [set by `config set`]" in _rows(out)
    assert secret not in out + err
    # On the command line it would land in the shell history: refused, nothing written.
    code, _, err = _run("config", "dev", "set", f"OTHER_KEY={secret}", "--secret", ssm=ssm)
    assert code == 2 and secret not in err and "value on stdin" in err
    # A name is either plain or secret: setting it plain removes the secret.
    assert _run("config", "dev", "set", "MAIL_KEY=plain", ssm=ssm)[0] == 0
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=f"{PATH}/secret/MAIL_KEY")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("set", "PORT=8080"), "leanstack: PORT: not allowed: leanstack sets it to app.port"),
        (("set", "DATABASE_URL=x"), "leanstack: DATABASE_URL: not allowed: DATABASE_* names are not allowed"),
        (("set", "lower=x"), "leanstack: lower: not allowed: expected upper-case letters"),
        (("set", "NOVALUE"), "leanstack: NOVALUE: expected NAME=VALUE"),
        (("set", "TWO_LINES=a\nb"), "leanstack: TWO_LINES: a plain value is one line"),
        (("unset", "LEANSTACK_RELEASE"), "leanstack: LEANSTACK_RELEASE: not allowed"),
    ],
)
def test_names_and_values_validate_refuses_are_refused_and_nothing_is_written(
    ssm: Any, argv: tuple[str, ...], message: str
) -> None:
    code, out, err = _run("config", "dev", *argv, ssm=ssm)
    assert code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1
    names = [p["Name"] for p in ssm.get_parameters_by_path(Path=PATH, Recursive=True)["Parameters"]]
    assert names == [f"{PATH}/config"]


# --------------------------------------------------------------------------- commands on the hosts


def _sent(scripted: ScriptedSsm) -> list[tuple[list[str], str]]:
    return [(call["InstanceIds"], call["Parameters"]["commands"][0]) for call in scripted.sent]


def _done(stdout: str = "", stderr: str = "", code: int = 0) -> dict[str, Any]:
    status = "Success" if code == 0 else "Failed"
    return {"Status": status, "ResponseCode": code, "StandardOutputContent": stdout, "StandardErrorContent": stderr}


def test_run_sends_the_command_quoted_prints_its_output_and_exits_with_its_code(clients: dict[str, Any]) -> None:
    scripted = ScriptedSsm(clients["ssm"], ["InvocationDoesNotExist", {"Status": "InProgress"}, _done("42\n", code=0)])
    code, out, _ = _run("run", "dev", "--", "bin/rails", "runner", "p User.count", ssm=scripted)
    assert code == 0 and out == "42\n"
    ((instances, command),) = _sent(scripted)
    assert instances == [HOST]
    assert command == f"{HOST_TOOL} run -- bin/rails runner 'p User.count'"
    assert shlex.split(command)[3:] == ["bin/rails", "runner", "p User.count"]
    assert scripted.sent[0]["Parameters"]["executionTimeout"] == ["3600"]

    failing = ScriptedSsm(clients["ssm"], [_done("checking\n", "boom: no such table\n", code=3)])
    code, out, err = _run("run", "dev", "--", "bin/check", "--verbose", ssm=failing)
    assert code == 3 and out == "checking\n" and err.endswith("boom: no such table\n")
    # Flags after `--` belong to the command, not to leanstack.
    assert _sent(failing)[0][1] == f"{HOST_TOOL} run -- bin/check --verbose"


def test_run_without_a_command_is_refused(clients: dict[str, Any]) -> None:
    code, _, err = _run("run", "dev", ssm=clients["ssm"])
    assert code == 2 and err.startswith("leanstack: run: no command given")


def test_run_interactive_prints_the_session_manager_command(clients: dict[str, Any]) -> None:
    scripted = ScriptedSsm(clients["ssm"], [])
    code, out, _ = _run("run", "dev", "--interactive", "--", "bin/rails", "console", ssm=scripted)
    assert code == 0 and scripted.sent == []
    assert out == interactive_command(HOST, REGION, ["bin/rails", "console"]) + "\n"
    words = shlex.split(out)
    assert words[:3] == ["aws", "ssm", "start-session"] and words[words.index("--target") + 1] == HOST
    assert words[words.index("--document-name") + 1] == "AWS-StartInteractiveCommand"
    parameters = json.loads(words[words.index("--parameters") + 1])
    assert parameters == {"command": [f"sudo {HOST_TOOL} run --tty -- bin/rails console"]}


@pytest.fixture
def fleet(clients: dict[str, Any]) -> Iterator[list[str]]:
    """Two web hosts and the jobs host of dev, in moto's EC2 and Auto Scaling."""
    ec2, autoscaling = clients["ec2"], clients["autoscaling"]
    remove_hosts(ec2, autoscaling)
    jobs = launch_group(ec2, autoscaling, "jobs", 1)
    web = launch_group(ec2, autoscaling, "web", 2)
    yield [*web, *jobs]
    remove_hosts(ec2, autoscaling)


def _run_on_fleet(clients: dict[str, Any], scripted: ScriptedSsm, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        list(argv),
        ssm=scripted,
        env=ENV,
        stack_outputs=lambda stack: {"region": REGION, "hostWebGroup": "w", "hostJobsGroup": "j"},
        ec2=clients["ec2"],
        autoscaling=clients["autoscaling"],
        stdout=out,
        stderr=err,
        sleep=lambda _: None,
    )
    return code, out.getvalue(), err.getvalue()


def test_scaled_out_run_goes_to_the_jobs_host_restart_and_maintenance_to_every_host(
    clients: dict[str, Any], fleet: list[str]
) -> None:
    jobs_host = fleet[-1]
    scripted = ScriptedSsm(clients["ssm"], [_done("ok\n")])
    assert _run_on_fleet(clients, scripted, "run", "dev", "--", "bin/report")[0] == 0
    assert _sent(scripted) == [([jobs_host], f"{HOST_TOOL} run -- bin/report")]

    scripted = ScriptedSsm(clients["ssm"], [_done()])
    code, out, _ = _run_on_fleet(clients, scripted, "restart", "dev")
    assert code == 0
    assert sorted(i for (i,), _ in _sent(scripted)) == sorted(fleet)
    assert {command for _, command in _sent(scripted)} == {f"{HOST_TOOL} restart"}
    assert _sent(scripted)[-1][0] == [jobs_host]
    for host in fleet:
        assert f"  {host}  done\n" in out

    scripted = ScriptedSsm(clients["ssm"], [_done("maintenance on\n")])  # moto records each command sent
    code, out, _ = _run_on_fleet(clients, scripted, "maintenance", "dev", "on", "--message", "Back at 14:00 (UTC)")
    assert code == 0
    assert {command for _, command in _sent(scripted)} == {
        f"{MAINTENANCE_TOOL_PATH} on --message 'Back at 14:00 (UTC)'"
    }
    assert len(scripted.sent) == 3

    scripted = ScriptedSsm(clients["ssm"], [_done(), _done(stderr="nginx: page not writable\n", code=1), _done()])
    code, out, err = _run_on_fleet(clients, scripted, "maintenance", "dev", "off")
    assert code == 1
    assert {command for _, command in _sent(scripted)} == {f"{MAINTENANCE_TOOL_PATH} off"}
    assert "Failed: nginx: page not writable" in out
    assert err.strip().endswith("leanstack: maintenance failed on 1 of 3 host(s) of dev")


# --------------------------------------------------------------------------- logs

# CloudWatch Logs (and moto) drop events older than 14 days: the clock is now, fixed for the module.
NOW = float(int(time.time()))


@pytest.fixture(scope="module")
def log_groups(clients: dict[str, Any]) -> Any:
    logs = clients["logs"]
    request_id = "f3a9c2d1-77e0-4b1e-9c55-0a1b2c3d4e5f"
    for group, stream, events in (
        (
            "/leanstack/dev/app",
            "app-3000",
            [
                (NOW - 7200, "old line, outside --since 1h"),
                (NOW - 600, f"INFO GET /cart request_id={request_id} user=42"),
                (NOW - 300, "ERROR payment failed request_id=0000-other"),
            ],
        ),
        (
            "/leanstack/dev/nginx/access",
            "i-0123456789abcdef0",
            [(NOW - 601, f'203.0.113.9 "GET /cart HTTP/2.0" 200 1520 rid={request_id}')],
        ),
    ):
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": int(t * 1000), "message": m} for t, m in events],
        )
    return logs, request_id


def _logs(logs: Any, *argv: str, rounds: int | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["logs", "dev", *argv],
        logs=logs,
        env=ENV,
        stack_outputs=_no_pulumi,
        stdout=out,
        stderr=err,
        sleep=lambda _: None,
        clock=lambda: NOW,
        follow_rounds=rounds,
    )
    return code, out.getvalue(), err.getvalue()


def test_logs_reads_the_app_group_since_an_hour(log_groups: Any) -> None:
    logs, request_id = log_groups
    code, out, _ = _logs(logs)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2 and all(" app   " in line for line in lines)
    assert lines[0].endswith(f"INFO GET /cart request_id={request_id} user=42")
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z app   INFO", lines[0])
    assert "old line" in _logs(logs, "--since", "3h")[1]


def test_a_request_id_finds_both_sides_of_one_request(log_groups: Any) -> None:
    logs, request_id = log_groups
    code, out, _ = _logs(logs, "--nginx", "--filter", request_id)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2
    assert " nginx " in lines[0] and f"rid={request_id}" in lines[0], "oldest first: nginx logged it first"
    assert " app   " in lines[1] and f"request_id={request_id}" in lines[1]


def test_follow_prints_each_event_once(log_groups: Any) -> None:
    logs, _ = log_groups
    code, out, _ = _logs(logs, "--follow", rounds=3)
    assert code == 0 and len(out.splitlines()) == 2


def test_since_and_filter_parsing() -> None:
    assert parse_since("30m", 10_000.0) == 8_200_000
    assert parse_since("2026-12-01T09:00", 0) == parse_since("2026-12-01T09:00:00+00:00", 0)
    assert filter_pattern('say "hi"') == '"say \\"hi\\""'
    code, _, err = _logs(None, "--since", "yesterday")
    assert code == 2 and err.startswith("leanstack: --since 'yesterday' is not allowed")


def test_python_m_leanstack_routes_the_day_2_commands(capsys: pytest.CaptureFixture[str]) -> None:
    from leanstack.__main__ import main as leanstack_main

    assert leanstack_main(["config", "dev", "set", "PORT=1", "--region", REGION]) == 2
    assert capsys.readouterr().err.startswith("leanstack: PORT: not allowed")


def test_config_refuses_bad_input_before_looking_anything_up_and_takes_the_region_from_the_stack_file(
    capsys: pytest.CaptureFixture[str], clients: dict[str, Any]
) -> None:
    assert main(["config", "dev", "set", "X_Y=1", "--secret"], env={}, stack_outputs=_no_pulumi) == 2
    assert "value on stdin" in capsys.readouterr().err
    # No --region, no AWS_REGION, no Pulumi: the stack file says where the stack is (moto's SSM answers there).
    out = io.StringIO()
    assert main(["config", "dev", "list"], env={}, stack_outputs=_no_pulumi, stdout=out) == 0
    assert out.getvalue().startswith("dev: no app variables") or "[" in out.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        ["config", "{stack}", "set", "FEATURE_X=1"],
        ["config", "{stack}", "list"],
        ["config", "{stack}", "unset", "FEATURE_X"],
        ["logs", "{stack}"],
        ["restart", "{stack}"],
        ["run", "{stack}", "--", "bin/rails", "db:reset"],
        ["maintenance", "{stack}", "on"],
    ],
)
def test_every_command_refuses_an_unknown_stack_a_wrong_region_and_another_stacks_host(
    argv: list[str], clients: dict[str, Any], ssm: Any
) -> None:
    sent_before = len(ssm.list_commands()["Commands"])
    code, _, err = _run(*(part.format(stack="prdo") for part in argv), ssm=ssm, logs=clients["logs"])
    assert (code, err.split(" (stacks: ")[0]) == (2, "leanstack: unknown stack 'prdo': no stacks/Pulumi.prdo.yaml")
    cut = argv.index("--") if "--" in argv else len(argv)  # before `--`, as `run --help` shows
    with_region = [*argv[:cut], "--region", "eu-west-3", *argv[cut:]]
    code, _, err = _run(*(part.format(stack="dev") for part in with_region), ssm=ssm)
    assert (code, err) == (
        2,
        "leanstack: --region eu-west-3: stack dev is in eu-west-1 (aws:region in stacks/Pulumi.dev.yaml); "
        "leave --region out or give that region\n",
    )
    if argv[0] in ("restart", "run", "maintenance"):
        # LEANSTACK_HOST_INSTANCE_ID left at a prod host: nothing is sent to it.
        code, _, err = _run(*(part.format(stack="dev") for part in argv), ssm=ssm, ec2=TaggedHosts({HOST: "prod"}))
        assert (
            code == 2
            and f"instance {HOST} (--instance-id or LEANSTACK_HOST_INSTANCE_ID) is not a host of stack dev" in err
        )
    assert len(ssm.list_commands()["Commands"]) == sent_before
    assert "FEATURE_X" not in str(ssm.get_parameters_by_path(Path="/leanstack/", Recursive=True)["Parameters"])


def test_run_help_shows_the_command_after_the_double_dash(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    help_text = capsys.readouterr().out
    assert "usage: python -m leanstack run STACK [--interactive]" in help_text and "-- CMD [ARG ...]" in help_text


def test_maintenance_says_what_it_does_in_plain_words(ssm: Any) -> None:
    code, out, _ = _run("maintenance", "dev", "on", ssm=ssm)
    assert code == 0 and out.startswith("dev: putting the maintenance page up on every host:\n")
    code, out, _ = _run("maintenance", "dev", "off", ssm=ssm)
    assert code == 0 and out.startswith("dev: taking the maintenance page down on every host:\n")
