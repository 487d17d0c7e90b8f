"""Edit a stack file in place: only the values that change, every comment and the indentation kept.

`init` and `recover init` write stack files a person reads and keeps editing. A plain YAML dump
would drop the comments (the documentation of each key) and re-indent the file, so both edit
through ruamel.yaml's round trip (YAML 1.2, as Pulumi reads it): the file is loaded with its
comments, each value that differs is set where it stands, and the text is dumped with the
indentation the file had (2 or 4 spaces, lists flush or indented). What is written is read back
and compared with what was meant, so a value said to be filled is filled.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from leanstack.config.stack_file import parse_stack_yaml

_KEY_LINE = re.compile(r"^( *)[^\s#-][^#]*?:(?:\s|$)")
_DASH_LINE = re.compile(r"^( *)- ")


class StackEditError(ValueError):
    """The file cannot be edited as asked; `str()` is one line."""


def _indentation(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) as ruamel.yaml takes them, read from the file's own lines."""
    mapping = 0
    parents: list[int] = []  # indentation of the last key line
    sequence_offset: int | None = None
    for line in text.splitlines():
        key = _KEY_LINE.match(line)
        dash = _DASH_LINE.match(line)
        if dash and sequence_offset is None and parents:
            sequence_offset = len(dash.group(1)) - parents[-1]
        elif key:
            width = len(key.group(1))
            if width and not mapping:
                mapping = width
            parents.append(width)
    mapping = mapping or 2
    offset = mapping if sequence_offset is None else max(sequence_offset, 0)
    return mapping, offset + 2, offset


def _yaml(text: str) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long value onto a second line
    mapping, sequence, offset = _indentation(text)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _apply(target: Any, wanted: Any) -> Any:
    """`target` (a round-trip node) changed to equal `wanted`, keeping every node that already does."""
    if isinstance(target, CommentedMap) and isinstance(wanted, Mapping):
        for key in [k for k in target if k not in wanted]:
            del target[key]
        for key, value in wanted.items():
            if key in target:
                target[key] = _apply(target[key], value)
            else:
                target[key] = value
        return target
    if isinstance(target, CommentedSeq) and isinstance(wanted, list) and len(target) == len(wanted):
        for i, value in enumerate(wanted):
            target[i] = _apply(target[i], value)
        return target
    if type(target) is type(wanted) and target == wanted:
        return target  # unchanged: keeps its quoting
    if isinstance(target, str) and isinstance(wanted, str):
        return type(target)(wanted) if type(target) is not str else wanted  # same quote style
    return wanted


def edit_stack_text(text: str, config: Mapping[str, Any], name: str, header: str = "") -> str:
    """The stack file `text` with its `config:` map changed to `config`; checked by reading it back."""
    yaml = _yaml(text)
    try:
        document = yaml.load(text)
    except Exception as error:  # ruamel raises many kinds; the file is refused in one line
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise StackEditError(f"{name}: cannot be edited: {first}") from None
    if not isinstance(document, CommentedMap) or not isinstance(document.get("config"), CommentedMap):
        raise StackEditError(f"{name}: no `config:` map to edit")
    _apply(document["config"], config)
    out = io.StringIO()
    yaml.dump(document, out)
    written = header + out.getvalue()
    if parse_stack_yaml(written, name) != dict(config):
        raise StackEditError(f"{name}: the edited file does not read back as the values meant; nothing written")
    return written
