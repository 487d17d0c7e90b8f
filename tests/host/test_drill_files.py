"""The restore drill checks files too: the keys the restored data references (FILES_SQL_FILE)
are sampled and each must exist in the uploads' replica bucket (moto's S3, HeadObject)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from support.servers import PostgresServer
from tests.host.helpers import APP_USER, BUCKET_REGION, Moto, assert_one_line_failure, drill_reports, run_tool

FILES = [f"uploads/{number:03d}/photo é {number}.jpg" for number in range(1, 31)]
FILES_SQL = "SELECT key FROM attachments UNION SELECT avatar_key FROM users WHERE avatar_key IS NOT NULL;"


@pytest.fixture()
def replica(moto: Moto) -> str:
    name = f"replica-{uuid.uuid4().hex[:12]}"
    s3 = moto.client_s3()
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": BUCKET_REGION})
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture()
def files_env(
    postgres: PostgresServer, app_database: str, tool_env: dict[str, str], replica: str, tmp_path: Path
) -> dict[str, str]:
    values = ", ".join(f"('{key}')" for key in FILES[:25])
    postgres.psql(
        "CREATE TABLE attachments (key text NOT NULL);"
        f"INSERT INTO attachments VALUES {values};"
        "CREATE TABLE users (id int, avatar_key text);"
        "INSERT INTO users SELECT g, CASE WHEN g <= 5"
        " THEN 'uploads/0' || (25 + g) || '/photo é ' || (25 + g) || '.jpg' END FROM generate_series(1, 8) g;",
        app_database,
        APP_USER,
    )
    assert run_tool("backup", tool_env).returncode == 0
    sql = tmp_path / "files.sql"
    sql.write_text(FILES_SQL, encoding="utf-8")
    return {**tool_env, "FILES_SQL_FILE": str(sql), "FILES_BUCKET": replica}


def test_the_drill_finds_every_sampled_file_and_counts_them(
    moto: Moto, bucket: str, replica: str, files_env: dict[str, str]
) -> None:
    s3 = moto.client_s3()
    for key in FILES:
        s3.put_object(Bucket=replica, Key=key, Body=b"x")
    drilled = run_tool("restore-drill", {**files_env, "FILES_SAMPLE": "10"})
    assert drilled.returncode == 0, drilled.stderr
    assert "; 10 of 30 referenced files found in the replica" in drilled.stdout
    (report,) = drill_reports(s3, bucket)
    assert (report["files_referenced"], report["files_checked"], report["files_bucket"]) == (30, 10, replica)


def test_a_file_missing_from_the_replica_fails_the_drill(
    moto: Moto, bucket: str, replica: str, files_env: dict[str, str]
) -> None:
    s3 = moto.client_s3()
    for key in FILES:
        if key != FILES[27]:
            s3.put_object(Bucket=replica, Key=key, Body=b"x")
    # A deleted file: its delete marker makes it absent too.
    s3.put_object(Bucket=replica, Key=FILES[27], Body=b"x")
    s3.delete_object(Bucket=replica, Key=FILES[27])
    drilled = run_tool("restore-drill", {**files_env, "FILES_SAMPLE": "100"})
    assert_one_line_failure(
        drilled, f"files check: 1 of 30 sampled files the restored data references are not in {replica}: {FILES[27]}"
    )
    (report,) = drill_reports(s3, bucket)
    assert report["result"] == "failure"


def test_files_sql_without_a_bucket_is_refused(files_env: dict[str, str]) -> None:
    env = {key: value for key, value in files_env.items() if key != "FILES_BUCKET"}
    assert_one_line_failure(
        run_tool("restore-drill", env),
        "FILES_SQL_FILE is set but FILES_BUCKET (the uploads' replica bucket) is not",
        status=2,
    )


def test_the_install_renders_the_files_check_only_when_configured() -> None:
    import dataclasses

    from leanstack.host.backup.install import FILES_SQL_PATH, backup_host_files
    from tests.host.helpers import BACKUP_SETTINGS as SETTINGS

    plain = {file.path: file.content for file in backup_host_files(SETTINGS)}
    assert FILES_SQL_PATH not in plain and "FILES_" not in plain["/etc/leanstack/backup.env"]
    files = {
        file.path: file.content
        for file in backup_host_files(dataclasses.replace(SETTINGS, files_bucket="replica-b", files_sql=FILES_SQL))
    }
    assert files[FILES_SQL_PATH] == FILES_SQL + "\n"
    assert 'FILES_BUCKET="replica-b"' in files["/etc/leanstack/backup.env"]
    assert f'FILES_SQL_FILE="{FILES_SQL_PATH}"' in files["/etc/leanstack/backup.env"]
    with pytest.raises(ValueError, match="files_bucket and files_sql go together"):
        backup_host_files(dataclasses.replace(SETTINGS, files_bucket="replica-b"))
