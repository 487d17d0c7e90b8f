"""What the restore and the drill share: download a dump and verify it against its manifest,
restore it as a role that cannot run programs on the server or create roles, compare the row
counts, run the verification SQL; the marks and names of the databases they create."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

from .aws import AWS_ERRORS, describe_aws_error
from .backup_settings import Connection, Settings
from .common import ConfigError, Failure, one_line
from .dumps import DOWNLOAD_CHUNK_BYTES, Backup, b64
from .postgres import (
    ROW_COUNTS_SQL,
    PsqlSession,
    compare_row_counts,
    parse_row_counts,
    quote_identifier,
    quote_literal,
    run_psql,
)

MIB = 1024 * 1024
GIB = 1024 * MIB
# A work directory the tools accept: an absolute path of plain characters.
SAFE_PATH = re.compile(r"^/[A-Za-z0-9._+@/-]*$")

# ---------------------------------------------------------------------------------------
# Scratch and restored databases

# Every database the tools create starts with `leanstack_` (stack config refuses app
# database names that do), and carries one of these comments (COMMENT ON DATABASE). The
# drill drops only databases that match its name pattern AND carry its mark AND are not
# the source's: a look-alike name alone is never enough.
DRILL_MARK = "leanstack-restore-drill scratch database"
RESTORE_MARK = "leanstack-restore: "
SCRATCH_NAME_PATTERN = r"^leanstack_drill_[0-9]{8}t[0-9]{6}z_[0-9a-f]+$"
RESTORED_NAME_PATTERN = re.compile(r"^leanstack_[a-z0-9_]{1,53}$")
# One drill at a time per PostgreSQL server, whichever machine runs it: a session-level
# advisory lock, released by PostgreSQL when the drill's session ends, even on SIGKILL.
DRILL_LOCK_KEY = int.from_bytes(hashlib.sha256(b"leanstack-restore-drill").digest()[:8], "big", signed=True)


def drop_leftover_scratch_databases(session: PsqlSession, source_name: str, warnings: List[str]) -> None:
    """Drop the scratch databases a killed drill (SIGKILL, reboot) left: full copies of
    production data. Only marked ones, never the source's name; the advisory lock means no
    other drill is using one."""
    listed = session.query(
        "SELECT d.datname || CASE WHEN shobj_description(d.oid, 'pg_database') = "
        f"{quote_literal(DRILL_MARK)} THEN '|marked' ELSE '|unmarked' END FROM pg_database d "
        f"WHERE d.datname ~ {quote_literal(SCRATCH_NAME_PATTERN)} ORDER BY 1;",
        "cannot list databases",
    )
    for line in (line.strip() for line in listed if line.strip()):
        name, _, marked = line.rpartition("|")
        if marked != "marked" or name == source_name:
            warnings.append(f"left {name} alone: its name looks like a drill's, but the drill did not mark it")
            continue
        session.query(
            f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE);",
            f"cannot drop the leftover scratch database {name}",
        )
        warnings.append(f"dropped the scratch database {name} an interrupted drill had left")


DOWNLOAD_HEADROOM_BYTES = 64 * 1024 * 1024


@contextlib.contextmanager
def verified_dump(settings: Settings, s3: S3Client, backup: Backup, work_dir: str) -> Iterator[str]:
    """The dump, downloaded to a private temporary file and checked against its manifest's
    sha256 and size, before any byte of it reaches pg_restore: a tampered dump runs nothing.
    Removed afterwards. Needs free disk of the dump's (compressed) size; checked first."""
    if not SAFE_PATH.match(work_dir):
        raise ConfigError(f"the work directory {work_dir!r} must be an absolute path of letters, digits and ._+@/-")
    os.makedirs(work_dir, mode=0o755, exist_ok=True)
    needed, free = backup.size_bytes + DOWNLOAD_HEADROOM_BYTES, shutil.disk_usage(work_dir).free
    if free < needed:
        raise Failure(
            f"not enough free disk to download {backup.dump_key}: {work_dir} has {free / GIB:.1f} GiB free, "
            f"the dump needs {needed / GIB:.1f} GiB; free some space (or set RESTORE_WORK_DIR)"
        )
    directory = tempfile.mkdtemp(prefix="leanstack-dump-", dir=work_dir)
    path = os.path.join(directory, "backup.dump")
    try:
        whole = hashlib.sha256()
        size = 0
        try:
            body = s3.get_object(Bucket=settings.bucket, Key=backup.dump_key)["Body"]
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
                for chunk in body.iter_chunks(DOWNLOAD_CHUNK_BYTES):
                    whole.update(chunk)
                    size += len(chunk)
                    if size > backup.size_bytes:
                        break
                    handle.write(chunk)
        except (*AWS_ERRORS, OSError) as error:
            raise Failure(f"download of {backup.dump_key} failed: {describe_aws_error(error)}") from None
        expected_sha = str(backup.manifest["sha256"])
        if whole.hexdigest() != expected_sha or size != backup.size_bytes:
            more = "+" if size > backup.size_bytes else ""
            raise Failure(
                f"checksum mismatch for {backup.dump_key}: sha256 {whole.hexdigest()} ({size}{more} bytes), "
                f"manifest says {expected_sha} ({backup.size_bytes} bytes); nothing was restored"
            )
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run_pg_restore(settings: Settings, dump_path: str, into: Connection) -> None:
    """pg_restore of a verified dump file, connected as `into`'s role (restricted_role)."""
    # A file, unlike a pipe, lets pg_restore build indexes in parallel.
    jobs = max(1, min(4, os.cpu_count() or 1))
    done = subprocess.run(
        [
            settings.program("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--no-password",
            f"--jobs={jobs}",
            f"--dbname={into.url}",
            dump_path,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=into.child_env(),
        check=False,
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
        chosen = errors[0] if errors else (lines[-1] if lines else f"exit status {done.returncode}")
        raise Failure(f"pg_restore failed: {one_line(chosen)}")


# A role with any of these can run programs or read and write files as the database server's
# OS user (COPY ... TO PROGRAM), or make roles that can: a dump is never restored as one.
POWERFUL_ROLE_SQL = (
    "SELECT (r.rolsuper OR r.rolcreaterole"
    " OR pg_has_role(r.oid, 'pg_execute_server_program', 'MEMBER')"
    " OR pg_has_role(r.oid, 'pg_read_server_files', 'MEMBER')"
    " OR pg_has_role(r.oid, 'pg_write_server_files', 'MEMBER'))::text"
    " FROM pg_roles r WHERE r.rolname = current_user;"
)
RESTORER_PREFIX = "leanstack_restorer_"
RESTORER_MARK = "leanstack: the role one restore or drill restores as; dropped when it ends"
SCRAM_ITERATIONS = 4096


def scram_verifier(password: str) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores, computed here so that the password itself
    is in no statement the server could log."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


@dataclass(frozen=True)
class Restorer:
    """Who a dump is restored as: `role` (created for this run) or, when `role` is None, the
    session's own role, which has none of the powers in POWERFUL_ROLE_SQL."""

    role: Optional[str]
    connection: Connection


def restricted_role(session: PsqlSession) -> Restorer:
    """A role to restore as that cannot run programs on the server, read or write its files,
    or create roles: the session's own role when it is such a role (the app's own role on an
    instance where it owns the objects); else a new LOGIN role with a random password and
    nothing else, made by the session's role (a superuser, or RDS's master with CREATEROLE)
    and granted to it, so that it can own and later drop what the new role made."""
    powerful = session.query(POWERFUL_ROLE_SQL, "cannot read the restoring role's attributes")
    if powerful[:1] == ["false"]:
        return Restorer(None, session.connection)
    name = f"{RESTORER_PREFIX}{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(24)
    session.query(
        f"CREATE ROLE {quote_identifier(name)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
        f"NOREPLICATION NOBYPASSRLS PASSWORD {quote_literal(scram_verifier(password))};\n"
        f"COMMENT ON ROLE {quote_identifier(name)} IS {quote_literal(RESTORER_MARK)};\n"
        f"GRANT {quote_identifier(name)} TO CURRENT_USER;",
        "cannot create the role to restore as",
    )
    return Restorer(name, session.connection.with_user(name, password))


def drop_restorer(session: PsqlSession, restorer: Restorer, warnings: List[str]) -> None:
    if restorer.role is None:
        return
    try:
        session.query(f"DROP ROLE IF EXISTS {quote_identifier(restorer.role)};", f"cannot drop {restorer.role}")
    except Failure as problem:
        warnings.append(str(problem))


def restore_and_check(settings: Settings, dump_path: str, backup: Backup, into: Connection) -> Tuple[int, int]:
    """Restore a verified dump, then compare the row counts with the manifest: (tables, rows)."""
    run_pg_restore(settings, dump_path, into)
    restored = parse_row_counts(run_psql(settings, into, "cannot count rows", ROW_COUNTS_SQL))
    return len(restored["tables"]), compare_row_counts(backup.manifest, restored)


def run_verification(settings: Settings, scratch: Connection, path: str) -> int:
    """Run VERIFY_SQL_FILE; any error, no row, or a first column not true fails the drill."""
    rows = sql_file_rows(settings, scratch, path, "verification SQL")
    if not rows:
        raise Failure("verification SQL returned no rows")
    for number, row in enumerate(rows, start=1):
        if row.split("\x1f")[0].strip().lower() not in ("t", "true"):
            raise Failure(f"verification SQL row {number} is not true: {one_line(row)[:200]}")
    return len(rows)


def sql_file_rows(settings: Settings, scratch: Connection, path: str, what: str) -> List[str]:
    """The non-empty rows a SQL file returns on the restored database, fields split by \\x1f."""
    done = subprocess.run(
        [
            settings.program("psql"),
            "--no-psqlrc",
            "--quiet",
            "--no-align",
            "--tuples-only",
            "--field-separator=\x1f",
            "--no-password",
            "--set=ON_ERROR_STOP=1",
            f"--file={path}",
            f"--dbname={scratch.url}",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=scratch.child_env(),
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise Failure(f"{what} failed: {one_line(lines[0]) if lines else 'psql exited'}")
    return [line for line in done.stdout.decode("utf-8", "replace").splitlines() if line.strip()]


def restore_space_needed(manifest: Mapping[str, Any]) -> int:
    """The disk a restore of this backup needs: the database's size when the backup
    recorded it, else a generous multiple of the compressed dump; plus WAL headroom."""
    headroom = GIB + 256 * MIB
    if "database_size_bytes" in manifest:
        return int(int(manifest["database_size_bytes"]) * 1.2) + headroom
    return int(manifest["size_bytes"]) * 5 + headroom


def say(message: str) -> None:
    print(f"leanstack-restore: {message}", flush=True)
