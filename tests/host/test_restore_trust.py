"""Restore and drill trust nothing before it is verified (issue 21, items 3 and 4; issue 22's
drill): a planted dump runs nothing until its checksum and manifest are checked, and even a
dump whose manifest matches is restored as a role that cannot run programs on the server or
create roles. Debian's PostgreSQL and moto, as in test_backup.

The planted dump holds a table whose CHECK constraint calls a function: loading its one row
runs the function, as `pg_restore` does for any dump that carries one. The function acts only
in the databases the tools create (leanstack_*), not where the dump is made.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.ports import free_port
from support.servers import SUPERUSER, PostgresServer
from tests.host.helpers import (
    APP_USER,
    CUSTOMERS_SQL,
    STAMP_FORMAT,
    STAND_IN_APP,
    Moto,
    app_config,
    assert_one_line_failure,
    backup_and_manifest,
    plant,
    run_tool,
    scratch_databases,
    tool_command,
)

EVIL_FUNCTION = """
CREATE FUNCTION act() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF current_database() LIKE 'leanstack_%' THEN
        EXECUTE {action};
    END IF;
    RETURN true;
END $$;
CREATE TABLE planted (id int PRIMARY KEY CHECK (act()));
INSERT INTO planted VALUES (1);
"""


def role_exists(postgres: PostgresServer, role: str) -> bool:
    return postgres.psql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{role}';") == "1"


def planted_dump(postgres: PostgresServer, action_sql: str) -> bytes:
    """A custom-format dump whose restore runs `action_sql` (a SQL string literal's text)."""
    name = f"evil_{uuid.uuid4().hex[:8]}"
    postgres.psql(f"CREATE DATABASE {name};")
    try:
        literal = "'" + action_sql.replace("'", "''") + "'"
        postgres.psql(EVIL_FUNCTION.format(action=literal), name)
        done = subprocess.run(
            [
                postgres.program("pg_dump"),
                "--format=custom",
                "-h",
                str(postgres.socket_dir),
                "-p",
                str(postgres.port),
                "-U",
                SUPERUSER,
                "-d",
                name,
            ],
            capture_output=True,
            check=True,
        )
        return done.stdout
    finally:
        postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")


def plant_next_to(moto: Moto, bucket: str, dump_key: str, dump: bytes, manifest: dict[str, object]) -> str:
    """The dump and a manifest for it, stamped a second after the genuine newest backup."""
    folder, name = dump_key.rsplit("/", 1)
    moment = datetime.datetime.strptime(name.removesuffix(".dump"), STAMP_FORMAT) + datetime.timedelta(seconds=1)
    newer = f"{folder}/{moment.strftime(STAMP_FORMAT)}"
    plant(moto, bucket, newer + ".dump", dump)
    plant(moto, bucket, newer + ".manifest.json", json.dumps(manifest).encode())
    return newer


def matching_manifest(genuine: dict[str, object], dump: bytes) -> dict[str, object]:
    """What someone with the host's role writes beside a planted dump: everything matches."""
    return {
        **genuine,
        "sha256": hashlib.sha256(dump).hexdigest(),
        "size_bytes": len(dump),
        "row_counts": {"public.planted": 1},
        "large_objects": 0,
    }


@pytest.fixture()
def marker_dir() -> Iterator[Path]:
    """A directory the drill's PostgreSQL (another OS user when the tests run as root) may write."""
    directory = Path(tempfile.mkdtemp(prefix="leanstack-marker-"))
    directory.chmod(stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO)
    try:
        yield directory
    finally:
        for entry in directory.iterdir():
            entry.unlink()
        directory.rmdir()


def test_a_dump_with_a_wrong_checksum_runs_nothing(
    postgres: PostgresServer, moto: Moto, bucket: str, app_database: str, tool_env: dict[str, str]
) -> None:
    # The case: a planted dump whose sha256 does not match its manifest ran a function
    # that created a role before the tool said "checksum mismatch". The drill here restores
    # on the instance as its superuser (DRILL_DATABASE_URL), the worst case.
    postgres.psql(CUSTOMERS_SQL, app_database, APP_USER)
    assert run_tool("backup", tool_env).returncode == 0
    s3 = moto.client_s3()
    dump_key, genuine = backup_and_manifest(s3, bucket, app_database)
    role = f"pwned_{uuid.uuid4().hex[:8]}"
    dump = planted_dump(postgres, f"CREATE ROLE {role} LOGIN")
    manifest = {**matching_manifest(genuine, dump), "sha256": hashlib.sha256(b"something else").hexdigest()}
    newer = plant_next_to(moto, bucket, dump_key, dump, manifest)

    drilled = run_tool("restore-drill", tool_env)
    assert not role_exists(postgres, role)
    assert_one_line_failure(drilled, "checksum mismatch", newer + ".dump", "nothing was restored")
    assert scratch_databases(postgres) == []
    # Named, so that the refusal of a backup far smaller than the one before it stands aside.
    restored = subprocess.run(
        [*tool_command("restore"), "--backup", newer.rsplit("/", 1)[1]],
        env=tool_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert_one_line_failure(restored, "checksum mismatch")
    assert not role_exists(postgres, role)
    assert postgres.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'leanstack_restore_%';") == "0"


def test_a_dump_with_a_matching_manifest_is_restored_as_a_role_that_cannot_create_roles(
    postgres: PostgresServer, moto: Moto, bucket: str, app_database: str, tool_env: dict[str, str]
) -> None:
    # The host's role may write a dump and its manifest both: the checksum then matches, so
    # the restore itself must not run as a role that can make roles or run programs.
    postgres.psql(CUSTOMERS_SQL, app_database, APP_USER)
    assert run_tool("backup", tool_env).returncode == 0
    s3 = moto.client_s3()
    dump_key, genuine = backup_and_manifest(s3, bucket, app_database)
    role = f"pwned_{uuid.uuid4().hex[:8]}"
    dump = planted_dump(postgres, f"CREATE ROLE {role} LOGIN")
    plant_next_to(moto, bucket, dump_key, dump, matching_manifest(genuine, dump))

    drilled = run_tool("restore-drill", tool_env)
    assert not role_exists(postgres, role)
    assert_one_line_failure(drilled, "pg_restore failed", "permission denied to create role")
    assert scratch_databases(postgres) == []
    # The role the drill restored as is gone with its database.
    assert postgres.psql("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'leanstack_restorer_%';") == "0"


def test_the_local_drill_restores_as_a_role_that_cannot_run_programs(
    postgres: PostgresServer,
    moto: Moto,
    bucket: str,
    app_database: str,
    local_env: dict[str, str],
    marker_dir: Path,
) -> None:
    # Issue 22: in the drill's own PostgreSQL the restore ran as its superuser, so a dump's
    # COPY ... TO PROGRAM ran a shell on the host as the server's OS user.
    postgres.psql(CUSTOMERS_SQL, app_database, APP_USER)
    assert run_tool("backup", local_env).returncode == 0
    s3 = moto.client_s3()
    dump_key, genuine = backup_and_manifest(s3, bucket, app_database)
    marker = marker_dir / "ran"
    dump = planted_dump(postgres, f"COPY (SELECT 1) TO PROGRAM 'touch {marker}'")
    plant_next_to(moto, bucket, dump_key, dump, matching_manifest(genuine, dump))

    drilled = run_tool("restore-drill", local_env)
    assert not marker.exists()
    assert_one_line_failure(drilled, "pg_restore failed", "COPY to or from an external program")
    assert list(Path(local_env["DRILL_WORK_DIR"]).iterdir()) == []


# For the stand-in app: counting fails (division by zero, so /healthz answers 503) when the
# role it was given is a superuser or may create roles.
NOT_A_POWERFUL_ROLE = (
    "customers WHERE 1 / (SELECT CASE WHEN rolsuper OR rolcreaterole THEN 0 ELSE 1 END "
    "FROM pg_roles WHERE rolname = current_user) = 1"
)


def test_the_drills_app_gets_a_role_without_superuser(
    postgres: PostgresServer,
    moto: Moto,
    bucket: str,
    app_database: str,
    local_env: dict[str, str],
    tmp_path: Path,
) -> None:
    postgres.psql(CUSTOMERS_SQL, app_database, APP_USER)
    assert run_tool("backup", local_env).returncode == 0
    env = {
        **local_env,
        "DRILL_STARTS_APP": "1",
        "LEANSTACK_APP_CONFIG": str(app_config(tmp_path, free_port(), 10)),
        "DRILL_APP_START": f"{sys.executable} {STAND_IN_APP}",
        "DRILL_APP_ADDRESS": "127.0.0.1",
        "EXPECT_DRILL": "1",
        "TABLE": NOT_A_POWERFUL_ROLE,
    }
    drilled = run_tool("restore-drill", env)
    assert drilled.returncode == 0, drilled.stderr
    assert "the app answered its health path after" in drilled.stdout
