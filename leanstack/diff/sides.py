"""The two sides of a diff, each stack planned.

A side is a saved plan (`plan --format json`), a git revision or the working tree. A revision is
extracted with `git archive` into a temporary directory and planned with its own program,
components and stack files, never with this checkout's: the diff shows what the revision plans.

Every tree side is planned by one routine, `leanstack.diff.plan_stacks.plan_stacks`, in one
process per side that imports the tree's own leanstack. From the command line that process is a
child forked after the providers are loaded once, which both sides share (the import is most of
a plan's time); where forking is unsafe (other threads are running) or unavailable, it is a fresh
interpreter given the routine's text, the two sides in parallel. A tree whose leanstack predates
the routine's imports is planned by its own `python -m leanstack plan`, one stack per process.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import leanstack.diff.plan_stacks as planner
from leanstack.plan import PLAN_FORMAT_VERSION

WORKTREE = "working tree"
# The planning routine as the text of a `python -c` program: run by a fresh interpreter with the
# tree on PYTHONPATH, it plans with the tree's leanstack, which may have no such module of its own.
PLAN_STACKS = Path(planner.__file__).read_text(encoding="utf-8")


class DiffError(ValueError):
    """Bad input for the diff, said in one line."""


def check_plan(data: Any, where: str, fix: str = "re-create it with `plan --format json`") -> dict[str, Any]:
    if not isinstance(data, dict) or "leanstackPlan" not in data:
        raise DiffError(f"{where}: not a leanstack plan (make one with `python -m leanstack plan STACK --format json`)")
    if data["leanstackPlan"] != PLAN_FORMAT_VERSION:
        raise DiffError(
            f"{where}: a leanstack plan of format version {data['leanstackPlan']}; "
            f"this leanstack reads version {PLAN_FORMAT_VERSION}: {fix}"
        )
    if not isinstance(data.get("resources"), list) or not isinstance(data.get("stack"), str):
        raise DiffError(f"{where}: a leanstack plan without its stack or resources")
    return data


def load_plan_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DiffError(f"{path}: cannot read: {exc.__class__.__name__}") from None
    except json.JSONDecodeError as exc:
        raise DiffError(f"{path}: not JSON (line {exc.lineno}): not a leanstack plan") from None
    return check_plan(data, str(path))


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)


def git_root(start: Path) -> Path | None:
    done = _git(start, "rev-parse", "--show-toplevel")
    return Path(done.stdout.strip()) if done.returncode == 0 else None


class Source:
    """One side of the diff: a saved plan, a git revision or the working tree."""

    def __init__(self, spec: str | None, repo: Path) -> None:
        self.spec = spec or WORKTREE
        self.repo = repo
        self.plan: dict[str, Any] | None = None
        self.tree: Path | None = None
        self.commit = ""
        if spec is None:
            self.tree = repo
            return
        path = Path(spec)
        if path.suffix == ".json" or (path.is_file() and not _git(repo, "rev-parse", "--verify", "-q", spec).stdout):
            if not path.is_file():
                raise DiffError(f"{spec}: no such saved plan")
            self.plan = load_plan_file(path)
            return
        done = _git(repo, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}")
        if done.returncode != 0 or not done.stdout.strip():
            if git_root(repo) is None:
                raise DiffError(f"{spec}: not a saved plan, and {repo} is not a git repository")
            raise DiffError(f"unknown git revision {spec!r}")
        self.commit = done.stdout.strip()

    @property
    def label(self) -> str:
        if self.plan is not None:
            return self.spec
        return f"{self.spec} ({self.commit[:12]})" if self.commit and self.commit[:12] not in self.spec else self.spec

    def stacks(self) -> list[str]:
        if self.plan is not None:
            return [self.plan["stack"]]
        assert self.tree is not None
        return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in (self.tree / "stacks").glob("Pulumi.*.yaml"))

    def materialize(self, into: Path) -> None:
        """Extract the revision's tracked files (git archive) into `into`."""
        if not self.commit:
            return
        archive = into / "tree.tar"
        done = subprocess.run(
            ["git", "-C", str(self.repo), "archive", "--format=tar", "-o", str(archive), self.commit],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise DiffError(f"git archive {self.spec} failed: {done.stderr.strip().splitlines()[-1:]}")
        tree = into / "tree"
        tree.mkdir()
        with tarfile.open(archive) as tar:
            tar.extractall(tree, filter="data")
        archive.unlink()
        self.tree = tree

    def _run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        assert self.tree is not None
        env = dict(os.environ, PYTHONPATH=str(self.tree), PYTHONDONTWRITEBYTECODE="1")
        return subprocess.run(
            [sys.executable, *args], cwd=self.tree, env=env, capture_output=True, text=True, check=False
        )

    def present(self, stacks: list[str]) -> list[str]:
        """The stacks that exist on this side (a tree's stack files)."""
        assert self.tree is not None
        return [s for s in stacks if (self.tree / "stacks" / f"Pulumi.{s}.yaml").exists()]

    def plan_texts(self, stacks: list[str]) -> dict[str, str]:
        """`plan --format json` of each stack, in one fresh interpreter with the tree's own leanstack."""
        done = self._run(["-c", PLAN_STACKS, *stacks])
        if done.returncode == planner.TOO_OLD_EXIT:  # an older leanstack: one `plan` process per stack
            return {stack: self._plan_one(stack) for stack in stacks}
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise DiffError(f"planning the stacks at {self.spec} failed: {last}")
        return _answers(json.loads(done.stdout), self.spec)

    def plans(self, stacks: list[str], texts: dict[str, str] | None = None) -> dict[str, dict[str, Any] | None]:
        """Each stack's plan on this side (None where the stack does not exist here)."""
        if self.plan is not None:
            return {s: self.plan if self.plan["stack"] == s else None for s in stacks}
        if texts is None:
            present = self.present(stacks)
            texts = self.plan_texts(present) if present else {}
        out: dict[str, dict[str, Any] | None] = {s: None for s in stacks}
        for stack, text in texts.items():
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                raise DiffError(f"plan of stack {stack!r} at {self.spec} did not print a JSON plan") from None
            out[stack] = check_plan(
                data,
                f"plan of stack {stack!r} at {self.spec}",
                "diff revisions whose leanstack writes the same plan format (a revision from before the "
                "format changed cannot be compared)",
            )
        return out

    def _plan_one(self, stack: str) -> str:
        done = self._run(["-m", "leanstack", "plan", stack, "--format", "json"])
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1].removeprefix("leanstack: ")
            raise DiffError(f"plan of stack {stack!r} at {self.spec} failed: {last}")
        return done.stdout


