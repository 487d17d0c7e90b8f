"""Storage (issue 18): the uploads bucket, its off-site replica, the replication and the app's own role."""

from __future__ import annotations

import json
from typing import Any

import pytest

from leanstack.mocks import MOCK_ACCOUNT, StackRun
from tests.components.helpers import children, statements, user_data_of, written_file
from tests.conftest import run_with
from tests.policy.iam_evaluator import allowed

STORAGE = {"enabled": True, "corsOrigins": ["https://example.com"], "drillFilesSql": "SELECT key FROM uploads"}
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")


@pytest.fixture(scope="module")
def on() -> StackRun:
    return run_with({"leanstack:storage": STORAGE}, "prod")


def role_documents(run: StackRun, role_name: str) -> list[str]:
    role = run.named(role_name)
    documents = [
        p.inputs["policy"] for p in run.of_type(ROLE_POLICY) if p.inputs["role"] in (role.id, role.inputs["name"])
    ]
    assert documents, role_name
    return documents


def bucket_arn(run: StackRun, name: str) -> str:
    return f"arn:aws:s3:::{run.named(name).outputs.get('bucket') or run.named(name).id}"


def test_off_by_default_means_no_resources(prod: StackRun) -> None:
    assert children(prod, "Storage") == []
    assert "uploadsBucket" not in prod.outputs
    assert not [r for r in prod.resources if r.name.endswith("-app-role")]


def test_uploads_bucket_is_private_versioned_encrypted_tls_only_in_the_stacks_region(on: StackRun) -> None:
    uploads = on.named("storage-uploads")
    assert uploads.retain_on_delete is True and uploads.region in ("", on.outputs["region"])
    assert uploads.inputs["bucketPrefix"] == "leanstack-prod-uploads-"
    assert on.named("storage-uploads-versioning").inputs["versioningConfiguration"]["status"] == "Enabled"
    assert all(on.named("storage-uploads-no-public").inputs[k] for k in ("blockPublicAcls", "restrictPublicBuckets"))
    deny = [s for s in statements(on.named("storage-uploads-policy")) if s["Sid"] == "DenyNonTLS"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    rules = {r["id"]: r for r in on.named("storage-uploads-lifecycle").inputs["rules"]}
    assert rules["expire-old-versions"]["noncurrentVersionExpiration"]["noncurrentDays"] == 30
    assert "abort-incomplete-uploads" in rules
    cors = on.named("storage-uploads-cors").inputs["corsRules"][0]
    assert cors["allowedOrigins"] == ["https://example.com"]


def test_replica_in_the_backup_region_with_object_lock_and_the_backups_lifecycle(on: StackRun) -> None:
    replica = on.named("storage-replica")
    assert replica.region == on.outputs["backupRegion"] != on.outputs["region"]
    assert replica.provider == on.named("backups-aws").urn
    assert replica.inputs["objectLockEnabled"] is True and replica.retain_on_delete is True
    lock = on.named("storage-replica-object-lock").inputs["rule"]["defaultRetention"]
    assert lock == {"mode": "COMPLIANCE", "days": 30}
    rules = {r["id"]: r for r in on.named("storage-replica-lifecycle").inputs["rules"]}
    aged = rules["age-out-old-versions"]
    assert "expiration" not in aged or not aged["expiration"], "current replicas are the files: never expired"
    assert aged["noncurrentVersionExpiration"]["noncurrentDays"] == 365
    assert "abort-incomplete-uploads" in rules


def test_replication_names_the_replica_skips_delete_markers_and_has_metrics(on: StackRun) -> None:
    config = on.one("aws:s3/bucketReplicationConfig:BucketReplicationConfig").inputs
    (rule,) = config["rules"]
    assert rule["destination"]["bucket"] == bucket_arn(on, "storage-replica")
    assert rule["deleteMarkerReplication"]["status"] == "Disabled"
    assert rule["destination"]["metrics"]["status"] == "Enabled"
    documents = role_documents(on, "storage-replication-role")
    replica_object = bucket_arn(on, "storage-replica") + "/k"
    uploads_object = bucket_arn(on, "storage-uploads") + "/k"
    assert allowed(documents, "s3:ReplicateObject", replica_object)
    assert not allowed(documents, "s3:ReplicateDelete", replica_object)
    assert not allowed(documents, "s3:PutObject", replica_object)
    assert allowed(documents, "s3:GetObjectVersionForReplication", uploads_object)
    assert not allowed(documents, "s3:GetObject", uploads_object)
    alarm = on.named("storage-files-at-risk").inputs
    assert {q["id"] for q in alarm["metricQueries"]} == {"failed", "latency", "at_risk"}
    assert alarm["alarmActions"] and "Runbook: #files-at-risk" in alarm["alarmDescription"]


def test_the_app_role_reaches_the_uploads_bucket_only_and_the_host_cannot_write_it(on: StackRun) -> None:
    app = role_documents(on, "storage-app-role")
    uploads, replica = bucket_arn(on, "storage-uploads"), bucket_arn(on, "storage-replica")
    backups = f"arn:aws:s3:::{on.outputs['backupBucket']}"
    for action in OBJECT_ACTIONS:
        assert allowed(app, action, uploads + "/a/b.png"), action
        for other in (replica, backups, "arn:aws:s3:::another-bucket"):
            assert not allowed(app, action, other + "/a/b.png"), (action, other)
    assert allowed(app, "s3:ListBucket", uploads)
    for action in ("ssm:GetParameter", "secretsmanager:GetSecretValue", "sts:AssumeRole", "s3:PutBucketPolicy"):
        assert not allowed(app, action, "*"), action
    # Issue 21, 8: the host's role itself is the principal, not the account with a condition on a role name.
    trust = json.loads(on.named("storage-app-role").inputs["assumeRolePolicy"])["Statement"]
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"AWS": on.named("host-role").outputs["arn"]},
            "Action": "sts:AssumeRole",
        }
    ]
    assert on.named("host-role").outputs["arn"] == f"arn:aws:iam::{MOCK_ACCOUNT}:role/leanstack-prod-host"
    host = role_documents(on, "host-role")
    app_role_arn = f"arn:aws:iam::{MOCK_ACCOUNT}:role/leanstack-prod-app"
    assert allowed(host, "sts:AssumeRole", app_role_arn)
    for action in OBJECT_ACTIONS:
        assert not allowed(host, action, uploads + "/a/b.png"), action
        assert not allowed(host, action, replica + "/a/b.png") or action == "s3:GetObject", action
    assert allowed(host, "s3:GetObject", replica + "/a/b.png"), "the drill's files check reads the replica"


