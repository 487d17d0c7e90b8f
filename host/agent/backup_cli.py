"""leanstack-backup, leanstack-restore-drill, leanstack-restore: off-site PostgreSQL
backups that restore.

    leanstack-backup                 stream pg_dump to S3 (<prefix>/<stack>/<database>/),
                                     then write the manifest
    leanstack-backup restore-drill   restore the newest complete backup into a scratch
                                     database (by default on a throw-away local
                                     PostgreSQL), check it, drop it
    leanstack-backup restore [--backup STAMP] [--database leanstack_NAME] [--from-stack STACK]
                                     download the backup, check its checksum and manifest,
                                     restore it into a new database on the instance as a
                                     role that cannot run programs or create roles, compare
                                     the row counts, print the next step. A backup with no
                                     rows, or far fewer rows or bytes than the one before,
                                     is restored only when named (--backup). --from-stack:
                                     another stack's backups (a recovery stack restoring
                                     the old stack's)
    leanstack-backup restore --swap [--backup STAMP] | --swap --use-restored NAME
                                     ... then maintenance page on, rename the databases
                                     (app -> app_before_restore_<time>, restored -> app),
                                     restart the app, check its health path, page off.
                                     Behind a load balancer the page must be on every host
                                     first (the laptop's maintenance STACK on)

    leanstack-backup drill-credentials PATH
                                     write the host's AWS credentials (boto3's default
                                     chain: the instance role's) to PATH, 0600, as a shared
                                     credentials file, for the drill's unit, which cannot
                                     reach the metadata service; prints their expiry

    leanstack-backup database-env    print where the database is now, as shell assignments
                                     (DATABASE_HOST, _PORT, _SECRET_ARN; no password), for
                                     `eval` in the recovery sheet's manual steps

(leanstack-restore-drill and leanstack-restore are wrappers that run these.)

Runs on Amazon Linux 2023's system Python (3.9) with only the standard library and boto3,
shelling out to pg_dump, pg_restore and psql (and initdb, pg_ctl, postgres for the local
drill). Configuration is by environment; when BACKUP_BUCKET is not set (a `sudo` run keeps
no environment) the tool reads /etc/leanstack/backup.env ($LEANSTACK_BACKUP_ENV) itself:

    DATABASE_PARAMETER          the SSM parameter where the database is (JSON: host, port,
                                secret_arn), read at each run; it sets the three below
    DATABASE_URL                postgresql://user:password@host:port/db?sslmode=...; or
    DATABASE_SECRET_ARN         the RDS-managed secret (JSON with username and password),
      + DATABASE_HOST           with DATABASE_PORT (5432), DATABASE_NAME, DATABASE_USER
                                (default: the secret's username), DATABASE_SSLMODE (require)
    DATABASE_MAINTENANCE_NAME   the database the drill and the restore connect to on the
                                instance, never the app's (default: postgres)
    BACKUP_BUCKET, BACKUP_PREFIX
    AWS_REGION                  Secrets Manager and CloudWatch (the stack's region)
    BACKUP_BUCKET_REGION        the bucket's region (default: AWS_REGION)
    AWS_ENDPOINT_URL            honoured by botocore itself from 1.31.57 on, as are
                                AWS_ENDPOINT_URL_S3 etc. (a local S3 for tests)
    DRILL_TARGET                local (default), instance, or url: DRILL_DATABASE_URL, a
                                maintenance connection such as .../postgres
    DRILL_WORK_DIR              where the drill downloads the dump and its local PostgreSQL
                                lives (default /var/tmp)
    RESTORE_WORK_DIR            where leanstack-restore downloads the dump (/var/tmp)
    DRILL_SERVER_USER           who runs it when the drill runs as root (postgres)
    DRILL_STARTS_APP            1: start the serving release against the restored data
                                (local target; DRILL_APP_START replaces `docker run`)
    VERIFY_SQL_FILE             optional SQL run against the restored database; every row's
                                first column must be true, and there must be a row
    FILES_SQL_FILE              optional SQL run against the restored database whose rows'
                                first column are object keys the data references; a random
                                sample (FILES_SAMPLE, default 100) must exist (HeadObject)
      + FILES_BUCKET            in this bucket, the uploads' replica (FILES_BUCKET_REGION,
                                default BACKUP_BUCKET_REGION): a missing one fails the drill
    STACK, METRICS_NAMESPACE    CloudWatch dimension Stack=$STACK in namespace (Leanstack)
    PG_BIN_DIR                  where the PostgreSQL programs are (default: PATH)
    BACKUP_PART_SIZE_MIB        multipart part size, at least 5 (default 16)
    LEANSTACK_LOCK_DIR          lock directory (default: $RUNTIME_DIRECTORY, else /run/<command>)
    LEANSTACK_APP_CONFIG        the app's config (/etc/leanstack/app.json): image, health path
    LEANSTACK_MAINTENANCE,      the commands --swap runs (default: leanstack-maintenance,
      LEANSTACK_APP_RESTART     leanstack-app restart)
    BEHIND_LOAD_BALANCER        1: several hosts behind a load balancer (scale mode)

Passwords reach the PostgreSQL programs only through PGPASSWORD in their environment:
never argv (visible in ps), never a file. Exit 0 on success (also when another run holds
the lock); otherwise non-zero with exactly one line on stderr.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from typing import (
    TYPE_CHECKING,
    List,
)

if TYPE_CHECKING:
    pass

from .backup import backup
from .backup_settings import (
    BACKUP_COMMAND,
    DRILL_COMMAND,
    RESTORE_COMMAND,
    Interrupted,
    Settings,
    acquire_lock,
    with_database_location,
    with_env_file,
)
from .common import ConfigError, Failure, env_value, one_line
from .drill import restore_drill
from .drill_credentials import write_drill_credentials
from .postgres import Busy
from .restore import RestoreOptions, restore

# ---------------------------------------------------------------------------------------
# Entry point


def on_sigterm(signum: int, frame: object) -> None:
    raise Interrupted("interrupted by SIGTERM")


SUBCOMMANDS = {
    "backup": BACKUP_COMMAND,
    "restore-drill": DRILL_COMMAND,
    "drill": DRILL_COMMAND,
    "restore": RESTORE_COMMAND,
}


def print_database_env() -> int:
    """`export NAME=value` lines for where the database is now (names and addresses, no password)."""
    try:
        env = with_database_location(with_env_file(os.environ))
        names = ("DATABASE_HOST", "DATABASE_PORT", "DATABASE_SECRET_ARN")
        lines = [f"export {name}={shlex.quote(env_value(env, name))}" for name in names]
    except Failure as failure:
        print(f"{BACKUP_COMMAND}: {failure}", file=sys.stderr)
        return failure.code
    print("\n".join(lines))
    return 0


def print_drill_credentials(arguments: List[str]) -> int:
    """`drill-credentials PATH`: the credentials file the drill's unit loads."""
    command = f"{BACKUP_COMMAND} drill-credentials"
    if len(arguments) != 1:
        print(f"{command}: expected one argument, the file to write (see --help)", file=sys.stderr)
        return 2
    try:
        said = write_drill_credentials(arguments[0])
    except ConfigError as error:
        print(f"{command}: {error}", file=sys.stderr)
        return 2
    except Failure as failure:
        print(f"{command}: failed: {one_line(str(failure))}", file=sys.stderr)
        return failure.code
    except OSError as error:
        print(f"{command}: failed: writing {arguments[0]}: {one_line(str(error))}", file=sys.stderr)
        return 1
    print(said)
    return 0


