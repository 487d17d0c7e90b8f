"""The field language of the stack config: how a setting is declared, parsed and checked.

`setting(...)` declares a field of an Args dataclass with what the validator and the JSON
Schema need (doc, bounds, pattern, check). `parse_value` turns a raw value (typed YAML or the
JSON strings the Pulumi engine passes) into the field's type or raises `ConfigError` with one
line: the key, the value given and what is allowed. `Validated` makes an Args dataclass check
its own fields on construction with the same rules, so a library user cannot build an invalid
component. Nothing here imports Pulumi.
"""

from __future__ import annotations

import ast
import contextvars
import dataclasses
import difflib
import importlib.util
import ipaddress
import json
import re
import types
import typing
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any, Literal

from leanstack.host.agent.contract import RESERVED_ENV_NAMES as RESERVED_ENV_NAMES
from leanstack.host.agent.contract import RESERVED_ENV_PREFIXES as RESERVED_ENV_PREFIXES
from leanstack.host.agent.contract import command_argv

# --------------------------------------------------------------------------- errors


class ConfigError(ValueError):
    """One invalid stack-config key; `str()` is the one line a user sees."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


def _show(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------------- field helpers
#
# A field's metadata carries what the validator and the JSON Schema need:
#   doc      what the key means (shown in the schema, so editors show it on hover)
#   min/max  numeric bounds
#   pattern  a regex a string must match fully, with `allowed` saying it in words
#   check    a function returning an error message (or None) for values a regex can't judge
#   choices  the closed list of values `check` accepts, for the JSON Schema (an enum)
#   (what a change of the value replaces or restarts is not here: leanstack/resource_facts.py
#   holds it per resource type, and the diff reads it from there)

Check = Callable[[Any], str | None]


def setting(
    default: Any = dataclasses.MISSING,
    *,
    doc: str,
    min: float | None = None,
    max: float | None = None,
    pattern: str | None = None,
    allowed: str | None = None,
    check: Check | None = None,
    key_pattern: str | None = None,
    choices: tuple[str, ...] | None = None,
    allowed_key: str | None = None,
    unique: bool = True,
    command: bool = False,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    metadata = {
        "choices": choices,
        "allowed_key": allowed_key,
        "unique": unique,
        # A list is exec form, a string shell form (/bin/sh -c), as Docker's CMD.
        "command": command,
        "key_pattern": key_pattern,
        "doc": doc,
        "min": min,
        "max": max,
        "pattern": pattern,
        "allowed": allowed,
        "check": check,
    }
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


HOSTNAME_RE = r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]"
HOSTNAME_ALLOWED = "a lower-case DNS name such as example.com (letters, digits, '-' and '.')"
EMAIL_RE = r"[A-Za-z0-9._%+-]+@" + HOSTNAME_RE.replace("[a-z", "[A-Za-z")


def _provider_regions() -> tuple[str, ...]:
    """The regions the AWS provider accepts: its `Region` enum, read from the installed pulumi_aws.

    Read from the package's source rather than imported, so validating a stack stays Pulumi-free
    and fast; upgrading pulumi_aws brings new regions with it.
    """
    spec = importlib.util.find_spec("pulumi_aws")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        source = Path(location) / "_enums.py"
        if not source.exists():
            continue
        for node in ast.parse(source.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and node.name == "Region":
                return tuple(
                    stmt.value.value
                    for stmt in node.body
                    if isinstance(stmt, ast.Assign)
                    and isinstance(stmt.value, ast.Constant)
                    and isinstance(stmt.value.value, str)
                )
    raise RuntimeError("pulumi_aws is not installed (or has no Region enum): cannot check region names")


AWS_REGIONS = _provider_regions()
REGION_RE = r"[a-z]{2}(-[a-z]+)+-\d{1,2}"
REGION_ALLOWED = "an AWS region the provider knows (pulumi_aws.Region), such as us-east-1"


def _check_region(value: Any) -> str | None:
    if value in AWS_REGIONS:
        return None
    close = sorted(difflib.get_close_matches(str(value), AWS_REGIONS, n=3, cutoff=0.85))
    return REGION_ALLOWED + (f"; did you mean {' or '.join(close)}?" if close else "")


URL_PATH_RE = r"/[A-Za-z0-9._~/-]*"
SUBNET_ID_RE = r"subnet-[0-9a-f]{8,17}"


def _check_cidr(value: Any) -> str | None:
    try:
        net = ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        return "a valid IPv4 network such as 10.20.0.0/16"
    if net.version != 4 or not net.is_private or not 16 <= net.prefixlen <= 24:
        return "a private IPv4 network from /16 to /24 (room for four subnets), such as 10.20.0.0/16"
    return None


def _check_pg_version(value: Any) -> str | None:
    major = str(value).split(".")[0]
    if re.fullmatch(r"\d+(\.\d+)?", str(value)) and major in POSTGRES_MAJOR_VERSIONS:
        return None
    return f"one of {', '.join(POSTGRES_MAJOR_VERSIONS)} (or a minor version of one, such as 17.4)"


def postgres_parameter_family(engine_version: str) -> str:
    """The RDS parameter group family of a PostgreSQL version: postgres<major> (17.4 -> postgres17)."""
    return f"postgres{engine_version.split('.')[0]}"


# ElastiCache versions per engine for node-based clusters, oldest first. Redis OSS ends at 7.1 on
# ElastiCache (newer Redis is not open source; AWS moved on to Valkey); 4.0 and 5.0 are past standard
# support. Valkey 7.2 is Redis OSS 7.2's successor. Source: the ElastiCache User Guide, "Engine
# versions and upgrading in ElastiCache" (docs.aws.amazon.com/AmazonElastiCache/latest/dg/engine-versions.html).
CACHE_ENGINE_VERSIONS: dict[str, tuple[str, ...]] = {
    "valkey": ("7.2", "8.0", "8.1", "8.2", "9.0"),
    "redis": ("6.2", "7.0", "7.1"),
}
# The default per engine: the newest Redis OSS there is; for Valkey the 8.0 line, in every region.
CACHE_DEFAULT_VERSIONS = {"valkey": "8.0", "redis": "7.1"}


# Names app.env and app.secrets may not use, with the reason the error gives: the host's list
# (leanstack.host.agent.contract), which the host agent enforces too, whatever wrote the value.
# The shape of a name, with the reserved ones excluded (so the JSON Schema flags them in editors).
ENV_NAME_RE = (
    f"(?!(?:{'|'.join(sorted(RESERVED_ENV_NAMES))})$)"
    f"(?!{'|'.join(sorted(RESERVED_ENV_PREFIXES))})"
    r"[A-Z_][A-Z0-9_]{0,63}"
)


def env_name_problem(name: str) -> str | None:
    """Why `name` cannot be one of the app's variables, or None when it can."""
    if name in RESERVED_ENV_NAMES:
        return f"{RESERVED_ENV_NAMES[name]}; choose another name"
    for prefix, why in RESERVED_ENV_PREFIXES.items():
        if name.startswith(prefix):
            return f"{prefix}* names are not allowed: {why}; choose another name"
    if not re.fullmatch(ENV_NAME_RE, name):
        return "expected upper-case letters, digits and '_', not starting with a digit, at most 64"
    return None


