"""Database: managed PostgreSQL on RDS, reachable only from the host.

Builds an RDS PostgreSQL instance in the private subnets (gp3 storage with an autoscaling
ceiling, encrypted, not publicly accessible), its subnet group, a security group that
admits 5432 only from the clients given to `allow_from`, a parameter group forcing TLS
(`rds.force_ssl=1`) and logging slow statements, the PostgreSQL log exported to a
CloudWatch log group with a retention, and a "storage almost full" alarm.

The master password is generated and rotated by RDS in Secrets Manager
(`manage_master_user_password`): it is never in config, code or Pulumi state. RDS rotates
it every 7 days, so whatever needs it reads the secret when it connects, never a copy.

With `read_replicas` > 0 (off by default: earn it with read load the primary cannot take),
it also builds that many read replicas (`replicate_source_db`), each with its own endpoint
(`replica_addresses`), in the same private subnets, security group and parameter group,
encrypted like the primary (RDS encrypts a replica with its source's key), Single-AZ unless
`replica_multi_az`. A replica is a copy the primary streams to: the app sends it only reads
that can be a few seconds stale, and the primary's inputs do not change when replicas come
or go, so adding or removing one never touches the primary or its data.

Cost: billed are the instance (on demand, by `instance_class`; Multi-AZ doubles instance and
storage), its gp3 storage, the managed secret, and each read replica as a Single-AZ instance of
the same class and storage (no secret of its own); priced per region in `python -m leanstack plan`.
Backups up to the database's size are free. Production (`leanstack.config.is_production`) keeps
its automated backups after the instance is deleted (`delete_automated_backups=False`), so
point-in-time recovery survives a deleted instance: they cost nothing while the instance lives,
and once it is gone they are billed as backup storage until their `backup_retention_days` run
out. The final snapshot (`leanstack-<stack>-final`) is billed the same until someone deletes it.

Replacement: changing `identifier`, `database_name` or `username` replaces the instance,
and with it the data (restore from a snapshot or the off-site backups). `protect` makes
Pulumi refuse that; `deletion_protection` makes RDS refuse it. Replicas hold no data of
their own: lowering `read_replicas` deletes the highest-numbered ones (RDS cannot take a
final snapshot of a replica, and needs none), and a replica is never Pulumi-protected.

Children, reachable as attributes and changeable before creation with `transform` (a mapping of
child key to a function that gets the child's keyword arguments, `opts` included, and may change
them): `instance`, `security_group`, `subnet_group`, `parameter_group`, `log_group`, and `replica`
(applied to each of `replicas`).

Example:
    db = Database("database", DatabaseArgs(multi_az=True, read_replicas=1), stack="prod", network=net,
                  alarm_topic_arn=topic, thresholds=AlertThresholds(database_connections_percent=70),
                  transform={"instance": lambda args: args.update(performance_insights_enabled=True)})
    db.allow_from("host", host.security_group_id)
    pulumi.export("replicas", db.replica_addresses)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from leanstack.components.alarms import metric_alarm
from leanstack.components.base import LeanComponent, Transforms
from leanstack.components.network import Network
from leanstack.components.providers import aws_provider
from leanstack.config import (
    AlertThresholds,
    DatabaseArgs,
    default_max_connections,
    final_snapshot_name,
    is_production,
    postgres_parameter_family,
)
from leanstack.config.naming import stack_prefix

__all__ = ["Database", "DatabaseArgs"]

GIB = 1024**3


def _first_secret_arn(secrets: Sequence[aws.rds.outputs.InstanceMasterUserSecret]) -> str:
    # With manage_master_user_password, RDS creates exactly one secret.
    return secrets[0].secret_arn or ""


class Database(LeanComponent):
    TRANSFORMABLE = ("instance", "security_group", "subnet_group", "parameter_group", "log_group", "replica")
    address: pulumi.Output[str]
    port: pulumi.Output[int]
    secret_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    identifier: str
    # One endpoint per read replica, replica 1 first; empty without replicas.
    replica_addresses: list[pulumi.Output[str]]

    def __init__(
        self,
        name: str,
        args: DatabaseArgs,
        *,
        stack: str,
        network: Network,
        alarm_topic_arn: pulumi.Input[str],
        thresholds: AlertThresholds | None = None,
        transform: Transforms | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, opts, transform)
        self.args, self.stack, self.network = args, stack, network
        thresholds = thresholds or AlertThresholds()
        self.free_storage_percent = thresholds.database_free_storage_percent
        self.connections_percent = thresholds.database_connections_percent
        limit = default_max_connections(args.instance_class)
        if limit is None:  # validate refuses such a class first (DatabaseArgs.instance_class)
            raise ValueError(f"no max_connections figure for {args.instance_class}")
        self.max_connections = limit
        # The connections alarm's threshold (the dashboard draws it too).
        self.connections_threshold = limit * self.connections_percent // 100
        # Also the name of its subnet group, parameter group, security group and log group.
        self.identifier = self.claim_physical_name(
            "RDS identifier", args.identifier or stack_prefix(stack), "DatabaseArgs(identifier=...)"
        )
        self.security_group = self._create_security_group()
        self.subnet_group = self._create_subnet_group()
        self.parameter_group = self._create_parameter_group()
        self.log_group = self._create_log_group()
        self.instance = self._create_instance()
        self._create_storage_alarm(alarm_topic_arn)
        self._create_connections_alarm(alarm_topic_arn)
        self.replicas = [self._create_replica(n) for n in range(1, args.read_replicas + 1)]
        self._register_outputs()

    def _register_outputs(self) -> None:
        """What other components and the program read: the endpoints, the secret, the security group."""
        self.address = self.instance.address
        self.arn = self.instance.arn
        self.subnet_group_name = self.subnet_group.name
        self.port = self.instance.port
        self.database_name = self.args.database_name
        self.username = self.args.username
        self.secret_arn = self.instance.master_user_secrets.apply(_first_secret_arn)
        self.security_group_id = self.security_group.id
        self.replica_addresses = [replica.address for replica in self.replicas]
        self.register_outputs(
            {
                "address": self.address,
                "port": self.port,
                "secret_arn": self.secret_arn,
                "security_group_id": self.security_group_id,
                "replica_addresses": self.replica_addresses,
            }
        )

    def allow_from(self, client: str, security_group_id: pulumi.Input[str]) -> None:
        """Admit PostgreSQL connections from one client security group (and nothing else)."""
        self._admit(self.security_group.id, client, security_group_id, 5432, "PostgreSQL")

    def _create_security_group(self) -> aws.ec2.SecurityGroup:
        # No inline rules: clients are admitted one by one with `allow_from`, and the
        # database needs no egress at all.
        return aws.ec2.SecurityGroup(
            self.child_name("sg"),
            **self.transformed(
                "security_group",
                dict(
                    name=f"{self.identifier}-db",
                    description="PostgreSQL: only from the clients admitted by leanstack",
                    vpc_id=self.network.vpc_id,
                    tags=self.named_tags(f"{self.identifier}-db"),
                    opts=self.child_opts(),
                ),
            ),
        )

    def _create_subnet_group(self) -> aws.rds.SubnetGroup:
        return aws.rds.SubnetGroup(
            self.child_name("subnets"),
            **self.transformed(
                "subnet_group",
                dict(
                    name=self.identifier,
                    subnet_ids=self.network.private_subnet_ids,
                    description="Private subnets in two AZs",
                    tags=self.tags,
                    opts=self.child_opts(),
                ),
            ),
        )

    def _create_parameter_group(self) -> aws.rds.ParameterGroup:
        major = self.args.engine_version.split(".")[0]
        return aws.rds.ParameterGroup(
            self.child_name("params"),
            **self.transformed(
                "parameter_group",
                dict(
                    name=f"{self.identifier}-pg{major}",
                    family=postgres_parameter_family(self.args.engine_version),
                    description=f"leanstack PostgreSQL {major}: TLS only, slow statements logged",
                    parameters=[
                        aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1"),
                        aws.rds.ParameterGroupParameterArgs(
                            name="log_min_duration_statement", value=str(self.args.slow_query_ms)
                        ),
                    ],
                    tags=self.tags,
                    # A new major version needs a new family: create the new group before the old one goes.
                    opts=self.child_opts(),
                ),
            ),
        )

    def _create_log_group(self) -> aws.cloudwatch.LogGroup:
        # RDS would create this group itself on first export, with no retention (kept and billed forever).
        return aws.cloudwatch.LogGroup(
            self.child_name("logs"),
            **self.transformed(
                "log_group",
                dict(
                    name=f"/aws/rds/instance/{self.identifier}/postgresql",
                    retention_in_days=self.args.log_retention_days,
                    tags=self.tags,
                    opts=self.child_opts(),
                ),
            ),
        )

    def replicate_backups(self, region: str) -> None:
        """Replicate the automated backups to `region` (database.crossRegionBackups), for point-in-time
        recovery there; retention as backupRetentionDays. Encrypted with the AWS-managed RDS key there."""
        provider = aws_provider(self.child_name("backup-region"), region=region, stack=self.stack,
                                opts=self.child_opts())  # fmt: skip
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        aws.rds.InstanceAutomatedBackupsReplication(
            self.child_name("backups-replication"),
            source_db_instance_arn=self.instance.arn,
            retention_period=self.args.backup_retention_days,
            kms_key_id=pulumi.Output.concat("arn:aws:kms:", region, ":", account, ":alias/aws/rds"),
            opts=self.child_opts(provider=provider),
        )

    def _create_instance(self) -> aws.rds.Instance:
        a = self.args
        args = dict(
            identifier=self.identifier,
            engine="postgres",
            engine_version=a.engine_version,
            instance_class=a.instance_class,
            allocated_storage=a.allocated_storage_gb,
            max_allocated_storage=a.max_allocated_storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            db_name=a.database_name,
            username=a.username,
            manage_master_user_password=True,
            port=5432,
            publicly_accessible=False,
            db_subnet_group_name=self.subnet_group.name,
            vpc_security_group_ids=[self.security_group.id],
            parameter_group_name=self.parameter_group.name,
            multi_az=a.multi_az,
            backup_retention_period=a.backup_retention_days,
            backup_window=a.backup_window,
            maintenance_window=a.maintenance_window,
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            # Major upgrades are a deliberate change: bump engineVersion and review the diff.
            allow_major_version_upgrade=True,
            enabled_cloudwatch_logs_exports=["postgresql", "upgrade"],
            deletion_protection=a.deletion_protection,
            skip_final_snapshot=not a.final_snapshot,
            # Named after the stack, not the instance, so the recovery sheet can name it.
            final_snapshot_identifier=final_snapshot_name(self.stack) if a.final_snapshot else None,
            # Production keeps its automated backups (point-in-time recovery) when the instance is
            # deleted, for their retention period; elsewhere RDS deletes them with it.
            delete_automated_backups=not is_production(self.stack, a),
            # Changes wait for the maintenance window unless someone chooses otherwise in the console.
            apply_immediately=False,
            tags=self.named_tags(self.identifier),
            opts=self.child_opts(protect=a.protect, depends_on=[self.log_group]),
        )
        return aws.rds.Instance(self.child_name("instance"), **self.transformed("instance", args))

    def _create_replica(self, number: int) -> aws.rds.Instance:
        """Read replica `number`: engine, version, storage size, database and user come from the primary."""
        a = self.args
        identifier = f"{self.identifier}-replica-{number}"
        primary = self.instance
        args = dict(
            identifier=identifier,
            # Same region: the primary's identifier. The replica depends on the primary, never the reverse.
            replicate_source_db=primary.identifier,
            instance_class=a.instance_class,
            max_allocated_storage=a.max_allocated_storage_gb,
            storage_type="gp3",
            # RDS encrypts a replica with its source's key; stated so the plan and the policy pack see it.
            storage_encrypted=True,
            port=5432,
            publicly_accessible=False,
            vpc_security_group_ids=[self.security_group.id],
            parameter_group_name=self.parameter_group.name,
            multi_az=a.replica_multi_az,
            # Kept like the primary's, so a replica promoted in an emergency has point-in-time recovery at once.
            backup_retention_period=a.backup_retention_days,
            backup_window=a.backup_window,
            maintenance_window=a.maintenance_window,
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            # No log export: RDS would create the replica's log group itself, without a retention.
            # A replica's data is the primary's: nothing to protect or snapshot when it goes
            # (RDS refuses a final snapshot of a read replica).
            deletion_protection=False,
            skip_final_snapshot=True,
            apply_immediately=False,
            tags=self.named_tags(identifier),
            opts=self.child_opts(depends_on=[primary]),
        )
        return aws.rds.Instance(self.child_name(f"replica-{number}"), **self.transformed("replica", args))

    def _create_storage_alarm(self, topic_arn: pulumi.Input[str]) -> None:
        # 10% (alerts.databaseFreeStoragePercent) of the allocated size. Storage autoscaling grows
        # the volume near that point; the alarm fires when it cannot (at the ceiling) or does not keep up.
        percent = self.free_storage_percent
        threshold = int(self.args.allocated_storage_gb * GIB * percent / 100)
        self._alarm(
            topic_arn,
            "storage-low",
            f"Data at risk: the database has under {percent}% free storage. When it fills, writes fail and "
            "users see errors. First check: RDS console > Monitoring > Free storage; raise "
            "database.maxAllocatedStorageGb or clean up. Runbook: #database-storage-low",
            metric_name="FreeStorageSpace",
            statistic="Minimum",
            period=300,
            evaluation_periods=2,
            comparison_operator="LessThanThreshold",
            threshold=threshold,
        )

    def _create_connections_alarm(self, topic_arn: pulumi.Input[str]) -> None:
        # Past max_connections PostgreSQL refuses new connections ("too many clients already") and users see
        # errors; 80% (alerts.databaseConnectionsPercent) of the class's default leaves time to act.
        limit, percent, threshold = self.max_connections, self.connections_percent, self.connections_threshold
        self._alarm(
            topic_arn,
            "connections-high",
            f"Errors soon for users: the database has held over {threshold} connections ({percent}% of about "
            f"{limit}, the default max_connections of {self.args.instance_class}, estimated from its memory) "
            "for 5 minutes; at the limit new connections are refused. First check: `SELECT count(*), "
            "application_name, state FROM pg_stat_activity GROUP BY 2, 3` (a leak, idle in transaction) and "
            "`SHOW max_connections`; then a pooler or a larger class. Runbook: #database-connections-high",
            metric_name="DatabaseConnections",
            statistic="Maximum",
            period=60,
            evaluation_periods=5,
            datapoints_to_alarm=5,
            comparison_operator="GreaterThanThreshold",
            threshold=threshold,
        )

    def _alarm(self, topic_arn: pulumi.Input[str], suffix: str, description: str, **metric: Any) -> None:
        """An alarm on one of the instance's RDS metrics that pages `topic_arn`, and says when it is OK again."""
        metric_alarm(
            self,
            suffix,
            description,
            name=f"{self.identifier}-{suffix}",
            notify=topic_arn,
            namespace="AWS/RDS",
            dimensions={"DBInstanceIdentifier": self.instance.identifier},
            treat_missing_data="missing",
            **metric,
        )
