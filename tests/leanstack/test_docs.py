"""The README's component reference is generated from the Args, so it cannot drift."""

from __future__ import annotations

import dataclasses

from leanstack.config import DatabaseArgs
from leanstack.docs import COMPONENT_ARGS, component_reference, readme_with_reference
from leanstack.mocks import REPO


def test_the_readme_reference_is_current() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme_with_reference(readme) == readme, "run `make docs` (python -m leanstack docs --write)"


def test_every_field_of_every_component_args_is_listed() -> None:
    reference = component_reference()
    import leanstack.components as library

    for component, args_name in COMPONENT_ARGS:
        assert component in library.__all__ and args_name in library.__all__
        cls = getattr(library, args_name)
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` |" in reference, f"{args_name}.{f.name}"
    row = next(line for line in reference.splitlines() if line.startswith("| `identifier` |"))
    assert "`identifier`" in row and "Changing it replaces the database." in row.split("|")[-2]
    instance_class = next(line for line in reference.splitlines() if line.startswith("| `instance_class` |"))
    assert f'`"{DatabaseArgs().instance_class}"`' in instance_class  # the default, read from the dataclass
