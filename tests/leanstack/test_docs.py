"""The documentation site: its generated pages are current, it builds strictly, its links resolve."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

from leanstack.config import DatabaseArgs
from leanstack.docs import COMPONENT_ARGS, DOCS, component_reference, generated_pages, stack_config_reference
from leanstack.mocks import REPO

PAGES = sorted(DOCS.rglob("*.md"))


def test_the_generated_pages_are_current() -> None:
    stale = [
        str(path.relative_to(REPO))
        for path, text in generated_pages().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert stale == [], "run `make docs` (python -m leanstack docs --write)"


def test_no_price_is_typed_by_hand_in_the_prose() -> None:
    """Figures come from the generated blocks (the plans and the price table); quoted output (`>`)
    is pasted from a command. The generated reference pages quote the Args' docs, whose prices
    are the components' own to remove."""
    typed = []
    for page in [REPO / "README.md", *PAGES]:
        if page.parent == DOCS / "reference":
            continue
        text = re.sub(
            r"<!-- [a-z-]+-figures:start.*?<!-- [a-z-]+-figures:end -->",
            "",
            page.read_text(encoding="utf-8"),
            flags=re.S,
        )
        text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
        typed += [
            f"{page.relative_to(REPO)}: {line}"
            for line in text.splitlines()
            if re.search(r"\$\d", line) and not line.startswith(">")
        ]
    assert typed == []


def test_the_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "index.html").exists() and (tmp_path / "reference" / "components.html").exists()


def _anchors(page: Path) -> set[str]:
    """The heading anchors of a Markdown page, as GitHub and MyST make them."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    headings = re.findall(r"^#{1,6} (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_relative_link_and_anchor_resolves() -> None:
    broken = []
    for page in [REPO / "README.md", *PAGES]:
        text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
        text = re.sub(r"`[^`\n]*`", "", text)  # code spans: a regex in a table is not a link
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists() or (anchor and anchor not in _anchors(resolved)):
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert broken == []


def test_the_stack_config_reference_lists_every_key_of_the_schema() -> None:
    import json

    schema = json.loads(
        subprocess.run(
            [sys.executable, "-m", "leanstack", "schema"], capture_output=True, text=True, check=True, cwd=REPO
        ).stdout
    )
    reference = stack_config_reference()
    for key in schema["properties"]["config"]["properties"]:
        assert f"## `{key}`" in reference, key
    database = reference.split("## `leanstack:database`", 1)[1].split("\n## ", 1)[0]
    assert "| `awsBackup.snapshotDays` | integer, 7 to 3650 | `35` |" in database


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
        heading = reference.split(f"## `{component}` ←", 1)[1].split("\n## ", 1)[0]
        constructor = next(line for line in heading.splitlines() if line.startswith(f"`{component}("))
        for parameter in list(inspect.signature(cls.__init__).parameters)[1:]:
            assert f"{parameter}" in constructor, (component, parameter)
        assert "Outputs: " in heading
    database = reference.split("## `Database` ←", 1)[1].split("\n## ", 1)[0]
    assert "stack: str, network: Network, alarm_topic_arn: pulumi.Input[str]" in database
    assert "Outputs: `address`, `port`, `secret_arn`, `security_group_id`, `replica_addresses`." in database
