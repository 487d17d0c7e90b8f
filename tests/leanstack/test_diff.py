"""`leanstack diff`: risk first, cost delta, exit codes; on saved plans and on git revisions."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from leanstack.diff import REPLACES, STATEFUL, diff_plans
from leanstack.mocks import REPO
from leanstack.plan import build_plan, render_json
from tests.conftest import run_with

Plan = dict[str, Any]


def leanstack(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "leanstack", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


_plans: dict[str, Plan] = {}


def plan_with(key: str, overrides: dict[str, Any], stack: str = "dev") -> Plan:
    if key not in _plans:
        _plans[key] = build_plan(run_with(overrides, stack))
    return copy.deepcopy(_plans[key])


@pytest.fixture(scope="module")
def dev_plan() -> Plan:
    return plan_with("dev", {})


@pytest.fixture(scope="module")
def prod_plan() -> Plan:
    return plan_with("prod", {}, "prod")


def kinds(result: Plan) -> list[str]:
    return [r["kind"] for r in result["risks"]]


def one(plan: Plan, name: str) -> Plan:
    return next(r for r in plan["resources"] if r["name"] == name)


def test_replacement_properties_are_explicit() -> None:
    assert {"identifier", "engine", "dbName", "username", "storageEncrypted", "kmsKeyId", "availabilityZone",
            "dbSubnetGroupName"} <= REPLACES["aws:rds/instance:Instance"]  # fmt: skip
    assert {"bucket", "bucketPrefix", "objectLockEnabled"} <= REPLACES["aws:s3/bucket:Bucket"]
    assert {"replicationGroupId", "engine"} <= REPLACES["aws:elasticache/replicationGroup:ReplicationGroup"]
    # Changing these is an in-place modification, never a replacement.
    for prop in ("instanceClass", "multiAz", "allocatedStorage", "backupRetentionPeriod", "engineVersion"):
        assert prop not in REPLACES["aws:rds/instance:Instance"]
    for kind in ("aws:rds/instance:Instance", "aws:elasticache/replicationGroup:ReplicationGroup",
                 "aws:s3/bucket:Bucket", "aws:ec2/eip:Eip"):  # fmt: skip
        assert kind in STATEFUL


@pytest.mark.parametrize("prop", sorted(REPLACES["aws:rds/instance:Instance"]))
def test_every_forcing_rds_property_is_flagged_as_replacing_the_database(dev_plan: Plan, prop: str) -> None:
    head = copy.deepcopy(dev_plan)
    one(head, "database-instance")["inputs"][prop] = "changed"
    result = diff_plans("dev", dev_plan, head)
    assert result["risks"][0]["kind"] == "replaces stateful data"
    assert f"`{prop}`" in result["risks"][0]["text"]


def test_bigger_database_with_multi_az_costs_more_and_raises_no_risk(dev_plan: Plan) -> None:
    head = plan_with("bump", {"leanstack:database": {"instanceClass": "db.t4g.small", "multiAz": True}})
    result = diff_plans("dev", dev_plan, head)
    assert result["risks"] == []
    changed = {c["name"]: c for c in result["changed"]}
    assert not changed["database-instance"]["replaced"]
    assert {x["property"] for x in changed["database-instance"]["changes"]} == {"instanceClass", "multiAz"}
    # db.t4g.micro Single-AZ $14.38 -> db.t4g.small Multi-AZ $51.72.
    assert result["cost"]["delta"] == 37.34


def test_renamed_database_identifier_is_flagged_first(dev_plan: Plan) -> None:
    head = plan_with("rename", {"leanstack:database": {"identifier": "leanstack-dev-renamed"}})
    result = diff_plans("dev", dev_plan, head)
    first = result["risks"][0]
    assert first["kind"] == "replaces stateful data" and first["name"] == "database-instance"
    assert '`identifier` "leanstack-dev" → "leanstack-dev-renamed"' in first["text"]


def test_backup_bucket_moved_to_another_region_is_flagged(dev_plan: Plan) -> None:
    head = plan_with("region", {"leanstack:backup": {"region": "eu-west-1"}})
    result = diff_plans("dev", dev_plan, head)
    bucket = [r for r in result["risks"] if r["name"] == "backups-bucket"]
    assert bucket and bucket[0]["kind"] == "replaces stateful data"
    assert '`options.region` "us-west-2" → "eu-west-1"' in bucket[0]["text"]


def test_prod_protection_retention_and_object_lock_weakened(prod_plan: Plan) -> None:
    head = plan_with(
        "weak",
        {
            "leanstack:database": {"deletionProtection": False, "protect": False, "backupRetentionDays": 7},
            "leanstack:backup": {"objectLockMode": "GOVERNANCE", "objectLockDays": 7},
        },
        "prod",
    )
    result = diff_plans("prod", prod_plan, head)
    texts = [f"{r['kind']}: {r['text']}" for r in result["risks"]]
    assert "protection removed: database `database-instance`: Pulumi `protect` removed" in texts
    assert "protection removed: database `database-instance`: deletion protection turned off" in texts
    assert "retention reduced: database `database-instance`: `backupRetentionPeriod` 14 → 7" in texts
    assert any("Object Lock mode COMPLIANCE → GOVERNANCE" in t for t in texts)
    assert any("Object Lock default retention 30 → 7 days" in t for t in texts)
    assert not any(k == "replaces stateful data" for k in kinds(result))


def test_world_open_port_encryption_off_and_deletions(dev_plan: Plan) -> None:
    head = copy.deepcopy(dev_plan)
    one(head, "host-sg")["inputs"]["ingress"].append(
        {"cidrBlocks": ["0.0.0.0/0"], "fromPort": 22, "toPort": 22, "protocol": "tcp"}
    )
    one(head, "database-instance")["inputs"]["storageEncrypted"] = False
    head["resources"] = [r for r in head["resources"] if r["name"] not in ("host-ip", "backups-encryption")]
    result = diff_plans("dev", dev_plan, head)
    assert "newly open to the internet" in kinds(result)
    assert any("22/tcp open to 0.0.0.0/0" in r["text"] for r in result["risks"])
    assert any(r["kind"] == "encryption turned off" and r["name"] == "database-instance" for r in result["risks"])
    assert any(r["kind"] == "encryption turned off" and r["name"] == "backups-encryption" for r in result["risks"])
    assert any(r["kind"] == "deletes stateful data" and r["name"] == "host-ip" for r in result["risks"])
    # Replacing the database (storageEncrypted forces it) sorts before everything else.
    assert kinds(result)[0] == "replaces stateful data"


def test_urn_change_of_a_stateful_resource_says_it_replaces_unless_aliased(dev_plan: Plan) -> None:
    head = copy.deepcopy(dev_plan)
    db = one(head, "database-instance")
    db["urn"] = db["urn"].replace("database-instance", "db-instance")
    db["name"] = "db-instance"
    result = diff_plans("dev", dev_plan, head)
    assert result["risks"][0]["kind"] == "replaces stateful data"
    assert "unless the resource has `aliases`" in result["risks"][0]["text"]


def _save(tmp_path: Path, name: str, plan: Plan) -> Path:
    path = tmp_path / name
    path.write_text(render_json(plan))
    return path


def test_saved_plans_markdown_exit_codes_and_bad_versions(tmp_path: Path, dev_plan: Plan) -> None:
    base = _save(tmp_path, "base.json", dev_plan)
    head = _save(tmp_path, "head.json", plan_with("rename", {}))
    same = leanstack("diff", str(base), str(base), "--format", "markdown")
    assert same.returncode == 0, same.stderr
    assert "### Risk: none found" in same.stdout
    done = leanstack("diff", str(base), str(head), "--format", "markdown")
    assert done.returncode == 1, done.stderr
    body = done.stdout
    assert body.index("### ⚠️ Risk") < body.index("| Stack |") < body.index("### dev")
    assert "replaces stateful data" in body.splitlines()[4]
    assert "MOCK PRIVATE KEY" not in body and "MOCK ORIGIN CERTIFICATE" not in body
    again = leanstack("diff", str(base), str(head), "--format", "markdown")
    assert again.stdout == body
    future = json.loads(base.read_text())
    future["leanstackPlan"] = 99
    (tmp_path / "future.json").write_text(json.dumps(future))
    bad = leanstack("diff", str(tmp_path / "future.json"), str(head))
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("leanstack: ") and "format version 99" in bad.stderr and bad.stderr.count("\n") == 1
    (tmp_path / "junk.json").write_text("{}")
    junk = leanstack("diff", str(tmp_path / "junk.json"), str(head))
    assert junk.returncode == 2 and "not a leanstack plan" in junk.stderr and junk.stderr.count("\n") == 1


def test_unknown_revision_is_one_line_and_exit_2() -> None:
    done = leanstack("diff", "no-such-revision-anywhere", "--stack", "dev")
    assert done.returncode == 2
    assert done.stderr == "leanstack: unknown git revision 'no-such-revision-anywhere'\n"


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway git repository holding this checkout's files, committed once."""
    target = tmp_path_factory.mktemp("repo")
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git: Callable[..., Any] = lambda *a: subprocess.run(["git", "-C", str(target), *a], check=True, capture_output=True)  # noqa: E731
    git("init", "-q", "-b", "main")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "base")
    return target


