"""leanstack-restore end to end: Debian's PostgreSQL, moto, Debian's nginx serving the
maintenance page, and a stand-in process for the app's container.

The tool runs as `sudo` runs it: no BACKUP_* or DATABASE_* variables, only what the host
has anyway (the instance role's credentials, here moto's, and PATH); it reads the rendered
/etc/leanstack/backup.env itself. The app's restart (leanstack-app restart, tested in
test_deploy) is stood in for by a command that looks at nginx while the switch is under
way, so the test sees what users see then.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from leanstack.host.backup.install import render_env_file
from leanstack.host.params import BackupSettings
from leanstack.host.render import MAINTENANCE_RETRY_AFTER_SECONDS, render_maintenance_tool
from support.nginx_harness import loopback_paths, request
from support.servers import SUPERUSER, PostgresServer, wait_until
from tests.host.helpers import (
    APP_USER,
    BUCKET_REGION,
    CUSTOMERS_SQL,
    HOST,
    Moto,
    RestoreHost,
    assert_one_line_failure,
    leanstack_restore,
    run_tool,
)

MESSAGE = "We are restoring data and will be back shortly."


def rows_served(port: int) -> tuple[int, str]:
    response = request(port, "/", host=HOST, context=None)
    return response.status, response.body.decode()


def test_restore_swap_end_to_end_with_the_maintenance_page(
    postgres: PostgresServer, app_database: str, tool_env: dict[str, str], restore_host: RestoreHost
) -> None:
    postgres.psql(CUSTOMERS_SQL, app_database, APP_USER)
    assert run_tool("backup", tool_env).returncode == 0
    # The disaster: rows deleted by mistake.
    postgres.psql("DELETE FROM customers WHERE id > 100;", app_database, APP_USER)
    assert rows_served(restore_host.nginx_port) == (200, "rows=100")

    restored = leanstack_restore(restore_host.env, "--swap")
    assert restored.returncode == 0, restored.stderr
    assert restored.stderr == ""
    out = restored.stdout
    assert "the checksum matches, and so do the row counts of 1 tables (300 rows)" in out
    assert sum("switched: " in line for line in out.splitlines()) == 1, out
    assert "maintenance page on" in out and "maintenance page off: users are served again" in out
    # While the databases were switched, users and the health path got the page, as a 503.
    (seen,) = [json.loads(line) for line in restore_host.observed.read_text().splitlines()]
    for path in ("/", "/healthz"):
        status, retry_after, body = seen[path]
        assert (status, retry_after) == (503, str(MAINTENANCE_RETRY_AFTER_SECONDS)), path
        assert MESSAGE in body and "Down for maintenance" in body
    assert not restore_host.maintenance_page.exists()
    assert rows_served(restore_host.nginx_port) == (200, "rows=300")
    assert request(restore_host.nginx_port, "/healthz", host=HOST, context=None).status == 200

    # The previous database is kept, and the printed undo command brings it back.
    (undo,) = [line.split("to undo the switch: ", 1)[1] for line in out.splitlines() if "to undo the switch: " in line]
    assert undo.startswith("sudo leanstack-restore --swap --use-restored ")
    before = undo.rsplit(" ", 1)[1]
    assert before.startswith(f"{app_database}_before_restore_")
    assert postgres.psql("SELECT count(*) FROM customers;", database=before) == "100"
    undone = leanstack_restore(restore_host.env, *undo.split()[2:])
    assert undone.returncode == 0, undone.stderr
    assert rows_served(restore_host.nginx_port) == (200, "rows=100")


def test_restore_when_the_app_database_is_gone(
    postgres: PostgresServer, app_database: str, tool_env: dict[str, str], restore_host: RestoreHost
) -> None:
    postgres.psql(CUSTOMERS_SQL, app_database, APP_USER)
    assert run_tool("backup", tool_env).returncode == 0
    postgres.psql(f"DROP DATABASE {app_database} WITH (FORCE);")
    assert rows_served(restore_host.nginx_port)[0] == 500

    restored = leanstack_restore(restore_host.env)
    assert restored.returncode == 0, restored.stderr
    # Nothing uses the app's name: the output says so, and that the swap comes next.
    assert "the app still uses" not in restored.stdout
    assert f"the app's database {app_database} does not exist; the next step is the swap" in restored.stdout
    # Nothing switched yet; the next step is printed, and is run here exactly as printed.
    (step,) = [line.strip() for line in restored.stdout.splitlines() if line.strip().startswith("sudo ")]
    assert step.startswith("sudo leanstack-restore --swap --use-restored leanstack_restore_")
    assert rows_served(restore_host.nginx_port)[0] == 500
    # Someone is looking at the restored database: the rename fails, nothing is switched
    # and the maintenance page comes off again.
    restored_name = step.rsplit(" ", 1)[1]
    looking = subprocess.Popen(
        [
            str(postgres.bin_dir / "psql"),
            "-X",
            "-h",
            str(postgres.socket_dir),
            "-p",
            str(postgres.port),
            "-U",
            SUPERUSER,
            "-d",
            restored_name,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        assert wait_until(
            lambda: postgres.psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{restored_name}';") == "1",
            timeout=10,
        )
        busy = leanstack_restore(restore_host.env, *step.split()[2:])
    finally:
        looking.communicate(b"\\q\n", timeout=10)
    assert_one_line_failure(
        busy, "cannot rename the databases", "is being accessed by other users", "nothing was switched"
    )
    assert not restore_host.maintenance_page.exists()
    assert rows_served(restore_host.nginx_port)[0] == 500
    switched = leanstack_restore(restore_host.env, *step.split()[2:])
    assert switched.returncode == 0, switched.stderr
    (switched_line,) = [line for line in switched.stdout.splitlines() if "switched: " in line]
    assert "(there was no app database)" in switched_line
    assert rows_served(restore_host.nginx_port) == (200, "rows=300")
    assert postgres.psql("SELECT count(*) FROM customers;", database=app_database) == "300"

    # Only databases leanstack-restore made can be switched to; bad input is one line.
    refused = leanstack_restore(restore_host.env, "--swap", "--use-restored", "postgres")
    assert_one_line_failure(refused, "postgres was not made by leanstack-restore")
    assert not restore_host.maintenance_page.exists()
    for arguments, named in (
        (["--backup", "yesterday"], "--backup 'yesterday' is not a backup stamp"),
        (["--database", "app"], "--database 'app' must start with leanstack_"),
        (["--use-restored", "x"], "--use-restored goes with --swap only"),
        (["--now"], "unknown argument '--now'"),
    ):
        assert_one_line_failure(leanstack_restore(restore_host.env, *arguments), named, status=2)


def test_maintenance_tool_is_python_3_9_and_refuses_bad_arguments(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    tool = tmp_path / "leanstack-maintenance"
    tool.write_text(
        render_maintenance_tool(paths=loopback_paths(tmp_path, 8443)).replace(
            str(tmp_path / "maintenance" / "maintenance.html"), str(page)
        )
    )
    ast.parse(tool.read_text(), feature_version=(3, 9))

    def run(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(tool), *arguments], capture_output=True, text=True, check=False)

    assert run("status").stdout == "off\n"
    assert run("on", "--message", "<b>Back at 5</b>").returncode == 0
    assert "&lt;b&gt;Back at 5&lt;/b&gt;" in page.read_text() and oct(page.stat().st_mode & 0o777) == "0o644"
    assert run("status").stdout == "on\n"
    assert run("off").returncode == 0 and not page.exists()
    assert run("off").returncode == 0
    wrong = run("on", "--for", "5m")
    assert wrong.returncode == 2 and wrong.stderr.startswith("leanstack-maintenance: usage:")


def backup_stamps(moto: Moto, bucket: str, folder: str) -> list[str]:
    listed = moto.client_s3().list_objects_v2(Bucket=bucket, Prefix=folder).get("Contents", [])
    return sorted(o["Key"][len(folder) :].removesuffix(".manifest.json") for o in listed if o["Key"].endswith(".json"))


def test_a_backup_far_below_the_previous_one_is_restored_only_when_named(
    postgres: PostgresServer,
    moto: Moto,
    bucket: str,
    app_database: str,
    tool_env: dict[str, str],
    restore_host: RestoreHost,
) -> None:
    # Issue 21 item 3: the nightly backup after the data was lost is the newest one.
    postgres.psql(CUSTOMERS_SQL, app_database, APP_USER)
    assert run_tool("backup", tool_env).returncode == 0
    postgres.psql("DELETE FROM customers WHERE id > 10;", app_database, APP_USER)
    assert run_tool("backup", tool_env).returncode == 0
    folder = f"backups/{tool_env['STACK']}/{app_database}/"
    good, small = backup_stamps(moto, bucket, folder)

    refused = leanstack_restore(restore_host.env)
    assert_one_line_failure(
        refused,
        f"refusing {folder}{small}.dump: 10 rows",
        f"far below the previous complete backup {folder}{good}.dump (300 rows",
        f"--backup {good}",
    )
    assert postgres.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'leanstack_restore_%';") == "0"
    named = leanstack_restore(restore_host.env, "--backup", small)
    assert named.returncode == 0, named.stderr
    assert "row counts of 1 tables (10 rows)" in named.stdout
    earlier = leanstack_restore(restore_host.env, "--backup", good)
    assert earlier.returncode == 0, earlier.stderr
    assert "row counts of 1 tables (300 rows)" in earlier.stdout


def test_a_recovery_host_restores_the_old_stacks_backups_with_from_stack(
    postgres: PostgresServer,
    moto: Moto,
    bucket: str,
    app_database: str,
    tool_env: dict[str, str],
    restore_host: RestoreHost,
) -> None:
    # Region down: the recovery stack's host shares the old stack's bucket. Its own nightly
    # backup ran before the operator restored: a dump of its new, empty database.
    old_stack = "old-" + tool_env["STACK"]
    postgres.psql(CUSTOMERS_SQL, app_database, APP_USER)
    assert run_tool("backup", {**tool_env, "STACK": old_stack}).returncode == 0
    postgres.psql("DROP TABLE customers;", app_database, APP_USER)
    assert run_tool("backup", tool_env).returncode == 0
    own = f"backups/{tool_env['STACK']}/{app_database}/"
    old = f"backups/{old_stack}/{app_database}/"
    (old_stamp,) = backup_stamps(moto, bucket, old)
    # The old stack's manifest planted in this stack's folder, newer than anything: another
    # stack wrote it, so it is not this stack's backup.
    s3 = moto.client_s3()
    planted = f"{own}29000101T000000Z"
    for suffix in (".dump", ".manifest.json"):
        body = s3.get_object(Bucket=bucket, Key=f"{old}{old_stamp}{suffix}")["Body"].read()
        s3.put_object(Bucket=bucket, Key=planted + suffix, Body=body, ChecksumAlgorithm="SHA256")

    refused = leanstack_restore(restore_host.env)
    assert_one_line_failure(refused, "it holds no rows", "--from-stack STACK")
    restored = leanstack_restore(restore_host.env, "--from-stack", old_stack, "--swap")
    assert restored.returncode == 0, restored.stderr
    assert f"restoring {old}{old_stamp}.dump" in restored.stdout
    assert "row counts of 1 tables (300 rows)" in restored.stdout
    assert rows_served(restore_host.nginx_port) == (200, "rows=300")
    # The planted copy under the old stack's name is passed over when restoring this stack.
    named = leanstack_restore(restore_host.env, "--backup", "29000101T000000Z")
    assert_one_line_failure(named, f"{planted}.manifest.json is unusable", f'written by stack "{old_stack}"')
    assert_one_line_failure(
        leanstack_restore(restore_host.env, "--from-stack", "../x"), "--from-stack '../x' is not a stack name", status=2
    )


def test_backups_in_the_folder_before_per_stack_folders_are_still_restored(
    postgres: PostgresServer,
    moto: Moto,
    bucket: str,
    app_database: str,
    tool_env: dict[str, str],
    restore_host: RestoreHost,
) -> None:
    # Dumps written before the per-stack folders, <prefix>/<database>/, stay where Object Lock
    # keeps them; the restore reads them when their manifest names this stack.
    postgres.psql(CUSTOMERS_SQL, app_database, APP_USER)
    assert run_tool("backup", tool_env).returncode == 0
    own = f"backups/{tool_env['STACK']}/{app_database}/"
    (stamp,) = backup_stamps(moto, bucket, own)
    s3 = moto.client_s3()
    legacy = f"backups/{app_database}/20000101T000000Z"
    for suffix in (".dump", ".manifest.json"):
        body = s3.get_object(Bucket=bucket, Key=f"{own}{stamp}{suffix}")["Body"].read()
        s3.put_object(Bucket=bucket, Key=legacy + suffix, Body=body, ChecksumAlgorithm="SHA256")
        s3.delete_object(Bucket=bucket, Key=f"{own}{stamp}{suffix}")
    restored = leanstack_restore(restore_host.env)
    assert restored.returncode == 0, restored.stderr
    assert f"restoring {legacy}.dump" in restored.stdout


LONG_NAME = "app_" + "x" * 59


@pytest.mark.parametrize("app_database", [LONG_NAME])
def test_the_swap_keeps_the_previous_database_under_a_name_postgresql_does_not_cut(
    postgres: PostgresServer, app_database: str, tool_env: dict[str, str], restore_host: RestoreHost
) -> None:
    # Issue 21 item 8: <app>_before_restore_<time> passed 63 bytes; PostgreSQL cut it, and
    # the printed undo named a database that did not exist.
    assert len(app_database.encode()) == 63
    postgres.psql(f"CREATE DATABASE {app_database} OWNER {APP_USER};")
    try:
        postgres.psql(CUSTOMERS_SQL, app_database, APP_USER)
        assert run_tool("backup", tool_env).returncode == 0
        postgres.psql("DELETE FROM customers WHERE id > 250;", app_database, APP_USER)
        first = leanstack_restore(restore_host.env, "--swap")
        assert first.returncode == 0, first.stderr
        (undo,) = [line.split("to undo the switch: ", 1)[1] for line in first.stdout.splitlines() if "to undo" in line]
        before = undo.rsplit(" ", 1)[1]
        assert len(before.encode()) <= 63
        assert postgres.psql("SELECT count(*) FROM customers;", database=before) == "250"
        undone = leanstack_restore(restore_host.env, *undo.split()[2:])
        assert undone.returncode == 0, undone.stderr
        assert rows_served(restore_host.nginx_port) == (200, "rows=250")
    finally:
        postgres.psql(f"DROP DATABASE IF EXISTS {app_database} WITH (FORCE);")
        for name in postgres.psql("SELECT datname FROM pg_database WHERE datname LIKE 'app_xxx%';").split():
            postgres.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')


def test_scaled_out_the_swap_needs_the_page_on_every_host_first(
    postgres: PostgresServer, app_database: str, tool_env: dict[str, str], restore_host: RestoreHost
) -> None:
    # Issue 21 item 6: scaled out, --swap put the page on its own host only. This host cannot
    # reach the others, so it refuses until the laptop's command has put it on all of them.
    env_file = Path(restore_host.env["LEANSTACK_BACKUP_ENV"])
    line = 'BEHIND_LOAD_BALANCER="1"'
    settings = BackupSettings(
        bucket="b",
        bucket_region=BUCKET_REGION,
        prefix="backups",
        database_name=app_database,
        database_host="127.0.0.1",
        database_port=postgres.port,
        database_user=APP_USER,
        database_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds-abc",
    )
    assert line not in render_env_file(settings)
    assert line in render_env_file(replace(settings, behind_load_balancer=True)).splitlines()
    env_file.write_text(env_file.read_text() + line + "\n")
    postgres.psql(CUSTOMERS_SQL, app_database, APP_USER)
    assert run_tool("backup", tool_env).returncode == 0

    refused = leanstack_restore(restore_host.env, "--swap")
    assert_one_line_failure(
        refused,
        "behind a load balancer",
        f"from your laptop: python -m leanstack maintenance {tool_env['STACK']} on",
        "nothing was restored or switched",
    )
    assert postgres.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'leanstack_restore_%';") == "0"
    assert not restore_host.maintenance_page.exists()

    # What `python -m leanstack maintenance STACK on` runs on every host.
    maintenance = restore_host.env["LEANSTACK_MAINTENANCE"].split()
    subprocess.run([*maintenance, "on"], check=True, capture_output=True)
    switched = leanstack_restore(restore_host.env, "--swap")
    assert switched.returncode == 0, switched.stderr
    assert f"python -m leanstack maintenance {tool_env['STACK']} off" in switched.stdout
    assert "maintenance page off" not in switched.stdout
    assert restore_host.maintenance_page.exists()
    (seen,) = [json.loads(line) for line in restore_host.observed.read_text().splitlines()]
    assert seen["/"][0] == 503
