"""The house's walls: which room may import which, read from every module's import statements.

Arrows one way: components -> config <- tooling; host alone; policy alone; bench and tests share
support/. Imports inside functions count too: a lazy import is still an arrow.
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# The rooms of the installed package, each a top-level folder reached as leanstack.<room>.
ROOMS = ("components", "config", "host", "policy")
# The one module of the host every room may import: the names the host and the laptop share
# (SSM paths, log groups, namespaces, host paths, units, reserved variable names).
CONTRACT = "leanstack.host.agent.contract"
# What each room may import of ours (besides itself and the contract).
MAY_IMPORT: dict[str, set[str]] = {
    "config": set(),
    "host": set(),
    "policy": set(),
    "components": {"config", "host"},
    "tooling": {"config", "host", "policy"},
}
# The table of resource types is a leaf of the config room (it imports nothing of ours but itself):
# the policy pack reads its type tokens from it rather than spell them a second time, without
# standing on the rest of the config model.
TYPE_TABLE = "leanstack.config.resource_types"
MAY_IMPORT_MODULES: dict[str, set[str]] = {"policy": {TYPE_TABLE}}


def room_of(path: Path) -> str:
    top = path.relative_to(REPO).parts[0]
    return top if top in ROOMS else "tooling" if top == "leanstack" else top


def modules() -> list[Path]:
    """Every Python file of ours, each once (through its real folder, not the package's symlinks)."""
    found: list[Path] = []
    for top in (*ROOMS, "leanstack", "bench", "support", "tests", "examples"):
        for path in sorted((REPO / top).rglob("*.py")):
            if not any(part.is_symlink() for part in [path, *path.parents] if part != REPO and REPO in part.parents):
                found.append(path)
    return [*found, REPO / "__main__.py"]


def imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def ours(name: str) -> str | None:
    """The room an imported module belongs to, or None for a third-party or standard module."""
    parts = name.split(".")
    if parts[0] != "leanstack":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else "tooling"


def test_nothing_imports_a_room_by_its_folder_name() -> None:
    """`import components` would load a second copy of the module next to `leanstack.components`."""
    bad = [f"{p.relative_to(REPO)}: {name}" for p in modules() for name in imports(p) if name.split(".")[0] in ROOMS]
    assert bad == []


@pytest.mark.parametrize("room", list(MAY_IMPORT))
def test_arrows_point_one_way(room: str) -> None:
    bad = []
    checked = [p for p in modules() if room_of(p) == room]
    assert checked, f"no module found in {room}"
    for path in checked:
        for name in imports(path):
            target = ours(name)
            if name == CONTRACT or name in MAY_IMPORT_MODULES.get(room, set()):
                continue
            if target is not None and target != room and target not in MAY_IMPORT[room]:
                bad.append(f"{path.relative_to(REPO)} imports {name}")
    assert bad == []


def test_the_config_model_and_the_host_are_pulumi_free() -> None:
    bad = [
        f"{p.relative_to(REPO)}: {name}"
        for p in modules()
        if room_of(p) in ("config", "host")
        for name in imports(p)
        if name.split(".")[0].startswith("pulumi")
    ]
    assert bad == []


def test_bench_and_the_library_never_import_tests() -> None:
    bad = [
        f"{p.relative_to(REPO)}: {name}"
        for p in modules()
        if room_of(p) not in ("tests",)
        for name in imports(p)
        if name.split(".")[0] == "tests"
    ]
    assert bad == []


def test_no_test_module_imports_another() -> None:
    """What tests share lives in a conftest.py (fixtures) or a helper module (code): a test module
    imported by another hides where a fixture comes from, and its module code runs twice."""
    bad = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            bad += [
                f"{path.relative_to(REPO)}: {name}"
                for name in names
                if name.split(".")[0] == "tests" and name.split(".")[-1].startswith("test_")
            ]
    assert bad == []


def test_test_folders_are_the_rooms() -> None:
    """tests/<room>/ holds the tests of one room: components, config, host, policy, the tooling
    (leanstack/) and the box (support/box)."""
    folders = {p.name for p in (REPO / "tests").iterdir() if (p / "__init__.py").exists()}
    assert folders == {*ROOMS, "leanstack", "box"}


def test_no_import_cycles_between_modules() -> None:
    """Module-level imports of ours form no cycle (a cycle makes import order matter)."""
    graph: dict[str, set[str]] = {}
    for path in modules():
        room = room_of(path)
        if room not in MAY_IMPORT:
            continue
        rel = path.relative_to(REPO).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        name = ".".join(parts if room == "tooling" else ["leanstack", *parts])
        top_level = ast.parse(path.read_text(encoding="utf-8")).body
        targets: set[str] = set()
        for node in top_level:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("leanstack"):
                targets.add(node.module)
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("leanstack")}
        graph[name] = targets
    assert len(graph) > 40 and sum(map(len, graph.values())) > 60  # the walk saw the real modules
    cycles = []
    for start in graph:
        seen: set[str] = set()
        todo = [(start, [start])]
        while todo:
            current, trail = todo.pop()
            for nxt in graph.get(current, set()):
                if nxt == start:
                    cycles.append(" -> ".join([*trail, nxt]))
                elif nxt not in seen:
                    seen.add(nxt)
                    todo.append((nxt, [*trail, nxt]))
    assert cycles == []


