"""The generated recovery sheet: complete, in sync with the alarms, deterministic, free of secrets."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import pytest
from pulumi.runtime import rpc

from leanstack.config import StackConfig, load_stack_config
from leanstack.mocks import Resource, StackRun
from leanstack.plan import build_plan
from leanstack.runbook import (
    ALARM_HEADINGS,
    STATEFUL_TYPES,
    RunbookError,
    alarm_anchor,
    github_anchor,
    render_runbook,
    runbook_markdown,
)
from tests.conftest import CACHE_NO_CDN, SHIPPED, TUNED, merged, read_stack_config

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def config_of(stack: str, overrides: dict[str, Any] | None = None) -> StackConfig:
    return load_stack_config(merged(read_stack_config(stack), overrides or {}), stack)


def sheet(run: StackRun, overrides: dict[str, Any] | None = None) -> str:
    return runbook_markdown(run, config_of(run.stack, overrides))


def secret_values(value: Any) -> list[str]:
    """Every plaintext the engine marks secret in a resource's inputs or outputs."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            inner = value.get("value")
            return [str(inner)] if inner not in (None, "") else []
        return [s for v in value.values() for s in secret_values(v)]
    if isinstance(value, list):
        return [s for v in value for s in secret_values(v)]
    return []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_alarm_and_every_stateful_resource_appears(stack: str, dev: StackRun, prod: StackRun) -> None:
    run = {"dev": dev, "prod": prod}[stack]
    text = sheet(run)
    alarms = run.of_type(ALARM)
    assert len(alarms) == 10  # with the latency and database-connections alarms
    for alarm in alarms:
        assert f"`{alarm.inputs['name']}`" in text
    stateful = [r for r in run.resources if r.type in STATEFUL_TYPES]
    assert {r.type for r in stateful} >= {"aws:rds/instance:Instance", "aws:s3/bucket:Bucket"}
    for resource in stateful:
        assert f"`{resource.name}`" in text


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_secret_value_appears(stack: str, dev: StackRun, prod: StackRun) -> None:
    run = {"dev": dev, "prod": prod}[stack]
    secrets = [s for r in run.resources for s in secret_values(r.inputs) + secret_values(r.outputs)]
    assert "MOCK PRIVATE KEY" in secrets  # the origin key: proof the search finds secrets at all
    text = sheet(run)
    assert [s for s in secrets if s in text] == []


def test_no_cache_token_either(dev_cache_no_cdn: StackRun) -> None:
    token = dev_cache_no_cdn.one("random:index/randomPassword:RandomPassword").outputs["result"]
    text = sheet(dev_cache_no_cdn, CACHE_NO_CDN)
    assert token.startswith("mock-") and token not in text
    assert "cacheAuthTokenParameter" in text and "`cache-group`" in text


JOBS = {
    "leanstack:app": {
        "jobs": {"nightly-report": {"schedule": "*-*-* 03:15:00", "command": ["bin/report"]}},
        "processes": {"worker": {"command": ["bin/worker"]}},
    },
    "leanstack:database": {"awsBackup": {"enabled": True}},
}


def test_alarm_anchors_and_headings_stay_in_sync(
    dev: StackRun,
    prod: StackRun,
    scale: StackRun,
    dev_cache_no_cdn: StackRun,
    run_dev_with: Callable[[dict[str, Any]], StackRun],
) -> None:
    for heading_anchor, heading in ALARM_HEADINGS.items():
        assert github_anchor(heading) == heading_anchor
    used: set[str | None] = set()
    runs = ((dev, None), (prod, None), (scale, None), (dev_cache_no_cdn, CACHE_NO_CDN), (run_dev_with(JOBS), JOBS))
    for run, overrides in runs:
        text = sheet(run, overrides) if overrides else sheet(run)
        headings = {github_anchor(h) for h in re.findall(r"^#{2,3} (.+)$", text, flags=re.MULTILINE)}
        anchors = {alarm_anchor(a) for a in run.of_type(ALARM)} - {None}
        used |= anchors
        assert anchors <= set(ALARM_HEADINGS)  # every alarm has a section
        assert anchors <= headings
        for link in re.findall(r"\]\(#([a-z0-9-]+)\)", text):
            assert link in headings, link
    # Every section is used by an alarm of some stack (the load balancer's only when scaled out, files at
    # risk only with file storage).
    assert used == set(ALARM_HEADINGS)


