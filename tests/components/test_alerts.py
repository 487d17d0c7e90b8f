"""Alerts, the exact alarm set of each stack, and the origin certificate."""

from __future__ import annotations

from typing import Any

import pytest

from leanstack.mocks import StackRun
from tests.components.helpers import is_secret_input

# Every alarm of a stack, by its CloudWatch name. Nothing else may page anyone.
ALARMS = (
    "leanstack-{stack}-site-down",
    "leanstack-{stack}-error-rate",
    "leanstack-{stack}-latency",
    "leanstack-{stack}-recover",
    "leanstack-{stack}-still-broken",
    "leanstack-{stack}-storage-low",
    "leanstack-{stack}-connections-high",
    "leanstack-{stack}-backup-stale",
    "leanstack-{stack}-restore-drill-stale",
    "leanstack-{stack}-restore-drill-failed",
)
# What wakes someone (the page topic) and what waits for working hours (the ticket topic).
PAGES = {"site-down", "error-rate", "latency", "still-broken", "storage-low", "connections-high", "backup-stale",
         "unhealthy-targets", "load-balancer-errors"}  # fmt: skip
TICKETS = {"restore-drill-stale", "restore-drill-failed", "job-failed", "files-at-risk", "worker-crash-loop",
           "rds-restore-test-failed"}  # fmt: skip
# Alarm name suffix -> the runbook section its description links to.
RUNBOOK_ANCHORS = {
    "site-down": "site-down",
    "error-rate": "error-rate",
    "latency": "latency",
    "still-broken": "host-still-broken",
    "storage-low": "database-storage-low",
    "connections-high": "database-connections-high",
    "backup-stale": "backup-stale",
    "restore-drill-stale": "restore-drill-stale",
    "restore-drill-failed": "restore-drill-failed",
    "worker-crash-loop": "worker-crash-loop",
    "rds-restore-test-failed": "rds-restore-test-failed",
}


def test_a_page_topic_and_a_ticket_topic_each_with_the_email(dev: StackRun) -> None:
    topics = {t.inputs["name"]: t for t in dev.of_type("aws:sns/topic:Topic")}
    # The page topic keeps the one topic's old name, so a live stack keeps its confirmed subscription.
    assert sorted(topics) == ["leanstack-dev-alerts", "leanstack-dev-tickets"]
    assert topics["leanstack-dev-alerts"].outputs["arn"] == dev.outputs["alertTopicArn"]
    assert topics["leanstack-dev-tickets"].outputs["arn"] == dev.outputs["ticketTopicArn"]
    subscriptions = {s.inputs["topic"]: s.inputs for s in dev.of_type("aws:sns/topicSubscription:TopicSubscription")}
    for topic in topics.values():
        # Without alerts.ticketEmail, alertEmail gets both (the config before the split keeps working).
        assert (subscriptions[topic.outputs["arn"]]["protocol"], subscriptions[topic.outputs["arn"]]["endpoint"]) == (
            "email",
            "ops@example.com",
        )


