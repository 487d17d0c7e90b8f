"""Deploy, roll back and list the app's releases on a stack's hosts, through SSM Run Command.

`python -m leanstack deploy --help` (the docstring of `leanstack.deploy.cli`) says what the
commands do and which AWS permissions they take. The modules, by concern: `hosts` (host selection
and the stack's region), `rollout` (`Deployer`: the hosts switched one at a time, put back when a
later one fails), `history` (the release history in SSM), `registry` (the image tag checked and
released images marked in ECR), `run_command` (one command sent to one host and followed),
`common` (the error, the input checks, the AWS clients) and `cli` (the commands' arguments).
"""

from __future__ import annotations

from leanstack.deploy.cli import deploy, main, releases, rollback
from leanstack.deploy.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    NEEDS_BOTO3,
    AutoScalingClient,
    DeployError,
    Ec2Client,
    SsmClient,
    aws_client,
    describe_error,
    error_code,
    last_line,
)
from leanstack.deploy.history import RELEASES_LIMIT_BYTES, Release, ReleaseHistory, format_releases, releases_parameter
from leanstack.deploy.hosts import (
    StackFacts,
    Target,
    check_hosts_of_stack,
    find_hosts,
    find_target,
    host_finder,
    pulumi_outputs,
    stack_facts,
)
from leanstack.deploy.registry import (
    app_repository_name,
    check_tag_in_registry,
    protect_release,
    prune_releases,
    release_tag,
)
from leanstack.deploy.rollout import Deployer
from leanstack.deploy.run_command import HOST_TOOL, RunCommand

__all__ = [
    "EXIT_FAILED",
    "EXIT_USAGE",
    "HOST_TOOL",
    "NEEDS_BOTO3",
    "RELEASES_LIMIT_BYTES",
    "AutoScalingClient",
    "DeployError",
    "Deployer",
    "Ec2Client",
    "Release",
    "ReleaseHistory",
    "RunCommand",
    "SsmClient",
    "StackFacts",
    "Target",
    "app_repository_name",
    "aws_client",
    "check_hosts_of_stack",
    "check_tag_in_registry",
    "deploy",
    "describe_error",
    "error_code",
    "find_hosts",
    "find_target",
    "format_releases",
    "host_finder",
    "last_line",
    "main",
    "protect_release",
    "prune_releases",
    "pulumi_outputs",
    "release_tag",
    "releases",
    "releases_parameter",
    "rollback",
    "stack_facts",
]
