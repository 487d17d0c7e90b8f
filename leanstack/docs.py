"""The generated pages of the documentation site (docs/), from the code and the shipped stacks.

`python -m leanstack docs` prints the component reference; `python -m leanstack docs --write`
rewrites every generated page: docs/reference/components.md (from the Args dataclasses),
docs/reference/stack-config.md (from the stack files' JSON Schema) and the figures of
docs/cost.md between its two markers (from the offline plans of the default stacks in
tests/fixtures/shipped/stacks, never stacks/, which a fork edits). tests/leanstack/test_docs.py
fails when a page is not current. Each field's type, default and doc come from the dataclass and
its `setting(...)`; the "changing it" column quotes what the field's doc says a change replaces or
restarts, so the one place to state it is the field's doc.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import typing
from pathlib import Path
from typing import Any, Literal

import leanstack.config.resource_types as resource_types
from leanstack.config.fields import camel
from leanstack.config.sections import SECTIONS
from leanstack.mocks import REPO

DOCS = REPO / "docs"
COMPONENTS_PAGE = DOCS / "reference" / "components.md"
STACK_CONFIG_PAGE = DOCS / "reference" / "stack-config.md"
COST_PAGE = DOCS / "cost.md"
# The default stacks as shipped: the cost page prices these, whatever a fork's stacks/ holds.
SHIPPED_STACKS = REPO / "tests" / "fixtures" / "shipped" / "stacks"
COST_START = "<!-- cost-figures:start (python -m leanstack docs --write) -->"
COST_END = "<!-- cost-figures:end -->"
GROWTH_PAGE = DOCS / "growth.md"
GROWTH_START = "<!-- growth-figures:start (python -m leanstack docs --write) -->"
GROWTH_END = "<!-- growth-figures:end -->"
# The sizes of an instance family, smallest first: "the next size up" of a class.
SIZES = ("nano", "micro", "small", "medium", "large", "xlarge", "2xlarge")

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
        "# Component reference",
        "",
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
        out += [f"## `{component}` ← `{args_name}` ({where})", "", summary, ""]
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


# --------------------------------------------------------------------------- stack config reference


def _schema_type(prop: dict[str, Any]) -> str:
    """A property's JSON Schema as a reader says it: `integer, 20 to 65536`, `one of a, b`."""
    if "oneOf" in prop:
        return " or ".join(_schema_type(option) for option in prop["oneOf"])
    if "enum" in prop:
        return "one of " + ", ".join(f"`{v}`" for v in prop["enum"])
    kind = str(prop.get("type", "any"))
    if kind == "array":
        return f"list of {_schema_type(prop.get('items', {}))}"
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        names = prop.get("propertyNames", {}).get("pattern", "")
        return f"map (keys `{names}`) of {_schema_type(prop['additionalProperties'])}"
    if kind == "integer" and ("minimum" in prop or "maximum" in prop):
        return f"integer, {prop.get('minimum', '…')} to {prop.get('maximum', '…')}"
    if kind == "string" and "pattern" in prop:
        return f"string matching `{prop['pattern']}`"
    return kind


def _schema_rows(path: str, prop: dict[str, Any]) -> list[list[str]]:
    """One row per setting under `path`; a nested section's settings get dotted keys."""
    if prop.get("type") == "object" and "properties" in prop:
        rows = []
        for name, child in prop["properties"].items():
            rows += _schema_rows(f"{path}.{name}" if path else name, child)
        return rows
    value = prop.get("additionalProperties")
    if prop.get("type") == "object" and isinstance(value, dict) and "properties" in value:
        rows = [[f"`{path}`", "map of the settings below", "—", str(prop.get("description", ""))]]
        for name, child in value["properties"].items():
            rows += _schema_rows(f"{path}.<name>.{name}", child)
        return rows
    default = f"`{json.dumps(prop['default'])}`" if "default" in prop else "—"
    return [[f"`{path}`", _schema_type(prop), default, str(prop.get("description", ""))]]


def stack_config_reference() -> str:
    """Every key of stacks/Pulumi.<stack>.yaml, from the JSON Schema `python -m leanstack schema` prints."""
    from leanstack.config.schema import json_schema

    config = json_schema()["properties"]["config"]
    required = set(config["required"])
    out = [
        "# Stack config reference",
        "",
        "Generated from the stack files' JSON Schema (itself generated from the Args dataclasses) by "
        "`python -m leanstack docs --write`; do not edit by hand. Each heading is a key of the `config:` map of "
        "stacks/Pulumi.<stack>.yaml; a section's settings are written under it in camelCase, nested ones with "
        "the dotted keys below. An unknown `leanstack:` key is an error.",
        "",
    ]
    for key, prop in config["properties"].items():
        out += [f"## `{key}`", "", ("**Required.** " if key in required else "") + str(prop.get("description", ""))]
        out += ["", "| key | type | default | what it does |", "|---|---|---|---|"]
        rows = _schema_rows("", prop) if "properties" in prop else [[f"`{key}`", *_schema_rows(key, prop)[0][1:]]]
        out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- cost figures


