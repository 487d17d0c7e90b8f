"""What every part of the deploy commands shares: the error and its exit codes, the checks of the
stack and tag given, the AWS clients, and an AWS error in one line."""

from __future__ import annotations

import re
import sys
from typing import Any, Protocol

from leanstack.host.agent.app_config import TAG

# Exit codes: the deploy failed or could not be sent; bad input (3, a host busy, is the host tool's EXIT_BUSY).
EXIT_FAILED = 1
EXIT_USAGE = 2
# The commands that call AWS need boto3, the package's `aws` extra.
NEEDS_BOTO3 = (
    f"this command calls AWS and needs boto3, which is not installed for {sys.executable}: "
    "pip install 'leanstack[aws]' (in a checkout: make)"
)
_STACK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class DeployError(Exception):
    """A one-line reason, and the exit code that goes with it."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


class SsmClient(Protocol):
    """The part of boto3's SSM client used here (a moto client in the tests)."""

    def send_command(self, **kwargs: Any) -> Any: ...
    def get_command_invocation(self, **kwargs: Any) -> Any: ...
    def get_parameter(self, **kwargs: Any) -> Any: ...
    def put_parameter(self, **kwargs: Any) -> Any: ...


class Ec2Client(Protocol):
    """The part of boto3's EC2 client used to look the hosts up."""

    def describe_instances(self, **kwargs: Any) -> Any: ...


class AutoScalingClient(Protocol):
    """The part of boto3's Auto Scaling client used to look the hosts up."""

    def describe_auto_scaling_groups(self, **kwargs: Any) -> Any: ...


def check_stack(stack: str) -> str:
    """`stack` as given, or bad input: a stack name is part of SSM paths and AWS names."""
    if not _STACK.fullmatch(stack):
        raise DeployError(f"stack {stack!r} is not allowed: letters, digits and ._- (at most 64)", EXIT_USAGE)
    return stack


def check_tag(tag: str) -> str:
    """`tag` as given, or bad input: the host tool accepts the same image tags (its TAG)."""
    if not TAG.fullmatch(tag):
        raise DeployError(
            f"tag {tag!r} is not allowed: an image tag of letters, digits and _.- "
            "(at most 128, not starting with . or -)",
            EXIT_USAGE,
        )
    return tag


def last_line(text: str) -> str:
    """The last non-empty line of `text`, at most 300 characters: an error or a command's output in one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def error_code(error: Exception) -> str:
    """The AWS error code of a botocore ClientError ('ParameterNotFound'), "" for any other error."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def describe_error(error: Exception) -> str:
    """An error in one line, for the messages that say what could not be done."""
    return last_line(str(error)) or type(error).__name__


def aws_client(service: str, region: str) -> Any:
    """A boto3 client of `service` in `region`; without boto3, bad input saying how to install it."""
    try:
        # Imported here: `python -m leanstack plan` and `validate` need no AWS SDK.
        import boto3
        from botocore.exceptions import BotoCoreError
    except ImportError:
        raise DeployError(NEEDS_BOTO3, EXIT_USAGE) from None
    try:
        return boto3.client(service, region_name=region)  # type: ignore[call-overload]
    except BotoCoreError as error:
        raise DeployError(f"cannot create an {service.upper()} client: {error}") from None


def ssm_client(region: str) -> SsmClient:
    """A boto3 SSM client in `region`."""
    client: SsmClient = aws_client("ssm", region)
    return client
