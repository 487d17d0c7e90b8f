"""leanstack-restore: restore a backup into a new database on the instance, compare it with
its manifest and print the next step (or, with --swap, switch the app to it)."""

from __future__ import annotations

import contextlib
import secrets
import time
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    List,
    Optional,
)

if TYPE_CHECKING:
    pass

from .backup_settings import Settings
from .common import ConfigError, Failure
from .dumps import STAMP_PATTERN, choose_backup
from .postgres import (
    DATABASE_NAME_PATTERN,
    PsqlSession,
    create_marked_database,
    maintenance_connection,
    quote_identifier,
)
from .restoring import RESTORE_MARK, RESTORED_NAME_PATTERN, restore_and_check, say
from .swap import swap


@dataclass(frozen=True)
class RestoreOptions:
    backup: Optional[str] = None
    database: Optional[str] = None
    swap: bool = False
    use_restored: Optional[str] = None

    @staticmethod
    def parse(arguments: List[str]) -> RestoreOptions:
        values: Dict[str, Any] = {}
        rest = list(arguments)
        while rest:
            flag = rest.pop(0)
            if flag == "--swap":
                values["swap"] = True
                continue
            if flag not in ("--backup", "--database", "--use-restored"):
                raise ConfigError(
                    f"unknown argument {flag!r}: allowed: --backup STAMP, --database NAME, --swap, --use-restored NAME"
                )
            if not rest:
                raise ConfigError(f"{flag} needs a value")
            values[flag[2:].replace("-", "_")] = rest.pop(0)
        options = RestoreOptions(**values)
        if options.backup is not None and not STAMP_PATTERN.match(options.backup):
            raise ConfigError(f"--backup {options.backup!r} is not a backup stamp such as 20260131T033000Z")
        if options.database is not None and not RESTORED_NAME_PATTERN.match(options.database):
            raise ConfigError(f"--database {options.database!r} must start with leanstack_ (then a-z, 0-9, _)")
        if options.use_restored is not None:
            if not DATABASE_NAME_PATTERN.match(options.use_restored):
                raise ConfigError(f"--use-restored {options.use_restored!r} is not a database name")
            if not options.swap or options.backup is not None or options.database is not None:
                raise ConfigError("--use-restored goes with --swap only (it switches to a database already restored)")
        return options


def restore(settings: Settings, warnings: List[str], options: RestoreOptions) -> str:
    """Restore a backup into a new database on the instance; with --swap, switch the app to it."""
    database = settings.database_name()
    maintenance = maintenance_connection(settings)
    lines: List[str] = []
    if options.use_restored is not None:
        restored = options.use_restored
    else:
        s3 = settings.s3()
        skipped: List[str] = []
        try:
            chosen = choose_backup(settings, s3, database, skipped, options.backup, skip_unusable=True)
        finally:
            for line in skipped:
                say(f"warning: {line}")
        restored = options.database or f"leanstack_restore_{chosen.stamp.lower()}_{secrets.token_hex(3)}"
        say(f"restoring {chosen.dump_key} (recovery point {chosen.manifest['started_at']}) into {restored}")
        session = PsqlSession(settings, maintenance, "cannot connect to the instance")
        try:
            create_marked_database(
                settings,
                session,
                restored,
                str(chosen.manifest.get("encoding", "UTF8")),
                f"{RESTORE_MARK}restored from {chosen.dump_key}",
            )
            started = time.monotonic()
            try:
                tables, rows = restore_and_check(settings, s3, chosen, maintenance.with_database(restored))
            except BaseException:
                # Nothing half-done: the database this run created goes.
                with contextlib.suppress(Failure):
                    session.query(f"DROP DATABASE IF EXISTS {quote_identifier(restored)} WITH (FORCE);")
                raise
        finally:
            session.close()
        lines.append(
            f"restored {chosen.dump_key} into {restored} in {time.monotonic() - started:.1f} s: the checksum "
            f"matches, and so do the row counts of {tables} tables ({rows} rows)"
        )
        if not options.swap:
            lines += [
                f"the app still uses {database}; look at {restored} if you like, then switch the app to it "
                "(users see a maintenance page for the switch):",
                f"  sudo leanstack-restore --swap --use-restored {restored}",
            ]
            return "\n".join(lines)
    return "\n".join(lines + swap(settings, maintenance, database, restored))
