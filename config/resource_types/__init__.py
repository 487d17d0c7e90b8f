"""Every resource type leanstack knows, each token written once: the one table per type.

Each entry (`ResourceType`, see `model`) says under its token which families the type belongs
to, what changing, replacing or deleting it does (`Facts`), its price rule, the inputs worth a
line in the text plan, the outputs the offline runner makes up for it, and whether the recovery
sheet counts it as state. The diff, the plan, the cost model, the policy pack, the mocks, the
runbook, the budget basis and the database restore all read it; none of them spells a token.

Entries live by area (compute, network, database, storage, identity, monitoring, backup, edge),
each beside its mock output functions. Nothing here imports Pulumi or any other module of ours
but this package, so components, tooling and the policy pack can all read it.

A test enumerates every resource type of every shipped stack (dev, prod, scale, each also with
the cache on) and fails when one has no entry with facts; another fails when a type token is
written anywhere else in the library.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import leanstack.config.resource_types.backup as backup
import leanstack.config.resource_types.compute as compute
import leanstack.config.resource_types.database as database
import leanstack.config.resource_types.edge as edge
import leanstack.config.resource_types.identity as identity
import leanstack.config.resource_types.monitoring as monitoring
import leanstack.config.resource_types.network as network
import leanstack.config.resource_types.storage as storage
from leanstack.config.resource_types.backup import (
    BACKUP_PLAN,
    BACKUP_RESTORE_TESTING_PLAN,
    BACKUP_RESTORE_TESTING_SELECTION,
    BACKUP_SELECTION,
    BACKUP_VAULT,
    BACKUP_VAULT_LOCK_CONFIGURATION,
    BACKUP_VAULT_NOTIFICATIONS,
)
from leanstack.config.resource_types.compute import (
    AUTOSCALING_GROUP,
    AUTOSCALING_POLICY,
    EBS_VOLUME,
    EC2_EIP,
    EC2_INSTANCE,
    EC2_LAUNCH_TEMPLATE,
    ECR_LIFECYCLE_POLICY,
    ECR_REPOSITORY,
)
from leanstack.config.resource_types.database import (
    ELASTICACHE_CLUSTER,
    ELASTICACHE_PARAMETER_GROUP,
    ELASTICACHE_REPLICATION_GROUP,
    ELASTICACHE_SUBNET_GROUP,
    RDS_CLUSTER,
    RDS_INSTANCE,
    RDS_INSTANCE_AUTOMATED_BACKUPS_REPLICATION,
    RDS_PARAMETER_GROUP,
    RDS_SUBNET_GROUP,
)
from leanstack.config.resource_types.edge import (
    AWS_PROVIDER,
    CLOUDFLARE_AUTHENTICATED_ORIGIN_PULLS_SETTINGS,
    CLOUDFLARE_DNS_RECORD,
    CLOUDFLARE_ORIGIN_CA_CERTIFICATE,
    CLOUDFLARE_RULESET,
    CLOUDFLARE_ZONE_SETTING,
    RANDOM_ID,
    RANDOM_PASSWORD,
    RANDOM_STRING,
    TLS_CERT_REQUEST,
    TLS_PRIVATE_KEY,
    TLS_SELF_SIGNED_CERT,
)
from leanstack.config.resource_types.identity import (
    IAM_GROUP_POLICY,
    IAM_INSTANCE_PROFILE,
    IAM_POLICY,
    IAM_POLICY_ATTACHMENT,
    IAM_ROLE,
    IAM_ROLE_POLICY,
    IAM_ROLE_POLICY_ATTACHMENT,
    IAM_USER_POLICY,
    SECRETSMANAGER_SECRET,
    SSM_PARAMETER,
)
from leanstack.config.resource_types.model import (
    ALARM,
    BACKUP,
    BUCKET,
    BUCKET_ENCRYPTION,
    COMPUTE,
    DATABASE,
    DOWNGRADE,
    EDGE,
    IAM_DOCUMENT,
    IDENTITY,
    LIFECYCLE,
    LOCAL,
    MOCK_ACCOUNT,
    MONITORING,
    NETWORK,
    OBJECT_LOCK,
    PROVIDER,
    SHRINK,
    STORAGE,
    VERSIONING,
    Facts,
    MockCall,
    MockOutputs,
    ResourceType,
    digest,
)
from leanstack.config.resource_types.monitoring import (
    BUDGETS_BUDGET,
    CHATBOT_SLACK_CHANNEL_CONFIGURATION,
    CLOUDWATCH_COMPOSITE_ALARM,
    CLOUDWATCH_DASHBOARD,
    CLOUDWATCH_EVENT_RULE,
    CLOUDWATCH_EVENT_TARGET,
    CLOUDWATCH_LOG_GROUP,
    CLOUDWATCH_LOG_METRIC_FILTER,
    CLOUDWATCH_LOG_RESOURCE_POLICY,
    CLOUDWATCH_METRIC_ALARM,
    ROUTE53_HEALTH_CHECK,
    SNS_TOPIC,
    SNS_TOPIC_POLICY,
    SNS_TOPIC_SUBSCRIPTION,
)
from leanstack.config.resource_types.network import (
    ACM_CERTIFICATE,
    EC2_DEFAULT_SECURITY_GROUP,
    EC2_EIP_ASSOCIATION,
    EC2_INTERNET_GATEWAY,
    EC2_ROUTE,
    EC2_ROUTE_TABLE,
    EC2_ROUTE_TABLE_ASSOCIATION,
    EC2_SECURITY_GROUP,
    EC2_SECURITY_GROUP_RULE,
    EC2_SUBNET,
    EC2_VPC,
    LB_LISTENER,
    LB_LOAD_BALANCER,
    LB_TARGET_GROUP,
    LB_TRUST_STORE,
    VPC_SECURITY_GROUP_EGRESS_RULE,
    VPC_SECURITY_GROUP_INGRESS_RULE,
)
from leanstack.config.resource_types.storage import (
    S3_BUCKET,
    S3_BUCKET_CORS_CONFIGURATION,
    S3_BUCKET_LIFECYCLE_CONFIGURATION,
    S3_BUCKET_LIFECYCLE_CONFIGURATION_V2,
    S3_BUCKET_OBJECT,
    S3_BUCKET_OBJECT_LOCK_CONFIGURATION,
    S3_BUCKET_OBJECT_LOCK_CONFIGURATION_V2,
    S3_BUCKET_OBJECTV2,
    S3_BUCKET_OWNERSHIP_CONTROLS,
    S3_BUCKET_POLICY,
    S3_BUCKET_PUBLIC_ACCESS_BLOCK,
    S3_BUCKET_REPLICATION_CONFIG,
    S3_BUCKET_SERVER_SIDE_ENCRYPTION_CONFIGURATION,
    S3_BUCKET_SERVER_SIDE_ENCRYPTION_CONFIGURATION_V2,
    S3_BUCKET_V2,
    S3_BUCKET_VERSIONING,
    S3_BUCKET_VERSIONING_V2,
)

__all__ = [
    "ACM_CERTIFICATE",
    "ALARM",
    "AUTOSCALING_GROUP",
    "AUTOSCALING_POLICY",
    "AWS_PROVIDER",
    "BACKUP",
    "BACKUP_PLAN",
    "BACKUP_RESTORE_TESTING_PLAN",
    "BACKUP_RESTORE_TESTING_SELECTION",
    "BACKUP_SELECTION",
    "BACKUP_VAULT",
    "BACKUP_VAULT_LOCK_CONFIGURATION",
    "BACKUP_VAULT_NOTIFICATIONS",
    "BUCKET",
    "BUCKET_ENCRYPTION",
    "BUDGETS_BUDGET",
    "CHATBOT_SLACK_CHANNEL_CONFIGURATION",
    "CLOUDFLARE_AUTHENTICATED_ORIGIN_PULLS_SETTINGS",
    "CLOUDFLARE_DNS_RECORD",
    "CLOUDFLARE_ORIGIN_CA_CERTIFICATE",
    "CLOUDFLARE_RULESET",
    "CLOUDFLARE_ZONE_SETTING",
    "CLOUDWATCH_COMPOSITE_ALARM",
    "CLOUDWATCH_DASHBOARD",
    "CLOUDWATCH_EVENT_RULE",
    "CLOUDWATCH_EVENT_TARGET",
    "CLOUDWATCH_LOG_GROUP",
    "CLOUDWATCH_LOG_METRIC_FILTER",
    "CLOUDWATCH_LOG_RESOURCE_POLICY",
    "CLOUDWATCH_METRIC_ALARM",
    "COMPONENT",
    "COMPONENT_PREFIX",
    "COMPUTE",
    "DATABASE",
    "DOWNGRADE",
    "EBS_VOLUME",
    "EC2_DEFAULT_SECURITY_GROUP",
    "EC2_EIP",
    "EC2_EIP_ASSOCIATION",
    "EC2_INSTANCE",
    "EC2_INTERNET_GATEWAY",
    "EC2_LAUNCH_TEMPLATE",
    "EC2_ROUTE",
    "EC2_ROUTE_TABLE",
    "EC2_ROUTE_TABLE_ASSOCIATION",
    "EC2_SECURITY_GROUP",
    "EC2_SECURITY_GROUP_RULE",
    "EC2_SUBNET",
    "EC2_VPC",
    "ECR_LIFECYCLE_POLICY",
    "ECR_REPOSITORY",
    "EDGE",
    "ELASTICACHE_CLUSTER",
    "ELASTICACHE_PARAMETER_GROUP",
    "ELASTICACHE_REPLICATION_GROUP",
    "ELASTICACHE_SUBNET_GROUP",
    "IAM_DOCUMENT",
    "IAM_GROUP_POLICY",
    "IAM_INSTANCE_PROFILE",
    "IAM_POLICY",
    "IAM_POLICY_ATTACHMENT",
    "IAM_ROLE",
    "IAM_ROLE_POLICY",
    "IAM_ROLE_POLICY_ATTACHMENT",
    "IAM_USER_POLICY",
    "IDENTITY",
    "LB_LISTENER",
    "LB_LOAD_BALANCER",
    "LB_TARGET_GROUP",
    "LB_TRUST_STORE",
    "LIFECYCLE",
    "LOCAL",
    "MOCK_ACCOUNT",
    "MONITORING",
    "NETWORK",
    "OBJECT_LOCK",
    "PROVIDER",
    "RANDOM_ID",
    "RANDOM_PASSWORD",
    "RANDOM_STRING",
    "RDS_CLUSTER",
    "RDS_INSTANCE",
    "RDS_INSTANCE_AUTOMATED_BACKUPS_REPLICATION",
    "RDS_PARAMETER_GROUP",
    "RDS_SUBNET_GROUP",
    "ROUTE53_HEALTH_CHECK",
    "S3_BUCKET",
    "S3_BUCKET_CORS_CONFIGURATION",
    "S3_BUCKET_LIFECYCLE_CONFIGURATION",
    "S3_BUCKET_LIFECYCLE_CONFIGURATION_V2",
    "S3_BUCKET_OBJECT",
    "S3_BUCKET_OBJECTV2",
    "S3_BUCKET_OBJECT_LOCK_CONFIGURATION",
    "S3_BUCKET_OBJECT_LOCK_CONFIGURATION_V2",
    "S3_BUCKET_OWNERSHIP_CONTROLS",
    "S3_BUCKET_POLICY",
    "S3_BUCKET_PUBLIC_ACCESS_BLOCK",
    "S3_BUCKET_REPLICATION_CONFIG",
    "S3_BUCKET_SERVER_SIDE_ENCRYPTION_CONFIGURATION",
    "S3_BUCKET_SERVER_SIDE_ENCRYPTION_CONFIGURATION_V2",
    "S3_BUCKET_V2",
    "S3_BUCKET_VERSIONING",
    "S3_BUCKET_VERSIONING_V2",
    "SECRETSMANAGER_SECRET",
    "SHRINK",
    "SNS_TOPIC",
    "SNS_TOPIC_POLICY",
    "SNS_TOPIC_SUBSCRIPTION",
    "SSM_PARAMETER",
    "STORAGE",
    "TLS_CERT_REQUEST",
    "TLS_PRIVATE_KEY",
    "TLS_SELF_SIGNED_CERT",
    "TYPES",
    "VERSIONING",
    "VPC_SECURITY_GROUP_EGRESS_RULE",
    "VPC_SECURITY_GROUP_INGRESS_RULE",
    "Facts",
    "MockCall",
    "MockOutputs",
    "ResourceType",
    "digest",
    "tokens_in",
    "type_of",
]

# The prefix of leanstack's own component types (`leanstack:index:Database`...): they share one entry.
COMPONENT_PREFIX = "leanstack:"
COMPONENT = Facts(
    "leanstack component",
    "A component resource only groups its children in Pulumi's state; nothing exists for it in the cloud.",
)

TYPES: Mapping[str, ResourceType] = MappingProxyType(
    {
        entry.token: entry
        for area in (compute, network, database, storage, identity, monitoring, backup, edge)
        for entry in area.ENTRIES
    }
)


def type_of(token: str) -> ResourceType | None:
    """The table's entry for a type token (None: leanstack knows nothing of it)."""
    return TYPES.get(token)


def tokens_in(family: str) -> frozenset[str]:
    """The tokens of every type in a family (`BUCKET`: S3 buckets, V1 and V2)."""
    return frozenset(token for token, entry in TYPES.items() if family in entry.families)
