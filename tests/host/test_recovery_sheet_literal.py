"""The recovery sheet followed literally: its "App database dropped" branch, run as written.

The sheet is generated from a stack of this test's own (tests/fixtures values, not stacks/),
and every command its host steps give is run here, in order, as `sudo` runs it on the host:
the real `leanstack-restore` and `leanstack-backup` against Debian's PostgreSQL and moto's
S3, with Debian's nginx in front of a stand-in app (the fixtures of tests/host/test_restore).
The only thing filled in by hand is what the sheet says to fill in: RESTORED, from the line
the restore printed. The laptop steps (opening an SSM session, curl through Cloudflare)
cannot run here; the health check asks nginx directly instead.
"""

from __future__ import annotations

import shlex
from typing import Any

from leanstack.config import load_stack_config
from leanstack.host.backup.install import BACKUP_TOOL_PATH, backup_host_files
from leanstack.host.params import BackupSettings
from leanstack.mocks import run_program
from leanstack.runbook import HOST, LAPTOP, Step, recovery_branches
from support.nginx_harness import request
from support.servers import PostgresServer
from tests.host.helpers import APP_USER, CUSTOMERS_SQL, Moto, RestoreHost, leanstack_restore, run_tool
from tests.host.helpers import HOST as SITE

# A stack of this test's own: the sheet's values come from it, not from stacks/.
STACK: dict[str, Any] = {
    "aws:region": "eu-west-1",
    "leanstack:domain": "acme-shop.org",
    "leanstack:alertEmail": "ops@acme-shop.org",
    "leanstack:owner": "Ada, ada@acme-shop.org",
    "leanstack:recovery": {"rtoMinutes": 240, "rpoHours": 25, "secondPerson": "Grace, grace@example.com"},
    "leanstack:cdn": {"zoneId": "a" * 32},
    "leanstack:backup": {"region": "eu-central-1"},
}


def dropped_database_branch() -> list[Step]:
    run = run_program("prod", STACK)
    branch = next(
        b for b in recovery_branches(run, load_stack_config(STACK, "prod")) if b.heading == "App database dropped"
    )
    return list(branch.steps)


# Any valid settings: a unit's ExecStart does not depend on them.
SETTINGS = BackupSettings(
    bucket="b",
    bucket_region="eu-central-1",
    prefix="backups",
    database_name="app",
    database_host="db.internal",
    database_port=5432,
    database_user="app",
    database_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds-abc",
)


def unit_exec_start(unit: str) -> str:
    """The ExecStart of a unit the host gets: what `systemctl start` runs."""
    (service,) = [f for f in backup_host_files(SETTINGS) if f.path == f"/etc/systemd/system/{unit}.service"]
    return next(line.split("=", 1)[1] for line in service.content.splitlines() if line.startswith("ExecStart="))


def table_digest(postgres: PostgresServer, database: str) -> str:
    return postgres.psql("SELECT md5(string_agg(id || ':' || name, ',' ORDER BY id)) FROM customers;", database)


def test_a_dropped_app_database_is_restored_by_following_the_sheet(
    postgres: PostgresServer,
    moto: Moto,
    bucket: str,
    app_database: str,
    tool_env: dict[str, str],
    restore_host: RestoreHost,
) -> None:
    steps = dropped_database_branch()
    # Before the disaster: data, and the nightly backup of it.
    postgres.psql(CUSTOMERS_SQL, app_database, APP_USER)
    before = table_digest(postgres, app_database)
    assert run_tool("backup", tool_env).returncode == 0
    # The disaster.
    postgres.psql(f"DROP DATABASE {app_database} WITH (FORCE);")
    assert request(restore_host.nginx_port, "/healthz", host=SITE, context=None).status != 200

    # The host steps follow the step that opens the session (which this test stands in for); the
    # laptop steps before and after it (finding the time, the alarms, telling the owner) cannot run here.
    # The point-in-time path (a laptop step, marked) is not the dump's: it cannot run here either.
    opened = next(n for n, s in enumerate(steps) if s.opens_session)
    assert steps[opened].where == LAPTOP and all(s.where != HOST for s in steps[:opened])
    host_steps = [s for s in steps[opened + 1 :] if s.where == HOST]
    skipped = [s for s in steps[opened + 1 : steps.index(host_steps[-1])] if s.where != HOST]
    assert all(s.opens_session or s.only == "when the owner took point-in-time" for s in skipped), skipped
    printed: list[str] = []
    for step in host_steps:
        for command in step.commands:
            words = shlex.split(command, comments=True)
            assert words[0] == "sudo", command
            if words[1] == "leanstack-restore":
                arguments = words[2:]
                if "RESTORED" in arguments:
                    # "with the line the restore printed (RESTORED: the name in it)"
                    (line,) = [p for p in printed if p.startswith("sudo leanstack-restore --swap --use-restored ")]
                    name = line.rsplit(" ", 1)[1]
                    arguments = [name if a == "RESTORED" else a for a in arguments]
                    assert " ".join(["sudo", "leanstack-restore", *arguments]) == line
                done = leanstack_restore(restore_host.env, *arguments)
            elif words[1:3] == ["systemctl", "start"]:
                # systemctl runs the unit's ExecStart with its EnvironmentFile; the tool reads
                # the same rendered file itself under sudo.
                assert unit_exec_start(words[3]) == BACKUP_TOOL_PATH
                done = run_tool("backup", restore_host.env)
            else:
                raise AssertionError(f"the sheet runs {command!r} on the host, which this test cannot follow")
            assert done.returncode == 0, f"{command}: {done.stderr}"
            printed += [line.strip() for line in done.stdout.splitlines()]
        if step.check_commands and "curl" in step.check_commands[0]:
            # The sheet's check, asked of nginx instead of through Cloudflare.
            assert request(restore_host.nginx_port, "/healthz", host=SITE, context=None).status == 200
        for check in step.check_commands:
            # The journal is readable only with sudo for the session user (AL2023: adm/wheel/systemd-journal).
            assert "journalctl" not in check or check.startswith("sudo journalctl "), check

    # The restored data is the backup's, row for row.
    assert table_digest(postgres, app_database) == before
    assert request(restore_host.nginx_port, "/", host=SITE, context=None).body.decode() == "rows=300"
    # And the fresh backup the sheet asked for is there, complete: a second manifest.
    listed = moto.client_s3().list_objects_v2(Bucket=bucket, Prefix="backups/")
    manifests = [
        o["Key"]
        for o in listed.get("Contents", [])
        if o["Key"].endswith(".manifest.json") and f"/{app_database}/" in o["Key"]
    ]
    assert len(manifests) == 2
