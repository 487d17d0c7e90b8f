"""What the config tests share: the tests' dev stack with overrides, and the tables of bad values
(each with the one line `validate` answers), which the CLI tests run again through the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from leanstack.config import ConfigError, StackConfig, load_stack_config
from tests.conftest import merged, read_stack_config

# The tests' own dev stack (tests/fixtures/stacks/Pulumi.dev.yaml): independent of the placeholders in stacks/.
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def dev_config(**overrides: Any) -> dict[str, Any]:
    return merged(read_stack_config("dev", FIXTURES), overrides)


def load(overrides: dict[str, Any], stack: str = "dev") -> StackConfig:
    """`stack` with overrides: dev is the fixture; other names read the shipped stack files."""
    base = read_stack_config(stack, FIXTURES if stack == "dev" else None)
    return load_stack_config(merged(base, overrides), stack)


def error_of(overrides: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        load(overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


BAD_CONFIG: list[tuple[dict[str, Any], str]] = [
    (
        {"leanstack:backup": {"region": "us-east-1"}},
        'leanstack:backup.region: got "us-east-1", the stack\'s own region; expected another region '
        "so that backups survive a regional outage",
    ),
    (
        {"leanstack:database": {"backupRetentionDays": 0}},
        "leanstack:database.backupRetentionDays: got 0; expected a whole number from 1 to 35",
    ),
    (
        {"leanstack:database": {"instanceClass": "t4g.micro"}},
        'leanstack:database.instanceClass: got "t4g.micro"; expected an RDS instance class starting '
        "with 'db.', such as db.t4g.micro",
    ),
    (
        {
            "leanstack:network": {
                "existingVpcId": "vpc-0123456789abcdef0",
                "existingPublicSubnetIds": ["subnet-0123456789abcdef0"],
                "existingPrivateSubnetIds": ["subnet-0123456789abcdef1"],
            },
            "leanstack:database": {"multiAz": True},
        },
        "leanstack:database.multiAz: got true with 1 private subnet(s); Multi-AZ needs "
        "network.existingPrivateSubnetIds in two AZs",
    ),
    (
        {"leanstack:alertEmail": "ops-at-example.com"},
        'leanstack:alertEmail: got "ops-at-example.com"; expected an email address such as ops@example.com',
    ),
    (
        {"leanstack:domain": "Example .com"},
        'leanstack:domain: got "Example .com"; expected a lower-case DNS name such as example.com '
        "(letters, digits, '-' and '.')",
    ),
    (
        {"leanstack:database": {"instanceClas": "db.t4g.micro"}},
        "leanstack:database.instanceClas: unknown key; did you mean instanceClass?",
    ),
    (
        {"leanstack:databse": {}},
        "leanstack:databse: unknown key; did you mean database?",
    ),
    (
        {"leanstack:database": {"multiAz": "yes"}},
        'leanstack:database.multiAz: got "yes"; expected true or false',
    ),
    (
        {"leanstack:app": {"port": "http"}},
        'leanstack:app.port: got "http"; expected a whole number from 1024 to 65534',
    ),
    (
        {"leanstack:cdn": None},
        "leanstack:cdn: missing; expected an object with at least zoneId",
    ),
    (
        {"leanstack:cdn": {"zoneId": None}},
        "leanstack:cdn.zoneId: missing; expected 32 lower-case hex characters",
    ),
    (
        {"aws:region": None},
        "aws:region: missing; expected the stack's AWS region such as us-east-1",
    ),
    (
        {"leanstack:database": {"engineVersion": "12"}},
        'leanstack:database.engineVersion: got "12"; expected one of 14, 15, 16, 17 '
        "(or a minor version of one, such as 17.4)",
    ),
    (
        {"leanstack:database": {"allocatedStorageGb": 100, "maxAllocatedStorageGb": 50}},
        "leanstack:database.maxAllocatedStorageGb: got 50; expected more than allocatedStorageGb (100)",
    ),
    (
        {
            "leanstack:database": {
                "backupWindow": "03:30-04:30",
                "maintenanceWindow": "sun:04:00-sun:05:00",
            }
        },
        'leanstack:database.backupWindow: got "03:30-04:30"; it overlaps maintenanceWindow "sun:04:00-sun:05:00"',
    ),
    (
        {"leanstack:backup": {"expireAfterDays": 7, "objectLockDays": 7}},
        "leanstack:backup.expireAfterDays: got 7; expected more than backup.objectLockDays (7), "
        "or expired backups stay locked and billed",
    ),
    (
        {"leanstack:backup": {"glacierAfterDays": 30, "expireAfterDays": 60}},
        "leanstack:backup.glacierAfterDays: got 30; Glacier Instant Retrieval bills 90 days minimum, so "
        "expected expireAfterDays (60) >= glacierAfterDays + 90, or 0 to skip Glacier",
    ),
    (
        {"leanstack:host": {"instanceType": "t3.small"}},
        'leanstack:host.instanceType: got "t3.small"; expected a Graviton (arm64) instance type such as t4g.small',
    ),
    (
        {"leanstack:backup": {"objectLockMode": "governance"}},
        'leanstack:backup.objectLockMode: got "governance"; allowed: GOVERNANCE, COMPLIANCE',
    ),
    (
        {"leanstack:hostnames": ["dev.example.com", "api.other.com"]},
        'leanstack:hostnames[1]: got "api.other.com"; expected dev.example.com or a name under it',
    ),
    (
        {"leanstack:network": {"existingPrivateSubnetIds": ["subnet-0123456789abcdef1"]}},
        "leanstack:network.existingVpcId: missing; existing subnet ids are only used together with existingVpcId",
    ),
    (
        {"leanstack:network": {"cidr": "8.8.0.0/16"}},
        'leanstack:network.cidr: got "8.8.0.0/16"; expected a private IPv4 network from /16 to /24 '
        "(room for four subnets), such as 10.20.0.0/16",
    ),
]


BAD_ALERT_AND_RECOVERY_CONFIG: list[tuple[dict[str, Any], str]] = [
    (
        {"leanstack:alerts": {"errorRatePercent": 0}},
        "leanstack:alerts.errorRatePercent: got 0; expected a whole number from 1 to 50",
    ),
    (
        {"leanstack:alerts": {"siteDownMinutes": 60}},
        "leanstack:alerts.siteDownMinutes: got 60; expected a whole number from 1 to 30",
    ),
    (
        {"leanstack:alerts": {"databaseFreeStoragePercent": 2}},
        "leanstack:alerts.databaseFreeStoragePercent: got 2; expected a whole number from 5 to 50",
    ),
    (
        {"leanstack:alerts": {"minRequestsPerMinute": "many"}},
        'leanstack:alerts.minRequestsPerMinute: got "many"; expected a whole number from 1 to 100000',
    ),
    (
        {"leanstack:alerts": {"backupStaleHours": 20}},
        "leanstack:alerts.backupStaleHours: got 20; expected more than the backup interval (24 h, "
        "backup.backupCalendar), or the alarm fires between two good backups",
    ),
    (
        {"leanstack:alerts": {"errorRate": 5}},
        "leanstack:alerts.errorRate: unknown key; did you mean errorRatePercent?",
    ),
    (
        {"leanstack:recovery": {"rpoHours": 12}},
        "leanstack:recovery.rpoHours: got 12; backups every 24 h (backup.backupCalendar) can lose up to 25 h "
        "of data, so expected at least 25, or back up more often",
    ),
    (
        {"leanstack:recovery": {"rpoHours": 24}, "leanstack:backup": {"backupCalendar": "Mon *-*-* 03:00:00"}},
        'leanstack:backup.backupCalendar: got "Mon *-*-* 03:00:00"; cannot tell how often it runs to check '
        'recovery.rpoHours; expected a daily or more frequent form such as "*-*-* 03:30:00" or '
        '"*-*-* 00/6:00:00"',
    ),
    (
        {"leanstack:recovery": {"rtoMinutes": 10}},
        "leanstack:recovery.rtoMinutes: got 10; expected at least 30: a new host boots and a restore runs in no less",
    ),
    (
        {"leanstack:owner": "<script>"},
        'leanstack:owner: got "<script>"; expected a name, team or email of 1-80 characters such as '
        '"Ada Lovelace, ada@example.com"',
    ),
]


BAD_GROWTH_CONFIG: list[tuple[dict[str, Any], str]] = [
    ({"leanstack:hosts": {"count": 0}}, "leanstack:hosts.count: got 0; expected a whole number from 1 to 20"),
    (
        {"leanstack:hosts": {"count": "two"}},
        'leanstack:hosts.count: got "two"; expected a whole number from 1 to 20',
    ),
    ({"leanstack:hosts": {"autoscale": {"mx": 3}}}, "leanstack:hosts.autoscale.mx: unknown key; did you mean max?"),
    (
        {"leanstack:hosts": {"count": 3, "autoscale": {"min": 2, "max": 4}}},
        "leanstack:hosts.count: got 3; expected 1 (the default) with hosts.autoscale, which sets the number of "
        "hosts: give one or the other",
    ),
    (
        {"leanstack:hosts": {"autoscale": {"min": 1, "max": 3}}},
        "leanstack:hosts.autoscale.min: got 1; expected at least 2: one host runs the backup jobs, at least one "
        "more serves",
    ),
    (
        {"leanstack:hosts": {"autoscale": {"min": 3}}},
        "leanstack:hosts.autoscale.max: missing; expected at least autoscale.min (3) to turn autoscaling on",
    ),
    (
        {"leanstack:hosts": {"autoscale": {"min": 4, "max": 3}}},
        "leanstack:hosts.autoscale.max: got 3; expected at least autoscale.min (4)",
    ),
    (
        {"leanstack:database": {"readReplicas": 6}},
        "leanstack:database.readReplicas: got 6; expected a whole number from 0 to 5",
    ),
    (
        {"leanstack:database": {"replicaMultiAz": True}},
        "leanstack:database.replicaMultiAz: got true; expected false while database.readReplicas is 0",
    ),
    (
        {"leanstack:cache": {"replicas": 1}},
        "leanstack:cache.replicas: got 1; expected 0 while cache.enabled is false",
    ),
    (
        {"leanstack:cache": {"enabled": True, "replicas": -1}},
        "leanstack:cache.replicas: got -1; expected a whole number from 0 to 5",
    ),
]
