"""Day-2 operations on a stack's app, from a laptop or CI, through SSM and CloudWatch Logs.

    config STACK list                 the app's variables: the stack file's (SSM <path>/config)
                                      and those set here; a secret's value is never printed
    config STACK set NAME=VALUE       a plain value, SSM String <path>/env/NAME
    config STACK set NAME --secret    a secret, SSM SecureString <path>/secret/NAME, its value
                                      read from stdin (or a prompt), never from the command line
    config STACK unset NAME           remove what `set` wrote (the stack file's value applies again)
    restart STACK                     `leanstack-app restart` on every host, one at a time
                                      (blue/green: no request dropped)
    run STACK [--interactive] -- CMD  `leanstack-app run -- CMD` on the jobs host (the one
                                      host when not scaled out): a fresh container of the
                                      serving release with the app's config, secrets and
                                      database credentials; prints its output when it ends
                                      and exits with its exit code. --interactive prints the
                                      Session Manager command that opens CMD with a terminal
    logs STACK [--follow] [--since 1h] [--filter TEXT] [--nginx]
                                      the app's log group /leanstack/<STACK>/app; --nginx adds
                                      nginx's access log (/leanstack/<STACK>/nginx/access), so
                                      `--nginx --filter <X-Request-ID>` finds both sides of a request
    maintenance STACK on|off [--message TEXT]
                                      `leanstack-maintenance on|off` on every host: users get a
                                      503 page with Retry-After, the health path too

<path> is /leanstack/<STACK>/app. A value set here overrides the stack file's value of the
same name; the hosts notice within two minutes (their config timer compares parameter
versions) and restart the app blue/green, or at once with `restart`. Names the stack file
refuses are refused here too (PORT, DATABASE_*, LEANSTACK_*, ...).

The region is the stack file's aws:region (a stack without a stack file is refused; --region,
when given, must say the same). restart, run and maintenance find the hosts as `python -m
leanstack deploy` does (--instance-id, --all-hosts), and a host named by --instance-id or
$LEANSTACK_HOST_INSTANCE_ID must carry the stack's tags or nothing is sent.

Run Command returns at most 24,000 characters of a command's output; `run` prints what it
returns when the command ends (no live stream: use --interactive for that).

AWS permissions: ssm:GetParametersByPath, ssm:PutParameter, ssm:DeleteParameter on
/leanstack/<STACK>/app/* (config), ssm:SendCommand and ssm:GetCommandInvocation (restart,
run, maintenance), logs:FilterLogEvents on /leanstack/<STACK>/* (logs), ec2:DescribeInstances
(a named host's tags), and to look the
hosts up ec2:DescribeInstances and autoscaling:DescribeAutoScalingGroups.

Exit codes: 0 done; 1 failed (on a host, or AWS refused); 2 bad input; `run` exits with
the command's own code. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from leanstack.config import env_name_problem
from leanstack.deploy import (
    EXIT_FAILED,
    EXIT_USAGE,
    HOST_TOOL,
    AutoScalingClient,
    Deployer,
    DeployError,
    Ec2Client,
    aws_client,
    check_hosts_of_stack,
    describe_error,
    error_code,
    find_target,
    host_finder,
    last_line,
    pulumi_outputs,
)
from leanstack.host.agent import contract
from leanstack.host.render import MAINTENANCE_TOOL_PATH

COMMANDS = ("config", "restart", "run", "logs", "maintenance")
# A plain value as the stack file accepts one (app.env): one line.
_PLAIN_VALUE = re.compile(r"[^\x00-\x1f\x7f]*")
_SINCE = re.compile(r"(\d{1,6})([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Run Command's limit on a one-off command's run (leanstack-app waits for the container).
RUN_TIMEOUT_SECONDS = 3600
FOLLOW_POLL_SECONDS = 2.0


def parameters_path(stack: str) -> str:
    """Where the app's config lives in SSM (components/app.py writes <path>/config)."""
    return contract.app_parameters_path(stack)


def _check_name(name: str) -> str:
    if problem := env_name_problem(name):
        raise DeployError(f"{name}: not allowed: {problem}", EXIT_USAGE)
    return name


# --------------------------------------------------------------------------- config


