"""The branches where a machine is gone: the host, or the database instance itself."""

from __future__ import annotations

from leanstack.config import StackConfig
from leanstack.runbook.facts import (
    BACKUP_COMMAND,
    DRILL_COMMAND,
    HOST,
    LAPTOP,
    RecoveryFacts,
    real_urn,
)
from leanstack.runbook.steps import (
    BEFORE_PULUMI_LINK,
    RESTORE_STARTED,
    Branch,
    Step,
    health_check,
    load_branch,
    shell_step,
)

# The sources of the instance-deleted branch; a conditional step names the one it belongs to.
SNAPSHOT, AUTOMATED, FROM_DUMP = "from the final snapshot", "from the automated backups", "from the off-site dump"


def host_gone(f: RecoveryFacts, config: StackConfig) -> Branch:
    """The host terminated or broken: the groups replace it, or `pulumi up` rebuilds it; no data is lost."""
    return load_branch("host_gone.yaml.j2", f, config)


def instance_deleted(f: RecoveryFacts, config: StackConfig, s: str) -> Branch:
    """The RDS instance deleted: restore it under the same identifier, or fill an empty one from the dump."""
    region, ident = f.region, f.database_identifier
    steps = (
        *_confirm_and_choose(f, s),
        *((_restore_final(f),) if f.final_snapshot else ()),
        _restore_automated(f),
        _fill_from_dump(f, s),
        _wait_available(f),
        *_free_snapshot_name(f),
        _adopt(f, s),
        *_restart_and_prove(f, config),
    )
    return Branch(
        "Instance deleted",
        f"`aws rds describe-db-instances --region {region} --db-instance-identifier {ident}` answers "
        "DBInstanceNotFound; the app cannot connect.",
        "Nothing from the final snapshot; minutes from the retained automated backups; up to a backup interval "
        "from the off-site dump.",
        steps,
        undo=("The old instance is gone; nothing to switch back.",),
    )


def _restored(f: RecoveryFacts) -> str:
    """The paths that restore the instance itself (rather than fill an empty one from the dump)."""
    return f"{SNAPSHOT} or {AUTOMATED}" if f.final_snapshot else AUTOMATED


def _restore_final(f: RecoveryFacts) -> Step:
    """Everything up to the deletion, from the final snapshot."""
    region, ident = f.region, f.database_identifier
    return Step(
        "Restore the final snapshot (everything up to the deletion) under the same identifier, with the "
        "stack's settings. This API takes no `--max-allocated-storage`: the storage ceiling "
        f"({f.max_allocated_storage} GB) comes back with the adopting `pulumi up` (an update the preview "
        "guide expects).",
        LAPTOP,
        (
            f.find_security_group,
            f"aws rds restore-db-instance-from-db-snapshot --region {region} \\",
            f"  --db-snapshot-identifier {f.final_snapshot} --db-instance-identifier {ident} \\",
            *(f"  {line} \\" for line in f.restore_options(point_in_time=False)[:-1]),
            f"  {f.restore_options(point_in_time=False)[-1]}",
        ),
        check=RESTORE_STARTED,
        only=SNAPSHOT,
    )


def _restore_automated(f: RecoveryFacts) -> Step:
    """Minutes lost, from the retained automated backups."""
    region, ident = f.region, f.database_identifier
    return Step(
        "Restore the retained automated backups (for an earlier minute than the latest, replace "
        "`--use-latest-restorable-time` with `--restore-time 2026-01-31T09:15:00Z`). A deleted instance has no "
        "identifier to name, so the restore names its resource id.",
        LAPTOP,
        (
            f.find_security_group,
            f"DBI=$(aws rds describe-db-instance-automated-backups --region {region} --db-instance-identifier {ident} "
            "--query 'DBInstanceAutomatedBackups[?Status==`retained`].DbiResourceId | [0]' --output text)",
            f"aws rds restore-db-instance-to-point-in-time --region {region} \\",
            f'  --source-dbi-resource-id "$DBI" --target-db-instance-identifier {ident} \\',
            "  --use-latest-restorable-time \\",
            *(f"  {line} \\" for line in f.restore_options(point_in_time=True)[:-1]),
            f"  {f.restore_options(point_in_time=True)[-1]}",
        ),
        check=RESTORE_STARTED,
        only=AUTOMATED,
    )


