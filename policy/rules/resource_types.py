"""The resource types the rules judge, and their families (a bucket's V1 and V2 attachments, IAM
documents), read from the one table of resource types. The V1/V2 pairs are tuples in a fixed order
(V1 first) so the rules see them in the same order every run."""

from __future__ import annotations

import leanstack.config.resource_types as resource_types

RDS = resource_types.RDS_INSTANCE.token
RDS_CLUSTER = resource_types.RDS_CLUSTER.token
CACHE_GROUP = resource_types.ELASTICACHE_REPLICATION_GROUP.token
CACHE_CLUSTER = resource_types.ELASTICACHE_CLUSTER.token
INSTANCE = resource_types.EC2_INSTANCE.token
LAUNCH_TEMPLATE = resource_types.EC2_LAUNCH_TEMPLATE.token
LOAD_BALANCER = resource_types.LB_LOAD_BALANCER.token
EBS_VOLUME = resource_types.EBS_VOLUME.token
SECURITY_GROUP = resource_types.EC2_SECURITY_GROUP.token
SG_RULE = resource_types.EC2_SECURITY_GROUP_RULE.token
SG_INGRESS = resource_types.VPC_SECURITY_GROUP_INGRESS_RULE.token
BUCKET = resource_types.S3_BUCKET.token
BUCKET_V2 = resource_types.S3_BUCKET_V2.token
PUBLIC_ACCESS_BLOCK = resource_types.S3_BUCKET_PUBLIC_ACCESS_BLOCK.token
BUCKET_POLICY = resource_types.S3_BUCKET_POLICY.token
BUCKET_VERSIONING = (resource_types.S3_BUCKET_VERSIONING.token, resource_types.S3_BUCKET_VERSIONING_V2.token)
BUCKET_ENCRYPTION = (
    resource_types.S3_BUCKET_SERVER_SIDE_ENCRYPTION_CONFIGURATION.token,
    resource_types.S3_BUCKET_SERVER_SIDE_ENCRYPTION_CONFIGURATION_V2.token,
)
OBJECT_LOCK = (
    resource_types.S3_BUCKET_OBJECT_LOCK_CONFIGURATION.token,
    resource_types.S3_BUCKET_OBJECT_LOCK_CONFIGURATION_V2.token,
)
BUCKET_LIFECYCLE = (
    resource_types.S3_BUCKET_LIFECYCLE_CONFIGURATION.token,
    resource_types.S3_BUCKET_LIFECYCLE_CONFIGURATION_V2.token,
)
# An incomplete multipart upload is billed until aborted: a lifecycle must abort it within this.
MAX_INCOMPLETE_UPLOAD_DAYS = 7
ROLE = resource_types.IAM_ROLE.token
ROLE_POLICY = resource_types.IAM_ROLE_POLICY.token
ROLE_POLICY_ATTACHMENT = resource_types.IAM_ROLE_POLICY_ATTACHMENT.token
POLICY_ATTACHMENT = resource_types.IAM_POLICY_ATTACHMENT.token
MANAGED_POLICY = resource_types.IAM_POLICY.token
INSTANCE_PROFILE = resource_types.IAM_INSTANCE_PROFILE.token
DNS_RECORD = resource_types.CLOUDFLARE_DNS_RECORD.token

# IAM documents by resource type and property.
POLICY_DOCUMENTS: dict[str, str] = {
    MANAGED_POLICY: "policy",
    ROLE_POLICY: "policy",
    resource_types.IAM_USER_POLICY.token: "policy",
    resource_types.IAM_GROUP_POLICY.token: "policy",
}
