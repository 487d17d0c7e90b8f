"""The stack config model: plain Python, no Pulumi runtime; every error is one exact line."""

from __future__ import annotations

from typing import Any

import pytest

from leanstack.config import ConfigError, backup_interval_hours, is_production, load_stack_config
from tests.config.helpers import (
    BAD_ALERT_AND_RECOVERY_CONFIG,
    BAD_CONFIG,
    BAD_GROWTH_CONFIG,
    dev_config,
    error_of,
    load,
)
from tests.conftest import merged, read_stack_config


def test_both_stack_files_load_with_their_differences() -> None:
    dev, prod = load_stack_config(read_stack_config("dev"), "dev"), load({}, "prod")
    assert (dev.database.multi_az, prod.database.multi_az) == (False, True)
    assert (dev.database.protect, prod.database.protect) == (False, True)
    assert (dev.database.backup_retention_days, prod.database.backup_retention_days) == (1, 14)
    assert (dev.backup.object_lock_mode, prod.backup.object_lock_mode) == ("GOVERNANCE", "COMPLIANCE")
    # dev's domain is a subdomain, so it lists its one hostname; prod's apex gets www too.
    assert (len(dev.hostnames), prod.hostnames) == (1, (prod.domain, f"www.{prod.domain}"))
    assert dev.cache.enabled is False


def test_defaults_are_the_safe_choice() -> None:
    minimal = {
        "aws:region": "eu-west-1",
        "leanstack:domain": "example.org",
        "leanstack:alertEmail": "a@example.org",
        "leanstack:cdn": {"zoneId": "f" * 32},
        "leanstack:backup": {"region": "eu-central-1"},
        "leanstack:owner": "Ada",
        "leanstack:recovery": {"rtoMinutes": 240, "rpoHours": 25, "secondPerson": "Grace, grace@example.com"},
    }
    c = load_stack_config(minimal, "prod")
    assert c.is_production
    assert (c.alerts.error_rate_percent, c.alerts.min_requests_per_minute, c.alerts.site_down_minutes) == (5, 10, 3)
    assert (c.alerts.database_free_storage_percent, c.alerts.backup_stale_hours) == (10, 26)
    assert c.database.deletion_protection and c.database.final_snapshot and c.database.protect
    assert c.database.backup_retention_days == 7
    assert c.database.instance_class == "db.t4g.micro" and c.database.multi_az is False
    assert c.cache.enabled is False
    assert c.host.instance_type == "t4g.small"
    assert c.backup.object_lock_mode == "COMPLIANCE"


def test_engine_strings_are_coerced_like_pulumi_passes_them() -> None:
    # The engine hands scalars over as strings and objects as JSON strings.
    raw = dev_config()
    raw["leanstack:database"] = (
        '{"multiAz": "true", "backupRetentionDays": "3", "engineVersion": 16, "protect": "false", '
        '"deletionProtection": "false"}'
    )
    c = load_stack_config(raw, "dev")
    assert (c.database.multi_az, c.database.backup_retention_days, c.database.engine_version) == (
        True,
        3,
        "16",
    )


@pytest.mark.parametrize(("overrides", "expected"), BAD_CONFIG)
def test_bad_config_fails_with_one_line_naming_the_key(overrides: dict[str, Any], expected: str) -> None:
    assert error_of(overrides) == expected


@pytest.mark.parametrize(
    "hostname",
    [
        "dev.example.com\nserver_name evil.com",
        "dev.example.com;",
        "www.dev.example.com; return 200",
        "dev.example.com ",
    ],
)
def test_hostnames_that_could_inject_into_nginx_are_rejected(hostname: str) -> None:
    # These reach nginx's server_name and cloud-init; they must never get as far as rendering.
    message = error_of({"leanstack:hostnames": [hostname]})
    assert message.startswith("leanstack:hostnames[0]: got ")
    assert "expected a lower-case DNS name" in message


def test_health_path_with_nginx_syntax_is_rejected() -> None:
    message = error_of({"leanstack:app": {"healthPath": "/healthz; return 200"}})
    assert message.startswith("leanstack:app.healthPath: got ")


