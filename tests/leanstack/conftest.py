"""Fixtures the tooling tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from leanstack.mocks import STACKS_ENV
from tests.conftest import SHIPPED
from tests.leanstack.helpers import REGION


@pytest.fixture
def stacks_in_the_tests_region(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tests' stack files with aws:region set to the region moto answers in (the commands take it from there)."""
    folder = tmp_path_factory.getbasetemp() / "stacks-in-eu-west-1"
    if not folder.exists():
        folder.mkdir()
        for source in (SHIPPED / "stacks").glob("Pulumi.*.yaml"):
            text = source.read_text().replace("  aws:region: us-east-1\n", f"  aws:region: {REGION}\n")
            (folder / source.name).write_text(text)
    monkeypatch.setenv(STACKS_ENV, str(folder))
    return folder
