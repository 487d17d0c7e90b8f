"""`python -m leanstack db restore`: point-in-time restore next to the database, and the swap, against moto.

moto's RDS restores a point in time as a copy of the instance as it is now (it keeps no
history), so these tests prove the requests, the placement, the renames and the refusals,
not that RDS replays the right transactions.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from leanstack import __main__ as cli
from leanstack.db_restore import (
    DATABASE_URN,
    RestoreError,
    check_window,
    kept_identifier,
    main,
    parse_to,
    restored_identifier,
)
from leanstack.mocks import StackRun
from leanstack.resource_facts import FACTS
from tests.conftest import SHIPPED

REGION = "us-east-1"  # the shipped prod stack's
IDENT = "leanstack-prod"
NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)
UTC = datetime.UTC


class Forbidden:
    """A boto3 session that must not be used: bad input is refused before any AWS call."""

    def client(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an AWS client was made for input that should have been refused")


def _run(*argv: str, **hooks: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    lines: list[str] = []
    with contextlib.redirect_stderr(err):
        code = main(list(argv), repo=SHIPPED, say=lines.append, **hooks)
    out.write("\n".join(lines))
    return code, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------- --to, before any AWS call


def test_help_names_the_to_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["db", "restore", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "--to TIME" in text and "--swap" in text and "YYYY-MM-DD HH:MM" in text


@pytest.mark.parametrize(
    "text", ["2026-12-06", "yesterday", "2026-12-06T10:00", "2026-13-01 10:00", "06/12/2026 10:00"]
)
def test_a_malformed_time_is_one_line_exit_2_and_no_aws_call(text: str) -> None:
    code, _out, err = _run("restore", "prod", "--to", text, session=Forbidden())
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"leanstack: --to: got {text!r}; expected a UTC time")


def test_both_formats_parse_as_utc() -> None:
    assert parse_to("2026-12-06 10:05") == datetime.datetime(2026, 12, 6, 10, 5, tzinfo=UTC)
    assert parse_to("2026-12-06 10:05:30") == datetime.datetime(2026, 12, 6, 10, 5, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("when", "words"),
    [
        (NOW + datetime.timedelta(minutes=1), "is in the future"),
        (NOW - datetime.timedelta(minutes=2), "after the latest restorable time"),
        (NOW - datetime.timedelta(days=15), "before the earliest restorable time"),
    ],
)
def test_the_window_refuses_future_too_recent_and_too_old(when: datetime.datetime, words: str) -> None:
    earliest, latest = NOW - datetime.timedelta(days=14), NOW - datetime.timedelta(minutes=5)
    with pytest.raises(RestoreError) as error:
        check_window(when, NOW, earliest, latest)
    assert error.value.code == 2 and words in str(error.value)
    assert "the restore window is 2026-11-22 12:00:00 to 2026-12-06 11:55:00 UTC" in str(error.value)
    check_window(NOW - datetime.timedelta(days=1), NOW, earliest, latest)  # inside: no error


def test_names_fit_rds_limits() -> None:
    when = datetime.datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
    assert restored_identifier(IDENT, when) == "leanstack-prod-pitr-202612060930"
    assert kept_identifier(IDENT, NOW) == "leanstack-prod-before-202612061200"
    long = "a" * 63
    assert len(restored_identifier(long, when)) == 63 and len(kept_identifier(long, NOW)) <= 63


def test_an_unknown_stack_is_exit_2() -> None:
    code, _out, err = _run("restore", "nope", "--to", "2026-12-06 10:00", session=Forbidden())
    assert code == 2 and err.count("\n") == 1


# --------------------------------------------------------------------------- against moto


@pytest.fixture(scope="module")
def plan_inputs(prod: StackRun) -> dict[str, Any]:
    """The prod plan's database instance: moto's instance is made from these, as `pulumi up` would."""
    return dict(prod.named("database-instance").inputs)


@pytest.fixture
def aws(plan_inputs: dict[str, Any]) -> Iterator[Any]:
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_SESSION_TOKEN="testing")
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        ec2, rds = session.client("ec2"), session.client("rds")
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{n}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"][
                "SubnetId"
            ]
            for n, z in ((2, "a"), (3, "b"))
        ]
        group = ec2.create_security_group(GroupName=f"{IDENT}-db", Description="db", VpcId=vpc)["GroupId"]
        i = plan_inputs
        rds.create_db_subnet_group(
            DBSubnetGroupName=i["dbSubnetGroupName"], DBSubnetGroupDescription="private", SubnetIds=subnets
        )
        rds.create_db_parameter_group(
            DBParameterGroupName=i["parameterGroupName"], DBParameterGroupFamily="postgres17", Description="tls"
        )
        rds.create_db_instance(
            DBInstanceIdentifier=i["identifier"],
            Engine=i["engine"],
            DBInstanceClass=i["instanceClass"],
            AllocatedStorage=int(i["allocatedStorage"]),
            StorageType=i["storageType"],
            DBName=i["dbName"],
            MasterUsername=i["username"],
            ManageMasterUserPassword=True,
            DBSubnetGroupName=i["dbSubnetGroupName"],
            DBParameterGroupName=i["parameterGroupName"],
            VpcSecurityGroupIds=[group],
            StorageEncrypted=True,
            MultiAZ=i["multiAz"],
            DeletionProtection=True,
            BackupRetentionPeriod=int(i["backupRetentionPeriod"]),
        )
        # An instance created weeks ago, so the restore window reaches back the retention period.
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.rds.models import rds_backends

        database = rds_backends[DEFAULT_ACCOUNT_ID][REGION].databases[i["identifier"]]
        database.instance_create_time = datetime.datetime(2026, 11, 1, tzinfo=UTC)
        yield session


class HostOps:
    def __init__(self, fail: str = "") -> None:
        self.calls: list[list[str]] = []
        self.fail = fail

    def __call__(self, argv: list[str]) -> int:
        self.calls.append(argv)
        return 1 if self.fail and argv[0] == self.fail else 0


def _instances(session: Any) -> dict[str, dict[str, Any]]:
    return {d["DBInstanceIdentifier"]: d for d in session.client("rds").describe_db_instances()["DBInstances"]}


def test_restore_places_the_copy_next_to_the_database_and_says_how_to_look(aws: Any) -> None:
    hosts = HostOps()
    code, out, err = _run("restore", "prod", "--to", "2026-12-06 09:30", session=aws, host_ops=hosts, now=NOW, delay=0)
    assert (code, err) == (0, "")
    found = _instances(aws)
    source, copy = found[IDENT], found["leanstack-prod-pitr-202612060930"]
    assert copy["DBSubnetGroup"]["DBSubnetGroupName"] == source["DBSubnetGroup"]["DBSubnetGroupName"]
    assert [g["DBParameterGroupName"] for g in copy["DBParameterGroups"]] == ["leanstack-prod-pg17"]
    assert copy["VpcSecurityGroups"] == source["VpcSecurityGroups"]
    assert copy["StorageEncrypted"] is True and not copy.get("PubliclyAccessible")
    assert copy["DBInstanceClass"] == source["DBInstanceClass"]
    tags = {t["Key"]: t["Value"] for t in copy["TagList"]}
    assert tags["leanstack:restored-from"] == IDENT and tags["leanstack:restore-time"] == "2026-12-06 09:30:00"
    # The production database is untouched, and nothing ran on the hosts.
    assert source["DeletionProtection"] is True and hosts.calls == []
    assert copy["Endpoint"]["Address"] in out and "python -m leanstack run prod" in out
    assert "delete-db-instance" in out and "--swap" in out


def test_swap_renames_behind_the_maintenance_page_and_prints_undo_and_adoption(aws: Any) -> None:
    hosts = HostOps()
    code, out, err = _run(
        "restore", "prod", "--to", "2026-12-06 09:30", "--swap", session=aws, host_ops=hosts, now=NOW, delay=0
    )
    assert (code, err) == (0, "")
    assert hosts.calls == [
        ["maintenance", "prod", "on", "--message", "Restoring data; back in a few minutes"],
        ["restart", "prod"],
        ["maintenance", "prod", "off"],
    ]
    found = _instances(aws)
    assert set(found) == {IDENT, "leanstack-prod-before-202612061200"}
    serving, kept = found[IDENT], found["leanstack-prod-before-202612061200"]
    assert {t["Key"]: t["Value"] for t in serving["TagList"]}["leanstack:restored-from"] == IDENT
    assert kept["DeletionProtection"] is True and serving["DeletionProtection"] is True
    assert "--new-db-instance-identifier leanstack-prod-pitr-202612060930" in out  # the undo
    assert f"pulumi refresh --stack prod --target '{DATABASE_URN.format(stack='prod')}'" in out


def test_after_the_swap_pulumi_finds_its_database_by_id_with_nothing_that_replaces_it(
    aws: Any, plan_inputs: dict[str, Any], prod: StackRun
) -> None:
    """The adoption step: the swapped-in instance matches every input whose change would replace it."""
    assert _run("restore", "prod", "--to", "2026-12-06 09:30", "--swap", session=aws, host_ops=HostOps(), now=NOW,
                delay=0)[0] == 0  # fmt: skip
    serving = _instances(aws)[IDENT]
    # The printed URN is the plan's database resource, and its id is the identifier the swap gave the copy.
    instance = prod.named("database-instance")
    assert instance.urn == DATABASE_URN.format(stack="prod")
    described = {
        "identifier": serving["DBInstanceIdentifier"],
        "engine": serving["Engine"],
        "dbName": serving["DBName"],
        "username": serving["MasterUsername"],
        "storageEncrypted": serving["StorageEncrypted"],
        "dbSubnetGroupName": serving["DBSubnetGroup"]["DBSubnetGroupName"],
    }
    replacing = FACTS["aws:rds/instance:Instance"].replaces
    for key, value in described.items():
        assert key in replacing
        assert plan_inputs.get(key, value) == value, f"{key}: the plan says {plan_inputs.get(key)!r}, RDS {value!r}"
    # Declared but not described by this check: nothing else in the plan's inputs replaces the instance.
    unchecked = (replacing & set(plan_inputs)) - set(described)
    assert unchecked == set(), unchecked


def test_a_failed_maintenance_page_switches_nothing(aws: Any) -> None:
    code, _out, err = _run(
        "restore", "prod", "--to", "2026-12-06 09:30", "--swap", session=aws, host_ops=HostOps("maintenance"),
        now=NOW, delay=0,
    )  # fmt: skip
    assert code == 1 and "nothing switched" in err
    assert set(_instances(aws)) == {IDENT, "leanstack-prod-pitr-202612060930"}


def test_the_window_comes_from_rds(aws: Any) -> None:
    # moto's latest restorable time is its own clock's now: a time after it is refused.
    future = datetime.datetime.now(UTC) + datetime.timedelta(hours=2)
    code, _out, err = _run(
        "restore", "prod", "--to", future.strftime("%Y-%m-%d %H:%M"), session=aws, host_ops=HostOps(),
        now=future + datetime.timedelta(hours=1), delay=0,
    )  # fmt: skip
    assert code == 2 and "after the latest restorable time" in err
    assert set(_instances(aws)) == {IDENT}


def test_the_request_names_every_placement_the_source_has() -> None:
    from leanstack.db_restore import restore_request

    source = {
        "DBInstanceIdentifier": IDENT,
        "DBInstanceClass": "db.t4g.small",
        "DBSubnetGroup": {"DBSubnetGroupName": IDENT},
        "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-1"}],
        "DBParameterGroups": [{"DBParameterGroupName": "leanstack-prod-pg17"}],
        "StorageType": "gp3",
        "CACertificateIdentifier": "rds-ca-ecc384-g1",
        "MultiAZ": True,
    }
    request = restore_request(source, "copy", NOW, "prod")
    assert request["CACertificateIdentifier"] == "rds-ca-ecc384-g1"
    assert (request["DBSubnetGroupName"], request["VpcSecurityGroupIds"]) == (IDENT, ["sg-1"])
    assert request["DBParameterGroupName"] == "leanstack-prod-pg17" and request["MultiAZ"] is True
    assert request["PubliclyAccessible"] is False and request["RestoreTime"] == NOW
    json.dumps({k: v for k, v in request.items() if k != "RestoreTime"})  # plain data


def test_adoption_replaces_nothing_and_moves_the_hosts_to_the_new_secret(
    prod: StackRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the printed `pulumi up` after the refresh does: RDS manages the copy's password again, under a
    new secret; the plan of that state changes the host's grant, the rotation rule and the SSM parameter the
    hosts read the database's location from, in place, and replaces nothing."""
    from leanstack import mocks
    from leanstack.diff import diff_plans
    from leanstack.plan import build_plan
    from tests.conftest import read_stack_config

    original = mocks.LeanMocks.new_resource

    def adopted(self: mocks.LeanMocks, args: Any) -> tuple[str | None, dict[str, Any]]:
        rid, state = original(self, args)
        if args.typ == "aws:rds/instance:Instance" and not args.inputs.get("replicateSourceDb"):
            secret = dict(state["masterUserSecrets"][0])
            secret["secretArn"] += "-adopted"
            state["masterUserSecrets"] = [secret]
        return rid, state

    monkeypatch.setattr(mocks.LeanMocks, "new_resource", adopted)
    after = mocks.run_program("prod", read_stack_config("prod"))
    result = diff_plans("prod", build_plan(prod), build_plan(after))
    changed = {c["name"]: c for c in result["changed"]}
    assert not [name for name in changed if name.startswith("database")], sorted(changed)
    # Nothing is replaced: the hosts read where the database is (its secret's ARN too) from an SSM
    # parameter, which changes in place, and the host role's grant and the rotation rule follow.
    assert [name for name, c in changed.items() if c["replaced"]] == []
    assert sorted(changed) == ["app-password-rotated", "host-permissions"], sorted(changed)
    # A secret output in the plan (the diff cannot show its change); read from the run itself.
    location = json.loads(after.named("host-database-location").inputs["value"]["value"])
    assert (
        location["secret_arn"].endswith("-adopted")
        and location["host"] == prod.named("database-instance").outputs["address"]
    )
