"""BackupBucket: the off-site, immutable home of the database backups.

Builds, through its own AWS provider in a second region (and, with `profile` or
`role_arn`, a second account, so one leaked key cannot delete both the database and its
backups), an S3 bucket with:
- Object Lock with a default retention (COMPLIANCE: nobody can delete a backup before it
  expires, not even the account root; GOVERNANCE: privileged users can, for dev),
- versioning (Object Lock requires it), SSE-S3 encryption, bucket-owner-enforced ownership,
- all public access blocked and a bucket policy that denies any request not over TLS,
- write-once backups: the bucket policy denies, to everyone, any write to the prefix
  without `If-None-Match: *` (`deny_overwrites`), so no key under it can get a second
  version, whoever holds `s3:PutObject`,
- a lifecycle: Glacier Instant Retrieval after `glacier_after_days`, expiry after
  `expire_after_days`; a noncurrent version (hidden by expiry, or by a delete marker) is
  kept `expire_after_days` more, never less than a current one, and multipart uploads
  abandoned by a failed streamed backup are aborted after a few days (every leanstack
  bucket has that rule: `components.private_bucket`).

The host's role may put under its own stack's folder, `<prefix>/<stack>/`, get and list under
the prefix, and never delete: `writer_statements` is the IAM policy the host role gets, and the
bucket policy admits that role by ARN.

Cost: billed are the storage of the dumps (S3 Standard, then Glacier Instant Retrieval after
`glacier_after_days`), the expired year kept as noncurrent versions before they are deleted (the
price of an overwrite or stray delete never shortening a backup's life), and the requests (cents);
priced per GB in `python -m leanstack plan`.

Recovery stacks (`existing_bucket`, written by `python -m leanstack recover init`): the
region-down stack's bucket is used by name and nothing is created for it; this stack's host
writes its dumps under its own folder of the same prefix (write-once there too: the bucket's own
policy) and restores the old stack's with `leanstack-restore --from-stack OLD`.

Replacement: changing `region` or `bucket_name` creates a new, empty bucket; the old one
and its locked backups stay until their retention ends (the diff flags it).

Children, reachable as attributes (None in a recovery stack) and changeable before creation with
`transform` (a mapping of child key to a function that gets the child's keyword arguments, `opts`
included, and may change them): `bucket`, `object_lock`.

Example:
    backups = BackupBucket("backups", BackupBucketArgs(region="us-west-2"), stack="prod",
                           writer_role_name="leanstack-prod-host",
                           transform={"bucket": lambda args: args["tags"].update(DataClass="backups")})
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from leanstack.components.base import LeanComponent, Transforms
from leanstack.components.private_bucket import lock_down_bucket
from leanstack.components.providers import aws_provider
from leanstack.config import BackupBucketArgs
from leanstack.config.naming import stack_prefix
from leanstack.host.agent.contract import stack_backup_prefix

__all__ = [
    "BackupBucket",
    "BackupBucketArgs",
    "deny_overwrites",
    "existing_bucket",
    "sealed_prefix",
    "sealer_statements",
    "stack_backup_prefix",
    "writer_statements",
]

# Where the host's sealed copies of the app's config and secrets go (host/agent/seal_job.py).
SEALED_PREFIX = "sealed-secrets"


def sealed_prefix(stack: str) -> str:
    """The key prefix of a stack's sealed secrets: sealed-secrets/<stack>."""
    return f"{SEALED_PREFIX}/{stack}"


