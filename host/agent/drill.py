"""leanstack-restore-drill: restore the newest complete backup into a scratch database (by
default on a throw-away local PostgreSQL), check it against its manifest, optionally start
the app on it and check the files it references, report and drop it."""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import socket
import time
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
)

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

from . import contract
from .aws import AWS_ERRORS, describe_aws_error
from .backup import DRILL_REPORTS_SCANNED
from .backup_settings import Connection, Metrics, MetricValue, Settings, parse_database_url
from .common import ConfigError, Failure, env_int, env_value, iso, one_line, stamp, utc_now
from .drill_app import drill_start_app
from .dumps import DRILLS_FOLDER, Backup, choose_backup, is_count, list_keys, put_json
from .local_server import LocalServer
from .postgres import Busy, PsqlSession, create_marked_database, maintenance_connection, quote_identifier
from .restoring import (
    DRILL_LOCK_KEY,
    DRILL_MARK,
    drop_leftover_scratch_databases,
    drop_restorer,
    restore_and_check,
    restricted_role,
    run_verification,
    sql_file_rows,
    verified_dump,
)


def check_files(settings: Settings, scratch: Connection, options: DrillOptions) -> Dict[str, Any]:
    """The restored data's file references against the uploads' replica: a random sample of
    the keys FILES_SQL_FILE returns must exist there (HeadObject: read-only, no download)."""
    keys = sorted(
        {row.split("\x1f")[0] for row in sql_file_rows(settings, scratch, options.files_sql_path, "files SQL")}
    )
    keys = [key for key in keys if key]
    sample = random.sample(keys, min(options.files_sample, len(keys)))
    client = settings.s3(options.files_bucket_region)
    missing: List[str] = []
    for key in sample:
        try:
            client.head_object(Bucket=options.files_bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise Failure(f"files check: cannot read {options.files_bucket}: {describe_aws_error(error)}") from None
            missing.append(key)
    if missing:
        raise Failure(
            f"files check: {len(missing)} of {len(sample)} sampled files the restored data references are not "
            f"in {options.files_bucket}: {', '.join(sorted(missing)[:5])}"
        )
    return {"files_referenced": len(keys), "files_checked": len(sample), "files_bucket": options.files_bucket}


# ---------------------------------------------------------------------------------------
# leanstack-restore-drill

DRILL_TARGETS = contract.DRILL_TARGETS


@dataclass(frozen=True)
class DrillOptions:
    target: str
    url: Optional[Connection]
    verify_path: str
    starts_app: bool
    work_dir: str
    files_sql_path: str = ""
    files_bucket: str = ""
    files_bucket_region: str = ""
    files_sample: int = 100

    @staticmethod
    def from_env(env: Mapping[str, str]) -> DrillOptions:
        drill_url = env.get("DRILL_DATABASE_URL", "").strip()
        # Without DRILL_TARGET, a DRILL_DATABASE_URL means "url" (as before there was a choice).
        target = env_value(env, "DRILL_TARGET", "url" if drill_url else "local")
        if target not in DRILL_TARGETS:
            raise ConfigError(f"DRILL_TARGET must be one of {', '.join(DRILL_TARGETS)}, not {target!r}")
        if target == "url" and not drill_url:
            raise ConfigError("DRILL_TARGET is url but DRILL_DATABASE_URL is not set")
        verify_path = env.get("VERIFY_SQL_FILE", "").strip()
        if verify_path and not os.access(verify_path, os.R_OK):
            raise ConfigError(f"VERIFY_SQL_FILE {verify_path!r} cannot be read")
        starts = env_value(env, "DRILL_STARTS_APP", "0")
        if starts not in ("0", "1"):
            raise ConfigError(f"DRILL_STARTS_APP must be 0 or 1, not {starts!r}")
        if starts == "1" and target != "local":
            raise ConfigError(
                "DRILL_STARTS_APP needs DRILL_TARGET local: the app's network reaches only the drill's server"
            )
        files_path = env.get("FILES_SQL_FILE", "").strip()
        if files_path and not os.access(files_path, os.R_OK):
            raise ConfigError(f"FILES_SQL_FILE {files_path!r} cannot be read")
        if files_path and not env.get("FILES_BUCKET", "").strip():
            raise ConfigError("FILES_SQL_FILE is set but FILES_BUCKET (the uploads' replica bucket) is not")
        return DrillOptions(
            target=target,
            url=parse_database_url("DRILL_DATABASE_URL", drill_url) if target == "url" else None,
            verify_path=verify_path,
            starts_app=starts == "1",
            work_dir=env_value(env, "DRILL_WORK_DIR", "/var/tmp"),
            files_sql_path=files_path,
            files_bucket=env.get("FILES_BUCKET", "").strip(),
            files_bucket_region=env.get("FILES_BUCKET_REGION", "").strip()
            or env_value(env, "BACKUP_BUCKET_REGION", env.get("AWS_REGION")),
            files_sample=env_int(env, "FILES_SAMPLE", 100, 1, 10000),
        )


@contextlib.contextmanager
def drill_server(
    settings: Settings, options: DrillOptions, backup: Backup, report: Dict[str, Any], warnings: List[str]
) -> Iterator[Tuple[PsqlSession, Optional[LocalServer]]]:
    """A maintenance session on the server the drill restores into, holding the drill lock."""
    local: Optional[LocalServer] = None
    if options.target == "local":
        local = LocalServer(settings, options.work_dir)
        try:
            connection = local.start(backup)
        except BaseException:
            local.stop(warnings)
            raise
        report["local_server_version"] = local.version
    elif options.url is not None:
        connection = options.url
    else:
        connection = maintenance_connection(settings)
    try:
        session = PsqlSession(settings, connection, "cannot connect to the drill's server")
        try:
            locked = session.query(f"SELECT pg_try_advisory_lock({DRILL_LOCK_KEY});", "cannot take the drill lock")
            if locked[:1] != ["t"]:
                raise Busy("another restore drill holds the lock on this database server; nothing to do")
            yield session, local
        finally:
            session.close()
    finally:
        if local is not None:
            local.stop(warnings)


def restore_drill(settings: Settings, warnings: List[str]) -> str:
    options = DrillOptions.from_env(settings.env)
    database = settings.database_name()
    metrics = Metrics(settings, warnings)
    s3 = settings.s3()
    started_at = utc_now()
    started = time.monotonic()
    drill_id = f"{stamp(started_at).lower()}_{secrets.token_hex(4)}"
    report: Dict[str, Any] = {
        "stack": settings.stack,
        "database": database,
        "target": options.target,
        "started_at": iso(started_at),
        "host": socket.gethostname(),
    }
    backup_age: Optional[float] = None
    app_seconds: Optional[float] = None
    try:
        try:
            skipped: List[str] = []
            try:
                chosen = choose_backup(settings, s3, database, skipped)
            finally:
                if skipped:
                    report["skipped"] = skipped
                    warnings.extend(skipped)
            backup_age = (started_at - chosen.started_at).total_seconds()
            report.update(backup_key=chosen.dump_key, backup_started_at=chosen.manifest["started_at"])
            report["backup_age_seconds"] = round(backup_age, 3)
            report["backup_size_bytes"] = chosen.manifest["size_bytes"]
            encoding = str(chosen.manifest.get("encoding", "UTF8"))
            scratch_name = f"leanstack_drill_{drill_id}"
            report["scratch_database"] = scratch_name
            with contextlib.ExitStack() as held:
                # The drill lock first: no download while another drill restores.
                session, local = held.enter_context(drill_server(settings, options, chosen, report, warnings))
                download_started = time.monotonic()
                dump_path = held.enter_context(verified_dump(settings, s3, chosen, options.work_dir))
                report["download_seconds"] = round(time.monotonic() - download_started, 3)
                if local is None:
                    drop_leftover_scratch_databases(session, database, warnings)
                restore_started = time.monotonic()
                restorer = restricted_role(session)
                report["restored_as"] = restorer.connection.user
                restore_error: Optional[BaseException] = None
                try:
                    create_marked_database(settings, session, scratch_name, encoding, DRILL_MARK, restorer.role)
                    scratch = restorer.connection.with_database(scratch_name)
                    tables, rows = restore_and_check(settings, dump_path, chosen, scratch)
                    restore_seconds = time.monotonic() - restore_started
                    recovery_seconds = time.monotonic() - started
                    report.update(
                        restore_seconds=round(restore_seconds, 3),
                        recovery_seconds=round(recovery_seconds, 3),
                        tables_checked=tables,
                        rows_checked=rows,
                    )
                    if options.verify_path:
                        report["verification_rows"] = run_verification(settings, scratch, options.verify_path)
                    if options.files_sql_path:
                        report.update(check_files(settings, scratch, options))
                    if options.starts_app and local is not None:
                        app_seconds = drill_start_app(settings, local, scratch, drill_id, report)
                        report["app_start_seconds"] = round(app_seconds, 3)
                except BaseException as error:
                    restore_error = error
                    raise
                finally:
                    if local is None:
                        # Only the database this run created, by the name it created.
                        try:
                            session.query(
                                f"DROP DATABASE IF EXISTS {quote_identifier(scratch_name)} WITH (FORCE);",
                                f"cannot drop the scratch database {scratch_name}",
                            )
                        except Failure as drop_failure:
                            if restore_error is None:
                                raise
                            warnings.append(str(drop_failure))
                        drop_restorer(session, restorer, warnings)
        except Exception as error:
            if isinstance(error, (Failure, Busy)):
                raise
            # A bug in this tool still ends as a reported, alarmed drill failure.
            raise Failure(f"internal error: {type(error).__name__}: {one_line(str(error))}") from error
    except Failure as failure:
        report.update(result="failure", reason=str(failure))
        report_problem = finish_drill(settings, s3, report, started, drill_id)
        if report_problem is not None:
            warnings.append(report_problem)
        failure_metrics: List[MetricValue] = [("RestoreDrillFailure", 1, "Count")]
        if backup_age is not None:
            failure_metrics.append(("RestoreDrillBackupAgeSeconds", backup_age, "Seconds"))
        metrics.publish(failure_metrics)
        raise
    comparison = compare_with_other_target(settings, s3, options.target, restore_seconds, chosen)
    if comparison is not None:
        report["compared_with"] = comparison
    report["result"] = "success"
    report_problem = finish_drill(settings, s3, report, started, drill_id)
    if report_problem is not None:
        # The drill itself succeeded, but without its report the backup keeps publishing
        # a stale RestoreDrillAgeDays: that is a failure too.
        raise Failure(report_problem)
    values: List[MetricValue] = [
        ("RestoreDrillSuccess", 1, "Count"),
        ("RestoreDrillDurationSeconds", recovery_seconds, "Seconds"),
        ("RestoreDrillRestoreSeconds", restore_seconds, "Seconds"),
        ("RestoreDrillBackupAgeSeconds", float(backup_age or 0), "Seconds"),
        ("RestoreDrillAgeDays", 0, "None"),
    ]
    if app_seconds is not None:
        values.append(("RestoreDrillAppStartSeconds", app_seconds, "Seconds"))
    metrics.publish(values)
    summary = (
        f"restore drill ok: {chosen.dump_key} (recovery point {backup_age:.0f} s old) restored "
        f"({options.target} target) in {restore_seconds:.1f} s; {report['tables_checked']} tables, "
        f"{report['rows_checked']} rows checked"
    )
    if "files_checked" in report:
        summary += f"; {report['files_checked']} of {report['files_referenced']} referenced files found in the replica"
    if app_seconds is not None:
        summary += f"; the app answered its health path after {app_seconds:.1f} s"
    if comparison is not None:
        summary += (
            f"; the last {comparison['target']} drill restored {comparison['backup_size_bytes']} bytes "
            f"in {comparison['restore_seconds']:.1f} s"
        )
    return summary


def compare_with_other_target(
    settings: Settings, s3: S3Client, target: str, restore_seconds: float, backup: Backup
) -> Optional[Dict[str, Any]]:
    """The newest successful drill into another target (the instance, for a local drill):
    the report then says how the two restore times compare. Best effort."""
    folder = settings.stack_key(settings.stack, DRILLS_FOLDER) + "/"
    try:
        reports = sorted(list_keys(s3, settings.bucket, folder), reverse=True)[:DRILL_REPORTS_SCANNED]
        for key in reports:
            other = json.loads(s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read())
            if (
                isinstance(other, dict)
                and other.get("result") == "success"
                and other.get("target", "url") != target
                and isinstance(other.get("restore_seconds"), (int, float))
                and is_count(other.get("backup_size_bytes"))
            ):
                return {
                    "target": str(other.get("target", "url")),
                    "report": key,
                    "restore_seconds": float(other["restore_seconds"]),
                    "backup_size_bytes": int(other["backup_size_bytes"]),
                    "this_restore_seconds": round(restore_seconds, 3),
                    "this_backup_size_bytes": int(backup.manifest["size_bytes"]),
                }
    except (*AWS_ERRORS, ValueError):
        return None
    return None


def finish_drill(
    settings: Settings, s3: S3Client, report: Dict[str, Any], started: float, drill_id: str
) -> Optional[str]:
    """Write the drill's report, the audit trail RestoreDrillAgeDays is computed from.

    The key is unique per drill (time and a random part), so two drills finishing in the
    same second cannot collide. Returns why it could not be written, if so.
    """
    finished_at = utc_now()
    report["finished_at"] = iso(finished_at)
    report["duration_seconds"] = round(time.monotonic() - started, 3)
    key = settings.stack_key(settings.stack, DRILLS_FOLDER, f"{stamp(finished_at)}-{drill_id.rsplit('_', 1)[-1]}.json")
    try:
        put_json(s3, settings.bucket, key, report)
    except AWS_ERRORS as error:
        return f"cannot write the drill report {key}: {describe_aws_error(error)}"
    return None
