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


def test_every_component_shows_its_constructor_and_its_outputs() -> None:
    import inspect

    import leanstack.components as library

    reference = component_reference()
    for component, _args in COMPONENT_ARGS:
        cls = getattr(library, component)
        heading = reference.split(f"#### `{component}` ←", 1)[1].split("####", 1)[0]
        constructor = next(line for line in heading.splitlines() if line.startswith(f"`{component}("))
        for parameter in list(inspect.signature(cls.__init__).parameters)[1:]:
            assert f"{parameter}" in constructor, (component, parameter)
        assert "Outputs: " in heading
    database = reference.split("#### `Database` ←", 1)[1].split("####", 1)[0]
    assert "stack: str, network: Network, alarm_topic_arn: pulumi.Input[str]" in database
    assert "Outputs: `address`, `port`, `secret_arn`, `security_group_id`, `replica_addresses`." in database
