"""The README's component reference, generated from the Args dataclasses (as the JSON Schema is).

`python -m leanstack docs` prints it; `python -m leanstack docs --write` puts it into README.md
between the two reference markers; tests/leanstack/test_docs.py fails when the README is not
current. Each field's type, default and doc come from the dataclass and its `setting(...)`; the
"changing it" column quotes what the field's doc says a change replaces or restarts, so the one
place to state it is the field's doc.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re
import textwrap
import typing
from pathlib import Path
from typing import Any, Literal

from leanstack.config.fields import camel
from leanstack.config.sections import SECTIONS
from leanstack.mocks import REPO

START = "<!-- component-reference:start (python -m leanstack docs --write) -->"
END = "<!-- component-reference:end -->"

# Each component of leanstack.components and the Args it takes, in the order a reader meets them.
COMPONENT_ARGS = (
    ("Network", "NetworkArgs"),
    ("Database", "DatabaseArgs"),
    ("Cache", "CacheArgs"),
    ("Storage", "StorageArgs"),
    ("ProxyHost", "ProxyHostArgs"),
    ("HostGroup", "HostsArgs"),
    ("App", "AppArgs"),
    ("Cdn", "CdnArgs"),
    ("BackupBucket", "BackupBucketArgs"),
    ("Alerts", "AlertsArgs"),
    ("OriginCertificate", "OriginCertificateArgs"),
    ("UptimeCheck", "UptimeCheckArgs"),
)


def _type(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(f"`{v}`" for v in typing.get_args(hint))
    if origin is tuple:
        return f"list of {_type(typing.get_args(hint)[0])}"
    if origin is dict:
        return "map of str"
    if dataclasses.is_dataclass(hint):
        return f"`{typing.cast(type[Any], hint).__name__}`"
    return str(getattr(hint, "__name__", hint))


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "**required**"
    if dataclasses.is_dataclass(value):
        return "defaults"
    if isinstance(value, tuple):
        value = list(value)
    return f"`{json.dumps(value)}`"


def _changing_it(doc: str) -> str:
    """What the doc says a change replaces or restarts ('' when it says nothing)."""
    sentences = re.split(r"(?<=[.;])\s+", doc)
    return " ".join(s for s in sentences if re.search(r"\b(replac|restart|recreat|reboot|stop)", s, re.I))


def constructor_line(component: type) -> str:
    """`Name(name, args: XArgs, *, stack: str, ...)`: the constructor as a caller writes it (from its signature)."""
    # The class's own __init__ (through the argument check's wrapper: inspect follows __wrapped__).
    signature = inspect.signature(vars(component)["__init__"])
    parts: list[str] = []
    keyword_only = False
    for parameter in list(signature.parameters.values())[1:]:
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and not keyword_only:
            parts.append("*")
            keyword_only = True
        text = parameter.name
        if parameter.annotation is not inspect.Parameter.empty:
            text += f": {parameter.annotation}"
        if parameter.default is not inspect.Parameter.empty:
            text += f" = {parameter.default!r}"
        parts.append(text)
    return f"{component.__name__}({', '.join(parts)})"


def component_outputs(component: type) -> list[str]:
    """The outputs a component registers (its `register_outputs` keys) and the public properties it adds."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(component)))
    found: list[str] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "register_outputs"
            and node.args
            and isinstance(node.args[0], ast.Dict)
        ):
            found += [k.value for k in node.args[0].keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
    found += [
        name for name, value in vars(component).items() if isinstance(value, property) and not name.startswith("_")
    ]
    return list(dict.fromkeys(found))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def component_reference() -> str:
    import leanstack.components as components
    import leanstack.config as config

    out = [
        "Generated from the Args dataclasses by `python -m leanstack docs --write`; do not edit by hand. Every "
        "Args validates itself on construction. The stack key is where the field lives in "
        "stacks/Pulumi.<stack>.yaml (camelCase). The last column quotes what the field's doc says a change "
        "replaces or restarts (— when it says nothing); `python -m leanstack diff` states every change's effect "
        "per resource from leanstack/resource_facts.py. Under each heading: the constructor as you call it (an "
        "argument of the wrong kind, such as a dict for the Args, is refused in one line) and the outputs the "
        "component offers.",
        "",
    ]
    for component, args_name in COMPONENT_ARGS:
        cls = getattr(config, args_name)
        section = {args: name for name, args in SECTIONS.items()}.get(cls)
        where = f"stack file: `leanstack:{section}`" if section else "filled in by the program"
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        out += [f"#### `{component}` ← `{args_name}` ({where})", "", summary, ""]
        component_cls = getattr(components, component)
        outputs = ", ".join(f"`{o}`" for o in component_outputs(component_cls)) or "none"
        out += [f"`{constructor_line(component_cls)}`", "", f"Outputs: {outputs}.", ""]
        out += ["| field | stack key | type | default | what it does | changing it |", "|---|---|---|---|---|---|"]
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            doc = str(f.metadata.get("doc", ""))
            key = f"`{camel(f.name)}`" if section else ""
            row = [f"`{f.name}`", key, _type(hints[f.name]), _default(f), doc, _changing_it(doc) or "—"]
            out.append("| " + " | ".join(_cell(c) for c in row) + " |")
        out.append("")
    return "\n".join(out)


def readme_with_reference(readme: str) -> str:
    """The README text with its reference section replaced by the generated one."""
    if START not in readme or END not in readme:
        raise ValueError(f"README.md has no {START} ... {END} section")
    head, rest = readme.split(START, 1)
    _old, tail = rest.split(END, 1)
    return f"{head}{START}\n{component_reference()}{END}{tail}"


def write_readme(path: Path | None = None) -> bool:
    """Rewrite the README's reference section; True when it changed."""
    path = path or REPO / "README.md"
    text = path.read_text(encoding="utf-8")
    new = readme_with_reference(text)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text
