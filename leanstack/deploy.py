"""Deploy, roll back and list the app's releases on a stack's hosts, through SSM Run Command.

    deploy STACK TAG     run `leanstack-app deploy TAG` on each host (no SSH), one host at a
                         time: it pulls <app image>:TAG, runs the release command
                         (app.releaseCommand) in it, starts it beside the serving version,
                         waits for its health path, switches nginx, stops the old one.
                         Several hosts: `leanstack-app release-command TAG` runs once on the
                         jobs host first, then each host deploys with --skip-release-command;
                         a failed release command stops the deploy before any host switches
                         and is recorded with its last lines
    rollback STACK       deploy the previous good tag by the same path
    releases STACK       the recorded history, newest last

Every deploy is recorded (tag, action, result, times, who, the SSM command id, the number of
hosts when more than one) in the SSM parameter /leanstack/<STACK>/releases: one
Standard-tier String parameter holding a compact JSON list, newest last. One parameter is
read and written whole, so the history and the choice of the previous good tag come from
one consistent read; Standard parameters are free and hold 4 KB, which keeps the newest 20
or so releases: older ones are dropped first, never the two newest that succeeded. A new
host reads the same parameter at boot and deploys the release that was serving
(`leanstack-app boot`).

The hosts, in this order: --instance-id (repeatable; the hosts switch in the order given),
$LEANSTACK_HOST_INSTANCE_ID (one id, or several separated by commas or spaces), the stack's
`hostInstanceId` output (one host; `pulumi stack output --json --stack STACK`). With
--all-hosts (as the app-deploy workflow, which has no Pulumi login, runs it), or when the
stack is scaled out (its outputs name Auto Scaling groups instead of one host), the hosts are
looked up: the running instances tagged Name=leanstack-<STACK>-host, those in an Auto Scaling
group only while InService there (not launching, in standby or terminating); web hosts
first, the one jobs host (Role=jobs, it runs the backups) last. A host named by
--instance-id or $LEANSTACK_HOST_INSTANCE_ID must carry the stack's tags (Name=
leanstack-<STACK>-host, Stack=<STACK>) or nothing is sent. The region is the stack file's
aws:region (stacks/Pulumi.<STACK>.yaml; a stack without a stack file is refused); --region,
when given, must say the same.

Several hosts switch one at a time while the load balancer keeps the others serving. The
first host that fails stops the deploy: the version never reaches the hosts after it, and
the hosts before it, which switched already, are put back on the version they served before
(the previous good tag), so the fleet is not left split between two versions. The release is
recorded as failed, saying so; if putting a host back fails too, the error says which hosts
serve which version. One line per host says what happened to it.

Hosts launched while a deploy runs: the release is recorded "succeeded" only after every
host switched, and `leanstack-app boot` deploys the newest succeeded release, so a host that
boots during the deploy takes the previous version and one that boots after it takes the new
one. When the hosts were looked up, they are looked up again once the release is recorded,
and a host that appeared meanwhile is deployed too. What remains open: a host that read the
history before the record and is not yet running and InService when the deploy looks again
keeps the previous version until the next deploy (`python -m leanstack deploy` again, or
terminate it: the group replaces it with a host that boots the new release).

A tag that is not in the stack's repository (leanstack-<STACK>-app) is refused before
anything is sent, unless the stack file names an image from elsewhere (app.image).

Images in the release history are never expired: once the history names a deploy or
rollback, and before anything is sent, its image gets a second, protected tag
`release-<tag>` in the stack's repository (leanstack-<STACK>-app; ECR's PutImage with the
same manifest), and the repository's lifecycle (components/app.py) never expires an image
carrying one. After each deploy the mark is taken off images whose tag has left the history,
so the repository does not keep every release forever. An image from another registry
(`app.image`) is not in that repository and keeps that registry's retention.

AWS permissions the deployer needs: ssm:SendCommand (the document AWS-RunShellScript and
the stack's hosts), ssm:GetCommandInvocation, ssm:GetParameter and ssm:PutParameter on
/leanstack/<STACK>/releases; ecr:BatchGetImage, ecr:PutImage, ecr:ListImages and
ecr:BatchDeleteImage on the stack's repository (the last two to unmark old releases);
ec2:DescribeInstances (a named host's tags; the lookup) and, to look the hosts up,
autoscaling:DescribeAutoScalingGroups.

Exit codes: 0 done; 1 the deploy failed (the hosts serve the previous version, unless the
error says otherwise), could not be sent or found no host; 2 bad input; 3 another deploy is
running on a host (the hosts serve the previous version). Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn, Protocol

from leanstack.config.naming import RELEASE_TAG_PREFIX, physical_name
from leanstack.host.agent import contract
from leanstack.host.agent.app_config import EXIT_BUSY, TAG
from leanstack.host.agent.blue_green import serving_tags

__all__ = [
    "HOST_TOOL",
    "RELEASES_LIMIT_BYTES",
    "DeployError",
    "Deployer",
    "Release",
    "Target",
    "deploy",
    "find_hosts",
    "find_target",
    "main",
    "releases",
    "releases_parameter",
    "rollback",
]

HOST_TOOL = contract.APP_COMMAND.path
# SSM Parameter Store's Standard tier holds values of up to 4 KB.
RELEASES_LIMIT_BYTES = 4096
# Pull, health check (app.healthTimeout) and nginx drain (90 s) with room to spare.
DEFAULT_TIMEOUT_SECONDS = 1200
# leanstack-app stops a release command after 30 minutes; the pull comes first.
RELEASE_COMMAND_TIMEOUT_SECONDS = 2100
EXIT_FAILED = 1
EXIT_USAGE = 2
# The commands that call AWS need boto3, the package's `aws` extra.
NEEDS_BOTO3 = (
    f"this command calls AWS and needs boto3, which is not installed for {sys.executable}: "
    "pip install 'leanstack[aws]' (in a checkout: make)"
)

_INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")
_STACK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_PENDING = {"Pending", "InProgress", "Delayed", "Cancelling"}
_LIST_SEPARATOR = re.compile(r"[\s,]+")
# EC2 tags every instance an Auto Scaling group launches with the group's name.
_GROUP_TAG = "aws:autoscaling:groupName"
_PROJECT_DIR = Path(__file__).resolve().parent.parent


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


@dataclass(frozen=True)
class Release:
    """One deploy or rollback as recorded. `result`: deploying, succeeded, failed, refused."""

    id: str
    tag: str
    action: str
    result: str
    started: str
    finished: str = ""
    by: str = ""
    command: str = ""
    # How many hosts it went to, when more than one (a count, not the ids: the 4 KB limit).
    hosts: str = ""
    detail: str = ""

    @staticmethod
    def from_json(raw: Any) -> Release | None:
        if not isinstance(raw, dict) or not all(isinstance(raw.get(key), str) for key in ("id", "tag", "result")):
            return None
        known = {name: str(raw[name]) for name in Release.__dataclass_fields__ if isinstance(raw.get(name), str)}
        known.setdefault("action", "deploy")
        known.setdefault("started", "")
        return Release(**known)

    def to_json(self) -> dict[str, str]:
        # Empty fields are left out: the whole history must fit in 4 KB.
        return {key: value for key, value in asdict(self).items() if value}


@dataclass(frozen=True)
class Target:
    """The hosts named (in the order they switch; none: look them up by tag) and the region."""

    instance_ids: tuple[str, ...]
    region: str

    @property
    def instance_id(self) -> str:
        """The first host named, "" when none is."""
        return self.instance_ids[0] if self.instance_ids else ""


# The protected tag a deploy adds (see protect_release) is RELEASE_TAG_PREFIX + tag; the app's ECR
# lifecycle never expires it.


def app_repository_name(stack: str) -> str:
    """The stack's own ECR repository for the app's image (created by components/app.py)."""
    return physical_name(stack, "app")


def release_tag(tag: str) -> str:
    return RELEASE_TAG_PREFIX + tag


def protect_release(ecr: Any, stack: str, tag: str) -> bool:
    """Tag the image `tag` in the stack's repository `release-<tag>` too; False when it is not there.

    Immutable tags: adding the same tag to the same image again is accepted and changes nothing.
    """
    repository = app_repository_name(stack)
    if len(release_tag(tag)) > 128:
        raise DeployError(f"tag {tag!r} is too long to mark as released: at most {128 - len(RELEASE_TAG_PREFIX)}")
    try:
        found = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except Exception as error:
        if _error_code(error) == "RepositoryNotFoundException":
            return False
        raise DeployError(f"cannot read {repository}:{tag} to mark it released: {_describe(error)}") from None
    images = found.get("images") or []
    if not images:
        return False
    image = images[0]
    options = {"imageManifestMediaType": image["imageManifestMediaType"]} if image.get("imageManifestMediaType") else {}
    try:
        ecr.put_image(
            repositoryName=repository, imageManifest=image["imageManifest"], imageTag=release_tag(tag), **options
        )
    except Exception as error:
        if _error_code(error) != "ImageAlreadyExistsException":
            raise DeployError(
                f"cannot mark {repository}:{tag} released (tag {release_tag(tag)}), so its image could expire; "
                f"nothing deployed: {_describe(error)}"
            ) from None
    return True


def prune_releases(ecr: Any, stack: str, history_tags: Callable[[], set[str]]) -> list[str]:
    """Remove the mark from released images whose tag the history no longer names; the removed tags.

    Only the tag `release-<tag>` goes (the image keeps its own tag and then falls under the
    lifecycle's count rule). Listed before the history is read, and a deploy marks its tag only
    after recording it: a mark made by a concurrent deploy is either not listed or its tag is in
    the history read, so it is never removed.
    """
    repository = app_repository_name(stack)
    marked: list[str] = []
    try:
        request: dict[str, Any] = {"repositoryName": repository, "filter": {"tagStatus": "TAGGED"}}
        while True:
            page = ecr.list_images(**request)
            marked += [
                str(i["imageTag"])
                for i in page.get("imageIds", [])
                if str(i.get("imageTag", "")).startswith(RELEASE_TAG_PREFIX)
            ]
            if not page.get("nextToken"):
                break
            request["nextToken"] = page["nextToken"]
    except Exception as error:
        if _error_code(error) == "RepositoryNotFoundException":
            return []
        raise DeployError(f"cannot list the released images of {repository}: {_describe(error)}") from None
    keep = {release_tag(tag) for tag in history_tags()}
    stale = sorted(set(marked) - keep)
    for start in range(0, len(stale), 100):  # BatchDeleteImage takes up to 100 ids
        try:
            ecr.batch_delete_image(
                repositoryName=repository, imageIds=[{"imageTag": t} for t in stale[start : start + 100]]
            )
        except Exception as error:
            raise DeployError(f"cannot unmark old releases in {repository}: {_describe(error)}") from None
    return [tag[len(RELEASE_TAG_PREFIX) :] for tag in stale]


def releases_parameter(stack: str) -> str:
    return contract.releases_parameter(stack)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_stack(stack: str) -> str:
    if not _STACK.fullmatch(stack):
        raise DeployError(f"stack {stack!r} is not allowed: letters, digits and ._- (at most 64)", EXIT_USAGE)
    return stack


def _check_tag(tag: str) -> str:
    if not TAG.fullmatch(tag):
        raise DeployError(
            f"tag {tag!r} is not allowed: an image tag of letters, digits and _.- "
            "(at most 128, not starting with . or -)",
            EXIT_USAGE,
        )
    return tag


@dataclass(frozen=True)
class StackFacts:
    """What the day-2 commands take from the stack file: its region, and whether the image comes from elsewhere."""

    region: str
    image_from_elsewhere: bool


def stack_facts(stack: str) -> StackFacts:
    """The stack file's region and image source; a stack without a (valid) stack file is bad input."""
    _check_stack(stack)
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
            f"{_describe(error)}; nothing sent"
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


def check_tag_in_registry(ecr: Any, stack: str, tag: str) -> None:
    """The image `tag` is in the stack's repository, or bad input (nothing is sent)."""
    repository = app_repository_name(stack)
    try:
        found = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except Exception as error:
        if _error_code(error) == "RepositoryNotFoundException":
            raise DeployError(
                f"tag {tag!r}: the stack's repository {repository} does not exist (has `pulumi up` run?); nothing sent",
                EXIT_USAGE,
            ) from None
        raise DeployError(f"cannot look {repository}:{tag} up: {_describe(error)}; nothing sent") from None
    if not found.get("images"):
        raise DeployError(
            f"tag {tag!r} is not in {repository}: push the image first (or name an image from elsewhere in "
            "app.image); nothing sent",
            EXIT_USAGE,
        )


def _pulumi_outputs(stack: str) -> dict[str, Any]:
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
    stack_outputs: Callable[[str], Mapping[str, Any]] = _pulumi_outputs,
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
    _check_stack(stack)
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
        raise DeployError(f"cannot look up the hosts of {stack} (ec2:DescribeInstances): {_describe(error)}") from None
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
            f"cannot look up the hosts of {stack} (autoscaling:DescribeAutoScalingGroups): {_describe(error)}"
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


def _deployed_by(env: Mapping[str, str]) -> str:
    who = env.get("LEANSTACK_DEPLOYED_BY") or env.get("GITHUB_ACTOR") or env.get("USER") or ""
    return re.sub(r"[^A-Za-z0-9@._ -]", "", who)[:40]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _fit(history: list[Release]) -> list[Release]:
    """The newest entries that fit in one Standard parameter; the two newest successes stay."""
    kept = list(history)
    while len(_encode(kept).encode()) > RELEASES_LIMIT_BYTES:
        protected = {release.id for release in [r for r in kept if r.result == "succeeded"][-2:]}
        droppable = [index for index, release in enumerate(kept) if release.id not in protected]
        if not droppable:
            break
        del kept[droppable[0]]
    return kept


def _encode(history: Sequence[Release]) -> str:
    return json.dumps([release.to_json() for release in history], separators=(",", ":"))


@dataclass
class Deployer:
    """Deploys to one stack's hosts; `ssm` is a boto3 SSM client (a moto one in tests)."""

    stack: str
    ssm: SsmClient
    # The host, or the hosts in the order they switch; none: `find_hosts` looks them up.
    instance_id: str | Sequence[str] = ()
    poll_seconds: float = 3.0
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    # Beyond the command's own timeout: SSM's delivery to the host and its reporting back.
    grace_seconds: float = 60.0
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    sleep: Callable[[float], None] = time.sleep
    say: Callable[[str], None] = lambda message: print(message, flush=True)
    # The stack's hosts as they are now (see `find_hosts`): before a deploy, and again after it.
    find_hosts: Callable[[], list[str]] | None = None
    # The ECR client (a moto one in tests) for the stack's repository: a deploy marks its image
    # released (see `protect_release`) and then unmarks those out of the history (`prune_releases`).
    # None: nothing is marked.
    registry: Any = None
    # Set per deploy: several hosts deploy with --skip-release-command (it ran once on the jobs host).
    skip_release_command: bool = False

    @property
    def parameter(self) -> str:
        return releases_parameter(self.stack)

    # ---------------------------------------------------------------- history

    def releases(self) -> list[Release]:
        try:
            value = self.ssm.get_parameter(Name=self.parameter)["Parameter"]["Value"]
        except Exception as error:
            if _error_code(error) == "ParameterNotFound":
                return []
            raise DeployError(f"cannot read {self.parameter}: {_describe(error)}") from None
        try:
            raw = json.loads(value)
        except ValueError:
            raise DeployError(f"{self.parameter} is not JSON; fix or delete it") from None
        if not isinstance(raw, list):
            raise DeployError(f"{self.parameter} is not a JSON list; fix or delete it")
        return [release for release in map(Release.from_json, raw) if release is not None]

    def _record(self, release: Release) -> None:
        # Read again right before writing: a concurrent deploy's entry is kept, not overwritten.
        history = self.releases()
        position = next((i for i, entry in enumerate(history) if entry.id == release.id), None)
        if position is None:
            history.append(release)
        else:
            history[position] = release
        try:
            self.ssm.put_parameter(
                Name=self.parameter,
                Value=_encode(_fit(history)),
                Type="String",
                Tier="Standard",
                Overwrite=True,
                Description="leanstack release history (python -m leanstack releases)",
            )
        except Exception as error:
            raise DeployError(f"cannot record the release in {self.parameter}: {_describe(error)}") from None

    def serving(self) -> list[str]:
        """The tags that served in turn; the last serves now (see leanstack-app's serving_tags)."""
        return serving_tags([release.to_json() for release in self.releases()])

    # ---------------------------------------------------------------- deploy

    def hosts(self) -> tuple[list[str], bool]:
        """The hosts in the order they switch, and whether they were looked up."""
        named = [self.instance_id] if isinstance(self.instance_id, str) else list(self.instance_id)
        if any(named):
            return [host for host in dict.fromkeys(named) if host], False
        if self.find_hosts is None:
            raise DeployError(f"no host of {self.stack} is named and none can be looked up", EXIT_USAGE)
        found = self.find_hosts()
        if not found:
            raise DeployError(
                f"found no host of {self.stack}: no running instance tagged Name={physical_name(self.stack, 'host')} "
                "that is InService in its Auto Scaling group; is the stack up, in this region?"
            )
        return found, True

    def deploy(self, tag: str, *, action: str = "deploy") -> Release:
        _check_tag(tag)
        hosts, looked_up = self.hosts()
        several = len(hosts) > 1
        self.skip_release_command = several
        # Read before anything changes: where the hosts that switch go back if a later one fails.
        served = self.serving() if several else []
        previous = served[-1] if served else None
        release = Release(
            id=uuid.uuid4().hex[:8],
            tag=tag,
            action=action,
            result="deploying",
            started=_now(),
            by=_deployed_by(self.env),
            hosts=str(len(hosts)) if several else "",
        )
        self._record(release)
        try:
            return self._deploy(release, hosts, looked_up, previous)
        finally:
            if self.registry is not None:
                self._unmark_old_releases()

    def _deploy(self, release: Release, hosts: list[str], looked_up: bool, previous: str | None) -> Release:
        tag, action, several = release.tag, release.action, len(hosts) > 1
        # Marked after the history names the tag: a concurrent deploy's unmarking keeps it (see prune_releases).
        if self.registry is not None:
            try:
                if not protect_release(self.registry, self.stack, tag):
                    self.say(
                        f"{tag} is not in {app_repository_name(self.stack)}: nothing marked (an image from elsewhere)"
                    )
            except DeployError as error:
                self._record(replace(release, result="failed", finished=_now(), detail=str(error)[:200]))
                raise
        if several:
            # Once, before the host-by-host rollout; each host then deploys with --skip-release-command.
            self._release_command(release, hosts[-1])
        # What happened to each host, for the one line per host printed at the end.
        outcomes = dict.fromkeys(hosts, "not touched")
        for index, host in enumerate(hosts):
            where = f" on {host} (host {index + 1} of {len(hosts)})" if several else ""
            switched = hosts[:index]
            try:
                command_id = self._send(host, tag)
            except DeployError as error:
                if not switched:
                    self._record(replace(release, result="failed", finished=_now(), detail=str(error)[:200]))
                    self._report(action, tag, outcomes | {host: f"not sent: {error}"})
                    raise
                outcomes[host] = f"not sent: {error}"
                self._abort(release, host, where, "not sent", str(error), False, switched, previous, outcomes)
            release = replace(release, command=command_id)
            self._record(release)
            try:
                status, code, output, errors = self._wait(command_id, host)
            except DeployError as error:
                outcomes[host] = f"unknown: {error}"
                if not switched:
                    # Still running or lost: the record stays "deploying", which no host boots.
                    self._report(action, tag, outcomes)
                    raise
                self._abort(release, host, where, "unknown", str(error), False, switched, previous, outcomes)
            if status == "Success":
                outcomes[host] = f"switched to {tag}"
                continue
            reason = _last_line(errors) or _last_line(output) or f"the SSM command ended {status}"
            refused = code == EXIT_BUSY
            verb = "refused" if refused else "failed"
            # The host tool's promise: a failed or refused deploy leaves the serving version serving.
            outcomes[host] = f"{verb}: {reason}"
            if switched:
                self._abort(release, host, where, status, reason, refused, switched, previous, outcomes)
            detail = f"{host}: {reason}" if several else reason
            self._record(replace(release, result=verb, finished=_now(), detail=detail[:200]))
            self._report(action, tag, outcomes)
            nothing = "; no host changed" if several else ""
            raise DeployError(
                f"{action} of {tag} to {self.stack} {verb}{where} ({status}): {reason}{nothing}",
                EXIT_BUSY if refused else EXIT_FAILED,
            )
        done = replace(release, result="succeeded", finished=_now())
        # Recorded before looking again: a host that boots from now on takes `tag` by itself.
        self._record(done)
        late_problem = self._catch_up(action, tag, hosts, outcomes) if looked_up else None
        self._report(action, tag, outcomes)
        if late_problem:
            raise DeployError(late_problem)
        return done

    def _abort(
        self,
        release: Release,
        host: str,
        where: str,
        status: str,
        reason: str,
        refused: bool,
        switched: list[str],
        previous: str | None,
        outcomes: dict[str, str],
    ) -> NoReturn:
        """Host `host` did not switch after `switched` did: put those back, record, raise."""
        tag, action = release.tag, release.action
        left_on_new: list[str] = []
        for done_host in reversed(switched):
            if previous is None:
                outcomes[done_host] = f"still on {tag}: no earlier release to put it back on"
                left_on_new.append(done_host)
                continue
            self.say(f"{self.stack}: putting {done_host} back on {previous}")
            problem = self._attempt(done_host, previous)
            if problem is None:
                outcomes[done_host] = f"switched to {tag}, put back on {previous}"
            else:
                outcomes[done_host] = f"still on {tag}: putting it back on {previous} failed: {problem}"
                left_on_new.append(done_host)
        self._report(action, tag, outcomes)
        verb = "refused" if refused else "failed"
        after = f"{action} of {tag} to {self.stack} {verb}{where} ({status}): {reason}"
        if left_on_new:
            on_new = " ".join(host for host in switched if host in left_on_new)
            self._record(
                replace(
                    release,
                    result="failed",
                    finished=_now(),
                    detail=f"split: {on_new} left on {tag}; {host}: {reason}"[:200],
                )
            )
            others = f"on {previous}" if previous else "on what they served before (no release had succeeded)"
            if status == "unknown":
                others += f", {host} unknown"
            raise DeployError(
                f"{after}; the fleet is SPLIT: {on_new} still on {tag}, the other hosts {others}; "
                f"deploy {previous or 'a good tag'} again",
                EXIT_FAILED,
            )
        back = f"{len(switched)} host{'s' if len(switched) > 1 else ''}"
        self._record(
            replace(
                release,
                result=verb,
                finished=_now(),
                detail=f"rolled back: {back} put back on {previous}; {host}: {reason}"[:200],
            )
        )
        untouched = len(outcomes) - len(switched) - 1
        unknown = f"; {host}'s own state is unknown" if status == "unknown" else ""
        raise DeployError(
            f"{after}; rolled back: the {back} before it {'are' if len(switched) > 1 else 'is'} back on {previous}, "
            f"{untouched} after it not touched{unknown}",
            EXIT_BUSY if refused else EXIT_FAILED,
        )

    def _catch_up(self, action: str, tag: str, hosts: list[str], outcomes: dict[str, str]) -> str | None:
        """Deploy `tag` to the hosts that appeared during the deploy; what went wrong, if anything."""
        assert self.find_hosts is not None
        try:
            late = [host for host in self.find_hosts() if host not in hosts]
        except DeployError as error:
            self.say(f"{self.stack}: warning: could not look for hosts launched during the deploy: {error}")
            return None
        missed: list[str] = []
        first_problem = ""
        for host in late:
            self.say(f"{self.stack}: {host} was launched during the {action}; deploying {tag} on it too")
            problem = self._attempt(host, tag)
            if problem is None:
                outcomes[host] = f"launched during the {action}; switched to {tag}"
            else:
                outcomes[host] = f"launched during the {action}; did not take {tag}: {problem}"
                missed.append(host)
                first_problem = first_problem or problem
        if not missed:
            return None
        return (
            f"{action} of {tag} to {self.stack} succeeded on {len(hosts)} host{'s' if len(hosts) > 1 else ''}, "
            f"but {' '.join(missed)}, launched during it, did not take it: {first_problem}; "
            "deploy again, or terminate it so that its group launches a host that boots the new release"
        )

    def _attempt(self, host: str, tag: str) -> str | None:
        """Deploy `tag` on one host outside a recorded release; None when it switched, else why not."""
        try:
            command_id = self._send(host, tag)
            status, _code, output, errors = self._wait(command_id, host)
        except DeployError as error:
            return str(error)
        if status == "Success":
            return None
        return _last_line(errors) or _last_line(output) or f"the SSM command ended {status}"

    def _report(self, action: str, tag: str, outcomes: Mapping[str, str]) -> None:
        """One line per host, when there are several (one host's story is told by the error or the result)."""
        if len(outcomes) < 2:
            return
        self.say(f"{self.stack}: {action} of {tag}, host by host:")
        for host, outcome in outcomes.items():
            self.say(f"  {host}  {outcome}")

    def _unmark_old_releases(self) -> None:
        """Best effort: an image left marked is only kept longer than needed."""
        try:
            unmarked = prune_releases(self.registry, self.stack, lambda: {r.tag for r in self.releases()})
        except DeployError as error:
            self.say(f"warning: {error}")
            return
        if unmarked:
            self.say(f"no longer in the history, may now expire: {', '.join(unmarked)}")

    def rollback(self) -> Release:
        serving = self.serving()
        if len(serving) < 2:
            now = f"only {serving[-1]} has served" if serving else "no release has succeeded yet"
            raise DeployError(f"no previous good release of {self.stack} to roll back to: {now}")
        self.say(f"rolling {self.stack} back from {serving[-1]} to {serving[-2]}")
        return self.deploy(serving[-2], action="rollback")

    def _send(self, instance_id: str, tag: str) -> str:
        # Scaled out, the release command ran once on the jobs host before the rollout (see _release_command).
        skip = " --skip-release-command" if self.skip_release_command else ""
        return self.send(
            instance_id,
            f"{HOST_TOOL} deploy{skip} {shlex.quote(tag)}",
            what="the deploy",
            comment=f"leanstack deploy {self.stack} {tag}",
            doing=f"deploying {tag}",
        )

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
            raise DeployError(f"cannot send {what} to {instance_id}: {_describe(error)}") from None
        command_id = str(sent["Command"]["CommandId"])
        self.say(f"{self.stack}: {doing} on {instance_id} (SSM command {command_id})")
        return command_id

    def _release_command(self, release: Release, host: str) -> None:
        """Scaled out: the release command once, on the jobs host, before any host switches."""
        tag, action = release.tag, release.action
        try:
            command_id = self.send(
                host,
                f"{HOST_TOOL} release-command {shlex.quote(tag)}",
                what="the release command",
                comment=f"leanstack release command {self.stack} {tag}",
                doing=f"running the release command of {tag}",
                timeout=RELEASE_COMMAND_TIMEOUT_SECONDS,
            )
            status, code, output, errors = self._wait(command_id, host, RELEASE_COMMAND_TIMEOUT_SECONDS)
        except DeployError as error:
            self._record(replace(release, result="failed", finished=_now(), detail=f"release command: {error}"[:200]))
            raise DeployError(f"{action} of {tag} to {self.stack} stopped: {error}; no host changed") from None
        if status == "Success":
            return
        reason = _last_line(errors) or _last_line(output) or f"the SSM command ended {status}"
        refused = code == EXIT_BUSY
        self._record(
            replace(
                release,
                result="refused" if refused else "failed",
                finished=_now(),
                # The host tool's one line ends with the command's last output lines.
                detail="release command: " + reason[-180:],
            )
        )
        raise DeployError(
            f"{action} of {tag} to {self.stack} stopped: the release command failed on {host} ({status}): {reason}; "
            "no host changed, the previous version serves",
            EXIT_BUSY if refused else EXIT_FAILED,
        )

    def _wait(self, command_id: str, instance_id: str, timeout: float | None = None) -> tuple[str, int, str, str]:
        """Poll until the command ends: (status, exit code, stdout, stderr)."""
        timeout = timeout or self.timeout_seconds
        deadline = time.monotonic() + timeout + self.grace_seconds
        while True:
            try:
                invocation = self.ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
            except Exception as error:
                # Right after sending, SSM may not know the invocation yet.
                if _error_code(error) != "InvocationDoesNotExist":
                    raise DeployError(f"cannot follow SSM command {command_id}: {_describe(error)}") from None
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


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _describe(error: Exception) -> str:
    return _last_line(str(error)) or type(error).__name__


def _client(service: str, region: str) -> Any:
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


def _ssm_client(region: str) -> SsmClient:
    client: SsmClient = _client("ssm", region)
    return client


def _host_finder(
    stack: str, region: str, ec2: Ec2Client | None = None, autoscaling: AutoScalingClient | None = None
) -> Callable[[], list[str]]:
    """Looks the stack's hosts up in `region`; the clients are made on first use."""

    def hosts() -> list[str]:
        return find_hosts(
            stack,
            ec2 if ec2 is not None else _client("ec2", region),
            autoscaling if autoscaling is not None else _client("autoscaling", region),
        )

    return hosts


def _deployer(
    stack: str,
    *,
    instance_id: str | Sequence[str] | None = None,
    region: str | None = None,
    need_instance: bool = True,
) -> Deployer:
    target = find_target(stack, instance_id=instance_id, region=region, need_instance=need_instance)
    if need_instance:
        check_hosts_of_stack(stack, target.instance_ids, _client("ec2", target.region))
    return Deployer(
        stack,
        _ssm_client(target.region),
        target.instance_ids,
        find_hosts=_host_finder(stack, target.region),
        registry=_client("ecr", target.region),
    )


def deploy(
    stack: str, tag: str, *, instance_id: str | Sequence[str] | None = None, region: str | None = None
) -> Release:
    """Deploy `tag` of the app image to the stack's hosts, one at a time; raises `DeployError`."""
    _check_tag(tag)
    deployer = _deployer(stack, instance_id=instance_id, region=region)
    if not stack_facts(stack).image_from_elsewhere:
        check_tag_in_registry(deployer.registry, stack, tag)
    return deployer.deploy(tag)


def rollback(stack: str, *, instance_id: str | Sequence[str] | None = None, region: str | None = None) -> Release:
    """Deploy the previous good tag; raises `DeployError` when there is none."""
    return _deployer(stack, instance_id=instance_id, region=region).rollback()


def releases(stack: str, *, region: str | None = None) -> list[Release]:
    """The recorded history of the stack, oldest first."""
    return _deployer(stack, region=region, need_instance=False).releases()


def format_releases(history: Sequence[Release]) -> str:
    if not history:
        return "no releases recorded\n"
    serving = serving_tags([release.to_json() for release in history])
    lines = []
    for release in history:
        detail = f"  {release.detail}" if release.detail else ""
        by = f"  by {release.by}" if release.by else ""
        # Recorded only when a release went to more than one host.
        hosts = f"  on {release.hosts} hosts" if release.hosts else ""
        lines.append(
            f"{release.started:20}  {release.action:8}  {release.tag:24}  {release.result:9}{hosts}{by}{detail}"
        )
    lines.append(f"serving now (as recorded): {serving[-1] if serving else 'nothing'}")
    return "\n".join(lines) + "\n"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise DeployError(message, EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    # The module's docstring is the help: it says how the hosts are found and what AWS permissions it takes.
    parser = _Parser(
        prog="python -m leanstack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, text in (
        ("deploy", "deploy TAG of the app image"),
        ("rollback", "deploy the previous good tag"),
        ("releases", "list the recorded releases"),
    ):
        sub = commands.add_parser(
            name, help=text, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        sub.add_argument("stack")
        if name == "deploy":
            sub.add_argument("tag")
        # The same host selection on every command, so what one error message suggests the others accept
        # (releases reads the stack's SSM history; the flags only say where its region comes from).
        hosts = sub.add_mutually_exclusive_group()
        hosts.add_argument(
            "--instance-id",
            action="append",
            help="a host; repeat it for several, which switch in the order given (default: the stack's "
            "hostInstanceId output, or when scaled out the hosts looked up as --all-hosts does)",
        )
        hosts.add_argument(
            "--all-hosts",
            action="store_true",
            help="every running host of the stack, looked up by its Name tag, without reading the stack's outputs",
        )
        sub.add_argument("--region", help="the stack's region; must be the stack file's aws:region (its default)")
        if name == "releases":
            sub.add_argument("--json", action="store_true", help="the raw history as JSON")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    ssm: SsmClient | None = None,
    env: Mapping[str, str] | None = None,
    stack_outputs: Callable[[str], Mapping[str, Any]] = _pulumi_outputs,
    ec2: Ec2Client | None = None,
    autoscaling: AutoScalingClient | None = None,
    ecr: Any = None,
    **deployer_options: Any,
) -> int:
    """`python -m leanstack deploy|rollback|releases ...`.

    The keyword arguments are for tests: SSM, EC2 and Auto Scaling clients (moto's), the
    environment, a stand-in for `pulumi stack output`, and `Deployer` options such as `sleep`.
    """
    environment = dict(os.environ if env is None else env)
    try:
        args = _parser().parse_args(argv)
        _check_stack(args.stack)
        if args.command == "deploy":
            _check_tag(args.tag)
        needs_host = args.command != "releases"
        target = find_target(
            args.stack,
            instance_id=getattr(args, "instance_id", None),
            region=args.region,
            env=environment,
            need_instance=needs_host,
            stack_outputs=stack_outputs,
            all_hosts=getattr(args, "all_hosts", False),
        )
        if needs_host:
            check_hosts_of_stack(
                args.stack, target.instance_ids, ec2 if ec2 is not None else _client("ec2", target.region)
            )
        client = ssm if ssm is not None else _ssm_client(target.region)
        # Tests that hand in their own SSM client and no ECR one run without the release mark (and its lookup).
        if ecr is not None or ssm is None:
            deployer_options.setdefault("registry", ecr if ecr is not None else _client("ecr", target.region))
        registry = deployer_options.get("registry")
        if args.command == "deploy" and registry is not None and not stack_facts(args.stack).image_from_elsewhere:
            check_tag_in_registry(registry, args.stack, args.tag)
        deployer = Deployer(
            args.stack,
            client,
            target.instance_ids,
            env=environment,
            find_hosts=_host_finder(args.stack, target.region, ec2, autoscaling),
            **deployer_options,
        )
        if args.command == "releases":
            history = deployer.releases()
            if args.json:
                sys.stdout.write(json.dumps([release.to_json() for release in history], indent=2) + "\n")
            else:
                sys.stdout.write(format_releases(history))
            return 0
        started = time.monotonic()
        release = deployer.deploy(args.tag) if args.command == "deploy" else deployer.rollback()
        on = f" on {release.hosts} hosts" if release.hosts else ""
        print(f"{args.stack}: {release.tag} is serving{on} ({release.action} took {time.monotonic() - started:.0f} s)")
        return 0
    except DeployError as error:
        print(f"leanstack: {error}", file=sys.stderr)
        return error.code


if __name__ == "__main__":
    sys.exit(main())
