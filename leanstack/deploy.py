"""Deploy, roll back and list the app's releases on a stack's host, through SSM Run Command.

    deploy STACK TAG     run `leanstack-app deploy TAG` on the host (no SSH): it pulls
                         <app image>:TAG, starts it beside the serving version, waits for its
                         health path, switches nginx, stops the old one
    rollback STACK       deploy the previous good tag by the same path
    releases STACK       the recorded history, newest last

Every deploy is recorded (tag, action, result, times, who, the SSM command id) in the SSM
parameter /leanstack/<STACK>/releases: one Standard-tier String parameter holding a compact
JSON list, newest last. One parameter is read and written whole, so the history and the
choice of the previous good tag come from one consistent read; Standard parameters are
free and hold 4 KB, which keeps the newest 20 or so releases: older ones are dropped first,
never the two newest that succeeded. A new host reads the same parameter at boot and
deploys the release that was serving (`leanstack-app boot`).

The host is found, in this order, from --instance-id, $LEANSTACK_HOST_INSTANCE_ID, or the
stack's `hostInstanceId` output (`pulumi stack output --json --stack STACK`); the region
from --region, the stack's `region` output, $AWS_REGION or $AWS_DEFAULT_REGION.

Exit codes: 0 done; 1 the deploy failed (the host still serves the previous version) or
could not be sent; 2 bad input; 3 another deploy is running on the host. Errors are one
line on stderr.
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
from typing import Any, Protocol

from host.deploy.leanstack_app import EXIT_BUSY, TAG, serving_tags

__all__ = [
    "HOST_TOOL",
    "RELEASES_LIMIT_BYTES",
    "DeployError",
    "Deployer",
    "Release",
    "Target",
    "deploy",
    "find_target",
    "main",
    "releases",
    "releases_parameter",
    "rollback",
]

HOST_TOOL = "/usr/local/sbin/leanstack-app"
# SSM Parameter Store's Standard tier holds values of up to 4 KB.
RELEASES_LIMIT_BYTES = 4096
# Pull, health check (app.healthTimeout) and nginx drain (90 s) with room to spare.
DEFAULT_TIMEOUT_SECONDS = 1200
EXIT_FAILED = 1
EXIT_USAGE = 2

_INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")
_STACK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
_PENDING = {"Pending", "InProgress", "Delayed", "Cancelling"}
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
    instance_id: str
    region: str


def releases_parameter(stack: str) -> str:
    return f"/leanstack/{stack}/releases"


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
            "cannot find the host: pulumi is not installed; pass --instance-id or set LEANSTACK_HOST_INSTANCE_ID"
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
    instance_id: str | None = None,
    region: str | None = None,
    env: Mapping[str, str] | None = None,
    stack_outputs: Callable[[str], Mapping[str, Any]] = _pulumi_outputs,
    need_instance: bool = True,
) -> Target:
    """The host's instance id ("" unless `need_instance`) and region.

    The stack's outputs are read only when the arguments and environment do not say.
    """
    env = os.environ if env is None else env
    _check_stack(stack)
    found_id = (instance_id or env.get("LEANSTACK_HOST_INSTANCE_ID") or None) if need_instance else ""
    found_region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
    outputs: Mapping[str, Any] = {}
    if found_id is None or found_region is None:
        outputs = stack_outputs(stack)
    if found_id is None:
        found_id = outputs.get("hostInstanceId")
        if not isinstance(found_id, str):
            raise DeployError(f"stack {stack} has no hostInstanceId output; has `pulumi up` run for it?")
    found_region = found_region or outputs.get("region")
    if need_instance and not _INSTANCE_ID.fullmatch(found_id):
        raise DeployError(f"instance id {found_id!r} is not allowed: an EC2 instance id such as i-0123456789abcdef0")
    if not isinstance(found_region, str) or not _REGION.fullmatch(found_region):
        raise DeployError(f"region {found_region!r} is not allowed: pass --region or set AWS_REGION (e.g. eu-west-1)")
    return Target(found_id, found_region)


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
    """Deploys to one stack's host; `ssm` is a boto3 SSM client (a moto one in tests)."""

    stack: str
    ssm: SsmClient
    instance_id: str
    poll_seconds: float = 3.0
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    # Beyond the command's own timeout: SSM's delivery to the host and its reporting back.
    grace_seconds: float = 60.0
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    sleep: Callable[[float], None] = time.sleep
    say: Callable[[str], None] = lambda message: print(message, flush=True)

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

    def deploy(self, tag: str, *, action: str = "deploy") -> Release:
        _check_tag(tag)
        release = Release(
            id=uuid.uuid4().hex[:8],
            tag=tag,
            action=action,
            result="deploying",
            started=_now(),
            by=_deployed_by(self.env),
        )
        self._record(release)
        try:
            command_id = self._send(tag)
        except DeployError as error:
            self._record(replace(release, result="failed", finished=_now(), detail=str(error)[:200]))
            raise
        release = replace(release, command=command_id)
        self._record(release)
        status, code, output, errors = self._wait(command_id)
        if status == "Success":
            done = replace(release, result="succeeded", finished=_now())
            self._record(done)
            return done
        reason = _last_line(errors) or _last_line(output) or f"the SSM command ended {status}"
        refused = code == EXIT_BUSY
        self._record(replace(release, result="refused" if refused else "failed", finished=_now(), detail=reason[:200]))
        raise DeployError(
            f"{action} of {tag} to {self.stack} {'refused' if refused else 'failed'} ({status}): {reason}",
            EXIT_BUSY if refused else EXIT_FAILED,
        )

    def rollback(self) -> Release:
        serving = self.serving()
        if len(serving) < 2:
            now = f"only {serving[-1]} has served" if serving else "no release has succeeded yet"
            raise DeployError(f"no previous good release of {self.stack} to roll back to: {now}")
        self.say(f"rolling {self.stack} back from {serving[-1]} to {serving[-2]}")
        return self.deploy(serving[-2], action="rollback")

    def _send(self, tag: str) -> str:
        command = f"{HOST_TOOL} deploy {shlex.quote(tag)}"
        try:
            sent = self.ssm.send_command(
                InstanceIds=[self.instance_id],
                DocumentName="AWS-RunShellScript",
                Comment=f"leanstack deploy {self.stack} {tag}"[:100],
                Parameters={"commands": [command], "executionTimeout": [str(int(self.timeout_seconds))]},
                # How long SSM waits for the host's agent to pick the command up.
                TimeoutSeconds=600,
            )
        except Exception as error:
            raise DeployError(f"cannot send the deploy to {self.instance_id}: {_describe(error)}") from None
        command_id = str(sent["Command"]["CommandId"])
        self.say(f"{self.stack}: deploying {tag} on {self.instance_id} (SSM command {command_id})")
        return command_id

    def _wait(self, command_id: str) -> tuple[str, int, str, str]:
        """Poll until the command ends: (status, exit code, stdout, stderr)."""
        deadline = time.monotonic() + self.timeout_seconds + self.grace_seconds
        while True:
            try:
                invocation = self.ssm.get_command_invocation(CommandId=command_id, InstanceId=self.instance_id)
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
                    f"{self.timeout_seconds + self.grace_seconds:.0f} s; "
                    f"see `aws ssm get-command-invocation --command-id {command_id} --instance-id {self.instance_id}`"
                )
            self.sleep(self.poll_seconds)


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _describe(error: Exception) -> str:
    return _last_line(str(error)) or type(error).__name__


