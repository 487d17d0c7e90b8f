"""The policy rules, offline: every rule passes on every stack and fails on its own unsafe case."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from leanstack.mocks import StackRun
from leanstack.policy.rules import RULES, UNKNOWN, StackView, Subject, evaluate
from leanstack.policy_check import evaluate_policies, render_results, view_of
from tests.policy.helpers import EXPECTED_IN_UNSAFE


def test_every_rule_has_an_unsafe_case() -> None:
    assert set(EXPECTED_IN_UNSAFE) == {rule.name for rule in RULES}
    assert len({rule.name for rule in RULES}) == len(RULES)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_rule_passes_on_every_stack(stack: str, dev: StackRun, prod: StackRun) -> None:
    run = {"dev": dev, "prod": prod}[stack]
    results = evaluate_policies(run)
    assert [r for r in results if not r.passed] == []
    assert {r.name for r in results} == {rule.name for rule in RULES}


def test_rules_pass_with_the_cache_on_and_the_cdn_off(dev_cache_no_cdn: StackRun) -> None:
    view = view_of(dev_cache_no_cdn)
    assert view.of_type("aws:elasticache/replicationGroup:ReplicationGroup")
    # File storage's two buckets pass every bucket rule: lifecycle, TLS-only, versioned, private.
    assert len(view.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")) == 1
    assert {name: v for name, v in evaluate(view).items() if v} == {}


def test_each_rule_fails_on_exactly_its_own_unsafe_cases(unsafe: StackRun) -> None:
    found = evaluate(view_of(unsafe))
    flagged = {name: {v.resource for v in violations} for name, violations in found.items()}
    assert flagged == EXPECTED_IN_UNSAFE


def test_every_message_names_its_resource_and_a_fix(unsafe: StackRun) -> None:
    for violations in evaluate(view_of(unsafe)).values():
        for v in violations:
            assert v.resource in v.message
            fixes = (
                "set ",
                "add ",
                "remove",
                "narrow",
                "give",
                "grant",
                "allow only",
                "admit only",
                "list the",
                "create",
            )
            assert any(word in v.message for word in fixes), v.message


def test_policy_results_for_the_plan(unsafe: StackRun, dev: StackRun) -> None:
    results = evaluate_policies(unsafe)
    failed = [r for r in results if not r.passed]
    assert {r.name for r in failed} == set(EXPECTED_IN_UNSAFE)
    assert all(r.resource and r.message for r in failed)
    text = render_results(evaluate_policies(dev))
    assert text.startswith(f"Policies: {len(RULES)}/{len(RULES)} rules pass\n")


# --------------------------------------------------------------------------- mutations of the real dev stack
# The same rules on the real resources, each with one thing made unsafe: proves a rule reads
# the properties the components really set, and links the resources they really link.


def _mutated(view: StackView, name: str, change: Callable[[dict[str, Any]], None], **fields: Any) -> StackView:
    resources = []
    for r in view.resources:
        if r.name == name:
            props = json.loads(json.dumps(dict(r.props)))
            change(props)
            r = dataclasses.replace(r, props=props, **fields)
        resources.append(r)
    return dataclasses.replace(view, resources=tuple(resources))


def _violations(view: StackView, rule: str) -> set[str]:
    return {v.resource for v in evaluate(view)[rule]}


def _policy_doc(props: dict[str, Any], edit: Callable[[list[dict[str, Any]]], object]) -> None:
    doc = json.loads(props["policy"])
    edit(doc["Statement"])
    props["policy"] = json.dumps(doc)


def _add_ssh(p: dict[str, Any]) -> None:
    p["ingress"].append({"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["10.0.0.0/8"]})


def _allow_everything(p: dict[str, Any]) -> None:
    _policy_doc(p, lambda s: s.append({"Effect": "Allow", "Action": "*", "Resource": "*"}))


def _allow_deleting_backups(p: dict[str, Any]) -> None:
    # WriteBackups is the statement on the stack's folder of the backup bucket.
    _policy_doc(
        p,
        lambda s: next(x for x in s if x.get("Sid") == "WriteBackups")["Action"].append("s3:DeleteObjectVersion"),
    )


def _unchanged(p: dict[str, Any]) -> None:
    return None


def _drop_abort_rule(p: dict[str, Any]) -> None:
    p["rules"] = [r for r in p["rules"] if "abortIncompleteMultipartUpload" not in r]


def _drop_statement(sid: str) -> Callable[[dict[str, Any]], None]:
    return lambda p: _policy_doc(p, lambda s: s.remove(next(x for x in s if x.get("Sid") == sid)))


def _keep_noncurrent_one_day(p: dict[str, Any]) -> None:
    next(r for r in p["rules"] if r["id"] == "age-out-backups")["noncurrentVersionExpiration"]["noncurrentDays"] = 1


MUTATIONS: list[tuple[str, str, Callable[[dict[str, Any]], None], dict[str, Any]]] = [
    ("no-ssh", "host-sg", _add_ssh, {}),
    ("no-world-ingress", "host-sg", lambda p: p["ingress"][0].update(cidrBlocks=["0.0.0.0/0"]), {}),
    ("database-not-public", "database-instance", lambda p: p.update(publiclyAccessible=True), {}),
    ("rds-storage-encrypted", "database-instance", lambda p: p.update(storageEncrypted=False), {}),
    ("rds-production-protection", "database-instance", _unchanged, {"protect": True}),
    ("ebs-encrypted", "host-instance", lambda p: p["rootBlockDevice"].update(encrypted=False), {}),
    ("imdsv2-required", "host-instance", lambda p: p["metadataOptions"].update(httpTokens="optional"), {}),
    ("s3-tls-only", "backups-policy", lambda p: _policy_doc(p, lambda s: s.pop(0)), {}),
    ("s3-public-access-blocked", "host-files-no-public", lambda p: p.update(restrictPublicBuckets=False), {}),
    ("s3-versioned", "backups-versioning", lambda p: p["versioningConfiguration"].update(status="Suspended"), {}),
    ("backup-bucket-off-site", "backups-bucket", _unchanged, {"region": "us-east-1"}),
    ("backup-bucket-object-lock", "backups-bucket", lambda p: p.update(objectLockEnabled=False), {}),
    ("s3-aborts-incomplete-uploads", "host-files-lifecycle", _drop_abort_rule, {}),
    ("s3-aborts-incomplete-uploads", "backups-lifecycle", _drop_abort_rule, {}),
    ("backup-bucket-conditional-writes", "backups-policy", _drop_statement("DenyOverwritingBackups"), {}),
    ("backup-bucket-keeps-noncurrent-versions", "backups-lifecycle", _keep_noncurrent_one_day, {}),
    ("rds-production-keeps-automated-backups", "database-instance", _unchanged, {"protect": True}),
    ("no-star-iam", "host-permissions", _allow_everything, {}),
    ("host-cannot-delete-backups", "host-permissions", _allow_deleting_backups, {}),
]


@pytest.mark.parametrize(("rule", "name", "change", "fields"), MUTATIONS, ids=[f"{m[0]}-{m[1]}" for m in MUTATIONS])
def test_one_unsafe_change_to_the_real_stack_fails_its_rule(
    dev: StackRun, rule: str, name: str, change: Callable[[dict[str, Any]], None], fields: dict[str, Any]
) -> None:
    view = view_of(dev)
    assert _violations(view, rule) == set()
    flagged = _violations(_mutated(view, name, change, **fields), rule)
    assert flagged, f"{rule} missed an unsafe {name}"


def test_rds_retention_is_relaxed_only_in_dev(dev: StackRun) -> None:
    view = view_of(dev)
    assert dev.one("aws:rds/instance:Instance").inputs["backupRetentionPeriod"] == 1
    assert _violations(view, "rds-backup-retention") == set()
    assert _violations(dataclasses.replace(view, stack="staging"), "rds-backup-retention") == {"database-instance"}


def test_a_production_stack_name_makes_an_unprotected_database_fail(dev: StackRun) -> None:
    view = dataclasses.replace(view_of(dev), stack="prod")
    assert {v.message.split(" is ")[0] for v in evaluate(view)["rds-production-protection"]} == {"database-instance"}


def test_unknown_values_are_never_guessed_about() -> None:
    bucket = Subject("urn:b", "aws:s3/bucket:Bucket", "b", {"bucket": UNKNOWN})
    policy = Subject(
        "urn:p", "aws:s3/bucketPolicy:BucketPolicy", "p", {"policy": UNKNOWN}, links={"bucket": ("urn:b",)}
    )
    view = StackView("prod", "us-east-1", (bucket, policy))
    assert evaluate(view)["s3-tls-only"] == []
    # Without any policy at all, there is nothing unknown to wait for: it fails.
    assert [v.resource for v in evaluate(dataclasses.replace(view, resources=(bucket,)))["s3-tls-only"]] == ["b"]


def test_a_host_role_that_may_delete_an_unnamed_backup_bucket_is_flagged() -> None:
    # Before the bucket exists its name is unknown: any S3 delete on the host role counts.
    bucket = Subject("urn:b", "aws:s3/bucket:Bucket", "backups-bucket", {"bucket": UNKNOWN, "objectLockEnabled": True})
    trust = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    }
    role = Subject("urn:r", "aws:iam/role:Role", "host-role", {"assumeRolePolicy": json.dumps(trust)})
    grant = {"Statement": [{"Effect": "Allow", "Action": "s3:Delete*", "Resource": "arn:aws:s3:::other/*"}]}
    policy = Subject(
        "urn:p", "aws:iam/rolePolicy:RolePolicy", "grant", {"policy": json.dumps(grant)}, links={"role": ("urn:r",)}
    )
    view = StackView("dev", "us-east-1", (bucket, role, policy))
    assert [v.resource for v in evaluate(view)["host-cannot-delete-backups"]] == ["grant"]
    named = dataclasses.replace(bucket, props={"bucket": "backups", "objectLockEnabled": True})
    assert evaluate(dataclasses.replace(view, resources=(named, role, policy)))["host-cannot-delete-backups"] == []


# --------------------------------------------------------------------------- backups nobody can overwrite

DENY_OVERWRITES: dict[str, Any] = {
    "Sid": "DenyOverwritingBackups",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:PutObject",
    "Resource": "arn:aws:s3:::backups/postgres/*",
    "Condition": {"Null": {"s3:if-none-match": "true"}, "Bool": {"s3:ObjectCreationOperation": "true"}},
}


def _backup_view(statement: dict[str, Any] | None, policy_value: Any = None) -> StackView:
    bucket = Subject("urn:b", "aws:s3/bucket:Bucket", "backups-bucket", {"bucket": "backups"})
    doc = policy_value if policy_value is not None else json.dumps({"Statement": [statement] if statement else []})
    policy = Subject(
        "urn:p", "aws:s3/bucketPolicy:BucketPolicy", "backups-policy", {"policy": doc}, links={"bucket": ("urn:b",)}
    )
    return StackView("prod", "us-east-1", (bucket, policy))


def _weaken(**changes: Any) -> dict[str, Any]:
    return {**DENY_OVERWRITES, **changes}


@pytest.mark.parametrize(
    "weakened",
    [
        None,  # no such statement
        _weaken(Effect="Allow"),
        # Only some principals: an administrator could still overwrite.
        _weaken(Principal={"AWS": "arn:aws:iam::123456789012:role/leanstack-prod-host"}),
        _weaken(Action="s3:GetObject"),
        # Without the Null test nothing requires the header.
        _weaken(Condition={"Bool": {"s3:ObjectCreationOperation": "true"}}),
        # Inverted: would deny the multipart steps and let unconditional completes through.
        _weaken(Condition={"Null": {"s3:if-none-match": "true"}, "Bool": {"s3:ObjectCreationOperation": "false"}}),
        # An extra condition narrows the deny (here: only for one source address).
        _weaken(Condition={**DENY_OVERWRITES["Condition"], "IpAddress": {"aws:SourceIp": "192.0.2.1/32"}}),
    ],
)
def test_a_missing_or_weakened_overwrite_deny_is_flagged(weakened: dict[str, Any] | None) -> None:
    assert [v.resource for v in evaluate(_backup_view(weakened))["backup-bucket-conditional-writes"]] == [
        "backups-bucket"
    ]


def test_the_documented_overwrite_deny_passes_and_an_unknown_policy_is_not_judged() -> None:
    assert evaluate(_backup_view(DENY_OVERWRITES))["backup-bucket-conditional-writes"] == []
    assert (
        evaluate(_backup_view(_weaken(Action=["s3:PutObject"], Principal={"AWS": "*"})))[
            "backup-bucket-conditional-writes"
        ]
        == []
    )
    assert evaluate(_backup_view(None, UNKNOWN))["backup-bucket-conditional-writes"] == []


def _lifecycle_view(rules: Any, inline: list[dict[str, Any]] | None = None) -> StackView:
    props: dict[str, Any] = {"bucket": "files"}
    if inline is not None:
        props["lifecycleRules"] = inline
    bucket = Subject("urn:b", "aws:s3/bucket:Bucket", "files-bucket", props)
    resources = [bucket]
    if rules is not None:
        resources.append(
            Subject(
                "urn:l",
                "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                "files-lifecycle",
                {"rules": rules},
                links={"bucket": ("urn:b",)},
            )
        )
    return StackView("dev", "us-east-1", tuple(resources))


def _abort(days: Any, prefix: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "id": "abort",
        "status": "Enabled",
        "filter": {"prefix": prefix},
        "abortIncompleteMultipartUpload": {"daysAfterInitiation": days},
        **extra,
    }


@pytest.mark.parametrize(
    ("rules", "inline", "flagged"),
    [
        (None, None, True),  # no lifecycle at all
        ([_abort(3)], None, False),
        ([_abort(7)], None, False),
        ([_abort(30)], None, True),  # a month of billed parts is not "a few days"
        ([_abort(3, prefix="postgres/")], None, True),  # not bucket-wide
        ([_abort(3, status="Disabled")], None, True),
        ([{"id": "x", "status": "Enabled", "filter": {"prefix": ""}, "expiration": {"days": 30}}], None, True),
        ([_abort(UNKNOWN)], None, False),
        (UNKNOWN, None, False),
        (None, [{"enabled": True, "abortIncompleteMultipartUploadDays": 2}], False),
        (None, [{"enabled": True, "prefix": "logs/", "abortIncompleteMultipartUploadDays": 2}], True),
    ],
)
def test_incomplete_uploads_must_be_aborted_bucket_wide_within_days(rules: Any, inline: Any, flagged: bool) -> None:
    found = [v.resource for v in evaluate(_lifecycle_view(rules, inline))["s3-aborts-incomplete-uploads"]]
    assert found == (["files-bucket"] if flagged else [])


def test_noncurrent_backup_versions_are_kept_as_long_as_current_ones() -> None:
    def view(noncurrent: Any, current: Any = 365) -> StackView:
        base = _lifecycle_view(
            [
                {
                    "id": "age-out",
                    "status": "Enabled",
                    "filter": {"prefix": "postgres/"},
                    "expiration": {"days": current},
                    "noncurrentVersionExpiration": {"noncurrentDays": noncurrent},
                }
            ]
        )
        bucket = dataclasses.replace(base.resources[0], name="backups-bucket", props={"bucket": "backups"})
        return dataclasses.replace(base, resources=(bucket, *base.resources[1:]))

    def flagged(v: StackView) -> list[str]:
        return [x.message for x in evaluate(v)["backup-bucket-keeps-noncurrent-versions"]]

    assert flagged(view(365)) == [] and flagged(view(400)) == []
    assert flagged(view(1)) == [
        "backups-bucket deletes a noncurrent backup version after 1 day(s) but keeps current ones 365: an overwrite "
        "or a stray delete becomes a real delete; set noncurrent_days >= 365"
    ]
    assert flagged(view(UNKNOWN)) == [] and flagged(view(1, UNKNOWN)) == []
