"""The new host programs run on Amazon Linux 2023's system Python 3.9 with stdlib and
boto3 only (no pip on the host)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

HOST = Path(__file__).resolve().parents[2] / "host"
PROGRAMS = [HOST / "credentials" / "leanstack_credentials.py", HOST / "backup" / "leanstack_seal.py"]
ALLOWED_THIRD_PARTY = {"boto3", "botocore", "mypy_boto3_s3"}  # mypy_boto3_*: under TYPE_CHECKING only


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda path: path.name)
def test_python_3_9_syntax_and_stdlib_plus_boto3(program: Path) -> None:
    tree = ast.parse(program.read_text(encoding="utf-8"), feature_version=(3, 9))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    foreign = imported - set(sys.stdlib_module_names) - ALLOWED_THIRD_PARTY - {"__future__"}
    assert not foreign, f"{program.name} imports {sorted(foreign)}"
    # Names 3.10+ added that the syntax check cannot see.
    source = program.read_text(encoding="utf-8")
    for newer in ("datetime.UTC", "strict=True", "kw_only=", "slots=True", "TypeAlias"):
        assert newer not in source, f"{program.name} uses {newer} (not in Python 3.9)"
