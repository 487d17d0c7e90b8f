"""Host selection: the hosts a command goes to, in the order they switch, and the stack's region.

Hosts named (--instance-id, $LEANSTACK_HOST_INSTANCE_ID) must carry the stack's tags; otherwise
the stack's `hostInstanceId` output names its one host, or the hosts are looked up by their Name
tag, those in an Auto Scaling group only while InService there, the jobs host last.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leanstack.config.naming import physical_name
from leanstack.deploy.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    AutoScalingClient,
    DeployError,
    Ec2Client,
    aws_client,
    check_stack,
    describe_error,
)

_INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")
_LIST_SEPARATOR = re.compile(r"[\s,]+")
# EC2 tags every instance an Auto Scaling group launches with the group's name.
_GROUP_TAG = "aws:autoscaling:groupName"
# Where `pulumi stack output` runs: the checkout (leanstack/deploy/ is two levels below it).
_PROJECT_DIR = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Target:
    """The hosts named (in the order they switch; none: look them up by tag) and the region."""

    instance_ids: tuple[str, ...]
    region: str

    @property
    def instance_id(self) -> str:
        """The first host named, "" when none is."""
        return self.instance_ids[0] if self.instance_ids else ""


@dataclass(frozen=True)
class StackFacts:
    """What the day-2 commands take from the stack file: its region, and whether the image comes from elsewhere."""

    region: str
    image_from_elsewhere: bool


def stack_facts(stack: str) -> StackFacts:
    """The stack file's region and image source; a stack without a (valid) stack file is bad input."""
    check_stack(stack)
    # Imported here: the stack file reader brings the config model, which `releases --help` does not need.
    from leanstack.config import ConfigError, load_stack_config
    from leanstack.mocks import StackFileError, read_stack_config

    try:
        config = load_stack_config(read_stack_config(stack), stack)
    except StackFileError as error:
        raise DeployError(str(error), EXIT_USAGE) from None
    except ConfigError as error:
        raise DeployError(f"stacks/Pulumi.{stack}.yaml: {error}", EXIT_USAGE) from None
    return StackFacts(region=config.region, image_from_elsewhere=bool(config.app.image))


def check_region(stack: str, given: str | None, facts: StackFacts) -> str:
    """The stack's region; `given` (--region) must be the same."""
    if given is not None and given != facts.region:
        raise DeployError(
            f"--region {given}: stack {stack} is in {facts.region} (aws:region in stacks/Pulumi.{stack}.yaml); "
            "leave --region out or give that region",
            EXIT_USAGE,
        )
    return facts.region


def check_hosts_of_stack(stack: str, instance_ids: Sequence[str], ec2: Ec2Client) -> None:
    """Every named host carries the stack's tags (Name=leanstack-<stack>-host, Stack=<stack>), or bad input."""
    if not instance_ids:
        return
    name = physical_name(stack, "host")
    found: dict[str, dict[str, str]] = {}
    try:
        page = ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": list(instance_ids)}])
        for reservation in page.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                found[str(instance["InstanceId"])] = _tags(instance)
    except Exception as error:
        raise DeployError(
            f"cannot check that {', '.join(instance_ids)} is a host of {stack} (ec2:DescribeInstances): "
            f"{describe_error(error)}; nothing sent"
        ) from None
    for host in instance_ids:
        tags = found.get(host)
        if tags is None:
            raise DeployError(
                f"instance {host} (--instance-id or LEANSTACK_HOST_INSTANCE_ID) is not found in the stack's region; "
                "nothing sent",
                EXIT_USAGE,
            )
        if tags.get("Name") != name or tags.get("Stack") != stack:
            raise DeployError(
                f"instance {host} (--instance-id or LEANSTACK_HOST_INSTANCE_ID) is not a host of stack {stack}: "
                f"tagged Name={tags.get('Name', '')}, Stack={tags.get('Stack', '')}; expected Name={name}, "
                f"Stack={stack}; nothing sent",
                EXIT_USAGE,
            )