def _ssm_client(region: str) -> SsmClient:
    try:
        # Imported here: `python -m leanstack plan` and `validate` need no AWS SDK.
        import boto3
        from botocore.exceptions import BotoCoreError

        client: SsmClient = boto3.client("ssm", region_name=region)
    except (ImportError, BotoCoreError) as error:
        raise DeployError(f"cannot create an SSM client: {error}") from None
    return client


def _deployer(
    stack: str, *, instance_id: str | None = None, region: str | None = None, need_instance: bool = True
) -> Deployer:
    target = find_target(stack, instance_id=instance_id, region=region, need_instance=need_instance)
    return Deployer(stack, _ssm_client(target.region), target.instance_id)


def deploy(stack: str, tag: str, *, instance_id: str | None = None, region: str | None = None) -> Release:
    """Deploy `tag` of the app image to the stack's host; raises `DeployError`."""
    _check_tag(tag)
    return _deployer(stack, instance_id=instance_id, region=region).deploy(tag)


def rollback(stack: str, *, instance_id: str | None = None, region: str | None = None) -> Release:
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
        lines.append(f"{release.started:20}  {release.action:8}  {release.tag:24}  {release.result:9}{by}{detail}")
    lines.append(f"serving now (as recorded): {serving[-1] if serving else 'nothing'}")
    return "\n".join(lines) + "\n"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise DeployError(message, EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m leanstack", description="Deploy the app to a stack's host.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, text in (("deploy", "deploy TAG of the app image"), ("rollback", "deploy the previous good tag")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("stack")
        if name == "deploy":
            sub.add_argument("tag")
        sub.add_argument("--instance-id", help="the host (default: the stack's hostInstanceId output)")
        sub.add_argument("--region", help="the stack's region (default: the stack's region output)")
    listing = commands.add_parser("releases", help="list the recorded releases")
    listing.add_argument("stack")
    listing.add_argument("--region")
    listing.add_argument("--json", action="store_true", help="the raw history as JSON")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    ssm: SsmClient | None = None,
    env: Mapping[str, str] | None = None,
    stack_outputs: Callable[[str], Mapping[str, Any]] = _pulumi_outputs,
    **deployer_options: Any,
) -> int:
    """`python -m leanstack deploy|rollback|releases ...`.

    The keyword arguments are for tests: an SSM client (moto's), the environment, a stand-in
    for `pulumi stack output`, and `Deployer` options such as `sleep`.
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
        )
        client = ssm if ssm is not None else _ssm_client(target.region)
        deployer = Deployer(args.stack, client, target.instance_id, env=environment, **deployer_options)
        if args.command == "releases":
            history = deployer.releases()
            if args.json:
                sys.stdout.write(json.dumps([release.to_json() for release in history], indent=2) + "\n")
            else:
                sys.stdout.write(format_releases(history))
            return 0
        started = time.monotonic()
        release = deployer.deploy(args.tag) if args.command == "deploy" else deployer.rollback()
        print(f"{args.stack}: {release.tag} is serving ({release.action} took {time.monotonic() - started:.0f} s)")
        return 0
    except DeployError as error:
        print(f"leanstack: {error}", file=sys.stderr)
        return error.code


if __name__ == "__main__":
    sys.exit(main())