def _secret_on_command_line(name: str) -> DeployError:
    return DeployError(
        f"{name}: a secret's value is not taken from the command line (shell history, process list); "
        f"give `{name} --secret` and the value on stdin",
        EXIT_USAGE,
    )


def _all_parameters(ssm: Any, path: str) -> dict[str, dict[str, Any]]:
    """Every parameter under `path` (undecrypted: a secret's value is never fetched), by name."""
    found: dict[str, dict[str, Any]] = {}
    request: dict[str, Any] = {"Path": path, "Recursive": True, "WithDecryption": False}
    try:
        while True:
            page = ssm.get_parameters_by_path(**request)
            for parameter in page.get("Parameters", []):
                found[str(parameter["Name"])] = parameter
            if not page.get("NextToken"):
                return found
            request["NextToken"] = page["NextToken"]
    except Exception as error:
        raise DeployError(f"cannot read {path}/*: {describe_error(error)}") from None


def config_list(ssm: Any, stack: str) -> str:
    path = parameters_path(stack)
    parameters = _all_parameters(ssm, path)
    rows: dict[str, tuple[str, str]] = {}
    stack_file: dict[str, Any] = {}
    if f"{path}/config" in parameters:
        try:
            stack_file = json.loads(str(parameters[f"{path}/config"].get("Value", "{}")))
        except ValueError:
            raise DeployError(f"{path}/config is not JSON; run `pulumi up` to write it again") from None
    for name, value in sorted(dict(stack_file.get("env", {})).items()):
        rows[name] = (str(value), "stack file")
    for name, reference in sorted(dict(stack_file.get("secrets", {})).items()):
        rows[name] = (f"(secret from {reference})", "stack file")
    for full, parameter in sorted(parameters.items()):
        for prefix, secret in ((f"{path}/env/", False), (f"{path}/secret/", True)):
            if full.startswith(prefix):
                name = full[len(prefix) :]
                value = f"(secret, version {parameter.get('Version', '?')})" if secret else str(parameter["Value"])
                rows[name] = (value, f"set by `config set`{' over the stack file' if name in rows else ''}")
    if not rows:
        return f"{stack}: no app variables (the stack file's app.env and app.secrets are empty, none set here)\n"
    width = max(len(name) for name in rows)
    lines = [f"{name:{width}}  {value}  [{source}]" for name, (value, source) in sorted(rows.items())]
    return "\n".join(lines) + "\n"


def _read_secret(name: str, stdin: TextIO) -> str:
    if stdin.isatty():
        value = getpass.getpass(f"value of {name} (not echoed): ")
    else:
        value = stdin.read()
        # One trailing newline is what `echo` and a file add, not part of the secret.
        value = value[:-1] if value.endswith("\n") else value
    return value


def config_set(ssm: Any, stack: str, assignment: str, secret: bool, stdin: TextIO) -> str:
    name, equals, value = assignment.partition("=")
    _check_name(name)
    if secret and equals:
        raise _secret_on_command_line(name)
    if not secret and not equals:
        raise DeployError(f"{name}: expected NAME=VALUE (or NAME --secret, the value on stdin)", EXIT_USAGE)
    if secret:
        value = _read_secret(name, stdin)
        if not value or "\x00" in value:
            raise DeployError(f"{name}: the secret is empty or holds a NUL character; nothing changed", EXIT_USAGE)
    elif not _PLAIN_VALUE.fullmatch(value):
        raise DeployError(
            f"{name}: a plain value is one line without control characters; use --secret for anything else",
            EXIT_USAGE,
        )
    path = parameters_path(stack)
    target = f"{path}/{'secret' if secret else 'env'}/{name}"
    other = f"{path}/{'env' if secret else 'secret'}/{name}"
    try:
        ssm.put_parameter(
            Name=target,
            Value=value,
            Type="SecureString" if secret else "String",
            Tier="Standard" if len(value.encode()) <= 4096 else "Advanced",
            Overwrite=True,
            Description=f"leanstack app {'secret' if secret else 'variable'} {name} (python -m leanstack config)",
        )
    except Exception as error:
        raise DeployError(f"cannot write {target}: {describe_error(error)}") from None
    _delete(ssm, other, missing_ok=True)  # a name is a plain value or a secret, never both (the host refuses it)
    return f"{stack}: {name} set ({'secret' if secret else 'plain'}); the hosts switch to it within 2 minutes\n"