def _confirm_and_choose(f: RecoveryFacts, s: str) -> tuple[Step, ...]:
    """Confirm the instance is gone, write its old endpoint down, and have the owner pick the source."""
    region, ident = f.region, f.database_identifier
    default = "the final snapshot" if f.final_snapshot else "the retained automated backups"
    return (
        Step(
            "Confirm it is gone, see what is left (retained automated backups: point-in-time recovery up to "
            "minutes before the deletion; the final snapshot), and write down the old endpoint from the state "
            f"(OLD below; {BEFORE_PULUMI_LINK}).",
            LAPTOP,
            (
                f"aws rds describe-db-instances --region {region} --db-instance-identifier {ident}   "
                "# DBInstanceNotFound: gone",
                f"aws rds describe-db-instance-automated-backups --region {region} --db-instance-identifier {ident} "
                "--query 'DBInstanceAutomatedBackups[].[DbiResourceId,Status,RestoreWindow.LatestTime]' "
                "--output text",
                *(
                    (
                        f"aws rds describe-db-snapshots --region {region} --db-snapshot-identifier "
                        f"{f.final_snapshot} --query 'DBSnapshots[].[Status,SnapshotCreateTime]' --output text",
                    )
                    if f.final_snapshot
                    else ()
                ),
                f"pulumi stack output databaseAddress{s}   # OLD",
            ),
            check="the first command answers DBInstanceNotFound, and you have OLD written down.",
        ),
        Step(
            "The owner picks the source: "
            + ("the final snapshot if it exists (nothing lost), else " if f.final_snapshot else "")
            + "the retained automated backups (minutes lost), else the off-site dump (up to a backup interval "
            f"lost). If the owner cannot be reached within a quarter of the RTO, take {default} (the "
            "first one step 1 listed).",
            check="the source and who chose it are in the incident notes.",
        ),
    )


def _fill_from_dump(f: RecoveryFacts, s: str) -> Step:
    """No snapshot or backup left: an empty instance, filled from the off-site dump."""
    region, ident = f.region, f.database_identifier
    return Step(
        "Build an empty instance under the same identifier and fill it from the dump: `refresh` drops the "
        "deleted instance from the state, `up` creates it (the preview shows `+ database-instance create`: "
        "expected here, and nothing replaced), then run [App database dropped](#app-database-dropped)'s steps "
        "on the host (restore the newest dump, switch to it) and continue here with the steps that apply "
        "(freeing the final snapshot's name, the restart) "
        f"({BEFORE_PULUMI_LINK}).",
        LAPTOP,
        (f"pulumi refresh{s} --yes", f"pulumi preview --diff{s}", f"pulumi up{s}"),
        preview=(
            "+ aws:rds/instance:Instance     database-instance   create    fine: the empty instance",
            "~ aws:ssm/parameter:Parameter   ...                 update    fine: the new secret ARN",
            "+-aws:ec2/instance:Instance     host-instance       replace   STOP: no host is replaced here",
        ),
        check="`up` ends without an error and the instance is available:",
        check_commands=(
            f"aws rds describe-db-instances --region {region} --db-instance-identifier {ident} "
            "--query 'DBInstances[0].DBInstanceStatus' --output text   # available",
        ),
        only=FROM_DUMP,
    )


def _wait_available(f: RecoveryFacts) -> Step:
    """The restored instance comes up under the old identifier and endpoint."""
    region, ident = f.region, f.database_identifier
    return Step(
        "Wait until it is available (10-30 minutes).",
        LAPTOP,
        (f"aws rds wait db-instance-available --region {region} --db-instance-identifier {ident}",),
        check="the endpoint it prints is OLD from step 1 (same identifier), so the host needs no change of address:",
        check_commands=(
            f"aws rds describe-db-instances --region {region} --db-instance-identifier {ident} "
            "--query 'DBInstances[0].[DBInstanceStatus,Endpoint.Address]' --output text",
        ),
        only=_restored(f),
    )


