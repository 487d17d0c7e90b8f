"""The README's first commands on a fresh clone: `make` installs the `leanstack` command into .venv,
and `make wheel` builds the package into dist/ and leaves nothing else behind.

Run on a copy of this repository with a virtualenv of its own (pip's index and cache), never the
project's shared one.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from leanstack import __version__
from leanstack.mocks import STACKS_ENV
from support.repo_copy import copy_repository

# make on a fresh clone: a virtualenv and every requirement installed (pip, minutes; `make wheel`
# alone may take its 30 minutes on a loaded machine).
pytestmark = [pytest.mark.servers, pytest.mark.timeout(2400)]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", STACKS_ENV)}


def test_make_installs_the_leanstack_command_and_make_wheel_leaves_only_dist(tmp_path: Path) -> None:
    clone = copy_repository(tmp_path / "clone", commit=True)
    made = subprocess.run(
        ["make", "wheel"], cwd=clone, env=_env(), capture_output=True, text=True, timeout=1800, check=False
    )
    assert made.returncode == 0, made.stderr[-3000:]
    status = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"],
        cwd=clone, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    left = {line[3:].strip('"').split("/")[0] for line in status.splitlines()}
    assert left == {".venv", "dist"}, status  # no build/, no egg-info, no dependency wheels
    assert [p.name for p in (clone / "dist").iterdir()] == [f"leanstack-{__version__}-py3-none-any.whl"]

    # The command runs this checkout, from anywhere: it reads the clone's own stack files.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [str(clone / ".venv" / "bin" / "leanstack"), "validate", "dev"],
        cwd=elsewhere, env=_env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "stacks/Pulumi.dev.yaml: valid\n"