def test_host_serves_the_app_its_role_and_the_drill_checks_the_replica(on: StackRun) -> None:
    env = written_file(on, "/etc/leanstack/credentials.env")
    assert 'APP_ROLE_ARN="arn:aws:iam::' in env and ':role/leanstack-prod-app"' in env
    assert "leanstack-credentials.service" in json.dumps(user_data_of(on)["runcmd"])
    app = json.loads(written_file(on, "/etc/leanstack/app.json"))
    identity: dict[str, Any] = app["identity"]
    assert identity["credentials_uri"] == "http://169.254.170.2:51680/leanstack/credentials"
    assert identity["token_file"] == "/var/lib/leanstack-credentials/token"
    assert identity["values"]["UPLOADS_BUCKET"] == on.outputs["uploadsBucket"]
    assert identity["values"]["UPLOADS_BUCKET_REGION"] == on.outputs["region"]
    backup_env = written_file(on, "/etc/leanstack/backup.env")
    assert f"FILES_BUCKET={on.outputs['uploadsReplicaBucket']}" in backup_env.replace('"', "")


def test_storage_keys_are_refused_with_storage_off() -> None:
    from leanstack.config import ConfigError, load_stack_config
    from tests.conftest import merged, read_stack_config

    raw = merged(read_stack_config("dev"), {"leanstack:storage": {"drillFilesSql": "SELECT 1"}})
    with pytest.raises(ConfigError, match=r"^leanstack:storage\.drillFilesSql: given with storage off"):
        load_stack_config(raw, "dev")


def test_the_plan_prices_both_buckets_and_the_replication_with_stated_assumptions(on: StackRun) -> None:
    from leanstack.cost import estimate
    from leanstack.plan import build_plan

    cost = estimate(build_plan(on))
    storage = cost["components"]["Storage"]
    assert storage["notPriced"] == []
    by_name = {urn.rsplit("::", 1)[1]: price for urn, price in cost["resources"].items()}
    assert by_name["storage-uploads"]["monthly"] > 0 and by_name["storage-replica"]["monthly"] > 0
    assert by_name["storage-replication"]["monthly"] == round(1 * 0.02 + 4 * 0.3, 2)
    assert by_name["storage-files-at-risk"]["monthly"] > 0
    assert any("uploads bucket holds 10 GB" in a for a in cost["assumptions"])
    assert any("replication metrics" in a for a in cost["assumptions"])


def test_the_uploads_bucket_denies_customer_provided_keys(on: StackRun) -> None:
    """Issue 21, 8: with SSE-C, the app's credentials could re-encrypt every file with a key of their own."""
    policy = on.named("storage-uploads-policy").inputs["policy"]
    (deny,) = [s for s in statements(on.named("storage-uploads-policy")) if s.get("Sid") == "DenyCustomerProvidedKeys"]
    uploads = bucket_arn(on, "storage-uploads")
    assert deny == {
        "Sid": "DenyCustomerProvidedKeys",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": uploads + "/*",
        "Condition": {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}},
    }
    # As AWS evaluates it, with the app's own Allow beside it: a write with the SSE-C header is denied,
    # a plain one (SSE-S3 by default) allowed.
    documents = [*role_documents(on, "storage-app-role"), policy]
    tls = {"aws:SecureTransport": "true"}
    sse_c = {**tls, "s3:x-amz-server-side-encryption-customer-algorithm": "AES256"}
    assert allowed(documents, "s3:PutObject", uploads + "/a.png", tls)
    assert not allowed(documents, "s3:PutObject", uploads + "/a.png", sse_c)
    assert allowed(documents, "s3:GetObject", uploads + "/a.png", sse_c)