def _free_snapshot_name(f: RecoveryFacts) -> tuple[Step, ...]:
    """The final snapshot's name must be free before the instance can be deleted (and snapshotted) again."""
    if not f.final_snapshot:
        return ()
    region, ident = f.region, f.database_identifier
    return (
        Step(
            f"Free the name `{f.final_snapshot}` now: RDS takes the final snapshot under that name, so "
            "until it is free a second deletion of this instance could take none. Copy it to a dated "
            "name (kept until the restored instance has passed a drill), then delete the original.",
            LAPTOP,
            (
                f"COPY={f.final_snapshot}-$(date -u +%Y%m%d)",
                f"aws rds copy-db-snapshot --region {region} --source-db-snapshot-identifier "
                f'{f.final_snapshot} --target-db-snapshot-identifier "$COPY"',
                f'aws rds wait db-snapshot-available --region {region} --db-snapshot-identifier "$COPY"',
                f"aws rds delete-db-snapshot --region {region} --db-snapshot-identifier {f.final_snapshot}",
            ),
            check=f"the dated copy is listed and `{f.final_snapshot}` is not:",
            check_commands=(
                f"aws rds describe-db-snapshots --region {region} --db-instance-identifier {ident} "
                "--snapshot-type manual --query 'DBSnapshots[].[DBSnapshotIdentifier,Status]' --output text",
            ),
            only=f"when step 1 listed `{f.final_snapshot}`",
        ),
    )


def _adopt(f: RecoveryFacts, s: str) -> Step:
    """Pulumi reads the restored instance in place of the deleted one; nothing is replaced."""
    ident = f.database_identifier
    component = real_urn(f.database_urn)
    provider = f"--provider 'aws={real_urn(f.provider_urn)}' " if f.provider_urn else ""
    return Step(
        "Bring it back under Pulumi without replacing anything. The restored instance has the old identifier, "
        "which is how Pulumi finds an RDS instance: a refresh reads it in its place. If the refresh dropped "
        "`database-instance` from the state instead, adopt it by identifier with `pulumi import`. Nothing "
        f"changes in the stack file ({BEFORE_PULUMI_LINK}).",
        LAPTOP,
        (
            f"pulumi refresh{s} --yes",
            f"pulumi stack{s} --show-urns | grep database-instance || \\",
            f"  pulumi import aws:rds/instance:Instance database-instance {ident}{s} \\",
            f"    --parent 'database={component}' {provider}--protect",
            f"pulumi preview --diff{s}",
            f"pulumi up{s}",
        ),
        check="no host is replaced: the preview updates `database-instance` in place (settings the restore "
        "could not set) and the parameter that holds the database's secret ARN (the restored instance has a "
        "new secret); nothing else. If a replace appears, stop and ask. `up` ends without an error.",
        preview=(
            "~ aws:rds/instance:Instance     database-instance   update    fine: settings put back",
            "~ aws:ssm/parameter:Parameter   ...                 update    fine: the new secret ARN",
            "+-aws:ec2/instance:Instance     host-instance       replace   STOP: no host is replaced here",
            "+-aws:rds/instance:Instance     database-instance   replace   STOP: a new, empty database",
            "+ aws:rds/instance:Instance     database-instance   create    STOP: import it first",
        ),
        only=_restored(f),
    )


def _restart_and_prove(f: RecoveryFacts, config: StackConfig) -> tuple[Step, ...]:
    """The app reads the restored instance's new secret on restart; a backup and a drill prove the data."""
    stack, region = config.stack, config.region
    return (
        Step(
            "The site stays down until the app reads the restored instance's new secret: `pulumi up` wrote its ARN "
            "where the host reads it at each start, so restart the app (blue/green, one host at a time).",
            LAPTOP,
            (f"python -m leanstack restart {stack} --region {region}",),
            check="the site answers 200:",
            check_commands=health_check(f),
        ),
        shell_step(f),
        Step(
            "Prove the restored data is readable and a backup of it exists.",
            HOST,
            (f"sudo systemctl start {BACKUP_COMMAND}", f"sudo {DRILL_COMMAND}"),
            check="the backup's last line names the dump it wrote, and the drill ends `passed` with the restore time:",
            check_commands=(f"sudo journalctl -u {BACKUP_COMMAND} -n 5 --no-pager",),
        ),
    )
