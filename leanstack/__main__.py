"""`python -m leanstack`: offline tooling for the stack, no cloud account needed.

    python -m leanstack plan STACK [--format text|markdown|json]   every resource, priced, with a diagram
    python -m leanstack diff BASE [HEAD] [--stack S] [--format text|markdown|json]
                                                                 what a change does, risk first
    python -m leanstack runbook STACK [--branch NAME]            the recovery sheet of a stack, in Markdown
                                                                 (--branch: the triage and one branch only)
    python -m leanstack validate STACK                           check stacks/Pulumi.<STACK>.yaml
    python -m leanstack deploy STACK TAG | rollback STACK | releases STACK
                                                                 ship the app (needs AWS credentials)
    python -m leanstack config STACK list | set NAME=VALUE | set NAME --secret | unset NAME
    python -m leanstack restart STACK | run STACK [--interactive] -- CMD...
    python -m leanstack logs STACK [--follow] [--since 1h] [--filter TEXT] [--nginx]
    python -m leanstack maintenance STACK on|off [--message TEXT]
                                                                 run the app day to day (AWS credentials)
    python -m leanstack schema                                   JSON Schema for the stack files
    python -m leanstack init [--domain D --zone-id Z --alert-email E --owner O --region R --backup-region B
                          --second-person P]
                                                                 fill a fork's seven values into every stack file
    python -m leanstack docs [--write]                           the component reference; --write: every generated page
    python -m leanstack --version
    python -m leanstack recovery-key new                         the recovery keypair (private half printed once)
    python -m leanstack secrets restore STACK --from-backup ...  the app's config and secrets from their
                                                                 sealed off-site copy (needs AWS credentials)
    python -m leanstack recover init STACK --backup-bucket B [--replica-bucket R] [--force]
                                                                 the stack's recovery stack in its backup region
    python -m leanstack db restore STACK --to "YYYY-MM-DD HH:MM[:SS]" [--swap]
                                                                 RDS point-in-time restore next to the database,
                                                                 optionally switched to (AWS credentials)

BASE and HEAD are git revisions (HEAD defaults to the working tree) or saved JSON plans.

`--repo DIR` before the command names the project whose stacks/ and __main__.py the commands read;
by default the checkout leanstack runs from, or the current directory for an installed package.

Exit codes: 0 success (for diff: no changes), 1 diff found changes (for deploy: the deploy
failed and the hosts serve the previous version, unless the error says the fleet is split),
2 bad input (one line on stderr naming what is wrong: unknown stack, invalid stack file,
unknown revision, saved plans of two stacks or of another format version), 3 another deploy
is running, 4 plan: a mandatory policy rule fails (the plan is still printed; `pulumi up`
with the policy pack would refuse it).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from leanstack import __version__

# The third-party modules every command needs (pyproject.toml declares them; deptry checks that).
NEEDED_MODULES = ("yaml", "jinja2", "pulumi", "pulumi_aws", "ruamel.yaml", "cryptography")


def _missing_module() -> str | None:
    for module in NEEDED_MODULES:
        try:
            if importlib.util.find_spec(module) is None:
                return module
        except ModuleNotFoundError:  # its parent package (ruamel) is missing
            return module
    return None


if (_missing := _missing_module()) is not None:  # run by a Python without leanstack's dependencies
    print(
        f"leanstack: {_missing} is not installed for {sys.executable}; in a checkout run `make` once and use "
        ".venv/bin/leanstack (or .venv/bin/python -m leanstack), elsewhere `pip install leanstack`",
        file=sys.stderr,
    )
    sys.exit(2)

from leanstack.config import ConfigError, json_schema, load_stack_config  # noqa: E402
from leanstack.config.placeholders import leftover_placeholders  # noqa: E402
from leanstack.mocks import PROJECT_ENV, StackFileError, read_stack_config  # noqa: E402

FORMATS = ("text", "markdown", "json")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints usage and exits 2; keep the exit code, make it one line.
        print(f"leanstack: {message}", file=sys.stderr)
        sys.exit(2)


class InputError(ValueError):
    """Bad input a subcommand found: printed as one line, exit 2."""


def warn_placeholders(stack: str, raw: dict[str, Any]) -> None:
    """One line on stderr per value the fork has not filled in yet (stdout stays the plan)."""
    for left in leftover_placeholders(raw):
        print(f"leanstack: warning: stacks/Pulumi.{stack}.yaml: {left} (python -m leanstack init)", file=sys.stderr)


def cmd_plan(args: argparse.Namespace) -> int:
    raw = read_stack_config(args.stack)
    load_stack_config(raw, args.stack)
    warn_placeholders(args.stack, raw)
    # Imported here: loading the providers takes seconds, and validate/schema do not need them.
    from leanstack.mocks import run_program
    from leanstack.plan import POLICY_FAILED_EXIT, RENDERERS, build_plan, failed_policies

    plan = build_plan(run_program(args.stack, raw))
    sys.stdout.write(RENDERERS[args.format](plan))
    return POLICY_FAILED_EXIT if failed_policies(plan) else 0


def cmd_runbook(args: argparse.Namespace) -> int:
    from leanstack.runbook import RunbookError, UnknownBranchError, render_runbook

    try:
        sys.stdout.write(render_runbook(args.stack, branch=args.branch))
    except (RunbookError, UnknownBranchError) as error:
        raise InputError(str(error)) from None
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    raw = read_stack_config(args.stack)
    load_stack_config(raw, args.stack)
    warn_placeholders(args.stack, raw)
    print(f"stacks/Pulumi.{args.stack}.yaml: valid")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    sys.stdout.write(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
    return 0


def cmd_recovery_key(args: argparse.Namespace) -> int:
    from leanstack.recovery_key import print_new

    return print_new()


def cmd_diff(args: argparse.Namespace) -> int:
    from leanstack.diff import RENDERERS, DiffError, diff_sources

    try:
        result = diff_sources(args.base, args.head, stacks=args.stack or None)
    except DiffError as error:
        raise InputError(str(error)) from None
    sys.stdout.write(RENDERERS[args.format](result))
    return 1 if result["changed"] else 0


def cmd_init(args: argparse.Namespace) -> int:
    from leanstack.init import InitError, ask, run_init

    given = {field: getattr(args, field) for field, _flag, _question in _init_questions()}
    if any(value is None for value in given.values()) and not sys.stdin.isatty():
        missing = [flag for field, flag, _ in _init_questions() if given[field] is None]
        raise InputError(f"init: missing {', '.join(missing)} (no terminal to ask on)")
    try:
        written = run_init(ask(given, input))
    except InitError as error:
        raise InputError(str(error)) from None
    for name in written:
        print(f"{name}: filled and valid")
    return 0


def _init_questions() -> tuple[tuple[str, str, str], ...]:
    from leanstack.init import QUESTIONS

    return QUESTIONS


def cmd_docs(args: argparse.Namespace) -> int:
    from leanstack.docs import component_reference, write_pages
    from leanstack.mocks import REPO

    if args.write:
        changed = write_pages()
        print("\n".join(f"{p.relative_to(REPO)}: updated" for p in changed) or "docs: every generated page current")
    else:
        sys.stdout.write(component_reference())
    return 0


# One function per subcommand; a new subcommand adds a parser below and an entry here.
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "plan": cmd_plan,
    "diff": cmd_diff,
    "runbook": cmd_runbook,
    "validate": cmd_validate,
    "schema": cmd_schema,
    "init": cmd_init,
    "docs": cmd_docs,
    "recovery-key": cmd_recovery_key,
}


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m leanstack", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    plan = commands.add_parser(
        "plan", help="print every resource the stack would create (offline), priced (exit 4: a policy rule fails)"
    )
    plan.add_argument("stack")
    plan.add_argument("--format", choices=FORMATS, default="text")
    diff = commands.add_parser("diff", help="compare two revisions or saved plans, risk first (exit 1 on changes)")
    diff.add_argument("base", help="git revision or saved JSON plan")
    diff.add_argument("head", nargs="?", default=None, help="git revision or saved JSON plan (default: working tree)")
    diff.add_argument("--stack", action="append", help="only this stack (repeatable; default: every stack)")
    diff.add_argument("--format", choices=FORMATS, default="text")
    runbook = commands.add_parser("runbook", help="print the stack's recovery sheet (Markdown)")
    runbook.add_argument("stack")
    runbook.add_argument("--branch", help="print only this branch, after the triage (e.g. host-gone)")
    validate = commands.add_parser("validate", help="validate stacks/Pulumi.<stack>.yaml")
    validate.add_argument("stack")
    commands.add_parser("schema", help="print the JSON Schema of the stack files")
    init = commands.add_parser("init", help="fill a fork's seven values into every stack file, then validate")
    for _field, flag, question in _init_questions():
        init.add_argument(flag, help=f"{question} (asked for when not given)")
    docs = commands.add_parser("docs", help="print the component reference, generated from the Args")
    docs.add_argument("--write", action="store_true", help="rewrite every generated page under docs/")
    recovery_key = commands.add_parser("recovery-key", help="make a recovery keypair (private half printed once)")
    recovery_key.add_argument("action", choices=("new",))
    commands.add_parser(
        "secrets", help="restore the app's config and secrets from the sealed off-site copy", add_help=False
    )
    commands.add_parser(
        "recover", help="write the recovery stack for when the region is gone (recover init STACK)", add_help=False
    )
    commands.add_parser(
        "db", help="restore the database to a point in time next to it (db restore STACK --to TIME)", add_help=False
    )
    for name, text in zip(
        DEPLOY_COMMANDS,
        ("deploy TAG of the app", "redeploy the previous good tag", "list the recorded releases"),
        strict=True,
    ):
        commands.add_parser(name, help=f"{text} (AWS credentials needed)", add_help=False)
    for name in OPERATE_COMMANDS:
        commands.add_parser(
            name, help=f"the app's {name} (AWS credentials needed; see leanstack.operate)", add_help=False
        )
    return parser


# Commands that talk to AWS live in leanstack.deploy, with their own arguments.
DEPLOY_COMMANDS = ("deploy", "rollback", "releases")
# The app's day-2 operations: leanstack.operate (SSM config, Run Command, CloudWatch Logs).
OPERATE_COMMANDS = ("config", "restart", "run", "logs", "maintenance")
# Recovery commands with their own arguments, each in its module (the sealed secrets; the recovery stack).
RECOVERY_COMMANDS = {"secrets": "leanstack.sealed", "recover": "leanstack.recover", "db": "leanstack.db_restore"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        # The commands, as the module's docstring lists them (argparse would only say one is required).
        sys.stdout.write((__doc__ or "").split("\n\n", 1)[1].split("\n\nBASE", 1)[0] + "\n")
        return 0
    if argv[0] == "--version":
        print(f"leanstack {__version__}")
        return 0
    if argv[0] == "--repo" or argv[0].startswith("--repo="):
        where, argv = (argv[1:2], argv[2:]) if argv[0] == "--repo" else ([argv[0].split("=", 1)[1]], argv[1:])
        if not where or not Path(where[0]).is_dir() or not argv:
            print("leanstack: --repo needs a folder and then a command: leanstack --repo DIR plan dev", file=sys.stderr)
            return 2
        os.environ[PROJECT_ENV] = str(Path(where[0]).resolve())
    if argv and argv[0] in DEPLOY_COMMANDS:
        from leanstack import deploy

        return deploy.main(argv)
    if argv and argv[0] in OPERATE_COMMANDS:
        from leanstack import operate

        return operate.main(argv)
    if argv and argv[0] in RECOVERY_COMMANDS:
        import importlib

        return int(importlib.import_module(RECOVERY_COMMANDS[argv[0]]).main(argv[1:]))
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, StackFileError, InputError) as error:
        print(f"leanstack: {error}", file=sys.stderr)
        return 2


# Commands that load the providers and run the program (diff: in forked children), then exit.
PROGRAM_COMMANDS = ("plan", "runbook", "diff")

if __name__ == "__main__":
    if sys.argv[1:2] and sys.argv[1] in PROGRAM_COMMANDS:
        # Loading the providers and running the program leave ~640,000 objects for the cyclic
        # collector to track, nearly all alive until the process exits (a full collection at
        # the end frees 4 % of them; peak memory is the same without it), so its repeated
        # passes over them cost about a fifth of a plan's wall time for nothing. Only here,
        # for a one-shot process: never in the library, where the tests run the program
        # hundreds of times in one process.
        gc.disable()
    sys.exit(main())
