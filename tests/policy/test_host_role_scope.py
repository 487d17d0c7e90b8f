"""Issue 15, finding 1: a host's role reads, logs and publishes metrics for its own stack only.

Evaluated offline with tests/policy/iam_evaluator.py over every policy the role has: its inline
policies and any AWS-managed policy attached (there must be none: AmazonSSMManagedInstanceCore
allowed ssm:GetParameter on "*", so a dev host could read prod's origin key and app secrets).
"""

from __future__ import annotations

from typing import Any

import pytest

from leanstack.mocks import MOCK_ACCOUNT, StackRun
from tests.policy.helpers import host_role_documents
from tests.policy.iam_evaluator import allowed, decide

READS = ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath")
# The statement of AmazonSSMManagedInstanceCore that finding 1 is about (AWS's published document).
MANAGED_INSTANCE_CORE_READ = {
    "Effect": "Allow",
    "Action": ["ssm:DescribeAssociation", "ssm:GetDocument", "ssm:GetParameter", "ssm:GetParameters"],
    "Resource": "*",
}


def parameter(region: str, name: str) -> str:
    return f"arn:aws:ssm:{region}:{MOCK_ACCOUNT}:parameter{name}"


def test_a_dev_host_cannot_read_a_prod_parameter_but_reads_its_own(dev: StackRun, prod: StackRun) -> None:
    documents = host_role_documents(dev)
    for region in {dev.outputs["region"], prod.outputs["region"]}:
        for name in ("/leanstack/prod/tls/origin-key", "/leanstack/prod/releases", "/leanstack/prod/app/stripe"):
            for action in READS:
                assert decide(documents, action, parameter(region, name)) == "ImplicitDeny", (action, name)
        # A stack whose name starts with dev's is another stack too.
        assert not allowed(documents, "ssm:GetParameter", parameter(region, "/leanstack/dev-2/tls/origin-key"))
    own = dev.outputs["region"]
    for action in READS:
        assert allowed(documents, action, parameter(own, "/leanstack/dev/tls/origin-key")), action


def test_every_host_role_reads_parameters_under_its_own_path_only(
    dev: StackRun, prod: StackRun, scale: StackRun
) -> None:
    for run in (dev, prod, scale):
        stack, region = run.stack, run.outputs["region"]
        documents = host_role_documents(run)
        for action in READS:
            assert allowed(documents, action, parameter(region, f"/leanstack/{stack}/x"))
            for name in ("/other/x", "/leanstack/x", "/AmazonCloudWatch-linux", f"/leanstack/{stack}x/y"):
                assert not allowed(documents, action, parameter(region, name)), (stack, action, name)


def test_the_managed_policy_it_replaces_would_have_allowed_the_read(dev: StackRun) -> None:
    """The evaluator is not vacuous: with AmazonSSMManagedInstanceCore's statement, prod's key is readable."""
    documents: list[str | dict[str, Any]] = [*host_role_documents(dev), {"Statement": [MANAGED_INSTANCE_CORE_READ]}]
    assert allowed(documents, "ssm:GetParameter", parameter(dev.outputs["region"], "/leanstack/prod/tls/origin-key"))


def test_a_dev_host_publishes_metrics_and_logs_for_dev_only(dev: StackRun) -> None:
    documents = host_role_documents(dev)
    region = dev.outputs["region"]
    put = "cloudwatch:PutMetricData"
    assert allowed(documents, put, "*", {"cloudwatch:namespace": "Leanstack/dev"})
    # Prod's backup alarms watch Leanstack/prod: a dev host must not be able to feed them.
    assert not allowed(documents, put, "*", {"cloudwatch:namespace": "Leanstack/prod"})
    assert not allowed(documents, put, "*", {"cloudwatch:namespace": "Leanstack"})
    assert not allowed(documents, put, "*")
    group = f"arn:aws:logs:{region}:{MOCK_ACCOUNT}:log-group:"
    assert allowed(documents, "logs:PutLogEvents", group + "/leanstack/dev/nginx/access:log-stream:i-1")
    assert not allowed(documents, "logs:PutLogEvents", group + "/leanstack/prod/nginx/access:log-stream:i-1")
    assert not allowed(documents, "logs:CreateLogGroup", group + "/leanstack/dev/new")


def test_the_evaluator_follows_deny_notaction_and_conditions() -> None:
    documents: list[Any] = [
        {
            "Statement": [
                {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/*"},
                {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/secret/*"},
                {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:sqs:*:1:q?"},
                {
                    "Effect": "Allow",
                    "Action": "sns:Publish",
                    "Resource": "*",
                    "Condition": {"StringLike": {"aws:SourceArn": "arn:aws:events:*"}},
                },
            ]
        }
    ]
    assert decide(documents, "S3:GETOBJECT", "arn:aws:s3:::b/k") == "Allow"
    assert decide(documents, "s3:GetObject", "arn:aws:s3:::b/secret/k") == "ExplicitDeny"
    assert decide(documents, "s3:PutObject", "arn:aws:s3:::b/k") == "ImplicitDeny"
    assert decide(documents, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q1") == "Allow"
    assert decide(documents, "iam:PassRole", "arn:aws:sqs:us-east-1:1:q1") == "ImplicitDeny"
    assert decide(documents, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q12") == "ImplicitDeny"
    assert decide(documents, "sns:Publish", "x", {"aws:sourcearn": "arn:aws:events:r"}) == "Allow"
    assert decide(documents, "sns:Publish", "x") == "ImplicitDeny"
    with pytest.raises(NotImplementedError):
        decide(
            [{"Statement": [{**MANAGED_INSTANCE_CORE_READ, "Condition": {"DateLessThan": {"x": "1"}}}]}],
            "ssm:GetParameter",
            "*",
        )


def test_validate_refuses_an_app_secret_outside_the_stacks_parameter_path() -> None:
    from leanstack.config import ConfigError, load_stack_config
    from tests.conftest import merged, read_stack_config

    raw = merged(read_stack_config("dev"), {"leanstack:app": {"secrets": {"STRIPE_KEY": "/leanstack/prod/app/stripe"}}})
    with pytest.raises(
        ConfigError, match=r"^leanstack:app\.secrets\.STRIPE_KEY: got .*expected an SSM parameter under /leanstack/dev/"
    ):
        load_stack_config(raw, "dev")


def test_every_host_writes_backups_under_its_own_stacks_folder_only(
    dev: StackRun, prod: StackRun, scale: StackRun
) -> None:
    # Issue 21 item 3: a host wrote, and the restore read, whatever sat under the prefix.
    for run in (dev, prod, scale):
        stack, documents = run.stack, host_role_documents(run)
        objects = f"arn:aws:s3:::{run.outputs['backupBucket']}/{run.outputs['backupPrefix']}"
        for action in ("s3:PutObject", "s3:AbortMultipartUpload"):
            assert allowed(documents, action, f"{objects}/{stack}/app/20260101T000000Z.dump"), (stack, action)
            for other in ("prod-recovery", f"{stack}x", "_drills", "app"):
                key = f"{objects}/{other}/20260101T000000Z.dump"
                assert not allowed(documents, action, key), (stack, action, key)
        # Reading the whole prefix: the old layout, and the old stack's dumps on a recovery stack.
        assert allowed(documents, "s3:GetObject", f"{objects}/app/20260101T000000Z.dump")
        assert not allowed(documents, "s3:DeleteObject", f"{objects}/{stack}/app/20260101T000000Z.dump")
