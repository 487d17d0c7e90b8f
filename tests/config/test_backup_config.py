"""The backup and drill keys of the stack config, and the app database names the host tools reserve."""

from __future__ import annotations

from typing import Any

import pytest

from leanstack.config import ConfigError, StackConfig, final_snapshot_name, load_stack_config
from tests.conftest import merged

# A stack file of this test's own: no placeholder of stacks/ is relied on.
MINIMAL: dict[str, Any] = {
    "aws:region": "eu-west-1",
    "leanstack:domain": "example.org",
    "leanstack:alertEmail": "a@example.org",
    "leanstack:cdn": {"zoneId": "f" * 32},
    "leanstack:backup": {"region": "eu-central-1"},
    "leanstack:owner": "Ada",
    "leanstack:recovery": {"rtoMinutes": 240, "rpoHours": 25, "secondPerson": "Grace, grace@example.com"},
}


def load(overrides: dict[str, Any]) -> StackConfig:
    return load_stack_config(merged(MINIMAL, overrides), "prod")


def error_of(overrides: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        load(overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_drill_defaults_keep_the_drill_off_production() -> None:
    backup = load({}).backup
    assert backup.drill_target == "local"
    assert backup.drill_database_url == ""
    assert backup.drill_starts_app is False
    assert backup.verify_sql == ""


def test_drill_keys_are_read() -> None:
    backup = load(
        {
            "leanstack:backup": {
                "drillTarget": "url",
                "drillDatabaseUrl": "postgresql://drill@db.internal:5432/postgres?sslmode=require",
                "verifySql": "SELECT count(*) > 0 FROM users;\nSELECT true;",
            }
        }
    ).backup
    assert backup.drill_target == "url"
    assert backup.drill_database_url == "postgresql://drill@db.internal:5432/postgres?sslmode=require"
    assert backup.verify_sql == "SELECT count(*) > 0 FROM users;\nSELECT true;"
    # The engine passes scalars as strings.
    assert load({"leanstack:backup": {"drillStartsApp": "true"}}).backup.drill_starts_app is True
    assert load({"leanstack:backup": {"drillTarget": "instance"}}).backup.drill_target == "instance"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            # The drill's clean-up pattern: with this name, a drill would take the app's database for its own.
            {"leanstack:database": {"databaseName": "leanstack_drill_20250101t000000z_1"}},
            'leanstack:database.databaseName: got "leanstack_drill_20250101t000000z_1"; expected a name not '
            "starting with leanstack_ (the host tools name their scratch databases so)",
        ),
        (
            {"leanstack:database": {"databaseName": "leanstack_app"}},
            'leanstack:database.databaseName: got "leanstack_app"; expected a name not starting with leanstack_ '
            "(the host tools name their scratch databases so)",
        ),
        (
            {"leanstack:backup": {"drillTarget": "rds"}},
            'leanstack:backup.drillTarget: got "rds"; allowed: local, instance, url',
        ),
        (
            {"leanstack:backup": {"drillTarget": "url"}},
            "leanstack:backup.drillDatabaseUrl: missing; drillTarget is url, so expected the drill server's URL "
            "such as postgresql://drill@db.internal:5432/postgres",
        ),
        (
            {"leanstack:backup": {"drillDatabaseUrl": "postgresql://drill@db.internal/postgres"}},
            'leanstack:backup.drillDatabaseUrl: got a URL with drillTarget "local"; expected it only with '
            "drillTarget: url",
        ),
        (
            {"leanstack:backup": {"drillTarget": "url", "drillDatabaseUrl": "mysql://drill@db.internal/postgres"}},
            "leanstack:backup.drillDatabaseUrl: not a usable URL; expected a URL such as "
            "postgresql://drill@db.internal:5432/postgres (scheme, host, database name)",
        ),
        (
            {"leanstack:backup": {"drillTarget": "url", "drillDatabaseUrl": "postgresql://drill@db.internal"}},
            "leanstack:backup.drillDatabaseUrl: not a usable URL; expected a URL such as "
            "postgresql://drill@db.internal:5432/postgres (scheme, host, database name)",
        ),
        (
            {"leanstack:backup": {"drillTarget": "url", "drillDatabaseUrl": "postgresql://drill@h:99999/postgres"}},
            "leanstack:backup.drillDatabaseUrl: not a usable URL; expected a URL such as "
            "postgresql://drill@db.internal:5432/postgres (scheme, host, database name)",
        ),
        (
            # The app the drill starts reaches only the host's throw-away PostgreSQL.
            {"leanstack:backup": {"drillTarget": "instance", "drillStartsApp": True}},
            'leanstack:backup.drillStartsApp: got true with drillTarget "instance"; expected drillTarget: local (the '
            "app the drill starts reaches only the host's throw-away PostgreSQL)",
        ),
        (
            {"leanstack:backup": {"drillStartsApp": "sometimes"}},
            'leanstack:backup.drillStartsApp: got "sometimes"; expected true or false',
        ),
        (
            {"leanstack:backup": {"verifySql": "x" * 4001}},
            'leanstack:backup.verifySql: got "' + "x" * 76 + "...; expected SQL text of at most 4000 characters",
        ),
    ],
)
def test_bad_backup_config_fails_with_one_line_naming_the_key(overrides: dict[str, Any], expected: str) -> None:
    assert error_of(overrides) == expected


def test_a_drill_url_with_a_password_is_refused_without_echoing_it() -> None:
    message = error_of(
        {"leanstack:backup": {"drillTarget": "url", "drillDatabaseUrl": "postgresql://drill:hunter2@h/postgres"}}
    )
    assert message == (
        "leanstack:backup.drillDatabaseUrl: not a usable URL; expected no password in it: stack config is not "
        "secret (the value is not shown here)"
    )
    assert "hunter2" not in message


def test_the_final_snapshot_is_named_after_the_stack() -> None:
    assert final_snapshot_name("prod") == "leanstack-prod-final"