def pulumi_outputs(stack: str) -> dict[str, Any]:
    try:
        done = subprocess.run(
            ["pulumi", "stack", "output", "--json", "--show-secrets=false", "--stack", stack],
            cwd=_PROJECT_DIR,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except FileNotFoundError:
        raise DeployError(
            "cannot find the host: pulumi is not installed; "
            "pass --instance-id or --all-hosts, or set LEANSTACK_HOST_INSTANCE_ID"
        ) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise DeployError(
            f"cannot read stack {stack}'s outputs: {last}; pass --instance-id or set it in the environment"
        )
    try:
        outputs = json.loads(done.stdout)
    except ValueError:
        raise DeployError(f"`pulumi stack output --json --stack {stack}` printed no JSON") from None
    return outputs if isinstance(outputs, dict) else {}


def find_target(
    stack: str,
    *,
    instance_id: str | Sequence[str] | None = None,
    region: str | None = None,
    env: Mapping[str, str] | None = None,
    stack_outputs: Callable[[str], Mapping[str, Any]] = pulumi_outputs,
    need_instance: bool = True,
    all_hosts: bool = False,
) -> Target:
    """The hosts named and the region; no host named means: look them up (`find_hosts`).

    No host is named either unless `need_instance`, or with `all_hosts`. The region is the stack
    file's; the stack's outputs are read only when no host is named and none is to be looked up.
    """
    env = os.environ if env is None else env
    region = check_region(stack, region, stack_facts(stack))
    named: list[str] | None = []
    if need_instance and not all_hosts:
        given = [instance_id] if isinstance(instance_id, str) else list(instance_id or [])
        if not any(given):
            given = _LIST_SEPARATOR.split(env.get("LEANSTACK_HOST_INSTANCE_ID", "").strip())
        named = [_check_instance_id(host, EXIT_USAGE) for host in dict.fromkeys(given) if host] or None
    outputs: Mapping[str, Any] = {}
    if named is None:
        outputs = stack_outputs(stack)
    if named is None:
        host = outputs.get("hostInstanceId")
        if isinstance(host, str):
            named = [_check_instance_id(host, EXIT_FAILED)]
        elif "hostWebGroup" in outputs:
            named = []
        else:
            raise DeployError(
                f"stack {stack} has no hostInstanceId output (one host) nor hostWebGroup output (scaled out); "
                "has `pulumi up` run for it?"
            )
    return Target(tuple(named), region)


def _check_instance_id(instance_id: str, code: int) -> str:
    if not _INSTANCE_ID.fullmatch(instance_id):
        raise DeployError(
            f"instance id {instance_id!r} is not allowed: an EC2 instance id such as i-0123456789abcdef0", code
        )
    return instance_id


def find_hosts(stack: str, ec2: Ec2Client, autoscaling: AutoScalingClient) -> list[str]:
    """The stack's hosts that can take a deploy, in the order they switch.

    Running instances tagged Name=leanstack-<stack>-host; one in an Auto Scaling group only
    while InService there: a launching host boots the recorded release by itself, and one in
    standby or terminating is leaving. Web hosts first, by launch time; the jobs host last.
    """
    check_stack(stack)
    instances: list[Mapping[str, Any]] = []
    request: dict[str, Any] = {
        "Filters": [
            {"Name": "tag:Name", "Values": [physical_name(stack, "host")]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
    }
    try:
        while True:
            page = ec2.describe_instances(**request)
            for reservation in page.get("Reservations", []):
                instances.extend(reservation.get("Instances", []))
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
    except Exception as error:
        raise DeployError(
            f"cannot look up the hosts of {stack} (ec2:DescribeInstances): {describe_error(error)}"
        ) from None
    tags = {str(instance["InstanceId"]): _tags(instance) for instance in instances}
    groups = sorted({group for host_tags in tags.values() if (group := host_tags.get(_GROUP_TAG))})
    in_service: set[str] = set()
    try:
        # At most 100 names per call; a stack has two groups.
        for first in range(0, len(groups), 100):
            described: dict[str, Any] = {"AutoScalingGroupNames": groups[first : first + 100]}
            while True:
                page = autoscaling.describe_auto_scaling_groups(**described)
                for group in page.get("AutoScalingGroups", []):
                    in_service.update(
                        str(member["InstanceId"])
                        for member in group.get("Instances", [])
                        if member.get("LifecycleState") == "InService"
                    )
                if not page.get("NextToken"):
                    break
                described["NextToken"] = page["NextToken"]
    except Exception as error:
        raise DeployError(
            f"cannot look up the hosts of {stack} (autoscaling:DescribeAutoScalingGroups): {describe_error(error)}"
        ) from None
    ready = [
        instance
        for instance in instances
        if _GROUP_TAG not in tags[str(instance["InstanceId"])] or str(instance["InstanceId"]) in in_service
    ]
    ready.sort(
        key=lambda instance: (
            tags[str(instance["InstanceId"])].get("Role") == "jobs",
            str(instance.get("LaunchTime", "")),
            str(instance["InstanceId"]),
        )
    )
    return [str(instance["InstanceId"]) for instance in ready]


def _tags(instance: Mapping[str, Any]) -> dict[str, str]:
    return {str(tag.get("Key")): str(tag.get("Value")) for tag in instance.get("Tags", [])}


def host_finder(
    stack: str, region: str, ec2: Ec2Client | None = None, autoscaling: AutoScalingClient | None = None
) -> Callable[[], list[str]]:
    """Looks the stack's hosts up in `region`; the clients are made on first use."""

    def hosts() -> list[str]:
        return find_hosts(
            stack,
            ec2 if ec2 is not None else aws_client("ec2", region),
            autoscaling if autoscaling is not None else aws_client("autoscaling", region),
        )

    return hosts


def hosts_to_deploy(
    stack: str, instance_id: str | Sequence[str], find: Callable[[], list[str]] | None
) -> tuple[list[str], bool]:
    """The hosts in the order they switch, and whether they were looked up (with `find`, when none is named)."""
    named = [instance_id] if isinstance(instance_id, str) else list(instance_id)
    if any(named):
        return [host for host in dict.fromkeys(named) if host], False
    if find is None:
        raise DeployError(f"no host of {stack} is named and none can be looked up", EXIT_USAGE)
    found = find()
    if not found:
        raise DeployError(
            f"found no host of {stack}: no running instance tagged Name={physical_name(stack, 'host')} "
            "that is InService in its Auto Scaling group; is the stack up, in this region?"
        )
    return found, True
