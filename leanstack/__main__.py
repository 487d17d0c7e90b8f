"""`python -m leanstack`: offline tooling for the stack, no cloud account needed.

    python -m leanstack plan STACK [--format text|markdown|json]   every resource, priced, with a diagram
    python -m leanstack diff BASE [HEAD] [--stack S] [--format text|markdown|json]
                                                                 what a change does, risk first
    python -m leanstack runbook STACK                            the recovery sheet of a stack, in Markdown
    python -m leanstack validate STACK                           check stacks/Pulumi.<STACK>.yaml
    python -m leanstack deploy STACK TAG | rollback STACK | releases STACK
                                                                 ship the app (needs AWS credentials)
    python -m leanstack schema                                   JSON Schema for the stack files
    python -m leanstack recovery-key new                         the recovery keypair (private half printed once)
    python -m leanstack secrets restore STACK --from-backup ...  the app's config and secrets from their
                                                                 sealed off-site copy (needs AWS credentials)

BASE and HEAD are git revisions (HEAD defaults to the working tree) or saved JSON plans.

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
import json
import sys
from collections.abc import Callable, Sequence

from leanstack.mocks import StackFileError, read_stack_config
from leanstack.settings import ConfigError, json_schema, load_stack_config

FORMATS = ("text", "markdown", "json")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints usage and exits 2; keep the exit code, make it one line.
        print(f"leanstack: {message}", file=sys.stderr)
        sys.exit(2)


class InputError(ValueError):
    """Bad input a subcommand found: printed as one line, exit 2."""


def cmd_plan(args: argparse.Namespace) -> int:
    raw = read_stack_config(args.stack)
    load_stack_config(raw, args.stack)
    # Imported here: loading the providers takes seconds, and validate/schema do not need them.
    from leanstack.mocks import run_program
    from leanstack.plan import POLICY_FAILED_EXIT, RENDERERS, build_plan, failed_policies

    plan = build_plan(run_program(args.stack, raw))
    sys.stdout.write(RENDERERS[args.format](plan))
    return POLICY_FAILED_EXIT if failed_policies(plan) else 0


def cmd_runbook(args: argparse.Namespace) -> int:
    from leanstack.runbook import RunbookError, render_runbook

    try:
        sys.stdout.write(render_runbook(args.stack))
    except RunbookError as error:
        raise InputError(str(error)) from None
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    load_stack_config(read_stack_config(args.stack), args.stack)
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


# One function per subcommand; a new subcommand adds a parser below and an entry here.
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "plan": cmd_plan,
    "diff": cmd_diff,
    "runbook": cmd_runbook,
    "validate": cmd_validate,
    "schema": cmd_schema,
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
    validate = commands.add_parser("validate", help="validate stacks/Pulumi.<stack>.yaml")
    validate.add_argument("stack")
    commands.add_parser("schema", help="print the JSON Schema of the stack files")
    recovery_key = commands.add_parser("recovery-key", help="make a recovery keypair (private half printed once)")
    recovery_key.add_argument("action", choices=("new",))
    commands.add_parser(
        "secrets", help="restore the app's config and secrets from the sealed off-site copy", add_help=False
    )
    for name, text in zip(
        DEPLOY_COMMANDS,
        ("deploy TAG of the app", "redeploy the previous good tag", "list the recorded releases"),
        strict=True,
    ):
        commands.add_parser(name, help=f"{text} (AWS credentials needed)", add_help=False)
    return parser


# Commands that talk to AWS live in leanstack.deploy, with their own arguments.
DEPLOY_COMMANDS = ("deploy", "rollback", "releases")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DEPLOY_COMMANDS:
        from leanstack import deploy

        return deploy.main(argv)
    if argv and argv[0] == "secrets":
        from leanstack import sealed

        return sealed.main(argv[1:])
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