def test_each_room_is_in_the_package_once() -> None:
    """The package reaches each top-level room through one symlink, so a module is never seen twice."""
    for room in ROOMS:
        link = REPO / "leanstack" / room
        assert link.is_symlink() and link.resolve() == (REPO / room).resolve(), room
    assert list(itertools.chain.from_iterable((REPO / r).glob("leanstack") for r in ROOMS)) == []


def test_the_program_and_plan_run_without_the_host_tools_libraries(tmp_path: Path) -> None:
    """`make plan` installs the runtime only (no dev group): boto3/botocore (the host tools' and the
    deploy's) must not be imported by the program or by `plan`, even with every optional piece
    on (the host tools' text is read, not imported)."""
    import subprocess
    import sys

    key = (REPO / "tests" / "fixtures" / "recovery_public_key.txt").read_text(encoding="utf-8").strip()
    script = tmp_path / "plan_without_boto3.py"
    script.write_text(
        "import json, sys\n"
        "for name in ('boto3', 'botocore'):\n"
        "    sys.modules[name] = None\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from leanstack.mocks import parse_stack_yaml, run_program\n"
        "from leanstack.plan import build_plan\n"
        f"raw = parse_stack_yaml(open({str(REPO / 'tests/fixtures/shipped/stacks/Pulumi.dev.yaml')!r}).read(), 'dev')\n"
        # Storage (the app's identity, the credentials endpoint) and a recovery key (the seal tool) on.
        "raw['leanstack:storage'] = {'enabled': True}\n"
        f"raw['leanstack:backup'] = {{**raw.get('leanstack:backup', {{}}), 'recoveryPublicKey': {key!r}}}\n"
        "run = run_program('dev', raw)\n"
        "print(json.dumps(build_plan(run), default=str))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "leanstack-credentials" in done.stdout and "leanstack-seal-secrets" in done.stdout


def test_the_host_agent_imports_only_itself() -> None:
    """host/agent runs on the host as `leanstack_agent`: its modules import each other relatively
    and nothing of ours by name (leanstack is not installed there)."""
    agent = sorted((REPO / "host" / "agent").glob("*.py"))
    assert len(agent) > 15
    bad = [f"{p.relative_to(REPO)}: {name}" for p in agent for name in imports(p) if name.split(".")[0] == "leanstack"]
    assert bad == []


# The prefixes of the names the contract states: SSM paths and log groups, the metric namespace,
# the agent's files, programs and units on the host.
CONTRACT_PREFIXES = (
    "/leanstack/",
    "Leanstack/",
    "/etc/leanstack/",
    "/usr/local/bin/leanstack",
    "/usr/local/sbin/leanstack",
)


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """The string literals of a module's code (f-strings' literal parts too), docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_the_contract_is_the_one_place_for_the_hosts_names() -> None:
    """Every SSM path, log group, namespace, host path and agent program is built by
    leanstack.host.agent.contract; no other module of the library spells one out. Prose (the
    recovery sheet's sentences, help texts) may name them; a literal that starts with one may not."""
    contract = REPO / "host" / "agent" / "contract.py"
    checked = [p for p in modules() if room_of(p) in (*ROOMS, "tooling") and p != contract]
    assert len(checked) > 60
    bad = [
        f"{path.relative_to(REPO)}:{line}: {text[:60]!r}"
        for path in checked
        for line, text in _code_strings(path)
        if text.startswith(CONTRACT_PREFIXES) or text == "Leanstack"
    ]
    assert bad == []


def test_every_journal_command_the_library_prints_uses_sudo() -> None:
    """On Amazon Linux 2023 the session user sees `-- No entries --` from the system journal
    (only adm/wheel/systemd-journal may read it): every journalctl the host agent, the host's
    files or an alarm's text tells someone to run starts with sudo. (The recovery sheet,
    leanstack/runbook/, has its own test.)"""
    checked = [p for p in modules() if room_of(p) in ("host", "components")]
    bad = [
        f"{path.relative_to(REPO)}:{line}: {text.strip()[:80]!r}"
        for path in checked
        for line, text in _code_strings(path)
        for at in [i for i in range(len(text)) if text.startswith("journalctl", i)]
        if not text[:at].endswith("sudo ")
    ]
    assert bad == []


# A resource type token as Pulumi writes it: `aws:rds/instance:Instance`, `cloudflare:index/dnsRecord:DnsRecord`,
# `pulumi:providers:aws` (not an invoke's `aws:ec2/getAmi:getAmi`, nor the engine's own `pulumi:pulumi:Stack`).
TYPE_TOKEN = re.compile(r"(aws|cloudflare|random|tls):\w+/\w+:[A-Z]\w*|pulumi:providers:\w+")


def test_the_type_table_is_the_one_place_a_type_token_is_written() -> None:
    """Every resource type token of the library is written once, in leanstack.config.resource_types;
    every other module reads it from there (`RDS_INSTANCE.token`). Prose may name a type; a literal
    that is one may not. Tests and their fixtures may write tokens."""
    table = REPO / "config" / "resource_types"
    checked = [
        p
        for p in modules()
        if (room_of(p) in (*ROOMS, "tooling") or p == REPO / "__main__.py") and table not in p.parents
    ]
    assert len(checked) > 60
    bad = [
        f"{path.relative_to(REPO)}:{line}: {text!r}"
        for path in checked
        for line, text in _code_strings(path)
        if TYPE_TOKEN.fullmatch(text)
    ]
    assert bad == []
    written = [text for p in sorted(table.glob("*.py")) for _, text in _code_strings(p) if TYPE_TOKEN.fullmatch(text)]
    assert len(written) > 80 and len(written) == len(set(written))


def test_the_type_table_is_a_leaf() -> None:
    """The table imports nothing of ours but itself, and no Pulumi: components, tooling and the policy
    pack can all read it."""
    table = sorted((REPO / "config" / "resource_types").glob("*.py"))
    assert len(table) > 3
    bad = [
        f"{p.relative_to(REPO)}: {name}"
        for p in table
        for name in imports(p)
        if (ours(name) is not None and not name.startswith(TYPE_TABLE)) or name.split(".")[0].startswith("pulumi")
    ]
    assert bad == []


# The sizes a reader can hold in their head: the library and its tooling (the host agent has its
# own limit in tests/host/test_host_programs_portable.py).
MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 100
MAX_COMPONENT_PARAMETERS = 8


def library_modules() -> list[Path]:
    return [p for p in modules() if room_of(p) in ("components", "config", "policy", "tooling")] + [
        p for p in modules() if room_of(p) == "host" and "agent" not in p.parts
    ]


def test_no_module_of_the_library_is_longer_than_a_reader_can_hold() -> None:
    checked = library_modules()
    assert len(checked) > 60
    long = [
        f"{p.relative_to(REPO)}: {n} lines"
        for p in checked
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert long == []


def test_no_function_of_the_library_is_longer_than_a_screenful_or_two() -> None:
    long = [
        f"{p.relative_to(REPO)}:{node.lineno} {node.name}: {n} lines"
        for p in library_modules()
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (n := (node.end_lineno or node.lineno) - node.lineno + 1) > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_no_component_takes_more_than_eight_parameters() -> None:
    """Dependencies travel as one typed object; a constructor with a dozen arguments is a
    component doing several jobs."""
    found = 0
    wide = []
    for path in sorted((REPO / "components").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            for member in node.body:
                if isinstance(member, ast.FunctionDef) and member.name == "__init__":
                    found += 1
                    arguments = member.args
                    count = len(arguments.posonlyargs) + len(arguments.args) + len(arguments.kwonlyargs) - 1
                    if count > MAX_COMPONENT_PARAMETERS and any(
                        isinstance(base, ast.Name) and base.id.endswith(("Component", "ComponentResource"))
                        for base in node.bases
                    ):
                        wide.append(f"{path.relative_to(REPO)}: {node.name} takes {count}")
    assert found > 10
    assert wide == []


def test_no_module_of_the_library_imports_another_modules_private_name() -> None:
    """A leading underscore says "only this module uses it"; a name another module needs is
    public in its home."""
    bad = [
        f"{p.relative_to(REPO)}: {node.module}.{alias.name}"
        for p in library_modules()
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("leanstack")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert bad == []
