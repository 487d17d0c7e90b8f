"""Realistic pull requests against fixture stacks: change the config, plan both sides, diff, read the risks.

Each scenario applies one change a user would make to tests/fixtures/diff/stacks/Pulumi.<stack>.yaml,
runs the real program under mocks for both sides (in-process), and asserts the risk lines a reviewer
reads first: what will happen and what to do instead. Benign changes must raise no risk at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from leanstack.diff import (
    DATA_LOSS,
    DOWNTIME,
    EXPOSURE,
    ORPHANED,
    POLICY,
    REFUSED,
    WEAKER,
    diff_plans,
    render_markdown,
    render_text,
)
from leanstack.mocks import REPO, run_program
from leanstack.plan import build_plan
from tests.conftest import DIFF_FIXTURES, merged, read_stack_config

Plan = dict[str, Any]
SCALE = {"leanstack:hosts": {"count": 2}, "leanstack:database": {"readReplicas": 1}}
SECRET_ARN = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:shop/stripe-AbCdEf"

_plans: dict[str, Plan] = {}


def plan(stack: str, overrides: dict[str, Any] | None = None, program: Path | None = None) -> Plan:
    """The fixture stack's plan with `overrides` merged into its config (cached per change)."""
    key = json.dumps([stack, overrides or {}, str(program)], sort_keys=True)
    if key not in _plans:
        config = merged(read_stack_config(stack, DIFF_FIXTURES), overrides or {})
        _plans[key] = build_plan(run_program(stack, config, program))
    copied: Plan = json.loads(json.dumps(_plans[key]))
    return copied


def change(stack: str, overrides: dict[str, Any], base: dict[str, Any] | None = None) -> Plan:
    """Diff of the stack before and after `overrides` (both on top of `base`)."""
    before = base or {}
    return diff_plans(stack, plan(stack, before), plan(stack, merged(before, overrides)))


def risks(result: Plan) -> list[tuple[str, str]]:
    return [(r["kind"], r["name"]) for r in result["risks"]]


def text_of(result: Plan, kind: str) -> str:
    found = [str(r["text"]) for r in result["risks"] if r["kind"] == kind]
    assert len(found) == 1, (kind, result["risks"])
    return found[0]


def rendered(stack: str, result: Plan) -> str:
    return render_text({"base": "main", "head": "pr", "stacks": {stack: result}, "risks": result["risks"],
                        "changed": True})  # fmt: skip


# --------------------------------------------------------------------------- benign: no risk


def test_bigger_database_class_is_no_risk_and_says_when_it_applies() -> None:
    result = change("prod", {"leanstack:database": {"instanceClass": "db.t4g.medium"}})
    assert result["risks"] == []
    # The database, the budget whose limit follows the estimate, and the connections alarm's threshold
    # (the class's max_connections) with the dashboard that draws it.
    db, *others = sorted(result["changed"], key=lambda c: c["type"] != "aws:rds/instance:Instance")
    assert sorted(c["name"] for c in others) == ["budget-monthly", "dashboard-dashboard", "database-connections-high"]
    assert not db["replaced"]
    assert result["notes"][db["urn"]] == [
        "`instanceClass` applies in the maintenance window (sun:04:00-sun:05:00 UTC), not at `pulumi up` "
        "(applyImmediately is false); then: a few minutes of outage while the instance is resized (about a minute of "
        "failover when Multi-AZ)"
    ]
    assert result["cost"]["delta"] > 0


def test_new_alarm_threshold_is_no_risk_and_shows_the_words_that_changed() -> None:
    result = change("prod", {"leanstack:alerts": {"errorRatePercent": 2}})
    assert result["risks"] == []
    body = rendered("prod", result)
    assert "threshold: 5 → 2" in body
    assert "over [-5%-] {+2%+} of requests" in body