def _delete(ssm: Any, name: str, missing_ok: bool) -> bool:
    try:
        ssm.delete_parameter(Name=name)
        return True
    except Exception as error:
        if error_code(error) == "ParameterNotFound" or "ParameterNotFound" in type(error).__name__:
            if missing_ok:
                return False
            raise DeployError(f"{name}: not set") from None
        raise DeployError(f"cannot delete {name}: {describe_error(error)}") from None


def config_unset(ssm: Any, stack: str, name: str) -> str:
    _check_name(name)
    path = parameters_path(stack)
    removed = [kind for kind in ("env", "secret") if _delete(ssm, f"{path}/{kind}/{name}", missing_ok=True)]
    if not removed:
        raise DeployError(
            f"{name}: not set by `config set` (a stack-file value is changed in the stack file)", EXIT_USAGE
        )
    return f"{stack}: {name} unset; the hosts switch within 2 minutes\n"


# --------------------------------------------------------------------------- commands on the hosts


def _on_hosts(deployer: Deployer, hosts: Sequence[str], command: str, what: str, say: Callable[[str], None]) -> int:
    """`command` on each host in turn; one line per host; 1 when any failed."""
    failed = 0
    for host in hosts:
        command_id = deployer.send(host, command, what=what, comment=f"leanstack {what} {deployer.stack}", doing=what)
        status, _code, output, errors = deployer.wait(command_id, host)
        if status == "Success":
            say(f"  {host}  done{': ' + last_line(output) if last_line(output) else ''}")
        else:
            failed += 1
            say(f"  {host}  {status}: {last_line(errors) or last_line(output)}")
    if failed:
        raise DeployError(f"{what} failed on {failed} of {len(hosts)} host(s) of {deployer.stack}")
    return 0


