"""`python -m leanstack`: offline tooling for the stack, no cloud account needed.

    python -m leanstack plan STACK [--format text|json]   every resource the stack declares
    python -m leanstack validate STACK                    check stacks/Pulumi.<STACK>.yaml
    python -m leanstack schema                            JSON Schema for the stack files

Exit codes: 0 success, 2 bad input (one line on stderr naming what is wrong).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from leanstack.mocks import StackFileError, read_stack_config
from leanstack.settings import ConfigError, json_schema, load_stack_config


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints usage and exits 2; keep the exit code, make it one line.
        print(f"leanstack: {message}", file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m leanstack", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    plan = commands.add_parser("plan", help="print every resource the stack would create (offline)")
    plan.add_argument("stack")
    plan.add_argument("--format", choices=("text", "json"), default="text")
    validate = commands.add_parser("validate", help="validate stacks/Pulumi.<stack>.yaml")
    validate.add_argument("stack")
    commands.add_parser("schema", help="print the JSON Schema of the stack files")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "schema":
            sys.stdout.write(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
            return 0
        raw = read_stack_config(args.stack)
        load_stack_config(raw, args.stack)
        if args.command == "validate":
            print(f"stacks/Pulumi.{args.stack}.yaml: valid")
            return 0
        # Imported here: loading the providers takes seconds, and validate/schema do not need them.
        from leanstack.mocks import run_program
        from leanstack.plan import build_plan, render_json, render_text

        plan = build_plan(run_program(args.stack, raw))
        sys.stdout.write(render_json(plan) if args.format == "json" else render_text(plan))
        return 0
    except (ConfigError, StackFileError) as error:
        print(f"leanstack: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
