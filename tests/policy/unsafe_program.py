"""A deliberately unsafe Pulumi program: one case per policy rule, run offline under the mocks.

Every resource is named after what is wrong with it; tests/policy/test_rules.py asserts that
each rule flags exactly its own cases here, and nothing in the real stacks.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_cloudflare as cloudflare

main = pulumi.ResourceOptions(provider=aws.Provider("aws", region="us-east-1"))

vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16", opts=main)


def group(name: str, port: int, cidr: str) -> aws.ec2.SecurityGroup:
    return aws.ec2.SecurityGroup(
        name,
        vpc_id=vpc.id,
        ingress=[aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=port, to_port=port, cidr_blocks=[cidr])],
        opts=main,
    )


ssh = group("sg-ssh-from-office", 22, "10.0.0.0/8")  # not the internet, still port 22
world_db = group("sg-postgres-from-world", 5432, "0.0.0.0/0")
web = group("sg-https-from-world-behind-cdn", 443, "0.0.0.0/0")  # the CDN proxies: must be Cloudflare only
safe_db = aws.ec2.SecurityGroup("sg-db-private", vpc_id=vpc.id, opts=main)


def database(name: str, protect: bool = False, **overrides: Any) -> aws.rds.Instance:
    settings: dict[str, Any] = {
        "engine": "postgres",
        "instance_class": "db.t4g.micro",
        "allocated_storage": 20,
        "storage_encrypted": True,
        "publicly_accessible": False,
        "backup_retention_period": 7,
        "deletion_protection": True,
        "skip_final_snapshot": False,
        "final_snapshot_identifier": f"{name}-final",
        "delete_automated_backups": False,
        "manage_master_user_password": True,
        "username": "app",
        "vpc_security_group_ids": [safe_db.id],
    }
    settings.update(overrides)
    return aws.rds.Instance(
        name, aws.rds.InstanceArgs(**settings), pulumi.ResourceOptions(provider=main.provider, protect=protect)
    )


database("db-publicly-accessible", publicly_accessible=True)
database("db-open-security-group", vpc_security_group_ids=[world_db.id])
database("db-unencrypted", storage_encrypted=False)
database("db-one-day-retention", backup_retention_period=1)
# Pulumi `protect` makes this stack production; RDS would still let it be deleted, without a snapshot.
# Its automated backups (point-in-time recovery) would go with it too.
database("db-protected-but-deletable", protect=True, deletion_protection=False, skip_final_snapshot=True,
         final_snapshot_identifier=None, delete_automated_backups=True)  # fmt: skip

aws.elasticache.ReplicationGroup(
    "cache-unencrypted",
    description="unsafe",
    engine="valkey",
    node_type="cache.t4g.micro",
    num_cache_clusters=1,
    at_rest_encryption_enabled=False,
    transit_encryption_enabled=False,
    opts=main,
)

backups = aws.s3.Bucket(
    "backup-bucket-same-region-unlocked", bucket_prefix="unsafe-backups-", object_lock_enabled=False, opts=main
)
# Overwritable (no bucket policy), and an overwritten backup is gone a day later; uploads never aborted.
aws.s3.BucketLifecycleConfiguration(
    "backup-lifecycle-keeps-old-versions-a-day",
    bucket=backups.id,
    rules=[
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="age-out",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix="postgres/"),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=365),
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=1
            ),
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=1
            ),
        )
    ],
    opts=main,
)
open_bucket = aws.s3.Bucket("bucket-wide-open", opts=main)

host_role = aws.iam.Role(
    "host-role",
    assume_role_policy=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
    ),
    opts=main,
)
aws.iam.RolePolicy(
    "host-may-delete-backups",
    role=host_role.id,
    policy=pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:DeleteObject"],
                    "Resource": [backups.arn.apply(lambda a: f"{a}/*")],
                }
            ],
        }
    ),
    opts=main,
)
aws.iam.RolePolicy(
    "admin-everything",
    role=host_role.id,
    policy=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    opts=main,
)
# Issue 15: this managed policy reads every SSM parameter of the account (other stacks' secrets).
aws.iam.RolePolicyAttachment(
    "host-ssm-managed-core",
    role=host_role.name,
    policy_arn="arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    opts=main,
)
profile = aws.iam.InstanceProfile("host-profile", role=host_role.name, opts=main)


def instance(
    name: str, encrypted: bool = True, tokens: str = "required", groups: list[pulumi.Output[str]] | None = None
) -> None:
    aws.ec2.Instance(
        name,
        ami="ami-0123456789abcdef0",
        instance_type="t4g.small",
        iam_instance_profile=profile.name,
        vpc_security_group_ids=groups or [],
        metadata_options=aws.ec2.InstanceMetadataOptionsArgs(http_tokens=tokens),
        root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(encrypted=encrypted, volume_type="gp3"),
        opts=main,
    )


instance("host-unencrypted-disk", encrypted=False, groups=[web.id])
instance("host-imdsv1", tokens="optional")

cloudflare.DnsRecord(
    "www", zone_id="0123456789abcdef0123456789abcdef", name="www.example.com", type="A", content="203.0.113.1",
    proxied=True, ttl=1,
)  # fmt: skip
