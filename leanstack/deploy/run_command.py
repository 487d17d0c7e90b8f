"""SSM Run Command: one shell command sent to one host, and followed until it ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from leanstack.deploy.common import DeployError, SsmClient, describe_error, error_code
from leanstack.host.agent import contract

# The app's tool on the host: every command the deploy and the day-2 commands send runs it.
HOST_TOOL = contract.APP_COMMAND.path
# Pull, health check (app.healthTimeout) and nginx drain (90 s) with room to spare.
DEFAULT_TIMEOUT_SECONDS = 1200
# The statuses of a command not yet ended (SSM's CommandInvocation status).
_PENDING = {"Pending", "InProgress", "Delayed", "Cancelling"}


@dataclass(frozen=True)
class RunCommand:
    """Commands sent to one stack's hosts; `ssm` is a boto3 SSM client (a moto one in tests)."""

    stack: str
    ssm: SsmClient
    poll_seconds: float
    # The command's own limit (executionTimeout) unless a command gives its own.
    timeout_seconds: float
    # Beyond the command's own timeout: SSM's delivery to the host and its reporting back.
    grace_seconds: float
    sleep: Callable[[float], None]
    say: Callable[[str], None]

    def send(
        self, instance_id: str, command: str, *, what: str, comment: str, doing: str, timeout: float | None = None
    ) -> str:
        """Send one shell command to one host through Run Command; its command id."""
        try:
            sent = self.ssm.send_command(
                InstanceIds=[instance_id],
                DocumentName="AWS-RunShellScript",
                Comment=comment[:100],
                Parameters={"commands": [command], "executionTimeout": [str(int(timeout or self.timeout_seconds))]},
                # How long SSM waits for the host's agent to pick the command up.
                TimeoutSeconds=600,
            )
        except Exception as error:
            raise DeployError(f"cannot send {what} to {instance_id}: {describe_error(error)}") from None
        command_id = str(sent["Command"]["CommandId"])
        self.say(f"{self.stack}: {doing} on {instance_id} (SSM command {command_id})")
        return command_id

    def wait(self, command_id: str, instance_id: str, timeout: float | None = None) -> tuple[str, int, str, str]:
        """Poll until the command ends: (status, exit code, stdout, stderr)."""
        timeout = timeout or self.timeout_seconds
        deadline = time.monotonic() + timeout + self.grace_seconds
        while True:
            try:
                invocation = self.ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
            except Exception as error:
                # Right after sending, SSM may not know the invocation yet.
                if error_code(error) != "InvocationDoesNotExist":
                    raise DeployError(f"cannot follow SSM command {command_id}: {describe_error(error)}") from None
                invocation = {"Status": "Pending"}
            status = str(invocation.get("Status", "Pending"))
            if status not in _PENDING:
                return (
                    status,
                    int(invocation.get("ResponseCode", -1)),
                    str(invocation.get("StandardOutputContent", "")),
                    str(invocation.get("StandardErrorContent", "")),
                )
            if time.monotonic() > deadline:
                raise DeployError(
                    f"SSM command {command_id} still {status} after "
                    f"{timeout + self.grace_seconds:.0f} s; "
                    f"see `aws ssm get-command-invocation --command-id {command_id} --instance-id {instance_id}`"
                )
            self.sleep(self.poll_seconds)