# An SSM parameter name as AWS accepts it (PutParameter's naming constraints): segments of
# a-zA-Z0-9_.- after single slashes, at most 15 levels and 1011 characters, and not starting with
# aws or ssm in any case. leanstack wants the leading slash (the host's role is scoped by path).
SSM_PARAMETER_RE = r"(/[A-Za-z0-9_.-]+){1,15}"
SSM_PARAMETER_MAX = 1011


def _check_secret_source(value: Any) -> str | None:
    text = str(value)
    if not text.startswith("/"):
        return None
    if len(text) > SSM_PARAMETER_MAX:
        return f"an SSM parameter name of at most {SSM_PARAMETER_MAX} characters (AWS's limit)"
    if text[1:4].lower() in ("aws", "ssm"):
        return "an SSM parameter name not starting with aws or ssm (AWS reserves them)"
    return None


# A Secrets Manager secret ARN (the host's leanstack-app checks the same shape on its own).
SECRETS_MANAGER_ARN_RE = r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@!-]+"


# The host tools (drill, restore) name every database they create leanstack_...; an app
# database with that prefix could be taken for one of theirs.
SCRATCH_DATABASE_PREFIX = "leanstack_"


def _drill_url_problem(url: str) -> str | None:
    """What is wrong with a drill server URL (a maintenance database URL without a password), or None."""
    parts = urllib.parse.urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if (
        parts.scheme not in ("postgres", "postgresql")
        or not parts.hostname
        or not parts.path.strip("/")
        or not port_ok
        or any(c.isspace() or ord(c) < 32 for c in url)
    ):
        return "expected a URL such as postgresql://drill@db.internal:5432/postgres (scheme, host, database name)"
    if parts.password is not None:
        return "expected no password in it: stack config is not secret (the value is not shown here)"
    return None