def test_an_alarm_linking_to_a_missing_section_is_an_error(dev: StackRun) -> None:
    alarm = dev.named("host-error-rate")
    broken = dataclasses.replace(alarm, inputs={**alarm.inputs, "alarmDescription": "x. Runbook: #nowhere"})
    run = dataclasses.replace(dev, resources=[broken if r is alarm else r for r in dev.resources])
    with pytest.raises(RunbookError, match="links to #nowhere"):
        sheet(run)


def test_commands_use_only_outputs_the_stack_exports(dev: StackRun, prod: StackRun) -> None:
    for run in (dev, prod):
        used = set(re.findall(r"pulumi stack output (\w+)", sheet(run)))
        assert {"hostInstanceId", "databaseSecretArn", "alertTopicArn"} <= used
        assert used <= set(run.outputs) | {"cacheAuthTokenParameter"}


def test_the_sheet_covers_what_the_issue_asks(prod: StackRun) -> None:
    text = sheet(prod)
    for needle in (
        "Ops team, ops@example.com",  # owner
        "**RTO** (time to serve again): 240 minutes",
        "**RPO** (data you may lose): 25 hours",
        "RestoreDrillDurationSeconds",  # how the RTO is measured
        "every 24 h",  # how the RPO is met
        "sudo leanstack-restore-drill",
        "aws ssm start-session --region us-east-1 --target $(pulumi stack output hostInstanceId --stack prod)",
        "pg_restore",
        "git revert",
        "pulumi stack history --stack prod",
        "pulumi stack export --stack prod",
        "Secrets Manager",
        "us-west-2",  # where backups live
    ):
        assert needle in text, needle
    services = text.split("## Services", 1)[1].split("\n## ", 1)[0]
    for component in ("ProxyHost", "Database", "BackupBucket", "Cdn", "Alerts", "UptimeCheck", "Network"):
        assert f"| {component} |" in services
    # A monthly cost per service (from leanstack.cost), never an invented number.
    row = next(line for line in services.splitlines() if line.startswith("| Database |"))
    assert re.search(r"\| \$\d+\.\d\d( \+ usage not priced)? \|", row), row
    assert f"${build_plan(prod)['cost']['components']['Database']['monthly']:,.2f}" in row


def test_dev_says_it_has_no_targets(dev: StackRun) -> None:
    text = sheet(dev)
    assert "not set (not production)" in text and "**Production**: no" in text
    assert "no protection in this stack" in text


def test_outside_us_east_1_the_sheet_explains_the_second_topic(tuned: StackRun) -> None:
    text = sheet(tuned, TUNED)
    assert "The site-down alarm lives in us-east-1" in text and "second page topic there" in text
    assert "| `leanstack-dev-site-down` | us-east-1 |" in text
    assert "over 2% of requests" in text


def test_the_sheet_tells_pages_from_tickets(dev: StackRun, run_dev_with: Any) -> None:
    assert "tickets (working hours" in sheet(dev) and "`pulumi stack output ticketTopicArn --stack dev`" in sheet(dev)
    overrides = {"leanstack:alerts": {"ticketEmail": "tickets@example.com"}}
    text = sheet(run_dev_with(overrides), overrides)
    assert "Pages (someone now) email ops@example.com" in text
    assert "email tickets@example.com through the ticket topic" in text


def test_output_is_deterministic_across_runs(dev: StackRun) -> None:
    # The tests' copy of the shipped stack files, never stacks/ (a filled fork's values differ).
    assert render_runbook("dev", SHIPPED) == sheet(dev)


def test_the_physical_names_are_never_invented_by_the_mocks(prod: StackRun) -> None:
    text = sheet(prod)
    bucket: Resource = prod.named("backups-bucket")
    assert bucket.outputs["bucket"] not in text  # the mocks' made-up suffix
    assert "`leanstack-prod-backups-<random suffix>`" in text


def test_the_sheet_lists_the_jobs_and_when_to_use_maintenance_mode(
    dev: StackRun, run_dev_with: Callable[[dict[str, Any]], StackRun]
) -> None:
    text = sheet(run_dev_with(JOBS), JOBS)
    assert "| `nightly-report` | `*-*-* 03:15:00` | `bin/report` | `leanstack-job-nightly-report.timer` |" in text
    assert "`leanstack-dev-job-failed`" in text
    assert "python -m leanstack maintenance dev on" in text and "a migration that is not backward compatible" in text
    assert "No scheduled jobs (`app.jobs` is empty)." in sheet(dev)
