"""`recover init`: a recovery stack in the backup region that reuses the backups and never touches them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from leanstack.__main__ import main
from leanstack.config import ConfigError, load_stack_config
from leanstack.mocks import read_stack_config, run_program
from leanstack.plan import build_plan, failed_policies
from leanstack.recover import RecoverError, write_recovery_file
from tests.policy.helpers import host_role_documents
from tests.policy.iam_evaluator import allowed

SHIPPED = Path(__file__).resolve().parent.parent / "fixtures" / "shipped" / "stacks"
BACKUPS, REPLICA = "leanstack-prod-backups-20260101", "leanstack-prod-uploads-replica-20260101"


def _repo(tmp_path: Path, *, storage: bool) -> Path:
    shutil.copytree(SHIPPED, tmp_path / "stacks")
    if storage:
        path = tmp_path / "stacks" / "Pulumi.prod.yaml"
        path.write_text(path.read_text() + "  leanstack:storage:\n    enabled: true\n")
    return tmp_path


def test_recovery_stack_reuses_the_buckets_untouched_and_its_host_reads_the_old_backups(tmp_path: Path) -> None:
    repo = _repo(tmp_path, storage=True)
    original = load_stack_config(read_stack_config("prod", repo), "prod")
    path = write_recovery_file("prod", BACKUPS, REPLICA, repo=repo)
    assert path == repo / "stacks" / "Pulumi.prod-recovery.yaml"
    raw = read_stack_config("prod-recovery", repo)
    cfg = load_stack_config(raw, "prod-recovery")
    assert cfg.region == original.backup.region == cfg.backup.region
    assert (cfg.backup.existing_bucket, cfg.storage.existing_replica) == (BACKUPS, REPLICA)
    assert cfg.hostnames == original.hostnames  # the same Cdn records, pointed at the new host

    run = run_program("prod-recovery", raw)
    plan = build_plan(run)
    assert not failed_policies(plan)
    # Nothing in the plan creates, changes or deletes either bucket, or their policy, lock or lifecycle.
    for resource in run.resources:
        if resource.type.startswith("aws:s3/"):
            assert BACKUPS not in str(resource.inputs) and REPLICA not in str(resource.inputs.get("bucket")), resource

    def bucket_resources(names: set[str]) -> set[str]:
        return {n for n in names if n == "storage-replica" or n.startswith(("backups-", "storage-replica-"))}

    s3 = {r.name for r in run.resources if r.type.startswith("aws:s3/")}
    assert bucket_resources(s3) == set(), s3
    # The original stack's plan has them all: bucket, policy, lock, lifecycle, versioning.
    before = {r.name for r in run_program("prod", read_stack_config("prod", repo)).resources}
    assert {"backups-bucket", "backups-policy", "backups-lifecycle", "backups-object-lock"} <= bucket_resources(before)
    assert {"storage-replica", "storage-replica-policy", "storage-replica-lifecycle"} <= bucket_resources(before)
    assert run.outputs["backupBucket"] == BACKUPS and run.outputs["uploadsReplicaBucket"] == REPLICA
    # Uploads replicate into the existing replica (a configuration of the new bucket, not of the replica).
    replication = run.one("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    assert replication.inputs["rules"][0]["destination"]["bucket"] == f"arn:aws:s3:::{REPLICA}"
    # The new host reads and lists the old dumps; it can never delete them.
    documents = host_role_documents(run)
    dump = f"arn:aws:s3:::{BACKUPS}/{original.backup.prefix}/2026-01-01T03-30-00Z.dump"
    assert allowed(documents, "s3:GetObject", dump)
    assert allowed(documents, "s3:ListBucket", f"arn:aws:s3:::{BACKUPS}", {"s3:prefix": f"{original.backup.prefix}/"})
    assert not allowed(documents, "s3:DeleteObject", dump)
    assert not allowed(documents, "s3:DeleteObjectVersion", dump)


def test_recover_init_refuses_to_overwrite_and_names_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _repo(tmp_path, storage=True)
    with pytest.raises(RecoverError, match="--replica-bucket missing"):
        write_recovery_file("prod", BACKUPS, repo=repo)
    assert not (repo / "stacks" / "Pulumi.prod-recovery.yaml").exists()
    write_recovery_file("prod", BACKUPS, REPLICA, repo=repo)
    with pytest.raises(RecoverError, match="exists; pass --force"):
        write_recovery_file("prod", BACKUPS, REPLICA, repo=repo)
    write_recovery_file("prod", "other-bucket", REPLICA, force=True, repo=repo)
    assert "other-bucket" in (repo / "stacks" / "Pulumi.prod-recovery.yaml").read_text()
    with pytest.raises(RecoverError, match="already a recovery stack"):
        write_recovery_file("prod-recovery", BACKUPS, REPLICA, repo=repo)
    # The CLI: one line, exit 2.
    assert main(["recover", "init", "no-such-stack", "--backup-bucket", BACKUPS]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_only_a_recovery_stack_may_keep_its_backups_in_its_own_region(tmp_path: Path) -> None:
    raw = read_stack_config("prod", _repo(tmp_path, storage=False))
    same = {**raw, "aws:region": raw["leanstack:backup"]["region"]}
    with pytest.raises(ConfigError, match=r"backup\.region"):
        load_stack_config(same, "prod")
    recovery = {**same, "leanstack:backup": {**raw["leanstack:backup"], "existingBucket": BACKUPS}}
    load_stack_config(recovery, "prod-recovery")
    with pytest.raises(ConfigError, match=r"backup\.profile"):
        load_stack_config({**recovery, "leanstack:backup": {**recovery["leanstack:backup"], "profile": "b"}}, "x")
    assert yaml.safe_load((SHIPPED / "Pulumi.prod.yaml").read_text())["config"]["aws:region"] != same["aws:region"]


def test_the_apps_ssm_secret_references_move_to_the_recovery_stacks_path(tmp_path: Path) -> None:
    """The recovery host reads only /leanstack/<stack>-recovery/, where `secrets restore --into` writes."""
    repo = _repo(tmp_path, storage=False)
    path = repo / "stacks" / "Pulumi.prod.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["leanstack:app"]["secrets"] = {
        "STRIPE_KEY": "/leanstack/prod/app/stripe-key",
        "SENTRY_DSN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:sentry-AbCdEf",
    }
    document["config"]["leanstack:app"]["registrySecretArn"] = (
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:ghcr-pull-Zz9Yy8"
    )
    path.write_text(yaml.safe_dump(document))
    write_recovery_file("prod", BACKUPS, "", repo=repo)
    cfg = load_stack_config(read_stack_config("prod-recovery", repo), "prod-recovery")
    # Issue 21, 2: the Secrets Manager ARN named the dead region; it now names the secret in the recovery
    # region, by name (its new suffix is written back by `secrets restore --into`).
    assert cfg.app.secrets == {
        "STRIPE_KEY": "/leanstack/prod-recovery/app/stripe-key",
        "SENTRY_DSN": f"arn:aws:secretsmanager:{cfg.region}:123456789012:secret:sentry",
    }
    assert cfg.app.registry_secret_arn == f"arn:aws:secretsmanager:{cfg.region}:123456789012:secret:ghcr-pull"
    assert cfg.region != "us-east-1"


def test_recover_init_keeps_every_comment_of_the_stack_file(tmp_path: Path) -> None:
    repo = _repo(tmp_path, storage=False)
    source = (repo / "stacks" / "Pulumi.prod.yaml").read_text()
    written = write_recovery_file("prod", BACKUPS, repo=repo).read_text()
    comments = [line.strip() for line in source.splitlines() if line.strip().startswith("#")]
    assert len(comments) > 20
    assert [c for c in comments if c not in written] == []
    assert written.startswith("# The recovery stack of 'prod', written by python -m leanstack recover init")
    assert (
        load_stack_config(read_stack_config("prod-recovery", repo), "prod-recovery").backup.existing_bucket == BACKUPS
    )
