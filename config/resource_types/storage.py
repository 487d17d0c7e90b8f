"""Storage: S3 buckets and the configurations attached to them."""

from __future__ import annotations

from typing import Any

from leanstack.config.resource_types.model import (
    BUCKET,
    BUCKET_ENCRYPTION,
    IAM_DOCUMENT,
    LIFECYCLE,
    OBJECT_LOCK,
    STORAGE,
    VERSIONING,
    Facts,
    MockCall,
    ResourceType,
    digest,
)


def _s3_bucket(call: MockCall) -> tuple[str | None, dict[str, Any]]:
    bucket = call.inputs.get("bucket") or f"{call.inputs.get('bucketPrefix', call.name)}{digest(call.name)}"
    return bucket, {
        "bucket": bucket,
        "arn": f"arn:aws:s3:::{bucket}",
        "region": call.region,
        "bucketRegionalDomainName": f"{bucket}.s3.{call.region}.amazonaws.com",
    }


S3_BUCKET = ResourceType(
    "aws:s3/bucket:Bucket",
    (STORAGE, BUCKET),
    facts=Facts(
        "bucket",
        "S3: bucket names are global and fixed, Object Lock can only be set at creation, and a bucket lives "
        "in its provider's region (all ForceNew); a new bucket starts empty.",
        replaces=frozenset({"bucket", "bucketPrefix", "objectLockEnabled"}),
        holds_data="every object in it",
        keep_data="copy the objects across first (`aws s3 sync`, or S3 Batch Replication to keep every version)",
        retained=True,
        safety=("objectLockEnabled",),
        unsafe_when_on=("forceDestroy",),
    ),
    price="s3_bucket",
    key_inputs=("bucket", "bucketPrefix", "objectLockEnabled"),
    mock=_s3_bucket,
    stateful="S3 bucket",
)

S3_BUCKET_OBJECT_LOCK_CONFIGURATION = ResourceType(
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
    (STORAGE, OBJECT_LOCK),
    facts=Facts(
        "Object Lock default retention",
        "S3: the default retention changes in place and applies to new objects; objects already written keep "
        "their own retain-until date (COMPLIANCE cannot be shortened by anyone).",
        replaces=frozenset({"bucket", "expectedBucketOwner"}),
    ),
    free="no charge",
    key_inputs=("rule",),
)

S3_BUCKET_LIFECYCLE_CONFIGURATION = ResourceType(
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    (STORAGE, LIFECYCLE),
    facts=Facts(
        "lifecycle rules",
        "S3: rules change in place; a shorter expiration deletes older objects at the next lifecycle run.",
        replaces=frozenset({"bucket", "expectedBucketOwner"}),
    ),
    free="no charge (transitions: see the bucket)",
    key_inputs=("rules",),
)

S3_BUCKET_SERVER_SIDE_ENCRYPTION_CONFIGURATION = ResourceType(
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    (STORAGE, BUCKET_ENCRYPTION),
    facts=Facts(
        "default encryption",
        "S3: default encryption changes in place and applies to new objects only.",
        replaces=frozenset({"bucket", "expectedBucketOwner"}),
    ),
    free="no charge (SSE-S3)",
)

S3_BUCKET_VERSIONING = ResourceType(
    "aws:s3/bucketVersioning:BucketVersioning",
    (STORAGE, VERSIONING),
    facts=Facts(
        "versioning",
        "S3: versioning changes in place; once enabled it can only be suspended, never removed.",
        replaces=frozenset({"bucket", "expectedBucketOwner"}),
    ),
    free="no charge (old versions are in the bucket's storage)",
)

S3_BUCKET_PUBLIC_ACCESS_BLOCK = ResourceType(
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    (STORAGE,),
    facts=Facts(
        "public access block",
        "S3: each flag changes in place; turning one off lets a policy or ACL make objects public.",
        replaces=frozenset({"bucket"}),
        exposes_when_off=("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"),
    ),
    free="no charge",
    key_inputs=("blockPublicAcls", "restrictPublicBuckets"),
)

