"""App: what the stack keeps for the application the host runs.

Builds:
- an ECR repository for the app's image: immutable tags (a tag always means the same
  image, so a rollback is exact), scan on push, and a lifecycle (`lifecycle_policy`) that
  never expires an image marked `release-<tag>` (deploy and rollback mark the images the
  release history names, the serving one and every rollback target, and unmark those that
  left it), expires untagged images after a day, and beyond the newest `keep_images` images
  expires the unmarked ones (the build job pushes every main commit);
- the release history parameter `/leanstack/<stack>/releases` that `python -m leanstack
  deploy|rollback|releases` reads and writes (the stack creates it empty and then leaves
  its value alone);
- the app's config parameter `/leanstack/<stack>/app/config` (String, JSON: `env`, `secrets`
  as references, `release_command`, `jobs`, and with the cache its endpoint and the SSM name of
  its token; the contract is host/agent/app_cli.py's docstring). The host reads it at
  every container start and a timer restarts the app blue/green within minutes of a change, so
  an `app.env`, `app.secrets`, `app.releaseCommand` or `app.jobs` change updates this parameter
  only: the host is never replaced for it;
- the CloudWatch Logs group the container's output goes to, with a retention;
- with `restart_on_password_rotation`: an EventBridge rule that, when Secrets Manager
  reports a successful rotation of the database's RDS-managed secret, runs
  `leanstack-app restart` through SSM Run Command on every host tagged with the stack's
  host name, so the app picks up the new password within minutes and without a human.
  The restart is a blue/green deploy of the running tag: no request is dropped.

Cost: billed are the images stored in ECR (per GB-month; a few hundred MB cost cents) and the
log group's ingestion and storage (usage-based); EventBridge rules on AWS events, SSM Run Command
and the Standard-tier config parameter are free. Priced in `python -m leanstack plan`.

Replacement: the config parameter changes in place; renaming the repository (the stack name) creates a
new, empty one; push the
image again before deploying.

Example:
    app = App("app", AppArgs(port=3000), stack="prod")
    app.restart_on_password_rotation(host_name, database.secret_arn)
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from leanstack.components.base import LeanComponent, policy_output
from leanstack.components.cache import Cache
from leanstack.config import AppArgs
from leanstack.config.naming import RELEASE_TAG_PREFIX, app_config_parameter, stack_prefix
from leanstack.host.agent import contract

__all__ = ["App", "AppArgs"]

RESTART_COMMAND = f"{contract.APP_COMMAND.path} restart"
# More than any deploy history could ever hold; ECR needs a number for the rule that protects released images.
RELEASED_KEPT = 10000


def lifecycle_policy(keep_images: int) -> dict[str, Any]:
    """The repository's lifecycle: released images are never expired, builds beyond the newest N are.

    ECR's rule semantics (AWS's "lifecycle policy evaluation rules"): rules apply in rulePriority
    order, and an image matching the tag filter of a higher-priority rule cannot be expired by a
    lower-priority one (it still counts there). Rule 1 selects every image a deploy tagged
    `release-*` (leanstack.deploy.protect_release) and keeps RELEASED_KEPT of them, so no
    released image (the serving one, every rollback target) reaches rules 2 and 3; rule 2 expires
    untagged images after a day; rule 3 keeps the newest `keep_images` of the rest.
    """
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"Never expire released images (tagged {RELEASE_TAG_PREFIX}* by deploy)",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": [f"{RELEASE_TAG_PREFIX}*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": RELEASED_KEPT,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": "Expire untagged images after a day",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 3,
                "description": f"Beyond the newest {keep_images} images, expire those not marked released",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep_images},
                "action": {"type": "expire"},
            },
        ]
    }


def app_config_document(args: AppArgs, cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON of `<path>/config`: what the host's leanstack-app reads (no secret values, only references).

    `cache`: {"host", "port", "token"} (the token as the SSM name of the cache's auth token).
    """
    document: dict[str, Any] = {"env": dict(args.env), "secrets": dict(args.secrets)}
    if args.release_command:
        document["release_command"] = list(args.release_command)
    if args.jobs:
        document["jobs"] = {
            name: {"schedule": job.schedule, "command": list(job.command)} for name, job in sorted(args.jobs.items())
        }
    if args.processes:
        # Workers: the host's leanstack-app runs `count` containers of each, after the release command.
        document["processes"] = {
            name: {"command": list(p.command), "count": p.count, "stop_timeout_seconds": p.stop_timeout_seconds}
            for name, p in sorted(args.processes.items())
        }
    if cache is not None:
        document["cache"] = cache
    return document


