"""The branches where the data is damaged and the instance stands: rows deleted or corrupted, database dropped."""

from __future__ import annotations

from leanstack.config import StackConfig
from leanstack.host.agent.contract import stack_backup_prefix
from leanstack.runbook.facts import (
    HOST,
    LAPTOP,
    RESTORE_COMMAND,
    RecoveryFacts,
)
from leanstack.runbook.steps import BEFORE_PULUMI_LINK, Branch, Step, health_check, load_branch, shell_step

# What `python -m leanstack db restore` is: RDS point-in-time recovery into a new instance beside the current one.
DB_RESTORE = "python -m leanstack db restore"

# The paths of the rows-deleted branch; a conditional step names the one it belongs to.
COPY, SWAP, DUMP = "when you copy rows back", "when you swap the whole database", "when point-in-time is out"
SURE = "when you merged rows back and are sure of the merge"

# In the SSM session: root, the database's address and password in the environment, for psql.
PSQL_ENV = (
    "sudo -i",
    "set -a; . /etc/leanstack/backup.env; set +a   # names only, no secrets",
    'eval "$(leanstack-backup database-env)"   # where the database is now (no password)',
    'export PGPASSWORD=$(aws secretsmanager get-secret-value --region "$AWS_REGION" '
    '--secret-id "$DATABASE_SECRET_ARN" --query SecretString --output text '
    "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"password\"])')",
    'export PGPORT="$DATABASE_PORT" PGUSER="$DATABASE_USER" PGSSLMODE=require',
)


def merge_commands(db: str) -> tuple[str, ...]:
    """Load /tmp/rows.csv into a side table of the live database, shred it, then merge in one transaction."""
    return (
        f'psql -h "$DATABASE_HOST" -d {db} -v ON_ERROR_STOP=1 '
        '-c "CREATE TABLE restored_rows (LIKE TABLE INCLUDING ALL)" '
        "-c \"\\copy restored_rows FROM '/tmp/rows.csv' CSV\"",
        "shred -u /tmp/rows.csv   # customer rows: never leave them on the host",
        f'psql -h "$DATABASE_HOST" -d {db}   # BEGIN; INSERT INTO TABLE SELECT * FROM restored_rows ON CONFLICT DO '
        "NOTHING; check; COMMIT;",
    )


# What the swap's adopting `pulumi up` must (not) show.
SWAP_PREVIEW = (
    "~ aws:rds/instance:Instance     database-instance   update    fine: the restored one adopted",
    "+-aws:rds/instance:Instance     database-instance   replace   STOP: a new, empty database",
    "+-aws:ec2/instance:Instance     host-instance       replace   STOP: no host is replaced here",
)

MERGE_CHECK = (
    "count the rows you expected back before COMMIT (ROLLBACK leaves the live data as it was), and "
    "`ls /tmp/rows.csv` answers `No such file or directory`."
)


def rows_deleted(f: RecoveryFacts, config: StackConfig) -> Branch:
    """Data missing or wrong: copy the damaged rows back (the default), swap the whole database, or use a dump."""
    steps = (
        *_stop_and_decide(f, config),
        *_copy_back(f, config),
        _swap(f, config),
        *_from_dump(f, config),
        *_clean_up(f, config),
    )
    return Branch(
        "Rows deleted or corrupted",
        "The app runs, but data is missing or wrong: a bad deploy or migration, a mistaken DELETE or UPDATE.",
        "Nothing, if you copy back only the damaged rows (the default); everything written since T if you swap "
        "the whole database; with the off-site dumps (T beyond point-in-time recovery) the same, from the dump.",
        steps,
        undo=(
            "Rows merged: the merge was one transaction; reverse it with the rows in `restored_rows` "
            "(kept until the owner is sure: only then does the clean-up step drop it).",
            "Swapped: run the undo line the swap printed (it switches the app back to the kept instance).",
        ),
        keeps=("restored_rows",),
    )


def _stop_and_decide(f: RecoveryFacts, config: StackConfig) -> tuple[Step, ...]:
    """Stop the damage, find T, and have the owner choose the path."""
    stack, region = config.stack, config.region
    return (
        Step(
            f"Stop the damage first: roll the app back (`python -m leanstack rollback {stack} --region {region}`) "
            "or stop the job that writes bad data. Find when the damage started, in UTC: the deploy's time in the "
            "releases, or the first bad request in the logs. T below is a minute before it.",
            LAPTOP,
            (
                f"python -m leanstack releases {stack} --region {region}",
                f"python -m leanstack logs {stack} --region {region} --since 1d --filter WORD   # WORD: the table, "
                "the route",
            ),
            check="you have written T down (`YYYY-MM-DD HH:MM:SS`, UTC) and nothing writes bad data any more.",
        ),
        Step(
            "The owner decides: copy back only the damaged rows (the default, and what to do when the owner cannot "
            "be reached within a quarter of the RTO: nothing is lost), or swap the whole database for its state at "
            f"T (everything written since T is lost). Point-in-time recovery reaches back "
            f"{f.retention_days} day(s); T older than that: the off-site dumps, the steps marked "
            f"*{DUMP}*. Restoring beside the live database is harmless, so step 3 can start while the owner "
            "decides.",
            check="the decision and who made it are in the incident notes.",
        ),
    )