def test_unknown_stack_name_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^stack: got \"Prod!\""):
        load_stack_config(dev_config(), "Prod!")


# --------------------------------------------------------------------------- alerts, owner, recovery targets


@pytest.mark.parametrize(("overrides", "expected"), BAD_ALERT_AND_RECOVERY_CONFIG)
def test_bad_alert_and_recovery_config_fails_with_one_line(overrides: dict[str, Any], expected: str) -> None:
    assert error_of(overrides) == expected


def test_an_rpo_the_backup_schedule_meets_is_accepted() -> None:
    c = load({"leanstack:recovery": {"rpoHours": 7}, "leanstack:backup": {"backupCalendar": "*-*-* 00/6:00:00"}})
    assert c.recovery.rpo_hours == 7


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        (
            {"leanstack:owner": None},
            "leanstack:owner: missing; stack 'prod' is production (see leanstack.config.is_production), so "
            'expected who owns it, e.g. "Ada, ada@example.com"',
        ),
        (
            {"leanstack:recovery": {"rtoMinutes": None}},
            "leanstack:recovery.rtoMinutes: missing; stack 'prod' is production (see "
            "leanstack.config.is_production), so expected minutes such as 240",
        ),
        (
            {"leanstack:recovery": None},
            "leanstack:recovery.rtoMinutes: missing; stack 'prod' is production (see "
            "leanstack.config.is_production), so expected minutes such as 240",
        ),
        (
            {"leanstack:recovery": {"rpoHours": None}},
            "leanstack:recovery.rpoHours: missing; stack 'prod' is production (see "
            "leanstack.config.is_production), so expected hours such as 25",
        ),
    ],
)
def test_production_needs_an_owner_and_recovery_targets(missing: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(missing, "prod")
    assert str(caught.value) == expected


def test_production_is_the_name_or_a_protected_database() -> None:
    dev = load({})
    assert not dev.is_production and dev.owner and dev.recovery.rpo_hours == 0
    unprotected = dev.database
    assert is_production("prod", unprotected) and is_production("production", unprotected)
    assert is_production("prod-eu", unprotected) and not is_production("product", unprotected)
    # Any stack whose database is protected holds data that matters: dev's file with protection on.
    with pytest.raises(ConfigError, match=r"^leanstack:recovery.rtoMinutes: missing; stack 'dev' is production"):
        load({"leanstack:database": {"protect": True}})
    with pytest.raises(ConfigError, match=r"^leanstack:owner: missing; stack 'staging' is production"):
        load_stack_config(merged(dev_config(), {"leanstack:owner": None,
                                                             "leanstack:database": {"deletionProtection": True}}),
                          "staging")  # fmt: skip


@pytest.mark.parametrize(
    ("calendar", "hours"),
    [
        ("*-*-* 03:30:00", 24),
        ("*-*-* 03:30:00 UTC", 24),
        ("daily", 24),
        ("hourly", 1),
        ("*-*-* 00/6:00:00", 6),
        ("*-*-* 0,12:15", 12),
        ("*-*-* 1..5:00", 20),
        ("*-*-* *:00:00", 1),
        ("Mon *-*-* 03:00:00", None),
        ("*-*-01 05:00:00", None),
    ],
)
def test_backup_interval_of_a_calendar(calendar: str, hours: float | None) -> None:
    assert backup_interval_hours(calendar) == hours


# --------------------------------------------------------------------------- growth (issue 8)


def test_scale_out_is_off_by_default_and_the_scale_stack_turns_it_on() -> None:
    prod, scale = load({}, "prod"), load({}, "scale")
    assert (prod.hosts.count, prod.hosts.scaled, prod.database.read_replicas, prod.cache.replicas) == (1, False, 0, 0)
    assert (scale.hosts.count, scale.hosts.scaled, scale.database.read_replicas) == (2, True, 1)
    assert load({"leanstack:hosts": {"autoscale": {"min": 2, "max": 4}}}).hosts.scaled is True


@pytest.mark.parametrize(("overrides", "expected"), BAD_GROWTH_CONFIG)
def test_bad_growth_config_fails_with_one_line_naming_the_key(overrides: dict[str, Any], expected: str) -> None:
    assert error_of(overrides) == expected
