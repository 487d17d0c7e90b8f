"""`leanstack diff`: the facts table covers every type, values are never cut, the CLI refuses what is
not a change, git revisions are planned one process per side, byte-identical to `plan`."""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from leanstack.diff import Source, decode_user_data, json_changes, render_change, user_data_changes
from leanstack.mocks import REPO, STACKS_ENV, run_program
from leanstack.plan import PLAN_FORMAT_VERSION, build_plan, render_json
from leanstack.resource_facts import FACTS, facts_for
from tests.conftest import merged, read_stack_config, run_with, stack_run

Plan = dict[str, Any]
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "diff"


def leanstack(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "leanstack", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


# --------------------------------------------------------------------------- the one table


def test_every_resource_type_of_every_shipped_stack_has_facts() -> None:
    """dev, prod and scale, each also with the cache and file storage on: every type they create has an entry, and
    every resource they retain on delete is of a type the table says may be retained."""
    missing: dict[str, set[str]] = {}
    seen: set[str] = set()
    for stack in ("dev", "prod", "scale"):
        for cache in (False, True):
            optional = {
                "leanstack:cache": {"enabled": True},
                "leanstack:storage": {"enabled": True, "corsOrigins": ["https://example.com"]},
                "leanstack:database": {"crossRegionBackups": True},
            }
            run = run_with(optional, stack) if cache else stack_run(stack)
            for r in run.resources:
                seen.add(r.type)
                facts = facts_for(r.type)
                if facts is None:
                    missing.setdefault(r.type, set()).add(f"{stack}{' +cache' if cache else ''}")
                elif r.retain_on_delete:
                    assert facts.retained, r.type
    assert missing == {}
    assert "aws:elasticache/replicationGroup:ReplicationGroup" in seen and "aws:autoscaling/group:Group" in seen
    assert "aws:s3/bucketReplicationConfig:BucketReplicationConfig" in seen
    assert "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication" in seen


def test_every_entry_says_why_and_no_property_is_both_replacing_and_in_place() -> None:
    for kind, facts in FACTS.items():
        assert facts.why.endswith(".") and len(facts.why) > 20, kind
        for prop in (*facts.in_place, *facts.refused, *facts.replaces_if):
            assert prop not in facts.replaces, (kind, prop)
        assert not facts.keep_data.endswith("."), kind


def test_replacement_facts_for_the_stateful_types() -> None:
    rds = FACTS["aws:rds/instance:Instance"]
    assert {"identifier", "engine", "dbName", "username", "storageEncrypted", "kmsKeyId"} <= rds.replaces
    for prop in ("instanceClass", "multiAz", "allocatedStorage", "backupRetentionPeriod", "engineVersion"):
        assert prop not in rds.replaces
    assert rds.deferred_by == "applyImmediately" and rds.holds_data
    assert FACTS["aws:s3/bucket:Bucket"].retained and "objectLockEnabled" in FACTS["aws:s3/bucket:Bucket"].replaces
    host = FACTS["aws:ec2/instance:Instance"]
    assert host.replaces_if["userDataBase64"] == "userDataReplaceOnChange" and "instanceType" in host.in_place


# --------------------------------------------------------------------------- readable values


def test_json_documents_are_compared_as_structure() -> None:
    old = {"Statement": [{"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": ["arn:a"]}]}
    new = {"Statement": [{"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                          "Resource": ["arn:a", "arn:b"]}]}  # fmt: skip
    assert json_changes(old, new) == [
        '+ Statement[Sid=Read].Action[]: "s3:PutObject"',
        '+ Statement[Sid=Read].Resource[]: "arn:b"',
    ]
    lines = render_change({"property": "policy", "old": json.dumps(old), "new": json.dumps(new)})
    assert lines[0] == "policy (JSON document):"


def test_user_data_is_decoded_and_diffed_per_file() -> None:
    def encode(env: str) -> str:
        text = f"#cloud-config\nwrite_files:\n- path: /etc/app.env\n  content: |\n    A=1\n{env}"
        return base64.b64encode(gzip.compress(text.encode())).decode()

    old, new = encode(""), encode("    B=2\n")
    assert decode_user_data(old) is not None and decode_user_data(old).startswith("#cloud-config")  # type: ignore[union-attr]
    summary, lines = user_data_changes(old, new)
    assert summary == ["cloud-config file /etc/app.env changed"]
    assert "+B=2" in lines and "--- a/etc/app.env" in lines


def test_long_values_are_never_cut() -> None:
    old, new = "x" * 300 + " tail-a", "x" * 300 + " tail-b"
    (line,) = render_change({"property": "description", "old": old, "new": new})
    assert "[-tail-a-] {+tail-b+}" in line
    multi = render_change({"property": "doc", "old": "a\nb\nc", "new": "a\nB\nc"})
    assert "    -b" in multi and "    +B" in multi


# --------------------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("plans")
    out = {}
    for name, stack, overrides in (
        ("prod", "prod", {}),
        ("prod-16", "prod", {"leanstack:database": {"engineVersion": "16"}}),
        ("dev", "dev", {}),
    ):
        plan = build_plan(run_program(stack, merged(read_stack_config(stack, FIXTURES), overrides)))
        out[name] = where / f"{name}.json"
        out[name].write_text(render_json(plan))
    return out


def test_saved_plans_exit_codes_and_markdown(saved: dict[str, Path]) -> None:
    same = leanstack("diff", str(saved["prod"]), str(saved["prod"]), "--format", "markdown")
    assert same.returncode == 0, same.stderr
    assert "### Risk: none found" in same.stdout
    done = leanstack("diff", str(saved["prod"]), str(saved["prod-16"]), "--format", "markdown")
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[4].startswith("- **prod** — **refused by AWS**: database `database-instance`")


def test_plans_of_two_stacks_or_another_version_are_refused_in_one_line(saved: dict[str, Path], tmp_path: Path) -> None:
    two = leanstack("diff", str(saved["dev"]), str(saved["prod"]))
    assert two.returncode == 2 and two.stdout == ""
    assert two.stderr == (
        f"leanstack: {saved['dev']} is a plan of stack 'dev' and {saved['prod']} of stack 'prod': "
        "a diff compares two plans of one stack\n"
    )
    old = json.loads(saved["prod"].read_text())
    old["leanstackPlan"] = PLAN_FORMAT_VERSION - 1
    (tmp_path / "old.json").write_text(json.dumps(old))
    bad = leanstack("diff", str(tmp_path / "old.json"), str(saved["prod"]))
    assert bad.returncode == 2 and bad.stdout == "" and bad.stderr.count("\n") == 1
    assert f"format version {PLAN_FORMAT_VERSION - 1}; this leanstack reads version {PLAN_FORMAT_VERSION}" in bad.stderr
    (tmp_path / "junk.json").write_text("{}")
    junk = leanstack("diff", str(tmp_path / "junk.json"), str(saved["prod"]))
    assert junk.returncode == 2 and "not a leanstack plan" in junk.stderr and junk.stderr.count("\n") == 1


def test_unknown_revision_is_one_line_and_exit_2() -> None:
    done = leanstack("diff", "no-such-revision-anywhere", "--stack", "dev")
    assert done.returncode == 2
    assert done.stderr == "leanstack: unknown git revision 'no-such-revision-anywhere'\n"


def test_plan_exits_4_when_a_mandatory_rule_fails(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    import leanstack.__main__ as cli

    weak = merged(read_stack_config("prod", FIXTURES), {"leanstack:database": {"deletionProtection": False}})
    monkeypatch.setattr(cli, "read_stack_config", lambda stack: weak)
    assert cli.main(["plan", "prod"]) == 4
    assert "FAIL rds-production-protection" in capsys.readouterr().out
    monkeypatch.setattr(cli, "read_stack_config", lambda stack: read_stack_config("prod", FIXTURES))
    assert cli.main(["plan", "prod", "--format", "json"]) == 0


# --------------------------------------------------------------------------- git revisions


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway git repository holding this checkout's files with the fixture stacks, committed once."""
    target = tmp_path_factory.mktemp("repo")
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO / name
        if source.is_symlink():  # leanstack/components -> ../components and the other rooms
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).symlink_to(os.readlink(source))
        elif source.is_file() and not name.startswith("stacks/Pulumi."):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for stack in FIXTURES.glob("stacks/Pulumi.*.yaml"):
        shutil.copy2(stack, target / "stacks" / stack.name)
    git: Callable[..., Any] = lambda *a: subprocess.run(["git", "-C", str(target), *a], check=True, capture_output=True)  # noqa: E731
    git("init", "-q", "-b", "main")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "base")
    return target


def test_git_revision_against_the_working_tree(repo_copy: Path) -> None:
    path = repo_copy / "stacks" / "Pulumi.prod.yaml"
    path.write_text(path.read_text().replace("multiAz: true", "multiAz: false"))
    done = leanstack("diff", "HEAD", "--format", "markdown", cwd=repo_copy)
    assert done.returncode == 1, done.stderr
    top = done.stdout.split("| Stack |")[0]
    assert "**prod** — **weaker safety**: database `database-instance`: `multiAz` true → false" in top
    assert "| dev | 0 added, 0 removed, 0 changed |" in done.stdout


def test_both_ways_of_planning_a_side_are_byte_identical_to_plan(repo_copy: Path, tmp_path: Path) -> None:
    """The forked child (the default) and the one-subprocess fallback print what `plan` prints."""
    # `plan` in the copy reads the copy's stacks/ (the diff reads each tree's own), not the tests' copies.
    env = {**{k: v for k, v in os.environ.items() if k != STACKS_ENV}, "PYTHONPATH": str(repo_copy)}
    alone = subprocess.Popen(
        [sys.executable, "-m", "leanstack", "plan", "prod", "--format", "json"],
        cwd=repo_copy, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    # Forked from a fresh process, as the command line does (this one has threads from earlier runs).
    fork = (
        "import json, sys; from pathlib import Path; from leanstack.diff import Source, plan_sides_forked; "
        f"(texts,) = plan_sides_forked([(Source(None, Path({str(repo_copy)!r})), ['dev', 'prod'])], "
        f"Path({str(tmp_path)!r})); sys.stdout.write(texts['prod'])"
    )
    forked = subprocess.Popen(
        [sys.executable, "-c", fork], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    together = Source(None, repo_copy).plan_texts(["dev", "prod"])
    out, _ = alone.communicate(timeout=600)
    forked_out, _ = forked.communicate(timeout=600)
    assert alone.returncode == 0 and forked.returncode == 0
    assert forked_out == together["prod"] == out


CASCADE_SCRIPT = """
import json
from leanstack.diff.match import cascade_replacements

def resource(name, type_, ident, **inputs):
    return {"urn": "urn:" + name, "type": type_, "name": name, "component": "c", "id": ident, "inputs": inputs}

new = {
    "urn:" + n: r
    for n, r in {
        "subnet-a": resource("subnet-a", "aws:ec2/subnet:Subnet", "subnet-aaaaaaaa"),
        "subnet-b": resource("subnet-b", "aws:ec2/subnet:Subnet", "subnet-bbbbbbbb"),
        "subnet-c": resource("subnet-c", "aws:ec2/subnet:Subnet", "subnet-cccccccc"),
        "subnet-d": resource("subnet-d", "aws:ec2/subnet:Subnet", "subnet-dddddddd"),
        "group": resource(
            "group", "aws:rds/subnetGroup:SubnetGroup", "group-11111111",
            subnetIds=["subnet-aaaaaaaa", "subnet-bbbbbbbb", "subnet-cccccccc", "subnet-dddddddd"],
        ),
        "ip": resource("ip", "aws:ec2/eip:Eip", "eipalloc-1111", tags=["subnet-dddddddd", "subnet-aaaaaaaa"]),
    }.items()
}
changed = [
    {"urn": "urn:" + n, "type": "aws:ec2/subnet:Subnet", "name": n, "component": "c", "changes": [],
     "replaced": True, "replacedBy": [], "old": new["urn:" + n], "new": new["urn:" + n]}
    for n in ("subnet-d", "subnet-b", "subnet-c", "subnet-a")
]
cascade_replacements(changed, new)
print(json.dumps([{k: c[k] for k in ("urn", "changes", "replacedBy")} for c in changed], sort_keys=True))
"""


def test_a_cascade_reads_the_same_whatever_the_hash_seed() -> None:
    """Replaced resources are a set; a property naming several of them must list them in one
    order on every run (two diff runs of one change once differed in which subnet they named)."""
    import os
    import subprocess
    import sys

    outputs = {
        subprocess.run(
            [sys.executable, "-c", CASCADE_SCRIPT],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        for seed in range(8)
    }
    assert len(outputs) == 1, outputs
    assert "subnet-a" in next(iter(outputs))