def _answers(answers: dict[str, dict[str, str]], spec: str) -> dict[str, str]:
    texts = {}
    for stack, answer in answers.items():
        if "error" in answer:
            raise DiffError(f"plan of stack {stack!r} at {spec} failed: {answer['error']}")
        texts[stack] = answer["plan"]
    return texts


# The provider modules the program uses, loaded once before forking so that both sides share them.
PRELOAD = (
    "pulumi_aws.acm", "pulumi_aws.autoscaling", "pulumi_aws.cloudwatch", "pulumi_aws.ec2", "pulumi_aws.ecr",
    "pulumi_aws.elasticache", "pulumi_aws.iam", "pulumi_aws.lb", "pulumi_aws.rds", "pulumi_aws.route53",
    "pulumi_aws.s3", "pulumi_aws.sns", "pulumi_aws.ssm", "pulumi_aws.vpc", "pulumi_cloudflare", "pulumi_tls",
    "pulumi_random",
)  # fmt: skip
# This checkout's own modules, forgotten in a forked child so that it imports the tree's.
OWN_PACKAGES = frozenset({"leanstack", "components", "policy", "host"})


def _child_plans(tree: Path, stacks: list[str], out: Path) -> None:
    """In a forked child: forget this checkout's modules, plan `stacks` with the tree's own, write the answers."""
    for name in [m for m in sys.modules if m.split(".")[0] in OWN_PACKAGES]:
        del sys.modules[name]
    sys.path.insert(0, str(tree))
    sys.dont_write_bytecode = True
    os.chdir(tree)
    answers = planner.plan_stacks(stacks)
    out.write_text(json.dumps({"fallback": True} if answers is None else {"answers": answers}))