def shipped_plans() -> dict[str, dict[str, Any]]:
    """The offline plan (JSON) of every shipped stack, each planned by the CLI in its own process."""
    import os
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from leanstack.mocks import STACKS_ENV, available_stacks

    stacks = available_stacks(SHIPPED_STACKS.parent)
    env = {**os.environ, STACKS_ENV: str(SHIPPED_STACKS)}

    def plan(stack: str) -> dict[str, Any]:
        command = [sys.executable, "-m", "leanstack", "plan", stack, "--format", "json"]
        done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=True)
        return typing.cast(dict[str, Any], json.loads(done.stdout))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(stacks, pool.map(plan, stacks), strict=True))


def _money(value: float) -> str:
    return f"${value:,.2f}"


def cost_figures(plans: dict[str, dict[str, Any]] | None = None) -> str:
    """The cost page's figures: each shipped stack's monthly total, components and biggest items."""
    from leanstack.cost import load_pricing

    plans = plans if plans is not None else shipped_plans()
    sources = load_pricing().get("regionSources", {})
    out = [
        "Generated by `python -m leanstack docs --write` from the offline plans of the stacks as shipped "
        "(tests/fixtures/shipped/stacks); do not edit by hand. *Instance prices* says whether the prices of the "
        "stack's instance classes agree with the dated public source in `checkedAgainst` of "
        "`leanstack/pricing.json`; *others verified* is how that file rates the rest of the region's table.",
        "",
        "| Stack | Region | Prices taken | Instance prices | Others verified | Monthly | Not priced | Budget |",
        "| --- | --- | --- | --- | --- | ---: | ---: | ---: |",
    ]
    for stack, plan in plans.items():
        region = _stack_region(plan)
        budget = [
            r["inputs"].get("limitAmount")
            for r in plan["resources"]
            if r["type"] == resource_types.BUDGETS_BUDGET.token
        ]
        limit = f"${budget[0]}" if budget else "—"
        cost = plan["cost"]
        verified = str(sources.get(region, {}).get("verified", "—"))
        out.append(
            f"| {stack} | {region} | {cost['pricesTaken']} | {_instance_prices_checked(plan, region)} | {verified} "
            f"| {_money(cost['total'])} | {len(cost['notPriced'])} | {limit} |"
        )
    for stack, plan in plans.items():
        cost = plan["cost"]
        out += ["", f"### {stack}", "", "| Component | Monthly | Biggest items |", "| --- | ---: | --- |"]
        for component, row in plan["summary"]["components"].items():
            items = sorted(
                (
                    (cost["resources"][r["urn"]]["monthly"], r["name"])
                    for r in plan["resources"]
                    if r["component"] == component and cost["resources"].get(r["urn"], {}).get("monthly")
                ),
                reverse=True,
            )[:3]
            biggest = ", ".join(f"`{name}` {_money(monthly)}" for monthly, name in items) or "—"
            out.append(f"| {component} | {_money(row['monthly'])} | {biggest} |")
    out += ["", "Assumptions behind the usage-based figures:", ""]
    assumptions = dict.fromkeys(a for plan in plans.values() for a in plan["cost"]["assumptions"])
    out += [f"- {a}" for a in assumptions]
    return "\n".join(out) + "\n"


# Where a plan names the instance classes it pays for, and the price table each is in.
INSTANCE_CLASSES = (
    (resource_types.EC2_INSTANCE.token, "instanceType", "ec2Hourly"),
    (resource_types.EC2_LAUNCH_TEMPLATE.token, "instanceType", "ec2Hourly"),
    (resource_types.RDS_INSTANCE.token, "instanceClass", "rdsPostgresHourly"),
    (resource_types.ELASTICACHE_REPLICATION_GROUP.token, "nodeType", "elasticacheRedisHourly"),
)


def _instance_prices_checked(plan: dict[str, Any], region: str) -> str:
    """`checked` when every instance class the plan pays for agrees with the dated source, else which do not."""
    from leanstack.cost import load_pricing

    checked = load_pricing().get("checkedAgainst", {}).get("prices", {}).get(region, {})
    classes = sorted(
        {
            f"{table}.{r['inputs'][key]}"
            for kind, key, table in INSTANCE_CLASSES
            for r in plan["resources"]
            if r["type"] == kind and key in r["inputs"]
        }
    )
    unchecked = [c.split(".", 1)[1] for c in classes if not checked.get(c, "").startswith(("agrees", "changed"))]
    return "checked" if not unchecked else "not checked: " + ", ".join(unchecked)


def _input_of(plan: dict[str, Any], kind: str, key: str) -> Any:
    return next(r["inputs"][key] for r in plan["resources"] if r["type"] == kind and key in r["inputs"])