class App(LeanComponent):
    repository_url: pulumi.Output[str]
    repository_arn: pulumi.Output[str]
    image: pulumi.Output[str]
    releases_parameter: str
    log_group_name: str
    parameters_path: str
    config_parameter: aws.ssm.Parameter

    def __init__(
        self,
        name: str,
        args: AppArgs,
        *,
        stack: str,
        region: str,
        cache: Cache | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, opts)
        self.args, self.stack, self.region = args, stack, region
        self.releases_parameter = contract.releases_parameter(stack)
        self.log_group_name = contract.app_log_group(stack)
        self.parameters_path = contract.app_parameters_path(stack)
        self.repository = repository = self._create_repository()
        self._create_release_history()
        self.config_parameter = self._create_config_parameter(cache)
        self.log_group = aws.cloudwatch.LogGroup(
            self.child_name("logs"),
            name=self.log_group_name,
            retention_in_days=30,
            tags=self.tags,
            opts=self.child_opts(),
        )
        self.repository_url = repository.repository_url
        self.repository_arn = repository.arn
        # The image the host runs: the configured one, or this stack's repository.
        self.image = pulumi.Output.from_input(args.image) if args.image else repository.repository_url
        self.register_outputs({"repository_url": self.repository_url, "image": self.image})

    def _create_repository(self) -> aws.ecr.Repository:
        repository = aws.ecr.Repository(
            self.child_name("images"),
            name=f"{stack_prefix(self.stack)}-app",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")],
            tags=self.tags,
            opts=self.child_opts(),
        )
        aws.ecr.LifecyclePolicy(
            self.child_name("keep-recent"),
            repository=repository.name,
            policy=json.dumps(lifecycle_policy(self.args.keep_images), sort_keys=True),
            opts=self.child_opts(),
        )
        return repository

    def _create_release_history(self) -> None:
        aws.ssm.Parameter(
            self.child_name("releases"),
            name=self.releases_parameter,
            type="String",
            # Not a secret: insecure_value keeps it readable in plans and diffs.
            insecure_value="[]",
            description="leanstack deploy history (tag, time, result); written by `python -m leanstack deploy`",
            tags=self.tags,
            # The deploy command owns the value; `pulumi up` must not reset the history.
            opts=self.child_opts(ignore_changes=["insecureValue"]),
        )

    def _create_config_parameter(self, cache: Cache | None) -> aws.ssm.Parameter:
        if cache is None:
            value: pulumi.Input[str] = json.dumps(app_config_document(self.args), sort_keys=True)
        else:
            endpoint = {"port": cache.port, "token": cache.auth_token_parameter}
            value = cache.address.apply(
                lambda address: json.dumps(
                    app_config_document(self.args, {**endpoint, "host": address}), sort_keys=True
                )
            )
        return aws.ssm.Parameter(
            self.child_name("config"),
            name=app_config_parameter(self.stack),
            type="String",
            # References only, never a secret's value: insecure_value keeps the change readable in diffs.
            insecure_value=value,
            description="leanstack app config (env, secret references, release command, jobs); read by the host "
            "at every container start",
            tags=self.tags,
            opts=self.child_opts(),
        )

    def restart_on_password_rotation(self, host_name: str, secret_arn: pulumi.Input[str]) -> aws.cloudwatch.EventRule:
        """Restart the app on every host tagged Name=`host_name` when RDS rotates the database password.

        Targeting the hosts by tag rather than by instance id means the same rule reaches a
        replaced host, and every host of a scaled-out group (each restarts its own app blue/green).
        """
        rule = aws.cloudwatch.EventRule(
            self.child_name("password-rotated"),
            name=f"{stack_prefix(self.stack)}-password-rotated",
            description="RDS rotated the database password: restart the app so it reads the new one",
            event_pattern=pulumi.Output.json_dumps(
                {
                    "source": ["aws.secretsmanager"],
                    "detail-type": ["AWS Service Event via CloudTrail"],
                    "detail": {
                        "eventSource": ["secretsmanager.amazonaws.com"],
                        "eventName": ["RotationSucceeded"],
                        "additionalEventData": {"SecretId": [secret_arn]},
                    },
                }
            ),
            tags=self.tags,
            opts=self.child_opts(),
        )
        document = f"arn:aws:ssm:{self.region}::document/AWS-RunShellScript"
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        role = aws.iam.Role(
            self.child_name("restarter"),
            name=f"{stack_prefix(self.stack)}-app-restarter",
            description="EventBridge: run `leanstack-app restart` on the hosts after a password rotation",
            assume_role_policy=policy_output(
                {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ),
            tags=self.tags,
            opts=self.child_opts(),
        )
        aws.iam.RolePolicy(
            self.child_name("restarter"),
            role=role.id,
            policy=policy_output(
                {"Sid": "RunShellScriptDocument", "Effect": "Allow", "Action": "ssm:SendCommand", "Resource": document},
                {
                    "Sid": "OnTheStacksHostsOnly",
                    "Effect": "Allow",
                    "Action": "ssm:SendCommand",
                    "Resource": pulumi.Output.concat("arn:aws:ec2:", self.region, ":", account, ":instance/*"),
                    "Condition": {"StringEquals": {"aws:ResourceTag/Name": host_name}},
                },
            ),
            opts=self.child_opts(),
        )
        aws.cloudwatch.EventTarget(
            self.child_name("restart-app"),
            rule=rule.name,
            arn=document,
            role_arn=role.arn,
            run_command_targets=[aws.cloudwatch.EventTargetRunCommandTargetArgs(key="tag:Name", values=[host_name])],
            input=json.dumps({"commands": [RESTART_COMMAND]}),
            opts=self.child_opts(),
        )
        return rule
