"""BackupBucket: a second region, Object Lock, encrypted, private, TLS-only, no deletes by the host."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

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


def test_the_host_may_put_get_and_list_its_prefix_but_never_delete(dev: StackRun) -> None:
    bucket = dev.named("backups-bucket").outputs["arn"]
    for resource, key in ((dev.named("host-permissions"), "policy"), (dev.named("backups-policy"), "policy")):
        granted = [s for s in statements(resource, key) if s.get("Sid") in ("WriteAndReadBackups", "ListBackups")]
        assert len(granted) == 2, resource.name
        for statement in granted:
            assert not any("Delete" in a or a in ("s3:*", "*") for a in actions(statement))
            resource_arn = statement["Resource"]
            assert resource_arn in (bucket, f"{bucket}/postgres/*")
    policy = statements(dev.named("backups-policy"))
    writer = [s for s in policy if s["Effect"] == "Allow"]
    assert all(
        s["Condition"]["ArnEquals"] == {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/leanstack-dev-host"}
        for s in writer
    )


def test_lifecycle_moves_to_glacier_and_expires(dev: StackRun, prod: StackRun) -> None:
    dev_rule = dev.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"][0]
    assert dev_rule["expiration"] == {"days": 35} and "transitions" not in dev_rule
    assert dev_rule["noncurrentVersionExpiration"]["noncurrentDays"] == 1
    assert dev_rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 1
    assert dev_rule["filter"] == {"prefix": "postgres/"}
    prod_rule = prod.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"][0]
    assert prod_rule["transitions"] == [{"days": 30, "storageClass": "GLACIER_IR"}]
    assert prod_rule["expiration"] == {"days": 365}


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
