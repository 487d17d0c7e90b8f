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
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from leanstack.deploy.common import (
    EXIT_USAGE,
    AutoScalingClient,
    DeployError,
    Ec2Client,
    SsmClient,
    aws_client,
    check_stack,
    check_tag,
    ssm_client,
)
from leanstack.deploy.history import Release, format_releases
from leanstack.deploy.hosts import check_hosts_of_stack, find_target, host_finder, pulumi_outputs, stack_facts
from leanstack.deploy.registry import check_tag_in_registry
from leanstack.deploy.rollout import Deployer


def _deployer(
    stack: str,
    *,
    instance_id: str | Sequence[str] | None = None,
    region: str | None = None,
    need_instance: bool = True,
) -> Deployer:
    target = find_target(stack, instance_id=instance_id, region=region, need_instance=need_instance)
    if need_instance:
        check_hosts_of_stack(stack, target.instance_ids, aws_client("ec2", target.region))
    return Deployer(
        stack,
        ssm_client(target.region),
        target.instance_ids,
        find_hosts=host_finder(stack, target.region),
        registry=aws_client("ecr", target.region),
    )


def deploy(
    stack: str, tag: str, *, instance_id: str | Sequence[str] | None = None, region: str | None = None
) -> Release:
    """Deploy `tag` of the app image to the stack's hosts, one at a time; raises `DeployError`."""
    check_tag(tag)
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
    stack_outputs: Callable[[str], Mapping[str, Any]] = pulumi_outputs,
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
        check_stack(args.stack)
        if args.command == "deploy":
            check_tag(args.tag)
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
                args.stack, target.instance_ids, ec2 if ec2 is not None else aws_client("ec2", target.region)
            )
        client = ssm if ssm is not None else ssm_client(target.region)
        # Tests that hand in their own SSM client and no ECR one run without the release mark (and its lookup).
        if ecr is not None or ssm is None:
            deployer_options.setdefault("registry", ecr if ecr is not None else aws_client("ecr", target.region))
        registry = deployer_options.get("registry")
        if args.command == "deploy" and registry is not None and not stack_facts(args.stack).image_from_elsewhere:
            check_tag_in_registry(registry, args.stack, args.tag)
        deployer = Deployer(
            args.stack,
            client,
            target.instance_ids,
            env=environment,
            find_hosts=host_finder(args.stack, target.region, ec2, autoscaling),
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
