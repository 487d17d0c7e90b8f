"""How long `leanstack diff` over every stack takes, against one `plan` of one stack.

Prints the wall time of `python -m leanstack diff BASE` (every stack, both sides planned: BASE
from `git archive`, HEAD the working tree) and of `python -m leanstack plan dev`, the median of
alternating runs of each, and their ratio. Target: the diff takes at most 2x one plan.

BASE defaults to HEAD: the same work as `diff main` (every stack of two trees planned), and it
works on a branch whose plan format is newer than main's, which `diff main` refuses (exit 2)
until the branch is merged.

    .venv/bin/python bench/diff.py [--base main] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = 2.0


def wall(command: list[str], ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode not in ok:
        sys.exit(f"{' '.join(command[1:])} failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--base", default="HEAD", help="git revision to diff the working tree against")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    plan = [sys.executable, "-m", "leanstack", "plan", "dev"]
    diff = [sys.executable, "-m", "leanstack", "diff", args.base]
    stacks = sorted(p.name.split(".")[1] for p in (REPO / "stacks").glob("Pulumi.*.yaml"))
    wall(plan)  # warm the file cache and the bytecode
    plans, diffs = [], []
    for _ in range(args.runs):
        plans.append(wall(plan))
        diffs.append(wall(diff, ok=(0, 1)))  # 1: the diff found changes
    p, d = statistics.median(plans), statistics.median(diffs)
    print(f"python -m leanstack plan dev:                 median {p:.2f} s over {args.runs} runs")
    print(f"python -m leanstack diff {args.base} ({len(stacks)} stacks: {', '.join(stacks)}): median {d:.2f} s")
    print(f"ratio diff/plan: {d / p:.2f} (target <= {TARGET}: {'met' if d / p <= TARGET else 'NOT met'})")


if __name__ == "__main__":
    main()
