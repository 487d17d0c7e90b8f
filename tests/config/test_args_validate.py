"""Args validate themselves: a library user cannot build an invalid component."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any, cast

import pytest

from leanstack.config import (
    AlertsArgs,
    AppArgs,
    BackupBucketArgs,
    CacheArgs,
    ConfigError,
    DatabaseArgs,
    HostsArgs,
    JobArgs,
    NetworkArgs,
    UptimeCheckArgs,
    load_stack_config,
)
from leanstack.config.fields import calendar_problem


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: DatabaseArgs(instance_class="foo"),
            "DatabaseArgs.instance_class: got \"foo\"; expected an RDS instance class starting with 'db.', "
            "such as db.t4g.micro",
        ),
        (
            lambda: DatabaseArgs(allocated_storage_gb=5),
            "DatabaseArgs.allocated_storage_gb: got 5; expected a whole number from 20 to 65536",
        ),
        (lambda: NetworkArgs(cidr="8.8.0.0/16"), 'NetworkArgs.cidr: got "8.8.0.0/16"; expected a private IPv4'),
        (lambda: AlertsArgs(email="nobody"), 'AlertsArgs.email: got "nobody"; expected an email address'),
        (lambda: UptimeCheckArgs(hostname="Example.COM"), 'UptimeCheckArgs.hostname: got "Example.COM"'),
        (lambda: UptimeCheckArgs(hostname="example.com", site_down_minutes=0), "UptimeCheckArgs.site_down_minutes"),
        (lambda: CacheArgs(engine=cast(Any, "memcached")), 'CacheArgs.engine: got "memcached"; allowed: valkey, redis'),
        (lambda: AppArgs(env={"PATH": "/bin"}), "AppArgs.env.PATH: not allowed"),
        (
            lambda: HostsArgs(autoscale=cast(Any, "big")),
            'HostsArgs.autoscale: got "big"; expected an instance of AutoscaleArgs',
        ),
    ],
)
def test_invalid_args_fail_at_construction_in_one_line(build: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build()  # type: ignore[operator]
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_valid_args_are_normalised_like_the_stack_file() -> None:
    # A list becomes the tuple the field declares; a number given for a version string becomes the string.
    args = DatabaseArgs(engine_version=17)  # type: ignore[arg-type]
    assert args.engine_version == "17"
    net = NetworkArgs(existing_public_subnet_ids=["subnet-0123456789abcdef0"])  # type: ignore[arg-type]
    assert net.existing_public_subnet_ids == ("subnet-0123456789abcdef0",)
    assert DatabaseArgs() == DatabaseArgs()  # the defaults are valid


def test_the_stack_loader_still_names_the_key_path() -> None:
    raw = {
        "aws:region": "eu-central-1",
        "leanstack:domain": "example.net",
        "leanstack:alertEmail": "ops@example.net",
        "leanstack:cdn": {"zoneId": "0" * 32},
        "leanstack:backup": {"region": "eu-west-1"},
        "leanstack:database": {"instanceClass": "foo"},
    }
    with pytest.raises(ConfigError) as caught:
        load_stack_config(raw, "dev")
    assert str(caught.value).startswith('leanstack:database.instanceClass: got "foo"; expected an RDS instance class')


def test_rules_across_a_sections_own_fields_run_at_construction_too() -> None:
    with pytest.raises(ConfigError) as caught:
        DatabaseArgs(allocated_storage_gb=200)
    assert str(caught.value) == (
        "DatabaseArgs.max_allocated_storage_gb: got 100; expected more than allocatedStorageGb (200)"
    )
    with pytest.raises(ConfigError, match=r"^DatabaseArgs\.backup_window: got \"05:00-06:00\"; it overlaps"):
        DatabaseArgs(backup_window="05:00-06:00", maintenance_window="sun:05:30-sun:06:30")
    with pytest.raises(ConfigError, match=r"^BackupBucketArgs\.expire_after_days: got 10; expected more than"):
        BackupBucketArgs(region="eu-west-1", expire_after_days=10, object_lock_days=30, glacier_after_days=0)


def test_the_loader_still_reports_fields_before_rules_under_its_own_keys() -> None:
    raw = {
        "aws:region": "eu-central-1",
        "leanstack:domain": "example.net",
        "leanstack:alertEmail": "ops@example.net",
        "leanstack:cdn": {"zoneId": "0" * 32},
        "leanstack:backup": {"region": "eu-west-1"},
        "leanstack:database": {"allocatedStorageGb": 200},
    }
    with pytest.raises(ConfigError) as caught:
        load_stack_config(raw, "dev")
    assert str(caught.value) == (
        "leanstack:database.maxAllocatedStorageGb: got 100; expected more than allocatedStorageGb (200)"
    )


APP_STACK = {
    "aws:region": "eu-central-1",
    "leanstack:domain": "example.net",
    "leanstack:alertEmail": "ops@example.net",
    "leanstack:cdn": {"zoneId": "0" * 32},
    "leanstack:backup": {"region": "eu-west-1"},
    "leanstack:database": {"protect": False, "deletionProtection": False},
}


@pytest.mark.parametrize(
    ("app", "message"),
    [
        (
            {"jobs": {"report": {"schedule": "every day", "command": ["bin/report"]}}},
            'leanstack:app.jobs.report.schedule: got "every day"; expected a systemd OnCalendar expression',
        ),
        (
            {"jobs": {"report": {"schedule": "*-*-* 25:00", "command": ["bin/report"]}}},
            "leanstack:app.jobs.report.schedule: got",
        ),
        (
            {"jobs": {"Report": {"schedule": "daily", "command": ["bin/report"]}}},
            "leanstack:app.jobs.Report: not allowed: expected a job name of 1-40 lower-case letters",
        ),
        ({"jobs": {"report": {"schedule": "daily"}}}, "leanstack:app.jobs.report.command: missing"),
        ({"jobs": {"report": {"schedule": "daily", "command": []}}}, "leanstack:app.jobs.report.command: missing"),
        (
            {"jobs": {"report": {"schedule": "daily", "command": ["x"], "every": 1}}},
            "leanstack:app.jobs.report.every:",
        ),
        ({"releaseCommand": ["bin/migrate", ""]}, 'leanstack:app.releaseCommand[1]: got ""'),
    ],
)
def test_release_command_and_jobs_are_checked_by_validate(app: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_stack_config({**APP_STACK, "leanstack:app": app}, "dev")
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_release_command_and_jobs_load() -> None:
    app = {
        "releaseCommand": ["bin/rails", "db:migrate", "db:migrate"],  # an argv may repeat an argument
        "jobs": {
            "nightly-report": {"schedule": "*-*-* 03:15:00", "command": ["bin/report"]},
            "sweep": {"schedule": "Mon..Fri *:0/15 UTC", "command": "bin/sweep"},
        },
    }
    config = load_stack_config({**APP_STACK, "leanstack:app": app}, "dev")
    assert config.app.release_command == ("bin/rails", "db:migrate", "db:migrate")
    assert config.app.jobs["nightly-report"].schedule == "*-*-* 03:15:00"
    # A string is shell form, as Docker's CMD: run by /bin/sh -c.
    assert config.app.jobs["sweep"].command == ("/bin/sh", "-c", "bin/sweep")
    with pytest.raises(ConfigError, match=r"^JobArgs.schedule: got \"hourlyish\""):
        JobArgs(schedule="hourlyish", command=("bin/x",))


@pytest.mark.parametrize(
    "schedule",
    ["daily", "hourly", "*-*-* 03:15:00", "Mon..Fri 09:00", "*:0/15", "Mon,Fri *-*-* 02:00", "2026-12-25 12:00 UTC"],
)
def test_the_calendar_check_accepts_what_systemd_accepts(schedule: str) -> None:
    assert calendar_problem(schedule) is None
    if shutil.which("systemd-analyze"):
        assert subprocess.run(["systemd-analyze", "calendar", schedule], capture_output=True).returncode == 0


@pytest.mark.parametrize(
    "schedule", ["", "every day", "25:00", "*-13-01 00:00", "Funday 10:00", "*:0/0", "daily 03:00"]
)
def test_the_calendar_check_refuses_what_systemd_refuses(schedule: str) -> None:
    assert calendar_problem(schedule) is not None
    if shutil.which("systemd-analyze"):
        assert subprocess.run(["systemd-analyze", "calendar", schedule], capture_output=True).returncode != 0
