"""What the restore and the drill share: stream a dump from S3 into pg_restore, compare the
row counts, run the verification SQL; the marks and names of the databases they create."""

from __future__ import annotations

import contextlib
import hashlib
import re
import subprocess
from typing import (
    TYPE_CHECKING,
    Any,
    List,
    Mapping,
    Tuple,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

from .aws import AWS_ERRORS, describe_aws_error
from .backup_settings import Connection, Settings
from .common import Failure, one_line
from .dumps import DOWNLOAD_CHUNK_BYTES, Backup
from .postgres import (
    ROW_COUNTS_SQL,
    PsqlSession,
    StderrTail,
    compare_row_counts,
    parse_row_counts,
    quote_identifier,
    quote_literal,
    run_psql,
    stop_process,
)

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


def stream_restore(settings: Settings, s3: S3Client, backup: Backup, scratch: Connection) -> None:
    """Stream the dump from S3 into pg_restore, hashing it on the way.

    Checksum while streaming, not before: a download-then-verify would need local disk
    as large as the dump and would serialise download and restore, which is most of the
    recovery time. Restoring unverified bytes is harmless because the target is always a
    new database (the drill's scratch one, or leanstack-restore's, which the app does not
    use until `--swap`), and a mismatch fails the run even when pg_restore accepted the
    bytes. A pipe also rules out `pg_restore --jobs`, which needs a seekable file.
    """
    try:
        body = s3.get_object(Bucket=settings.bucket, Key=backup.dump_key)["Body"]
    except AWS_ERRORS as error:
        raise Failure(f"cannot download {backup.dump_key}: {describe_aws_error(error)}") from None
    restore = subprocess.Popen(
        [
            settings.program("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--no-password",
            f"--dbname={scratch.url}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=scratch.child_env(),
    )
    assert restore.stdin is not None and restore.stderr is not None
    restore_errors = StderrTail(restore.stderr)
    whole = hashlib.sha256()
    size = 0
    restore_reading = True
    try:
        for chunk in body.iter_chunks(DOWNLOAD_CHUNK_BYTES):
            whole.update(chunk)
            size += len(chunk)
            if restore_reading:
                try:
                    restore.stdin.write(chunk)
                except BrokenPipeError:
                    # pg_restore gave up; keep hashing, so that a tampered dump is reported
                    # as the checksum mismatch it is rather than as pg_restore's symptom.
                    restore_reading = False
        with contextlib.suppress(BrokenPipeError):
            restore.stdin.close()
        restore.wait()
    except (*AWS_ERRORS, OSError) as error:
        stop_process(restore)
        raise Failure(f"download of {backup.dump_key} failed: {describe_aws_error(error)}") from None
    except BaseException:
        stop_process(restore)
        raise
    expected_sha, expected_size = str(backup.manifest["sha256"]), int(backup.manifest["size_bytes"])
    if whole.hexdigest() != expected_sha or size != expected_size:
        raise Failure(
            f"checksum mismatch for {backup.dump_key}: sha256 {whole.hexdigest()} ({size} bytes), "
            f"manifest says {expected_sha} ({expected_size} bytes)"
        )
    if restore.returncode != 0:
        raise Failure(f"pg_restore failed: {restore_errors.last('exit status %d' % restore.returncode)}")


def restore_and_check(settings: Settings, s3: S3Client, backup: Backup, into: Connection) -> Tuple[int, int]:
    """Restore, then compare the row counts with the manifest: (tables, rows) checked."""
    stream_restore(settings, s3, backup, into)
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


MIB = 1024 * 1024
GIB = 1024 * MIB


def restore_space_needed(manifest: Mapping[str, Any]) -> int:
    """The disk a restore of this backup needs: the database's size when the backup
    recorded it, else a generous multiple of the compressed dump; plus WAL headroom."""
    headroom = GIB + 256 * MIB
    if "database_size_bytes" in manifest:
        return int(int(manifest["database_size_bytes"]) * 1.2) + headroom
    return int(manifest["size_bytes"]) * 5 + headroom


def say(message: str) -> None:
    print(f"leanstack-restore: {message}", flush=True)
