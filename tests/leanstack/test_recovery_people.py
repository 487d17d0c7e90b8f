"""Per-system recovery people and targets (issue 18): required second person, no secrets, on the sheet."""

from __future__ import annotations

import pytest

from leanstack.config import ConfigError, load_stack_config
from leanstack.mocks import StackRun
from leanstack.runbook import runbook_markdown
from tests.conftest import merged, read_stack_config

PEOPLE = {
    "leanstack:recovery": {
        "secondPerson": "Grace, grace@example.com",
        "files": {"owner": "Linus", "rtoMinutes": 480, "rpoHours": 1},
        "credentials": {"awsRootMfa": "company vault, 'AWS root'; MFA in the office safe"},
    }
}


def test_a_production_stack_without_a_second_person_is_refused() -> None:
    raw = read_stack_config("prod")
    raw["leanstack:recovery"] = {k: v for k, v in raw["leanstack:recovery"].items() if k != "secondPerson"}
    with pytest.raises(ConfigError, match=r"^leanstack:recovery\.secondPerson: missing; stack 'prod' is production"):
        load_stack_config(raw, "prod")
    assert load_stack_config(read_stack_config("dev"), "dev").recovery.second_person == ""


@pytest.mark.parametrize(
    "value",
    ["-----BEGIN PRIVATE KEY-----", "AKIAIOSFODNN7EXAMPLEwJalrXUtnFEMIK7MDENG", "vault, password: hunter2"],
)
def test_a_credential_itself_is_refused_only_where_it_lives_is_allowed(value: str) -> None:
    raw = merged(read_stack_config("prod"), {"leanstack:recovery": {"credentials": {"registrar": value}}})
    with pytest.raises(ConfigError, match=r"^leanstack:recovery\.credentials\.registrar: got .*; expected where"):
        load_stack_config(raw, "prod")


def test_the_sheet_names_owner_second_and_targets_per_system(prod: StackRun) -> None:
    config = load_stack_config(merged(read_stack_config("prod"), PEOPLE), "prod")
    sheet = runbook_markdown(prod, config)
    assert "- **Second person**: Grace, grace@example.com" in sheet
    section = sheet.split("## Who recovers what", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in section.splitlines()
            if line.startswith("| ") and "---" not in line}  # fmt: skip
    assert rows["Uploaded files"] == ["Linus", "Grace, grace@example.com", "480 min", "1 h"]
    base = config.recovery
    assert rows["Database"] == [
        config.owner,
        "Grace, grace@example.com",
        f"{base.rto_minutes} min",
        f"{base.rpo_hours} h",
    ]
    assert set(rows) >= {"Database", "Uploaded files", "App config and secrets", "Host(s)", "DNS and CDN (Cloudflare)",
                         "Deploy path (CI, images)"}  # fmt: skip
    assert "- **AWS account root and its MFA**: company vault, 'AWS root'; MFA in the office safe" in section
    assert "- **Cloudflare account**: not written down" in section