def test_tickets_go_to_their_own_address_and_the_budget_too(run_dev_with: Any) -> None:
    run = run_dev_with({"leanstack:alerts": {"ticketEmail": "tickets@example.com"}})
    endpoints = {
        s.inputs["topic"]: s.inputs["endpoint"] for s in run.of_type("aws:sns/topicSubscription:TopicSubscription")
    }
    assert endpoints[run.outputs["ticketTopicArn"]] == "tickets@example.com"
    assert endpoints[run.outputs["alertTopicArn"]] == "ops@example.com"
    budget = run.one("aws:budgets/budget:Budget").inputs
    assert {a for n in budget["notifications"] for a in n["subscriberEmailAddresses"]} == {"tickets@example.com"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_exact_alarm_set(stack: str, dev: StackRun, prod: StackRun) -> None:
    run = {"dev": dev, "prod": prod}[stack]
    names = sorted(a.inputs["name"] for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"))
    assert names == sorted(name.format(stack=stack) for name in ALARMS)


def _routes(run: StackRun) -> dict[str, str]:
    """Alarm suffix -> "page" or "ticket", from the topic its actions notify."""
    stack = run.stack
    page = {run.outputs["alertTopicArn"], *(t.outputs["arn"] for t in run.of_type("aws:sns/topic:Topic")
                                              if t.inputs["name"].startswith(f"leanstack-{stack}-alerts"))}  # fmt: skip
    routes = {}
    for alarm in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        suffix = alarm.inputs["name"].removeprefix(f"leanstack-{stack}-")
        actions = alarm.inputs["alarmActions"]
        if suffix == "recover":
            assert actions == [f"arn:aws:automate:{run.outputs['region']}:ec2:recover"]
            continue
        assert len(actions) == 1, suffix
        assert alarm.inputs.get("okActions", actions) == actions, suffix
        routes[suffix] = "page" if actions[0] in page else "ticket"
        if routes[suffix] == "ticket":
            assert actions == [run.outputs["ticketTopicArn"]], suffix
        assert "CPU" not in str(alarm.inputs.get("metricName", "")), "no busy-server alarms"
    return routes


def test_pages_and_tickets_go_to_their_topics(
    dev: StackRun, prod: StackRun, scale: StackRun, run_dev_with: Any
) -> None:
    jobs = run_dev_with({
        "leanstack:app": {"jobs": {"report": {"schedule": "daily", "command": ["bin/report"]}}},
        "leanstack:storage": {"enabled": True},
    })  # fmt: skip
    for run in (dev, prod, scale, jobs):
        for suffix, route in _routes(run).items():
            assert suffix in (PAGES if route == "page" else TICKETS), f"{run.stack}: {suffix} is a {route}"
    assert {"job-failed", "files-at-risk"} <= set(_routes(jobs))


def test_latency_alarm_is_p95_of_nginx_request_time_on_one_host(prod: StackRun) -> None:
    alarm = next(a.inputs for a in prod.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
                 if a.inputs["name"] == "leanstack-prod-latency")  # fmt: skip
    assert (alarm["extendedStatistic"], alarm["threshold"], alarm["evaluationPeriods"]) == ("p95", 1.0, 5)
    assert alarm["evaluateLowSampleCountPercentiles"] == "ignore"
    filters = {f.inputs["name"]: f.inputs for f in prod.of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")}
    latency = filters["leanstack-prod-latency"]
    assert latency["logGroupName"] == "/leanstack/prod/nginx/access"
    assert latency["metricTransformation"]["value"] == "$.request_time"
    assert latency["metricTransformation"]["name"] == alarm["metricName"]
    assert latency["metricTransformation"]["namespace"] == alarm["namespace"]
    assert '$.uri != "/healthz"' in latency["pattern"], "health checks are not user requests"


def test_nginx_logs_request_time_as_a_number_the_filter_can_read() -> None:
    from pathlib import Path

    template = (Path(__file__).resolve().parents[2] / "host" / "templates" / "nginx.conf.j2").read_text()
    # A quoted value would be a string, and `$.request_time >= 0` would never match.
    assert "'\"request_time\":$request_time,'" in template


def test_latency_alarm_reads_the_load_balancer_when_scaled_out(scale: StackRun) -> None:
    alarm = next(a.inputs for a in scale.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
                 if a.inputs["name"] == "leanstack-scale-latency")  # fmt: skip
    assert (alarm["namespace"], alarm["metricName"], alarm["extendedStatistic"]) == (
        "AWS/ApplicationELB",
        "TargetResponseTime",
        "p95",
    )
    assert set(alarm["dimensions"]) == {"LoadBalancer"}


def test_latency_threshold_from_config(run_dev_with: Any) -> None:
    run = run_dev_with({"leanstack:alerts": {"latencyP95Ms": 2500}})
    alarm = next(a.inputs for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
                 if a.inputs["name"] == "leanstack-dev-latency")  # fmt: skip
    assert alarm["threshold"] == 2.5


@pytest.mark.parametrize(
    ("instance_class", "percent", "threshold"),
    [("db.t4g.micro", 80, 63), ("db.t4g.small", 80, 148), ("db.m7g.large", 50, 414), ("db.r7g.large", 80, 1347)],
)
def test_connections_alarm_threshold_from_the_class_max_connections(
    instance_class: str, percent: int, threshold: int, run_dev_with: Any
) -> None:
    from leanstack.config import default_max_connections

    limit = default_max_connections(instance_class)
    assert limit is not None and limit * percent // 100 == threshold
    run = run_dev_with({
        "leanstack:database": {"instanceClass": instance_class},
        "leanstack:alerts": {"databaseConnectionsPercent": percent},
    })  # fmt: skip
    alarm = next(a.inputs for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
                 if a.inputs["name"] == "leanstack-dev-connections-high")  # fmt: skip
    assert (alarm["namespace"], alarm["metricName"], alarm["threshold"]) == (
        "AWS/RDS",
        "DatabaseConnections",
        threshold,
    )
    assert f"about {limit}" in alarm["alarmDescription"]


def test_slack_through_chatbot_on_the_page_topics_only(run_dev_with: Any) -> None:
    run = run_dev_with({
        "aws:region": "eu-west-1",
        "leanstack:alerts": {"slack": {"workspaceId": "T0123ABCDE", "channelId": "C0123ABCDEF"}},
    })  # fmt: skip
    configs = [c.inputs for c in run.of_type("aws:chatbot/slackChannelConfiguration:SlackChannelConfiguration")]
    for slack in configs:
        assert (slack["slackTeamId"], slack["slackChannelId"], slack["region"]) == (
            "T0123ABCDE",
            "C0123ABCDEF",
            "us-west-2",
        )
        assert run.outputs["ticketTopicArn"] not in slack["snsTopicArns"]
    page_topics = {t.outputs["arn"] for t in run.of_type("aws:sns/topic:Topic") if "-alerts" in t.inputs["name"]}
    assert len(page_topics) == 2, "the stack's page topic and the us-east-1 one for site down"
    # The us-east-1 topic is made when the site-down alarm asks for it, after the first configuration:
    # it gets a configuration of its own, on the same channel.
    assert sorted(c["configurationName"] for c in configs) == ["leanstack-dev-pages", "leanstack-dev-pages-us-east-1"]
    assert {arn for c in configs for arn in c["snsTopicArns"]} == page_topics


def test_no_slack_without_the_config(dev: StackRun) -> None:
    assert dev.of_type("aws:chatbot/slackChannelConfiguration:SlackChannelConfiguration") == []


def test_dashboard_shows_requests_latency_database_backups_and_deploys(prod: StackRun, scale: StackRun) -> None:
    import json

    for run in (prod, scale):
        board = run.one("aws:cloudwatch/dashboard:Dashboard").inputs
        assert board["dashboardName"] == f"leanstack-{run.stack}"
        body = json.loads(board["dashboardBody"])
        text = json.dumps(body)
        needles = ["HttpRequests-", "Http5xxResponses-", "CPUUtilization", "DatabaseConnections"]
        needles += ["FreeStorageSpace", "BackupSuccess", "RestoreDrillAgeDays", f"/leanstack/{run.stack}/app"]
        for needle in needles:
            assert needle in text, (run.stack, needle)
        latency = "TargetResponseTime" if run.stack == "scale" else f"RequestTime-{run.stack}"
        assert latency in text
        connections = next(a.inputs for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
                           if a.inputs["name"].endswith("-connections-high"))  # fmt: skip
        drawn = [w for w in body["widgets"] if w["properties"].get("annotations")]
        assert drawn[0]["properties"]["annotations"]["horizontal"][0]["value"] == connections["threshold"]
        for widget in body["widgets"]:
            assert widget["x"] + widget["width"] <= 24


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ({"slack": {"workspaceId": "T0123ABCDE"}}, "leanstack:alerts.slack.channelId: missing"),
        ({"slack": {"workspaceId": "general", "channelId": "C0123ABCDEF"}}, "leanstack:alerts.slack.workspaceId"),
        ({"ticketEmail": "not an address"}, "leanstack:alerts.ticketEmail"),
        ({"latencyP95Ms": 10}, "leanstack:alerts.latencyP95Ms"),
    ],
)
def test_bad_alert_config_is_one_line_naming_the_key(alerts: dict[str, Any], message: str) -> None:
    from leanstack.config import ConfigError, load_stack_config
    from tests.conftest import merged, read_stack_config

    with pytest.raises(ConfigError) as error:
        load_stack_config(merged(read_stack_config("dev"), {"leanstack:alerts": alerts}), "dev")
    assert str(error.value).startswith(message), str(error.value)
    assert "\n" not in str(error.value)


def test_an_instance_class_without_a_memory_figure_is_refused() -> None:
    from leanstack.config import ConfigError, load_stack_config
    from tests.conftest import merged, read_stack_config

    with pytest.raises(ConfigError, match=r"^leanstack:database.instanceClass: .*connections alarm"):
        load_stack_config(
            merged(read_stack_config("dev"), {"leanstack:database": {"instanceClass": "db.x2g.large"}}), "dev"
        )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_description_says_what_users_feel_what_to_check_and_links_the_runbook(
    stack: str, dev: StackRun, prod: StackRun
) -> None:
    run = {"dev": dev, "prod": prod}[stack]
    for alarm in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        description = alarm.inputs["alarmDescription"]
        assert len(description) <= 1024, alarm.name  # CloudWatch's limit
        suffix = alarm.inputs["name"].removeprefix(f"leanstack-{stack}-")
        if suffix == "recover":
            continue  # an action, not a page
        assert description.startswith(
            (
                "Site down for users:",
                "Errors up for users:",
                "Errors soon for users:",
                "Slow for users:",
                "Data waits:",
                "Data at risk:",
            )
        ), alarm.name
        assert "First check:" in description, alarm.name
        assert description.endswith(f"Runbook: #{RUNBOOK_ANCHORS[suffix]}"), alarm.name


def test_origin_certificate_covers_the_hostnames_with_a_secret_key(dev: StackRun) -> None:
    key = dev.one("tls:index/privateKey:PrivateKey").inputs
    assert (key["algorithm"], key["ecdsaCurve"]) == ("ECDSA", "P256")
    csr = dev.one("tls:index/certRequest:CertRequest")
    assert csr.inputs["dnsNames"] == ["dev.example.com"]
    assert is_secret_input(csr, "privateKeyPem")
    cert = dev.one("cloudflare:index/originCaCertificate:OriginCaCertificate").inputs
    assert cert["hostnames"] == ["dev.example.com"]
    assert (cert["requestType"], cert["requestedValidity"]) == ("origin-ecc", 5475)
