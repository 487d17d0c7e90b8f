"""Storage: the app's uploaded files, replicated off-site, and the app's own AWS role.

Off by default, and off means no resources at all: `__main__` creates it only with
`storage.enabled: true`. It builds:
- the uploads bucket, in the stack's region: private, SSE-S3, versioned, TLS-only (the lock-down
  every leanstack bucket gets, `components.private_bucket`), no customer-provided keys (SSE-C is
  denied: the app's credentials could re-encrypt the files with a key of their own), with an optional CORS rule for
  direct browser uploads (`cors_origins`); an overwritten or deleted file's old version is kept
  `keep_deleted_days`;
- its replica, in the backup region through the backup bucket's provider (so a second backup
  account holds it too): versioned, Object Lock with the backup's default retention, the same
  lock-down, Glacier Instant Retrieval and noncurrent expiry as the database backups. Current
  replicas never expire: they are the files;
- the replication: the uploads bucket's replication configuration names the replica as its
  destination, replicates every new object and version, never delete markers (a file deleted,
  by mistake or by an attacker holding the app's role, stays in the replica), with S3
  replication metrics on (no Replication Time Control: lean, see Cost) and a least-privilege
  role that can read the uploads bucket's versions and replicate into the replica, nothing else;
- the "files at risk" alarm: any replication that failed, or files waiting more than an hour
  to reach the replica, pages the stack's topic;
- the app's role (`app_role_arn`, made by `trust_host_role` once the host's role exists): trusted by
  the host's role only, named as the principal (which assumes it for the app's container through the
  host's credentials endpoint, `host.credentials`), allowed to
  list, get, put and delete objects in the uploads bucket and nothing else. It exists with
  storage only: without the bucket the app has nothing in AWS to reach.

Cost: billed are the storage in each bucket (S3 Standard; the replica moves to Glacier Instant
Retrieval after backup.glacierAfterDays), the cross-region replication transfer per GB written,
the replication metrics (four CloudWatch custom metrics) and one alarm; priced per region in
`python -m leanstack plan`. Replication Time Control (a 15-minute SLA) would be billed per GB
more; the alarm's one hour does without.

Replacement: the buckets' names and regions are fixed; changing backup.region creates a new,
empty replica (the old one is retained with its locked objects; the diff flags it).

Recovery stacks (`existing_replica`, written by `python -m leanstack recover init`): the
region-down stack's replica is used by name (nothing created or changed on it) and this
stack's new uploads bucket replicates into it.

Example:
    storage = Storage("storage", StorageArgs(enabled=True), backup=backups, stack="prod",
                      host_role_name="leanstack-prod-host", alarm_topic_arn=topic)
    storage.trust_host_role(host.role_arn)
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypeAlias

import pulumi
import pulumi_aws as aws

from leanstack.components.alarms import metric_alarm
from leanstack.components.backup_bucket import BackupBucket, existing_bucket
from leanstack.components.base import LeanComponent, policy_json, policy_output
from leanstack.components.private_bucket import lock_down_bucket
from leanstack.config import StorageArgs
from leanstack.config.naming import stack_prefix

__all__ = ["REPLICATION_RULE_ID", "Storage", "StorageArgs", "app_role_name", "deny_customer_keys", "uploads_statements"]

REPLICATION_RULE_ID = "uploads-to-replica"
# Files not in the replica this long are at risk; S3 replicates most objects within 15 minutes.
FILES_AT_RISK_SECONDS = 3600


def app_role_name(stack: str) -> str:
    """The app's own role: leanstack-<stack>-app."""
    return f"{stack_prefix(stack)}-app"