def run_command(deployer: Deployer, host: str, argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    command = f"{HOST_TOOL} run -- {shlex.join(argv)}"
    command_id = deployer.send(
        host,
        command,
        what="the command",
        comment=f"leanstack run {deployer.stack}",
        doing="running",
        timeout=RUN_TIMEOUT_SECONDS,
    )
    status, code, output, errors = deployer.wait(command_id, host, RUN_TIMEOUT_SECONDS)
    out.write(output)
    err.write(errors)
    if status == "Success":
        return 0
    if code < 0:
        raise DeployError(f"the command on {host} ended {status} without an exit code")
    return code


def interactive_command(host: str, region: str, argv: Sequence[str]) -> str:
    """The Session Manager command that opens `argv` in a fresh app container, with a terminal."""
    inner = f"sudo {HOST_TOOL} run --tty -- {shlex.join(argv)}"
    return shlex.join(
        [
            "aws",
            "ssm",
            "start-session",
            "--region",
            region,
            "--target",
            host,
            "--document-name",
            "AWS-StartInteractiveCommand",
            "--parameters",
            json.dumps({"command": [inner]}),
        ]
    )


# --------------------------------------------------------------------------- logs


def parse_since(text: str, now: float) -> int:
    """Milliseconds since the epoch of `--since`: 30m, 1h, 2d or an ISO time (UTC when it names no zone)."""
    match = _SINCE.fullmatch(text)
    if match:
        return int((now - int(match.group(1)) * _UNITS[match.group(2)]) * 1000)
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DeployError(
            f"--since {text!r} is not allowed: a duration such as 30m, 1h, 2d or a time such as 2026-12-01T09:00",
            EXIT_USAGE,
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return int(when.timestamp() * 1000)


def log_groups(stack: str, nginx: bool) -> list[tuple[str, str]]:
    groups = [("app", contract.app_log_group(stack))]
    if nginx:
        groups.append(("nginx", contract.access_log_group(stack)))
    return groups


def filter_pattern(text: str) -> str:
    """A CloudWatch Logs filter pattern matching `text` as a phrase (a request id has '-', which is syntax)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def read_logs(
    logs: Any, groups: Sequence[tuple[str, str]], start_ms: int, text: str | None, seen: set[str]
) -> list[tuple[int, str, str]]:
    """Events of every group since `start_ms` not in `seen`: (timestamp, label, line), oldest first."""
    found: list[tuple[int, str, str]] = []
    for label, group in groups:
        request: dict[str, Any] = {"logGroupName": group, "startTime": start_ms}
        if text:
            request["filterPattern"] = filter_pattern(text)
        try:
            while True:
                page = logs.filter_log_events(**request)
                for event in page.get("events", []):
                    key = f"{group}/{event.get('eventId') or (event.get('logStreamName'), event.get('timestamp'))}"
                    if key in seen:
                        continue
                    seen.add(key)
                    found.append((int(event["timestamp"]), label, str(event.get("message", "")).rstrip("\n")))
                if not page.get("nextToken"):
                    break
                request["nextToken"] = page["nextToken"]
        except Exception as error:
            raise DeployError(f"cannot read {group}: {describe_error(error)}") from None
    return sorted(found)


def format_event(timestamp_ms: int, label: str, message: str) -> str:
    when = datetime.datetime.fromtimestamp(timestamp_ms / 1000, tz=datetime.UTC)
    return f"{when.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z {label:5} {message}"


# --------------------------------------------------------------------------- the command line


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise DeployError(message, EXIT_USAGE)


def _host_flags(sub: argparse.ArgumentParser) -> None:
    hosts = sub.add_mutually_exclusive_group()
    hosts.add_argument("--instance-id", action="append", help="a host (repeatable; default: as deploy finds them)")
    hosts.add_argument("--all-hosts", action="store_true", help="look the stack's hosts up by their Name tag")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m leanstack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    config = commands.add_parser("config", help="list, set or unset the app's variables (SSM)")
    config.add_argument("stack")
    actions = config.add_subparsers(dest="action", required=True, parser_class=_Parser)
    list_ = actions.add_parser("list", help="the app's variables; secrets by reference only")
    set_ = actions.add_parser("set", help="NAME=VALUE, or NAME --secret with the value on stdin")
    set_.add_argument("assignment", metavar="NAME=VALUE")
    set_.add_argument("--secret", action="store_true", help="a SecureString; the value from stdin or a prompt")
    unset = actions.add_parser("unset", help="remove a value set here")
    unset.add_argument("name")
    for action in (list_, set_, unset):
        action.add_argument("--region", help="the stack's region; must be the stack file's aws:region (its default)")
    restart = commands.add_parser("restart", help="restart the app on every host, blue/green")
    run = commands.add_parser(
        "run",
        help="a one-off command in a fresh container of the serving release",
        usage="python -m leanstack run STACK [--interactive] [--instance-id ID | --all-hosts] [--region REGION] "
        "-- CMD [ARG ...]",
        epilog="CMD [ARG ...], after --: the command and its arguments, run as given (never read as leanstack's flags)",
    )
    run.add_argument("--interactive", action="store_true", help="print the Session Manager command instead")
    logs = commands.add_parser("logs", help="the app's (and nginx's) CloudWatch logs")
    logs.add_argument("--follow", action="store_true", help="keep printing new events until Ctrl-C")
    logs.add_argument("--since", default="1h", help="30m, 1h, 2d or an ISO time (default: 1h)")
    logs.add_argument("--filter", dest="text", help="only events containing TEXT (a request id, a word)")
    logs.add_argument("--nginx", action="store_true", help="nginx's access log too")
    maintenance = commands.add_parser("maintenance", help="turn the maintenance page on or off on every host")
    maintenance.add_argument("stack")
    maintenance.add_argument("state", choices=("on", "off"))
    maintenance.add_argument("--message", help="the sentence the page shows")
    for sub in (config, restart, run, logs, maintenance):
        if sub not in (config, maintenance):
            sub.add_argument("stack")
        if sub in (restart, run, maintenance):
            _host_flags(sub)
        if sub is not config:
            sub.add_argument("--region", help="the stack's region; must be the stack file's aws:region (its default)")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    ssm: Any = None,
    logs: Any = None,
    env: Mapping[str, str] | None = None,
    stack_outputs: Callable[[str], Mapping[str, Any]] = pulumi_outputs,
    ec2: Ec2Client | None = None,
    autoscaling: AutoScalingClient | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    follow_rounds: int | None = None,
) -> int:
    """`python -m leanstack config|restart|run|logs|maintenance ...`; the keywords are for tests (moto clients)."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    environment = dict(os.environ if env is None else env)
    arguments = list(sys.argv[1:] if argv is None else argv)
    # `run STACK [flags] -- CMD...`: everything after `--` is the command, never leanstack's flags.
    command_argv: list[str] = []
    if arguments[:1] == ["run"] and "--" in arguments:
        split = arguments.index("--")
        arguments, command_argv = arguments[:split], arguments[split + 1 :]
    try:
        args = _parser().parse_args(arguments)
        if args.command == "run" and not command_argv:
            raise DeployError("run: no command given; usage: python -m leanstack run STACK -- CMD...", EXIT_USAGE)
        if args.command == "config" and args.action != "list":
            # Bad input is refused before anything is looked up.
            name, equals, _value = (args.assignment if args.action == "set" else args.name).partition("=")
            _check_name(name)
            if args.action == "set" and args.secret and equals:
                raise _secret_on_command_line(name)
        on_hosts = args.command in ("restart", "run", "maintenance")
        target = find_target(
            args.stack,
            instance_id=getattr(args, "instance_id", None),
            region=args.region,
            env=environment,
            stack_outputs=stack_outputs,
            need_instance=on_hosts,
            all_hosts=getattr(args, "all_hosts", False),
        )
        if on_hosts:
            check_hosts_of_stack(
                args.stack, target.instance_ids, ec2 if ec2 is not None else aws_client("ec2", target.region)
            )
        if args.command == "logs":
            client = logs if logs is not None else aws_client("logs", target.region)
            return _logs(client, args, out, sleep, clock, follow_rounds)
        ssm_client = ssm if ssm is not None else aws_client("ssm", target.region)
        if args.command == "config":
            if args.action == "list":
                out.write(config_list(ssm_client, args.stack))
            elif args.action == "set":
                out.write(config_set(ssm_client, args.stack, args.assignment, args.secret, stdin or sys.stdin))
            else:
                out.write(config_unset(ssm_client, args.stack, args.name))
            return 0
        say: Callable[[str], None] = lambda message: print(message, file=out, flush=True)  # noqa: E731
        deployer = Deployer(
            args.stack,
            ssm_client,
            target.instance_ids,
            env=environment,
            sleep=sleep,
            say=lambda message: print(message, file=err, flush=True),
            find_hosts=host_finder(args.stack, target.region, ec2, autoscaling),
        )
        hosts, _looked_up = deployer.hosts()
        if args.command == "run":
            # The jobs host switches last, so it is the last one: it runs what must run once.
            host = hosts[-1]
            if args.interactive:
                out.write(interactive_command(host, target.region, command_argv) + "\n")
                return 0
            return run_command(deployer, host, command_argv, out, err)
        if args.command == "restart":
            say(f"{args.stack}: restarting the app, host by host:")
            return _on_hosts(deployer, hosts, f"{HOST_TOOL} restart", "restart", say)
        message = f" --message {shlex.quote(args.message)}" if args.message and args.state == "on" else ""
        doing = "putting the maintenance page up" if args.state == "on" else "taking the maintenance page down"
        say(f"{args.stack}: {doing} on every host:")
        return _on_hosts(deployer, hosts, f"{MAINTENANCE_TOOL_PATH} {args.state}{message}", "maintenance", say)
    except DeployError as error:
        print(f"leanstack: {error}", file=err)
        return error.code
    except KeyboardInterrupt:
        return 0


def _logs(
    client: Any,
    args: argparse.Namespace,
    out: TextIO,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    follow_rounds: int | None,
) -> int:
    groups = log_groups(args.stack, args.nginx)
    start = parse_since(args.since, clock())
    seen: set[str] = set()
    rounds = 0
    while True:
        events = read_logs(client, groups, start, args.text, seen)
        for timestamp, label, message in events:
            out.write(format_event(timestamp, label, message) + "\n")
        out.flush()
        if events:
            # Events can arrive late and out of order: look again from a little before the newest.
            start = max(start, events[-1][0] - 60_000)
        rounds += 1
        if not args.follow or (follow_rounds is not None and rounds >= follow_rounds):
            return 0
        sleep(FOLLOW_POLL_SECONDS)


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["COMMANDS", "EXIT_FAILED", "main"]