def test_cache_turned_on_is_no_risk() -> None:
    result = change("prod", {"leanstack:cache": {"enabled": True}})
    assert result["risks"] == []
    assert "aws:elasticache/replicationGroup:ReplicationGroup" in {r["type"] for r in result["added"]}
    assert result["removed"] == []
    # The budget's limit follows the cost; the app's config parameter gains the cache's endpoint (no host change).
    assert sorted(c["name"] for c in result["changed"]) == ["app-config", "budget-monthly"]


def test_file_storage_turned_on_adds_its_buckets_and_roles_and_raises_no_false_risk() -> None:
    result = change("prod", {"leanstack:storage": {"enabled": True}})
    added = {r["type"] for r in result["added"]}
    assert {"aws:s3/bucketReplicationConfig:BucketReplicationConfig", "aws:iam/role:Role"} <= added
    assert result["removed"] == []
    # Both true: the one host boots again with the credentials endpoint, and its role may now
    # assume the app's. No bucket is public, unversioned or weaker; nothing loses data.
    assert risks(result) == [("downtime", "host-instance"), ("exposure", "host-permissions")]
    assert text_of(result, "exposure").endswith(
        "now also allows sts:AssumeRole on arn:aws:iam::123456789012:role/leanstack-prod-app"
    )
    assert "credentials.env added" in text_of(result, "downtime")
    assert result["cost"]["delta"] > 0


def test_multi_az_turned_on_in_dev_is_no_risk() -> None:
    result = change("dev", {"leanstack:database": {"multiAz": True}})
    assert result["risks"] == []


# --------------------------------------------------------------------------- downtime


def test_an_app_env_value_changes_only_the_config_parameter_never_the_host() -> None:
    result = change("prod", {"leanstack:app": {"env": {"LOG_LEVEL": "info", "FEATURE_X": "on"}}})
    assert result["risks"] == []
    assert [(c["name"], c["replaced"]) for c in result["changed"]] == [("app-config", False)]
    body = rendered("prod", result)
    assert "FEATURE_X" in body and "host-instance" not in body


def test_a_host_file_change_replaces_the_only_host_and_shows_the_file() -> None:
    result = change("prod", {"leanstack:host": {"maxBodyMb": 50}})
    assert risks(result) == [(DOWNTIME, "host-instance")]
    text = text_of(result, DOWNTIME)
    assert text.startswith("the only host `host-instance` is REPLACED (`userDataBase64` changes: cloud-config file ")
    assert "the site is down until the new host" in text
    assert "Instead: apply it at a quiet hour" in text
    body = rendered("prod", result)
    assert "client_max_body_size 50m;" in body
    assert "H4sI" not in body  # never the base64


def test_a_replaced_host_is_not_also_stopped_and_started() -> None:
    result = change("prod", {"leanstack:host": {"maxBodyMb": 50, "instanceType": "t4g.medium"}})
    assert risks(result) == [(DOWNTIME, "host-instance")]
    assert "is REPLACED" in text_of(result, DOWNTIME)
    assert "stopped and started" not in rendered("prod", result)


def test_host_instance_type_stops_and_starts_the_only_host() -> None:
    result = change("prod", {"leanstack:host": {"instanceType": "t4g.medium"}})
    assert risks(result) == [(DOWNTIME, "host-instance")]
    assert "the host is stopped and started to change its type" in text_of(result, DOWNTIME)
    assert not result["changed"][0]["replaced"]