def plan_sides_forked(sides: list[tuple[Source, list[str]]], tmp: Path) -> list[dict[str, str]]:
    """Plan each side's stacks in a child forked from this process after loading the providers once:
    the import both sides would pay is paid once, and the children run in parallel. Output is
    byte-identical to `plan --format json` (the children run the trees' own `plan` code)."""
    import gc
    import importlib

    for module in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    gc.collect()
    gc.freeze()  # keep the shared pages shared after the fork
    children = []
    for n, (side, stacks) in enumerate(sides):
        assert side.tree is not None
        out = tmp / f"plans-{n}.json"
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                _child_plans(side.tree, stacks, out)
                code = 0
            finally:
                os._exit(code)
        children.append((pid, out, side, stacks))
    results = []
    for pid, out, side, stacks in children:
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0 or not out.exists():
            raise DiffError(f"planning the stacks at {side.spec} failed (exit {os.waitstatus_to_exitcode(status)})")
        answer = json.loads(out.read_text())
        results.append(side.plan_texts(stacks) if answer.get("fallback") else _answers(answer["answers"], side.spec))
    gc.unfreeze()
    return results


def refuse_mismatch(base: Source, head: Source) -> None:
    """Two saved plans must describe one stack."""
    if base.plan is not None and head.plan is not None and base.plan["stack"] != head.plan["stack"]:
        raise DiffError(
            f"{base.spec} is a plan of stack {base.plan['stack']!r} and {head.spec} of stack "
            f"{head.plan['stack']!r}: a diff compares two plans of one stack"
        )


def stack_names(base: Source, head: Source, wanted: list[str] | None) -> list[str]:
    """The stacks to diff: those of either side (of the saved plans, when one side is a plan), or `wanted`."""
    names = sorted(set(base.stacks()) | set(head.stacks()))
    if base.plan is not None or head.plan is not None:
        names = sorted({s.plan["stack"] for s in (base, head) if s.plan is not None})
    if wanted:
        missing = [s for s in wanted if s not in names]
        if missing:
            raise DiffError(f"unknown stack {missing[0]!r} (stacks: {', '.join(names) or 'none'})")
        names = sorted(wanted)
    return names


def plan_sides(base: Source, head: Source, names: list[str], tmp: Path) -> list[dict[str, dict[str, Any] | None]]:
    """Each side's plan of each stack in `names` (None where the side lacks the stack), base first."""
    sides = (base, head)
    trees = [(side, side.present(names)) for side in sides if side.plan is None]
    # Forking is safe only without other threads (a lock one holds would stay held in the child):
    # true in the command line, not in a process that already ran the program (the tests).
    if hasattr(os, "fork") and trees and threading.active_count() == 1:
        forked = iter(plan_sides_forked(trees, tmp))
        texts = [None if side.plan is not None else next(forked) for side in sides]
        return [side.plans(names, t) for side, t in zip(sides, texts, strict=True)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda side: side.plans(names), sides))


def plan_both(
    base: Source, head: Source, wanted: list[str] | None
) -> tuple[list[str], list[dict[str, dict[str, Any] | None]]]:
    """The stacks to diff, and both sides' plans of them (revisions extracted into a temporary directory)."""
    with tempfile.TemporaryDirectory(prefix="leanstack-diff-") as tmp:
        for n, side in enumerate((base, head)):
            where = Path(tmp) / str(n)
            where.mkdir()
            side.materialize(where)
        names = stack_names(base, head, wanted)
        return names, plan_sides(base, head, names, Path(tmp))
