"""The host files of the backup tools: what cloud-init writes, checked as systemd would."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from leanstack.host.agent.backup_settings import Settings
from leanstack.host.agent.contract import BACKUP_COMMAND
from leanstack.host.backup.install import BACKUP_PACKAGES, BACKUP_UNITS, backup_host_files, render_env_file
from leanstack.host.params import BackupSettings, HostFile
from leanstack.host.shipping import entry_script
from support.agent import agent_script
from support.system import require_program
from tests.host.helpers import BACKUP_SETTINGS, install_into

TOOL = agent_script("leanstack-backup")


def files_by_path(settings: BackupSettings = BACKUP_SETTINGS) -> dict[str, HostFile]:
    return {file.path: file for file in backup_host_files(settings)}


def parse_env_file(content: str) -> dict[str, str]:
    """Read an EnvironmentFile the way systemd does for these double-quoted values."""
    values: dict[str, str] = {}
    for line in content.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, raw = line.partition("=")
        assert raw.startswith('"') and raw.endswith('"'), line
        values[name] = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return values


def test_every_file_with_its_mode() -> None:
    files = files_by_path()
    assert {path: (file.permissions, file.owner) for path, file in files.items()} == {
        "/usr/local/bin/leanstack-backup": ("0755", "root:root"),
        "/usr/local/bin/leanstack-restore-drill": ("0755", "root:root"),
        "/usr/local/bin/leanstack-restore": ("0755", "root:root"),
        "/etc/leanstack/backup.env": ("0640", "root:root"),
        "/etc/systemd/system/leanstack-backup.service": ("0644", "root:root"),
        "/etc/systemd/system/leanstack-backup.timer": ("0644", "root:root"),
        "/etc/systemd/system/leanstack-restore-drill.service": ("0644", "root:root"),
        "/etc/systemd/system/leanstack-restore-drill.timer": ("0644", "root:root"),
        "/etc/systemd/system/leanstack-restore-drill-credentials.service": ("0644", "root:root"),
    }
    # The entry script the host runs; the code is the agent's, fetched (tests/test_stack_user_data.py).
    entry = files["/usr/local/bin/leanstack-backup"].content
    assert entry == entry_script(BACKUP_COMMAND)
    assert entry.startswith("#!/usr/bin/python3\n") and "from leanstack_agent.backup_cli import main" in entry
    drill = files["/usr/local/bin/leanstack-restore-drill"].content
    assert drill.startswith("#!/bin/sh\n")
    assert 'exec /usr/local/bin/leanstack-backup restore-drill "$@"\n' in drill
    restore = files["/usr/local/bin/leanstack-restore"].content
    assert restore.startswith("#!/bin/sh\n")
    assert 'exec /usr/local/bin/leanstack-backup restore "$@"\n' in restore
    assert set(BACKUP_UNITS) == {"leanstack-backup.timer", "leanstack-restore-drill.timer"}
    assert all(f"/etc/systemd/system/{unit}" in files for unit in BACKUP_UNITS)
    assert any(package.startswith("postgresql") for package in BACKUP_PACKAGES)
    assert "python3-boto3" in BACKUP_PACKAGES


def test_env_file_is_what_the_tool_reads_and_holds_no_secret() -> None:
    content = files_by_path()["/etc/leanstack/backup.env"].content
    values = parse_env_file(content)
    assert values == {
        "AWS_REGION": "eu-west-1",
        "BACKUP_BUCKET": "leanstack-prod-backups",
        "BACKUP_BUCKET_REGION": "eu-central-1",
        "BACKUP_PREFIX": "prod",
        "DATABASE_SECRET_ARN": BACKUP_SETTINGS.database_secret_arn,
        "DATABASE_HOST": BACKUP_SETTINGS.database_host,
        "DATABASE_PORT": "5432",
        "DATABASE_NAME": "app",
        "DATABASE_USER": "leanstack",
        "DATABASE_SSLMODE": "require",
        "DRILL_TARGET": "local",
        "DRILL_DATABASE_URL": "",
        "DRILL_WORK_DIR": "/var/lib/leanstack-restore-drill",
        "DRILL_STARTS_APP": "0",
        "VERIFY_SQL_FILE": "",
        "STACK": "prod",
        "METRICS_NAMESPACE": "Leanstack",
    }
    assert not {"DATABASE_URL", "PGPASSWORD", "DATABASE_PASSWORD"} & set(values)
    # The tool accepts exactly this environment.
    settings = Settings.from_env(values)
    assert (settings.bucket, settings.prefix, settings.region, settings.bucket_region) == (
        "leanstack-prod-backups",
        "prod",
        "eu-west-1",
        "eu-central-1",
    )
    assert settings.database_name() == "app"
    assert settings.key("app", "x.dump") == "prod/app/x.dump"


def test_env_file_refuses_secrets_and_injection() -> None:
    with pytest.raises(ValueError, match="password"):
        render_env_file(
            dataclasses.replace(BACKUP_SETTINGS, drill_target="url", drill_database_url="postgresql://u:pw@h/postgres")
        )
    with pytest.raises(ValueError, match="single line"):
        render_env_file(dataclasses.replace(BACKUP_SETTINGS, bucket="b\nDATABASE_URL=postgresql://evil"))
    with pytest.raises(ValueError, match="ARN"):
        render_env_file(dataclasses.replace(BACKUP_SETTINGS, database_secret_arn="not-an-arn"))
    quoted = render_env_file(dataclasses.replace(BACKUP_SETTINGS, prefix='we"ird\\prefix'))
    assert parse_env_file(quoted)["BACKUP_PREFIX"] == 'we"ird\\prefix'
    allowed = render_env_file(
        dataclasses.replace(BACKUP_SETTINGS, drill_target="url", drill_database_url="postgresql://u@h/postgres")
    )
    assert parse_env_file(allowed)["DRILL_DATABASE_URL"] == "postgresql://u@h/postgres"
    with pytest.raises(ValueError, match="drill_target must be one of local, instance, url"):
        render_env_file(dataclasses.replace(BACKUP_SETTINGS, drill_target="production"))
    with pytest.raises(ValueError, match="drill_target url needs drill_database_url"):
        render_env_file(dataclasses.replace(BACKUP_SETTINGS, drill_target="url"))
    with pytest.raises(ValueError, match="drill_starts_app needs drill_target local"):
        render_env_file(dataclasses.replace(BACKUP_SETTINGS, drill_target="instance", drill_starts_app=True))


def test_units_schedule_and_hardening() -> None:
    files = files_by_path()
    backup_timer = files["/etc/systemd/system/leanstack-backup.timer"].content
    drill_timer = files["/etc/systemd/system/leanstack-restore-drill.timer"].content
    assert "OnCalendar=*-*-* 03:30:00 UTC\n" in backup_timer
    assert "OnCalendar=*-*-01 05:00:00 UTC\n" in drill_timer
    for timer in (backup_timer, drill_timer):
        assert "Persistent=true\n" in timer
        assert "RandomizedDelaySec=" in timer
        assert "WantedBy=timers.target\n" in timer
    for name in ("leanstack-backup", "leanstack-restore-drill"):
        service = files[f"/etc/systemd/system/{name}.service"].content
        assert f"ExecStart=/usr/local/bin/{name}\n" in service
        assert f"RuntimeDirectory={name}\n" in service
        assert "# The flock lives here; the tool finds it through $RUNTIME_DIRECTORY." in service
        for setting in (
            "Type=oneshot",
            "EnvironmentFile=/etc/leanstack/backup.env",
            "DynamicUser=yes",
            "ProtectSystem=strict",
            "PrivateTmp=yes",
            "NoNewPrivileges=yes",
            "CapabilityBoundingSet=",
        ):
            assert f"\n{setting}\n" in service, setting


def test_the_drill_unit_cannot_reach_the_metadata_service_and_gets_the_host_roles_credentials() -> None:
    files = files_by_path()
    drill = files["/etc/systemd/system/leanstack-restore-drill.service"].content
    credentials = files["/etc/systemd/system/leanstack-restore-drill-credentials.service"].content
    unit, _, service = drill.partition("\n[Service]\n")
    # Before each drill, a fresh run of the credentials unit; the drill fails when it fails.
    assert "\nRequires=leanstack-restore-drill-credentials.service\n" in unit
    assert "\nAfter=leanstack-restore-drill-credentials.service\n" in unit
    for setting in (
        "IPAddressDeny=169.254.169.254 fd00:ec2::254",
        'ExecStartPre=+/usr/bin/sh -c \'install -m 0400 -o "$$(stat -c %%u "$RUNTIME_DIRECTORY")" '
        '-g "$$(stat -c %%g "$RUNTIME_DIRECTORY")" /run/leanstack/drill-aws-credentials '
        '"$RUNTIME_DIRECTORY/drill-aws-credentials"\'',
        "Environment=AWS_SHARED_CREDENTIALS_FILE=/run/leanstack-restore-drill/drill-aws-credentials",
        "UnsetEnvironment=AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE",
        "ExecStopPost=+/usr/bin/rm -f /run/leanstack/drill-aws-credentials",
        "DynamicUser=yes",
    ):
        assert f"\n{setting}\n" in service, setting
    # Nothing else of the drill's sandbox changed: the backup unit's lines, in the same order.
    backup = files["/etc/systemd/system/leanstack-backup.service"].content
    assert "IPAddressDeny" not in backup and "AWS_SHARED_CREDENTIALS_FILE" not in backup
    assert backup.split("Nice=10\n", 1)[1] == drill.split("Nice=10\n", 1)[1]
    # The credentials unit: root (no DynamicUser, no User), no RemainAfterExit (each drill
    # start runs it again), writing into a root-only runtime directory kept after it exits.
    assert "\nType=oneshot\n" in credentials
    for setting in ("RemainAfterExit=", "DynamicUser=", "User="):
        assert f"\n{setting}" not in credentials, setting
    assert "\nExecStart=/usr/local/bin/leanstack-backup drill-credentials /run/leanstack/drill-aws-credentials\n" in (
        credentials
    )
    for setting in ("RuntimeDirectory=leanstack", "RuntimeDirectoryMode=0700", "RuntimeDirectoryPreserve=yes"):
        assert f"\n{setting}\n" in credentials, setting
    assert "IPAddressDeny" not in credentials


@pytest.mark.servers
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    systemd_analyze = require_program("systemd-analyze", "systemd")
    # verify loads each unit with its dependencies (timers.target, sysinit.target...) and
    # checks ExecStart exists: run it on a root holding the installed files and a copy of
    # this machine's system units, so nothing needs to be installed on the machine itself.
    system_units = next((Path(d) for d in ("/usr/lib/systemd/system", "/lib/systemd/system") if Path(d).is_dir()), None)
    if system_units is None:
        pytest.skip("no system unit directory to verify the units against")
    root = tmp_path / "root"
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    # The drill copies its credentials file with the system's sh and removes it with its rm
    # (AL2023 and Debian both merged /usr: /usr/bin/sh, /usr/bin/rm).
    (root / "usr/bin").mkdir(parents=True)
    for program in ("sh", "rm"):
        shutil.copy2(f"/usr/bin/{program}", root / "usr/bin" / program)
    # The variant with every drill option on: its unit has the most settings.
    install_into(
        root, backup_host_files(dataclasses.replace(BACKUP_SETTINGS, drill_starts_app=True, verify_sql="SELECT true;"))
    )
    units = [str(root / "etc/systemd/system" / name) for name in sorted(os.listdir(root / "etc/systemd/system"))]
    assert len(units) == 5
    verified = subprocess.run(
        [systemd_analyze, f"--root={root}", "verify", *units], capture_output=True, text=True, check=False
    )
    if verified.returncode != 0 and "Failed to" in verified.stderr and "leanstack" not in verified.stderr:
        pytest.skip(f"systemd-analyze verify cannot run here: {verified.stderr.strip()}")
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr.strip() == "", verified.stderr

    # The check can fail: an unknown setting and a missing program are both reported.
    broken = Path(units[0])
    broken.write_text(
        broken.read_text().replace("ExecStart=/usr/local/bin/", "ExecStart=/usr/local/bin/missing-")
        + "NoSuchSetting=1\n"
    )
    rejected = subprocess.run(
        [systemd_analyze, f"--root={root}", "verify", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert rejected.returncode != 0
    assert "NoSuchSetting" in rejected.stderr and "missing-" in rejected.stderr

    for expression in (BACKUP_SETTINGS.backup_calendar, BACKUP_SETTINGS.drill_calendar):
        calendar = subprocess.run(
            [systemd_analyze, "calendar", f"{expression} UTC"], capture_output=True, text=True, check=False
        )
        assert calendar.returncode == 0, calendar.stderr


def test_help_and_bad_arguments() -> None:
    for arguments in (["--help"], ["restore-drill", "--help"]):
        shown = subprocess.run(
            [sys.executable, str(TOOL), *arguments], capture_output=True, text=True, check=False, env={}
        )
        assert shown.returncode == 0 and "DRILL_DATABASE_URL" in shown.stdout
    wrong = subprocess.run(
        [sys.executable, str(TOOL), "restore-drill", "now"], capture_output=True, text=True, check=False
    )
    assert wrong.returncode == 2 and len(wrong.stderr.splitlines()) == 1


def test_drill_settings_reach_the_host() -> None:
    settings = dataclasses.replace(BACKUP_SETTINGS, drill_starts_app=True, verify_sql="SELECT count(*) > 0 FROM users;")
    files = files_by_path(settings)
    values = parse_env_file(files["/etc/leanstack/backup.env"].content)
    assert (values["DRILL_TARGET"], values["DRILL_STARTS_APP"]) == ("local", "1")
    assert values["VERIFY_SQL_FILE"] == "/etc/leanstack/drill-verify.sql"
    assert files["/etc/leanstack/drill-verify.sql"].content == "SELECT count(*) > 0 FROM users;\n"
    drill = files["/etc/systemd/system/leanstack-restore-drill.service"].content
    assert "\nStateDirectory=leanstack-restore-drill\n" in drill
    assert "\nSupplementaryGroups=docker\n" in drill
    # Off by default: no docker group, no verification file.
    default = files_by_path()
    assert "SupplementaryGroups" not in default["/etc/systemd/system/leanstack-restore-drill.service"].content
    assert "/etc/leanstack/drill-verify.sql" not in default
    assert "StateDirectory" not in default["/etc/systemd/system/leanstack-backup.service"].content
    instance = parse_env_file(render_env_file(dataclasses.replace(BACKUP_SETTINGS, drill_target="instance")))
    assert (instance["DRILL_TARGET"], instance["DRILL_DATABASE_URL"]) == ("instance", "")
    assert "postgresql17-server" in BACKUP_PACKAGES
