"""The plan's formats: text, markdown with summary and Mermaid diagram, JSON; deterministic, no secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from leanstack.mocks import REPO, StackRun, run_program
from leanstack.plan import PLAN_FORMAT_VERSION, RENDERERS, build_plan, render_markdown, render_mermaid
from tests.conftest import read_stack_config

MOCK_SECRETS = ("MOCK PRIVATE KEY", "MOCK ORIGIN CERTIFICATE")  # a CSR is public, not a secret


@pytest.fixture(scope="module")
def dev_plan(dev: StackRun) -> dict[str, Any]:
    return build_plan(dev)


@pytest.fixture(scope="module")
def prod_plan(prod: StackRun) -> dict[str, Any]:
    return build_plan(prod)


def test_markdown_from_the_cli_has_summary_diagram_and_no_secret() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-m", "leanstack", "plan", "prod", "--format", "markdown"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    body = done.stdout
    assert body.startswith("## leanstack plan: `prod`\n")
    assert "| Component | Resources | Monthly | Secrets | Alarms | Reachable from the internet |" in body
    assert "| **Total** |" in body and "```mermaid\nflowchart LR\n" in body
    assert not any(s in body for s in MOCK_SECRETS)


def test_every_format_is_identical_across_two_runs() -> None:
    first = build_plan(run_program("dev", read_stack_config("dev")))
    again = build_plan(run_program("dev", read_stack_config("dev")))
    for fmt, render in RENDERERS.items():
        assert render(again) == render(first), fmt


def test_no_format_prints_a_secret(dev_plan: dict[str, Any], prod_plan: dict[str, Any], dev: StackRun) -> None:
    randoms = [str(r.outputs.get("result")) for r in dev.resources if r.type.startswith("random:")]
    for plan in (dev_plan, prod_plan):
        for fmt, render in RENDERERS.items():
            text = render(plan)
            assert not any(s in text for s in (*MOCK_SECRETS, *randoms)), fmt
    tls = next(r for r in dev_plan["resources"] if r["name"] == "host-tls-key")
    assert tls["inputs"]["value"] == "[secret]"


def test_json_plan_carries_cost_and_summary(prod_plan: dict[str, Any]) -> None:
    data = json.loads(RENDERERS["json"](prod_plan))
    assert data["leanstackPlan"] == PLAN_FORMAT_VERSION == 2
    rows = data["summary"]["components"]
    assert rows["Database"]["secrets"] == 1  # the RDS-managed master secret
    assert rows["Database"]["alarms"] >= 1 and rows["ProxyHost"]["alarms"] >= 1
    assert "443/tcp from Cloudflare's IP ranges only" in rows["ProxyHost"]["internet"]
    assert rows["Database"]["internet"] == [] and rows["BackupBucket"]["internet"] == []
    assert data["summary"]["total"]["monthly"] == data["cost"]["total"] > 50


def test_mermaid_shows_the_flows_between_components(prod_plan: dict[str, Any]) -> None:
    diagram = render_mermaid(prod_plan)
    for line in (
        'users -->|"HTTPS 443"| cdn',
        'cdn -->|"443/tcp"| host',
        'host -->|"5432/tcp"| db',
        'host -->|"HTTPS 443, IAM"| backup',
        "alerts --> inbox",
    ):
        assert line in diagram, line
    assert "Multi-AZ" in diagram and "-.->" in diagram


def test_mermaid_adds_the_cache_when_enabled() -> None:
    from tests.conftest import run_with

    plan = build_plan(run_with({"leanstack:cache": {"enabled": True}}))
    diagram = render_mermaid(plan)
    assert 'host -->|"6379/tcp"| cache' in diagram
    assert "| Cache |" in render_markdown(plan)


def test_text_plan_has_the_summary_block_and_prices(dev_plan: dict[str, Any]) -> None:
    text = RENDERERS["text"](dev_plan)
    assert "\nSummary: $" in text and "/month at on-demand list prices taken 2026-11-22" in text
    assert "  + aws:rds/instance:Instance  database-instance @us-east-1  [holds data]  $14.38/mo" in text
    assert "\nCost assumptions\n" in text
