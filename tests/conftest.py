"""Shared fixtures: the real program run offline under mocks, per stack or with overrides."""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from leanstack import mocks
from leanstack.mocks import StackRun, run_program
from support.repo_copy import copy_repository

# A repository-shaped folder with the tests' copies of the shipped stack files: the tests read
# these, never stacks/, so a fork that fills its placeholders (python -m leanstack init) stays green.
SHIPPED = Path(__file__).resolve().parent / "fixtures" / "shipped"
# Fixture stacks of realistic pull requests (a dev and a prod with values of their own), for diff.
DIFF_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "diff"
# Every command a test runs, in this process or in a child that inherits the environment, reads these copies.
os.environ[mocks.STACKS_ENV] = str(SHIPPED / "stacks")

# The guard: a test that opens a stack file of this repository's stacks/, or lists that folder, fails.
FORK_STACKS = os.path.realpath(mocks.REPO / "stacks")
_stack_reads: list[str] = []


def reads_a_fork_stack_file(event: str, args: tuple[Any, ...]) -> str | None:
    """The path an audit event touches when it is one of stacks/Pulumi.*.yaml (or stacks/ listed), else None."""
    if event not in ("open", "os.scandir", "os.listdir") or not args or not isinstance(args[0], (str, bytes, Path)):
        return None
    raw = args[0].decode(errors="replace") if isinstance(args[0], bytes) else str(args[0])
    if "stacks" not in raw:  # cheap first: the hook sees every open of the session
        return None
    path = os.path.realpath(raw)
    if event == "open":
        folder, name = os.path.split(path)
        return path if folder == FORK_STACKS and name.startswith("Pulumi.") else None
    return path if path == FORK_STACKS else None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    touched = reads_a_fork_stack_file(event, args)
    if touched and not _copying_the_repository():
        _stack_reads.append(f"{event} {touched}")


def _copying_the_repository() -> bool:
    """A byte-for-byte copy of the working tree (support/repo_copy.py, as a fork is made) reads no value."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code is copy_repository.__code__:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


sys.addaudithook(_audit)

# A test that starts a real server (PostgreSQL, moto's server, nginx, the policy pack's gRPC server)
# or a heavy outside program (cloud-init, systemd-analyze, node, pip, make) is marked `servers`, so
# `pytest -m "not servers and not box"` (make test-fast) leaves it out. A fixture that starts one
# says so with @starts_servers, and every test that uses it, itself or through another fixture, is
# marked; a test that runs such a program without a fixture carries the marker itself.
_FixtureFunction = TypeVar("_FixtureFunction", bound=Callable[..., Any])


def starts_servers(fixture_function: _FixtureFunction) -> _FixtureFunction:
    """Mark a fixture function (under @pytest.fixture) as one that starts a real server."""
    fixture_function.starts_servers = True  # type: ignore[attr-defined]
    return fixture_function


# Per-test timeouts by marker (pytest-timeout; the rest get pyproject's `timeout`). The box's
# first test boots the box (an image build on a fresh machine); a server test starts its servers.
TIMEOUT_SECONDS = {"box": 1800, "servers": 600}


def _uses_a_server_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    # The fixture a test gets for a name is the last definition (the closest conftest or module).
    return any(getattr(defs[-1].func, "starts_servers", False) for defs in info.name2fixturedefs.values() if defs)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _uses_a_server_fixture(item):
            item.add_marker(pytest.mark.servers)
        if item.get_closest_marker("timeout") is None:
            for marker, seconds in TIMEOUT_SECONDS.items():
                if item.get_closest_marker(marker) is not None:
                    item.add_marker(pytest.mark.timeout(seconds))
                    break


@pytest.fixture(autouse=True)
def never_reads_the_forks_stack_files() -> Iterator[None]:
    """Fail any test that reads stacks/: a fork fills those files, and its CI must not depend on them."""
    _stack_reads.clear()
    yield
    touched, _stack_reads[:] = list(_stack_reads), []
    if touched:
        pytest.fail(f"the test read the repository's stacks/ ({touched[0]}); use tests/fixtures/shipped (SHIPPED)")


def read_stack_config(stack: str, repo: Path | None = None) -> dict[str, Any]:
    """The `config:` map of the tests' copy of a shipped stack file (or of `repo`'s stacks/)."""
    return mocks.read_stack_config(stack, repo or SHIPPED)


_runs: dict[str, StackRun] = {}


def stack_run(stack: str) -> StackRun:
    """The program run once per stack file and shared by every test (runs are deterministic)."""
    if stack not in _runs:
        _runs[stack] = run_program(stack, read_stack_config(stack))
    return _runs[stack]


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` applied; nested objects merge, None removes a key."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def run_with(overrides: dict[str, Any], stack: str = "dev") -> StackRun:
    """Run the program with a stack file's config changed by `overrides`."""
    return run_program(stack, merged(read_stack_config(stack), overrides))


@pytest.fixture(scope="session")
def dev() -> StackRun:
    return stack_run("dev")


@pytest.fixture(scope="session")
def prod() -> StackRun:
    return stack_run("prod")


@pytest.fixture(scope="session")
def scale() -> StackRun:
    """The scale stack: prod grown to two hosts behind a load balancer and one read replica."""
    return stack_run("scale")


@pytest.fixture(scope="session")
def prod_grown() -> StackRun:
    """Stack prod run with the scale stack's config: what `pulumi up` on prod does once it is grown."""
    return run_program("prod", read_stack_config("scale"))


# dev moved out of us-east-1 with every alert threshold changed: one run shared by the tests
# of the second alert topic, the site-down alarm's region and thresholds from config.
TUNED = {
    "aws:region": "eu-west-1",
    "leanstack:alerts": {
        "errorRatePercent": 2,
        "minRequestsPerMinute": 50,
        "siteDownMinutes": 5,
        "databaseFreeStoragePercent": 20,
        "backupStaleHours": 30,
    },
}


@pytest.fixture(scope="session")
def tuned() -> StackRun:
    return run_with(TUNED)


# dev with the cache on and the CDN off: the optional resources present, the one exception to
# "nothing open to the internet" in force.
# A recovery key's public half (python -m leanstack recovery-key new); its private half was discarded.
RECOVERY_PUBLIC_KEY = (Path(__file__).resolve().parent / "fixtures" / "recovery_public_key.txt").read_text().strip()
# Every optional piece on (the cache, file storage, sealed secrets) and the CDN off.
CACHE_NO_CDN = {
    "leanstack:cache": {"enabled": True},
    "leanstack:backup": {"recoveryPublicKey": RECOVERY_PUBLIC_KEY},
    "leanstack:storage": {"enabled": True, "corsOrigins": ["https://example.com"], "drillFilesSql": "SELECT 1"},
    "leanstack:cdn": {"proxied": False},
}


@pytest.fixture(scope="session")
def dev_cache_no_cdn() -> StackRun:
    return run_with(CACHE_NO_CDN)


@pytest.fixture
def run_dev_with() -> Callable[[dict[str, Any]], StackRun]:
    return run_with
