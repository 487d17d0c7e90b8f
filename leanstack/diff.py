"""`leanstack diff BASE [HEAD]`: what a change does to every stack, risk first.

BASE and HEAD are git revisions or saved JSON plans (`plan --format json`); HEAD defaults
to the working tree. A git revision is materialized with `git archive` in a temporary
directory and planned there with the revision's own program, components and stack files:
all stacks of one side in one process forked after loading the providers once, the two sides in
parallel. Two saved plans must be plans of one stack and of this format version.

Resources are matched by URN, then by the aliases a resource carries (a rename with an alias
is no change). For each stack the diff lists what is added, removed and changed, every
changed value in full: JSON documents (IAM and bucket policies, event patterns) as the
statements, actions and keys added or removed; user data decoded (base64, gzip, the
cloud-config and each file it writes) as a unified diff; long text as the lines that differ
with context.

Risk comes first, in plain words, in these kinds: a mandatory policy rule newly failing, data
loss, refused by AWS, downtime, exposure, weaker safety, orphaned. Each says what will happen
and what to do instead. What a property change does to a resource type (replace, stop/start,
reboot, nothing) is read from `leanstack.resource_facts`, the one table of those facts.

Nothing here imports Pulumi: the diff of two saved plans takes a fraction of a second.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import difflib
import gzip
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

import leanstack.config.resource_types as resource_types
from leanstack.cost import estimate, fmt_delta, fmt_money, money
from leanstack.plan import PLAN_FORMAT_VERSION, POLICY_FAILED_EXIT, ingress_openings, source_kind
from leanstack.resource_facts import DOWNGRADE, SHRINK, Facts, facts_for

WORKTREE = "working tree"

# Risk kinds, most severe first.
POLICY = "mandatory policy fails"
DATA_LOSS = "data loss"
REFUSED = "refused by AWS"
DOWNTIME = "downtime"
EXPOSURE = "exposure"
WEAKER = "weaker safety"
ORPHANED = "orphaned"
RISK_ORDER = (POLICY, DATA_LOSS, REFUSED, DOWNTIME, EXPOSURE, WEAKER, ORPHANED)


HOST = resource_types.EC2_INSTANCE.token
BUCKET_TYPES = resource_types.tokens_in(resource_types.BUCKET)
OBJECT_LOCK_TYPES = resource_types.tokens_in(resource_types.OBJECT_LOCK)
LIFECYCLE_TYPES = resource_types.tokens_in(resource_types.LIFECYCLE)
ENCRYPTION_CONFIG_TYPES = resource_types.tokens_in(resource_types.BUCKET_ENCRYPTION)
IAM_DOCUMENT_TYPES = resource_types.tokens_in(resource_types.IAM_DOCUMENT)
USER_DATA = ("userData", "userDataBase64")
CONTEXT_LINES = 2


class DiffError(ValueError):
    """Bad input for the diff, said in one line."""


# --------------------------------------------------------------------------- loading plans


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


# Plans every stack named on the command line in one process, with the tree's own leanstack
# (PYTHONPATH), printing {stack: {"plan": <plan --format json output>} or {"error": "..."}}.
# The same steps as `python -m leanstack plan STACK --format json`, so the output is
# byte-identical to it (tested); exit 3 when the tree's leanstack lacks these functions.
PLAN_ALL = r"""
import gc, json, os, sys
gc.disable()
os.environ.pop("LEANSTACK_STACKS", None)  # each tree's own stacks/, whatever the caller points at
try:
    from leanstack.mocks import StackFileError, read_stack_config, run_program
    from leanstack.plan import build_plan, render_json
    from leanstack.config import ConfigError, load_stack_config
except ImportError:
    sys.exit(3)
out = {}
for stack in sys.argv[1:]:
    try:
        raw = read_stack_config(stack)
        load_stack_config(raw, stack)
        out[stack] = {"plan": render_json(build_plan(run_program(stack, raw)))}
    except (ConfigError, StackFileError) as error:
        out[stack] = {"error": str(error)}
sys.stdout.write(json.dumps(out))
"""


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
        """`plan --format json` of each stack, in one subprocess with the tree's own leanstack."""
        done = self._run(["-c", PLAN_ALL, *stacks])
        if done.returncode == 3:  # an older leanstack: one `plan` process per stack
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
    """In a forked child: plan `stacks` with the tree's own program and leanstack, write the answers."""
    import gc
    import importlib

    gc.disable()
    os.environ.pop("LEANSTACK_STACKS", None)  # each tree's own stacks/, whatever the caller points at
    for name in [m for m in sys.modules if m.split(".")[0] in OWN_PACKAGES]:
        del sys.modules[name]
    sys.path.insert(0, str(tree))
    sys.dont_write_bytecode = True
    os.chdir(tree)
    try:
        mocks = importlib.import_module("leanstack.mocks")
        plan = importlib.import_module("leanstack.plan")
        settings = importlib.import_module("leanstack.config")
        read, run, build, render = mocks.read_stack_config, mocks.run_program, plan.build_plan, plan.render_json
        load, errors = settings.load_stack_config, (settings.ConfigError, mocks.StackFileError)
    except (ImportError, AttributeError):
        out.write_text(json.dumps({"fallback": True}))
        return
    answers: dict[str, dict[str, str]] = {}
    for stack in stacks:
        try:
            raw = read(stack)
            load(raw, stack)
            answers[stack] = {"plan": render(build(run(stack, raw)))}
        except errors as error:
            answers[stack] = {"error": str(error)}
    out.write_text(json.dumps({"answers": answers}))


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


# --------------------------------------------------------------------------- readable values


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _show(value: Any) -> str:
    """A value in full, as compact JSON (strings quoted)."""
    return _canon(value)


def parse_document(value: Any) -> Any:
    """A JSON document held in a string (a policy, an event pattern), or None when it is not one."""
    if not isinstance(value, str) or not value.lstrip().startswith(("{", "[")):
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict | list) else None


def json_changes(old: Any, new: Any, path: str = "") -> list[str]:
    """Structural differences of two JSON values, one line each: `+ path: value` for what is
    added, `- path: value` for what is removed. Lists are compared as sets of items, so an
    action added to a statement reads as that action; statements are paired by `Sid`."""
    if isinstance(old, dict) and isinstance(new, dict):
        lines: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in new:
                lines.append(f"- {where}: {_show(old[key])}")
            elif key not in old:
                lines.append(f"+ {where}: {_show(new[key])}")
            elif old[key] != new[key]:
                lines += json_changes(old[key], new[key], where)
        return lines
    if isinstance(old, list) and isinstance(new, list):
        return _list_changes(old, new, path)
    if isinstance(old, list) or isinstance(new, list):
        # IAM allows "Action": "s3:GetObject" or a list of them: compare as lists.
        return _list_changes(old if isinstance(old, list) else [old], new if isinstance(new, list) else [new], path)
    return [f"- {path}: {_show(old)}", f"+ {path}: {_show(new)}"]


