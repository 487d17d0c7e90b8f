"""leanstack-restore: restore a backup into a new database on the instance, compare it with
its manifest and print the next step (or, with --swap, switch the app to it)."""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from .backup_settings import Connection, Settings
from .common import ConfigError, Failure, env_value
from .dumps import STAMP_PATTERN, Backup, check_not_far_below, choose_backup, previous_backup
from .postgres import (
    DATABASE_NAME_PATTERN,
    PsqlSession,
    create_marked_database,
    maintenance_connection,
    quote_identifier,
    quote_literal,
    run_psql,
)
from .restoring import (
    RESTORE_MARK,
    RESTORED_NAME_PATTERN,
    drop_restorer,
    restore_and_check,
    restricted_role,
    say,
    verified_dump,
)
from .swap import fleet_page_is_on, swap

STACK_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
RESTORE_WORK_DIR = "/var/tmp"


@dataclass(frozen=True)
class RestoreOptions:
    backup: Optional[str] = None
    database: Optional[str] = None
    swap: bool = False
    use_restored: Optional[str] = None
    # Region down: the recovery stack restores the old stack's dumps, from its folder.
    from_stack: Optional[str] = None

    @staticmethod
    def parse(arguments: List[str]) -> RestoreOptions:
        values: Dict[str, Any] = {}
        rest = list(arguments)
        while rest:
            flag = rest.pop(0)
            if flag == "--swap":
                values["swap"] = True
                continue
            if flag not in ("--backup", "--database", "--use-restored", "--from-stack"):
                raise ConfigError(
                    f"unknown argument {flag!r}: allowed: --backup STAMP, --database NAME, --from-stack STACK, --swap, "
                    "--use-restored NAME"
                )
            if not rest:
                raise ConfigError(f"{flag} needs a value")
            values[flag[2:].replace("-", "_")] = rest.pop(0)
        options = RestoreOptions(**values)
        if options.backup is not None and not STAMP_PATTERN.match(options.backup):
            raise ConfigError(f"--backup {options.backup!r} is not a backup stamp such as 20260131T033000Z")
        if options.database is not None and not RESTORED_NAME_PATTERN.match(options.database):
            raise ConfigError(f"--database {options.database!r} must start with leanstack_ (then a-z, 0-9, _)")
        if options.from_stack is not None and not STACK_NAME_PATTERN.match(options.from_stack):
            raise ConfigError(f"--from-stack {options.from_stack!r} is not a stack name (letters, digits, ._-)")
        if options.use_restored is not None:
            if not DATABASE_NAME_PATTERN.match(options.use_restored):
                raise ConfigError(f"--use-restored {options.use_restored!r} is not a database name")
            if not options.swap or options.backup is not None or options.database is not None or options.from_stack:
                raise ConfigError("--use-restored goes with --swap only (it switches to a database already restored)")
        return options


def restore(settings: Settings, warnings: List[str], options: RestoreOptions) -> str:
    """Restore a backup into a new database on the instance; with --swap, switch the app to it."""
    database = settings.database_name()
    maintenance = maintenance_connection(settings)
    fleet_page = options.swap and fleet_page_is_on(settings)
    lines: List[str] = []
    if options.use_restored is not None:
        restored = options.use_restored
    else:
        s3 = settings.s3()
        skipped: List[str] = []
        stack = options.from_stack or settings.stack
        try:
            chosen = choose_backup(settings, s3, database, skipped, options.backup, skip_unusable=True, stack=stack)
        finally:
            for line in skipped:
                say(f"warning: {line}")
        if options.backup is None:
            hint = (
                ""
                if options.from_stack
                else "; after a region-down recovery, restore the old stack's backups with --from-stack STACK"
            )
            check_not_far_below(chosen, previous_backup(settings, s3, stack, database, chosen), hint)
        restored = options.database or f"leanstack_restore_{chosen.stamp.lower()}_{secrets.token_hex(3)}"
        work_dir = env_value(settings.env, "RESTORE_WORK_DIR", RESTORE_WORK_DIR)
        with verified_dump(settings, s3, chosen, work_dir) as dump_path:
            say(f"restoring {chosen.dump_key} (recovery point {chosen.manifest['started_at']}) into {restored}")
            started = time.monotonic()
            tables, rows = restore_into_new_database(settings, maintenance, chosen, dump_path, restored, warnings)
        lines.append(
            f"restored {chosen.dump_key} into {restored} in {time.monotonic() - started:.1f} s: the checksum "
            f"matches, and so do the row counts of {tables} tables ({rows} rows)"
        )
        if not options.swap:
            if app_database_exists(settings, maintenance, database):
                lines.append(
                    f"the app still uses {database}; look at {restored} if you like, then switch the app to it "
                    "(users see a maintenance page for the switch):"
                )
            else:
                # The instance was deleted and remade: nothing uses the app's name yet.
                lines.append(
                    f"the app's database {database} does not exist; the next step is the swap, which renames "
                    f"{restored} to {database} (users see a maintenance page for the switch):"
                )
            lines.append(f"  sudo leanstack-restore --swap --use-restored {restored}")
            return "\n".join(lines)
    return "\n".join(lines + swap(settings, maintenance, database, restored, fleet_page))


def app_database_exists(settings: Settings, maintenance: Connection, database: str) -> bool:
    listed = run_psql(
        settings,
        maintenance,
        "cannot list databases",
        f"SELECT count(*) FROM pg_database WHERE datname = {quote_literal(database)};",
    )
    return listed[:1] == ["1"]


def restore_into_new_database(
    settings: Settings, maintenance: Connection, chosen: Backup, dump_path: str, restored: str, warnings: List[str]
) -> Tuple[int, int]:
    """Create `restored`, restore the verified dump into it as a restricted role, check it, and
    hand its objects to the instance's own role (the app's). Nothing half-done on failure."""
    session = PsqlSession(settings, maintenance, "cannot connect to the instance")
    try:
        restorer = restricted_role(session)
        try:
            create_marked_database(
                settings,
                session,
                restored,
                str(chosen.manifest.get("encoding", "UTF8")),
                f"{RESTORE_MARK}restored from {chosen.dump_key}",
                restorer.role,
            )
            try:
                checked = restore_and_check(settings, dump_path, chosen, restorer.connection.with_database(restored))
                if restorer.role is not None:
                    role = quote_identifier(restorer.role)
                    run_psql(
                        settings,
                        maintenance.with_database(restored),
                        f"cannot hand {restored}'s objects to {maintenance.user}",
                        f"REASSIGN OWNED BY {role} TO CURRENT_USER;\nDROP OWNED BY {role};",
                    )
                    session.query(
                        f"ALTER DATABASE {quote_identifier(restored)} OWNER TO CURRENT_USER;",
                        f"cannot hand {restored} to {maintenance.user}",
                    )
            except BaseException:
                # The database this run created goes.
                with contextlib.suppress(Failure):
                    session.query(f"DROP DATABASE IF EXISTS {quote_identifier(restored)} WITH (FORCE);")
                raise
        finally:
            drop_restorer(session, restorer, warnings)
    finally:
        session.close()
    return checked
