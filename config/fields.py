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
import json
import re
import types
import typing
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


def shown(value: Any) -> str:
    """A value as an error message quotes it: JSON, cut to 80 characters."""
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
EMAIL_ALLOWED = "an email address such as ops@example.com"


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


def check_region(value: Any) -> str | None:
    """None for a region the provider knows; else what is allowed, with the closest names."""
    if value in AWS_REGIONS:
        return None
    close = sorted(difflib.get_close_matches(str(value), AWS_REGIONS, n=3, cutoff=0.85))
    return REGION_ALLOWED + (f"; did you mean {' or '.join(close)}?" if close else "")


URL_PATH_RE = r"/[A-Za-z0-9._~/-]*"
URL_PATH_ALLOWED = "a URL path such as /healthz (letters, digits, '.', '_', '~', '-', '/')"
SUBNET_ID_RE = r"subnet-[0-9a-f]{8,17}"


# Memory of an RDS instance size (GiB) in the general-purpose families (db.t*, db.m*); memory-optimised
# db.r* classes have twice as much. Only for the connections alarm's threshold (see default_max_connections).
DB_SIZE_MEMORY_GIB = {
    "micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32, "4xlarge": 64,
    "8xlarge": 128, "12xlarge": 192, "16xlarge": 256, "24xlarge": 384,
}  # fmt: skip
# RDS PostgreSQL's default max_connections: LEAST({DBInstanceClassMemory/9531392}, 5000).
RDS_BYTES_PER_CONNECTION = 9531392
RDS_MAX_CONNECTIONS_CAP = 5000


def db_class_memory_gib(instance_class: str) -> int | None:
    """The memory of an RDS class in GiB, or None for a family leanstack has no figure for."""
    parts = instance_class.split(".")
    if len(parts) != 3 or parts[2] not in DB_SIZE_MEMORY_GIB or parts[1][:1] not in ("t", "m", "r"):
        return None
    return DB_SIZE_MEMORY_GIB[parts[2]] * (2 if parts[1].startswith("r") else 1)


def default_max_connections(instance_class: str) -> int | None:
    """RDS PostgreSQL's default max_connections for a class, estimated.

    The formula divides DBInstanceClassMemory, the class's memory less what the OS and RDS's own
    processes keep, which AWS does not publish per class. Estimated as 95% of the memory less
    250 MiB, which gives the figures `SHOW max_connections` is commonly reported to print
    (db.t*.micro about 80, db.t*.medium about 400, db.m*.large about 830); not measured here.
    """
    gib = db_class_memory_gib(instance_class)
    if gib is None:
        return None
    class_memory = gib * 1024**3 * 0.95 - 250 * 1024**2
    return min(int(class_memory // RDS_BYTES_PER_CONNECTION), RDS_MAX_CONNECTIONS_CAP)


def postgres_parameter_family(engine_version: str) -> str:
    """The RDS parameter group family of a PostgreSQL version: postgres<major> (17.4 -> postgres17)."""
    return f"postgres{engine_version.split('.')[0]}"


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


# A Secrets Manager secret ARN (the host's leanstack-app checks the same shape on its own).
SECRETS_MANAGER_ARN_RE = r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@!-]+"


# The host tools (drill, restore) name every database they create leanstack_...; an app
# database with that prefix could be taken for one of theirs.
SCRATCH_DATABASE_PREFIX = "leanstack_"


# CloudWatch Logs only accepts these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)

# --------------------------------------------------------------------------- naming


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def fields_by_key(cls: type[Any]) -> dict[str, dataclasses.Field[Any]]:
    """An Args dataclass's fields by their key in the stack file (camelCase)."""
    return {camel(f.name): f for f in dataclasses.fields(cls)}


def unknown_key(key: str, known: list[str]) -> str:
    """The error for a key that is not one of `known`, naming the closest one (or listing them all)."""
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


def parse_scalar(key: str, value: Any, hint: Any, meta: Mapping[str, Any]) -> Any:
    """One bool, int, str or Literal value checked against its field's metadata; ConfigError names `key`."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(key, f"got {shown(value)}; allowed: {', '.join(map(str, choices))}")
        return value
    if hint is bool:
        # The engine passes scalars as strings ("true"); YAML gives real booleans.
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ConfigError(key, f"got {shown(value)}; expected true or false")
        return value
    if hint is int:
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"got {shown(value)}; expected a whole number{_range(meta)}")
        low, high = meta.get("min"), meta.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(key, f"got {value}; expected a whole number{_range(meta)}")
        return value
    if hint is str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)  # `engineVersion: 17` in YAML is a number; accept it as "17"
        if not isinstance(value, str):
            raise ConfigError(key, f"got {shown(value)}; expected a string")
        pattern = meta.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            raise ConfigError(key, f"got {shown(value)}; expected {meta.get('allowed') or 'match ' + pattern}")
        check = meta.get("check")
        if check is not None:
            problem = check(value)
            if problem:
                raise ConfigError(key, f"got {shown(value)}; expected {problem}")
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


def parse_value(key: str, value: Any, hint: Any, meta: Mapping[str, Any]) -> Any:
    """A value of any field type (list, map, nested section or scalar) parsed into it; ConfigError names `key`."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        (item_hint, _ellipsis) = typing.get_args(hint)
        value = _decode(value)
        if isinstance(value, str):
            value = list(command_argv(value)) if meta.get("command") else [value]
        if not isinstance(value, list):
            raise ConfigError(key, f"got {shown(value)}; expected a list of {meta.get('allowed') or 'values'}")
        items = tuple(parse_scalar(f"{key}[{i}]", item, item_hint, meta) for i, item in enumerate(value))
        if meta.get("unique", True) and len(set(items)) != len(items):
            raise ConfigError(key, f"got {shown(value)}; expected no duplicates")
        return items
    if origin is dict:
        value = _decode(value)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(key, f"got {shown(value)}; expected an object of NAME: value")
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
                parsed[str(name)] = item if isinstance(item, cls) else parse_section(f"{key}.{name}", item, cls)
            else:
                parsed[str(name)] = parse_scalar(f"{key}.{name}", item, str, meta)
        return parsed
    if dataclasses.is_dataclass(hint):
        return parse_section(key, value, typing.cast(type[Any], hint))
    if isinstance(hint, types.UnionType):
        raise TypeError(f"unsupported union for {key}")
    return parse_scalar(key, value, hint, meta)


def parse_section(key: str, raw: Any, cls: type[Any]) -> Any:
    """A section's raw object (camelCase keys) as an instance of `cls`; ConfigError names `key` and the field."""
    raw = _decode(raw)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(key, f"got {shown(raw)}; expected an object with keys {', '.join(fields_by_key(cls))}")
    known = fields_by_key(cls)
    hints = typing.get_type_hints(cls)
    for name in raw:
        if name not in known:
            raise ConfigError(f"{key}.{name}", unknown_key(str(name), list(known)))
    values: dict[str, Any] = {}
    for name, f in known.items():
        if name in raw:
            values[f.name] = parse_value(f"{key}.{name}", raw[name], hints[f.name], f.metadata)
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
                        key, f"got {shown(value)}; expected an instance of {typing.cast(type[Any], hint).__name__}"
                    )
                continue
            raw = list(value) if isinstance(value, tuple) else value
            parsed = parse_value(key, raw, hint, f.metadata)
            if parsed != value or type(parsed) is not type(value):
                object.__setattr__(self, f.name, parsed)
        # The loader runs the section rules itself, after every section's fields, naming the stack key.
        if not LOADING.get() and (problem := self.section_problem()):
            raise ConfigError(f"{cls.__name__}.{problem[0]}", problem[1])


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
