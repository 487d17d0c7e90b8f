"""The Debian programs and npm tools the tests run, looked up, never installed.

`make system-packages` installs the Debian packages (support/system-packages.txt) and `make
npm-tools` the npm ones (support/npm/package-lock.json) before the tests, as `make test` does. A
test that needs one calls `require_program` or `require_npm_package`: when it is missing, the test
skips with the make target to run, and fails instead under CI=true, where CI must exercise them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

SUPPORT = Path(__file__).resolve().parent
# One line per program: the program, its Debian package, and where Debian keeps it off PATH.
SYSTEM_PACKAGES = SUPPORT / "system-packages.txt"
NPM_MODULES = SUPPORT / "npm" / "node_modules"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _find(program: str, extra_dirs: tuple[str, ...]) -> str | None:
    found = shutil.which(program)
    if found:
        return found
    for directory in extra_dirs:
        candidates = sorted(Path("/").glob(directory.lstrip("/") + "/" + program), reverse=True)
        if candidates:
            return str(candidates[0])
    return None


def listed_programs() -> dict[str, str]:
    """support/system-packages.txt: program -> Debian package."""
    rows = (line.split() for line in SYSTEM_PACKAGES.read_text(encoding="utf-8").splitlines())
    return {row[0]: row[1] for row in rows if row and not row[0].startswith("#")}


def require_program(program: str, package: str, extra_dirs: tuple[str, ...] = ()) -> str:
    """Return the path of `program` (Debian `package`, listed in support/system-packages.txt).

    `extra_dirs` are globbed for programs Debian keeps off PATH
    (e.g. "/usr/lib/postgresql/*/bin").
    """
    found = _find(program, extra_dirs)
    if found:
        return found
    skip_or_fail(f"{program} (Debian package {package}) is not installed: run `make system-packages` as root")


def require_npm_package(name: str) -> Path:
    """The folder of npm package `name` installed by `make npm-tools` (node and npm on PATH)."""
    package = NPM_MODULES / name
    if not (package / "package.json").exists() or not shutil.which("node"):
        skip_or_fail(f"npm package {name} is not installed: run `make npm-tools` (needs node and npm)")
    return package


def skip_or_fail(reason: str) -> NoReturn:
    """Skip with `reason` on a developer's machine; fail under CI=true, where nothing may skip."""
    if _in_ci():
        pytest.fail(reason + " — CI must not skip this test")
    pytest.skip(reason)
