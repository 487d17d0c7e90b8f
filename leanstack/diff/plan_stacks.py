"""Plan stacks with whichever leanstack is importable: the one routine that plans a side of a diff.

It imports nothing of leanstack at module level, because it runs where the leanstack to import is
another tree's: in a child forked from the diff that has just forgotten this checkout's modules, or
as the text of a fresh interpreter's `-c` program with the tree on PYTHONPATH. It takes the same
steps as `python -m leanstack plan STACK --format json`, so its output is byte-identical to that
command's (tested).
"""

from __future__ import annotations

import gc
import json
import os
import sys

# The exit status of the `-c` program when the importable leanstack lacks the functions used here:
# the caller then plans with that tree's own `python -m leanstack plan`, one stack at a time.
TOO_OLD_EXIT = 3


def plan_stacks(stacks: list[str]) -> dict[str, dict[str, str]] | None:
    """{stack: {"plan": <plan --format json output>} or {"error": "..."}}; None when the importable
    leanstack lacks these functions."""
    gc.disable()  # the process plans and exits: collecting would only cost time
    os.environ.pop("LEANSTACK_STACKS", None)  # each tree's own stacks/, whatever the caller points at
    try:
        from leanstack.config import ConfigError, load_stack_config
        from leanstack.mocks import StackFileError, read_stack_config, run_program
        from leanstack.plan import build_plan, render_json
    except ImportError:
        return None
    answers: dict[str, dict[str, str]] = {}
    for stack in stacks:
        try:
            raw = read_stack_config(stack)
            load_stack_config(raw, stack)
            answers[stack] = {"plan": render_json(build_plan(run_program(stack, raw)))}
        except (ConfigError, StackFileError) as error:
            answers[stack] = {"error": str(error)}
    return answers


if __name__ == "__main__":
    planned = plan_stacks(sys.argv[1:])
    if planned is None:
        sys.exit(TOO_OLD_EXIT)
    sys.stdout.write(json.dumps(planned))
