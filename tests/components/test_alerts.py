"""Alerts, the exact alarm set of each stack, and the origin certificate."""

from __future__ import annotations

import pytest

from leanstack.mocks import StackRun
from tests.components.helpers import is_secret_input

# Every alarm of a stack, by its CloudWatch name. Nothing else may page anyone.
ALARMS = (
    "leanstack-{stack}-site-down",
    "leanstack-{stack}-error-rate",
    "leanstack-{stack}-recover",
    "leanstack-{stack}-still-broken",
    "leanstack-{stack}-storage-low",
    "leanstack-{stack}-backup-stale",
    "leanstack-{stack}-restore-drill-stale",
    "leanstack-{stack}-restore-drill-failed",
)
# Alarm name suffix -> the runbook section its description links to.
RUNBOOK_ANCHORS = {
    "site-down": "site-down",
    "error-rate": "error-rate",
    "still-broken": "host-still-broken",
    "storage-low": "database-storage-low",
    "backup-stale": "backup-stale",
    "restore-drill-stale": "restore-drill-stale",
    "restore-drill-failed": "restore-drill-failed",
}


def test_one_topic_with_the_email_subscription(dev: StackRun) -> None:
    topic = dev.one("aws:sns/topic:Topic")
    assert topic.inputs["name"] == "leanstack-dev-alerts"
    subscription = dev.one("aws:sns/topicSubscription:TopicSubscription").inputs
    assert (subscription["protocol"], subscription["endpoint"]) == ("email", "ops@example.com")
    assert subscription["topic"] == topic.outputs["arn"] == dev.outputs["alertTopicArn"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_exact_alarm_set(stack: str, dev: StackRun, prod: StackRun) -> None:
    run = {"dev": dev, "prod": prod}[stack]
    names = sorted(a.inputs["name"] for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"))
    assert names == sorted(name.format(stack=stack) for name in ALARMS)


def test_every_paging_alarm_goes_to_the_one_topic(dev: StackRun, prod: StackRun) -> None:
    for run in (dev, prod):
        topic = run.outputs["alertTopicArn"]
        for alarm in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
            actions = alarm.inputs["alarmActions"]
            if alarm.name == "host-recover":
                assert actions == [f"arn:aws:automate:{run.outputs['region']}:ec2:recover"]
            else:
                assert actions == [topic], alarm.name
                assert alarm.inputs.get("okActions", [topic]) == [topic], alarm.name
            assert "CPU" not in str(alarm.inputs.get("metricName", "")), "no busy-server alarms"


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
        assert description.startswith(("Site down for users:", "Errors up for users:", "Data at risk:")), alarm.name
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
