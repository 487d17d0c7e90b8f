"""leanstack-backup's nightly run: pg_dump streamed to S3 in create-only parts, its manifest
(checksum, size, row counts) written after it, and the backup's metrics."""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import hashlib
import json
import math
import socket
import subprocess
import time
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    List,
    Tuple,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

from .aws import AWS_ERRORS, describe_aws_error
from .backup_settings import Connection, Metrics, MetricValue, Settings
from .common import Failure, env_int, iso, parse_iso, parse_stamp, stamp, utc_now
from .dumps import (
    CLOCK_SKEW_SECONDS,
    DRILLS_FOLDER,
    DUMP_SUFFIX,
    MANIFEST_FORMAT,
    MANIFEST_SUFFIX,
    STAMP_PATTERN,
    MultipartUpload,
    list_keys,
    put_json,
    read_exactly,
)
from .postgres import ROW_COUNTS_SQL, PsqlSession, StderrTail, parse_row_counts, pg_program_version, stop_process

# Published as RestoreDrillAgeDays when no successful drill report exists at all.
NO_DRILL_AGE_DAYS = 9999.0
# How many of the newest drill reports the backup reads looking for a successful one.
DRILL_REPORTS_SCANNED = 60


def newest_successful_drill_age_days(settings: Settings, client: S3Client) -> float:
    """Days since the newest successful drill of this stack. Reports dated in the future are
    passed over: a planted `_drills/29991231T000000Z.json` must not silence the stale-drill
    alarm. Reports in the layout before per-stack folders (<prefix>/_drills/) count when
    they name this stack."""
    latest_trusted = utc_now() + datetime.timedelta(seconds=CLOCK_SKEW_SECONDS)
    reports: List[Tuple[str, str]] = []
    for folder in (settings.stack_key(settings.stack, DRILLS_FOLDER) + "/", settings.key(DRILLS_FOLDER) + "/"):
        for key in list_keys(client, settings.bucket, folder):
            name = key[len(folder) :]
            if key.endswith(".json") and STAMP_PATTERN.match(name[:16]) and parse_stamp(name[:16]) <= latest_trusted:
                reports.append((name, key))
    for _, key in sorted(reports, reverse=True)[:DRILL_REPORTS_SCANNED]:
        body = client.get_object(Bucket=settings.bucket, Key=key)["Body"].read()
        try:
            report = json.loads(body)
            if report.get("result") == "success" and report.get("stack", settings.stack) == settings.stack:
                finished = parse_iso(str(report["finished_at"]))
                if finished > latest_trusted:
                    continue
                return max(0.0, (utc_now() - finished).total_seconds() / 86400.0)
        except (ValueError, KeyError, AttributeError, TypeError):
            continue
    return NO_DRILL_AGE_DAYS


# ---------------------------------------------------------------------------------------
# leanstack-backup


def unused_dump_key(settings: Settings, s3: S3Client, database: str) -> str:
    """<stack>/<database>/<stamp>.dump for a stamp no earlier backup used. Stamps have
    one-second resolution and the bucket is write-once, so a second run within the
    second of the last one (a manual backup right after the timer's) would upload its
    whole dump only to be refused at the end; it waits for the next second instead."""
    for _ in range(5):
        stem = settings.stack_key(settings.stack, database, stamp(utc_now()))
        try:
            taken = list_keys(s3, settings.bucket, stem)
        except AWS_ERRORS as error:
            raise Failure(f"cannot list the earlier backups: {describe_aws_error(error)}") from None
        if not taken:
            return stem + DUMP_SUFFIX
        time.sleep(1.0 - math.modf(time.time())[0] + 0.01)
    raise Failure(f"the backup name {stem}{DUMP_SUFFIX} is taken, and so were the next four; is the clock stuck?")