def _list_changes(old: list[Any], new: list[Any], path: str) -> list[str]:
    gone = [x for x in old if _canon(x) not in {_canon(y) for y in new}]
    came = [x for x in new if _canon(x) not in {_canon(y) for y in old}]
    lines: list[str] = []
    # Pair changed dicts (statements) by Sid, else by position among the changed ones.
    while gone and came and isinstance(gone[0], dict):
        first = gone.pop(0)
        sid = first.get("Sid")
        match = next((c for c in came if isinstance(c, dict) and sid is not None and c.get("Sid") == sid), None)
        if match is None and sid is None:
            match = next((c for c in came if isinstance(c, dict) and "Sid" not in c), None)
        if match is None:
            lines.append(f"- {path}[]: {_show(first)}")
            continue
        came.remove(match)
        label = f"{path}[Sid={sid}]" if sid is not None else f"{path}[{old.index(first)}]"
        lines += json_changes(first, match, label)
    lines += [f"- {path}[]: {_show(x)}" for x in gone]
    lines += [f"+ {path}[]: {_show(x)}" for x in came]
    return lines


def decode_user_data(value: Any) -> str | None:
    """User data as the host reads it: base64 and gzip undone; None when it is not text."""
    if not isinstance(value, str):
        return None
    raw: bytes = value.encode()
    try:
        decoded = base64.b64decode(value, validate=True)
        raw = decoded
    except (binascii.Error, ValueError):
        pass
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _text_diff(old: str, new: str, label: str) -> list[str]:
    """The lines that differ, with context, as a unified diff (never cut)."""
    diff = difflib.unified_diff(
        old.splitlines(), new.splitlines(), f"a/{label}", f"b/{label}", n=CONTEXT_LINES, lineterm=""
    )
    return list(diff)


def _cloud_config(text: str) -> dict[str, Any] | None:
    if not text.startswith("#cloud-config"):
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def _file_content(entry: dict[str, Any]) -> str:
    content = str(entry.get("content") or "")
    encoding = str(entry.get("encoding") or "")
    if encoding in ("b64", "base64", "gz+b64", "gzip+base64", "gz+base64", "gzip+b64"):
        return decode_user_data(content) or content
    return content


def user_data_changes(old: Any, new: Any) -> tuple[list[str], list[str]]:
    """(summary, unified diff lines) of two user data values, decoded. The summary names the
    files of the cloud-config that are added, removed or changed."""
    a, b = decode_user_data(old), decode_user_data(new)
    if a is None or b is None:
        return ["user data is not text: compared as a whole"], [f"- {_show(old)}", f"+ {_show(new)}"]
    ca, cb = _cloud_config(a), _cloud_config(b)
    if ca is None or cb is None:
        return ["user data (decoded)"], _text_diff(a, b, "user-data")
    files_a = {str(f.get("path")): f for f in ca.get("write_files") or [] if isinstance(f, dict)}
    files_b = {str(f.get("path")): f for f in cb.get("write_files") or [] if isinstance(f, dict)}
    summary: list[str] = []
    lines: list[str] = []
    for path in sorted(set(files_a) | set(files_b)):
        fa, fb = files_a.get(path), files_b.get(path)
        if fa == fb:
            continue
        body_a = _file_content(fa) if fa else ""
        body_b = _file_content(fb) if fb else ""
        verb = "added" if fa is None else "removed" if fb is None else "changed"
        summary.append(f"cloud-config file {path} {verb}")
        lines += _text_diff(body_a, body_b, path.lstrip("/"))
        meta_a = {k: v for k, v in (fa or {}).items() if k != "content"}
        meta_b = {k: v for k, v in (fb or {}).items() if k != "content"}
        if fa and fb and meta_a != meta_b:
            lines += [f"  {path}: {line}" for line in json_changes(meta_a, meta_b)]
    rest_a = {k: v for k, v in ca.items() if k != "write_files"}
    rest_b = {k: v for k, v in cb.items() if k != "write_files"}
    if rest_a != rest_b:
        summary.append(
            "cloud-config "
            + ", ".join(sorted(k for k in set(rest_a) | set(rest_b) if rest_a.get(k) != rest_b.get(k)))
            + " changed"
        )
        lines += json_changes(rest_a, rest_b, "cloud-config")
    return summary or ["user data re-encoded, same content"], lines


def _brief(change: dict[str, Any]) -> str:
    """A change in a few words, for a risk line: the values when short, else what changed."""
    if "old" not in change:
        return str(change["property"])
    old, new = _show(change["old"]), _show(change["new"])
    if len(old) + len(new) <= 80:
        return f"`{change['property']}` {old} → {new}"
    if change["property"] in USER_DATA:
        summary, _ = user_data_changes(change["old"], change["new"])
        return f"`{change['property']}` changes: {'; '.join(summary)}"
    return f"`{change['property']}` changes (shown below)"


def inline_diff(old: str, new: str, context: int = 6) -> str:
    """One line of text with the words that differ marked [-old-]{+new+}, a few words either side."""
    a, b = old.split(" "), new.split(" ")
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    parts: list[str] = []
    ops = matcher.get_opcodes()
    for n, (tag, i1, i2, j1, j2) in enumerate(ops):
        if tag == "equal":
            words = a[i1:i2]
            first, last = n == 0, n == len(ops) - 1
            if len(words) > 2 * context or (first and len(words) > context) or (last and len(words) > context):
                head = [] if first else words[:context]
                tail = [] if last else words[-context:]
                words = [*head, "…", *tail]
            parts.append(" ".join(words))
        else:
            if i2 > i1:
                parts.append("[-" + " ".join(a[i1:i2]) + "-]")
            if j2 > j1:
                parts.append("{+" + " ".join(b[j1:j2]) + "+}")
    return " ".join(p for p in parts if p)


def render_change(change: dict[str, Any]) -> list[str]:
    """One changed property as readable lines: a one-line `old → new` for short values, a
    structural diff for JSON documents, a unified diff for user data and long text."""
    prop, old, new = change["property"], change["old"], change["new"]
    if prop in USER_DATA:
        summary, lines = user_data_changes(old, new)
        return [f"{prop} (decoded): {'; '.join(summary)}"] + [f"    {line}" for line in lines]
    doc_a, doc_b = parse_document(old), parse_document(new)
    if doc_a is not None and doc_b is not None:
        return [f"{prop} (JSON document):"] + [f"    {line}" for line in json_changes(doc_a, doc_b)]
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        return [f"{prop} (text):"] + [f"    {line}" for line in _text_diff(old, new, prop)]
    if isinstance(old, str) and isinstance(new, str) and len(old) + len(new) > 160:
        return [f"{prop} (words marked [-removed-] {{+added+}}): {inline_diff(old, new)}"]
    if isinstance(old, list | dict) and isinstance(new, list | dict) and len(_show(old)) + len(_show(new)) > 160:
        return [f"{prop}:"] + [f"    {line}" for line in json_changes(old, new)]
    return [f"{prop}: {_show(old)} → {_show(new)}"]


