"""Tests never read stacks/: the guard in tests/conftest.py fails one that does, and the commands read the copies."""

from __future__ import annotations

import os
import subprocess
import sys

from leanstack import mocks
from leanstack.runbook import render_runbook
from tests.conftest import SHIPPED, reads_a_fork_stack_file


def test_opening_or_listing_the_forks_stack_files_is_caught() -> None:
    stack_file = str(mocks.REPO / "stacks" / "Pulumi.dev.yaml")
    assert reads_a_fork_stack_file("open", (stack_file, "r", 0)) == os.path.realpath(stack_file)
    assert reads_a_fork_stack_file("os.scandir", (str(mocks.REPO / "stacks"),)) is not None
    assert reads_a_fork_stack_file("open", (str(SHIPPED / "stacks" / "Pulumi.dev.yaml"), "r", 0)) is None
    assert reads_a_fork_stack_file("open", (str(mocks.REPO / "stacks" / "stack-config.schema.json"), "r", 0)) is None


def test_the_commands_read_the_tests_copies_in_process_and_in_children() -> None:
    assert mocks.stack_file("dev") == SHIPPED / "stacks" / "Pulumi.dev.yaml"
    assert "# The tests' copy of stacks/Pulumi.dev.yaml" in SHIPPED.joinpath("stacks", "Pulumi.dev.yaml").read_text()
    assert render_runbook("dev")  # the sheet of the copy, not of stacks/: the guard would fail this test otherwise
    child = subprocess.run(
        [sys.executable, "-c", "import leanstack.mocks as m; print(m.stack_file('prod'))"],
        cwd=mocks.REPO, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    assert child.stdout.strip() == str(SHIPPED / "stacks" / "Pulumi.prod.yaml")