def test_network_cidr_replaces_the_vpc_and_everything_in_it() -> None:
    result = change("prod", {"leanstack:network": {"cidr": "10.30.0.0/16"}})
    replaced = {c["name"] for c in result["changed"] if c["replaced"]}
    assert {
        "network-vpc",
        "network-public-a",
        "network-private-a",
        "host-instance",
        "host-sg",
        "database-sg",
    } <= replaced
    # prod is Multi-AZ: AWS refuses to move it to another VPC, so that is filed as refused, not as downtime.
    assert sorted(risks(result)) == [
        (DOWNTIME, "host-instance"),
        (DOWNTIME, "network-vpc"),
        (REFUSED, "database-instance"),
    ]
    db = text_of(result, REFUSED)
    assert (
        "must move to the new subnets" in db
        and "AWS refuses to move a DB instance to another VPC while it is Multi-AZ" in db
    )
    host = next(r["text"] for r in result["risks"] if r["name"] == "host-instance")
    assert "`subnetId` refers to `network-public-a`, which is replaced" in host
    assert "stopped and started" not in rendered("prod", result)
    # One line for the VPC, with everything it drags along: replaced, and updated in place after it.
    vpc = next(r["text"] for r in result["risks"] if r["name"] == "network-vpc")
    assert vpc.startswith(
        'the VPC `network-vpc` is REPLACED (`cidrBlock` "10.20.0.0/16" → "10.30.0.0/16"), and with it '
    )
    assert "`host-instance`" in vpc and "`database-sg`" in vpc and "`network-public-a`" in vpc
    in_place = vpc.split(" updated in place to point at the new ones (")[1]
    for name in ("network-igw", "host-ip", "database-instance", "database-subnets"):
        assert f"`{name}`" in in_place
        assert any(c["name"] == name and not c["replaced"] for c in result["changed"])


def test_network_cidr_in_dev_moves_the_single_az_database_with_an_outage() -> None:
    result = change("dev", {"leanstack:network": {"cidr": "10.30.0.0/16"}})
    db = next(r for r in result["risks"] if r["name"] == "database-instance")
    assert db["kind"] == DOWNTIME and "AWS does this only by modifying the instance, with an outage" in db["text"]


def test_a_cache_created_with_a_network_change_has_nothing_to_move() -> None:
    result = change("prod", {"leanstack:network": {"cidr": "10.30.0.0/16"}, "leanstack:cache": {"enabled": True}})
    assert not [r for r in result["risks"] if r["name"].startswith("cache")]
    assert "aws:elasticache/replicationGroup:ReplicationGroup" in {r["type"] for r in result["added"]}


def test_an_existing_cache_moved_by_a_network_change_is_said_in_elasticache_terms() -> None:
    on = {"leanstack:cache": {"enabled": True}}
    result = change("prod", {"leanstack:network": {"cidr": "10.30.0.0/16"}}, on)
    cache = next(r for r in result["risks"] if r["name"] == "cache-group")
    assert "ElastiCache moves no running cache to another VPC" in cache["text"] and "Multi-AZ" not in cache["text"]


def test_mock_values_are_labelled_as_such() -> None:
    on = {"leanstack:cache": {"enabled": True}, "leanstack:storage": {"enabled": True}}
    body = rendered("prod", change("prod", on))
    line = next(x for x in body.splitlines() if x.startswith("Mock values, made up offline"))
    assert "the account id `123456789012`" in line and ".use1.cache.amazonaws.com`" in line
    assert "Mock values" not in rendered("prod", change("prod", {"leanstack:alerts": {"errorRatePercent": 2}}))


def test_database_class_applied_immediately_is_downtime() -> None:
    """What the facts table says for applyImmediately=true, on a plan edited the way a component change would."""
    base = plan("prod")
    head = json.loads(json.dumps(base))
    db = next(r for r in head["resources"] if r["name"] == "database-instance")
    db["inputs"].update(applyImmediately=True, instanceClass="db.t4g.medium")
    result = diff_plans("prod", base, head)
    assert risks(result) == [(DOWNTIME, "database-instance")]
    assert "changes at `pulumi up`: a few minutes of outage" in text_of(result, DOWNTIME)


def test_scale_mode_host_type_rolls_through_the_instance_refresh() -> None:
    result = change("prod", {"leanstack:host": {"instanceType": "t4g.medium"}}, SCALE)
    assert sorted(c["type"] for c in result["changed"]) == [
        "aws:budgets/budget:Budget",  # its limit follows the cost
        *["aws:ec2/launchTemplate:LaunchTemplate"] * 2,
    ]
    assert not any(kind == DOWNTIME and "web" in name for kind, name in risks(result))
    notes = [n for ns in result["notes"].values() for n in ns]
    assert any("launches each new host before terminating an old one (min healthy 100 %)" in n for n in notes)
    # The jobs host is replaced terminate-first: its timers pause, said as downtime of that group.
    jobs = [r["text"] for r in result["risks"] if r["kind"] == DOWNTIME]
    assert all("min healthy 0 %" in t for t in jobs)


