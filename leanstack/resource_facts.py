"""What a change does to each resource type: the one table the diff, the plan and the policy pack read.

Per resource type a stack creates, one `Facts` entry says:

- `replaces`: input properties whose change makes the provider delete and re-create the
  resource (ForceNew in the AWS/Cloudflare provider schema, or a documented replace);
- `replaces_if`: properties that replace only when another input is true
  (an instance's user data with `userDataReplaceOnChange`);
- `in_place`: properties changed in place but with an effect a reviewer must know about
  (a stop/start, a reboot, a failover, a host replaced through its user data), in words;
- `holds_data`: what is lost when the resource is replaced or deleted ("" = nothing:
  it can be re-created from the program alone);
- `retained`: leanstack may create it with `retainOnDelete` (the backup bucket), so Pulumi
  leaves it in place (unmanaged, still billed) when it would delete it; which resource is,
  the plan's `options.retainOnDelete` says, and the diff reads that;
- `safety`: boolean properties whose switch from true to false weakens a safeguard
  (`unsafe_when_on`: the reverse, such as skipping the final snapshot), and `retention`:
  numeric properties whose decrease keeps less history;
- `exposes_when_on` / `exposes_when_off`: boolean properties whose switch opens something
  to the internet (a public database, the CDN proxy or a public access block turned off);
- `refused`: properties whose change AWS refuses (a version downgrade, a storage shrink),
  so the diff can say `pulumi up` will fail before it does;
- `deferred_by`: the property that, when false, holds disruptive changes until the
  resource's maintenance window (RDS and ElastiCache `applyImmediately`);
- `keep_data`: what to do instead when a replacement or deletion would lose `holds_data`;
- `why`: one line from the provider's or AWS's documented behaviour, the source of it all.

A test enumerates every resource type of every shipped stack (dev, prod, scale, each also
with the cache on) and fails when one has no entry here. Nothing here imports Pulumi.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Facts:
    """What changing, replacing or deleting one resource type does."""

    what: str
    why: str
    replaces: frozenset[str] = frozenset()
    replaces_if: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    in_place: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    holds_data: str = ""
    retained: bool = False
    safety: tuple[str, ...] = ()
    unsafe_when_on: tuple[str, ...] = ()
    exposes_when_on: tuple[str, ...] = ()
    exposes_when_off: tuple[str, ...] = ()
    retention: tuple[str, ...] = ()
    refused: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    deferred_by: str = ""
    keep_data: str = "revert, or copy what it holds first"


def _m(**entries: str) -> Mapping[str, str]:
    return MappingProxyType(dict(entries))


def _names(*extra: str) -> frozenset[str]:
    """`name`/`namePrefix` replace nearly every AWS resource that has them."""
    return frozenset({"name", "namePrefix", *extra})


# Refusal kinds the diff knows how to check (see leanstack.diff.refusals).
DOWNGRADE = "downgrade"  # a version lower than the current one
SHRINK = "shrink"  # a number lower than the current one

COMPONENT = Facts(
    "leanstack component",
    "A component resource only groups its children in Pulumi's state; nothing exists for it in the cloud.",
)

FACTS: Mapping[str, Facts] = MappingProxyType(
    {
        # ------------------------------------------------------------------ compute
        "aws:ec2/instance:Instance": Facts(
            "host",
            "EC2: ami, subnet, AZ, key pair and private IP are fixed at launch (ForceNew); instance type and "
            "EBS-optimized change only on a stopped instance, so the provider stops and starts it; user data "
            "changes stop/start the instance, or replace it with userDataReplaceOnChange; an EBS volume grows "
            "online and can never shrink.",
            replaces=frozenset(
                {
                    "ami",
                    "availabilityZone",
                    "subnetId",
                    "keyName",
                    "privateIp",
                    "placementGroup",
                    "tenancy",
                    "rootBlockDevice.encrypted",
                    "rootBlockDevice.kmsKeyId",
                    "launchTemplate",
                }
            ),
            replaces_if=_m(userData="userDataReplaceOnChange", userDataBase64="userDataReplaceOnChange"),
            in_place=_m(
                instanceType="the host is stopped and started to change its type (a few minutes offline)",
                ebsOptimized="the host is stopped and started (a few minutes offline)",
                userData="the host is stopped and started with the new user data (a few minutes offline)",
                userDataBase64="the host is stopped and started with the new user data (a few minutes offline)",
            ),
            safety=("rootBlockDevice.encrypted", "disableApiTermination"),
            refused=_m(**{"rootBlockDevice.volumeSize": SHRINK}),
        ),
        "aws:ec2/launchTemplate:LaunchTemplate": Facts(
            "launch template",
            "EC2: a change creates a new template version; running instances keep theirs until the Auto Scaling "
            "group's instance refresh replaces them (Rolling, within its min/max healthy percentage).",
            replaces=_names(),
        ),
        "aws:autoscaling/group:Group": Facts(
            "Auto Scaling group",
            "EC2 Auto Scaling: name is ForceNew; size and template version change in place; a new template "
            "version starts an instance refresh when instanceRefresh is set.",
            replaces=_names(),
        ),
        "aws:autoscaling/policy:Policy": Facts(
            "scaling policy",
            "EC2 Auto Scaling: name and group are ForceNew; the target changes in place.",
            replaces=frozenset({"name", "autoscalingGroupName"}),
        ),
        "aws:ec2/eip:Eip": Facts(
            "Elastic IP",
            "EC2: an Elastic IP's address cannot be kept across a replacement; domain, address and pool are "
            "ForceNew. Records managed here follow the new address; anything else pinned to it breaks.",
            replaces=frozenset({"domain", "vpc", "publicIpv4Pool", "address", "customerOwnedIpv4Pool"}),
            holds_data="its public IP address (allow-lists and DNS records outside this stack point at it)",
            keep_data="update whatever outside this stack points at the address once the new one is known",
        ),
        "aws:ecr/repository:Repository": Facts(
            "container registry",
            "ECR: the repository name is ForceNew; deleting it deletes its images (forceDelete).",
            replaces=frozenset({"name"}),
            holds_data="the app's container images (released tags a rollback needs)",
            keep_data="push the released tags to the new repository first (`docker pull` / `docker push`)",
        ),
        "aws:ecr/lifecyclePolicy:LifecyclePolicy": Facts(
            "image lifecycle policy",
            "ECR: the repository is ForceNew; the policy text changes in place (and may expire images).",
            replaces=frozenset({"repository"}),
        ),
        # ------------------------------------------------------------------ network
        "aws:ec2/vpc:Vpc": Facts(
            "VPC",
            "EC2: a VPC's primary CIDR block cannot be changed (ForceNew): a new VPC, and so new subnets, "
            "security groups, host, database and cache inside it.",
            replaces=frozenset({"cidrBlock", "instanceTenancy", "ipv4IpamPoolId"}),
        ),
        "aws:ec2/subnet:Subnet": Facts(
            "subnet",
            "EC2: a subnet's CIDR block, AZ and VPC are ForceNew; what runs in it moves with it.",
            replaces=frozenset({"cidrBlock", "availabilityZone", "availabilityZoneId", "vpcId", "ipv6CidrBlock"}),
        ),
        "aws:ec2/internetGateway:InternetGateway": Facts(
            "internet gateway", "EC2: attaching to another VPC detaches it first; nothing is stored."
        ),
        "aws:ec2/routeTable:RouteTable": Facts(
            "route table", "EC2: the VPC is ForceNew; routes change in place.", replaces=frozenset({"vpcId"})
        ),
        "aws:ec2/routeTableAssociation:RouteTableAssociation": Facts(
            "route table association",
            "EC2: the subnet is ForceNew; the route table is swapped in place.",
            replaces=frozenset({"subnetId", "gatewayId"}),
        ),
        "aws:ec2/securityGroup:SecurityGroup": Facts(
            "security group",
            "EC2: name, description and VPC are ForceNew; its rules change in place.",
            replaces=_names("vpcId", "description"),
        ),
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": Facts(
            "default security group",
            "EC2: the VPC's default group is adopted, never created or deleted; removing it from the program "
            "only stops managing it.",
            replaces=frozenset({"vpcId"}),
        ),
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": Facts(
            "ingress rule",
            "EC2: a rule's group is ForceNew; ports and sources are modified in place.",
            replaces=frozenset({"securityGroupId"}),
        ),
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": Facts(
            "egress rule",
            "EC2: a rule's group is ForceNew; ports and destinations are modified in place.",
            replaces=frozenset({"securityGroupId"}),
        ),
        "aws:lb/loadBalancer:LoadBalancer": Facts(
            "load balancer",
            "ELB: name, type and scheme are ForceNew; a new load balancer has a new DNS name (the CDN record "
            "managed here follows).",
            replaces=_names("internal", "loadBalancerType", "customerOwnedIpv4Pool"),
            safety=("enableDeletionProtection", "dropInvalidHeaderFields"),
            exposes_when_off=("internal",),
        ),
        "aws:lb/targetGroup:TargetGroup": Facts(
            "target group",
            "ELB: name, port, protocol, target type and VPC are ForceNew; health checks change in place.",
            replaces=_names("port", "protocol", "protocolVersion", "targetType", "vpcId"),
        ),
        "aws:lb/listener:Listener": Facts(
            "listener",
            "ELB: the load balancer is ForceNew; port, protocol, certificate and rules change in place.",
            replaces=frozenset({"loadBalancerArn"}),
        ),
        "aws:lb/trustStore:TrustStore": Facts(
            "mTLS trust store",
            "ELB: name is ForceNew; the CA bundle is replaced in place.",
            replaces=_names(),
        ),
        "aws:acm/certificate:Certificate": Facts(
            "certificate",
            "ACM: an imported certificate's body is re-imported in place; a requested one's domain is ForceNew.",
            replaces=frozenset({"domainName", "subjectAlternativeNames", "validationMethod", "keyAlgorithm"}),
        ),
        # ------------------------------------------------------------------ database
        "aws:rds/instance:Instance": Facts(
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
            in_place=_m(
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
            refused=_m(engineVersion=DOWNGRADE, allocatedStorage=SHRINK),
            deferred_by="applyImmediately",
        ),
        "aws:rds/parameterGroup:ParameterGroup": Facts(
            "parameter group",
            "RDS: name and family are ForceNew; dynamic parameters apply at once, static ones only after a "
            "reboot Pulumi does not perform.",
            replaces=_names("family"),
            in_place=_m(
                parameters="dynamic parameters apply at once; static ones wait for the next reboot (which one a "
                "parameter is, only the PostgreSQL docs tell: not checked offline)"
            ),
        ),
        "aws:rds/subnetGroup:SubnetGroup": Facts(
            "database subnet group", "RDS: name is ForceNew; subnets change in place.", replaces=_names()
        ),
        "aws:elasticache/replicationGroup:ReplicationGroup": Facts(
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
            in_place=_m(
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
            refused=_m(engineVersion=DOWNGRADE),
            deferred_by="applyImmediately",
        ),
        "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication": Facts(
            "cross-region backup replication",
            "RDS: source instance, KMS key and retention are ForceNew; deleting it stops the replication and "
            "deletes the replicated backups in the other region.",
            replaces=frozenset({"sourceDbInstanceArn", "kmsKeyId", "retentionPeriod", "preSignedUrl"}),
            holds_data="the replicated automated backups in the backup region",
            keep_data="take a manual snapshot copy in the backup region first (`aws rds copy-db-snapshot`)",
        ),
        "aws:elasticache/parameterGroup:ParameterGroup": Facts(
            "cache parameter group",
            "ElastiCache: name and family are ForceNew; a parameter's value changes in place and applies to the "
            "group's nodes at once (maxmemory-policy needs no reboot).",
            replaces=frozenset({"name", "family"}),
        ),
        "aws:elasticache/subnetGroup:SubnetGroup": Facts(
            "cache subnet group", "ElastiCache: name is ForceNew; subnets change in place.", replaces=_names()
        ),
        # ------------------------------------------------------------------ storage
        "aws:s3/bucket:Bucket": Facts(
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
        "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": Facts(
            "Object Lock default retention",
            "S3: the default retention changes in place and applies to new objects; objects already written keep "
            "their own retain-until date (COMPLIANCE cannot be shortened by anyone).",
            replaces=frozenset({"bucket", "expectedBucketOwner"}),
        ),
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": Facts(
            "lifecycle rules",
            "S3: rules change in place; a shorter expiration deletes older objects at the next lifecycle run.",
            replaces=frozenset({"bucket", "expectedBucketOwner"}),
        ),
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": Facts(
            "default encryption",
            "S3: default encryption changes in place and applies to new objects only.",
            replaces=frozenset({"bucket", "expectedBucketOwner"}),
        ),
        "aws:s3/bucketVersioning:BucketVersioning": Facts(
            "versioning",
            "S3: versioning changes in place; once enabled it can only be suspended, never removed.",
            replaces=frozenset({"bucket", "expectedBucketOwner"}),
        ),
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": Facts(
            "public access block",
            "S3: each flag changes in place; turning one off lets a policy or ACL make objects public.",
            replaces=frozenset({"bucket"}),
            exposes_when_off=("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"),
        ),
        "aws:s3/bucketPolicy:BucketPolicy": Facts(
            "bucket policy", "S3: the policy document is replaced in place.", replaces=frozenset({"bucket"})
        ),
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls": Facts(
            "ownership controls", "S3: the rule changes in place.", replaces=frozenset({"bucket"})
        ),
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig": Facts(
            "replication",
            "S3: the rules change in place and apply to objects written after the change (existing objects "
            "need S3 Batch Replication); removing it stops copying new files off-site.",
            replaces=frozenset({"bucket"}),
        ),
        "aws:s3/bucketCorsConfiguration:BucketCorsConfiguration": Facts(
            "CORS rules",
            "S3: the rules change in place; they let browsers on the named origins call the bucket with "
            "presigned requests, never without one.",
            replaces=frozenset({"bucket", "expectedBucketOwner"}),
        ),
        "aws:s3/bucketObjectv2:BucketObjectv2": Facts(
            "bucket object",
            "S3: bucket and key are ForceNew; the content is overwritten in place (a new version).",
            replaces=frozenset({"bucket", "key"}),
        ),
        # ------------------------------------------------------------------ identity and secrets
        "aws:iam/role:Role": Facts(
            "IAM role", "IAM: name and path are ForceNew; the trust policy changes in place.", replaces=_names("path")
        ),
        "aws:iam/rolePolicy:RolePolicy": Facts(
            "IAM inline policy",
            "IAM: name and role are ForceNew; the document is replaced in place.",
            replaces=_names("role"),
        ),
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment": Facts(
            "IAM policy attachment",
            "IAM: role and policy ARN are ForceNew (detached, then attached).",
            replaces=frozenset({"role", "policyArn"}),
        ),
        "aws:iam/instanceProfile:InstanceProfile": Facts(
            "instance profile", "IAM: name and path are ForceNew; the role changes in place.", replaces=_names("path")
        ),
        "aws:ssm/parameter:Parameter": Facts(
            "SSM parameter",
            "SSM: name is ForceNew; the value is a new parameter version.",
            replaces=frozenset({"name"}),
        ),
        # ------------------------------------------------------------------ monitoring
        "aws:cloudwatch/logGroup:LogGroup": Facts(
            "log group",
            "CloudWatch Logs: name is ForceNew; retention changes in place (0 = never expire).",
            replaces=_names(),
            holds_data="its log events",
            keep_data="export the log events to S3 first (`aws logs create-export-task`) if they are still needed",
            retention=("retentionInDays",),
        ),
        "aws:cloudwatch/logMetricFilter:LogMetricFilter": Facts(
            "log metric filter",
            "CloudWatch Logs: name and log group are ForceNew.",
            replaces=frozenset({"name", "logGroupName"}),
        ),
        "aws:cloudwatch/metricAlarm:MetricAlarm": Facts(
            "alarm", "CloudWatch: name is ForceNew; thresholds change in place.", replaces=frozenset({"name"})
        ),
        "aws:cloudwatch/compositeAlarm:CompositeAlarm": Facts(
            "composite alarm",
            "CloudWatch: name is ForceNew; the rule changes in place.",
            replaces=frozenset({"alarmName"}),
        ),
        "aws:sns/topicPolicy:TopicPolicy": Facts(
            "SNS topic policy",
            "SNS: the topic ARN is ForceNew; the policy document changes in place (deleting it restores SNS's "
            "default policy).",
            replaces=frozenset({"arn"}),
        ),
        "aws:backup/vault:Vault": Facts(
            "backup vault",
            "AWS Backup: name (and region) are ForceNew; a vault holding recovery points cannot be deleted, and a "
            "locked one keeps them until their retention ends.",
            replaces=_names(),
            holds_data="its recovery points (RDS snapshots)",
            keep_data="keep the old vault until its recovery points expire; AWS refuses to delete a non-empty vault",
        ),
        "aws:backup/vaultLockConfiguration:VaultLockConfiguration": Facts(
            "backup vault lock",
            "AWS Backup: the vault name is ForceNew; in COMPLIANCE mode, once changeableForDays pass, nobody can "
            "change or remove the lock.",
            replaces=frozenset({"backupVaultName"}),
            retention=("minRetentionDays",),
        ),
        "aws:backup/vaultNotifications:VaultNotifications": Facts(
            "backup vault notifications",
            "AWS Backup: the vault name is ForceNew; topic and events change in place.",
            replaces=frozenset({"backupVaultName"}),
        ),
        "aws:backup/plan:Plan": Facts(
            "backup plan",
            "AWS Backup: rules, schedules and lifecycles change in place (existing recovery points keep their own "
            "retention).",
        ),
        "aws:backup/selection:Selection": Facts(
            "backup selection",
            "AWS Backup: every argument of a selection is ForceNew (a new selection replaces it; backups are "
            "unaffected).",
            replaces=frozenset({"name", "planId", "iamRoleArn", "resources"}),
        ),
        "aws:backup/restoreTestingPlan:RestoreTestingPlan": Facts(
            "restore testing plan",
            "AWS Backup: name is ForceNew; schedule and recovery point selection change in place.",
            replaces=frozenset({"name"}),
        ),
        "aws:backup/restoreTestingSelection:RestoreTestingSelection": Facts(
            "restore testing selection",
            "AWS Backup: name, plan and resource type are ForceNew; the rest changes in place.",
            replaces=frozenset({"name", "restoreTestingPlanName", "protectedResourceType"}),
        ),
        "aws:cloudwatch/dashboard:Dashboard": Facts(
            "dashboard",
            "CloudWatch: dashboardName is ForceNew; the body is replaced in place (it holds no data, only views).",
            replaces=frozenset({"dashboardName"}),
        ),
        "aws:chatbot/slackChannelConfiguration:SlackChannelConfiguration": Facts(
            "Slack channel (AWS Chatbot)",
            "AWS Chatbot: configuration name is ForceNew; the channel, topics and role change in place.",
            replaces=frozenset({"configurationName"}),
        ),
        "aws:cloudwatch/eventRule:EventRule": Facts(
            "EventBridge rule", "EventBridge: name and bus are ForceNew.", replaces=_names("eventBusName")
        ),
        "aws:cloudwatch/eventTarget:EventTarget": Facts(
            "EventBridge target",
            "EventBridge: rule, target id and bus are ForceNew.",
            replaces=frozenset({"rule", "targetId", "eventBusName"}),
        ),
        "aws:budgets/budget:Budget": Facts(
            "budget",
            "AWS Budgets: name and account are ForceNew; the limit and notifications change in place (its spend "
            "history is AWS's, not the budget's).",
            replaces=_names("accountId"),
        ),
        "aws:sns/topic:Topic": Facts(
            "SNS topic", "SNS: name is ForceNew (subscribers must confirm again).", replaces=_names("fifoTopic")
        ),
        "aws:sns/topicSubscription:TopicSubscription": Facts(
            "SNS subscription",
            "SNS: topic, protocol and endpoint are ForceNew; an email subscription must be confirmed again.",
            replaces=frozenset({"topic", "protocol", "endpoint"}),
        ),
        "aws:route53/healthCheck:HealthCheck": Facts(
            "health check", "Route 53: type and reference are ForceNew.", replaces=frozenset({"type", "referenceName"})
        ),
        # ------------------------------------------------------------------ Cloudflare and TLS
        "cloudflare:index/dnsRecord:DnsRecord": Facts(
            "DNS record",
            "Cloudflare (v5): the zone is ForceNew; name, type, content and proxied are edited in place through "
            "the DNS records API.",
            replaces=frozenset({"zoneId"}),
            exposes_when_off=("proxied",),
        ),
        "cloudflare:index/zoneSetting:ZoneSetting": Facts(
            "zone setting",
            "Cloudflare: the setting id is ForceNew; values change in place (propagation not checked offline).",
            replaces=frozenset({"zoneId", "settingId"}),
        ),
        "cloudflare:index/ruleset:Ruleset": Facts(
            "ruleset",
            "Cloudflare: zone, kind and phase are ForceNew; rules are replaced in place.",
            replaces=frozenset({"zoneId", "accountId", "kind", "phase"}),
        ),
        "cloudflare:index/authenticatedOriginPullsSettings:AuthenticatedOriginPullsSettings": Facts(
            "authenticated origin pulls",
            "Cloudflare: toggled in place per zone.",
            replaces=frozenset({"zoneId"}),
            safety=("enabled",),
        ),
        "cloudflare:index/originCaCertificate:OriginCaCertificate": Facts(
            "origin certificate",
            "Cloudflare: any change (hostnames, CSR, validity) issues a new certificate (ForceNew); the host "
            "picks it up from its parameter.",
            replaces=frozenset({"csr", "hostnames", "requestType", "requestedValidity"}),
        ),
        "tls:index/privateKey:PrivateKey": Facts(
            "private key",
            "TLS provider: algorithm and size are ForceNew (a new key, hence a new certificate).",
            replaces=frozenset({"algorithm", "rsaBits", "ecdsaCurve"}),
        ),
        "tls:index/certRequest:CertRequest": Facts(
            "certificate request",
            "TLS provider: every input is ForceNew (a new CSR, hence a new certificate).",
            replaces=frozenset({"privateKeyPem", "subject", "dnsNames", "ipAddresses", "uris"}),
        ),
        "random:index/randomPassword:RandomPassword": Facts(
            "random password",
            "random provider: every input (length, keepers) is ForceNew: a new password.",
            replaces=frozenset({"length", "special", "keepers", "upper", "lower", "numeric", "overrideSpecial"}),
        ),
        # ------------------------------------------------------------------ Pulumi itself
        "pulumi:providers:aws": Facts(
            "AWS provider",
            "Pulumi: a provider's region is where its resources live; changing it replaces every one of them.",
        ),
    }
)


def facts_for(resource_type: str) -> Facts | None:
    """The entry for a resource type; leanstack's own component types share one."""
    if resource_type.startswith("leanstack:"):
        return COMPONENT
    return FACTS.get(resource_type)


def data_holding_types() -> frozenset[str]:
    """Types that lose something when replaced or deleted."""
    return frozenset(kind for kind, facts in FACTS.items() if facts.holds_data)
