"""The Jinja environment of the sheet's templates (templates/): Markdown sections and the recovery branches' YAML.

Block tags sit on lines of their own (trim_blocks and lstrip_blocks drop those lines whole), and a
condition inside a line is an inline `{{ a if b else c }}`, so a template line is an output line.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jinja2
import yaml

from leanstack.runbook.facts import (
    APP_TOOL,
    APP_UNIT_GLOB,
    BACKUP_COMMAND,
    BEFORE_PULUMI,
    DRILL_COMMAND,
    HOST,
    LAPTOP,
    MAINTENANCE_COMMAND,
    NO_OWNER,
    NO_PASSWORD_MANAGER,
    RESTORE_COMMAND,
    WHERE,
    github_anchor,
)

_TEMPLATES = Path(__file__).parent / "templates"


def markdown_table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """A Markdown table; a cell's `|` is escaped and its line breaks become spaces."""
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        # Markdown and YAML, not HTML: the sheet prints commands verbatim, escaping would corrupt them.
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["anchor"] = github_anchor
    env.globals.update(
        table=markdown_table,
        WHERE=WHERE,
        LAPTOP=LAPTOP,
        HOST=HOST,
        BEFORE_PULUMI=BEFORE_PULUMI,
        NO_OWNER=NO_OWNER,
        NO_PASSWORD_MANAGER=NO_PASSWORD_MANAGER,
        APP_TOOL=APP_TOOL,
        APP_UNIT_GLOB=APP_UNIT_GLOB,
        BACKUP_COMMAND=BACKUP_COMMAND,
        DRILL_COMMAND=DRILL_COMMAND,
        MAINTENANCE_COMMAND=MAINTENANCE_COMMAND,
        RESTORE_COMMAND=RESTORE_COMMAND,
    )
    return env


_ENV = _environment()


def render_template(template: str, **values: Any) -> str:
    """templates/<template> rendered with the values (every name it uses must be given: StrictUndefined)."""
    return _ENV.get_template(template).render(**values)


# libyaml's loader when PyYAML was built with it (it is, on the usual wheels): the same data, several times faster.
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def render_yaml(template: str, **values: Any) -> Any:
    """templates/<template> rendered with the values, then read as YAML."""
    return yaml.load(render_template(template, **values), Loader=_YAML_LOADER)
