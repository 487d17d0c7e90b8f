"""`python -m leanstack init` and the placeholder checks: a fork fills seven values, nothing else changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from leanstack import __main__ as cli
from leanstack.components import providers
from leanstack.config.placeholders import Fill, leftover_placeholders, refusal
from leanstack.config.stack_file import parse_stack_yaml
from leanstack.init import InitError, fill_text, run_init
from leanstack.mocks import run_program
from leanstack.stack_edit import StackEditError, edit_stack_text
from tests.conftest import SHIPPED, read_stack_config

FILL = Fill(
    domain="acme-shop.dev",
    zone_id="fedcba9876543210fedcba9876543210",
    alert_email="pager@acme.dev",
    owner="Platform team, alice@acme.dev",
    region="ap-southeast-2",
    backup_region="ap-southeast-1",
    second_person="Bob Second, bob@acme.dev",
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository-shaped folder holding copies of the shipped stack files."""
    shutil.copytree(SHIPPED / "stacks", tmp_path / "stacks")
    return tmp_path


def test_the_shipped_files_are_all_placeholders() -> None:
    for stack in ("dev", "prod", "scale"):
        left = leftover_placeholders(read_stack_config(stack))
        expected = ["leanstack:domain", "leanstack:alertEmail", "leanstack:owner", "leanstack:cdn.zoneId"]
        if stack == "dev":
            expected.insert(1, "leanstack:hostnames[0]")
        else:
            expected.insert(3, "leanstack:recovery.secondPerson")
        assert [line.split(" ")[0] for line in left] == expected


@pytest.mark.parametrize(
    ("overrides", "warned"),
    [
        ({"leanstack:storage": {"corsOrigins": ["https://app.example.org"]}}, "leanstack:storage.corsOrigins[0]"),
        (
            {"leanstack:recovery": {"database": {"owner": "Ada, ada@sub.EXAMPLE.net"}}},
            "leanstack:recovery.database.owner",
        ),
        ({"leanstack:app": {"env": {"MAIL_FROM": "noreply@example.com."}}}, "leanstack:app.env.MAIL_FROM"),
    ],
)
def test_any_example_domain_left_anywhere_is_a_placeholder(overrides: dict[str, object], warned: str) -> None:
    filled = {"leanstack:domain": "acme.dev", "leanstack:owner": "Ops, ops@acme.dev", "aws:region": "eu-west-1"}
    assert leftover_placeholders(filled) == []
    assert [line.split(" ")[0] for line in leftover_placeholders({**filled, **overrides})] == [warned]
    not_example = {"leanstack:app": {"env": {"A": "myexample.com", "B": "example.community", "C": "example.com.au"}}}
    assert leftover_placeholders({**filled, **not_example}) == []


def test_init_fills_the_six_values_and_keeps_every_other_line(repo: Path) -> None:
    before = {p.name: p.read_text() for p in (repo / "stacks").glob("Pulumi.*.yaml")}
    assert run_init(FILL, repo) == [f"stacks/Pulumi.{s}.yaml" for s in ("dev", "prod", "scale")]
    for name, old in before.items():
        new = (repo / "stacks" / name).read_text()
        changed = [(a, b) for a, b in zip(old.splitlines(), new.splitlines(), strict=True) if a != b]
        assert all(not a.lstrip().startswith("#") for a, _ in changed)  # comments kept
        assert {b.split(":")[0].strip(" -") for _, b in changed} <= {
            "aws",
            "leanstack",
            "zoneId",
            "region",
            "secondPerson",
            "dev.acme-shop.dev",
        }
        stack = name[len("Pulumi.") : -len(".yaml")]
        raw = read_stack_config(stack, repo)
        assert leftover_placeholders(raw) == []
        assert raw["aws:region"] == "ap-southeast-2" and raw["leanstack:backup"]["region"] == "ap-southeast-1"
        assert raw["leanstack:alertEmail"] == "pager@acme.dev" and raw["leanstack:owner"] == FILL.owner
        assert raw.get("leanstack:recovery", {}).get("secondPerson", FILL.second_person) == FILL.second_person
    assert read_stack_config("dev", repo)["leanstack:domain"] == "dev.acme-shop.dev"  # dev keeps its label
    assert read_stack_config("dev", repo)["leanstack:hostnames"] == ["dev.acme-shop.dev"]
    assert read_stack_config("prod", repo)["leanstack:domain"] == "acme-shop.dev"
    once = {p.name: p.read_text() for p in (repo / "stacks").glob("*.yaml")}
    run_init(FILL, repo)  # run again: a filled file stays as it is
    assert {p.name: p.read_text() for p in (repo / "stacks").glob("*.yaml")} == once