def uploads_statements(bucket_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    """IAM statements of the app's role: its files in the uploads bucket, nothing else."""
    return [
        {
            "Sid": "UseUploads",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
            "Resource": pulumi.Output.concat(bucket_arn, "/*"),
        },
        {"Sid": "ListUploads", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn},
    ]


def deny_customer_keys(bucket_arn: pulumi.Input[str]) -> dict[str, Any]:
    """No object written with a customer-provided key (SSE-C): whoever holds the app's credentials could
    otherwise re-encrypt every file with a key only they have, and neither replication nor the owner could
    read them. AWS's documented condition: the SSE-C algorithm header present on a write (PutObject covers
    CopyObject and multipart uploads)."""
    return {
        "Sid": "DenyCustomerProvidedKeys",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": pulumi.Output.concat(bucket_arn, "/*"),
        "Condition": {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}},
    }


class ExistingReplica(NamedTuple):
    """A recovery stack's replica: the region-down stack's, known by name only."""

    bucket: pulumi.Output[str]
    arn: pulumi.Output[str]


ReplicaBucket: TypeAlias = aws.s3.Bucket | ExistingReplica


class Storage(LeanComponent):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    replica_name: pulumi.Output[str]
    replica_arn: pulumi.Output[str]
    replica_region: str
    app_role_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: StorageArgs,
        *,
        stack: str,
        backup: BackupBucket,
        host_role_name: str,
        alarm_topic_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, opts)
        self.args, self.stack, self.backup = args, stack, backup
        self._host_role_name = host_role_name
        self._account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        uploads, uploads_versioning = self._create_uploads_bucket()
        replica, replica_versioning = self._replica_bucket()
        self.replication_role = role = self._create_replication_role(uploads, replica)
        self._replicate(uploads, replica, role, depends_on=[uploads_versioning, *replica_versioning])
        self._create_files_at_risk_alarm(uploads, replica, alarm_topic_arn)
        self.uploads_bucket, self.replica_bucket = uploads, replica
        self.bucket_name, self.bucket_arn = uploads.bucket, uploads.arn
        self.replica_name, self.replica_arn = replica.bucket, replica.arn
        self.replica_region = backup.region
        # Known by name: the role itself is made by trust_host_role, once the host's role exists.
        self.app_role_arn = self._role_arn(app_role_name(stack))
        self.register_outputs(
            {"bucket_name": self.bucket_name, "replica_name": self.replica_name, "app_role_arn": self.app_role_arn}
        )

    def _account_root(self) -> pulumi.Output[str]:
        return pulumi.Output.concat("arn:aws:iam::", self._account, ":root")

    def _role_arn(self, name: str) -> pulumi.Output[str]:
        return pulumi.Output.concat("arn:aws:iam::", self._account, ":role/", name)

    # ------------------------------------------------------------------ the uploads bucket

    def _create_uploads_bucket(self) -> tuple[aws.s3.Bucket, aws.s3.BucketVersioning]:
        bucket = aws.s3.Bucket(
            self.child_name("uploads"),
            bucket_prefix=f"{stack_prefix(self.stack)}-uploads-",
            force_destroy=False,
            tags=self.tags,
            # The app's files outlive the stack: `pulumi destroy` leaves the bucket.
            opts=self.child_opts(retain_on_delete=True),
        )
        keep_old_versions = aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="expire-old-versions",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=self.args.keep_deleted_days
            ),
        )
        versioning = lock_down_bucket(
            self, bucket, self.child_opts, [deny_customer_keys(bucket.arn)], "uploads-", [keep_old_versions]
        )
        if self.args.cors_origins:
            aws.s3.BucketCorsConfiguration(
                self.child_name("uploads-cors"),
                bucket=bucket.id,
                cors_rules=[
                    aws.s3.BucketCorsConfigurationCorsRuleArgs(
                        allowed_methods=["GET", "PUT", "POST", "HEAD"],
                        allowed_origins=list(self.args.cors_origins),
                        allowed_headers=["*"],
                        expose_headers=["ETag"],
                        max_age_seconds=3600,
                    )
                ],
                opts=self.child_opts(),
            )
        return bucket, versioning

    # ------------------------------------------------------------------ the replica, off-site

    def _replica_opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return self.backup.provider_opts(self, **kwargs)

    def _replica_bucket(self) -> tuple[ReplicaBucket, list[pulumi.Resource]]:
        """The replica and what replication waits for; a recovery stack's is the existing one, untouched."""
        if self.args.existing_replica:
            return ExistingReplica(*existing_bucket(self.args.existing_replica)), []
        bucket, versioning = self._create_replica_bucket()
        return bucket, [versioning]

    def _create_replica_bucket(self) -> tuple[aws.s3.Bucket, aws.s3.BucketVersioning]:
        bucket = aws.s3.Bucket(
            self.child_name("replica"),
            bucket_prefix=f"{stack_prefix(self.stack)}-uploads-replica-",
            # Object Lock can only be turned on when the bucket is created.
            object_lock_enabled=True,
            force_destroy=False,
            tags=self.tags,
            opts=self._replica_opts(retain_on_delete=True),
        )
        b = self.backup.args
        transitions = (
            [
                aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                    days=b.glacier_after_days, storage_class="GLACIER_IR"
                )
            ]
            if b.glacier_after_days
            else None
        )
        rules = [
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="age-out-old-versions",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                transitions=transitions,
                # Current replicas are the files themselves and never expire; a version the app
                # overwrote is kept as long as a database backup is.
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=b.expire_after_days
                ),
            ),
        ]
        versioning = lock_down_bucket(
            self,
            bucket,
            self._replica_opts,
            [self._admit_replication(bucket), *self._admit_drill(bucket)],
            prefix="replica-",
            lifecycle_rules=rules,
        )
        aws.s3.BucketObjectLockConfiguration(
            self.child_name("replica-object-lock"),
            bucket=bucket.id,
            object_lock_enabled="Enabled",
            rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                    mode=b.object_lock_mode, days=b.object_lock_days
                )
            ),
            opts=self._replica_opts(depends_on=[versioning]),
        )
        return bucket, versioning

    def _admit_replication(self, replica: aws.s3.Bucket) -> dict[str, Any]:
        # Named by ARN in a condition (as the backup bucket does): with the replica in a second
        # account the role is another account's, and it may not exist yet when this is written.
        return {
            "Sid": "AdmitReplication",
            "Effect": "Allow",
            "Principal": {"AWS": self._account_root()},
            "Action": ["s3:ReplicateObject", "s3:ReplicateTags"],
            "Resource": pulumi.Output.concat(replica.arn, "/*"),
            "Condition": {"ArnEquals": {"aws:PrincipalArn": self._role_arn(self._replication_role_name)}},
        }

    def _admit_drill(self, replica: aws.s3.Bucket) -> list[dict[str, Any]]:
        # The restore drill (on the host) checks referenced files exist: read only.
        return [
            {
                "Sid": "AdmitDrillRead",
                "Effect": "Allow",
                "Principal": {"AWS": self._account_root()},
                "Action": "s3:GetObject",
                "Resource": pulumi.Output.concat(replica.arn, "/*"),
                "Condition": {"ArnEquals": {"aws:PrincipalArn": self._role_arn(self._host_role_name)}},
            }
        ]

    @property
    def _replication_role_name(self) -> str:
        return f"{stack_prefix(self.stack)}-uploads-replication"

    # ------------------------------------------------------------------ replication

    def _create_replication_role(self, uploads: aws.s3.Bucket, replica: ReplicaBucket) -> aws.iam.Role:
        role = aws.iam.Role(
            self.child_name("replication-role"),
            name=self._replication_role_name,
            description="S3 replication of the uploads bucket to its off-site replica, nothing else",
            assume_role_policy=policy_json(
                {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ),
            tags=self.tags,
            opts=self.child_opts(),
        )
        aws.iam.RolePolicy(
            self.child_name("replication-permissions"),
            role=role.id,
            policy=policy_output(
                {
                    "Sid": "ReadReplicationConfiguration",
                    "Effect": "Allow",
                    "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                    "Resource": uploads.arn,
                },
                {
                    "Sid": "ReadVersionsToReplicate",
                    "Effect": "Allow",
                    # Retention and legal hold: the destination has Object Lock.
                    "Action": [
                        "s3:GetObjectVersionForReplication",
                        "s3:GetObjectVersionAcl",
                        "s3:GetObjectVersionTagging",
                        "s3:GetObjectRetention",
                        "s3:GetObjectLegalHold",
                    ],
                    "Resource": pulumi.Output.concat(uploads.arn, "/*"),
                },
                {
                    # No s3:ReplicateDelete: delete markers are not replicated.
                    "Sid": "WriteReplicas",
                    "Effect": "Allow",
                    "Action": ["s3:ReplicateObject", "s3:ReplicateTags"],
                    "Resource": pulumi.Output.concat(replica.arn, "/*"),
                },
            ),
            opts=self.child_opts(),
        )
        return role

    def _replicate(
        self,
        uploads: aws.s3.Bucket,
        replica: ReplicaBucket,
        role: aws.iam.Role,
        depends_on: list[pulumi.Resource],
    ) -> None:
        aws.s3.BucketReplicationConfig(
            self.child_name("replication"),
            bucket=uploads.id,
            role=role.arn,
            rules=[
                aws.s3.BucketReplicationConfigRuleArgs(
                    id=REPLICATION_RULE_ID,
                    status="Enabled",
                    priority=1,
                    filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
                    delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(
                        status="Disabled"
                    ),
                    destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
                        bucket=replica.arn,
                        storage_class="STANDARD",
                        # The metrics the files-at-risk alarm watches (no Replication Time Control).
                        metrics=aws.s3.BucketReplicationConfigRuleDestinationMetricsArgs(status="Enabled"),
                    ),
                )
            ],
            opts=self.child_opts(depends_on=depends_on),
        )

    def _create_files_at_risk_alarm(
        self, uploads: aws.s3.Bucket, replica: ReplicaBucket, topic_arn: pulumi.Input[str]
    ) -> None:
        dimensions: dict[str, pulumi.Input[str]] = {
            "SourceBucket": uploads.bucket,
            "DestinationBucket": replica.bucket,
            "RuleId": REPLICATION_RULE_ID,
        }

        def metric(query_id: str, name: str, statistic: str) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=query_id,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace="AWS/S3", metric_name=name, dimensions=dimensions, period=300, stat=statistic
                ),
            )

        metric_alarm(
            self,
            "files-at-risk",
            (
                "Data at risk: uploaded files are not reaching the off-site replica (a replication failed, or "
                f"files have waited more than {FILES_AT_RISK_SECONDS // 60} minutes), so losing the uploads bucket "
                "now would lose them. First check: the replication status of a recent object "
                "(`aws s3api head-object`), the replication role and the replica's bucket policy. "
                "Runbook: #files-at-risk"
            ),
            name=f"{stack_prefix(self.stack)}-files-at-risk",
            notify=topic_arn,
            metric_queries=[
                metric("failed", "OperationsFailedReplication", "Sum"),
                metric("latency", "ReplicationLatency", "Maximum"),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="at_risk",
                    label="Replications failed, or files an hour late",
                    expression=f"IF(FILL(failed, 0) > 0 OR FILL(latency, 0) > {FILES_AT_RISK_SECONDS}, 1, 0)",
                    return_data=True,
                ),
            ],
            evaluation_periods=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
            # No uploads, no metric: nothing is at risk.
            treat_missing_data="notBreaching",
        )

    # ------------------------------------------------------------------ the app's own role

    def trust_host_role(self, host_role_arn: pulumi.Input[str]) -> aws.iam.Role:
        """The app's role, trusting the host's role itself (its ARN as the principal, not the account with a
        condition on a name: IAM pins a principal to the role's unique id, so a role deleted and made again
        under the same name is not trusted). Called once the host's role exists, which IAM requires."""
        role = aws.iam.Role(
            self.child_name("app-role"),
            name=app_role_name(self.stack),
            description="The app's own identity: its uploads bucket, nothing of the host's",
            assume_role_policy=policy_output(
                {"Effect": "Allow", "Principal": {"AWS": host_role_arn}, "Action": "sts:AssumeRole"}
            ),
            # Role chaining caps a session at one hour anyway; the endpoint refreshes before that.
            max_session_duration=3600,
            tags=self.tags,
            opts=self.child_opts(),
        )
        aws.iam.RolePolicy(
            self.child_name("app-permissions"),
            role=role.id,
            policy=policy_output(*uploads_statements(self.uploads_bucket.arn)),
            opts=self.child_opts(),
        )
        return role