# --------------------------------------------------------------------------- refused by AWS


def test_engine_downgrade_is_refused_before_pulumi_up_fails() -> None:
    result = change("prod", {"leanstack:database": {"engineVersion": "16"}})
    assert risks(result) == [(REFUSED, "database-instance")]
    assert text_of(result, REFUSED) == (
        "database `database-instance`: `engineVersion` 17 → 16 is a downgrade, which AWS refuses: `pulumi up` will "
        "fail at this step (after applying the changes before it). Instead: keep 17, or restore a dump into a new "
        "16 instance and switch"
    )


def test_storage_shrink_is_refused() -> None:
    result = change(
        "prod", {"leanstack:database": {"allocatedStorageGb": 20}}, {"leanstack:database": {"allocatedStorageGb": 50}}
    )
    assert risks(result) == [(REFUSED, "database-instance")]
    assert "`allocatedStorage` 50 → 20 shrinks it, which AWS refuses" in text_of(result, REFUSED)


def test_smaller_root_volume_is_refused_and_a_bigger_one_is_no_risk() -> None:
    bigger = change("prod", {"leanstack:host": {"rootVolumeGb": 40}})
    assert bigger["risks"] == []
    smaller = change("prod", {"leanstack:host": {"rootVolumeGb": 20}}, {"leanstack:host": {"rootVolumeGb": 40}})
    assert risks(smaller) == [(REFUSED, "host-instance")]
    assert "`rootBlockDevice.volumeSize` 40 → 20 shrinks it, which AWS refuses" in text_of(smaller, REFUSED)


@pytest.mark.parametrize(
    ("key", "value", "prop"), [("databaseName", "shop2", "dbName"), ("username", "shopadmin", "username")]
)
def test_database_name_or_user_replaces_the_database(key: str, value: str, prop: str) -> None:
    result = change("dev", {"leanstack:database": {key: value}})
    assert risks(result)[0] == (DATA_LOSS, "database-instance")
    assert f"`{prop}`" in result["risks"][0]["text"]


def test_cache_engine_downgrade_is_refused() -> None:
    on = {"leanstack:cache": {"enabled": True, "engineVersion": "8.0"}}
    result = change("prod", {"leanstack:cache": {"engineVersion": "7.2"}}, on)
    assert (REFUSED, "cache-group") in risks(result)


# --------------------------------------------------------------------------- data loss


def test_database_identifier_change_in_dev_loses_the_database() -> None:
    result = change("dev", {"leanstack:database": {"identifier": "shop-dev-2"}})
    # The database and its log group (named after it); not the host: its user data names where to
    # read the database's address (an SSM parameter), never the address (issue 22).
    assert risks(result) == [
        (DATA_LOSS, "database-instance"),
        (DATA_LOSS, "database-logs"),
    ]
    text = next(r["text"] for r in result["risks"] if r["name"] == "database-instance")
    assert text.startswith(
        'database `database-instance` is REPLACED (`dbSubnetGroupName` "leanstack-dev" → "shop-dev-2"; '
        '`identifier` "leanstack-dev" → "shop-dev-2"): a new, empty database; the old one is deleted with its data '
        "(RDS takes no final snapshot (skipFinalSnapshot is true); its automated backups are deleted with it"
    )
    assert "Instead: revert, or migrate deliberately: snapshot (or pg_dump), restore into the new database" in text
    logs = next(r["text"] for r in result["risks"] if r["name"] == "database-logs")
    assert "export the log events to S3 first" in logs


