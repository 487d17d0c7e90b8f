"""Issue 22 item 2: after the recovery sheet's "Instance deleted" branch (the instance restored
under its old identifier, with a new RDS-managed secret and, from another snapshot or region, a
new endpoint), `pulumi up` must not replace the only host. The host's user data holds what
defines the machine; where the database is lives in an SSM parameter the host reads at each
use (contract.database_parameter), which `pulumi up` updates in place."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
from pulumi import runtime

from leanstack.diff import diff_plans
from leanstack.host.agent import contract
from leanstack.mocks import LeanMocks, StackRun, run_program
from leanstack.plan import build_plan
from tests.conftest import DIFF_FIXTURES, read_stack_config

RESTORED_SECRET = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:rds!db-restored-0a1b2c"
RESTORED_ADDRESS = "leanstack-prod.crestored0.eu-central-1.rds.amazonaws.com"


def _restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mocks answer for the database as for the restored instance: a new secret and endpoint."""
    original = LeanMocks.new_resource

    def new_resource(self: LeanMocks, args: runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        rid, state = original(self, args)
        if args.typ == "aws:rds/instance:Instance":
            state = {**state, "address": RESTORED_ADDRESS, "endpoint": f"{RESTORED_ADDRESS}:5432"}
            state["masterUserSecrets"] = [{**state["masterUserSecrets"][0], "secretArn": RESTORED_SECRET}]
        return rid, state

    monkeypatch.setattr(LeanMocks, "new_resource", new_resource)


def _user_data(run: StackRun) -> str:
    instance = run.one("aws:ec2/instance:Instance")
    return gzip.decompress(base64.b64decode(instance.inputs["userDataBase64"])).decode()


def test_a_restored_database_changes_its_parameter_and_never_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    config = read_stack_config("prod", DIFF_FIXTURES)
    before = run_program("prod", config)
    _restored(monkeypatch)
    after = run_program("prod", config)

    old_database = before.one("aws:rds/instance:Instance").outputs
    assert RESTORED_SECRET not in json.dumps(old_database) and old_database["address"] != RESTORED_ADDRESS
    # The user data is the same text: nothing in it names the endpoint or the secret.
    assert _user_data(after) == _user_data(before)
    for value in (old_database["address"], RESTORED_ADDRESS, RESTORED_SECRET, "rds!db-"):
        assert value not in _user_data(after)
    # They reach the host through the parameter it reads.
    location = after.named("host-database-location").inputs
    assert location["name"] == contract.database_parameter("prod") == "/leanstack/prod/database"
    # A secret Output (the secret's ARN is marked secret by the provider): its value inside.
    raw = location["value"]["value"] if isinstance(location["value"], dict) else location["value"]
    value = json.loads(raw)
    assert value == {"host": RESTORED_ADDRESS, "port": 5432, "secret_arn": RESTORED_SECRET}

    # The project's own diff: the host role's grant on the new secret changes in place; no host is replaced
    # (the parameter's value is secret, so the plan cannot show its change).
    result = diff_plans("prod", build_plan(before), build_plan(after))
    changed = {change["name"]: change["replaced"] for change in result["changed"]}
    assert not [name for name, replaced in changed.items() if replaced], changed
    assert not [c for c in result["changed"] if c["type"] == "aws:ec2/instance:Instance"], changed
    assert result["added"] == [] and result["removed"] == []
    assert not [risk for risk in result["risks"] if risk["type"] == "aws:ec2/instance:Instance"], result["risks"]
