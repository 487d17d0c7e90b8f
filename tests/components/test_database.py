"""Database: RDS PostgreSQL, private, encrypted, TLS-only, password managed by RDS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from leanstack.mocks import StackRun
from tests.components.helpers import children


def test_engine_class_and_storage(dev: StackRun) -> None:
    db = dev.one("aws:rds/instance:Instance").inputs
    assert (db["engine"], db["engineVersion"], db["instanceClass"]) == ("postgres", "17", "db.t4g.micro")
    assert (db["storageType"], db["allocatedStorage"], db["maxAllocatedStorage"]) == ("gp3", 20, 100)
    assert db["storageEncrypted"] is True


def test_password_is_managed_by_rds_and_never_in_the_program(dev: StackRun) -> None:
    db = dev.one("aws:rds/instance:Instance").inputs
    assert db["manageMasterUserPassword"] is True
    assert "password" not in db
    assert dev.outputs["databaseSecretArn"].startswith("arn:aws:secretsmanager:")


def test_private_and_reachable_only_from_the_host(dev: StackRun) -> None:
    assert dev.one("aws:rds/instance:Instance").inputs["publiclyAccessible"] is False
    db_sg = dev.named("database-sg")
    assert db_sg.inputs.get("ingress", []) == [] and db_sg.inputs.get("egress", []) == []
    rules = [
        r for r in dev.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") if r.component == "Database"
    ]
    assert len(rules) == 1
    rule = rules[0].inputs
    assert (rule["fromPort"], rule["toPort"], rule["ipProtocol"]) == (5432, 5432, "tcp")
    assert rule["securityGroupId"] == db_sg.id
    assert rule["referencedSecurityGroupId"] == dev.named("host-sg").id
    assert "cidrIpv4" not in rule and "cidrIpv6" not in rule


def test_private_subnet_group_uses_the_private_subnets(dev: StackRun) -> None:
    group = dev.one("aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"]
    assert group == [dev.named(f"network-private-{x}").id for x in "ab"]


def test_parameter_group_forces_tls_and_logs_slow_statements(dev: StackRun) -> None:
    params = dev.one("aws:rds/parameterGroup:ParameterGroup").inputs
    assert params["family"] == "postgres17"
    values = {p["name"]: p["value"] for p in params["parameters"]}
    assert values == {"rds.force_ssl": "1", "log_min_duration_statement": "500"}
    db = dev.one("aws:rds/instance:Instance").inputs
    assert db["parameterGroupName"] == params["name"]


def test_logs_backups_and_maintenance(dev: StackRun, prod: StackRun) -> None:
    db = dev.one("aws:rds/instance:Instance").inputs
    assert db["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    assert dev.named("database-logs").inputs["retentionInDays"] == 30
    assert db["copyTagsToSnapshot"] is True and db["autoMinorVersionUpgrade"] is True
    assert (db["backupWindow"], db["maintenanceWindow"]) == ("02:00-03:00", "sun:04:00-sun:05:00")
    assert db["backupRetentionPeriod"] == 1
    assert prod.one("aws:rds/instance:Instance").inputs["backupRetentionPeriod"] == 14


def test_dev_is_disposable(dev: StackRun) -> None:
    db = dev.one("aws:rds/instance:Instance")
    assert db.inputs["multiAz"] is False
    assert db.inputs["deletionProtection"] is False
    assert db.inputs["skipFinalSnapshot"] is True
    assert db.protect is False
    # Not production: its automated backups go with it.
    assert db.inputs["deleteAutomatedBackups"] is True


def test_prod_is_multi_az_protected_and_keeps_a_final_snapshot(prod: StackRun) -> None:
    db = prod.one("aws:rds/instance:Instance")
    assert db.inputs["multiAz"] is True
    assert db.inputs["deletionProtection"] is True
    assert db.inputs["skipFinalSnapshot"] is False
    assert db.inputs["finalSnapshotIdentifier"] == "leanstack-prod-final"
    assert db.protect is True
    assert db.inputs["instanceClass"] == "db.t4g.small"
    # Point-in-time recovery survives a deleted instance.
    assert db.inputs["deleteAutomatedBackups"] is False


def test_the_final_snapshot_is_named_after_the_stack_whatever_the_identifier(
    run_dev_with: Callable[[dict[str, Any]], StackRun],
) -> None:
    run = run_dev_with({"leanstack:database": {"identifier": "shop-db", "finalSnapshot": True}})
    db = run.one("aws:rds/instance:Instance").inputs
    assert (db["identifier"], db["finalSnapshotIdentifier"]) == ("shop-db", "leanstack-dev-final")


def test_a_protected_database_keeps_its_automated_backups_whatever_the_stack_name(
    run_dev_with: Callable[[dict[str, Any]], StackRun],
) -> None:
    run = run_dev_with(
        {
            "leanstack:database": {"deletionProtection": True},
            "leanstack:owner": "Ada",
            "leanstack:recovery": {"rtoMinutes": 240, "rpoHours": 25, "secondPerson": "Grace, grace@example.com"},
        }
    )
    assert run.one("aws:rds/instance:Instance").inputs["deleteAutomatedBackups"] is False


def test_storage_alarm_fires_below_ten_percent_free(dev: StackRun) -> None:
    alarm = dev.named("database-storage-low").inputs
    assert alarm["metricName"] == "FreeStorageSpace" and alarm["namespace"] == "AWS/RDS"
    assert alarm["threshold"] == 2 * 1024**3  # 10% of 20 GiB
    assert alarm["comparisonOperator"] == "LessThanThreshold"
    assert alarm["alarmActions"] == [dev.outputs["alertTopicArn"]]


def test_every_database_child_is_parented_to_the_component(dev: StackRun) -> None:
    names = sorted(r.name for r in children(dev, "Database"))
    assert names == [
        "database-connections-high", "database-from-host", "database-instance", "database-logs", "database-params",
        "database-sg", "database-storage-low", "database-subnets",
    ]  # fmt: skip


def test_storage_alarm_threshold_follows_the_alerts_config(tuned: StackRun) -> None:
    alarm = tuned.named("database-storage-low").inputs
    assert alarm["threshold"] == 4 * 1024**3  # alerts.databaseFreeStoragePercent 20 of 20 GiB
    assert "under 20% free storage" in alarm["alarmDescription"]


# --------------------------------------------------------------------------- read replicas (issue 8)


def test_no_replicas_by_default(dev: StackRun, prod: StackRun) -> None:
    for run in (dev, prod):
        assert len(run.of_type("aws:rds/instance:Instance")) == 1
        assert "databaseReplicaAddresses" not in run.outputs


def test_a_replica_copies_the_primary_privately_encrypted_with_its_own_endpoint(scale: StackRun) -> None:
    primary = scale.named("database-instance")
    replica = scale.named("database-replica-1")
    r = replica.inputs
    assert r["identifier"] == "leanstack-scale-replica-1"
    assert r["replicateSourceDb"] == primary.inputs["identifier"]
    # Same class, security group and parameter group; encrypted; private; Single-AZ unless asked.
    assert r["instanceClass"] == primary.inputs["instanceClass"]
    assert r["vpcSecurityGroupIds"] == primary.inputs["vpcSecurityGroupIds"] == [scale.named("database-sg").id]
    assert r["parameterGroupName"] == primary.inputs["parameterGroupName"]
    assert (r["storageEncrypted"], r["publiclyAccessible"], r["multiAz"]) == (True, False, False)
    # What it inherits is not restated, so it cannot disagree with the primary.
    for inherited in ("engine", "engineVersion", "dbName", "username", "manageMasterUserPassword", "dbSubnetGroupName"):
        assert inherited not in r, inherited
    # Nothing of its own to protect: no Pulumi protect, no final snapshot (RDS takes none of a replica).
    assert (replica.protect, r["deletionProtection"], r["skipFinalSnapshot"]) == (False, False, True)
    assert r["backupRetentionPeriod"] == primary.inputs["backupRetentionPeriod"]
    assert primary.urn in replica.dependencies and replica.urn not in primary.dependencies
    assert scale.outputs["databaseReplicaAddresses"] == [replica.outputs["address"]]
    assert replica.outputs["address"] != scale.outputs["databaseAddress"]


def test_replicas_multi_az_only_when_asked(run_dev_with: Callable[[dict[str, Any]], StackRun]) -> None:
    run = run_dev_with({"leanstack:database": {"readReplicas": 2, "replicaMultiAz": True}})
    replicas = [r for r in run.of_type("aws:rds/instance:Instance") if r.inputs.get("replicateSourceDb")]
    assert [r.inputs["identifier"] for r in replicas] == ["leanstack-dev-replica-1", "leanstack-dev-replica-2"]
    assert all(r.inputs["multiAz"] is True for r in replicas)
    assert len(run.outputs["databaseReplicaAddresses"]) == 2


def test_cross_region_backups_replicate_to_the_backup_region_and_are_priced() -> None:
    from leanstack.cost import estimate
    from leanstack.mocks import MOCK_ACCOUNT
    from leanstack.plan import build_plan
    from tests.conftest import run_with

    run = run_with({"leanstack:database": {"crossRegionBackups": True}}, "prod")
    replication = run.one("aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication")
    assert replication.region == run.outputs["backupRegion"] != run.outputs["region"]
    primary = run.named("database-instance")
    assert replication.inputs["retentionPeriod"] == primary.inputs["backupRetentionPeriod"]
    assert replication.inputs["sourceDbInstanceArn"] == primary.outputs["arn"]
    backup_region = run.outputs["backupRegion"]
    assert replication.inputs["kmsKeyId"] == f"arn:aws:kms:{backup_region}:{MOCK_ACCOUNT}:alias/aws/rds"
    price = estimate(build_plan(run))["resources"][replication.urn]
    assert price["status"] == "priced" and price["monthly"] > 0