S3_BUCKET_POLICY = ResourceType(
    "aws:s3/bucketPolicy:BucketPolicy",
    (STORAGE, IAM_DOCUMENT),
    facts=Facts("bucket policy", "S3: the policy document is replaced in place.", replaces=frozenset({"bucket"})),
    free="no charge",
)

S3_BUCKET_OWNERSHIP_CONTROLS = ResourceType(
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    (STORAGE,),
    facts=Facts("ownership controls", "S3: the rule changes in place.", replaces=frozenset({"bucket"})),
    free="no charge",
)

S3_BUCKET_REPLICATION_CONFIG = ResourceType(
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
    (STORAGE,),
    facts=Facts(
        "replication",
        "S3: the rules change in place and apply to objects written after the change (existing objects "
        "need S3 Batch Replication); removing it stops copying new files off-site.",
        replaces=frozenset({"bucket"}),
    ),
    price="replication",
)

S3_BUCKET_CORS_CONFIGURATION = ResourceType(
    "aws:s3/bucketCorsConfiguration:BucketCorsConfiguration",
    (STORAGE,),
    facts=Facts(
        "CORS rules",
        "S3: the rules change in place; they let browsers on the named origins call the bucket with "
        "presigned requests, never without one.",
        replaces=frozenset({"bucket", "expectedBucketOwner"}),
    ),
    free="no charge",
)

S3_BUCKET_OBJECTV2 = ResourceType(
    "aws:s3/bucketObjectv2:BucketObjectv2",
    (STORAGE,),
    facts=Facts(
        "bucket object",
        "S3: bucket and key are ForceNew; the content is overwritten in place (a new version).",
        replaces=frozenset({"bucket", "key"}),
    ),
    free="storage counted in its bucket",
)

S3_BUCKET_LIFECYCLE_CONFIGURATION_V2 = ResourceType(
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
    (STORAGE, LIFECYCLE),
    free="no charge (transitions: see the bucket)",
)

S3_BUCKET_OBJECT = ResourceType(
    "aws:s3/bucketObject:BucketObject",
    (STORAGE,),
    free="storage counted in its bucket",
)

S3_BUCKET_OBJECT_LOCK_CONFIGURATION_V2 = ResourceType(
    "aws:s3/bucketObjectLockConfigurationV2:BucketObjectLockConfigurationV2",
    (STORAGE, OBJECT_LOCK),
    free="no charge",
)

S3_BUCKET_SERVER_SIDE_ENCRYPTION_CONFIGURATION_V2 = ResourceType(
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    (STORAGE, BUCKET_ENCRYPTION),
    free="no charge (SSE-S3)",
)

S3_BUCKET_V2 = ResourceType(
    "aws:s3/bucketV2:BucketV2",
    (STORAGE, BUCKET),
    price="s3_bucket",
)

S3_BUCKET_VERSIONING_V2 = ResourceType(
    "aws:s3/bucketVersioningV2:BucketVersioningV2",
    (STORAGE, VERSIONING),
    free="no charge (old versions are in the bucket's storage)",
)

ENTRIES = (
    S3_BUCKET,
    S3_BUCKET_OBJECT_LOCK_CONFIGURATION,
    S3_BUCKET_LIFECYCLE_CONFIGURATION,
    S3_BUCKET_SERVER_SIDE_ENCRYPTION_CONFIGURATION,
    S3_BUCKET_VERSIONING,
    S3_BUCKET_PUBLIC_ACCESS_BLOCK,
    S3_BUCKET_POLICY,
    S3_BUCKET_OWNERSHIP_CONTROLS,
    S3_BUCKET_REPLICATION_CONFIG,
    S3_BUCKET_CORS_CONFIGURATION,
    S3_BUCKET_OBJECTV2,
    S3_BUCKET_LIFECYCLE_CONFIGURATION_V2,
    S3_BUCKET_OBJECT,
    S3_BUCKET_OBJECT_LOCK_CONFIGURATION_V2,
    S3_BUCKET_SERVER_SIDE_ENCRYPTION_CONFIGURATION_V2,
    S3_BUCKET_V2,
    S3_BUCKET_VERSIONING_V2,
)
