"""`python -m leanstack db restore STACK --to "YYYY-MM-DD HH:MM[:SS]" [--swap]`: RDS point-in-time restore.

Restores the stack's RDS instance as it was at `--to` (UTC) into a new instance next to it,
`<identifier>-pitr-<YYYYMMDDHHMM>`: the same subnet group, parameter group (TLS forced),
security group (only the hosts reach it), class, storage type and CA certificate; encrypted
with the source's key (RDS keeps a point-in-time copy's encryption; checked afterwards). Its
master password is set to the stack secret's current value, so the app's credentials open it.
It waits until the copy is available and prints how to look at it and how to copy rows back.

With `--swap`, the app is switched to the copy: the maintenance page goes up on every host,
the current instance is renamed `<identifier>-before-<YYYYMMDDHHMM>` (deletion protection on)
and the copy takes the stack's identifier, so its endpoint is the one the hosts already use
(an RDS endpoint is named after the identifier); the app restarts, the page comes down, and
the undo (the two renames reversed) is printed. Pulumi adopts the copy by id (the identifier):
`pulumi refresh` of the database, then `pulumi up`, printed with what that changes.

`--to` must be a UTC time in the restore window: after the earliest restorable time (about
`database.backupRetentionDays` ago) and not after the latest (RDS lags real time by about 5
minutes); anything else is one line and exit 2, before any AWS call that changes anything.

Time (AWS's figures, not measured here): a restore takes about 10-30 minutes for a small
database (longer the more transaction log it replays); each rename a few minutes. Cost: the
copy bills as a second instance of the same class and storage while it exists (db.t4g.small
Single-AZ about $0.032 an hour + 20 GB gp3 $2.30 a month in us-east-1); after a swap the kept
old instance does, until you delete it.

AWS permissions: rds:DescribeDBInstances, rds:DescribeDBInstanceAutomatedBackups,
rds:RestoreDBInstanceToPointInTime, rds:ModifyDBInstance, rds:AddTagsToResource,
secretsmanager:GetSecretValue on the stack's database secret; `--swap` also what
`python -m leanstack maintenance` and `restart` need (see leanstack.operate).

Exit codes: 0 done; 1 AWS refused or a step failed (the line says what is left as it was);
2 bad input.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leanstack.config import ConfigError, load_stack_config, stack_prefix
from leanstack.config.resource_types import RDS_INSTANCE
from leanstack.mocks import REPO, StackFileError, read_stack_config

EXIT_FAILED, EXIT_USAGE = 1, 2
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")
TIME_ALLOWED = 'a UTC time "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS"'
RESTORED_SUFFIX = "-pitr-"
KEPT_SUFFIX = "-before-"
# RDS identifiers are at most 63 characters.
MAX_IDENTIFIER = 63
# The Pulumi resource the stack's database is (components/database.py: Database("database") > "instance").
DATABASE_URN = "urn:pulumi:{stack}::leanstack::leanstack:index:Database$" + RDS_INSTANCE.token + "::database-instance"


class RestoreError(ValueError):
    """A refusal or a failed step: one line, and the exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Target:
    """Where the stack's database is: its region and RDS identifier, from the stack file."""

    stack: str
    region: str
    identifier: str


def stack_target(stack: str, repo: Path = REPO) -> Target:
    try:
        cfg = load_stack_config(read_stack_config(stack, repo), stack)
    except (ConfigError, StackFileError) as error:
        raise RestoreError(str(error), EXIT_USAGE) from None
    return Target(stack, cfg.region, cfg.database.identifier or stack_prefix(stack))


def parse_to(text: str) -> datetime.datetime:
    """`--to` as an aware UTC time; a wrong format is a usage error."""
    for layout in TIME_FORMATS:
        try:
            return datetime.datetime.strptime(text.strip(), layout).replace(tzinfo=datetime.UTC)
        except ValueError:
            continue
    raise RestoreError(f"--to: got {text!r}; expected {TIME_ALLOWED}", EXIT_USAGE)