def _copy_back(f: RecoveryFacts, config: StackConfig) -> tuple[Step, ...]:
    """The default path: restore to T beside the live instance and merge the damaged rows back."""
    stack, db = config.stack, f.database_name
    return (
        Step(
            "Restore the database as it was at T into a new instance beside the current one (the current one is "
            "not touched; same subnet group, parameter group, security group, encryption and TLS). It waits until "
            "the new instance is available (10-30 minutes) and prints its identifier (RESTORED_INSTANCE) and endpoint "
            "(RESTORED_HOST below), and its own secret if it has one (use it for `--secret-id` then). The extra "
            "instance costs what the current one does while it exists.",
            LAPTOP,
            (f'{DB_RESTORE} {stack} --to "T"   # T: YYYY-MM-DD HH:MM:SS, UTC',),
            check="it ends printing the new instance's endpoint; an error has switched nothing: read its line.",
            only=COPY,
        ),
        shell_step(f, only=COPY),
        Step(
            "Copy the damaged rows from the restored instance into a side table of the live database, then merge "
            "them in one transaction and look before you commit. TABLE and WHERE_CLAUSE are yours to fill in; "
            "the CSV holds customer rows, so it is shredded as soon as it is loaded.",
            HOST,
            (
                *PSQL_ENV,
                f'psql -h RESTORED_HOST -d {db} -c "\\copy (SELECT * FROM TABLE WHERE WHERE_CLAUSE) '
                "TO '/tmp/rows.csv' CSV\"",
                *merge_commands(db),
            ),
            check=MERGE_CHECK,
            only=COPY,
        ),
    )


def _swap(f: RecoveryFacts, config: StackConfig) -> Step:
    """The other path: swap the whole database for its state at T."""
    stack = config.stack
    return Step(
        f"Swap instead: restore to T and switch the app to the restored instance, with the maintenance page up "
        f"meanwhile. The current instance is kept (renamed, protected) for the undo the command prints; it "
        f"also prints how Pulumi adopts the new instance without replacing anything: run that step as printed "
        f"({BEFORE_PULUMI_LINK}).",
        LAPTOP,
        (f'{DB_RESTORE} {stack} --to "T" --swap',),
        preview=(
            "~ aws:rds/instance:Instance     database-instance   update    fine: the restored one adopted",
            "+-aws:rds/instance:Instance     database-instance   replace   STOP: a new, empty database",
            "+-aws:ec2/instance:Instance     host-instance       replace   STOP: no host is replaced here",
        ),
        check="it ends printing the undo line (copy it into the incident notes), the preview of its adoption "
        "step looks like the diff above, and the site answers 200:",
        check_commands=health_check(f),
        only=SWAP,
    )


def _from_dump(f: RecoveryFacts, config: StackConfig) -> tuple[Step, ...]:
    """T beyond point-in-time recovery: restore the off-site dump beside the live database and merge."""
    b, db = config.backup, f.database_name
    folder = f"{stack_backup_prefix(b.prefix, config.stack)}/{db}"
    return (
        Step(
            "Find the newest off-site dump taken before T (its time is its name).",
            LAPTOP,
            (
                *f.find_bucket,
                f'aws s3 ls "s3://$BUCKET/{folder}/" --region {b.region}{f.bucket_profile} | grep manifest.json',
            ),
            check="a dump older than T is listed: STAMP is its name before `.manifest.json`.",
            only=DUMP,
        ),
        shell_step(f, only=DUMP),
        Step(
            f"Restore that dump into a new database beside the live one on the same instance (the live one is not "
            f"touched), copy the damaged rows from it and merge them as above. `{RESTORE_COMMAND}` verifies the "
            "checksum while streaming, compares the row counts with the manifest and prints the restored "
            "database's name (RESTORED: `leanstack_restore_...`).",
            HOST,
            (
                f"sudo {RESTORE_COMMAND} --backup STAMP",
                *PSQL_ENV,
                'psql -h "$DATABASE_HOST" -d RESTORED -c "\\copy (SELECT * FROM TABLE WHERE WHERE_CLAUSE) '
                "TO '/tmp/rows.csv' CSV\"",
                *merge_commands(db),
                'psql -h "$DATABASE_HOST" -d postgres -c "DROP DATABASE RESTORED"   # the copy, not the live one',
            ),
            check="the restore says the row counts match the manifest; then as above: " + MERGE_CHECK,
            only=DUMP,
        ),
    )


def _clean_up(f: RecoveryFacts, config: StackConfig) -> tuple[Step, ...]:
    """Once the owner is sure of the merge: drop the side table and the restored instance."""
    db, region = f.database_name, config.region
    return (
        shell_step(f, only=SURE),
        Step(
            "Clean up, once the owner agrees the merge is right (until then the undo needs it): drop the side table.",
            HOST,
            (*PSQL_ENV, f'psql -h "$DATABASE_HOST" -d {db} -c "DROP TABLE restored_rows"'),
            check="psql answers `DROP TABLE`.",
            only=SURE,
        ),
        Step(
            "Delete the restored instance step 3 made (RESTORED_INSTANCE: the identifier it printed); it costs "
            "money while it exists.",
            LAPTOP,
            (
                f"aws rds modify-db-instance --region {region} --db-instance-identifier RESTORED_INSTANCE "
                "--no-deletion-protection --apply-immediately",
                f"aws rds delete-db-instance --region {region} --db-instance-identifier RESTORED_INSTANCE "
                "--skip-final-snapshot --delete-automated-backups",
            ),
            check="RESTORED_INSTANCE is `deleting`, then gone from this list:",
            check_commands=(
                f"aws rds describe-db-instances --region {region} --query 'DBInstances[].[DBInstanceIdentifier,"
                "DBInstanceStatus]' --output text",
            ),
            only="when you copied rows back from step 3's instance and are sure of the merge",
        ),
    )


def database_dropped(f: RecoveryFacts, config: StackConfig) -> Branch:
    """The app's database dropped on a standing instance: restore the newest dump, or the instance to T."""
    return load_branch("database_dropped.yaml.j2", f, config, DB_RESTORE=DB_RESTORE, swap_preview=SWAP_PREVIEW)
