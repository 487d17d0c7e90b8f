"""Getting Debian's real programs (nginx, PostgreSQL, cloud-init, wrk) for the tests.

A test that needs one calls `require_program`. It installs the package with apt when it
can (root and apt-get present), and otherwise skips with the reason. Under CI=true a
missing program fails the test instead: CI must exercise the real programs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

_apt_updated = False


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


def _apt_install(package: str) -> str | None:
    """Install one Debian package; returns why it could not be done, or None."""
    global _apt_updated
    if os.geteuid() != 0:
        return "not root, so apt-get cannot install it"
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # Two pytest-xdist workers may install at once: the second waits for dpkg's lock instead of failing.
    wait_for_lock = ["-o", "DPkg::Lock::Timeout=600"]
    if not _apt_updated:
        subprocess.run(["apt-get", *wait_for_lock, "update", "-qq"], env=env, capture_output=True, check=False)
        _apt_updated = True
    done = subprocess.run(
        ["apt-get", *wait_for_lock, "install", "-y", "-qq", "--no-install-recommends", package],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return f"apt-get install {package} failed: {done.stderr.strip().splitlines()[-1:]}"
    return None


def require_program(program: str, package: str, extra_dirs: tuple[str, ...] = ()) -> str:
    """Return the path of `program`, installing Debian `package` if needed.

    `extra_dirs` are globbed for programs Debian keeps off PATH
    (e.g. "/usr/lib/postgresql/*/bin").
    """
    found = _find(program, extra_dirs)
    if found:
        return found
    why = _apt_install(package)
    found = _find(program, extra_dirs)
    if found:
        return found
    skip_or_fail(f"{program} (Debian package {package}) is not available: {why or 'not found after install'}")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip with `reason` on a developer's machine; fail under CI=true, where nothing may skip."""
    if _in_ci():
        pytest.fail(reason + " — CI must not skip this test")
    pytest.skip(reason)