def backup(settings: Settings, warnings: List[str]) -> str:
    part_size = env_int(settings.env, "BACKUP_PART_SIZE_MIB", 16, 5, 5120) * 1024 * 1024
    metrics = Metrics(settings, warnings)
    s3 = settings.s3()
    started = time.monotonic()
    try:
        database = settings.database_name()
        source = settings.source_connection()
        key = unused_dump_key(settings, s3, database)
        manifest = dump_to_s3(settings, s3, source, key, part_size)
    except Failure:
        failure_metrics: List[MetricValue] = [("BackupFailure", 1, "Count")]
        with contextlib.suppress(*AWS_ERRORS):
            failure_metrics.append(("RestoreDrillAgeDays", newest_successful_drill_age_days(settings, s3), "None"))
        metrics.publish(failure_metrics)
        raise
    manifest_key = key[: -len(DUMP_SUFFIX)] + MANIFEST_SUFFIX
    manifest["duration_seconds"] = round(time.monotonic() - started, 3)
    try:
        put_json(s3, settings.bucket, manifest_key, manifest)
    except AWS_ERRORS as error:
        metrics.publish([("BackupFailure", 1, "Count")])
        raise Failure(
            "the dump was uploaded but its manifest was not, so it will never be used: " + describe_aws_error(error)
        ) from None
    duration = time.monotonic() - started
    try:
        drill_age_days = newest_successful_drill_age_days(settings, s3)
    except AWS_ERRORS as error:
        warnings.append(f"cannot read the drill reports: {describe_aws_error(error)}")
        drill_age_days = NO_DRILL_AGE_DAYS
    metrics.publish(
        [
            ("BackupSuccess", 1, "Count"),
            ("BackupDurationSeconds", duration, "Seconds"),
            ("BackupSizeBytes", float(manifest["size_bytes"]), "Bytes"),
            ("BackupLastSuccessTimestamp", time.time(), "None"),
            ("RestoreDrillAgeDays", drill_age_days, "None"),
        ]
    )
    return (
        f"backup ok: s3://{settings.bucket}/{key} ({manifest['size_bytes']} bytes, "
        f"{len(manifest['row_counts'])} tables) in {duration:.1f} s"
    )


def dump_to_s3(settings: Settings, s3: S3Client, source: Connection, key: str, part_size: int) -> Dict[str, Any]:
    started_at = utc_now()
    session = PsqlSession(settings, source, "cannot connect to the database")
    try:
        # A read-only REPEATABLE READ transaction exports its snapshot; pg_dump imports it,
        # and the row counts run in this transaction, so both see the same data.
        lines = session.query(
            "SET row_security = off;\n"
            # The counts run alongside pg_dump: one backend, not a parallel scan that
            # would take the CPU pg_dump needs (on RDS, the server's CPU).
            "SET max_parallel_workers_per_gather = 0;\n"
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\n"
            "SELECT pg_export_snapshot() || '|' || current_setting('server_version') || '|' || "
            "pg_encoding_to_char(encoding) || '|' || pg_database_size(oid) "
            "FROM pg_database WHERE datname = current_database();"
        )
        snapshot, server_version, encoding, database_size = lines[0].split("|", 3)
        dump = subprocess.Popen(
            [
                settings.program("pg_dump"),
                "--format=custom",
                f"--snapshot={snapshot}",
                "--no-password",
                "--lock-wait-timeout=300s",
                f"--dbname={source.url}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=source.child_env(),
        )
        assert dump.stdout is not None and dump.stderr is not None
        dump_errors = StderrTail(dump.stderr)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as counter:
            # Counting overlaps the dump: both only read, in the same snapshot.
            counts = counter.submit(lambda: parse_row_counts(session.query(ROW_COUNTS_SQL, "counting rows failed")))
            upload = MultipartUpload(s3, settings.bucket, key)
            try:
                whole = hashlib.sha256()
                size = 0
                while True:
                    part = read_exactly(dump.stdout, part_size)
                    if not part:
                        break
                    whole.update(part)
                    size += len(part)
                    upload.add_part(part)
                if dump.wait() != 0:
                    raise Failure(f"pg_dump failed: {dump_errors.last('exit status %d' % dump.returncode)}")
                if size == 0:
                    raise Failure("pg_dump wrote nothing")
                counted = counts.result()
                upload.complete(size)
            except BaseException as error:
                stop_process(dump)
                # Ends a count still running in the other thread, so the pool can close.
                stop_process(session.process)
                abort_problem = upload.abort()
                if abort_problem is not None and isinstance(error, Failure):
                    raise Failure(f"{error}; {abort_problem}") from None
                raise
            upload.pool.shutdown(wait=True)
        session.query("COMMIT;", "the snapshot transaction failed")
    finally:
        session.close()
    finished_at = utc_now()
    return {
        "format": MANIFEST_FORMAT,
        "stack": settings.stack,
        "database": source.database,
        "dump_key": key,
        "sha256": whole.hexdigest(),
        "size_bytes": size,
        "server_version": server_version,
        "encoding": encoding,
        # What a restore needs on disk, roughly: the drill checks free space against it.
        "database_size_bytes": int(database_size),
        "pg_dump_version": pg_program_version(settings, "pg_dump"),
        "snapshot": snapshot,
        "started_at": iso(started_at),
        "finished_at": iso(finished_at),
        "row_counts": counted["tables"],
        "large_objects": counted["large_objects"],
        "host": socket.gethostname(),
    }
