"""The policy rules, offline: every rule passes on every stack and fails on its own unsafe case."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from leanstack.mocks import StackRun
from policy.offline import evaluate_policies, render_results, view_of
from policy.rules import RULES, UNKNOWN, StackView, Subject, evaluate

# Each rule, and exactly the resources of the unsafe program it must flag.
EXPECTED_IN_UNSAFE: dict[str, set[str]] = {
    "database-not-public": {"db-publicly-accessible", "db-open-security-group"},
    "rds-storage-encrypted": {"db-unencrypted"},
    "cache-encrypted": {"cache-unencrypted"},
    "ebs-encrypted": {"host-unencrypted-disk"},
    "imdsv2-required": {"host-imdsv1"},
    "no-ssh": {"sg-ssh-from-office"},
    "no-world-ingress": {"sg-postgres-from-world", "sg-https-from-world-behind-cdn"},
    "s3-public-access-blocked": {"bucket-wide-open", "backup-bucket-same-region-unlocked"},
    "s3-tls-only": {"bucket-wide-open", "backup-bucket-same-region-unlocked"},
    "s3-versioned": {"bucket-wide-open", "backup-bucket-same-region-unlocked"},
    "s3-encrypted": {"bucket-wide-open", "backup-bucket-same-region-unlocked"},
    "backup-bucket-off-site": {"backup-bucket-same-region-unlocked"},
    "backup-bucket-object-lock": {"backup-bucket-same-region-unlocked"},
    "rds-backup-retention": {"db-one-day-retention"},
    "rds-production-protection": {"db-protected-but-deletable"},
    "no-star-iam": {"admin-everything"},
    "host-cannot-delete-backups": {"host-may-delete-backups", "admin-everything"},
    "host-reads-own-parameters": {"host-ssm-managed-core", "admin-everything"},
}


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
    # WriteAndReadBackups is the statement on the backup bucket's prefix.
    _policy_doc(
        p,
        lambda s: next(x for x in s if x.get("Sid") == "WriteAndReadBackups")["Action"].append(
            "s3:DeleteObjectVersion"
        ),
    )


def _unchanged(p: dict[str, Any]) -> None:
    return None


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
    ("no-star-iam", "host-permissions", _allow_everything, {}),
    ("host-cannot-delete-backups", "host-permissions", _allow_deleting_backups, {}),
]


@pytest.mark.parametrize(("rule", "name", "change", "fields"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
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