def test_init_writes_nothing_when_a_value_is_invalid(repo: Path) -> None:
    before = {p.name: p.read_text() for p in (repo / "stacks").glob("Pulumi.*.yaml")}
    bad_zone = Fill(**{**FILL.__dict__, "zone_id": "not-a-zone"})
    with pytest.raises(
        InitError, match=r'^stacks/Pulumi.dev.yaml: leanstack:cdn.zoneId: got "not-a-zone"; expected 32'
    ):
        run_init(bad_zone, repo)
    same_region = Fill(**{**FILL.__dict__, "backup_region": FILL.region})
    with pytest.raises(
        InitError, match=r"^--backup-region: got ap-southeast-2; expected a region other than --region$"
    ):
        run_init(same_region, repo)
    assert {p.name: p.read_text() for p in (repo / "stacks").glob("Pulumi.*.yaml")} == before


def test_owner_with_yaml_syntax_is_quoted(repo: Path) -> None:
    text = fill_text((repo / "stacks" / "Pulumi.prod.yaml").read_text(), Fill(**{**FILL.__dict__, "owner": "Ops: #1"}))
    assert "  leanstack:owner: 'Ops: #1'" in text.splitlines()
    assert parse_stack_yaml(text, "prod")["leanstack:owner"] == "Ops: #1"


def _indented_by_four(text: str) -> str:
    """The same YAML with every indentation doubled (valid YAML, as some editors write it)."""
    return "\n".join(" " * (len(line) - len(line.lstrip(" "))) + line for line in text.split("\n"))


def test_a_stack_file_indented_with_four_spaces_is_filled_and_keeps_its_comments(repo: Path) -> None:
    for path in (repo / "stacks").glob("Pulumi.*.yaml"):
        path.write_text(_indented_by_four(path.read_text()))
    prod = repo / "stacks" / "Pulumi.prod.yaml"
    before = prod.read_text()
    assert "\n    leanstack:owner: Ops team, ops@example.com\n" in before
    run_init(FILL, repo)
    after = prod.read_text()
    raw = read_stack_config("prod", repo)
    assert raw["aws:region"] == FILL.region and raw["leanstack:owner"] == FILL.owner
    assert raw["leanstack:recovery"]["secondPerson"] == FILL.second_person
    assert raw["leanstack:cdn"]["zoneId"] == FILL.zone_id and raw["leanstack:backup"]["region"] == FILL.backup_region
    assert leftover_placeholders(raw) == []
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    assert len(changed) == 7, changed  # the seven values, nothing else: every comment and indentation kept
    assert all(len(a) - len(a.lstrip()) == len(b) - len(b.lstrip()) for a, b in changed)


def test_a_file_without_a_config_map_is_refused_in_one_line() -> None:
    with pytest.raises(StackEditError, match=r"^x: no `config:` map to edit$"):
        edit_stack_text("other: 1\n", {}, "x")


def test_cli_prints_its_commands_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    for command in ("plan", "diff", "runbook", "validate", "deploy", "schema", "init", "docs"):
        assert f"python -m leanstack {command}" in out
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("leanstack 0.")


def test_cli_init_without_a_terminal_names_the_missing_flags(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert cli.main(["init", "--domain", "acme.dev"]) == 2
    err = capsys.readouterr().err
    missing = "--zone-id, --alert-email, --owner, --region, --backup-region, --second-person"
    assert err == f"leanstack: init: missing {missing} (no terminal to ask on)\n"


def test_validate_warns_once_per_leftover_placeholder(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "read_stack_config", lambda stack: read_stack_config(stack))
    assert cli.main(["validate", "prod"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "stacks/Pulumi.prod.yaml: valid\n"
    lines = captured.err.splitlines()
    assert len(lines) == 5 and all(line.startswith("leanstack: warning: stacks/Pulumi.prod.yaml: ") for line in lines)


def test_the_program_refuses_placeholders_only_when_creating_real_resources(
    monkeypatch: pytest.MonkeyPatch, repo: Path
) -> None:
    raw = read_stack_config("dev")
    assert refusal(raw) is not None
    monkeypatch.setattr(providers, "creating_real_resources", lambda: True)
    with pytest.raises(Exception, match="placeholders cannot create real resources") as caught:
        run_program("dev", raw)
    assert "\n" not in str(caught.value).strip()
    run_init(FILL, repo)
    filled = run_program("dev", read_stack_config("dev", repo))  # filled: the same program goes ahead
    assert filled.resources
