"""Databases and caches: RDS PostgreSQL, its groups and backup replication; ElastiCache."""

from __future__ import annotations

from typing import Any

from leanstack.config.resource_types.model import (
    DATABASE,
    DOWNGRADE,
    MOCK_ACCOUNT,
    SHRINK,
    Facts,
    MockCall,
    ResourceType,
    digest,
    m,
    names,
)


def _rds_instance(call: MockCall) -> tuple[str | None, dict[str, Any]]:
    ident = call.inputs.get("identifier", call.name)
    address = f"{ident}.c{digest(call.name, length=10)}.{call.region}.rds.amazonaws.com"
    secret = f"arn:aws:secretsmanager:{call.region}:{MOCK_ACCOUNT}:secret:rds!db-{digest(call.name)}"
    return ident, {
        "address": address,
        "endpoint": f"{address}:5432",
        "port": call.inputs.get("port", 5432),
        "arn": f"arn:aws:rds:{call.region}:{MOCK_ACCOUNT}:db:{ident}",
        "masterUserSecrets": [{"secretArn": secret, "secretStatus": "active", "kmsKeyId": "alias/aws/secretsmanager"}],
    }


def _cache_group(call: MockCall) -> tuple[str | None, dict[str, Any]]:
    group = call.inputs.get("replicationGroupId", call.name)
    suffix = f"{group}.{digest(call.name, length=6)}.use1.cache.amazonaws.com"
    return group, {"primaryEndpointAddress": f"master.{suffix}", "readerEndpointAddress": f"replica.{suffix}"}


RDS_INSTANCE = ResourceType(
    "aws:rds/instance:Instance",
    (DATABASE,),
    facts=Facts(
        "database",
        "RDS: identifier, engine, database name, user, encryption and AZ are ForceNew; class, storage type, "
        "engine version, port and CA change in place with an outage (a failover when Multi-AZ), at once only "
        "with applyImmediately; RDS refuses engine downgrades and storage shrinks.",
        replaces=frozenset(
            {
                "identifier",
                "identifierPrefix",
                "engine",
                "dbName",
                "username",
                "storageEncrypted",
                "kmsKeyId",
                "availabilityZone",
                "dbSubnetGroupName",
                "characterSetName",
                "ncharCharacterSetName",
                "timezone",
                "snapshotIdentifier",
                "restoreToPointInTime",
                "s3Import",
                "customIamInstanceProfile",
            }
        ),
        in_place=m(
            instanceClass="a few minutes of outage while the instance is resized (about a minute of failover "
            "when Multi-AZ)",
            engineVersion="an outage while the engine is upgraded (tens of minutes for a major version)",
            storageType="the storage is converted (performance can drop while it runs)",
            port="the database restarts on the new port",
            caCertIdentifier="the database restarts to load the new certificate",
            parameterGroupName="the database needs a reboot for static parameters of the new group, which "
            "Pulumi does not do",
            multiAz="the standby is added or removed (no outage, but I/O latency rises while it syncs)",
        ),
        holds_data="the database and its automated backups (a final snapshot only when one is configured)",
        keep_data="revert, or migrate deliberately: snapshot (or pg_dump), restore into the new database, "
        "switch the app, then remove the old one",
        safety=("deletionProtection", "multiAz", "storageEncrypted"),
        unsafe_when_on=("skipFinalSnapshot",),
        exposes_when_on=("publiclyAccessible",),
        retention=("backupRetentionPeriod",),
        refused=m(engineVersion=DOWNGRADE, allocatedStorage=SHRINK),
        deferred_by="applyImmediately",
    ),
    price="rds_instance",
    key_inputs=(
        "identifier",
        "engine",
        "engineVersion",
        "instanceClass",
        "allocatedStorage",
        "maxAllocatedStorage",
        "multiAz",
        "storageEncrypted",
        "publiclyAccessible",
        "backupRetentionPeriod",
        "deletionProtection",
        "skipFinalSnapshot",
        "manageMasterUserPassword",
    ),
    mock=_rds_instance,
    stateful="PostgreSQL database",
)

RDS_PARAMETER_GROUP = ResourceType(
    "aws:rds/parameterGroup:ParameterGroup",
    (DATABASE,),
    facts=Facts(
        "parameter group",
        "RDS: name and family are ForceNew; dynamic parameters apply at once, static ones only after a "
        "reboot Pulumi does not perform.",
        replaces=names("family"),
        in_place=m(
            parameters="dynamic parameters apply at once; static ones wait for the next reboot (which one a "
            "parameter is, only the PostgreSQL docs tell: not checked offline)"
        ),
    ),
    free="no charge",
    key_inputs=("family", "parameters"),
)

