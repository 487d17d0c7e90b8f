"""leanstack-backup and leanstack-restore-drill against a real PostgreSQL and moto's S3.

Every test runs the tool as a subprocess with a complete environment, exactly as systemd
would, and judges it by its exit status, its output and what it left in the bucket, the
database and CloudWatch.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import http.server
import json
import os
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from mypy_boto3_s3 import S3Client

from support.servers import LoopbackProxy, PostgresServer
from tests.host.helpers import (
    APP_PASSWORD,
    APP_USER,
    BUCKET_REGION,
    HOST_REGION,
    STAMP_FORMAT,
    Moto,
    assert_one_line_failure,
    backup_and_manifest,
    drill_reports,
    metric_maximum,
    metric_names,
    object_keys,
    run_tool,
    scratch_databases,
    start_tool,
)

MIB = 1024 * 1024

SAMPLE_SQL = """
CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL, city text);
INSERT INTO customers VALUES
  (1, 'Zoë Ångström', 'Zürich'), (2, '山田太郎', '東京'), (3, 'Ιωάννης', 'Αθήνα'),
  (4, 'emoji 🎉🐘', NULL), (5, E'tab\\tand\\nnewline \\\\ backslash', 'Ñandú');
CREATE TABLE events (
  id bigint PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES customers (id),
  happened_at timestamptz NOT NULL,
  payload jsonb NOT NULL
);
INSERT INTO events
SELECT g, 1 + g % 5, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second',
       jsonb_build_object('n', g, 'note', 'événement n° ' || g)
FROM generate_series(1, 120000) g;
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (id serial PRIMARY KEY, amount numeric(12, 2), document oid);
INSERT INTO billing.invoices (amount, document)
SELECT g * 1.25, lo_from_bytea(0, convert_to('Rechnung Nr. ' || g || ' — Größe ≥ 1', 'UTF8'))
FROM generate_series(1, 20) g;
CREATE TABLE "Mixed Case" ("Value" text);
INSERT INTO "Mixed Case" VALUES ('quoted identifiers'), (NULL);
CREATE VIEW recent_events AS SELECT * FROM events WHERE id > 119990;
"""
TABLES = ("customers", "events", "billing.invoices", '"Mixed Case"')
LARGE_OBJECTS_FINGERPRINT = (
    "SELECT md5(string_agg(oid::text || ':' || md5(lo_get(oid)), ',' ORDER BY oid)) FROM pg_largeobject_metadata"
)


def table_fingerprint(table: str) -> str:
    return f"SELECT md5(string_agg(t::text, E'\\n' ORDER BY t::text)) FROM {table} t"


def fingerprints(postgres: PostgresServer, database: str) -> dict[str, str]:
    queries = {table: table_fingerprint(table) for table in TABLES}
    queries["large objects"] = LARGE_OBJECTS_FINGERPRINT
    queries["invoice sequence"] = "SELECT last_value FROM billing.invoices_id_seq"
    queries["view"] = "SELECT md5(string_agg(id::text, ',' ORDER BY id)) FROM recent_events"
    return {name: postgres.psql(sql + ";", database=database) for name, sql in queries.items()}


def verification_sql(expected: dict[str, str]) -> str:
    """One row per check: does the restored database have exactly the original data?"""
    lines = [f"SELECT ({table_fingerprint(table)}) = '{expected[table]}';" for table in TABLES]
    lines.append(f"SELECT ({LARGE_OBJECTS_FINGERPRINT}) = '{expected['large objects']}';")
    lines.append(f"SELECT (SELECT last_value FROM billing.invoices_id_seq) = {expected['invoice sequence']};")
    view_fingerprint = "SELECT md5(string_agg(id::text, ',' ORDER BY id)) FROM recent_events"
    lines.append(f"SELECT ({view_fingerprint}) = '{expected['view']}';")
    return "\n".join(lines) + "\n"


def open_uploads(s3: S3Client, bucket: str) -> list[str]:
    return [upload["Key"] for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


@contextlib.contextmanager
def backup_paused_mid_upload(
    moto: Moto, postgres: PostgresServer, bulk_database: str, tool_env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[str], LoopbackProxy, dict[str, str]]]:
    """leanstack-backup of the bulk database with its S3 traffic through a proxy that stalls it
    after 7 MiB, parts in flight; yields the running tool, the proxy (the test resumes it) and
    the tool's environment. On the way out the proxy closes and a tool still running is killed."""
    proxy = LoopbackProxy(moto.port, budget=7 * MIB, pause=True)
    env = {
        **tool_env,
        "DATABASE_URL": postgres.url(APP_USER, APP_PASSWORD, bulk_database),
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{proxy.port}",
    }
    tool = start_tool("backup", env)
    try:
        assert proxy.exhausted.wait(timeout=60), "the upload never reached the proxy's budget"
        yield tool, proxy, env
    finally:
        proxy.close()
        if tool.poll() is None:
            tool.kill()
            tool.wait()


