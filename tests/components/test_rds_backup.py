"""database.awsBackup: the instance under an AWS Backup plan, copied to a locked vault in the backup region,
restore-tested monthly, its results to the ticket topic and a failure alarmed; priced."""

from __future__ import annotations

import json
from typing import Any

import pytest

from leanstack.mocks import StackRun
from leanstack.plan import build_plan
from tests.conftest import run_with

ON = {"leanstack:database": {"awsBackup": {"enabled": True}}}


@pytest.fixture(scope="module")
def prod_backed_up() -> StackRun:
    return run_with(ON, stack="prod")


def _one(run: StackRun, kind: str) -> Any:
    found = run.of_type(kind)
    assert len(found) == 1, (kind, len(found))
    return found[0]


def test_off_by_default(dev: StackRun, prod: StackRun) -> None:
    for run in (dev, prod):
        assert not [r for r in run.resources if r.type.startswith("aws:backup/")]


def test_the_plan_has_continuous_backup_and_daily_snapshots_of_the_database(prod_backed_up: StackRun) -> None:
    run = prod_backed_up
    plan = _one(run, "aws:backup/plan:Plan").inputs
    rules = {rule["ruleName"]: rule for rule in plan["rules"]}
    assert set(rules) == {"continuous", "daily-snapshot"}
    assert rules["continuous"]["enableContinuousBackup"] is True
    # The instance's own window (prod: 14 days), so AWS Backup keeps what Pulumi declares.
    instance = run.named("database-instance")
    assert rules["continuous"]["lifecycle"]["deleteAfter"] == instance.inputs["backupRetentionPeriod"] == 14
    assert rules["daily-snapshot"]["lifecycle"]["deleteAfter"] == 35
    selection = _one(run, "aws:backup/selection:Selection").inputs
    assert selection["resources"] == [instance.outputs["arn"]]
    assert selection["planId"] == _one(run, "aws:backup/plan:Plan").id


def test_snapshots_are_copied_to_a_locked_vault_in_the_backup_region(prod_backed_up: StackRun) -> None:
    run = prod_backed_up
    vaults = {v.inputs["name"]: v for v in run.of_type("aws:backup/vault:Vault")}
    assert {name: v.region for name, v in vaults.items()} == {
        "leanstack-prod-rds": "us-east-1",
        "leanstack-prod-rds-copy": "us-west-2",  # backup.region
    }
    copy = vaults["leanstack-prod-rds-copy"]
    rules = {r["ruleName"]: r for r in _one(run, "aws:backup/plan:Plan").inputs["rules"]}
    [action] = rules["daily-snapshot"]["copyActions"]
    assert action["destinationVaultArn"] == copy.outputs["arn"]
    lock = _one(run, "aws:backup/vaultLockConfiguration:VaultLockConfiguration")
    assert lock.region == "us-west-2" and lock.inputs["backupVaultName"] == copy.inputs["name"]
    # Locked like the backup bucket: its objectLockDays as the minimum, COMPLIANCE after the 3-day grace.
    assert (lock.inputs["minRetentionDays"], lock.inputs["changeableForDays"]) == (30, 3)
    assert action["lifecycle"]["deleteAfter"] >= lock.inputs["minRetentionDays"]


def test_governance_lock_stays_removable(run_dev_with: Any) -> None:
    run = run_dev_with(
        {**ON, "leanstack:backup": {"objectLockMode": "GOVERNANCE", "objectLockDays": 40, "expireAfterDays": 400}}
    )
    lock = _one(run, "aws:backup/vaultLockConfiguration:VaultLockConfiguration").inputs
    assert lock["minRetentionDays"] == 40 and "changeableForDays" not in lock
    rules = {r["ruleName"]: r for r in _one(run, "aws:backup/plan:Plan").inputs["rules"]}
    assert rules["daily-snapshot"]["copyActions"][0]["lifecycle"]["deleteAfter"] == 40


def test_monthly_restore_testing_of_the_newest_snapshot_where_the_database_lives(prod_backed_up: StackRun) -> None:
    run = prod_backed_up
    testing = _one(run, "aws:backup/restoreTestingPlan:RestoreTestingPlan").inputs
    assert testing["scheduleExpression"] == "cron(0 6 1 * ? *)"
    selection = testing["recoveryPointSelection"]
    assert selection["algorithm"] == "LATEST_WITHIN_WINDOW" and selection["recoveryPointTypes"] == ["SNAPSHOT"]
    vault = next(v for v in run.of_type("aws:backup/vault:Vault") if v.inputs["name"] == "leanstack-prod-rds")
    assert selection["includeVaults"] == [vault.outputs["arn"]]
    chosen = _one(run, "aws:backup/restoreTestingSelection:RestoreTestingSelection").inputs
    assert chosen["restoreTestingPlanName"] == testing["name"] and chosen["protectedResourceType"] == "RDS"
    assert chosen["protectedResourceArns"] == [run.named("database-instance").outputs["arn"]]
    overrides = chosen["restoreMetadataOverrides"]
    assert overrides["dbSubnetGroupName"] == run.named("database-subnets").outputs["name"]
    assert json.loads(overrides["vpcSecurityGroupIds"]) == [run.named("database-sg").id]


def test_results_reach_the_ticket_topic_and_a_failure_is_alarmed(prod_backed_up: StackRun) -> None:
    run = prod_backed_up
    ticket = run.outputs["ticketTopicArn"]
    notifications = _one(run, "aws:backup/vaultNotifications:VaultNotifications").inputs
    assert notifications["snsTopicArn"] == ticket and "RESTORE_JOB_COMPLETED" in notifications["backupVaultEvents"]
    policy = json.loads(_one(run, "aws:sns/topicPolicy:TopicPolicy").inputs["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["AwsBackupReports"]["Principal"] == {"Service": "backup.amazonaws.com"}
    # The default statement stays: the alarms still publish to the ticket topic.
    assert "SNS:Publish" in statements["AccountOwner"]["Action"]
    alarm = run.named("rds-backup-restore-test-failed").inputs
    assert alarm["name"] == "leanstack-prod-rds-restore-test-failed"
    assert alarm["alarmActions"] == [ticket]
    assert (alarm["namespace"], alarm["metricName"]) == ("AWS/Backup", "NumberOfRestoreJobsFailed")


def test_priced(prod_backed_up: StackRun, prod: StackRun) -> None:
    cost = build_plan(prod_backed_up)["cost"]
    assert not [n for n in cost["notPriced"] if n["type"].startswith("aws:backup/")]
    assert cost["total"] > build_plan(prod)["cost"]["total"] + 3  # snapshots here and there, and the monthly test


def test_with_every_new_option_on_the_policy_pack_passes_and_every_type_is_priced_and_known() -> None:
    """Issue 24's optional pieces together (AWS Backup, Slack, a worker with the cache) on prod."""
    from leanstack.plan import failed_policies
    from leanstack.resource_facts import COMPONENT, FACTS

    run = run_with(
        {
            **ON,
            "leanstack:alerts": {"slack": {"workspaceId": "T0123ABCDE", "channelId": "C0123ABCDEF"}},
            "leanstack:app": {"processes": {"worker": {"command": ["bin/worker"]}}},
            "leanstack:cache": {"enabled": True},
        },
        stack="prod",
    )
    plan = build_plan(run)
    assert failed_policies(plan) == []
    assert plan["cost"]["notPriced"] == []
    custom = {r.type for r in run.resources if r.custom and not r.type.startswith("pulumi:providers:")}
    assert sorted(t for t in custom if t not in FACTS) == []
    assert COMPONENT.what  # components are described by the one shared entry
