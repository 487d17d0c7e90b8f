"""RdsBackup: RDS's own restore paths proven, with AWS Backup (opt-in: `database.awsBackup.enabled`).

The off-site dumps (BackupBucket, the host's monthly drill) prove logical restores. This
component proves RDS's own: it puts the instance under an AWS Backup plan with two rules,
continuous backup (point-in-time recovery for `database.backupRetentionDays`, the same window
the instance declares, so AWS Backup, which takes the instance's automated backups over,
keeps what Pulumi says) and a daily snapshot kept `awsBackup.snapshotDays`, each snapshot
copied to a vault in `backup.region` that is locked like the backup bucket (minimum retention
`backup.objectLockDays`; COMPLIANCE: the lock becomes immutable after 3 days, GOVERNANCE: it
stays removable by a privileged user). Once a month AWS Backup restore testing restores the
newest snapshot into a throw-away instance in the database's subnet group and security group,
keeps it for the validation window and deletes it; the vault reports every restore job to the
ticket topic, and the `rds-restore-test-failed` alarm files a ticket when one fails.

Cost: billed are the snapshots' storage here and in the copy vault (about the database's size
each), the copy's cross-region transfer, and each month one restore test (the test instance for
about an hour of its class, plus AWS Backup's restore-testing charge); continuous backup within
the retention costs what RDS's automated backups cost (free up to the database's size). Priced
in `python -m leanstack plan`.

Replacement: changing the backup region replaces the copy vault (a locked vault cannot be
deleted while it holds recovery points: remove them first, after their retention). The plan,
selections and restore testing change in place.

The point-in-time window is the database's `backup_retention_days`; the copy vault's region,
lock days and lock mode are the backup bucket's (`backup.region`, `backup.objectLockDays`,
`backup.objectLockMode`), so the snapshots' off-site copy is held as the dumps are.

Children, reachable as attributes: `role`, `vault`, `copy_vault`, `plan`, `restore_testing`.

Example:
    RdsBackup("rds-backup", AwsBackupArgs(enabled=True), database=db, backups=backups, stack="prod",
              ticket_topic_arn=alerts.ticket_topic_arn)
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from leanstack.components.alarms import metric_alarm
from leanstack.components.backup_bucket import BackupBucket
from leanstack.components.base import LeanComponent
from leanstack.components.database import Database
from leanstack.components.providers import aws_provider
from leanstack.config import AwsBackupArgs
from leanstack.config.naming import stack_prefix

__all__ = ["AwsBackupArgs", "RdsBackup"]

# AWS's managed policies for a backup service role: take and copy backups; restore them (the tests).
SERVICE_POLICIES = (
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
)
# Daily at 03:30 UTC, after the default RDS backup window (02:00-03:00); AWS Backup starts within an hour.
SNAPSHOT_SCHEDULE = "cron(30 3 * * ? *)"
# The 1st of each month at 06:00 UTC: the newest snapshot of the last 7 days is restored.
RESTORE_TEST_SCHEDULE = "cron(0 6 1 * ? *)"
RESTORE_TEST_WINDOW_HOURS = 1
# A COMPLIANCE lock becomes immutable after this many days (AWS's minimum grace is 3).
LOCK_GRACE_DAYS = 3
# What the vault tells the ticket topic: each restore's result (the tests'), and a copy that failed.
VAULT_EVENTS = ("RESTORE_JOB_COMPLETED", "COPY_JOB_FAILED")


class RdsBackup(LeanComponent):
    def __init__(
        self,
        name: str,
        args: AwsBackupArgs,
        *,
        database: Database,
        backups: BackupBucket,
        stack: str,
        ticket_topic_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, opts)
        self.args, self.database, self.stack = args, database, stack
        self.prefix = stack_prefix(stack)
        lock = backups.args
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        self.role = self._create_role()
        self.vault = aws.backup.Vault(
            self.child_name("vault"), name=f"{self.prefix}-rds", tags=self.tags, opts=self.child_opts()
        )
        self.copy_vault = self._create_copy_vault(lock.region, lock.object_lock_days, lock.object_lock_mode)
        self.plan = self._create_plan(copy_days=max(args.snapshot_days, lock.object_lock_days))
        aws.backup.Selection(
            self.child_name("selection"),
            name=f"{self.prefix}-rds",
            plan_id=self.plan.id,
            iam_role_arn=self.role.arn,
            resources=[database.arn],
            opts=self.child_opts(),
        )
        self._report(self.vault, ticket_topic_arn, account)
        self.restore_testing = self._create_restore_testing()
        self._failure_alarm(ticket_topic_arn)
        self.vault_name = self.vault.name
        self.copy_vault_arn = self.copy_vault.arn
        self.register_outputs({"vault_name": self.vault_name, "copy_vault_arn": self.copy_vault_arn})

    def _create_role(self) -> aws.iam.Role:
        """The service role AWS Backup takes and copies backups with, and restores them with (the tests)."""
        role = aws.iam.Role(
            self.child_name("role"),
            name=f"{self.prefix}-aws-backup",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "backup.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            tags=self.tags,
            opts=self.child_opts(),
        )
        for index, policy in enumerate(SERVICE_POLICIES):
            aws.iam.RolePolicyAttachment(
                self.child_name(f"role-{('backup', 'restore')[index]}"),
                role=role.name,
                policy_arn=policy,
                opts=self.child_opts(),
            )
        return role

    def _create_copy_vault(self, region: str, lock_days: int, lock_mode: str) -> aws.backup.Vault:
        """The vault in the backup region the daily snapshots are copied to, locked like the backup bucket."""
        provider = aws_provider(self.child_name("backup-region"), region=region, stack=self.stack,
                                opts=self.child_opts())  # fmt: skip
        copy_vault = aws.backup.Vault(
            self.child_name("copy-vault"),
            name=f"{self.prefix}-rds-copy",
            tags=self.tags,
            opts=self.child_opts(provider=provider),
        )
        aws.backup.VaultLockConfiguration(
            self.child_name("copy-vault-lock"),
            backup_vault_name=copy_vault.name,
            min_retention_days=lock_days,
            # COMPLIANCE as the backup bucket: after the grace nobody, root included, can shorten or lift it.
            changeable_for_days=LOCK_GRACE_DAYS if lock_mode == "COMPLIANCE" else None,
            opts=self.child_opts(provider=provider),
        )
        return copy_vault

    def _create_plan(self, copy_days: int) -> aws.backup.Plan:
        """Continuous backup over the database's own window, and a daily snapshot copied off-site."""
        return aws.backup.Plan(
            self.child_name("plan"),
            name=f"{self.prefix}-rds",
            rules=[
                aws.backup.PlanRuleArgs(
                    rule_name="continuous",
                    target_vault_name=self.vault.name,
                    schedule=SNAPSHOT_SCHEDULE,
                    enable_continuous_backup=True,
                    # Continuous backup keeps at most 35 days; the instance's own window, so both agree.
                    lifecycle=aws.backup.PlanRuleLifecycleArgs(delete_after=self.database.args.backup_retention_days),
                ),
                aws.backup.PlanRuleArgs(
                    rule_name="daily-snapshot",
                    target_vault_name=self.vault.name,
                    schedule=SNAPSHOT_SCHEDULE,
                    lifecycle=aws.backup.PlanRuleLifecycleArgs(delete_after=self.args.snapshot_days),
                    copy_actions=[
                        aws.backup.PlanRuleCopyActionArgs(
                            destination_vault_arn=self.copy_vault.arn,
                            # At least the vault lock's minimum, or the copy is refused.
                            lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(delete_after=copy_days),
                        )
                    ],
                ),
            ],
            tags=self.tags,
            opts=self.child_opts(),
        )

    def _create_restore_testing(self) -> aws.backup.RestoreTestingPlan:
        """Monthly: the newest snapshot restored into a throw-away instance where the database is."""
        database = self.database
        testing = aws.backup.RestoreTestingPlan(
            self.child_name("restore-testing"),
            # Restore testing names take letters, digits and underscores only.
            name=f"{self.prefix}_rds".replace("-", "_"),
            schedule_expression=RESTORE_TEST_SCHEDULE,
            start_window_hours=4,
            recovery_point_selection=aws.backup.RestoreTestingPlanRecoveryPointSelectionArgs(
                algorithm="LATEST_WITHIN_WINDOW",
                include_vaults=[self.vault.arn],
                recovery_point_types=["SNAPSHOT"],
                selection_window_days=7,
            ),
            tags=self.tags,
            opts=self.child_opts(),
        )
        aws.backup.RestoreTestingSelection(
            self.child_name("restore-testing-selection"),
            name=f"{self.prefix}_rds_instance".replace("-", "_"),
            restore_testing_plan_name=testing.name,
            protected_resource_type="RDS",
            iam_role_arn=self.role.arn,
            protected_resource_arns=[database.arn],
            # The test instance lands where the database is: private subnets, reachable only as the database is.
            restore_metadata_overrides={
                "dbSubnetGroupName": database.subnet_group_name,
                "vpcSecurityGroupIds": database.security_group_id.apply(lambda group: json.dumps([group])),
            },
            validation_window_hours=RESTORE_TEST_WINDOW_HOURS,
            opts=self.child_opts(),
        )
        return testing

    def _report(self, vault: aws.backup.Vault, topic_arn: pulumi.Input[str], account: pulumi.Input[str]) -> None:
        """Every restore job's result to the ticket topic: AWS Backup must be allowed to publish there."""
        aws.sns.TopicPolicy(
            self.child_name("ticket-topic-policy"),
            arn=topic_arn,
            policy=pulumi.Output.all(topic_arn, account).apply(
                lambda v: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                # SNS's default statement, kept: the account's own services (the alarms) publish.
                                "Sid": "AccountOwner",
                                "Effect": "Allow",
                                "Principal": {"AWS": "*"},
                                "Action": [
                                    "SNS:GetTopicAttributes",
                                    "SNS:SetTopicAttributes",
                                    "SNS:AddPermission",
                                    "SNS:RemovePermission",
                                    "SNS:DeleteTopic",
                                    "SNS:Subscribe",
                                    "SNS:ListSubscriptionsByTopic",
                                    "SNS:Publish",
                                ],
                                "Resource": v[0],
                                "Condition": {"StringEquals": {"AWS:SourceOwner": v[1]}},
                            },
                            {
                                "Sid": "AwsBackupReports",
                                "Effect": "Allow",
                                "Principal": {"Service": "backup.amazonaws.com"},
                                "Action": "SNS:Publish",
                                "Resource": v[0],
                                "Condition": {"StringEquals": {"aws:SourceAccount": v[1]}},
                            },
                        ],
                    },
                    sort_keys=True,
                )
            ),
            opts=self.child_opts(),
        )
        aws.backup.VaultNotifications(
            self.child_name("vault-notifications"),
            backup_vault_name=vault.name,
            sns_topic_arn=topic_arn,
            backup_vault_events=list(VAULT_EVENTS),
            opts=self.child_opts(),
        )

    def _failure_alarm(self, topic_arn: pulumi.Input[str]) -> None:
        metric_alarm(
            self,
            "restore-test-failed",
            "Data at risk: an AWS Backup restore of the database failed (the monthly restore test, or a restore "
            "by hand), so RDS's own snapshots may not restore. First check: AWS Backup console > Jobs > Restore "
            "jobs (the status message), then Restore testing. Runbook: #rds-restore-test-failed",
            name=f"{self.prefix}-rds-restore-test-failed",
            namespace="AWS/Backup",
            metric_name="NumberOfRestoreJobsFailed",
            dimensions={"ResourceType": "RDS"},
            statistic="Sum",
            period=86400,
            evaluation_periods=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
            treat_missing_data="notBreaching",
            alarm_actions=[topic_arn],
        )
