"""The docs' offline test of a program of your own (docs/library.md) runs as written, against examples/shop."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from leanstack.mocks import REPO


def test_the_readme_offline_test_runs_against_the_example_program() -> None:
    page = (REPO / "docs" / "library.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    (block,) = [b for b in blocks if "run_program(" in b]
    namespace: dict[str, Any] = {"__file__": str(REPO / "examples" / "shop" / "test_shop.py")}
    exec(compile(block, "docs/library.md", "exec"), namespace)
    assert Path(namespace["PROGRAM"]) == REPO / "examples" / "shop" / "__main__.py"
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert len(tests) == 1
    tests[0]()
