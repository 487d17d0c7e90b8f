"""The JSON Schema for stack files: generated from the config model, checked in, and current."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml

from leanstack.config import json_schema
from leanstack.mocks import REPO, available_stacks
from tests.conftest import SHIPPED

SCHEMA_PATH = REPO / "stacks" / "stack-config.schema.json"


def stack_document(stack: str) -> dict[str, Any]:
    document = yaml.safe_load((SHIPPED / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    assert isinstance(document, dict)
    return document


def test_checked_in_schema_is_current() -> None:
    checked_in = json.loads(SCHEMA_PATH.read_text())
    assert checked_in == json_schema(), "run `make schema` and commit stacks/stack-config.schema.json"


def test_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json_schema())


@pytest.mark.parametrize("stack", available_stacks())
def test_every_stack_file_validates(stack: str) -> None:
    jsonschema.validate(stack_document(stack), json_schema())


def test_stack_files_point_editors_at_the_schema() -> None:
    for stack in available_stacks():
        lines = (SHIPPED / "stacks" / f"Pulumi.{stack}.yaml").read_text().splitlines()
        first = next(
            line for line in lines if not line.startswith("# The tests' copy") and not line.startswith("# stacks/")
        )
        assert first == "# yaml-language-server: $schema=stack-config.schema.json"


@pytest.mark.parametrize(
    ("patch", "message_part"),
    [
        ({"leanstack:database": {"instanceClas": "db.t4g.micro"}}, "Additional properties"),
        ({"leanstack:databse": {}}, "leanstack:databse"),
        ({"leanstack:database": {"backupRetentionDays": 0}}, "less than the minimum"),
        ({"leanstack:domain": "bad domain"}, "does not match"),
        ({"leanstack:backup": {"objectLockMode": "governance"}}, "is not one of"),
    ],
)
def test_schema_catches_what_an_editor_should_flag(patch: dict[str, Any], message_part: str) -> None:
    document = stack_document("dev")
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(document["config"].get(key), dict):
            document["config"][key].update(value)
        else:
            document["config"][key] = value
    with pytest.raises(jsonschema.ValidationError) as caught:
        jsonschema.validate(document, json_schema())
    assert message_part in str(caught.value.message)


def test_other_namespaces_are_left_to_their_providers() -> None:
    document = stack_document("dev")
    document["config"]["aws:profile"] = "work"
    document["config"]["cloudflare:apiToken"] = {"secure": "v1:abc"}
    jsonschema.validate(document, json_schema())
