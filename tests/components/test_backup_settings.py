"""The host's BackupSettings are filled from leanstack:backup: the drill's target, app check and SQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from leanstack.host import boot
from leanstack.host.backup import install
from leanstack.host.params import BackupSettings, HostFile
from leanstack.mocks import StackRun


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[BackupSettings]:
    """Every BackupSettings the program renders the host's backup files from."""
    seen: list[BackupSettings] = []
    real = install.backup_host_files

    def record(settings: BackupSettings) -> tuple[HostFile, ...]:
        seen.append(settings)
        return real(settings)

    monkeypatch.setattr(boot, "backup_host_files", record)
    return seen


def test_the_drill_keys_reach_the_host(
    run_dev_with: Callable[[dict[str, Any]], StackRun], recorded: list[BackupSettings]
) -> None:
    url = "postgresql://drill@db.internal:5432/postgres"
    run_dev_with(
        {
            "leanstack:backup": {
                "drillTarget": "url",
                "drillDatabaseUrl": url,
                "verifySql": "SELECT count(*) > 0 FROM users;",
            }
        }
    )
    assert recorded, "the program rendered no backup files"
    settings = recorded[-1]
    assert (settings.drill_target, settings.drill_database_url) == ("url", url)
    assert settings.drill_starts_app is False
    assert settings.verify_sql == "SELECT count(*) > 0 FROM users;"
    run_dev_with({"leanstack:backup": {"drillStartsApp": True}})
    assert (recorded[-1].drill_target, recorded[-1].drill_starts_app) == ("local", True)


def test_by_default_the_drill_restores_locally_and_starts_nothing(
    run_dev_with: Callable[[dict[str, Any]], StackRun], recorded: list[BackupSettings]
) -> None:
    run_dev_with({})
    settings = recorded[-1]
    assert (settings.drill_target, settings.drill_database_url, settings.drill_starts_app, settings.verify_sql) == (
        "local",
        "",
        False,
        "",
    )
