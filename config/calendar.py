"""systemd OnCalendar expressions, checked the way systemd parses them, without systemd.

`validate` runs on a laptop with no systemd, yet the host's timers refuse what `systemd-analyze
calendar` refuses, and a refused timer never runs (a backup that silently never happens). So
this follows systemd's own parser (src/shared/calendarspec.c, `calendar_spec_from_string`)
step by step: the trailing timezone (` UTC`, or a name of the system's zone database), the
shorthands (daily, weekly, ...), then weekdays, a date (`Y-M-D`, `M-D`, `~` for the end of the
month, or `@EPOCH`), a time (`H:M[:S[.frac]]`), each component `*`, `n`, `a..b`, `/repeat` and
`,` lists, and at last the ranges systemd accepts (years 1970-2199, hours 0-23, ...).
tests/config/test_calendar.py compares it with `systemd-analyze calendar` over a corpus.

The host's own zone is UTC (Amazon Linux's default), so a timezone name is looked up in the
zone database of the machine that validates; the host checks again with `systemd-analyze`.
"""

from __future__ import annotations

import datetime
import re
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

MIN_YEAR, MAX_YEAR = 1970, 2199
USEC_PER_SEC = 1_000_000
INT_MAX = 2**31 - 1
# The shorthands systemd knows (case-insensitive), anually and bi-annually included.
SHORTHANDS = frozenset(
    {
        "minutely",
        "hourly",
        "daily",
        "monthly",
        "annually",
        "yearly",
        "anually",
        "weekly",
        "quarterly",
        "biannually",
        "bi-annually",
        "semiannually",
        "semi-annually",
    }
)
_DAYS = (
    ("monday", 0),
    ("mon", 0),
    ("tuesday", 1),
    ("tue", 1),
    ("wednesday", 2),
    ("wed", 2),
    ("thursday", 3),
    ("thu", 3),
    ("friday", 4),
    ("fri", 4),
    ("saturday", 5),
    ("sat", 5),
    ("sunday", 6),
    ("sun", 6),
)
_TIMEZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")


class CalendarInvalid(ValueError):
    """systemd would refuse the expression."""


@dataclass
class _Component:
    start: int
    stop: int = -1
    repeat: int = 0


@dataclass
class _Spec:
    end_of_month: bool = False
    year: list[_Component] = field(default_factory=list)
    month: list[_Component] = field(default_factory=list)
    day: list[_Component] = field(default_factory=list)
    hour: list[_Component] = field(default_factory=list)
    minute: list[_Component] = field(default_factory=list)
    second: list[_Component] = field(default_factory=list)


def timezone_is_valid(name: str) -> bool:
    """A zone systemd accepts: UTC, or a TZif file of the zone database named by letters, digits and _+-/."""
    if name == "UTC":
        return True
    if not _TIMEZONE_NAME.fullmatch(name):
        return False
    for root in zoneinfo.TZPATH:
        path = Path(root) / name
        try:
            if path.is_file() and path.open("rb").read(4) == b"TZif":
                return True
        except OSError:
            continue
    return False


class _Cursor:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def peek(self, offset: int = 0) -> str:
        i = self.at + offset
        return self.text[i] if i < len(self.text) else ""

    def rest(self) -> str:
        return self.text[self.at :]

    def skip_spaces(self) -> None:
        while self.peek() == " ":
            self.at += 1


def _decimal(cur: _Cursor, usec: bool) -> int:
    match = re.match(r"\d+", cur.rest())
    if not match:
        raise CalendarInvalid("a number expected")
    value = int(match.group())
    cur.at += len(match.group())
    if usec:
        value *= USEC_PER_SEC
        if cur.peek() == "." and cur.peek(1) != ".":  # one "." is a decimal point, ".." a range
            cur.at += 1
            digits = re.match(r"\d+", cur.rest())
            if not digits:
                raise CalendarInvalid("a decimal point without digits")
            fraction = digits.group()
            cur.at += len(fraction)
            value += int((fraction[:6] or "0").ljust(6, "0"))
    if value > INT_MAX:
        raise CalendarInvalid("a number out of range")
    return value


def _chain(cur: _Cursor, usec: bool) -> list[_Component]:
    if cur.peek() == "*":
        cur.at += 1
        return [_Component(0, -1, USEC_PER_SEC)] if usec else []
    chain: list[_Component] = []
    while True:
        start = _decimal(cur, usec)
        stop, repeat = -1, 0
        if cur.peek() == "." and cur.peek(1) == ".":
            cur.at += 2
            stop = _decimal(cur, usec)
            repeat = USEC_PER_SEC if usec else 1
        if cur.peek() == "/":
            cur.at += 1
            repeat = _decimal(cur, usec)
            if repeat == 0:
                raise CalendarInvalid("a repetition of 0")
        if cur.peek() not in ("", " ", ",", "-", "~", ":"):
            raise CalendarInvalid(f"unexpected {cur.peek()!r}")
        chain.append(_Component(start, stop, repeat))
        if len(chain) > 240:
            raise CalendarInvalid("too many components")
        if cur.peek() != ",":
            return chain
        cur.at += 1


