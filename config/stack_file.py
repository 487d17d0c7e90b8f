"""Reading a stack file: stacks/Pulumi.<stack>.yaml as a plain dict, refusing what Pulumi reads otherwise.

`parse_stack_yaml(text, name)` is how the offline tools (`validate`, `plan`, `diff`, the
tests) read stacks/Pulumi.<stack>.yaml. PyYAML speaks YAML 1.1; Pulumi's own parser (Go,
YAML 1.2) reads a few things differently, and this parser refuses them rather than guess
which reading the user meant, with the line number:

- a key given twice in one mapping: Pulumi refuses the file, PyYAML silently keeps the last;
- an unquoted YAML 1.1 boolean other than true/false (`on`, `off`, `yes`, `no`, `y`, `n` in
  any case): PyYAML reads `on` as true, Pulumi as the string "on", which then fails
  validation under `pulumi up` while `validate` said the file was fine;
- an unquoted base-60 number such as `3:30` (PyYAML: the integer 210; Pulumi: "3:30").
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class StackFileError(ValueError):
    """The stack file is missing, unreadable or not a Pulumi stack file; `str()` is one line."""


# Plain scalars YAML 1.1 reads as booleans but YAML 1.2 (Pulumi) as strings: every spelling the
# 1.1 spec lists, minus true/false, which both read the same.
YAML11_BOOLEANS = frozenset(
    f(word) for word in ("y", "yes", "n", "no", "on", "off") for f in (str.lower, str.title, str.upper)
)
# YAML 1.1's base-60 integers and floats (1:30, 190:20:30.15): numbers to PyYAML, strings to Pulumi.
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")


def _check_node(node: yaml.Node, name: str) -> None:
    """Refuse what PyYAML and Pulumi's parser read differently, naming the line."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            _check_node(key_node, name)
            line = key_node.start_mark.line + 1
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
            if key in seen:
                raise StackFileError(
                    f"{name} line {line}: key {key!r} is given twice in one mapping (first on line {seen[key]}); "
                    "Pulumi refuses duplicate keys, so keep one"
                )
            seen[key] = line
            _check_node(value_node, name)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_node(item, name)
    elif isinstance(node, yaml.ScalarNode) and node.style is None:
        line = node.start_mark.line + 1
        if node.value in YAML11_BOOLEANS:
            raise StackFileError(
                f"{name} line {line}: unquoted {node.value} is a boolean in YAML 1.1 but the string "
                f'"{node.value}" to Pulumi (YAML 1.2); write true or false, or quote it'
            )
        if _SEXAGESIMAL.fullmatch(node.value):
            raise StackFileError(
                f"{name} line {line}: unquoted {node.value} is a base-60 number in YAML 1.1 but the string "
                f'"{node.value}" to Pulumi (YAML 1.2); quote it'
            )


def parse_stack_yaml(text: str, name: str) -> dict[str, Any]:
    """The `config:` map of a stack file's text, or StackFileError in one line naming `name`."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_node(node, name)
        document = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise StackFileError(f"{name}: not valid YAML{at}: {str(exc).splitlines()[0]}") from None
    finally:
        loader.dispose()
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise StackFileError(f"{name}: expected a mapping with a 'config:' map")
    config = document.get("config") or {}
    return {str(k): v for k, v in config.items()}