# CloudWatch Logs only accepts these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)

# RDS's time windows: hh24:mi in UTC, weekdays as RDS spells them (it refuses 24:00 and 25:00).
_HHMM = r"([01]\d|2[0-3]):[0-5]\d"
_WEEKDAY = r"(mon|tue|wed|thu|fri|sat|sun)"

# PostgreSQL major versions RDS offers that are not past end of standard support.
POSTGRES_MAJOR_VERSIONS = ("14", "15", "16", "17")

# --------------------------------------------------------------------------- naming


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _fields(cls: type[Any]) -> dict[str, dataclasses.Field[Any]]:
    return {camel(f.name): f for f in dataclasses.fields(cls)}


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if not close:
        lowered = {k.lower(): k for k in known}
        if key.lower() in lowered:
            close = [lowered[key.lower()]]
    hint = f"; did you mean {close[0]}?" if close else f"; known keys: {', '.join(sorted(known))}"
    return "unknown key" + hint


# --------------------------------------------------------------------------- value parsing


def _decode(value: Any) -> Any:
    """Pulumi passes object values as JSON strings; typed YAML values arrive as they are."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _parse_scalar(key: str, value: Any, hint: Any, meta: Mapping[str, Any]) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(key, f"got {_show(value)}; allowed: {', '.join(map(str, choices))}")
        return value
    if hint is bool:
        # The engine passes scalars as strings ("true"); YAML gives real booleans.
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ConfigError(key, f"got {_show(value)}; expected true or false")
        return value
    if hint is int:
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"got {_show(value)}; expected a whole number{_range(meta)}")
        low, high = meta.get("min"), meta.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(key, f"got {value}; expected a whole number{_range(meta)}")
        return value
    if hint is str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)  # `engineVersion: 17` in YAML is a number; accept it as "17"
        if not isinstance(value, str):
            raise ConfigError(key, f"got {_show(value)}; expected a string")
        pattern = meta.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            raise ConfigError(key, f"got {_show(value)}; expected {meta.get('allowed') or 'match ' + pattern}")
        check = meta.get("check")
        if check is not None:
            problem = check(value)
            if problem:
                raise ConfigError(key, f"got {_show(value)}; expected {problem}")
        return value
    raise TypeError(f"unsupported setting type {hint!r} for {key}")  # a bug in this module


def _range(meta: Mapping[str, Any]) -> str:
    low, high = meta.get("min"), meta.get("max")
    if low is not None and high is not None:
        return f" from {low:g} to {high:g}"
    if low is not None:
        return f" of at least {low:g}"
    if high is not None:
        return f" of at most {high:g}"
    return ""


def _parse_value(key: str, value: Any, hint: Any, meta: Mapping[str, Any]) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        (item_hint, _ellipsis) = typing.get_args(hint)
        value = _decode(value)
        if isinstance(value, str):
            value = list(command_argv(value)) if meta.get("command") else [value]
        if not isinstance(value, list):
            raise ConfigError(key, f"got {_show(value)}; expected a list of {meta.get('allowed') or 'values'}")
        items = tuple(_parse_scalar(f"{key}[{i}]", item, item_hint, meta) for i, item in enumerate(value))
        if meta.get("unique", True) and len(set(items)) != len(items):
            raise ConfigError(key, f"got {_show(value)}; expected no duplicates")
        return items
    if origin is dict:
        value = _decode(value)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(key, f"got {_show(value)}; expected an object of NAME: value")
        item_hint = typing.get_args(hint)[1]
        parsed: dict[str, Any] = {}
        for name, item in sorted(value.items()):
            if not re.fullmatch(meta["key_pattern"], str(name)):
                problem = (
                    f"expected {meta.get('allowed_key') or 'a name matching ' + meta['key_pattern']}"
                    if dataclasses.is_dataclass(item_hint)
                    else env_name_problem(str(name)) or f"expected a name matching {meta['key_pattern']}"
                )
                raise ConfigError(f"{key}.{name}", f"not allowed: {problem}")
            if dataclasses.is_dataclass(item_hint):
                # An object per name (app.jobs); an instance built in Python is already checked.
                cls = typing.cast(type[Any], item_hint)
                parsed[str(name)] = item if isinstance(item, cls) else _parse_section(f"{key}.{name}", item, cls)
            else:
                parsed[str(name)] = _parse_scalar(f"{key}.{name}", item, str, meta)
        return parsed
    if dataclasses.is_dataclass(hint):
        return _parse_section(key, value, typing.cast(type[Any], hint))
    if isinstance(hint, types.UnionType):
        raise TypeError(f"unsupported union for {key}")
    return _parse_scalar(key, value, hint, meta)


def _parse_section(key: str, raw: Any, cls: type[Any]) -> Any:
    raw = _decode(raw)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(key, f"got {_show(raw)}; expected an object with keys {', '.join(_fields(cls))}")
    known = _fields(cls)
    hints = typing.get_type_hints(cls)
    for name in raw:
        if name not in known:
            raise ConfigError(f"{key}.{name}", _suggest(str(name), list(known)))
    values: dict[str, Any] = {}
    for name, f in known.items():
        if name in raw:
            values[f.name] = _parse_value(f"{key}.{name}", raw[name], hints[f.name], f.metadata)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}.{name}", f"missing; expected {f.metadata.get('allowed') or 'a value'}")
    return cls(**values)


# --------------------------------------------------------------------------- self-validating Args


_HINTS: dict[type[Any], dict[str, Any]] = {}
# True while `load_stack_config` parses a stack: it checks the section rules later, in its own order.
LOADING: contextvars.ContextVar[bool] = contextvars.ContextVar("leanstack_config_loading", default=False)


def _hints(cls: type[Any]) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


class Validated:
    """Base of every Args dataclass: its fields are checked on construction, by the stack file's rules.

    `DatabaseArgs(instance_class="foo")` raises `ConfigError` in one line naming the field, the value
    given and what is allowed (`DatabaseArgs.instance_class: got "foo"; expected ...`), so a library
    user cannot build an invalid component. The stack loader checks the same rules first and names
    the key path in the stack file instead (`leanstack:database.instanceClass: ...`).
    """

    def section_problem(self) -> tuple[str, str] | None:
        """The first rule across this section's own fields that fails: (field, message); None when all hold."""
        return None

    def __post_init__(self) -> None:
        cls = type(self)
        hints = _hints(cls)
        for f in dataclasses.fields(typing.cast(Any, self)):
            key = f"{cls.__name__}.{f.name}"
            value = getattr(self, f.name)
            hint = hints[f.name]
            if dataclasses.is_dataclass(hint):
                if not isinstance(value, typing.cast(type[Any], hint)):
                    raise ConfigError(
                        key, f"got {_show(value)}; expected an instance of {typing.cast(type[Any], hint).__name__}"
                    )
                continue
            raw = list(value) if isinstance(value, tuple) else value
            parsed = _parse_value(key, raw, hint, f.metadata)
            if parsed != value or type(parsed) is not type(value):
                object.__setattr__(self, f.name, parsed)
        # The loader runs the section rules itself, after every section's fields, naming the stack key.
        if not LOADING.get() and (problem := self.section_problem()):
            raise ConfigError(f"{cls.__name__}.{problem[0]}", problem[1])


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    week = 10080
    return any(a_start + shift < b_end and b_start < a_end + shift for shift in (-week, 0, week))


# --------------------------------------------------------------------------- systemd OnCalendar
#
# Every schedule (app.jobs.<name>.schedule, backup.backupCalendar, backup.drillCalendar) is one
# check: config/calendar.py parses as systemd does, so `validate` refuses what the host's timers
# would refuse, without systemd. The host checks again with `systemd-analyze calendar`.
_CALENDAR_ALLOWED = (
    "a systemd OnCalendar expression such as daily, hourly, '*-*-* 03:15:00', 'Mon..Fri 09:00' "
    "or '*:0/15' (weekdays, date Y-M-D, time H:M[:S], optional timezone of the zone database)"
)


def calendar_problem(value: Any) -> str | None:
    """Why `value` is not an OnCalendar expression systemd accepts, or None."""
    from leanstack.config.calendar import CalendarInvalid, check_calendar

    if not isinstance(value, str):
        return _CALENDAR_ALLOWED
    try:
        check_calendar(value)
    except CalendarInvalid as why:
        return f"{_CALENDAR_ALLOWED}; systemd refuses it ({why})"
    return None