def main(argv: List[str]) -> int:
    program = os.path.basename(argv[0]) if argv else BACKUP_COMMAND
    arguments = argv[1:]
    if "-h" in arguments or "--help" in arguments:
        print(__doc__)
        return 0
    if arguments == ["database-env"]:
        return print_database_env()
    if arguments[:1] == ["drill-credentials"]:
        return print_drill_credentials(arguments[1:])
    if arguments and arguments[0] in SUBCOMMANDS:
        command = SUBCOMMANDS[arguments[0]]
        arguments = arguments[1:]
    else:
        command = program if program in (DRILL_COMMAND, RESTORE_COMMAND) else BACKUP_COMMAND
    if arguments and command != RESTORE_COMMAND:
        print(f"{command}: unexpected arguments {' '.join(arguments)!r} (see --help)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, on_sigterm)
    warnings: List[str] = []
    try:
        options = RestoreOptions.parse(arguments) if command == RESTORE_COMMAND else None
        env = with_database_location(with_env_file(os.environ))
        settings = Settings.from_env(env)
        lock = acquire_lock(env, command)
        if lock is None:
            if command == RESTORE_COMMAND:
                raise Failure("another leanstack-restore is running on this host")
            print(f"{command}: another run is in progress; nothing to do")
            return 0
        if options is not None:
            summary = restore(settings, warnings, options)
        elif command == DRILL_COMMAND:
            summary = restore_drill(settings, warnings)
        else:
            summary = backup(settings, warnings)
    except ConfigError as error:
        print(f"{command}: configuration error: {error}", file=sys.stderr)
        return 2
    except Busy as busy:
        print(f"{command}: {busy}")
        return 0
    except Failure as error:
        extra = "".join(f"; warning: {warning}" for warning in warnings)
        print(f"{command}: failed: {one_line(str(error))}{one_line(extra)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{command}: failed: interrupted", file=sys.stderr)
        return 1
    except Exception as error:  # the one-line promise holds even for a bug in this tool
        print(
            f"{command}: failed: internal error: {type(error).__name__}: {one_line(str(error))}",
            file=sys.stderr,
        )
        return 1
    for warning in warnings:
        print(f"{command}: warning: {one_line(warning)}", file=sys.stderr)
    print(summary)
    return 0