RDS_SUBNET_GROUP = ResourceType(
    "aws:rds/subnetGroup:SubnetGroup",
    (DATABASE,),
    facts=Facts("database subnet group", "RDS: name is ForceNew; subnets change in place.", replaces=names()),
    free="no charge",
)

ELASTICACHE_REPLICATION_GROUP = ResourceType(
    "aws:elasticache/replicationGroup:ReplicationGroup",
    (DATABASE,),
    facts=Facts(
        "cache",
        "ElastiCache: id, engine, subnet group and at-rest encryption are ForceNew; node type and version "
        "change in place (a failover or short outage), at once only with applyImmediately; version "
        "downgrades are refused.",
        replaces=frozenset(
            {
                "replicationGroupId",
                "engine",
                "subnetGroupName",
                "atRestEncryptionEnabled",
                "kmsKeyId",
                "snapshotArns",
                "snapshotName",
                "preferredCacheClusterAzs",
            }
        ),
        in_place=m(
            nodeType="the cache nodes are replaced one by one (a short outage without a replica)",
            engineVersion="the cache nodes are upgraded (a short outage without a replica)",
        ),
        holds_data="the cached data and sessions (rebuilt by the app, sessions lost)",
        keep_data="apply it at a quiet hour: users are signed out and the cache warms up again",
        safety=(
            "atRestEncryptionEnabled",
            "transitEncryptionEnabled",
            "automaticFailoverEnabled",
            "multiAzEnabled",
        ),
        retention=("snapshotRetentionLimit",),
        refused=m(engineVersion=DOWNGRADE),
        deferred_by="applyImmediately",
    ),
    price="elasticache_group",
    key_inputs=(
        "engine",
        "nodeType",
        "atRestEncryptionEnabled",
        "transitEncryptionEnabled",
        "authToken",
    ),
    mock=_cache_group,
    stateful="cache (rebuildable: holds nothing that cannot be recomputed)",
)

RDS_INSTANCE_AUTOMATED_BACKUPS_REPLICATION = ResourceType(
    "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication",
    (DATABASE,),
    facts=Facts(
        "cross-region backup replication",
        "RDS: source instance, KMS key and retention are ForceNew; deleting it stops the replication and "
        "deletes the replicated backups in the other region.",
        replaces=frozenset({"sourceDbInstanceArn", "kmsKeyId", "retentionPeriod", "preSignedUrl"}),
        holds_data="the replicated automated backups in the backup region",
        keep_data="take a manual snapshot copy in the backup region first (`aws rds copy-db-snapshot`)",
    ),
    price="rds_backup_replication",
)

ELASTICACHE_PARAMETER_GROUP = ResourceType(
    "aws:elasticache/parameterGroup:ParameterGroup",
    (DATABASE,),
    facts=Facts(
        "cache parameter group",
        "ElastiCache: name and family are ForceNew; a parameter's value changes in place and applies to the "
        "group's nodes at once (maxmemory-policy needs no reboot).",
        replaces=frozenset({"name", "family"}),
    ),
    free="no charge",
)

ELASTICACHE_SUBNET_GROUP = ResourceType(
    "aws:elasticache/subnetGroup:SubnetGroup",
    (DATABASE,),
    facts=Facts("cache subnet group", "ElastiCache: name is ForceNew; subnets change in place.", replaces=names()),
    free="no charge",
)

ELASTICACHE_CLUSTER = ResourceType(
    "aws:elasticache/cluster:Cluster",
    (DATABASE,),
)

RDS_CLUSTER = ResourceType(
    "aws:rds/cluster:Cluster",
    (DATABASE,),
)

ENTRIES = (
    RDS_INSTANCE,
    RDS_PARAMETER_GROUP,
    RDS_SUBNET_GROUP,
    ELASTICACHE_REPLICATION_GROUP,
    RDS_INSTANCE_AUTOMATED_BACKUPS_REPLICATION,
    ELASTICACHE_PARAMETER_GROUP,
    ELASTICACHE_SUBNET_GROUP,
    ELASTICACHE_CLUSTER,
    RDS_CLUSTER,
)