def check_window(
    when: datetime.datetime, now: datetime.datetime, earliest: datetime.datetime, latest: datetime.datetime
) -> None:
    """Refuse a time RDS cannot restore to, naming the window."""
    window = f"the restore window is {_show(earliest)} to {_show(latest)} UTC"
    if when > now:
        raise RestoreError(f"--to: {_show(when)} UTC is in the future; {window}", EXIT_USAGE)
    if when > latest:
        raise RestoreError(f"--to: {_show(when)} UTC is after the latest restorable time; {window}", EXIT_USAGE)
    if when < earliest:
        raise RestoreError(
            f"--to: {_show(when)} UTC is before the earliest restorable time (database.backupRetentionDays); {window}",
            EXIT_USAGE,
        )


def _show(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _named(identifier: str, suffix: str, moment: datetime.datetime) -> str:
    tail = f"{suffix}{moment.astimezone(datetime.UTC):%Y%m%d%H%M}"
    return identifier[: MAX_IDENTIFIER - len(tail)].rstrip("-") + tail


def restored_identifier(identifier: str, when: datetime.datetime) -> str:
    """The copy's name: <identifier>-pitr-<restore time>."""
    return _named(identifier, RESTORED_SUFFIX, when)


def kept_identifier(identifier: str, now: datetime.datetime) -> str:
    """The swapped-out instance's name: <identifier>-before-<swap time>."""
    return _named(identifier, KEPT_SUFFIX, now)


def restore_window(
    rds: Any, source: dict[str, Any], now: datetime.datetime
) -> tuple[datetime.datetime, datetime.datetime]:
    """(earliest, latest) restorable time: AWS's restore window, else the retention period back from now."""
    latest = source.get("LatestRestorableTime") or now
    earliest: datetime.datetime | None = None
    backups = rds.describe_db_instance_automated_backups(DBInstanceIdentifier=source["DBInstanceIdentifier"])
    for backup in backups.get("DBInstanceAutomatedBackups", []):
        found = (backup.get("RestoreWindow") or {}).get("EarliestTime")
        if found is not None:
            earliest = found if earliest is None else min(earliest, found)
    if earliest is None:
        created = source.get("InstanceCreateTime") or now
        earliest = max(created, now - datetime.timedelta(days=int(source.get("BackupRetentionPeriod") or 0)))
    return earliest, latest


def restore_request(source: dict[str, Any], target: str, when: datetime.datetime, stack: str) -> dict[str, Any]:
    """The RestoreDBInstanceToPointInTime request: the copy placed and guarded as the source is."""
    return {
        "SourceDBInstanceIdentifier": source["DBInstanceIdentifier"],
        "TargetDBInstanceIdentifier": target,
        "RestoreTime": when,
        "DBInstanceClass": source["DBInstanceClass"],
        "DBSubnetGroupName": source["DBSubnetGroup"]["DBSubnetGroupName"],
        "VpcSecurityGroupIds": [group["VpcSecurityGroupId"] for group in source.get("VpcSecurityGroups", [])],
        "DBParameterGroupName": source["DBParameterGroups"][0]["DBParameterGroupName"],
        "StorageType": source.get("StorageType", "gp3"),
        "CACertificateIdentifier": source.get("CACertificateIdentifier") or "rds-ca-rsa2048-g1",
        # A swap makes it the stack's database: then it gets the source's standby (a longer restore).
        "MultiAZ": bool(source.get("MultiAZ")),
        "PubliclyAccessible": False,
        "CopyTagsToSnapshot": True,
        "DeletionProtection": False,
        "Tags": [
            {"Key": "Stack", "Value": stack},
            {"Key": "leanstack:restored-from", "Value": source["DBInstanceIdentifier"]},
            {"Key": "leanstack:restore-time", "Value": _show(when)},
        ],
    }


def _describe(rds: Any, identifier: str) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    try:
        found: dict[str, Any] = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    except ClientError as error:
        if "NotFound" in str(error.response.get("Error", {}).get("Code", "")):
            raise RestoreError(f"no RDS instance {identifier!r} in this account and region", EXIT_USAGE) from None
        raise
    return found


def _wait(rds: Any, identifier: str, delay: float) -> dict[str, Any]:
    waiter = rds.get_waiter("db_instance_available")
    # 120 x 30 s: an hour, enough for a restore that replays a day of transaction log.
    waiter.wait(DBInstanceIdentifier=identifier, WaiterConfig={"Delay": delay, "MaxAttempts": 120})
    return _describe(rds, identifier)


def _rename(rds: Any, old: str, new: str, protect: bool, delay: float) -> dict[str, Any]:
    rds.modify_db_instance(
        DBInstanceIdentifier=old, NewDBInstanceIdentifier=new, DeletionProtection=protect, ApplyImmediately=True
    )
    return _wait(rds, new, delay)


def look_text(target: Target, restored: dict[str, Any]) -> list[str]:
    endpoint = restored["Endpoint"]["Address"]
    stack = target.stack
    return [
        f"The copy {restored['DBInstanceIdentifier']} is available: {endpoint}:5432 (TLS required, only the hosts "
        "reach it), the same user and password as the stack's database.",
        "Look at it from a host (the app's image must have psql; else open a shell with --interactive):",
        f'  python -m leanstack run {stack} -- sh -c \'PGPASSWORD="$DATABASE_PASSWORD" psql '
        f'"host={endpoint} sslmode=require user=$DATABASE_USER dbname=$DATABASE_NAME" '
        '-c "SELECT count(*) FROM <table>"\'',
        "Copy rows back without a swap (on a host, the same way):",
        f'  pg_dump "host={endpoint} sslmode=require ..." --data-only -t <table> | psql "host=$DATABASE_HOST ..."',
        f'Or switch the app to it: python -m leanstack db restore {stack} --to "<the same time>" --swap '
        "(restores again), or the renames below by hand.",
        f"Delete it when done (it bills as a second instance): aws rds delete-db-instance --region {target.region} "
        f"--db-instance-identifier {restored['DBInstanceIdentifier']} --skip-final-snapshot",
    ]


def adoption_text(target: Target, kept: str) -> list[str]:
    """How Pulumi takes over the swapped-in instance: by id, which the rename kept."""
    urn = DATABASE_URN.format(stack=target.stack)
    return [
        "Pulumi adopts it by id: the stack's database resource's id is the identifier "
        f"{target.identifier}, which the copy now has. From the repository:",
        f"  pulumi refresh --stack {target.stack} --target '{urn}' --yes",
        f"  pulumi preview --stack {target.stack} --diff",
        "The preview must show the database UPDATED in place, never replaced: RDS manages its password again "
        "(a new secret), and the hosts' grant, the rotation rule and the SSM parameter the hosts read the "
        "database's location from follow in place; nothing is replaced. Then `pulumi up`; the hosts read the new "
        f"secret at the app's next start (python -m leanstack restart {target.stack}).",
        "Do it within 7 days: until then the app uses the stack's old secret, which RDS rotates on the kept "
        f"instance {kept}, not on this one.",
    ]


def undo_text(target: Target, kept: str, restored: str) -> list[str]:
    region, stack, ident = target.region, target.stack, target.identifier
    return [
        "Undo (the data written since the swap is then only in the copy):",
        f"  python -m leanstack maintenance {stack} on",
        f"  aws rds modify-db-instance --region {region} --db-instance-identifier {ident} "
        f"--new-db-instance-identifier {restored} --apply-immediately",
        f"  aws rds wait db-instance-available --region {region} --db-instance-identifier {restored}",
        f"  aws rds modify-db-instance --region {region} --db-instance-identifier {kept} "
        f"--new-db-instance-identifier {ident} --apply-immediately",
        f"  aws rds wait db-instance-available --region {region} --db-instance-identifier {ident}",
        f"  python -m leanstack restart {stack} && python -m leanstack maintenance {stack} off",
        f"When sure, delete the kept instance (it bills until then): turn its deletion protection off, then "
        f"aws rds delete-db-instance --region {region} --db-instance-identifier {kept} --final-db-snapshot-identifier "
        f"{kept}-final",
    ]


HostOps = Callable[[list[str]], int]


def _host_ops(argv: list[str]) -> int:
    from leanstack import operate

    return operate.main(argv)


def restore(
    args: argparse.Namespace,
    *,
    session: Any = None,
    host_ops: HostOps = _host_ops,
    now: datetime.datetime | None = None,
    repo: Path = REPO,
    delay: float = 30,
    say: Callable[[str], None] = print,
) -> int:
    import boto3

    when = parse_to(args.to)
    target = stack_target(args.stack, repo)
    session = session or boto3.session.Session()
    rds = session.client("rds", region_name=target.region)
    secrets = session.client("secretsmanager", region_name=target.region)
    now = now or datetime.datetime.now(datetime.UTC)
    source = _describe(rds, target.identifier)
    earliest, latest = restore_window(rds, source, now)
    check_window(when, now, earliest, latest)
    secret_arn = (source.get("MasterUserSecret") or {}).get("SecretArn")
    if not secret_arn:
        raise RestoreError(f"{target.identifier} has no RDS-managed secret; leanstack's databases all do", EXIT_USAGE)
    copy_name = restored_identifier(target.identifier, when)
    say(f"{args.stack}: restoring {target.identifier} as of {_show(when)} UTC into {copy_name} (10-30 minutes)")
    rds.restore_db_instance_to_point_in_time(**restore_request(source, copy_name, when, args.stack))
    restored = _wait(rds, copy_name, delay)
    if bool(restored.get("StorageEncrypted")) != bool(source.get("StorageEncrypted")) or (
        restored.get("KmsKeyId") != source.get("KmsKeyId")
    ):
        raise RestoreError(f"{copy_name} is not encrypted as {target.identifier} is; delete it and report this")
    # The password as of the restore time may have been rotated since; the current one is what the app has.
    password = json.loads(secrets.get_secret_value(SecretId=secret_arn)["SecretString"])["password"]
    rds.modify_db_instance(DBInstanceIdentifier=copy_name, MasterUserPassword=password, ApplyImmediately=True)
    restored = _wait(rds, copy_name, delay)
    if not args.swap:
        for line in look_text(target, restored):
            say(line)
        return 0

    kept = kept_identifier(target.identifier, now)
    if host_ops(["maintenance", args.stack, "on", "--message", "Restoring data; back in a few minutes"]) != 0:
        raise RestoreError(f"maintenance on failed; nothing switched (the copy {copy_name} stays for a retry)")
    say(f"renaming {target.identifier} to {kept} (kept, deletion protection on), then {copy_name} to "
        f"{target.identifier} (a few minutes each)")  # fmt: skip
    _rename(rds, target.identifier, kept, protect=True, delay=delay)
    try:
        _rename(rds, copy_name, target.identifier, protect=bool(source.get("DeletionProtection")), delay=delay)
    except Exception:
        say(f"renaming {copy_name} failed: rename {kept} back to {target.identifier} to serve the old data again")
        raise
    if host_ops(["restart", args.stack]) != 0:
        raise RestoreError(
            f"the app did not restart on every host; the maintenance page stays up: python -m leanstack restart "
            f"{args.stack}, then maintenance {args.stack} off"
        )
    if host_ops(["maintenance", args.stack, "off"]) != 0:
        raise RestoreError(f"maintenance off failed: python -m leanstack maintenance {args.stack} off")
    say(f"{args.stack}: the app serves the data as of {_show(when)} UTC from {target.identifier}.")
    for line in [*undo_text(target, kept, copy_name), *adoption_text(target, kept)]:
        say(line)
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise RestoreError(f"db: {message}", EXIT_USAGE)


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="python -m leanstack db", description="the stack's database, from a laptop (AWS credentials)")
    actions = top.add_subparsers(dest="action", required=True, parser_class=_Parser)
    restore_ = actions.add_parser(
        "restore",
        help="restore RDS's point-in-time backup into a new instance next to the current one",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    restore_.add_argument("stack")
    restore_.add_argument("--to", required=True, metavar="TIME", help=f"the moment to restore to: {TIME_ALLOWED}")
    restore_.add_argument(
        "--swap", action="store_true", help="switch the app to the copy (maintenance page up), keeping the old one"
    )
    return top


def main(argv: Sequence[str], **hooks: Any) -> int:
    """`argv` starts after `db`; `hooks` are restore()'s keywords (tests pass moto sessions and fakes)."""
    from botocore.exceptions import BotoCoreError, ClientError, WaiterError

    try:
        args = parser().parse_args(list(argv))
        return restore(args, **hooks)
    except RestoreError as error:
        print(f"leanstack: {error}", file=sys.stderr)
        return error.code
    except (BotoCoreError, ClientError, WaiterError) as error:
        print(f"leanstack: db restore: {' '.join(str(error).split())}", file=sys.stderr)
        return EXIT_FAILED
