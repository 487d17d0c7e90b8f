"""leanstack-app: run the app's container on the host, deploy it blue/green, restart it.

    leanstack-app deploy TAG    pull <image>:TAG, start it on the idle one of the two app
                                ports, wait for its health path, point nginx's upstream at
                                it (graceful reload), wait for the old nginx workers to
                                finish their requests, then stop the old container
    leanstack-app restart       deploy the running tag again by the same path: the new
                                container reads the secrets afresh (after an RDS password
                                rotation), and no request is dropped; waits for a running
                                deploy to finish instead of being refused
    leanstack-app status        one line: the serving port and image
    leanstack-app boot          on a host that serves nothing yet (a new or replaced
                                host), deploy the newest serving tag of the release
                                history `python -m leanstack deploy` keeps in SSM
    leanstack-app deploy TAG --skip-release-command
                                the same without the release command (scaled out: the CLI
                                runs it once first, then rolls out host by host)
    leanstack-app release-command TAG
                                only run the release command in a container of TAG
    leanstack-app reload-config [--if-changed]
                                a restart when the app's SSM config changed (--if-changed:
                                compare parameter versions with the serving container's,
                                do nothing when equal; the config timer runs this), then
                                sync-jobs
    leanstack-app run [--tty] [--] CMD...
                                CMD in a fresh container of the serving release with the
                                app's config, secrets and database credentials; streams
                                its output, exits with its exit code (--tty: attach a
                                terminal, for an SSM session)
    leanstack-app run --interactive [--] CMD...
                                print the command that opens CMD in such a container from
                                an SSM session (the CLI wraps it in `aws ssm start-session`)
    leanstack-app job NAME      run the configured job NAME in a container of the serving
                                release; a run of NAME still going makes this one skip
                                (exit 0); publishes JobSuccess/JobFailure (--from-timer,
                                how the job's unit runs it: a job no longer in the config
                                exits 0 and publishes nothing; it was removed)
    leanstack-app job-exited NAME
                                what the job's unit runs when it stops: remove the job's
                                container if a stopped run left it; quiet when it is gone
    leanstack-app sync-jobs     (re)write the jobs' systemd units from the SSM config,
                                remove those of removed jobs, reload systemd
    leanstack-app serve PORT    what systemd's leanstack-app@PORT.service runs: read the
                                config and secrets, then exec `docker run` for the image
                                recorded for PORT, with the values in its environment only

App config in SSM Parameter Store (when `parameters_path` is set in app.json, normally
/leanstack/<stack>/app; read at every container start with GetParametersByPath,
recursive, decrypted, every page):

    <path>/config         String, JSON written by `pulumi up` from the stack file (no
                          secret values, only references):
                            {"env": {"NAME": "value"},
                             "secrets": {"NAME": "/ssm/parameter/name" | "arn:...secret"},
                             "release_command": ["bin/migrate"],            (optional)
                             "jobs": {"NAME": {"schedule": "<OnCalendar>",
                                               "command": ["bin/report"]}}, (optional)
                             "cache": {"host": "h", "port": 6379,
                                       "token": "/ssm/name" | "arn:..."}}   (optional)
    <path>/env/<NAME>     String: a plain value set outside the stack file (CLI)
    <path>/secret/<NAME>  SecureString: a secret set outside the stack file (CLI)

A name set under env/ or secret/ overrides the same name from the config parameter; one
name under both env/ and secret/, or in both "env" and "secrets", is refused. The
container also gets PORT (serving containers), LEANSTACK_RELEASE (the image tag),
DATABASE_HOST/PORT/NAME/USER/PASSWORD (with a database) and REDIS_URL
(rediss://:<token>@host:port, with "cache"); those names are refused in the config. A
missing `config` parameter, a reference that cannot be read or a bad name fails the start
with one line. Values reach docker only through its environment, by name (`--env NAME`),
never its argv, never a file. Jobs: NAME is [a-z0-9-] (at most 40), and its metrics
JobSuccess and JobFailure (0 or 1 per run, dimensions Stack and Stack+Job) go to the
namespace `metrics_namespace` (default Leanstack/<stack>).

Runs on Amazon Linux 2023's system Python (3.9) with the standard library; secret reads go
through the preinstalled `aws` CLI with the instance role, the SSM config path and the job
metrics through boto3 (python3-boto3; honours AWS_ENDPOINT_URL). Configuration is the JSON
file /etc/leanstack/app.json (written by cloud-init; no secrets in it) or
$LEANSTACK_APP_CONFIG. The steps that touch the container engine, systemd and nginx are
commands that the environment may replace (tests stand in plain processes for containers);
`{port}` and `{image}` in them are replaced by shell-quoted values:

    LEANSTACK_APP_PULL          default: docker pull {image} (after docker login when the
                                config names a registry secret)
    LEANSTACK_APP_START         default: systemctl enable --now leanstack-app@{port}.service
    LEANSTACK_APP_STOP          default: systemctl disable --now leanstack-app@{port}.service
    LEANSTACK_NGINX_CHECK       default: nginx -t -q
    LEANSTACK_NGINX_RELOAD      default: systemctl reload nginx.service
    LEANSTACK_DOCKER            the docker program `serve`, `run`, `job` and the
                                release command use (default: docker)
    LEANSTACK_SYSTEMD_RELOAD    default: systemctl daemon-reload
    LEANSTACK_JOB_ENABLE        default: systemctl enable --now {unit}
    LEANSTACK_JOB_DISABLE       default: systemctl disable --now {unit}

The release command (at most 30 min; `boot` and `restart` never run it) and one-off
commands run in containers named release-<pid> and run-<pid>, a job in job-<NAME>; none
publishes a port. Exit codes: 0 done; 1 the deploy failed and the version that was serving
still serves (or the step failed); 2 bad input or configuration; 3 another deploy holds the
lock; `run` and `job` exit with the command's own code. Every failure of the tool itself is
exactly one line on stderr, starting with "leanstack-app:".
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from .app_config import EXIT_FAILED, EXIT_USAGE, PROGRAM, load_config
from .app_runtime import read_current
from .blue_green import boot, deploy, reload_config, restart, run_release_command_only
from .common import Failure
from .containers import interactive_command, run_one_off, serve
from .jobs import job, job_exited, sync_jobs
from .processes import process_exited, run_process, sync_processes

USAGE = (
    f"usage: {PROGRAM} deploy TAG [--skip-release-command] | release-command TAG | restart | "
    "reload-config [--if-changed] | status | boot | run [--tty | --interactive] [--] CMD... | "
    "job NAME [--from-timer] | job-exited NAME | sync-jobs | process NAME N | process-exited NAME N | "
    "sync-processes | serve PORT"
)


def _run_arguments(rest: Sequence[str]) -> tuple[str, list[str]]:
    """`run`'s mode (plain, --tty, --interactive) and its command."""
    mode = "plain"
    index = 0
    while index < len(rest) and rest[index] in ("--tty", "--interactive"):
        mode = rest[index][2:]
        index += 1
    command = list(rest[index:])
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise Failure(f"run: no command given; usage: {PROGRAM} run [--tty | --interactive] [--] CMD...", EXIT_USAGE)
    return mode, command


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """`argv` as sys.argv has it (the program's name first), as every agent command takes it."""
    arguments = list((sys.argv if argv is None else argv)[1:])
    environment = dict(os.environ if env is None else env)
    arity = {
        "deploy": 1,
        "release-command": 1,
        "job": 1,
        "job-exited": 1,
        "serve": 1,
        "process": 2,
        "process-exited": 2,
    }
    try:
        if not arguments:
            raise Failure(USAGE, EXIT_USAGE)
        command, rest = arguments[0], arguments[1:]
        flags = {
            "deploy": {"--skip-release-command"},
            "reload-config": {"--if-changed"},
            "job": {"--from-timer"},
        }.get(command, set())
        given = {a for a in rest if a in flags}
        positional = [a for a in rest if a not in flags]
        if command == "run":
            mode, one_off = _run_arguments(rest)
        elif command not in (
            *arity,
            "restart",
            "reload-config",
            "status",
            "boot",
            "sync-jobs",
            "sync-processes",
        ) or len(positional) != arity.get(command, 0):
            raise Failure(USAGE, EXIT_USAGE)
        if command == "run" and mode == "interactive":
            # Needs nothing from the host: the CLI runs this in the session it opens.
            print(interactive_command(one_off))
            return 0
        config = load_config(environment)
        if command == "deploy":
            deploy(config, positional[0], environment, run_release_command="--skip-release-command" not in given)
        elif command == "release-command":
            run_release_command_only(config, positional[0], environment)
        elif command == "restart":
            restart(config, environment)
        elif command == "reload-config":
            reload_config(config, environment, if_changed="--if-changed" in given)
        elif command == "boot":
            boot(config, environment)
        elif command == "serve":
            serve(config, positional[0], environment)
        elif command == "run":
            return run_one_off(config, one_off, environment, tty=mode == "tty")
        elif command == "job":
            return job(config, positional[0], environment, from_timer="--from-timer" in given)
        elif command == "job-exited":
            return job_exited(config, positional[0], environment)
        elif command == "sync-jobs":
            sync_jobs(config, environment)
        elif command == "process":
            return run_process(config, positional[0], positional[1], environment)
        elif command == "process-exited":
            return process_exited(config, positional[0], positional[1], environment)
        elif command == "sync-processes":
            sync_processes(config, environment)
        else:
            current = read_current(config)
            if current is None:
                print("nothing deployed")
            else:
                print(f"serving {current['image']} on port {current['port']} since {current.get('since')}")
        return 0
    except Failure as failure:
        print(f"{PROGRAM}: {failure}", file=sys.stderr, flush=True)
        return failure.code
    except OSError as error:
        print(f"{PROGRAM}: {error.filename or ''}: {error.strerror}", file=sys.stderr, flush=True)
        return EXIT_FAILED