def _weekdays(cur: _Cursor) -> None:
    previous = -1
    first = True
    while True:
        lowered = cur.rest().lower()
        found = next(((name, nr) for name, nr in _DAYS if lowered.startswith(name)), None)
        if found is None:
            if first:
                return
            raise CalendarInvalid("a weekday expected")
        name, nr = found
        if cur.peek(len(name)) not in ("", "-", ".", ",", " "):
            raise CalendarInvalid("a weekday followed by something else")
        if previous >= 0 and previous > nr:
            raise CalendarInvalid("a weekday range that runs backwards")
        cur.at += len(name)
        if cur.peek() == "":
            return
        if cur.peek() == " ":
            cur.skip_spaces()
            return
        if cur.peek() == ".":
            if previous >= 0 or cur.peek(1) != ".":
                raise CalendarInvalid("a bad weekday range")
            previous = nr
            cur.at += 2
        elif cur.peek() == "-":  # ranges with "-", for backwards compatibility
            if previous >= 0:
                raise CalendarInvalid("a bad weekday range")
            previous = nr
            cur.at += 1
        elif cur.peek() == ",":
            previous = -1
            cur.at += 1
        if cur.peek() in ("", " "):  # a trailing comma, but no open range
            cur.skip_spaces()
            if previous >= 0:
                raise CalendarInvalid("an open weekday range")
            return
        first = False


def _date(cur: _Cursor, spec: _Spec) -> bool:
    """The date, if any; True when it was an @EPOCH timestamp (then no time follows)."""
    if cur.peek() == "":
        return False
    if cur.peek() == "@":
        match = re.match(r"\s*\+?\d+", cur.text[cur.at + 1 :])
        if not match:
            raise CalendarInvalid("a timestamp expected after @")
        cur.at += 1 + len(match.group())
        seconds = int(match.group().strip().lstrip("+"))
        try:
            year = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC).year
        except (OverflowError, OSError, ValueError):
            raise CalendarInvalid("a timestamp out of range") from None
        spec.year = [_Component(year)]
        return True
    start = cur.at
    first = _chain(cur, False)
    if cur.peek() in ("", ":"):
        cur.at = start  # a time, not a date
        return False
    if cur.peek() == "~":
        spec.end_of_month = True
    elif cur.peek() != "-":
        raise CalendarInvalid("a date separator expected")
    cur.at += 1
    second = _chain(cur, False)
    if cur.peek() in ("", " "):
        cur.skip_spaces()
        spec.month, spec.day = first, second
        return False
    if spec.end_of_month:
        raise CalendarInvalid("~ before the day only")
    if cur.peek() == "~":
        spec.end_of_month = True
    elif cur.peek() != "-":
        raise CalendarInvalid("a date separator expected")
    cur.at += 1
    third = _chain(cur, False)
    if cur.peek() not in ("", " "):
        raise CalendarInvalid("the date ends with something else")
    cur.skip_spaces()
    spec.year, spec.month, spec.day = first, second, third
    return False


def _time(cur: _Cursor, spec: _Spec) -> None:
    if cur.peek() == "":
        spec.hour, spec.minute, spec.second = [_Component(0)], [_Component(0)], [_Component(0)]
        return
    spec.hour = _chain(cur, False)
    if cur.peek() != ":":
        raise CalendarInvalid("a time is H:M or H:M:S")
    cur.at += 1
    spec.minute = _chain(cur, False)
    if cur.peek() == "":
        spec.second = [_Component(0)]
        return
    if cur.peek() != ":":
        raise CalendarInvalid("a time is H:M or H:M:S")
    cur.at += 1
    spec.second = _chain(cur, True)
    if cur.peek() != "":
        raise CalendarInvalid("the time ends with something else")


def _fix_year(value: int) -> int:
    if 0 <= value < 70:
        return value + 2000
    if 70 <= value < 100:
        return value + 1900
    return value


def _chain_valid(chain: list[_Component], low: int, high: int, end_of_month: bool = False) -> bool:
    if end_of_month:
        high -= 3  # no more than 28 days from the end of the month
    for c in chain:
        stop = c.stop
        if stop > c.start and c.repeat > 0:
            stop -= (stop - c.start) % c.repeat
        if not low <= c.start <= high or c.repeat > high - low:
            return False
        if stop >= 0:
            if not low <= stop <= high or c.start + c.repeat > stop:
                return False
        elif (end_of_month and c.start - c.repeat < low) or (not end_of_month and c.start + c.repeat > high):
            return False
    return True


def check_calendar(expression: str) -> str | None:
    """The timezone the expression names (None: the host's, UTC), or CalendarInvalid as systemd would refuse it."""
    text = expression
    zone: str | None = None
    if text.lower().endswith(" utc"):
        text, zone = text[:-4], "UTC"
    else:
        head, space, last = text.rpartition(" ")
        if space and timezone_is_valid(last):
            text, zone = head, last
    if text == "":
        raise CalendarInvalid("empty")
    if text.lower() in SHORTHANDS:
        return zone
    spec = _Spec()
    cur = _Cursor(text)
    _weekdays(cur)
    if not _date(cur, spec):
        _time(cur, spec)
    if cur.peek() != "":
        raise CalendarInvalid(f"unexpected {cur.rest()!r}")
    if spec.end_of_month and not spec.day:
        spec.end_of_month = False
    for c in spec.year:
        c.start, c.stop = _fix_year(c.start), _fix_year(c.stop) if c.stop >= 0 else c.stop
    valid = (
        _chain_valid(spec.year, MIN_YEAR, MAX_YEAR)
        and _chain_valid(spec.month, 1, 12)
        and _chain_valid(spec.day, 1, 31, spec.end_of_month)
        and _chain_valid(spec.hour, 0, 23)
        and _chain_valid(spec.minute, 0, 59)
        and _chain_valid(spec.second, 0, 60 * USEC_PER_SEC - 1)
    )
    if not valid:
        raise CalendarInvalid("a value out of range")
    return zone
