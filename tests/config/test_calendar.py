"""One calendar check for every schedule, in agreement with `systemd-analyze calendar`.

The corpus below (valid and not: shorthands, weekdays, dates, times, repetitions, ranges,
timezones of the zone database and made-up ones) goes through config/calendar.py and through
systemd's own parser; both must say the same of every expression. systemd is installed with apt
when missing (as root), so the comparison never skips. The host's zone is UTC (Amazon Linux), so
systemd runs with TZ=UTC here too.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

from leanstack.config import ConfigError, load_stack_config
from leanstack.config.calendar import CalendarInvalid, check_calendar
from leanstack.config.fields import calendar_problem
from support.system import require_program
from tests.conftest import merged, read_stack_config

CORPUS = [
    # shorthands, any case; no padding
    "daily", "Daily", "HOURLY", "minutely", "weekly", "monthly", "yearly", "annually", "anually", "quarterly",
    "semiannually", "semi-annually", "biannually", "bi-annually", "fortnightly", "  daily", "daily  ", "daily 03:00",
    "hourly UTC", "daily Europe/Berlin", "daily utc",
    # weekdays
    "Mon", "mon", "MONDAY", "Mon-Fri", "Mon..Fri", "Mon,Wed 12:00", "Mon..Fri,Sun 9:00", "Mon..Mon 9:00",
    "Fri..Mon 9:00", "Mon, 9:00", "Mon.. 9:00", "Monx 9:00", "Funday 10:00", "tuesday-ish", "Mon *-*-*",
    "Mon,Tue..Thu *-*-* 9:00", "Mon  12:00", "12:00 Mon", "Mon-Wed-Fri 1:00",
    # dates
    "*-*-* 03:30:00", "*-*-01 05:00:00", "2026-12-25 12:00", "2024-02-30", "1969-01-01", "2200-01-01",
    "2199-12-31", "99-01-01", "70-01-01", "*-02-30 00:00", "*-*~01", "*-*~28", "*-*~29", "*-*-5..3", "*-*-3..5",
    "*-1..3-* 00:00", "*-*-0 00:00", "*-13-01 00:00", "*/2-*-*", "2024-*/2-01", "*-*-1/7", "*-*-01/0",
    "*-*-* ", "*-*-*  12:00", "*~01-01", "01-01", "1-1 1:1", "*-*-*-*",
    # times
    "12:00", "12", "3:5", "*:0/15", "*:*", "*:*:*", "*-*-* 25:00", "*-*-* 24:00", "*-*-* 23:59:59",
    "*-*-* 12:60", "*-*-* 12:00:60", "*-*-* 12:00:59.5", "*-*-* 12:00:59.999999", "*-*-* 12:00:5.", "*-*-* 00/2:00",
    "*-*-* 0..23/2:00", "*-*-* 9:00/15", "*-*-* 09:00:00/0", "*-*-* 1,2,3:00", "*:0/60", "*:0/59", "*:58/2",
    "12.5:00", "12:00:00:00", "every day", "*:0/0", "12:00 ", "", " ", "@1234", "@0", "@99999999999",
    # timezones: the zone database, made-up names, case
    "*-*-* 12:00 XYZ", "*-*-* 12:00 Europe/Berlin", "*-*-* 12:00 Europe/Nowhere", "*-*-* 12:00 utc",
    "*-*-* 12:00 GMT", "*-*-* 12:00:00 America/New_York", "*-*-* 12:00 europe/berlin", "Mon 12:00 UTC",
    "*-*-* 12:00 Etc/GMT+5", "*-*-* 12:00 America/Argentina/Buenos_Aires", "*-*-* 12:00 ../etc", "UTC",
    "Europe/Berlin", "*-*-* 12:00 Europe/", "*-*-* 12:00 CET", "*-*-* 12:00 EST5EDT", "*-*-* 12:00 Zulu",
]  # fmt: skip


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    return require_program("systemd-analyze", "systemd")


def systemd_accepts(binary: str, expression: str) -> bool:
    env = {**os.environ, "TZ": "UTC"}
    done = subprocess.run([binary, "calendar", expression], capture_output=True, env=env, timeout=30, check=False)
    return done.returncode == 0


def python_accepts(expression: str) -> bool:
    try:
        check_calendar(expression)
    except CalendarInvalid:
        return False
    return True


def test_the_check_agrees_with_systemd_on_every_expression_of_the_corpus(systemd_analyze: str) -> None:
    disagree = [e for e in CORPUS if python_accepts(e) != systemd_accepts(systemd_analyze, e)]
    assert disagree == []
    accepted = [e for e in CORPUS if python_accepts(e)]
    assert 20 < len(accepted) < len(CORPUS) - 20, "the corpus holds both kinds"


@pytest.mark.parametrize("expression", ["12:00 Mon", "*-*-* 12:00 XYZ", "*-*-* 12:00 Europe/Nowhere", "tuesday-ish"])
def test_what_systemd_refuses_is_refused(expression: str) -> None:
    assert calendar_problem(expression) is not None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("backupCalendar", "*-*-* 25:00"),
        ("backupCalendar", "tuesday-ish"),
        ("drillCalendar", "tuesday-ish"),
        ("drillCalendar", "*-*-01 05:00 Mars/Olympus"),
    ],
)
def test_every_schedule_of_the_stack_file_takes_the_same_check(key: str, value: str) -> None:
    for stack in ("dev", "prod"):
        raw: dict[str, Any] = merged(read_stack_config(stack), {"leanstack:backup": {key: value}})
        with pytest.raises(ConfigError, match=rf"^leanstack:backup\.{key}: got .*systemd refuses it"):
            load_stack_config(raw, stack)
    fine = "*-*-* 02:15" if key == "backupCalendar" else "Mon *-*-* 04:00 Europe/Berlin"
    load_stack_config(merged(read_stack_config("prod"), {"leanstack:backup": {key: fine}}), "prod")