# --------------------------------------------------------------------------- comparing


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted paths; lists stay whole values (compared as a whole)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _get(inputs: dict[str, Any], path: str) -> Any:
    value: Any = inputs
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def property_changes(
    old: dict[str, Any], new: dict[str, Any], renamed: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Changed inputs (dotted paths) and options. `renamed` maps an aliased provider's new name
    to its old one: a resource whose provider was only renamed keeps its provider."""
    a, b = flatten(old["inputs"]), flatten(new["inputs"])
    changes = [
        {"property": key, "old": a.get(key), "new": b.get(key)}
        for key in sorted(set(a) | set(b))
        if a.get(key) != b.get(key)
    ]
    for key in ("protect", "retainOnDelete", "provider", "region"):
        after = new["options"].get(key)
        if key == "provider" and renamed:
            after = renamed.get(str(after), after)
        if old["options"].get(key) != after:
            changes.append(
                {"property": f"options.{key}", "old": old["options"].get(key), "new": new["options"].get(key)}
            )
    return changes


def facts_of(r: dict[str, Any]) -> Facts:
    found = facts_for(r["type"])
    if found is None:
        return Facts(r["type"].rsplit(":", 1)[-1], "not in leanstack/resource_facts.py: effects unknown")
    return found


def forcing_changes(r: dict[str, Any], changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The changes that make the provider replace `r` (its region included)."""
    facts = facts_of(r)
    out = []
    for c in changes:
        path = c["property"]
        top = path.split(".")[0]
        flag = facts.replaces_if.get(top)
        conditional = bool(flag) and bool(r["inputs"].get(flag))
        if path == "options.region" or top in facts.replaces or path in facts.replaces or conditional:
            out.append(c)
    return out


def holds_data(r: dict[str, Any]) -> bool:
    """Whether replacing or deleting `r` loses something. A read replica holds only a copy of
    its source (removing one loses nothing; the source is still there)."""
    return bool(facts_of(r).holds_data) and not r["inputs"].get("replicateSourceDb")


def _what(r: dict[str, Any]) -> str:
    if r["inputs"].get("replicateSourceDb"):
        return f"read replica `{r['name']}`"
    return f"{facts_of(r).what} `{r['name']}`"


def _old_names(r: dict[str, Any]) -> set[str]:
    return set(r.get("aliases") or [])


def match_resources(
    old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]
) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """(pairs of old URN, new URN for the same resource, URNs only old, URNs only new).
    A new resource is the old one when it has the same URN or lists the old URN in its aliases."""
    pairs = [(u, u) for u in sorted(set(old) & set(new))]
    only_old = set(old) - set(new)
    only_new = set(new) - set(old)
    for urn in sorted(only_new):
        hit = sorted(_old_names(new[urn]) & only_old)
        if hit:
            pairs.append((hit[0], urn))
            only_old.discard(hit[0])
            only_new.discard(urn)
    return pairs, sorted(only_old), sorted(only_new)


def _component_name(r: dict[str, Any]) -> str:
    return str(r["name"]).split("-", 1)[0]


