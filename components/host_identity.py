"""The host's identity: its instance role and profile, allowed exactly what the host does.

Builders of ProxyHost's IAM children (parented to the ProxyHost, as every child of it) and the
pure statement lists they are made of. Scoped to the stack and with no AWS-managed policy:
AmazonSSMManagedInstanceCore reads every parameter of the account, CloudWatchAgentServerPolicy
publishes in any namespace.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from leanstack.components.app import App
from leanstack.components.backup_bucket import sealer_statements, writer_statements
from leanstack.components.base import LeanComponent, policy_output
from leanstack.components.host_inputs import HostDependencies
from leanstack.components.storage import Storage
from leanstack.config.naming import stack_prefix
from leanstack.host.agent import contract
from leanstack.host.boot import SealJob

__all__ = ["create_host_role", "host_agent_statements", "host_role_name", "host_role_statements"]

# What SSM Agent calls for Session Manager (the channels) and Run Command (ec2messages, which deploys
# and the password-rotation restart use), from AWS's "minimum permissions for SSM Agent" list; none
# of these reads data, and none supports a narrower resource than "*".
SESSION_MANAGER_ACTIONS = (
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
)
RUN_COMMAND_ACTIONS = (
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
)


def host_role_name(stack: str) -> str:
    """The host role's name is fixed so the backup bucket's policy can name it before it exists."""
    return f"{stack_prefix(stack)}-host"


def host_agent_statements(stack: str, region: str, account: pulumi.Input[str]) -> list[dict[str, Any]]:
    """What every host of `stack` needs for SSM Agent, the CloudWatch agent and its own parameters.

    Scoped to the stack: parameters under /leanstack/<stack>/, log groups under /leanstack/<stack>/,
    metrics in its own namespace. The CloudWatch agent reads its config from a file (user data), so it
    needs no parameter/AmazonCloudWatch-* read; it does not create log groups (the stack does).
    """

    def arn(service: str, resource: str) -> pulumi.Output[str]:
        return pulumi.Output.concat(f"arn:aws:{service}:{region}:", account, f":{resource}")

    return [
        {"Sid": "SessionManagerChannels", "Effect": "Allow", "Action": list(SESSION_MANAGER_ACTIONS), "Resource": "*"},
        {"Sid": "RunCommandMessages", "Effect": "Allow", "Action": list(RUN_COMMAND_ACTIONS), "Resource": "*"},
        {
            "Sid": "RegisterWithSsm",
            "Effect": "Allow",
            "Action": "ssm:UpdateInstanceInformation",
            "Resource": arn("ec2", "instance/*"),
        },
        {
            "Sid": "ReadOwnParameters",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
            "Resource": arn("ssm", f"parameter{contract.parameter_root(stack)}/*"),
        },
        {
            "Sid": "ShipStackLogs",
            "Effect": "Allow",
            # The agent (nginx's access log) and Docker's awslogs driver (the app): streams in existing groups.
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": arn("logs", f"log-group:/{contract.PROJECT}/{stack}/*"),
        },
        {
            "Sid": "PublishStackMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            # PutMetricData has no resource-level permissions; the namespace condition scopes it.
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": contract.metrics_namespace(stack)}},
        },
    ]


def host_role_statements(
    stack: str,
    region: str,
    account: pulumi.Input[str],
    files_bucket_arn: pulumi.Input[str],
    dependencies: HostDependencies,
    seal: SealJob | None,
) -> list[dict[str, Any]]:
    """Everything the host's role allows: the agents', its files, and what each dependency given needs."""
    database, backups = dependencies.database, dependencies.backups
    statements = [*host_agent_statements(stack, region, account)]
    statements.append(
        {
            "Sid": "ReadHostFiles",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": pulumi.Output.concat(files_bucket_arn, "/*"),
        }
    )
    if database is not None:
        statements.append(
            {
                "Sid": "ReadDatabasePassword",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": database.secret_arn,
            }
        )
    if backups is not None:
        statements += writer_statements(backups.bucket_arn, backups.prefix, stack)
    if backups is not None and seal is not None:
        statements += sealer_statements(backups.bucket_arn, stack)
        if seal.secret_ids:
            # GetSecretValue on them is ReadAppSecrets'; the sealer also records their names.
            statements.append(
                {
                    "Sid": "DescribeSealedSecrets",
                    "Effect": "Allow",
                    "Action": "secretsmanager:DescribeSecret",
                    "Resource": list(seal.secret_ids),
                }
            )
    if dependencies.application is not None:
        statements += app_statements(dependencies.application, contract.parameter_root(stack))
    if dependencies.storage is not None:
        statements += storage_statements(dependencies.storage)
    return statements


def storage_statements(storage: Storage) -> list[dict[str, Any]]:
    """Serve the app its own role; read (never write) the uploads' replica for the drill's files check."""
    statements: list[dict[str, Any]] = [
        {"Sid": "ServeAppRole", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": storage.app_role_arn}
    ]
    if storage.args.drill_files_sql:
        statements.append(
            {
                "Sid": "CheckFilesInReplica",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": pulumi.Output.concat(storage.replica_arn, "/*"),
            }
        )
    return statements


def app_statements(application: App, parameter_prefix: str) -> list[dict[str, Any]]:
    """Pull the app's image, ship its logs, read the secrets it is configured with."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "PullAppImages",
            "Effect": "Allow",
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            "Resource": application.repository_arn,
        },
        {
            "Sid": "LogInToEcr",
            "Effect": "Allow",
            # GetAuthorizationToken has no resource-level permissions.
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        },
    ]
    secret_arns = sorted(
        {v for v in application.args.secrets.values() if v.startswith("arn:")}
        | ({application.args.registry_secret_arn} if application.args.registry_secret_arn else set())
    )
    if secret_arns:
        statements.append(
            {
                "Sid": "ReadAppSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": secret_arns,
            }
        )
    outside = sorted(
        v for v in application.args.secrets.values() if v.startswith("/") and not v.startswith(parameter_prefix + "/")
    )
    if outside:
        # `validate` refuses these first (see leanstack.config); the host may read its own stack's only.
        raise ValueError(f"app.secrets: {outside[0]} is outside {parameter_prefix}/, which the host may read")
    return statements


def create_host_role(
    owner: LeanComponent, stack: str, statements: list[dict[str, Any]]
) -> tuple[aws.iam.Role, aws.iam.InstanceProfile]:
    """The role (`role`, transformable), its one inline policy and the instance profile hosts boot with."""
    role = aws.iam.Role(
        owner.child_name("role"),
        **owner.transformed(
            "role",
            dict(
                name=host_role_name(stack),
                description="The leanstack proxy host: SSM sessions, logs, metrics, its secrets, backups",
                assume_role_policy=policy_output(
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "ec2.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ),
                tags=owner.tags,
                opts=owner.child_opts(),
            ),
        ),
    )
    # No AWS-managed policy: AmazonSSMManagedInstanceCore and CloudWatchAgentServerPolicy allow
    # ssm:GetParameter on every parameter of the account (another stack's secrets) and
    # PutMetricData in any namespace. The statements are what those two were used for.
    aws.iam.RolePolicy(
        owner.child_name("permissions"),
        role=role.id,
        policy=policy_output(*statements),
        opts=owner.child_opts(),
    )
    profile = aws.iam.InstanceProfile(
        owner.child_name("profile"),
        name=host_role_name(stack),
        role=role.name,
        tags=owner.tags,
        opts=owner.child_opts(),
    )
    return role, profile
