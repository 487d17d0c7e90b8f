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
import json
import re
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


def _component_module(component: str) -> tuple[ast.Module, ast.ClassDef]:
    """The component's module and class, read from components/ (tooling reads their code, never imports it)."""
    for path in sorted((Path(__file__).resolve().parent.parent / "components").glob("*.py")):
        module = ast.parse(path.read_text(encoding="utf-8"))
        for node in module.body:
            if isinstance(node, ast.ClassDef) and node.name == component:
                return module, node
    raise LookupError(f"no class {component} under components/")


def _component_class(component: str) -> ast.ClassDef:
    return _component_module(component)[1]


def _constants(module: ast.Module) -> dict[str, str]:
    """The module's NAME = literal constants, so a default shows its value rather than its name."""
    return {
        target.id: repr(node.value.value)
        for node in module.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def constructor_line(component: str) -> str:
    """`Name(name: str, args: XArgs, *, stack: str, ...)`: the constructor as a caller writes it."""
    module, cls = _component_module(component)
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    arguments = init.args
    constants = _constants(module)

    def shown(argument: ast.arg, default: ast.expr | None) -> str:
        text = argument.arg + (f": {ast.unparse(argument.annotation)}" if argument.annotation else "")
        if default is None:
            return text
        value = ast.unparse(default)
        return f"{text} = {constants.get(value, value)}"

    positional = arguments.args[1:]  # without self
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    parts = [shown(a, d) for a, d in zip(positional, defaults, strict=True)]
    if arguments.kwonlyargs:
        parts.append("*")
        parts += [shown(a, d) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)]
    return f"{component}({', '.join(parts)})"


def component_outputs(component: str) -> list[str]:
    """The outputs a component registers (its `register_outputs` keys) and the public properties it adds."""
    cls = _component_class(component)
    found: list[str] = []
    for node in ast.walk(cls):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "register_outputs"
            and node.args
            and isinstance(node.args[0], ast.Dict)
        ):
            found += [k.value for k in node.args[0].keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
    found += [
        n.name
        for n in cls.body
        if isinstance(n, ast.FunctionDef)
        and not n.name.startswith("_")
        and any(isinstance(d, ast.Name) and d.id == "property" for d in n.decorator_list)
    ]
    return list(dict.fromkeys(found))


def component_transforms(component: str) -> list[str]:
    """The children a component's `transform` may change (its TRANSFORMABLE keys), in its order."""
    for node in _component_class(component).body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "TRANSFORMABLE" for t in node.targets)
            and isinstance(node.value, ast.Tuple)
        ):
            return [e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def component_reference() -> str:
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
        outputs = ", ".join(f"`{o}`" for o in component_outputs(component)) or "none"
        out += [f"`{constructor_line(component)}`", "", f"Outputs: {outputs}.", ""]
        if children := component_transforms(component):
            out += [
                "Transform: `transform={child: function}` gets a child's keyword arguments (`opts` included) "
                "before it is created and may change them (in place, or by returning new ones); children: "
                + ", ".join(f"`{c}`" for c in children)
                + ".",
                "",
            ]
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