def pg_dumps_of(database: str) -> list[int]:
    """Live pg_dump processes dumping `database`, whoever their parent is now."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if argv and argv[0].endswith(b"pg_dump") and any(database.encode() in arg for arg in argv):
            found.append(int(entry.name))
    return found


def children_of(pid: int, name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        command = stat[stat.index("(") + 1 : stat.rindex(")")]
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if parent == pid and command == name:
            found.append(int(entry.name))
    return found


# ---------------------------------------------------------------------------------------


def test_round_trip_restores_identical_data(
    postgres: PostgresServer,
    moto: Moto,
    bucket: str,
    app_database: str,
    tool_env: dict[str, str],
    stack_name: str,
    tmp_path: Path,
) -> None:
    postgres.psql(SAMPLE_SQL, database=app_database, user=APP_USER)
    original = fingerprints(postgres, app_database)
    s3 = moto.client_s3()

    backed_up = run_tool("backup", tool_env)
    assert backed_up.returncode == 0, backed_up.stderr
    assert backed_up.stderr == ""
    assert backed_up.stdout.startswith("backup ok: ")
    dump_key, manifest = backup_and_manifest(s3, bucket, app_database)
    dump = s3.get_object(Bucket=bucket, Key=dump_key)["Body"].read()
    assert manifest["sha256"] == hashlib.sha256(dump).hexdigest()
    assert manifest["size_bytes"] == len(dump)
    assert manifest["row_counts"] == {
        "public.customers": 5,
        "public.events": 120000,
        "billing.invoices": 20,
        'public."Mixed Case"': 2,
    }
    assert manifest["large_objects"] == 20
    assert str(manifest["server_version"]).split()[0] == postgres.psql("SHOW server_version;").split()[0]
    assert not open_uploads(s3, bucket)
    # No successful drill yet: the backup says so with the large age.
    assert metric_maximum(moto, stack_name, "RestoreDrillAgeDays") == 9999
    assert metric_maximum(moto, stack_name, "BackupSizeBytes") == len(dump)

    # Destroy the data: the drill must rebuild it from the bucket alone.
    postgres.psql(
        "DROP SCHEMA public CASCADE; DROP SCHEMA billing CASCADE; CREATE SCHEMA public;"
        "SELECT lo_unlink(oid) FROM pg_largeobject_metadata;",
        database=app_database,
        user=APP_USER,
    )
    assert postgres.psql("SELECT count(*) FROM pg_largeobject_metadata;", database=app_database) == "0"

    verify_file = tmp_path / "verify.sql"
    verify_file.write_text(verification_sql(original), encoding="utf-8")
    drilled = run_tool("restore-drill", {**tool_env, "VERIFY_SQL_FILE": str(verify_file)})
    assert drilled.returncode == 0, drilled.stderr
    assert drilled.stderr == ""
    assert drilled.stdout.startswith(f"restore drill ok: {dump_key} ")
    assert "120027 rows checked" in drilled.stdout
    assert scratch_databases(postgres) == []

    reports = drill_reports(s3, bucket)
    assert len(reports) == 1 and reports[0]["result"] == "success"
    assert reports[0]["verification_rows"] == len(TABLES) + 3
    assert {
        "BackupSuccess",
        "BackupDurationSeconds",
        "BackupSizeBytes",
        "BackupLastSuccessTimestamp",
        "RestoreDrillAgeDays",
        "RestoreDrillSuccess",
        "RestoreDrillDurationSeconds",
        "RestoreDrillBackupAgeSeconds",
    } <= metric_names(moto, stack_name)
    assert "BackupFailure" not in metric_names(moto, stack_name)
    assert "RestoreDrillFailure" not in metric_names(moto, stack_name)


def test_drill_fails_when_verification_sql_fails(
    postgres: PostgresServer,
    moto: Moto,
    bucket: str,
    app_database: str,
    tool_env: dict[str, str],
    stack_name: str,
    tmp_path: Path,
) -> None:
    postgres.psql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2);", app_database, APP_USER)
    assert run_tool("backup", tool_env).returncode == 0
    s3 = moto.client_s3()
    cases = {
        "SELECT true; SELECT false;": "row 2 is not true",
        "SELECT 1 WHERE false;": "returned no rows",
        "SELECT * FROM no_such_table;": 'relation "no_such_table" does not exist',
    }
    for sql, reason in cases.items():
        verify_file = tmp_path / "verify.sql"
        verify_file.write_text(sql + "\n")
        drilled = run_tool("restore-drill", {**tool_env, "VERIFY_SQL_FILE": str(verify_file)})
        assert_one_line_failure(drilled, "verification SQL", reason)
        assert scratch_databases(postgres) == []
    reports = drill_reports(s3, bucket)
    assert [report["result"] for report in reports] == ["failure"] * len(cases)
    assert metric_maximum(moto, stack_name, "RestoreDrillFailure") == 1
    assert "RestoreDrillSuccess" not in metric_names(moto, stack_name)

    # Correct SQL passes, and the next backup sees a fresh successful drill.
    verify_file.write_text("SELECT count(*) = 2 FROM t;\n")
    assert run_tool("restore-drill", {**tool_env, "VERIFY_SQL_FILE": str(verify_file)}).returncode == 0
    # A separate namespace, so that only this backup's RestoreDrillAgeDays is read: it
    # finds the successful report among the failed ones.
    second_backup = run_tool("backup", {**tool_env, "METRICS_NAMESPACE": "LeanstackTestAgain"})
    assert second_backup.returncode == 0, second_backup.stderr
    drill_age_days = metric_maximum(moto, stack_name, "RestoreDrillAgeDays", "LeanstackTestAgain")
    assert drill_age_days is not None and drill_age_days < 0.01


def test_s3_going_away_mid_upload_leaves_no_backup(
    moto: Moto, bucket: str, bulk_database: str, postgres: PostgresServer, tool_env: dict[str, str]
) -> None:
    proxy = LoopbackProxy(moto.port, budget=7 * MIB)
    env = {
        **tool_env,
        "DATABASE_URL": postgres.url(APP_USER, APP_PASSWORD, bulk_database),
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{proxy.port}",
        # Fewer retries against the vanished server: the test waits less, nothing else changes.
        "AWS_MAX_ATTEMPTS": "2",
    }
    try:
        result = run_tool("backup", env)
    finally:
        proxy.close()
    assert proxy.exhausted.is_set(), "the proxy never cut the upload: the dump was too small"
    line = assert_one_line_failure(result, "failed")
    assert "upload" in line or "part" in line
    s3 = moto.client_s3()
    assert object_keys(s3, bucket) == []
    # With S3 unreachable the tool could not abort; an incomplete upload is not an object.
    assert len(open_uploads(s3, bucket)) <= 1
    assert pg_dumps_of(bulk_database) == []


@pytest.mark.parametrize("interruption", ["pg_dump dies", "SIGTERM"])
def test_interrupted_backup_aborts_its_upload(
    moto: Moto,
    bucket: str,
    bulk_database: str,
    postgres: PostgresServer,
    tool_env: dict[str, str],
    interruption: str,
) -> None:
    # The upload stalls at the proxy with parts in flight: the backup is mid-stream.
    with backup_paused_mid_upload(moto, postgres, bulk_database, tool_env) as (tool, proxy, _):
        dumps = children_of(tool.pid, "pg_dump")
        assert len(dumps) == 1
        assert pg_dumps_of(bulk_database) == dumps
        if interruption == "pg_dump dies":
            os.kill(dumps[0], signal.SIGKILL)
        else:
            tool.send_signal(signal.SIGTERM)
        proxy.resume()
        _, stderr = tool.communicate(timeout=60)
    expected = "pg_dump failed" if interruption == "pg_dump dies" else "interrupted by SIGTERM"
    assert tool.returncode == 1, stderr
    assert len(stderr.splitlines()) == 1 and expected in stderr, stderr
    s3 = moto.client_s3()
    assert object_keys(s3, bucket) == []
    assert open_uploads(s3, bucket) == []
    assert pg_dumps_of(bulk_database) == []


@pytest.mark.parametrize("fault", ["wrong password", "nothing listening"])
def test_database_connection_failure_is_one_line(
    postgres: PostgresServer,
    moto: Moto,
    bucket: str,
    app_database: str,
    tool_env: dict[str, str],
    stack_name: str,
    fault: str,
) -> None:
    if fault == "wrong password":
        url, reason = (
            postgres.url(APP_USER, "not-the-password", app_database),
            "password authentication failed",
        )
    else:
        url, reason = f"postgresql://{APP_USER}:x@127.0.0.1:1/{app_database}", "Connection refused"
    result = run_tool("backup", {**tool_env, "DATABASE_URL": url})
    line = assert_one_line_failure(result, "cannot connect to the database", reason)
    assert "not-the-password" not in line
    s3 = moto.client_s3()
    assert object_keys(s3, bucket) == []
    assert open_uploads(s3, bucket) == []
    assert metric_maximum(moto, stack_name, "BackupFailure") == 1
    assert "BackupSuccess" not in metric_names(moto, stack_name)


def test_tampered_dump_fails_the_drill_on_its_checksum(
    postgres: PostgresServer, moto: Moto, bucket: str, app_database: str, tool_env: dict[str, str]
) -> None:
    postgres.psql(
        "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g;",
        app_database,
        APP_USER,
    )
    assert run_tool("backup", tool_env).returncode == 0
    s3 = moto.client_s3()
    dump_key, manifest = backup_and_manifest(s3, bucket, app_database)
    dump = bytearray(s3.get_object(Bucket=bucket, Key=dump_key)["Body"].read())
    dump[len(dump) // 2] ^= 0x01
    # Object Lock forbids replacing the dump, so the tampered copy poses as a newer backup.
    stamp = datetime.datetime.strptime(dump_key.rsplit("/", 1)[1].removesuffix(".dump"), STAMP_FORMAT)
    # A minute later: within the clock skew the drill trusts, so it is the newest backup.
    newer = f"{dump_key.rsplit('/', 1)[0]}/{(stamp + datetime.timedelta(minutes=1)).strftime(STAMP_FORMAT)}"
    s3.put_object(Bucket=bucket, Key=newer + ".dump", Body=bytes(dump), ChecksumAlgorithm="SHA256")
    s3.put_object(
        Bucket=bucket,
        Key=newer + ".manifest.json",
        Body=json.dumps(manifest).encode(),
        ChecksumAlgorithm="SHA256",
    )
    drilled = run_tool("restore-drill", tool_env)
    assert_one_line_failure(drilled, "checksum mismatch", newer + ".dump")
    assert scratch_databases(postgres) == []
    reports = drill_reports(s3, bucket)
    assert reports[-1]["result"] == "failure" and "checksum mismatch" in str(reports[-1]["reason"])


def test_drill_ignores_a_dump_without_manifest(
    postgres: PostgresServer, moto: Moto, bucket: str, app_database: str, tool_env: dict[str, str]
) -> None:
    postgres.psql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);", app_database, APP_USER)
    assert run_tool("backup", tool_env).returncode == 0
    s3 = moto.client_s3()
    dump_key, _ = backup_and_manifest(s3, bucket, app_database)
    incomplete = f"{dump_key.rsplit('/', 1)[0]}/29991231T235959Z.dump"
    s3.put_object(Bucket=bucket, Key=incomplete, Body=b"half a dump", ChecksumAlgorithm="SHA256")
    # A scratch database left by a drill that was killed outright (marked, as the drill
    # marks its own): the next drill drops it. The look-alikes carry no mark and stay.
    postgres.psql("CREATE DATABASE leanstack_drill_20260101t000000z_4242;")
    postgres.psql(
        "COMMENT ON DATABASE leanstack_drill_20260101t000000z_4242 IS 'leanstack-restore-drill scratch database';"
    )
    postgres.psql("CREATE DATABASE leanstack_drill_20260101t000000z_77;")
    postgres.psql("CREATE DATABASE leanstack_drill_lookalike;")
    try:
        drilled = run_tool("restore-drill", tool_env)
        assert drilled.returncode == 0, drilled.stderr
        assert drilled.stdout.startswith(f"restore drill ok: {dump_key} ")
        assert drilled.stderr.splitlines() == [
            "leanstack-restore-drill: warning: dropped the scratch database leanstack_drill_20260101t000000z_4242 "
            "an interrupted drill had left",
            "leanstack-restore-drill: warning: left leanstack_drill_20260101t000000z_77 alone: its name looks like "
            "a drill's, but the drill did not mark it",
        ]
        assert scratch_databases(postgres) == ["leanstack_drill_20260101t000000z_77", "leanstack_drill_lookalike"]
    finally:
        postgres.psql("DROP DATABASE IF EXISTS leanstack_drill_lookalike;")
        postgres.psql("DROP DATABASE IF EXISTS leanstack_drill_20260101t000000z_77;")


def test_drill_without_any_backup_fails(moto: Moto, bucket: str, tool_env: dict[str, str], stack_name: str) -> None:
    drilled = run_tool("restore-drill", tool_env)
    assert_one_line_failure(drilled, "no complete backup")
    assert metric_maximum(moto, stack_name, "RestoreDrillFailure") == 1


def test_object_lock_refuses_overwrite_and_delete(
    postgres: PostgresServer,
    moto: Moto,
    bucket: str,
    app_database: str,
    bulk_database: str,
    tool_env: dict[str, str],
    stack_name: str,
) -> None:
    s3 = moto.client_s3()
    # Another writer takes the very key while the dump is on its way (after the backup chose it
    # as unused): S3 must refuse the completion, not replace the other object.
    with backup_paused_mid_upload(moto, postgres, bulk_database, tool_env) as (running, proxy, _):
        uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        assert len(uploads) == 1, uploads
        taken = uploads[0]["Key"]
        s3.put_object(Bucket=bucket, Key=taken, Body=b"earlier object", ChecksumAlgorithm="SHA256")
        proxy.resume()
        stdout, stderr = running.communicate(timeout=120)
    refused = subprocess.CompletedProcess(running.args, running.returncode, stdout, stderr)
    assert_one_line_failure(refused, "cannot complete the upload", "PreconditionFailed")
    assert open_uploads(s3, bucket) == []
    assert s3.get_object(Bucket=bucket, Key=taken)["Body"].read() == b"earlier object"
    assert [key for key in object_keys(s3, bucket) if key.endswith(".manifest.json")] == []

    # A real backup, then what the bucket does with its objects.
    fresh_env = {**tool_env, "BACKUP_PREFIX": "elsewhere"}
    assert run_tool("backup", fresh_env).returncode == 0
    dump_key = next(key for key in object_keys(s3, bucket) if key.startswith("elsewhere/") and key.endswith(".dump"))
    manifest_key = dump_key.removesuffix(".dump") + ".manifest.json"
    # The bucket's default retention locks every new object. moto applies it to PutObject
    # only, not to a completed multipart upload as S3 does, so the manifest shows it here.
    head = s3.head_object(Bucket=bucket, Key=manifest_key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    with pytest.raises(ClientError) as deleting:
        s3.delete_object(Bucket=bucket, Key=manifest_key, VersionId=head["VersionId"])
    assert deleting.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as overwriting:
        s3.put_object(Bucket=bucket, Key=dump_key, Body=b"x", IfNoneMatch="*", ChecksumAlgorithm="SHA256")
    assert overwriting.value.response["Error"]["Code"] == "PreconditionFailed"
    # Without an integrity checksum an Object Lock bucket takes no write at all, which is
    # why the tool always sends one (older botocore sends none by default).
    unchecked = moto.session().client(
        "s3",
        region_name=BUCKET_REGION,
        endpoint_url=moto.endpoint,
        config=Config(request_checksum_calculation="when_required"),
    )
    with pytest.raises(ClientError) as unverified:
        unchecked.put_object(Bucket=bucket, Key="elsewhere/unchecked", Body=b"x")
    assert "Content-MD5" in str(unverified.value)
    assert s3.head_object(Bucket=bucket, Key=manifest_key)["VersionId"] == head["VersionId"]


def test_concurrent_runs_second_exits_cleanly(
    moto: Moto, bucket: str, bulk_database: str, postgres: PostgresServer, tool_env: dict[str, str]
) -> None:
    with backup_paused_mid_upload(moto, postgres, bulk_database, tool_env) as (first, proxy, env):
        second = run_tool("backup", {**env, "AWS_ENDPOINT_URL_S3": moto.endpoint})
        assert second.returncode == 0, second.stderr
        assert second.stderr == ""
        assert "another run is in progress" in second.stdout
        proxy.resume()
        _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    keys = object_keys(moto.client_s3(), bucket)
    assert len([key for key in keys if key.endswith(".dump")]) == 1
    assert len([key for key in keys if key.endswith(".manifest.json")]) == 1


def test_a_backup_within_the_second_of_the_last_one_waits_for_a_name_of_its_own(
    moto: Moto, bucket: str, app_database: str, postgres: PostgresServer, tool_env: dict[str, str]
) -> None:
    # Stamps have one-second resolution and the bucket is write-once: a manual backup right
    # after the timer's must not upload its whole dump only to be refused at the end.
    postgres.psql(SAMPLE_SQL, database=app_database, user=APP_USER)
    assert run_tool("backup", tool_env).returncode == 0
    s3 = moto.client_s3()
    first_key, _ = backup_and_manifest(s3, bucket, app_database)
    folder = first_key.rsplit("/", 1)[0]
    now = datetime.datetime.now(datetime.UTC)
    taken = {(now + datetime.timedelta(seconds=offset)).strftime(STAMP_FORMAT) for offset in range(2)}
    for name in taken:
        s3.put_object(Bucket=bucket, Key=f"{folder}/{name}.dump", Body=b"an earlier run's dump")

    second = run_tool("backup", tool_env)

    assert second.returncode == 0, second.stderr
    new_dumps = [
        key
        for key in object_keys(s3, bucket)
        if key.startswith(folder + "/")
        and key.endswith(".dump")
        and key != first_key
        and key.rsplit("/", 1)[1].removesuffix(".dump") not in taken
    ]
    assert len(new_dumps) == 1, new_dumps
    assert new_dumps[0].removesuffix(".dump") + ".manifest.json" in object_keys(s3, bucket)


def test_password_from_secrets_manager(
    postgres: PostgresServer, moto: Moto, bucket: str, app_database: str, tool_env: dict[str, str]
) -> None:
    postgres.psql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'ü');", app_database, APP_USER)
    secrets = moto.session().client("secretsmanager", region_name=HOST_REGION, endpoint_url=moto.endpoint)
    arn = secrets.create_secret(
        Name=f"rds!{app_database}", SecretString=json.dumps({"username": APP_USER, "password": APP_PASSWORD})
    )["ARN"]
    env = {key: value for key, value in tool_env.items() if key not in ("DATABASE_URL", "DRILL_DATABASE_URL")}
    env.update(
        DATABASE_SECRET_ARN=arn,
        DATABASE_HOST="127.0.0.1",
        DATABASE_PORT=str(postgres.port),
        DATABASE_NAME=app_database,
        DATABASE_SSLMODE="disable",
    )
    backed_up = run_tool("backup", env)
    assert backed_up.returncode == 0, backed_up.stderr
    # The instance target: the scratch database goes on the source instance, same secret,
    # created from its maintenance database (postgres), not the app's.
    drilled = run_tool("restore-drill", {**env, "DRILL_TARGET": "instance"})
    assert drilled.returncode == 0, drilled.stderr
    assert scratch_databases(postgres) == []

    missing = run_tool("backup", {**env, "DATABASE_SECRET_ARN": arn + "-gone"})
    assert_one_line_failure(missing, "cannot read the database secret", "ResourceNotFoundException")


def test_where_the_database_is_is_read_from_its_parameter_at_each_run(
    postgres: PostgresServer, moto: Moto, bucket: str, app_database: str, tool_env: dict[str, str]
) -> None:
    """Issue 22: the user data names the parameter (DATABASE_PARAMETER), not the endpoint or the
    secret, so a restored instance (new endpoint, new secret) reaches the tools when `pulumi up`
    rewrites the parameter, with no new user data (no host replacement)."""
    postgres.psql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);", app_database, APP_USER)
    session = moto.session()
    secrets = session.client("secretsmanager", region_name=HOST_REGION, endpoint_url=moto.endpoint)
    ssm = session.client("ssm", region_name=HOST_REGION, endpoint_url=moto.endpoint)
    login = json.dumps({"username": APP_USER, "password": APP_PASSWORD})
    old = secrets.create_secret(Name=f"rds!old-{app_database}", SecretString=json.dumps({"password": "gone"}))["ARN"]
    restored = secrets.create_secret(Name=f"rds!restored-{app_database}", SecretString=login)["ARN"]
    parameter = f"/leanstack/{uuid.uuid4().hex[:8]}/database"

    def locate(host: str, arn: str) -> None:
        value = json.dumps({"host": host, "port": postgres.port, "secret_arn": arn})
        ssm.put_parameter(Name=parameter, Value=value, Type="String", Overwrite=True)

    env = {key: value for key, value in tool_env.items() if key not in ("DATABASE_URL", "DRILL_DATABASE_URL")}
    env.update(DATABASE_PARAMETER=parameter, DATABASE_NAME=app_database, DATABASE_SSLMODE="disable")
    locate("db-that-was-deleted.invalid", old)
    before = run_tool("backup", env)
    assert before.returncode != 0
    # `pulumi up` after the restore rewrites the parameter; the same environment now works.
    locate("127.0.0.1", restored)
    after = run_tool("backup", env)
    assert after.returncode == 0, after.stderr
    # The recovery sheet's manual steps read the same place (`eval "$(leanstack-backup database-env)"`).
    shown = run_tool("database-env", env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        "export DATABASE_HOST=127.0.0.1",
        f"export DATABASE_PORT={postgres.port}",
        f"export DATABASE_SECRET_ARN='{restored}'",
    ]

    ssm.delete_parameter(Name=parameter)
    gone = run_tool("backup", env)
    assert_one_line_failure(gone, f"cannot read where the database is ({parameter})", "ParameterNotFound")


SECRET_SOURCE = {"DATABASE_URL": "", "DATABASE_SECRET_ARN": "arn:x", "DATABASE_NAME": "d"}


@pytest.mark.parametrize(
    ("command", "change", "named"),
    [
        ("backup", {"BACKUP_BUCKET": ""}, "BACKUP_BUCKET is not set"),
        (
            "backup",
            {"BACKUP_PART_SIZE_MIB": "4"},
            "BACKUP_PART_SIZE_MIB must be a whole number from 5 to 5120, got '4'",
        ),
        ("backup", {"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL must be a postgresql:// URL"),
        (
            "backup",
            {**SECRET_SOURCE, "DATABASE_HOST": "h", "DATABASE_PORT": "x"},
            "DATABASE_PORT must be a whole number from 1 to 65535, got 'x'",
        ),
        ("restore-drill", {"VERIFY_SQL_FILE": "/nonexistent/verify.sql"}, "VERIFY_SQL_FILE"),
        (
            "restore-drill",
            {"DRILL_DATABASE_URL": "postgresql://h"},
            "DRILL_DATABASE_URL has no database name",
        ),
    ],
)
def test_configuration_errors_name_the_variable(
    command: str, change: dict[str, str], named: str, tool_env: dict[str, str], app_database: str
) -> None:
    result = run_tool(command, {**tool_env, **change})
    assert_one_line_failure(result, "configuration error", named, status=2)


class _Refusing(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def refusing_endpoint() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_metrics_failure_is_a_warning_not_a_failed_backup(
    postgres: PostgresServer,
    moto: Moto,
    bucket: str,
    app_database: str,
    tool_env: dict[str, str],
    refusing_endpoint: str,
) -> None:
    postgres.psql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);", app_database, APP_USER)
    result = run_tool("backup", {**tool_env, "AWS_ENDPOINT_URL_CLOUDWATCH": refusing_endpoint})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("backup ok: ")
    assert "warning: publishing metrics (BackupSuccess" in result.stderr
    backup_and_manifest(moto.client_s3(), bucket, app_database)


def test_writes_are_create_only_even_where_botocore_lacks_if_none_match(moto: Moto, bucket: str) -> None:
    """The bucket policy denies a create without If-None-Match, so the header must go out even
    from a botocore that predates the IfNoneMatch parameter (Amazon Linux's python3-boto3 may)."""
    from leanstack.host.agent.common import create_only_if_absent
    from leanstack.host.agent.dumps import put_json

    s3 = moto.client_s3()
    create_only_if_absent(s3)
    # This client's botocore no longer knows the parameter: an old release, as far as it can tell.
    for operation in ("PutObject", "CompleteMultipartUpload"):
        shape = s3.meta.service_model.operation_model(operation).input_shape
        assert shape is not None
        shape.members.pop("IfNoneMatch", None)
    sent: list[bytes | str | None] = []
    s3.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: sent.append(request.headers.get("If-None-Match"))
    )
    key = "backups/app/20260101T000000Z.manifest.json"
    put_json(s3, bucket, key, {"first": True})
    with pytest.raises(ClientError) as replacing:
        put_json(s3, bucket, key, {"second": True})
    assert replacing.value.response["Error"]["Code"] == "PreconditionFailed"
    assert sent == [b"*", b"*"]
    assert json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) == {"first": True}
