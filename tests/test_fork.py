"""A fork that fills its six values keeps a green CI: proven on a copy of this repository.

The copy gets other values in every stack file (scale included) through `python -m leanstack
init`; then validate, plan and the tests that read the repository's own stack files (or that once
asserted on its placeholders) run inside the copy, as a fork's CI would run them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from leanstack.mocks import STACKS_ENV
from support.repo_copy import copy_repository

# A copy of the repository through init, validate, plan and part of its tests (minutes; each
# step may take its 10 minutes on a loaded machine).
pytestmark = [pytest.mark.servers, pytest.mark.timeout(1800)]

FORK_VALUES = (
    ("--domain", "fork-shop.net"),
    ("--zone-id", "fedcba9876543210fedcba9876543210"),
    ("--alert-email", "oncall@fork-shop.net"),
    ("--owner", "Fork Ltd, cto@fork-shop.net"),
    ("--region", "eu-central-1"),
    ("--backup-region", "eu-north-1"),
    ("--second-person", "Sam Second, sam@fork-shop.net"),
)
# Tests that read the repository's stacks/ (or did assert on its placeholders before they got copies of their own).
PLACEHOLDER_SENSITIVE = (
    "tests/leanstack/test_cli.py",
    "tests/leanstack/test_runbook.py",
    "tests/test_stack_guard.py",
    "tests/config/test_schema.py",
    "tests/leanstack/test_init.py",
    "tests/components/test_alerts.py",
    "tests/components/test_cdn.py",
    "tests/components/test_uptime_check.py",
    "tests/leanstack/test_cost.py::test_dev_database_host_and_address_are_priced_from_the_table",
    "tests/leanstack/test_plan_formats.py::test_text_plan_has_the_summary_block_and_prices",
    "tests/test_program.py::test_providers_carry_the_default_tags",
)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The fork's own stacks/, as its CI reads them: not the copies this test session points the commands at.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", STACKS_ENV)}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_a_fork_with_its_own_values_stays_green(tmp_path: Path) -> None:
    fork = tmp_path / "fork"
    copy_repository(fork, commit=True)
    python = sys.executable

    init = _run([python, "-m", "leanstack", "init", *(part for pair in FORK_VALUES for part in pair)], fork)
    assert init.returncode == 0, init.stderr
    assert init.stdout.splitlines() == [f"stacks/Pulumi.{s}.yaml: filled and valid" for s in ("dev", "prod", "scale")]
    for stack in ("dev", "prod", "scale"):
        text = (fork / "stacks" / f"Pulumi.{stack}.yaml").read_text()
        assert "aws:region: eu-central-1" in text and "region: eu-north-1" in text and "fork-shop.net" in text
        assert "example." not in "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        validate = _run([python, "-m", "leanstack", "validate", stack], fork)
        assert (validate.returncode, validate.stderr) == (0, ""), validate.stderr  # no placeholder left to warn about
    plan = _run([python, "-m", "leanstack", "plan", "prod", "--format", "json"], fork)
    assert plan.returncode == 0 and plan.stderr == "", plan.stderr
    assert '"eu-central-1"' in plan.stdout and "fork-shop.net" in plan.stdout

    tests = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PLACEHOLDER_SENSITIVE], fork)
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert " passed" in tests.stdout and "failed" not in tests.stdout and "error" not in tests.stdout