def test_database_identifier_change_in_prod_is_stopped_by_protect() -> None:
    result = change("prod", {"leanstack:database": {"identifier": "shop-prod-2"}})
    assert risks(result)[:3] == [(DATA_LOSS, "database-instance"), (DATA_LOSS, "database-logs"),
                                 (REFUSED, "database-instance")]  # fmt: skip
    assert "`pulumi up` stops at its replacement" in text_of(result, REFUSED)
    # What the plan itself says about prod's database: a final snapshot and retained automated backups.
    db = next(r["text"] for r in result["risks"] if r["kind"] == DATA_LOSS and r["name"] == "database-instance")
    assert (
        "the old one is deleted with its data (RDS first takes the final snapshot `leanstack-prod-final`; its "
        "automated backups are kept (deleteAutomatedBackups is false) until their 14-day retention ends)"
    ) in db
    assert "only when one is configured" not in db


# --------------------------------------------------------------------------- weaker safety and policy


def test_multi_az_off_drops_the_standby() -> None:
    result = change("prod", {"leanstack:database": {"multiAz": False}})
    assert risks(result) == [(WEAKER, "database-instance")]
    assert "`multiAz` true → false: the standby is dropped" in text_of(result, WEAKER)
    assert result["cost"]["delta"] < 0


def test_deletion_protection_off_in_prod_fails_policy_first() -> None:
    result = change("prod", {"leanstack:database": {"deletionProtection": False}})
    assert risks(result) == [(POLICY, "database-instance"), (WEAKER, "database-instance")]
    assert text_of(result, POLICY).startswith("rule `rds-production-protection` now fails: ")
    assert "`plan` exits 4" in text_of(result, POLICY)


def test_shorter_backup_retention_and_object_lock_weakened() -> None:
    result = change(
        "prod",
        {
            "leanstack:database": {"backupRetentionDays": 7},
            "leanstack:backup": {"objectLockMode": "GOVERNANCE", "objectLockDays": 7, "expireAfterDays": 180},
        },
    )
    texts = [r["text"] for r in result["risks"] if r["kind"] == WEAKER]
    assert "database `database-instance`: `backupRetentionPeriod` 14 → 7: less history kept" in texts
    assert any("Object Lock mode COMPLIANCE → GOVERNANCE" in t for t in texts)
    assert any("Object Lock default retention 30 → 7 days" in t for t in texts)
    assert any("objects now expire after 180 days instead of 365" in t for t in texts)
    assert {k for k, _ in risks(result)} == {WEAKER}


def test_final_snapshot_off_and_protect_off_in_prod() -> None:
    result = change("prod", {"leanstack:database": {"finalSnapshot": False, "protect": False}})
    texts = [r["text"] for r in result["risks"]]
    assert "database `database-instance`: `skipFinalSnapshot` turned on" in texts
    assert "database `database-instance`: Pulumi `protect` removed" in texts
    assert risks(result)[0][0] == POLICY


# --------------------------------------------------------------------------- exposure


def test_a_new_secret_grants_a_new_arn_shown_as_structure() -> None:
    result = change("prod", {"leanstack:app": {"secrets": {"STRIPE_KEY": SECRET_ARN}}})
    assert (EXPOSURE, "host-permissions") in risks(result)
    assert text_of(result, EXPOSURE) == (
        f"IAM inline policy `host-permissions`: `policy` now also allows secretsmanager:GetSecretValue on {SECRET_ARN}"
    )
    body = rendered("prod", result)
    assert '+ Statement[]: {"Action":"secretsmanager:GetSecretValue","Effect":"Allow","Resource":' in body
    second = change(
        "prod",
        {"leanstack:app": {"secrets": {"STRIPE_KEY": SECRET_ARN, "MAIL_KEY": SECRET_ARN.replace("stripe", "mail")}}},
        {"leanstack:app": {"secrets": {"STRIPE_KEY": SECRET_ARN}}},
    )
    assert f'+ Statement[Sid=ReadAppSecrets].Resource[]: "{SECRET_ARN.replace("stripe", "mail")}"' in rendered(
        "prod", second
    )


def test_cdn_turned_off_exposes_the_origin() -> None:
    result = change("prod", {"leanstack:cdn": {"proxied": False}})
    kinds = {k for k, _ in risks(result)}
    assert EXPOSURE in kinds
    assert any("the CDN no longer proxies it" in r["text"] for r in result["risks"])


