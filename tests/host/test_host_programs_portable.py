"""The host agent runs on Amazon Linux 2023's system Python 3.9 with stdlib and boto3 only (no
pip on the host), and imports nothing of leanstack's but its own modules (relatively)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

AGENT = Path(__file__).resolve().parents[2] / "host" / "agent"
PROGRAMS = sorted(AGENT.glob("*.py"))
ALLOWED_THIRD_PARTY = {"boto3", "botocore"}


def _run_time_imports(tree: ast.Module) -> set[str]:
    """Top-level names imported outside `if TYPE_CHECKING:` (type stubs are the laptop's only)."""
    imported: set[str] = set()
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            todo += node.orelse
            continue
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
        todo += ast.iter_child_nodes(node)
    return imported


def test_the_agent_is_every_module_of_host_agent() -> None:
    assert len(PROGRAMS) > 15 and AGENT / "contract.py" in PROGRAMS


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda path: path.name)
def test_python_3_9_syntax_and_stdlib_plus_boto3(program: Path) -> None:
    tree = ast.parse(program.read_text(encoding="utf-8"), feature_version=(3, 9))
    foreign = _run_time_imports(tree) - set(sys.stdlib_module_names) - ALLOWED_THIRD_PARTY - {"__future__"}
    assert not foreign, f"{program.name} imports {sorted(foreign)}"
    # Names 3.10+ added that the syntax check cannot see.
    source = program.read_text(encoding="utf-8")
    for newer in ("datetime.UTC", "strict=True", "kw_only=", "slots=True", "TypeAlias"):
        assert newer not in source, f"{program.name} uses {newer} (not in Python 3.9)"


def _vermin(*paths: Path) -> subprocess.CompletedProcess[str]:
    """vermin (uv.lock's dev group) over `paths`: every construct and standard-library name
    newer than Python 3.9 is a violation (AL2023's system Python)."""
    vermin = shutil.which("vermin", path=str(Path(sys.executable).parent)) or shutil.which("vermin")
    assert vermin, "vermin is not installed: make .venv/.dev"
    return subprocess.run(
        [vermin, "--target=3.9-", "--violations", "--no-tips", "--no-parse-comments", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_vermin_finds_nothing_newer_than_python_3_9_in_the_agent() -> None:
    done = _vermin(AGENT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Minimum required versions: 3." in done.stdout


def test_vermin_would_see_what_3_9_lacks(tmp_path: Path) -> None:
    """The check above can fail: the same call refuses 3.10+ names and syntax."""
    newer = tmp_path / "newer.py"
    newer.write_text("import datetime\nprint(datetime.UTC)\nmatch 1:\n    case 1:\n        pass\n")
    done = _vermin(newer)
    assert done.returncode != 0 and "datetime.UTC" in done.stdout
