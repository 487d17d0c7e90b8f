"""App: the image repository, release history, log group and restart on password rotation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from leanstack.mocks import StackRun
from tests.components.helpers import actions, statements, written_file


def test_repository_is_immutable_scanned_and_trimmed(dev: StackRun) -> None:
    repository = dev.one("aws:ecr/repository:Repository").inputs
    assert repository["name"] == "leanstack-dev-app"
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    policy = json.loads(dev.one("aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs["policy"])
    selection = policy["rules"][-1]["selection"]
    assert (selection["countType"], selection["countNumber"]) == ("imageCountMoreThan", 30)
    assert dev.outputs["appRepositoryUrl"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/leanstack-dev-app"


def test_release_history_parameter_is_left_to_the_deploy_command(dev: StackRun) -> None:
    history = dev.named("app-releases")
    assert history.inputs["name"] == "/leanstack/dev/releases" == dev.outputs["appReleasesParameter"]
    assert (history.inputs["type"], history.inputs["insecureValue"]) == ("String", "[]")
    assert dev.named("app-logs").inputs["name"] == "/leanstack/dev/app"


def test_password_rotation_restarts_the_app_through_ssm(dev: StackRun) -> None:
    rule = dev.named("app-password-rotated").inputs
    pattern = json.loads(rule["eventPattern"])
    assert pattern["detail"]["eventName"] == ["RotationSucceeded"]
    assert pattern["detail"]["additionalEventData"]["SecretId"] == [dev.outputs["databaseSecretArn"]]
    target = dev.named("app-restart-app").inputs
    assert target["arn"] == "arn:aws:ssm:us-east-1::document/AWS-RunShellScript"
    assert target["runCommandTargets"] == [{"key": "tag:Name", "values": ["leanstack-dev-host"]}]
    instance = dev.one("aws:ec2/instance:Instance").inputs
    assert instance["tags"]["Name"] == "leanstack-dev-host"  # the tag the restart targets
    assert json.loads(target["input"]) == {"commands": ["/usr/local/sbin/leanstack-app restart"]}
    restarter = statements(next(r for r in dev.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == "app-restarter"))
    assert [actions(s) for s in restarter] == [["ssm:SendCommand"], ["ssm:SendCommand"]]
    assert restarter[0]["Resource"] == "arn:aws:ssm:us-east-1::document/AWS-RunShellScript"
    assert restarter[1]["Resource"].endswith(":instance/*")
    assert restarter[1]["Condition"] == {"StringEquals": {"aws:ResourceTag/Name": "leanstack-dev-host"}}


def test_host_may_pull_the_image_and_ship_app_logs_but_nothing_more(dev: StackRun) -> None:
    by_sid = {s["Sid"]: s for s in statements(dev.named("host-permissions"))}
    pull = by_sid["PullAppImages"]
    assert pull["Resource"] == dev.one("aws:ecr/repository:Repository").outputs["arn"]
    assert not any("Put" in a or "Delete" in a for a in actions(pull))
    # The app's group /leanstack/dev/app is one of the stack's log groups the host may write to.
    assert by_sid["ShipStackLogs"]["Resource"].endswith(":log-group:/leanstack/dev/*")
    assert "ReadAppSecrets" not in by_sid  # no app.secrets in the dev stack


def test_app_runs_from_user_data_with_its_tool_fetched(dev: StackRun) -> None:
    config = json.loads(written_file(dev, "/etc/leanstack/app.json"))
    assert config["image"] == dev.outputs["appRepositoryUrl"]
    script = written_file(dev, "/usr/local/sbin/leanstack-fetch-host-files")
    assert "fetch agent/app_cli.py " in script and " /usr/local/lib/leanstack/leanstack_agent/app_cli.py 0644" in script
    assert dev.named("host-file-app_cli.py").inputs["key"] == "agent/app_cli.py"
    assert "from leanstack_agent.app_cli import main" in written_file(dev, "/usr/local/sbin/leanstack-app")


def test_configured_secrets_are_readable_by_the_host_and_never_inlined(
    run_dev_with: Callable[[dict[str, Any]], StackRun],
) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:stripe-AbCdEf"
    run = run_dev_with(
        {
            "leanstack:app": {
                "env": {"LOG_LEVEL": "info"},
                "secrets": {"STRIPE_KEY": arn, "SENTRY": "/leanstack/dev/app/sentry"},
            }
        }
    )
    by_sid = {s["Sid"]: s for s in statements(run.named("host-permissions"))}
    assert by_sid["ReadAppSecrets"]["Resource"] == [arn]
    # Parameters under the stack's own path: ReadOwnParameters covers them, nothing more is granted.
    assert "ReadAppParameters" not in by_sid
    # The config lives in SSM under the app's path, never in the host's files (no host replacement).
    parameter = run.named("app-config").inputs
    assert parameter["name"] == "/leanstack/dev/app/config" and parameter["type"] == "String"
    document = json.loads(parameter["insecureValue"])
    assert document == {
        "env": {"LOG_LEVEL": "info"},
        "secrets": {"SENTRY": "/leanstack/dev/app/sentry", "STRIPE_KEY": arn},
    }
    env_file = written_file(run, "/etc/leanstack/app.env")
    assert "LOG_LEVEL" not in env_file and arn not in env_file
    app_json = json.loads(written_file(run, "/etc/leanstack/app.json"))
    assert app_json["parameters_path"] == "/leanstack/dev/app"


def test_release_command_jobs_and_cache_reach_the_config_parameter_and_the_job_alarm(
    run_dev_with: Callable[[dict[str, Any]], StackRun],
) -> None:
    run = run_dev_with(
        {
            "leanstack:app": {
                "releaseCommand": ["bin/migrate"],
                "jobs": {"nightly-report": {"schedule": "*-*-* 03:15:00", "command": ["bin/report", "--daily"]}},
            },
            "leanstack:cache": {"enabled": True},
        }
    )
    document = json.loads(run.named("app-config").inputs["insecureValue"])
    assert document["release_command"] == ["bin/migrate"]
    assert document["jobs"] == {"nightly-report": {"schedule": "*-*-* 03:15:00", "command": ["bin/report", "--daily"]}}
    assert document["cache"]["port"] == 6379 and document["cache"]["token"] == "/leanstack/dev/cache/auth-token"
    assert document["cache"]["host"] == run.outputs["cacheAddress"]
    alarm = run.named("host-job-failed").inputs
    assert (alarm["namespace"], alarm["metricName"], alarm["dimensions"]) == (
        "Leanstack/dev",
        "JobFailure",
        {"Stack": "dev"},
    )
    assert alarm["alarmActions"] == [run.outputs["alertTopicArn"]]
