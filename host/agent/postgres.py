"""Talking to PostgreSQL through psql: a session kept open, row counts, quoting, the
maintenance connection and marked databases."""

from __future__ import annotations

import collections
import contextlib
import json
import re
import subprocess
import threading
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    Deque,
    Dict,
    List,
    Mapping,
    Optional,
)

if TYPE_CHECKING:
    pass

from .backup_settings import Connection, Settings
from .common import Failure, env_value, one_line

# Exact row counts: the number of large objects on the first line, then one JSON object
# {"schema.table": rows} per user table. The counts are plain top-level queries run by
# psql's \gexec, so PostgreSQL may scan in parallel, and in the backup they run inside the
# transaction that exported pg_dump's snapshot, so both see the same data. Tables that
# belong to an extension are left out: CREATE EXTENSION recreates their contents.
ROW_COUNTS_SQL = """
SELECT count(*) FROM pg_largeobject_metadata;
SELECT format('SELECT json_build_object(%L, count(*)) FROM %I.%I',
              quote_ident(n.nspname) || '.' || quote_ident(c.relname), n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (
    SELECT 1 FROM pg_depend d
    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1 \\gexec
"""


class StderrTail:
    """Drains a child's stderr in a thread (so it never blocks) and keeps the last lines."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.lines: Deque[str] = collections.deque(maxlen=20)
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                self.lines.append(line)

    def last(self, default: str) -> str:
        self._thread.join(timeout=5)
        # The first error line says why; pg_restore's last line is only a summary count.
        errors = [line for line in self.lines if "error" in line.lower() or "fatal" in line.lower()]
        chosen = errors[0] if errors else (self.lines[-1] if self.lines else default)
        return one_line(chosen)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()


class PsqlSession:
    """One psql process held open over pipes, so that a transaction spans several queries."""

    SENTINEL = "--leanstack-end-of-result--"

    def __init__(self, settings: Settings, connection: Connection, what: str) -> None:
        self.what = what
        self.connection = connection
        self.process = subprocess.Popen(
            [
                settings.program("psql"),
                "--no-psqlrc",
                "--quiet",
                "--no-align",
                "--tuples-only",
                "--no-password",
                "--set=ON_ERROR_STOP=1",
                f"--dbname={connection.url}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=connection.child_env(),
        )
        assert self.process.stderr is not None
        self.stderr = StderrTail(self.process.stderr)

    def query(self, sql: str, what: Optional[str] = None) -> List[str]:
        """Run SQL; returns its output lines. psql stops at the first error (ON_ERROR_STOP).

        `what` names the step in the failure message (default: the session's)."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(f"{sql}\n\\echo {self.SENTINEL}\n".encode())
            stdin.flush()
        except BrokenPipeError:
            pass
        lines: List[str] = []
        for raw in stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line == self.SENTINEL:
                return lines
            lines.append(line)
        self.process.wait()
        raise Failure(f"{what or self.what}: {self.stderr.last('psql exited')}")

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stop_process(self.process)


def run_psql(settings: Settings, connection: Connection, what: str, sql: str) -> List[str]:
    session = PsqlSession(settings, connection, what)
    try:
        return session.query(sql)
    finally:
        session.close()


def parse_row_counts(lines: List[str]) -> Dict[str, Any]:
    """{"tables": {name: rows}, "large_objects": n} from ROW_COUNTS_SQL's output."""
    try:
        large_objects = int(lines[0])
        tables: Dict[str, int] = {}
        for line in lines[1:]:
            if line.strip():
                tables.update({str(name): int(rows) for name, rows in json.loads(line).items()})
    except (IndexError, ValueError, AttributeError):
        raise Failure("unexpected row count output from psql") from None
    return {"tables": tables, "large_objects": large_objects}


def pg_program_version(settings: Settings, name: str) -> str:
    done = subprocess.run([settings.program(name), "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


DATABASE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_]{1,63}$")
MAINTENANCE_DATABASE = "postgres"


class Busy(Exception):
    """Another run holds the lock: nothing was done, and that is not a failure."""


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def maintenance_connection(settings: Settings) -> Connection:
    """The source instance, connected to its maintenance database, never the app's: the
    tools must work when the app's database is gone."""
    name = env_value(settings.env, "DATABASE_MAINTENANCE_NAME", MAINTENANCE_DATABASE)
    return settings.source_connection().with_database(name)


def create_marked_database(
    settings: Settings, session: PsqlSession, name: str, encoding: str, mark: str, owner: Optional[str] = None
) -> None:
    """A new database marked with `mark`, owned by `owner` (the role a restore restores as)."""
    owned = f" OWNER {quote_identifier(owner)}" if owner else ""
    session.query(
        f"CREATE DATABASE {quote_identifier(name)}{owned} TEMPLATE template0 ENCODING {quote_literal(encoding)};",
        f"cannot create the database {name}",
    )
    session.query(f"COMMENT ON DATABASE {quote_identifier(name)} IS {quote_literal(mark)};", f"cannot mark {name}")


def compare_row_counts(manifest: Mapping[str, Any], restored: Mapping[str, Any]) -> int:
    expected: Dict[str, int] = {str(k): int(v) for k, v in dict(manifest["row_counts"]).items()}
    found: Dict[str, int] = {str(k): int(v) for k, v in dict(restored["tables"]).items()}
    differences = [
        f"{name}: {expected.get(name, 'missing')} in the backup, {found.get(name, 'missing')} restored"
        for name in sorted(set(expected) | set(found))
        if expected.get(name) != found.get(name)
    ]
    expected_objects = int(manifest.get("large_objects", 0))
    if int(restored["large_objects"]) != expected_objects:
        differences.append(f"large objects: {expected_objects} in the backup, {restored['large_objects']} restored")
    if differences:
        more = f" (and {len(differences) - 3} more)" if len(differences) > 3 else ""
        raise Failure("row counts differ: " + "; ".join(differences[:3]) + more)
    return sum(expected.values())


def major_version(text: str) -> Optional[int]:
    """17 from "17.2 (Debian ...)" or "postgres (PostgreSQL) 17.2"."""
    match = re.search(r"(?:^|\)\s)\s*(\d+)(?:\.\d+)?", text.strip())
    return int(match.group(1)) if match else None
