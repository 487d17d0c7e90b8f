"""Shared fixtures: the real program run offline under mocks, per stack or with overrides."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from leanstack.mocks import StackRun, read_stack_config, run_program

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


@pytest.fixture
def run_dev_with() -> Callable[[dict[str, Any]], StackRun]:
    return run_with