def sealer_statements(bucket_arn: pulumi.Input[str], stack: str) -> list[dict[str, Any]]:
    """IAM statement for the sealer: create its stack's sealed copies; no read, no delete."""
    return [
        {
            "Sid": "WriteSealedSecrets",
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": pulumi.Output.concat(bucket_arn, f"/{sealed_prefix(stack)}/*"),
        }
    ]


def existing_bucket(name: str) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """The name and ARN of a bucket another stack made: S3 ARNs carry neither region nor account."""
    return pulumi.Output.from_input(name), pulumi.Output.from_input(f"arn:aws:s3:::{name}")


def deny_overwrites(bucket_arn: pulumi.Input[str], prefix: str, sid: str = "DenyOverwritingBackups") -> dict[str, Any]:
    """Bucket-policy statement: nobody writes a backup key that exists (If-None-Match: * or denied).

    AWS's "Enforce conditional writes on Amazon S3 buckets": the s3:PutObject action covers
    PutObject and CompleteMultipartUpload (which take the header) and CreateMultipartUpload,
    UploadPart and UploadPartCopy (which cannot carry it, and are exempt through
    s3:ObjectCreationOperation, false for them). A CopyObject into the prefix is refused too.
    Principal "*": the host, an administrator and the account root alike.
    """
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": pulumi.Output.concat(bucket_arn, f"/{prefix}/*"),
        "Condition": {"Null": {"s3:if-none-match": "true"}, "Bool": {"s3:ObjectCreationOperation": "true"}},
    }


def writer_statements(bucket_arn: pulumi.Input[str], prefix: str, stack: str) -> list[dict[str, Any]]:
    """IAM statements for a stack's backup writer: put under its own stack's folder only; get
    and list the whole prefix (the folder of the layout before per-stack folders, and, on a
    recovery stack sharing the bucket, the old stack's dumps for `leanstack-restore
    --from-stack`); no delete, ever."""
    return [
        {
            "Sid": "WriteBackups",
            "Effect": "Allow",
            # AbortMultipartUpload lets a failed streamed upload clean up after itself; it
            # cannot touch a completed object.
            "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
            "Resource": pulumi.Output.concat(bucket_arn, f"/{stack_backup_prefix(prefix, stack)}/*"),
        },
        {
            "Sid": "ReadBackups",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectAttributes"],
            "Resource": pulumi.Output.concat(bucket_arn, f"/{prefix}/*"),
        },
        {
            "Sid": "ListBackups",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": bucket_arn,
            "Condition": {"StringLike": {"s3:prefix": [f"{prefix}/*", f"{prefix}/"]}},
        },
    ]


class BackupBucket(LeanComponent):
    TRANSFORMABLE = ("bucket", "object_lock")
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    region: str
    prefix: str

    def __init__(
        self,
        name: str,
        args: BackupBucketArgs,
        *,
        stack: str,
        writer_role_name: str,
        transform: Transforms | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, opts, transform)
        self.args = args
        self.stack = stack
        self.region = args.region
        self.prefix = args.prefix
        self._provider = aws_provider(
            self.child_name("aws"),
            region=args.region,
            stack=stack,
            profile=args.profile,
            role_arn=args.role_arn,
            opts=self.child_opts(),
        )
        # None in a recovery stack, which creates nothing (see `existing_bucket`).
        self.bucket: aws.s3.Bucket | None = None
        self.object_lock: aws.s3.BucketObjectLockConfiguration | None = None
        if args.existing_bucket:
            # A recovery stack: the region-down stack's bucket, by name. Nothing is created, changed
            # or deleted on it (its lock, policy and lifecycle are that stack's and stay as they are).
            self.bucket_name, self.bucket_arn = existing_bucket(args.existing_bucket)
        else:
            self.bucket = self._create_bucket()
            self.object_lock = self._lock_down(self.bucket, writer_role_name)
            self.bucket_name = self.bucket.bucket
            self.bucket_arn = self.bucket.arn
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn})

    def _opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return self.child_opts(provider=self._provider, **kwargs)

    def provider_opts(self, owner: pulumi.Resource, **kwargs: Any) -> pulumi.ResourceOptions:
        """Options for another component's child in the backup region and account (the uploads' replica)."""
        return pulumi.ResourceOptions(parent=owner, provider=self._provider, **kwargs)

    def _create_bucket(self) -> aws.s3.Bucket:
        return aws.s3.Bucket(
            self.child_name("bucket"),
            **self.transformed(
                "bucket",
                dict(
                    bucket=self.args.bucket_name or None,
                    bucket_prefix=None if self.args.bucket_name else f"{stack_prefix(self.stack)}-backups-",
                    # Object Lock can only be turned on when the bucket is created.
                    object_lock_enabled=True,
                    force_destroy=False,
                    tags=self.tags,
                    # Backups outlive the stack: `pulumi destroy` leaves the bucket (and its locked objects).
                    opts=self._opts(retain_on_delete=True),
                ),
            ),
        )

    def _lock_down(self, bucket: aws.s3.Bucket, writer_role_name: str) -> aws.s3.BucketObjectLockConfiguration:
        statements = [*self._writer_statements(bucket, writer_role_name), deny_overwrites(bucket.arn, self.prefix)]
        if self.args.recovery_public_key:
            # The sealed copies are as write-once as the dumps.
            statements.append(deny_overwrites(bucket.arn, sealed_prefix(self.stack), "DenyOverwritingSealedSecrets"))
        versioning = lock_down_bucket(self, bucket, self._opts, statements, lifecycle_rules=self._lifecycle_rules())
        return aws.s3.BucketObjectLockConfiguration(
            self.child_name("object-lock"),
            **self.transformed(
                "object_lock",
                dict(
                    bucket=bucket.id,
                    object_lock_enabled="Enabled",
                    rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                        default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                            mode=self.args.object_lock_mode, days=self.args.object_lock_days
                        )
                    ),
                    opts=self._opts(depends_on=[versioning]),
                ),
            ),
        )

    def _lifecycle_rules(self) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
        """Age backups out; lock_down_bucket adds the bucket-wide abort of incomplete uploads."""
        a = self.args
        transitions = (
            [
                aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                    days=a.glacier_after_days, storage_class="GLACIER_IR"
                )
            ]
            if a.glacier_after_days
            else None
        )
        prefixes = [a.prefix] + ([sealed_prefix(self.stack)] if a.recovery_public_key else [])
        return [rule for prefix in prefixes for rule in self._age_out(prefix, transitions)]

    def _age_out(
        self, prefix: str, transitions: list[aws.s3.BucketLifecycleConfigurationRuleTransitionArgs] | None
    ) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
        a = self.args
        # The dumps' rules keep their ids; the sealed copies' get the prefix's name.
        suffix = "" if prefix == a.prefix else "-sealed-secrets"
        return [
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id=f"age-out-backups{suffix}",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=f"{prefix}/"),
                transitions=transitions,
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=a.expire_after_days),
                # A version turns noncurrent when expiry hides it, or at once when something writes
                # over it or deletes it without a version id. Kept as long as a current backup is,
                # so an overwrite or a stray delete never shortens a genuine backup's life (1 day
                # here would make any overwrite a delete once the lock ends).
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=a.expire_after_days
                ),
            ),
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id=f"remove-expired-delete-markers{suffix}",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=f"{prefix}/"),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(expired_object_delete_marker=True),
            ),
        ]

    def _writer_statements(self, bucket: aws.s3.Bucket, writer_role_name: str) -> list[dict[str, Any]]:
        # The writer is named by ARN in a condition rather than as the principal: a principal
        # must exist when the policy is written, and the host's role may be created later.
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        writer_arn = pulumi.Output.concat("arn:aws:iam::", account, ":role/", writer_role_name)
        return [
            {**statement, "Principal": {"AWS": pulumi.Output.concat("arn:aws:iam::", account, ":root")},
             "Condition": {**statement.get("Condition", {}), "ArnEquals": {"aws:PrincipalArn": writer_arn}}}
            for statement in [
                *writer_statements(bucket.arn, self.args.prefix, self.stack),
                *(sealer_statements(bucket.arn, self.stack) if self.args.recovery_public_key else []),
            ]
        ]  # fmt: skip