def _bigger(klass: str, steps: int) -> str:
    family, size = klass.rsplit(".", 1)
    return f"{family}.{SIZES[SIZES.index(size) + steps]}"


def _monthly_delta(hourly: dict[str, float], old: str, new: str, hours: float, factor: float = 1.0) -> str:
    from leanstack.cost import money

    return f"+{_money(money(hourly[new] * factor * hours) - money(hourly[old] * factor * hours))}"


def _component_monthly(plan: dict[str, Any], component: str) -> float:
    return float(plan["summary"]["components"].get(component, {}).get("monthly", 0.0))


def growth_figures(plans: dict[str, dict[str, Any]] | None = None) -> str:
    """What each growth step costs a month: the price table's classes and the shipped prod and scale plans."""
    from leanstack.cost import load_pricing, money

    plans = plans if plans is not None else shipped_plans()
    prod, scale = plans["prod"], plans["scale"]
    pricing = load_pricing()
    region = _stack_region(prod)
    table, hours = pricing["regions"][region], float(pricing["hoursPerMonth"])
    host = str(_input_of(prod, resource_types.EC2_INSTANCE.token, "instanceType"))
    database = str(_input_of(prod, resource_types.RDS_INSTANCE.token, "instanceClass"))
    multi_az = 2.0 if _input_of(prod, resource_types.RDS_INSTANCE.token, "multiAz") else 1.0
    cache = "cache.t4g.micro"
    valkey = money(table["elasticacheRedisHourly"][cache] * table["elasticacheValkeyFactor"] * hours)
    cost = scale["cost"]["resources"]
    by_name = {r["name"]: cost.get(r["urn"], {}).get("monthly", 0.0) for r in scale["resources"]}
    scaled_hosts = _component_monthly(scale, "HostGroup") + _component_monthly(scale, "ProxyHost")
    rows = [
        (f"host {host} → {_bigger(host, 1)}", _monthly_delta(table["ec2Hourly"], host, _bigger(host, 1), hours)),
        (f"host {host} → {_bigger(host, 2)}", _monthly_delta(table["ec2Hourly"], host, _bigger(host, 2), hours)),
        (
            f"database {database} → {_bigger(database, 1)}" + (" Multi-AZ" if multi_az == 2.0 else ""),
            _monthly_delta(table["rdsPostgresHourly"], database, _bigger(database, 1), hours, multi_az),
        ),
        (
            "two hosts behind a load balancer instead of one (scale's hosts against prod's)",
            f"+{_money(money(scaled_hosts - _component_monthly(prod, 'ProxyHost')))}",
        ),
        ("of which the Application Load Balancer", _money(by_name["host-group-lb"])),
        ("of which each host with its own IPv4 address", _money(by_name["host-group-web"])),
        (f"a read replica ({database})", f"+{_money(by_name['database-replica-1'])}"),
        (f"a Valkey node ({cache})", f"+{_money(valkey)}"),
        ("prod as shipped", _money(prod["cost"]["total"])),
        (
            "prod → scale as shipped (two hosts and a read replica)",
            f"+{_money(money(scale['cost']['total'] - prod['cost']['total']))}",
        ),
    ]
    out = [
        f"Generated by `python -m leanstack docs --write` from the {region} price table and the offline plans of "
        "the shipped prod and scale stacks; do not edit by hand.",
        "",
        "| Step | A month |",
        "| --- | ---: |",
    ]
    out += [f"| {step} | {figure} |" for step, figure in rows]
    return "\n".join(out) + "\n"


def _stack_region(plan: dict[str, Any]) -> str:
    from leanstack.mocks import read_stack_config

    return str(read_stack_config(plan["stack"], SHIPPED_STACKS.parent).get("aws:region", ""))


# --------------------------------------------------------------------------- the pages


def _between(text: str, start: str, end: str, body: str, where: Path) -> str:
    if start not in text or end not in text:
        raise ValueError(f"{where.relative_to(REPO)} has no {start} ... {end} section")
    head, rest = text.split(start, 1)
    _old, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}{end}{tail}"


def generated_pages(plans: dict[str, dict[str, Any]] | None = None) -> dict[Path, str]:
    """Every generated page as it should read now (the cost page with its figures replaced)."""
    plans = plans if plans is not None else shipped_plans()
    cost_page = COST_PAGE.read_text(encoding="utf-8")
    growth_page = GROWTH_PAGE.read_text(encoding="utf-8")
    return {
        COMPONENTS_PAGE: component_reference(),
        STACK_CONFIG_PAGE: stack_config_reference(),
        COST_PAGE: _between(cost_page, COST_START, COST_END, cost_figures(plans), COST_PAGE),
        GROWTH_PAGE: _between(growth_page, GROWTH_START, GROWTH_END, growth_figures(plans), GROWTH_PAGE),
    }


def write_pages() -> list[Path]:
    """Rewrite the generated pages; the ones that changed."""
    changed = []
    for path, text in generated_pages().items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed
