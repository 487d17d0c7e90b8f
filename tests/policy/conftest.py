"""The deliberately unsafe program, run once for every policy test that needs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from leanstack.mocks import StackRun, run_program

UNSAFE_PROGRAM = Path(__file__).parent / "unsafe_program.py"


@pytest.fixture(scope="session")
def unsafe() -> StackRun:
    return run_program("unsafe", {"aws:region": "us-east-1"}, UNSAFE_PROGRAM)