def _edit_dev(repo: Path, *pairs: tuple[str, str]) -> None:
    path = repo / "stacks" / "Pulumi.dev.yaml"
    text = path.read_text()
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text)


def test_git_revisions_done_when(repo_copy: Path) -> None:
    """The issue's acceptance test, on real git revisions and the working tree."""
    _edit_dev(repo_copy, ("instanceClass: db.t4g.micro", "instanceClass: db.t4g.small"),
              ("multiAz: false", "multiAz: true"))  # fmt: skip
    subprocess.run(
        ["git", "-C", str(repo_copy), "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "bump"],
        check=True,
    )
    bump = leanstack("diff", "HEAD~1", "HEAD", "--stack", "dev", "--format", "markdown", cwd=repo_copy)
    assert bump.returncode == 1, bump.stderr
    assert "### Risk: none found" in bump.stdout
    # The database and the budget, whose default limit follows the config.
    assert "| dev | 0 added, 0 removed, 2 changed |" in bump.stdout and "(+$37.34)" in bump.stdout

    renamed = "identifier: leanstack-dev-renamed\n    instanceClass: db.t4g.small"
    _edit_dev(repo_copy, ("instanceClass: db.t4g.small", renamed), ("region: us-west-2", "region: eu-west-1"))
    work = leanstack("diff", "HEAD", "--stack", "dev", "--format", "markdown", cwd=repo_copy)
    assert work.returncode == 1, work.stderr
    top = work.stdout.split("| Stack |")[0]
    assert "### ⚠️ Risk" in top
    assert "database `database-instance` is REPLACED" in top and "leanstack-dev-renamed" in top
    assert "bucket `backups-bucket` is REPLACED" in top and '"eu-west-1"' in top
