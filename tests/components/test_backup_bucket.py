"""BackupBucket: a second region, Object Lock, encrypted, private, TLS-only, no deletes by the host."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from leanstack.host.agent.backup_settings import Settings
from leanstack.mocks import StackRun
from tests.components.helpers import actions, children, statements


def test_bucket_lives_in_the_second_region_through_its_own_provider(dev: StackRun) -> None:
    provider = dev.named("backups-aws")
    assert provider.inputs["region"] == "us-west-2"
    for resource in children(dev, "BackupBucket"):
        if resource.type.startswith("aws:"):
            assert resource.provider == provider.urn, resource.name
            assert resource.region == "us-west-2"
    assert dev.outputs["backupRegion"] == "us-west-2"


def test_object_lock_versioning_encryption_ownership(dev: StackRun, prod: StackRun) -> None:
    bucket = dev.named("backups-bucket")
    assert bucket.inputs["objectLockEnabled"] is True
    assert bucket.inputs["bucketPrefix"] == "leanstack-dev-backups-"
    assert bucket.retain_on_delete is True
    assert dev.named("backups-versioning").inputs["versioningConfiguration"]["status"] == "Enabled"
    sse = dev.named("backups-encryption")
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    ownership = dev.named("backups-ownership").inputs
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    lock = dev.one("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration").inputs
    assert lock["rule"]["defaultRetention"] == {"mode": "GOVERNANCE", "days": 7}
    prod_lock = prod.one("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration").inputs
    assert prod_lock["rule"]["defaultRetention"] == {"mode": "COMPLIANCE", "days": 30}


def test_all_public_access_blocked_and_plain_http_denied(dev: StackRun) -> None:
    block = dev.named("backups-no-public").inputs
    assert all(
        block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    found = statements(dev.named("backups-policy"))
    deny = next(s for s in found if s["Sid"] == "DenyNonTLS")
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_host_may_put_its_stacks_folder_get_and_list_its_prefix_but_never_delete(dev: StackRun) -> None:
    bucket = dev.named("backups-bucket").outputs["arn"]
    for resource, key in ((dev.named("host-permissions"), "policy"), (dev.named("backups-policy"), "policy")):
        sids = ("WriteBackups", "ReadBackups", "ListBackups")
        granted = {s["Sid"]: s for s in statements(resource, key) if s.get("Sid") in sids}
        assert set(granted) == set(sids), resource.name
        for statement in granted.values():
            assert not any("Delete" in a or a in ("s3:*", "*") for a in actions(statement))
        assert granted["WriteBackups"]["Resource"] == f"{bucket}/postgres/dev/*"
        assert granted["ReadBackups"]["Resource"] == f"{bucket}/postgres/*"
        assert granted["ListBackups"]["Resource"] == bucket
    policy = statements(dev.named("backups-policy"))
    writer = [s for s in policy if s["Effect"] == "Allow"]
    assert all(
        s["Condition"]["ArnEquals"] == {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/leanstack-dev-host"}
        for s in writer
    )


def _rules(run: StackRun, name: str) -> dict[str, dict[str, Any]]:
    return {rule["id"]: rule for rule in run.named(name).inputs["rules"]}


def test_lifecycle_moves_to_glacier_and_expires(dev: StackRun, prod: StackRun) -> None:
    dev_rule = _rules(dev, "backups-lifecycle")["age-out-backups"]
    assert dev_rule["expiration"] == {"days": 35} and "transitions" not in dev_rule
    assert dev_rule["filter"] == {"prefix": "postgres/"}
    prod_rule = _rules(prod, "backups-lifecycle")["age-out-backups"]
    assert prod_rule["transitions"] == [{"days": 30, "storageClass": "GLACIER_IR"}]
    assert prod_rule["expiration"] == {"days": 365}


def test_an_overwritten_or_hidden_version_is_kept_as_long_as_a_current_one(dev: StackRun, prod: StackRun) -> None:
    # noncurrentDays 1 made an overwrite a delete one day after the lock ended.
    for run, days in ((dev, 35), (prod, 365)):
        rule = _rules(run, "backups-lifecycle")["age-out-backups"]
        assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": days}
        assert rule["noncurrentVersionExpiration"]["noncurrentDays"] >= rule["expiration"]["days"]


def test_every_bucket_aborts_incomplete_uploads_after_a_few_days(dev: StackRun) -> None:
    buckets = dev.of_type("aws:s3/bucket:Bucket")
    lifecycles = dev.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    assert {b.name for b in buckets} == {"backups-bucket", "host-files"}
    assert {lc.name for lc in lifecycles} == {"backups-lifecycle", "host-files-lifecycle"}
    for lifecycle in lifecycles:
        rule = _rules(dev, lifecycle.name)["abort-incomplete-uploads"]
        assert rule["status"] == "Enabled" and rule["filter"] == {"prefix": ""}, lifecycle.name
        assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 3}, lifecycle.name
    # Exactly one rule per bucket aborts uploads, bucket-wide.
    assert _rules(dev, "host-files-lifecycle")["expire-replaced-files"]["noncurrentVersionExpiration"] == {
        "noncurrentDays": 30
    }
    backup_rules = dev.named("backups-lifecycle").inputs["rules"]
    assert [r["id"] for r in backup_rules if "abortIncompleteMultipartUpload" in r] == ["abort-incomplete-uploads"]


def test_nobody_can_write_over_a_backup(dev: StackRun) -> None:
    bucket = dev.named("backups-bucket").outputs["arn"]
    deny = next(s for s in statements(dev.named("backups-policy")) if s["Sid"] == "DenyOverwritingBackups")
    # As AWS documents for enforcing conditional writes: s3:PutObject (PutObject and
    # CompleteMultipartUpload) without If-None-Match is denied; the multipart steps that cannot
    # carry the header (ObjectCreationOperation false) are exempt.
    assert deny == {
        "Sid": "DenyOverwritingBackups",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": f"{bucket}/postgres/*",
        "Condition": {"Null": {"s3:if-none-match": "true"}, "Bool": {"s3:ObjectCreationOperation": "true"}},
    }


def test_the_host_tool_writes_every_backup_object_with_if_none_match() -> None:
    # The policy above refuses any other write: every put the tool makes must carry the header.
    agent = Path(__file__).parents[2] / "host" / "agent"
    backup_modules = ("aws", "backup", "backup_settings", "drill", "drill_app", "dumps", "local_server", "postgres")
    source = "".join(
        (agent / f"{name}.py").read_text(encoding="utf-8")
        for name in (*backup_modules, "restore", "restoring", "swap", "backup_cli")
    )
    writes = re.findall(r"\.(put_object|complete_multipart_upload|copy_object|upload_file|upload_fileobj)\(", source)
    assert sorted(set(writes)) <= ["complete_multipart_upload", "put_object"]
    # Its one S3 client factory makes every create send If-None-Match (proven against moto in
    # tests/host/test_backup.py, also for a botocore that predates the parameter).
    assert len(re.findall(r"\.client\(\s*\"s3\"", source)) == 1
    assert "create_only_if_absent(client)" in inspect.getsource(Settings.s3)


def test_a_second_account_is_reached_by_assuming_a_role(
    run_dev_with: Callable[[dict[str, Any]], StackRun],
) -> None:
    role = "arn:aws:iam::210987654321:role/leanstack-backups"
    run = run_dev_with({"leanstack:backup": {"roleArn": role}})
    provider = run.named("backups-aws").inputs
    assume = provider["assumeRoles"]
    assume = json.loads(assume) if isinstance(assume, str) else assume
    assert assume[0]["roleArn"] == role
    assert provider["region"] == "us-west-2"