# --------------------------------------------------------------------------- renames, retained, orphaned


def _renamed_program(tmp: Path, alias: bool) -> Path:
    source = (REPO / "__main__.py").read_text()
    old = 'BackupBucket("backups", cfg.backup,'
    assert old in source
    opts = "opts=main"
    new_opts = 'opts=pulumi.ResourceOptions.merge(main, pulumi.ResourceOptions(aliases=[pulumi.Alias(name="backups")]))'
    text = source.replace(old, 'BackupBucket("offsite", cfg.backup,')
    line = next(x for x in text.splitlines() if 'BackupBucket("offsite"' in x)
    text = text.replace(line, line.replace(opts, new_opts) if alias else line)
    path = tmp / ("aliased.py" if alias else "renamed.py")
    path.write_text(text)
    return path


def test_backup_bucket_renamed_with_an_alias_is_no_change(tmp_path: Path) -> None:
    result = diff_plans("prod", plan("prod"), plan("prod", program=_renamed_program(tmp_path, alias=True)))
    assert result["risks"] == [] and result["changed"] == []
    assert result["added"] == [] and result["removed"] == []
    assert len(result["renamed"]) == 9 and all(r["aliased"] for r in result["renamed"])
    assert "backups-bucket → offsite-bucket: aliased, no change" in rendered("prod", result)


def test_backup_bucket_renamed_without_an_alias_says_the_alias_to_add(tmp_path: Path) -> None:
    result = diff_plans("prod", plan("prod"), plan("prod", program=_renamed_program(tmp_path, alias=False)))
    assert {k for k, _ in risks(result)} == {ORPHANED, DOWNTIME}
    orphaned = [r["text"] for r in result["risks"] if r["kind"] == ORPHANED]
    assert orphaned[0].startswith("BackupBucket `backups` renamed to `offsite` without an alias")
    assert 'opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="backups")])' in orphaned[0]
    assert any("creates a new, EMPTY bucket and leaves the old one in place, unmanaged and still billed" in t
               for t in orphaned)  # fmt: skip
    body = " ".join(r["text"] for r in result["risks"])
    # Nothing false: the old bucket is not deleted, its encryption and lock are not "removed".
    assert "DELETED" not in body and "encryption removed" not in body and "Object Lock default" not in body


def test_backup_region_change_orphans_the_old_bucket_and_starts_empty() -> None:
    result = change("prod", {"leanstack:backup": {"region": "eu-north-1"}})
    assert (ORPHANED, "backups-bucket") in risks(result)
    text = text_of(result, ORPHANED)
    assert '`options.region` "eu-west-1" → "eu-north-1"' in text
    assert "creates a new, EMPTY bucket and leaves the old one in place, unmanaged and still billed" in text
    assert "aws s3 sync" in text and "S3 Batch Replication" in text
    assert "deleted with" not in text
    assert DATA_LOSS not in {k for k, _ in risks(result)}


def test_a_named_bucket_moved_to_another_region_is_refused() -> None:
    named = {"leanstack:backup": {"bucketName": "shop-fixture-backups"}}
    result = change("prod", {"leanstack:backup": {"region": "eu-north-1"}}, named)
    assert "S3 bucket names are global" in text_of(result, REFUSED)


def test_markdown_puts_risks_first_and_fences_the_changes() -> None:
    result = change("prod", {"leanstack:database": {"engineVersion": "16"}})
    body = render_markdown({"base": "main", "head": "pr", "stacks": {"prod": result}, "risks": result["risks"],
                            "changed": True})  # fmt: skip
    assert body.index("### ⚠️ Risk: 1 finding") < body.index("| Stack |") < body.index("```diff")
    assert "**refused by AWS**" in body


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_plan_against_itself_is_no_change(stack: str) -> None:
    result = diff_plans(stack, plan(stack), plan(stack))
    assert result["changed"] == result["added"] == result["removed"] == result["risks"] == []
