"""`python -m leanstack`: the commands a person runs, as subprocesses, with their exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from leanstack.__main__ import main
from leanstack.mocks import REPO, STACKS_ENV
from leanstack.policy.rules import RULES
from tests.conftest import SHIPPED


def leanstack(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "leanstack", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def plan_dev_text() -> str:
    done = leanstack("plan", "dev")
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_plan_groups_resources_by_component_with_key_settings(plan_dev_text: str) -> None:
    assert plan_dev_text.startswith("leanstack plan — stack dev: ")
    for heading in ("Alerts (", "BackupBucket (", "Cdn (", "Database (", "Network (", "ProxyHost (", "UptimeCheck ("):
        assert f"\n{heading}" in plan_dev_text
    assert '      instanceClass = "db.t4g.micro"' in plan_dev_text
    assert "[retainOnDelete, holds data]" in plan_dev_text
    assert "MOCK PRIVATE KEY" not in plan_dev_text and '"[secret]"' in plan_dev_text


def test_plan_json_is_byte_identical_across_processes() -> None:
    first, second = leanstack("plan", "prod", "--format", "json"), leanstack("plan", "prod", "--format", "json")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    plan = json.loads(first.stdout)
    db = next(r for r in plan["resources"] if r["type"] == "aws:rds/instance:Instance")
    assert db["options"]["protect"] is True and db["inputs"]["multiAz"] is True


def test_unknown_stack_is_one_line_and_exit_2() -> None:
    done = leanstack("plan", "staging")
    assert done.returncode == 2
    assert (
        done.stderr == "leanstack: unknown stack 'staging': no stacks/Pulumi.staging.yaml (stacks: dev, prod, scale)\n"
    )
    assert done.stdout == ""


def test_invalid_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    shipped = (SHIPPED / "stacks" / "Pulumi.dev.yaml").read_text()
    text = shipped.replace("region: us-west-2", "region: us-east-1")
    (tmp_path / "stacks" / "Pulumi.dev.yaml").write_text(text)
    (tmp_path / "stacks" / "Pulumi.broken.yaml").write_text("config: [unclosed\n")
    env = dict(os.environ, PYTHONPATH=str(REPO), **{STACKS_ENV: str(tmp_path / "stacks")})
    code = "import sys; from leanstack.__main__ import main; sys.exit(main(sys.argv[2:]))"
    for stack, expected in (
        ("dev", 'leanstack: leanstack:backup.region: got "us-east-1", the stack\'s own region;'),
        ("broken", "leanstack: stacks/Pulumi.broken.yaml: not valid YAML at line 2:"),
    ):
        done = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path), "validate", stack], env=env, capture_output=True, text=True
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(expected) and done.stderr.count("\n") == 1, done.stderr


def test_bad_arguments_are_one_line_and_exit_2() -> None:
    done = leanstack("plan", "dev", "--format", "yaml")
    assert done.returncode == 2
    assert done.stderr.startswith("leanstack: argument --format: invalid choice: 'yaml'")
    assert done.stderr.count("\n") == 1


def test_make_plan_is_the_quick_start_command() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "plan: $(VENV)/.runtime\n\t$(PY) -m leanstack plan $(STACK)" in makefile


def test_plan_shows_policy_results(plan_dev_text: str) -> None:
    assert f"\nPolicies: {len(RULES)}/{len(RULES)} policy rules pass\n" in plan_dev_text


def test_plan_json_carries_each_policy_result(capsys: pytest.CaptureFixture[str]) -> None:
    # In-process: the subprocess tests above already prove the command line; this reads the JSON.
    assert main(["plan", "dev", "--format", "json"]) == 0
    results = json.loads(capsys.readouterr().out)["policies"]
    assert {r["name"] for r in results} == {rule.name for rule in RULES}
    assert all(r["passed"] for r in results)


def test_runbook_command_prints_the_recovery_sheet(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runbook", "prod"]) == 0
    assert capsys.readouterr().out.startswith("# Recovery sheet: stack `prod`\n")
    assert main(["runbook", "staging"]) == 2
    assert capsys.readouterr().err.startswith("leanstack: unknown stack 'staging'")


def test_deploy_commands_are_reached_through_the_same_entry_point(capsys: pytest.CaptureFixture[str]) -> None:
    # Bad input is refused before anything talks to AWS: exit 2, one line.
    assert main(["deploy", "dev", "bad tag!", "--instance-id", "i-0123456789abcdef0", "--region", "us-east-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("leanstack: tag 'bad tag!' is not allowed") and err.count("\n") == 1
    assert main(["rollback"]) == 2
    assert "required: stack" in capsys.readouterr().err


def test_a_python_without_the_dependencies_says_what_to_run_in_one_line() -> None:
    """`python -m leanstack` by a Python that lacks them (here: without its site-packages, -S)."""
    done = subprocess.run(
        [sys.executable, "-S", "-m", "leanstack", "init"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("leanstack: yaml is not installed for ")
    assert "run `make` once and use .venv/bin/leanstack" in done.stderr and "Traceback" not in done.stderr