def renamed_without_alias(
    removed: list[dict[str, Any]], added: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Removed and added resources that are the same thing under a new name (same type, same
    component, and the same name after the component's own name)."""
    out = []
    taken: set[str] = set()
    for r in removed:
        rest = r["name"].split("-", 1)[1] if "-" in r["name"] else ""
        for a in added:
            if a["urn"] in taken or a["type"] != r["type"] or a["component"] != r["component"]:
                continue
            a_rest = a["name"].split("-", 1)[1] if "-" in a["name"] else ""
            if a["name"] == r["name"] or (rest and a_rest == rest):
                out.append((r, a))
                taken.add(a["urn"])
                break
    return out


def _version(text: Any) -> tuple[int, ...] | None:
    parts = re.findall(r"\d+", str(text or ""))
    return tuple(int(p) for p in parts) if parts else None


def _lock(r: dict[str, Any]) -> tuple[str, int]:
    rule = (r["inputs"].get("rule") or {}).get("defaultRetention") or {}
    return str(rule.get("mode") or ""), int(rule.get("days") or 0) + 365 * int(rule.get("years") or 0)


def _expiry_days(r: dict[str, Any]) -> int:
    days = [
        int((rule.get("expiration") or {}).get("days") or 0)
        for rule in r["inputs"].get("rules") or []
        if rule.get("status", "Enabled") == "Enabled"
    ]
    return min([d for d in days if d] or [0])


def _world_openings(resources: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (o["component"], o["name"], o["port"])
        for o in ingress_openings(resources)
        if o["cidrs"] and source_kind(o["cidrs"]) == "internet"
    }


def _allowed(document: Any) -> set[tuple[str, str]]:
    """(action, resource) pairs an IAM document allows, for what a change newly grants."""
    if not isinstance(document, dict):
        return set()
    statements = document.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    out: set[tuple[str, str]] = set()
    for st in statements:
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        actions = st.get("Action") or st.get("NotAction") or []
        resources = st.get("Resource") or st.get("NotResource") or ["*"]
        principal = st.get("Principal")
        for action in [actions] if isinstance(actions, str) else actions:
            for resource in [resources] if isinstance(resources, str) else resources:
                out.add((str(action), str(resource) + (f" for {_canon(principal)}" if principal else "")))
    return out


def _hosts(plan: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [r for r in (plan or {}).get("resources", []) if r["type"] == HOST]


def _aws_window(r: dict[str, Any]) -> str:
    window = r["inputs"].get("maintenanceWindow")
    return f"the maintenance window ({window} UTC)" if window else "the next maintenance window"


class Findings:
    """Risks and notes collected for one stack."""

    def __init__(self, stack: str) -> None:
        self.stack = stack
        self.risks: list[dict[str, str]] = []
        self.notes: dict[str, list[str]] = {}

    def risk(self, kind: str, r: dict[str, Any], text: str) -> None:
        item = {"stack": self.stack, "kind": kind, "type": r["type"], "name": r["name"], "urn": r["urn"], "text": text}
        if item not in self.risks:
            self.risks.append(item)

    def note(self, r: dict[str, Any], text: str) -> None:
        self.notes.setdefault(r["urn"], [])
        if text not in self.notes[r["urn"]]:
            self.notes[r["urn"]].append(text)

    def sorted(self) -> list[dict[str, str]]:
        order = list(RISK_ORDER)
        return sorted(self.risks, key=lambda f: (order.index(f["kind"]), f["name"], f["text"]))


COPY_ADVICE = (
    "until the next backup runs the new bucket holds none, and restores must read the old one. Copy the objects "
    "across (`aws s3 sync s3://OLD s3://NEW --source-region OLD_REGION --region NEW_REGION`, or S3 Batch "
    "Replication to keep every version), and delete the old bucket by hand once its objects' lock has expired"
)


RDS_INSTANCE = resource_types.RDS_INSTANCE.token


def deleted_with(r: dict[str, Any]) -> str:
    """What goes when `r` is deleted, as its own settings say (an RDS instance's final snapshot and backups)."""
    facts = facts_of(r)
    if r["type"] != RDS_INSTANCE:
        return facts.holds_data
    inputs = r["inputs"]
    snapshot = inputs.get("finalSnapshotIdentifier")
    if inputs.get("skipFinalSnapshot") is False and snapshot:
        kept = f"RDS first takes the final snapshot `{snapshot}`"
    else:
        kept = "RDS takes no final snapshot (skipFinalSnapshot is true)"
    if inputs.get("deleteAutomatedBackups") is False:
        days = inputs.get("backupRetentionPeriod")
        until = f"their {days}-day retention" if days else "their retention"
        backups = f"its automated backups are kept (deleteAutomatedBackups is false) until {until} ends"
    else:
        backups = "its automated backups are deleted with it (deleteAutomatedBackups is true)"
    return f"its data ({kept}; {backups})"


def _replacement_risk(
    f: Findings, old: dict[str, Any], new: dict[str, Any], why: str, head: dict[str, Any] | None
) -> None:
    facts = facts_of(new)
    if old["options"].get("protect"):
        f.risk(
            REFUSED,
            new,
            f"{_what(new)} is protected (Pulumi `protect`): `pulumi up` stops at its replacement ({why}); "
            f"remove `protect` in a separate, reviewed change only if losing it is intended",
        )
    if (
        new["type"] in BUCKET_TYPES
        and new["inputs"].get("bucket")
        and old["inputs"].get("bucket") == new["inputs"].get("bucket")
    ):
        f.risk(
            REFUSED,
            new,
            f"{_what(new)} is replaced ({why}) under the same name `{new['inputs']['bucket']}`: S3 bucket names are "
            f"global, so the new bucket cannot be created while the old one exists: `pulumi up` fails. Instead: "
            f"give the new bucket another name (`backup.bucketName`)",
        )
    if holds_data(new) and old["options"].get("retainOnDelete"):
        f.risk(
            ORPHANED,
            new,
            f"{_what(new)} is replaced ({why}): Pulumi creates a new, EMPTY {facts.what} and leaves the old one "
            f"in place, unmanaged and still billed, with {deleted_with(old)}; {COPY_ADVICE}",
        )
    elif holds_data(new):
        f.risk(
            DATA_LOSS,
            new,
            f"{_what(new)} is REPLACED ({why}): a new, empty {facts.what}; the old one is deleted with "
            f"{deleted_with(old)}. Instead: {facts.keep_data}",
        )
    if new["type"] == HOST:
        only = len(_hosts(head)) == 1
        f.risk(
            DOWNTIME,
            new,
            f"{'the only host' if only else 'host'} `{new['name']}` is REPLACED ({why}): the site is down until the "
            f"new host has booted, installed its packages and passes its health check (minutes); anything on its "
            f"disk is gone (the database and backups are untouched). Instead: apply it at a quiet hour, or run two "
            f"hosts (`hosts.count`), whose launch template change rolls one host at a time",
        )


def _in_place_risks(f: Findings, c: dict[str, Any], head: dict[str, Any] | None, refused: set[str]) -> None:
    new = c["new"]
    facts = facts_of(new)
    forced = {x["property"].split(".")[0] for x in c["replacedBy"]}
    changed = {x["property"].split(".")[0] for x in c["changes"]} - forced - refused
    deferred = bool(facts.deferred_by) and new["inputs"].get(facts.deferred_by) is False
    # A replaced resource is created anew with every new value: no in-place effect applies to it.
    for prop in sorted(changed & set(facts.in_place)) if not c["replaced"] else []:
        effect = facts.in_place[prop]
        if new["type"] == HOST and not c["replaced"]:
            only = len(_hosts(head)) == 1
            f.risk(
                DOWNTIME,
                new,
                f"{'the only host' if only else 'host'} `{new['name']}`: `{prop}` changes: {effect}. Instead: apply it "
                f"in a quiet hour",
            )
        elif prop == "multiAz":
            f.note(new, f"`multiAz`: {effect}")
        elif prop == "parameters":
            f.note(new, f"`parameters`: {effect}")
        elif deferred:
            f.note(
                new,
                f"`{prop}` applies in {_aws_window(new)}, not at `pulumi up` ({facts.deferred_by} is false); "
                f"then: {effect}",
            )
        elif facts.deferred_by:
            f.risk(
                DOWNTIME,
                new,
                f"{_what(new)}: `{prop}` changes at `pulumi up`: {effect}. Instead: set {facts.deferred_by} false so "
                f"it waits for the maintenance window",
            )
        else:
            f.note(new, f"`{prop}`: {effect}")
    if new["type"] == resource_types.EC2_LAUNCH_TEMPLATE.token and changed - {"tags", "tagSpecifications"}:
        groups = [
            r
            for r in (head or {}).get("resources", [])
            if r["type"] == resource_types.AUTOSCALING_GROUP.token
            and (r["inputs"].get("launchTemplate") or {}).get("id") == new.get("id")
        ]
        for g in groups:
            refresh = (g["inputs"].get("instanceRefresh") or {}).get("preferences") or {}
            healthy = refresh.get("minHealthyPercentage")
            if not g["inputs"].get("instanceRefresh"):
                f.risk(
                    DOWNTIME,
                    g,
                    f"{_what(g)}: launch template `{new['name']}` changes but the group has no instance refresh: "
                    f"its hosts keep the old version until replaced by hand",
                )
            elif healthy is not None and int(healthy) >= 100:
                f.note(
                    g,
                    f"launch template `{new['name']}` changed: a rolling instance refresh launches each new host "
                    f"before terminating an old one (min healthy {healthy} %): no downtime expected",
                )
            else:
                f.risk(
                    DOWNTIME,
                    g,
                    f"{_what(g)}: launch template `{new['name']}` changed: the instance refresh terminates hosts "
                    f"before their replacements are healthy (min healthy {healthy} %): the work they do pauses for "
                    f"minutes",
                )


def _refusals(f: Findings, old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    """Flag the changes AWS refuses; return their properties."""
    facts = facts_of(new)
    refused: set[str] = set()
    for prop, rule in sorted(facts.refused.items()):
        before, after = _get(old["inputs"], prop), _get(new["inputs"], prop)
        if before is None or after is None or before == after:
            continue
        if rule == DOWNGRADE:
            a, b = _version(before), _version(after)
            if a is not None and b is not None and b < a[: len(b)]:
                refused.add(prop)
                f.risk(
                    REFUSED,
                    new,
                    f"{_what(new)}: `{prop}` {before} → {after} is a downgrade, which AWS refuses: `pulumi up` will "
                    f"fail at this step (after applying the changes before it). Instead: keep {before}, or restore "
                    f"a dump into a new {after} instance and switch",
                )
        elif rule == SHRINK and isinstance(before, int | float) and isinstance(after, int | float) and after < before:
            refused.add(prop)
            f.risk(
                REFUSED,
                new,
                f"{_what(new)}: `{prop}` {before} → {after} shrinks it, which AWS refuses: `pulumi up` will fail at "
                f"this step. Instead: keep {before}"
                + (", or restore a dump into a new, smaller instance" if facts.holds_data else ""),
            )
    return refused


def _safety_risks(f: Findings, old: dict[str, Any], new: dict[str, Any]) -> None:
    facts = facts_of(new)
    o, n = old["inputs"], new["inputs"]
    for path in facts.safety:
        if _get(o, path) and not _get(n, path):
            extra = ""
            if path == "multiAz":
                extra = (
                    ": the standby is dropped; a host or AZ failure now means an outage until RDS recovers or a restore"
                )
            f.risk(WEAKER, new, f"{_what(new)}: `{path}` true → {_show(_get(n, path))}{extra}")
    for path in facts.unsafe_when_on:
        if not _get(o, path) and _get(n, path):
            f.risk(WEAKER, new, f"{_what(new)}: `{path}` turned on")
    for path in facts.exposes_when_on:
        if not _get(o, path) and _get(n, path):
            f.risk(EXPOSURE, new, f"{_what(new)}: `{path}` turned on: reachable from the internet")
    for path in facts.exposes_when_off:
        if _get(o, path) and not _get(n, path):
            what = "the CDN no longer proxies it: the origin's address is public" if path == "proxied" else "turned off"
            f.risk(EXPOSURE, new, f"{_what(new)}: `{path}` {what}")
    for path in facts.retention:
        before, after = _get(o, path), _get(n, path)
        if not (isinstance(before, int) and isinstance(after, int)) or before == after:
            continue
        # A log group's retention of 0 means "never expire".
        never = path == "retentionInDays"
        shorter = (before == 0 and after > 0) if never else after < before
        if never and after == 0:
            shorter = False
        if shorter:
            f.risk(WEAKER, new, f"{_what(new)}: `{path}` {before} → {after}: less history kept")
    if old["options"].get("protect") and not new["options"].get("protect"):
        f.risk(WEAKER, new, f"{_what(new)}: Pulumi `protect` removed")
    if holds_data(new) and old["options"].get("retainOnDelete") and not new["options"].get("retainOnDelete"):
        f.risk(WEAKER, new, f"{_what(new)}: `retainOnDelete` removed: deleting it from the program now deletes it")
    kind = new["type"]
    if kind in OBJECT_LOCK_TYPES:
        (m0, d0), (m1, d1) = _lock(old), _lock(new)
        if (m0 == "COMPLIANCE" and m1 != "COMPLIANCE") or (m0 and not m1):
            f.risk(WEAKER, new, f"{_what(new)}: Object Lock mode {m0 or 'none'} → {m1 or 'none'} for new objects")
        if d1 < d0:
            f.risk(WEAKER, new, f"{_what(new)}: Object Lock default retention {d0} → {d1} days for new objects")
    if kind in LIFECYCLE_TYPES:
        e0, e1 = _expiry_days(old), _expiry_days(new)
        if e0 and e1 and e1 < e0:
            f.risk(WEAKER, new, f"{_what(new)}: objects now expire after {e1} days instead of {e0}")
    if kind in ENCRYPTION_CONFIG_TYPES and _canon(o.get("rules")) != _canon(n.get("rules")):
        algorithms = {str(_get(r, "applyServerSideEncryptionByDefault.sseAlgorithm")) for r in n.get("rules") or []}
        if not algorithms or algorithms <= {"None", ""}:
            f.risk(WEAKER, new, f"{_what(new)}: default encryption removed")


def _grants(f: Findings, old: dict[str, Any], new: dict[str, Any], successor: dict[str, str]) -> None:
    for prop in ("policy", "assumeRolePolicy"):
        text = new["inputs"].get(prop)
        for after, before in successor.items():
            text = text.replace(after, before) if isinstance(text, str) else text
        a, b = parse_document(old["inputs"].get(prop)), parse_document(text)
        if b is None:
            continue
        more = sorted(_allowed(b) - _allowed(a))
        if more:
            listed = "; ".join(f"{action} on {resource}" for action, resource in more)
            f.risk(EXPOSURE, new, f"{_what(new)}: `{prop}` now also allows {listed}")


def _policy_risks(f: Findings, base: dict[str, Any] | None, head: dict[str, Any] | None) -> None:
    before = {(p["name"], p["resource"]) for p in (base or {}).get("policies", []) if not p["passed"]}
    for p in (head or {}).get("policies", []):
        if p["passed"] or (p["name"], p["resource"]) in before:
            continue
        target = next((r for r in head["resources"] if r["name"] == p["resource"]), None) if head else None
        r = target or {"type": "policy", "name": p["resource"] or p["name"], "urn": ""}
        f.risk(
            POLICY,
            r,
            f"rule `{p['name']}` now fails: {p['message']}. `pulumi up` with the policy pack refuses the change, "
            f"and `plan` exits {POLICY_FAILED_EXIT}",
        )


def diff_plans(stack: str, base: dict[str, Any] | None, head: dict[str, Any] | None) -> dict[str, Any]:
    """Compare one stack's two plans: matched by URN or alias, every change with its risks."""
    old = {r["urn"]: r for r in (base or {}).get("resources", [])}
    new = {r["urn"]: r for r in (head or {}).get("resources", [])}
    pairs, only_old, only_new = match_resources(old, new)
    f = Findings(stack)
    changed: list[dict[str, Any]] = []
    renamed: list[dict[str, Any]] = []
    aliased_names = {new[b]["name"]: old[a]["name"] for a, b in pairs if a != b}
    for a, b in pairs:
        changes = property_changes(old[a], new[b], aliased_names)
        if a != b:
            renamed.append({"from": a, "to": b, "name": new[b]["name"], "type": new[b]["type"], "aliased": True})
        if changes:
            forcing = forcing_changes(new[b], changes)
            changed.append(
                {
                    "urn": b,
                    "type": new[b]["type"],
                    "name": new[b]["name"],
                    "component": new[b]["component"],
                    "changes": changes,
                    "replaced": bool(forcing),
                    "replacedBy": forcing,
                    "old": old[a],
                    "new": new[b],
                }
            )
    existing = {b: new[b] for _, b in pairs}
    _cascade_replacements(changed, existing)
    _moved_data_stores(f, changed, existing)
    _replaced_vpcs(f, changed)
    for c in changed:
        if c["replaced"]:
            why = "; ".join(_brief(x) for x in c["replacedBy"])
            _replacement_risk(f, c["old"], c["new"], why, head)
        _in_place_risks(f, c, head, _refusals(f, c["old"], c["new"]))
        _safety_risks(f, c["old"], c["new"])
    removed = [old[u] for u in only_old]
    added = [new[u] for u in only_new]
    unaliased = renamed_without_alias(removed, added)
    # A renamed resource's successor has a new id: grants on it are not new grants.
    successor = {
        came["id"]: gone["id"]
        for gone, came in unaliased
        if came.get("id") and gone.get("id") and came["id"] != gone["id"]
    }
    for c in changed:
        _grants(f, c["old"], c["new"], successor)
    moved = {gone["urn"] for gone, _ in unaliased} | {came["urn"] for _, came in unaliased}
    by_component: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for gone, came in unaliased:
        renamed.append(
            {"from": gone["urn"], "to": came["urn"], "name": came["name"], "type": came["type"], "aliased": False}
        )
        key = f"{gone['component']}:{_component_name(gone)}:{_component_name(came)}"
        by_component.setdefault(key, []).append((gone, came))
    for group in by_component.values():
        first, then = group[0]
        old_name, new_name = _component_name(first), _component_name(then)
        component = next((x for x in group if x[0]["type"] in BUCKET_TYPES), group[0])[1]
        f.risk(
            DATA_LOSS
            if any(holds_data(x) and not x["options"].get("retainOnDelete") for x, _ in group)
            else ORPHANED
            if any(holds_data(x) for x, _ in group)
            else WEAKER,
            component,
            f"{first['component']} `{old_name}` renamed to `{new_name}` without an alias: Pulumi deletes its "
            f"{len(group)} resources and creates new ones. Add "
            f'`opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="{old_name}")])` to the component and '
            f"nothing is replaced",
        )
        for x, y in group:
            if holds_data(x):
                why = f"renamed `{x['name']}` → `{y['name']}` without an alias"
                _replacement_risk(f, x, y, why, head)
    for gone in removed:
        if gone["urn"] not in moved:
            _removal_risk(f, gone, added)
    before = _world_openings(base["resources"]) if base else set()
    after = _world_openings(head["resources"]) if head else set()
    for owner, opened, port in sorted(after - before):
        hit = next((x for x in (head or {}).get("resources", []) if x["name"] == opened), None)
        if hit is not None:
            f.risk(EXPOSURE, hit, f"{_what(hit)} ({owner}): {port} open to 0.0.0.0/0 or ::/0")
    _policy_risks(f, base, head)
    result: dict[str, Any] = {"added": added, "removed": removed, "changed": changed, "renamed": renamed}
    result["cost"] = _cost(base, head, old, new, pairs)
    result["risks"] = f.sorted()
    result["notes"] = f.notes
    result["exists"] = {"base": base is not None, "head": head is not None}
    return result


def _removal_risk(f: Findings, r: dict[str, Any], added: list[dict[str, Any]]) -> None:
    facts = facts_of(r)
    if r["options"].get("protect"):
        f.risk(REFUSED, r, f"{_what(r)} is protected (Pulumi `protect`): `pulumi up` stops at its deletion")
    if holds_data(r) and r["options"].get("retainOnDelete"):
        f.risk(
            ORPHANED,
            r,
            f"{_what(r)} leaves the program: Pulumi forgets it but leaves it in place, unmanaged and still billed, "
            f"with {deleted_with(r)}; delete it by hand once its data is no longer needed, or keep it in the program",
        )
    elif holds_data(r):
        f.risk(
            DATA_LOSS,
            r,
            f"{_what(r)} is DELETED with {deleted_with(r)}. Instead: keep it, or {facts.keep_data}",
        )
    # Encryption or Object Lock configuration removed while its bucket stays.
    replaced_too = any(a["type"] == r["type"] and a["component"] == r["component"] for a in added)
    if r["type"] in ENCRYPTION_CONFIG_TYPES and not replaced_too:
        f.risk(WEAKER, r, f"{_what(r)}: default bucket encryption removed")
    if r["type"] in OBJECT_LOCK_TYPES and not replaced_too:
        f.risk(WEAKER, r, f"{_what(r)}: Object Lock default retention removed (new objects are not locked)")


SUBNET_GROUPS = {
    resource_types.RDS_SUBNET_GROUP.token: (resource_types.RDS_INSTANCE.token, "dbSubnetGroupName"),
    resource_types.ELASTICACHE_SUBNET_GROUP.token: (
        resource_types.ELASTICACHE_REPLICATION_GROUP.token,
        "subnetGroupName",
    ),
}


def _moved_data_stores(f: Findings, changed: list[dict[str, Any]], existing: dict[str, dict[str, Any]]) -> None:
    """A database or cache that exists already and whose subnet group's subnets are replaced must
    move to new subnets (a new VPC). RDS does that only by modifying the instance's DB subnet
    group, with an outage, and refuses it for a Multi-AZ instance or one with read replicas
    (filed as refused); ElastiCache has no such move for a running cache. A resource being
    created has nothing to move."""
    gone = {i for c in changed if c["replaced"] for i in _ids(c["new"])}
    for group in existing.values():
        if group["type"] not in SUBNET_GROUPS or not gone & set(group["inputs"].get("subnetIds") or []):
            continue
        kind, prop = SUBNET_GROUPS[group["type"]]
        names = {group["inputs"].get("name"), group.get("id")} - {None, ""}
        for r in existing.values():
            if r["type"] != kind or r["inputs"].get(prop) not in names:
                continue
            where = f"the new subnets of subnet group `{group['name']}` (another VPC)"
            instead = "Instead: keep the network, or migrate deliberately (snapshot, restore into the new VPC, switch)"
            if kind != RDS_INSTANCE:
                f.risk(
                    DOWNTIME,
                    r,
                    f"{_what(r)} must move to {where}: ElastiCache moves no running cache to another VPC, so expect "
                    f"`pulumi up` to fail at the subnet group (cannot be checked offline). Instead: turn the cache "
                    f"off (`cache.enabled: false`) before the network change and on again after it; a cache holds "
                    f"nothing that must survive",
                )
                continue
            replicas = [
                x["name"]
                for x in existing.values()
                if x["inputs"].get("replicateSourceDb") in names | {r["inputs"].get("identifier")}
            ]
            if r["inputs"].get("multiAz") or replicas:
                because = (
                    "it is Multi-AZ" if r["inputs"].get("multiAz") else f"it has read replicas ({', '.join(replicas)})"
                )
                f.risk(
                    REFUSED,
                    r,
                    f"{_what(r)} must move to {where}, and AWS refuses to move a DB instance to another VPC while "
                    f"{because}: `pulumi up` fails there. {instead}; or turn Multi-AZ off (and remove the read "
                    f"replicas) in a `pulumi up` of its own first",
                )
            else:
                f.risk(
                    DOWNTIME,
                    r,
                    f"{_what(r)} must move to {where}: AWS does this only by modifying the instance, with an outage "
                    f"(whether it succeeds for this instance cannot be checked offline). {instead}",
                )


def _ids(r: dict[str, Any]) -> set[str]:
    return {v for v in (r.get("id"),) if isinstance(v, str) and len(v) > 6}


def _refers(value: Any, ident: str) -> bool:
    return value == ident or (isinstance(value, list) and ident in value)


def _cascade_replacements(changed: list[dict[str, Any]], new: dict[str, dict[str, Any]]) -> None:
    """A replaced resource gets a new id: whatever refers to it in a property that forces
    replacement (a subnet's VPC, a host's subnet) is replaced too. The mocks keep ids stable,
    so this follows the references the plan shows."""
    by_urn = {c["urn"]: c for c in changed}
    replaced = {c["urn"] for c in changed if c["replaced"]}
    grew = True
    while grew:
        grew = False
        gone_ids = {i: new[u]["name"] for u in replaced for i in _ids(new[u])}
        for urn, r in new.items():
            if urn in replaced:
                continue
            facts = facts_of(r)
            hits = [
                (prop, gone_ids[i])
                for prop in sorted(facts.replaces)
                for i in gone_ids
                if _refers(r["inputs"].get(prop), i)
            ]
            if not hits:
                continue
            reason = [{"property": f"`{p}` refers to `{name}`, which is replaced"} for p, name in hits]
            if urn in by_urn:
                by_urn[urn]["replaced"] = True
                by_urn[urn]["replacedBy"] = by_urn[urn]["replacedBy"] + reason
            else:
                entry = {
                    "urn": urn,
                    "type": r["type"],
                    "name": r["name"],
                    "component": r["component"],
                    "changes": [],
                    "replaced": True,
                    "replacedBy": reason,
                    "old": r,
                    "new": r,
                }
                changed.append(entry)
                by_urn[urn] = entry
            replaced.add(urn)
            grew = True
    # What is not replaced but names a replaced resource in another property is updated in place
    # to the new one (an internet gateway's VPC, an address's instance, a database's security groups).
    gone_ids = {i: new[u]["name"] for u in replaced for i in _ids(new[u])}
    for urn, r in new.items():
        if urn in replaced:
            continue
        follows = [
            {"property": prop, "old": value, "new": f"{FOLLOWS}{gone_ids[i]}`, which is replaced)"}
            for prop, value in sorted(flatten(r["inputs"]).items())
            for i in gone_ids
            if _refers(value, i)
        ]
        if not follows:
            continue
        if urn in by_urn:
            known = {x["property"] for x in by_urn[urn]["changes"]}
            by_urn[urn]["changes"] += [x for x in follows if x["property"] not in known]
        else:
            entry = {
                "urn": urn,
                "type": r["type"],
                "name": r["name"],
                "component": r["component"],
                "changes": follows,
                "replaced": False,
                "replacedBy": [],
                "old": r,
                "new": r,
            }
            changed.append(entry)
            by_urn[urn] = entry
    changed.sort(key=lambda c: c["urn"])


FOLLOWS = "(the new id of `"


def _follows(change: dict[str, Any]) -> bool:
    """A property updated in place only because it names a replaced resource."""
    return str(change.get("new", "")).startswith(FOLLOWS)


def _replaced_vpcs(f: Findings, changed: list[dict[str, Any]]) -> None:
    """A replaced VPC in one line, with everything it drags along: replaced, and updated in place."""
    for vpc in (c for c in changed if c["replaced"] and c["type"] == resource_types.EC2_VPC.token):
        why = "; ".join(_brief(x) for x in vpc["replacedBy"])
        dragged = sorted(c["name"] for c in changed if c["replaced"] and c is not vpc)
        updated = sorted(c["name"] for c in changed if not c["replaced"] and any(_follows(x) for x in c["changes"]))
        f.risk(
            DOWNTIME,
            vpc["new"],
            f"the VPC `{vpc['name']}` is REPLACED ({why}), and with it {len(dragged)} resources are replaced "
            f"({', '.join(f'`{n}`' for n in dragged) or 'none'}) and {len(updated)} updated in place to point at "
            f"the new ones ({', '.join(f'`{n}`' for n in updated) or 'none'}). Instead: keep the network, or "
            f"build the new one beside it and migrate",
        )


def _cost(
    base: dict[str, Any] | None,
    head: dict[str, Any] | None,
    old: dict[str, dict[str, Any]],
    new: dict[str, dict[str, Any]],
    pairs: list[tuple[str, str]],
) -> dict[str, Any]:
    empty: dict[str, Any] = {"total": 0.0, "resources": {}}
    cost_old: dict[str, Any] = estimate(base) if base else empty
    cost_new: dict[str, Any] = estimate(head) if head else empty
    same = dict(pairs)
    rows = [(a, same.get(a)) for a in old] + [(None, b) for b in new if b not in same.values()]
    costs = []
    for a, b in sorted(rows, key=lambda x: str(x[1] or x[0])):
        before = cost_old["resources"].get(a, {}).get("monthly") if a else 0.0
        after = cost_new["resources"].get(b, {}).get("monthly") if b else 0.0
        if before != after:
            r = new[b] if b else old[str(a)]
            delta = None if before is None or after is None else money(after - before)
            costs.append(
                {
                    "urn": r["urn"],
                    "name": r["name"],
                    "type": r["type"],
                    "before": before,
                    "after": after,
                    "delta": delta,
                }
            )
    return {
        "before": cost_old["total"] if base else 0.0,
        "after": cost_new["total"] if head else 0.0,
        "delta": money(cost_new["total"] - cost_old["total"]),
        # Resources whose price the totals leave out: a total with any is partial.
        "notPriced": {"before": len(cost_old.get("notPriced", [])), "after": len(cost_new.get("notPriced", []))},
        "resources": costs,
    }


def refuse_mismatch(base: Source, head: Source) -> None:
    """Two saved plans must describe one stack."""
    if base.plan is not None and head.plan is not None and base.plan["stack"] != head.plan["stack"]:
        raise DiffError(
            f"{base.spec} is a plan of stack {base.plan['stack']!r} and {head.spec} of stack "
            f"{head.plan['stack']!r}: a diff compares two plans of one stack"
        )


def diff_sources(
    base_spec: str, head_spec: str | None, stacks: list[str] | None = None, repo: Path | None = None
) -> dict[str, Any]:
    """Resolve both sides, plan them (each side in one forked process, both in parallel), diff every stack."""
    repo = repo or git_root(Path.cwd()) or Path.cwd()
    base, head = Source(base_spec, repo), Source(head_spec, repo)
    refuse_mismatch(base, head)
    with tempfile.TemporaryDirectory(prefix="leanstack-diff-") as tmp:
        for n, side in enumerate((base, head)):
            where = Path(tmp) / str(n)
            where.mkdir()
            side.materialize(where)
        names = sorted(set(base.stacks()) | set(head.stacks()))
        if base.plan is not None or head.plan is not None:
            names = sorted({s.plan["stack"] for s in (base, head) if s.plan is not None})
        if stacks:
            missing = [s for s in stacks if s not in names]
            if missing:
                raise DiffError(f"unknown stack {missing[0]!r} (stacks: {', '.join(names) or 'none'})")
            names = sorted(stacks)
        trees = [(side, side.present(names)) for side in (base, head) if side.plan is None]
        texts: list[dict[str, str] | None] = [None, None]
        # Forking is safe only without other threads (a lock one holds would stay held in the child):
        # true in the command line, not in a process that already ran the program (the tests).
        if hasattr(os, "fork") and trees and threading.active_count() == 1:
            forked = iter(plan_sides_forked(trees, Path(tmp)))
            texts = [None if side.plan is not None else next(forked) for side in (base, head)]
            planned = [side.plans(names, t) for side, t in zip((base, head), texts, strict=True)]
        else:
            with ThreadPoolExecutor(max_workers=2) as pool:
                planned = list(pool.map(lambda side: side.plans(names), (base, head)))
    per_stack = {}
    for stack in names:
        b, h = planned[0][stack], planned[1][stack]
        if b is None and h is None:
            continue
        per_stack[stack] = diff_plans(stack, b, h)
    changed = any(s["added"] or s["removed"] or s["changed"] or s["renamed"] for s in per_stack.values())
    order = list(RISK_ORDER)
    risks = sorted(
        (r for s in per_stack.values() for r in s["risks"]), key=lambda r: (order.index(r["kind"]), r["stack"])
    )
    return {"base": base.label, "head": head.label, "stacks": per_stack, "risks": risks, "changed": changed}


# --------------------------------------------------------------------------- rendering


def _counts(s: dict[str, Any]) -> str:
    replaced = sum(1 for c in s["changed"] if c["replaced"])
    extra = f" ({replaced} replaced)" if replaced else ""
    moved = sum(1 for r in s["renamed"] if r["aliased"])
    aliased = f", {moved} renamed with an alias" if moved else ""
    return f"{len(s['added'])} added, {len(s['removed'])} removed, {len(s['changed'])} changed{extra}{aliased}"


def _cost_line(s: dict[str, Any]) -> str:
    c = s["cost"]
    line = f"{fmt_money(c['before'])} → {fmt_money(c['after'])} a month ({fmt_delta(c['delta'])})"
    unpriced = c.get("notPriced") or {}
    if unpriced.get("before") or unpriced.get("after"):
        line += f"; PARTIAL: {unpriced['before']} → {unpriced['after']} resources not priced, not in the totals"
    return line


def _change_lines(s: dict[str, Any]) -> list[str]:
    """Every change of one stack, as plain lines (the body of both renderers)."""
    lines: list[str] = []
    for c in s["changed"]:
        verb = "REPLACE" if c["replaced"] else "update"
        lines.append(f"~ {verb} {c['type']}  {c['name']}  ({c['component']})")
        for x in c["changes"]:
            lines += [f"    {line}" for line in render_change(x)]
        if c["replaced"]:
            forced = [x["property"] if "old" not in x else f"`{x['property']}`" for x in c["replacedBy"]]
            lines.append(f"    replaced because: {'; '.join(forced)}")
        for note in s["notes"].get(c["urn"], []):
            lines.append(f"    note: {note}")
    for r in s["renamed"]:
        if r["aliased"]:
            lines.append(f"= renamed {r['type']}  {r['from'].rsplit('::', 1)[-1]} → {r['name']}: aliased, no change")
    for r in s["added"]:
        lines.append(f"+ create {r['type']}  {r['name']}  ({r['component']})")
    for r in s["removed"]:
        verb = "forget (retainOnDelete: left in place)" if r["options"].get("retainOnDelete") else "delete"
        lines.append(f"- {verb} {r['type']}  {r['name']}  ({r['component']})")
    changed_urns = {c["urn"] for c in s["changed"]}
    for urn, notes in sorted(s["notes"].items()):
        if urn not in changed_urns:
            lines += [f"  note on {urn.rsplit('::', 1)[-1]}: {n}" for n in notes]
    return lines


FOOTER = (
    "Offline diff of `python -m leanstack plan` under mocks. What replaces, restarts or is refused comes from "
    "leanstack/resource_facts.py (the provider's schema and AWS's documentation); what AWS does at apply time "
    "cannot be checked offline: a `pulumi preview` with credentials is the final word. Prices are on-demand list "
    "prices from leanstack/pricing.json."
)


def mock_values(body: str) -> str:
    """One line naming the values in `body` the offline mocks made up (AWS assigns the real ones), or ""."""
    from leanstack.mocks import MOCK_ACCOUNT, MOCK_CACHE_ENDPOINT

    found = [f"the account id `{MOCK_ACCOUNT}`"] if MOCK_ACCOUNT in body else []
    endpoints = sorted(set(re.findall(MOCK_CACHE_ENDPOINT, body)))
    found += [f"the cache endpoint `{e}`" for e in endpoints]
    if not found:
        return ""
    return f"Mock values, made up offline and not your stack's (AWS assigns the real ones): {', '.join(found)}."


def render_markdown(result: dict[str, Any]) -> str:
    lines = [f"## leanstack diff: `{result['base']}` → `{result['head']}`", ""]
    risks = result["risks"]
    if risks:
        lines += [f"### ⚠️ Risk: {len(risks)} finding{'s' if len(risks) != 1 else ''}", ""]
        lines += [f"- **{r['stack']}** — **{r['kind']}**: {r['text']}" for r in risks]
    else:
        lines += ["### Risk: none found", "", "No data lost, no downtime, nothing refused by AWS, no new exposure, "
                  "no safeguard weakened, nothing orphaned, no policy rule newly failing."]  # fmt: skip
    lines += ["", "| Stack | Changes | Monthly cost |", "| --- | --- | --- |"]
    for stack, s in result["stacks"].items():
        lines.append(f"| {stack} | {_counts(s)} | {_cost_line(s)} |")
    for stack, s in result["stacks"].items():
        if not (s["added"] or s["removed"] or s["changed"] or s["renamed"]):
            continue
        lines += ["", f"### {stack}", ""]
        if not s["exists"]["base"]:
            lines.append("_New stack._")
        if not s["exists"]["head"]:
            lines.append("_Stack removed._")
        fence = "````" if any("```" in line for line in _change_lines(s)) else "```"
        lines += [f"{fence}diff", *_change_lines(s), fence]
        if s["cost"]["resources"]:
            lines += ["", "| Resource | Before | After | Delta |", "| --- | ---: | ---: | ---: |"]
            for c in s["cost"]["resources"]:
                delta = fmt_delta(c["delta"]) if c["delta"] is not None else "not priced"
                lines.append(f"| {c['name']} | {fmt_money(c['before'])} | {fmt_money(c['after'])} | {delta} |")
    if mocked := mock_values("\n".join(lines)):
        lines += ["", f"_{mocked}_"]
    lines += ["", f"_{FOOTER}_", ""]
    return "\n".join(lines)


def render_text(result: dict[str, Any]) -> str:
    lines = [f"leanstack diff: {result['base']} → {result['head']}", ""]
    if result["risks"]:
        lines.append(f"RISK: {len(result['risks'])} finding(s)")
        lines += [f"  ! [{r['stack']}] {r['kind']}: {r['text']}" for r in result["risks"]]
    else:
        lines.append("Risk: none found")
    for stack, s in result["stacks"].items():
        lines += ["", f"{stack}: {_counts(s)}; {_cost_line(s)}"]
        lines += [f"  {line}" for line in _change_lines(s)]
        for c in s["cost"]["resources"]:
            delta = fmt_delta(c["delta"]) if c["delta"] is not None else "not priced"
            lines.append(f"  $ {c['name']}: {fmt_money(c['before'])} → {fmt_money(c['after'])} ({delta})")
    if mocked := mock_values("\n".join(lines)):
        lines += ["", mocked]
    lines += ["", FOOTER]
    return "\n".join(lines) + "\n"


def render_json(result: dict[str, Any]) -> str:
    slim = json.loads(json.dumps(result))
    for s in slim["stacks"].values():
        for c in s["changed"]:
            c.pop("old", None)
            c.pop("new", None)
        s["added"] = [{"urn": r["urn"], "type": r["type"], "name": r["name"]} for r in s["added"]]
        s["removed"] = [{"urn": r["urn"], "type": r["type"], "name": r["name"]} for r in s["removed"]]
    return json.dumps(slim, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


RENDERERS = {"text": render_text, "markdown": render_markdown, "json": render_json}
