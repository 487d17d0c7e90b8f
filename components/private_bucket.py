"""The lock-down every leanstack S3 bucket gets; shared by BackupBucket and ProxyHost.

Bucket-owner-enforced ownership (no ACLs), all public access blocked, versioning, SSE-S3
encryption, a bucket policy that denies any request not made over TLS (plus any
statements the caller adds, since a bucket has exactly one policy), and a lifecycle
that aborts multipart uploads left incomplete for `ABORT_INCOMPLETE_UPLOADS_DAYS` days
(plus any rules the caller adds, since a bucket has exactly one lifecycle). An
incomplete upload is no object: nothing lists it, yet its parts are billed until
someone aborts it, and a streamed backup killed mid-way leaves one behind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws

from leanstack.components.base import LeanComponent, policy_output

Options = Callable[..., pulumi.ResourceOptions]

# Days after which S3 aborts a multipart upload that never completed, in every bucket
# leanstack creates. Longer than any backup upload takes; short enough that a failed one
# costs days of storage, not forever.
ABORT_INCOMPLETE_UPLOADS_DAYS = 3


def abort_incomplete_uploads_rule() -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    """The lifecycle rule every bucket gets: abort incomplete multipart uploads, bucket-wide."""
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id="abort-incomplete-uploads",
        status="Enabled",
        # An empty prefix: the whole bucket.
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
        abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
            days_after_initiation=ABORT_INCOMPLETE_UPLOADS_DAYS
        ),
    )


def deny_non_tls(bucket_arn: pulumi.Input[str]) -> dict[str, Any]:
    return {
        "Sid": "DenyNonTLS",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def lock_down_bucket(
    owner: LeanComponent,
    bucket: aws.s3.Bucket,
    opts: Options,
    extra_statements: list[dict[str, Any]] | None = None,
    prefix: str = "",
    lifecycle_rules: list[aws.s3.BucketLifecycleConfigurationRuleArgs] | None = None,
) -> aws.s3.BucketVersioning:
    """Apply the lock-down to `bucket`; returns the versioning resource (Object Lock waits for it).

    `lifecycle_rules` are the caller's own rules; the abort-incomplete-uploads rule is always added.
    """

    def name(suffix: str) -> str:
        return owner.child_name(f"{prefix}{suffix}")

    aws.s3.BucketOwnershipControls(
        name("ownership"),
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=opts(),
    )
    aws.s3.BucketPublicAccessBlock(
        name("no-public"),
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=opts(),
    )
    versioning = aws.s3.BucketVersioning(
        name("versioning"),
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        opts=opts(),
    )
    default_encryption = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs
    aws.s3.BucketServerSideEncryptionConfiguration(
        name("encryption"),
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=default_encryption(sse_algorithm="AES256")
            )
        ],
        opts=opts(),
    )
    aws.s3.BucketPolicy(
        name("policy"),
        bucket=bucket.id,
        policy=policy_output(deny_non_tls(bucket.arn), *(extra_statements or [])),
        opts=opts(),
    )
    aws.s3.BucketLifecycleConfiguration(
        name("lifecycle"),
        bucket=bucket.id,
        rules=[*(lifecycle_rules or []), abort_incomplete_uploads_rule()],
        # Rules on noncurrent versions act on a versioned bucket only.
        opts=opts(depends_on=[versioning]),
    )
    return versioning
