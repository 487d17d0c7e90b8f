"""UptimeCheck: site down, asked through the CDN by Route 53, alarmed in us-east-1."""

from __future__ import annotations

from leanstack.mocks import StackRun
from tests.components.helpers import children


def test_health_check_asks_for_the_health_path_over_https_through_the_cdn(dev: StackRun) -> None:
    check = dev.one("aws:route53/healthCheck:HealthCheck").inputs
    assert (check["type"], check["fqdn"], check["port"], check["resourcePath"]) == (
        "HTTPS",
        "dev.example.com",  # the first hostname: proxied by Cloudflare, the path users take
        443,
        "/healthz",
    )
    assert check["enableSni"] is True
    assert (check["requestInterval"], check["failureThreshold"]) == (30, 3)  # standard interval: cheaper than 10 s
    assert check.get("measureLatency") is False


def test_site_down_alarm_pages_after_three_unhealthy_minutes(dev: StackRun) -> None:
    alarm = dev.named("uptime-site-down")
    inputs = alarm.inputs
    assert (inputs["namespace"], inputs["metricName"], inputs["statistic"]) == (
        "AWS/Route53",
        "HealthCheckStatus",
        "Minimum",
    )
    assert inputs["dimensions"] == {"HealthCheckId": dev.one("aws:route53/healthCheck:HealthCheck").id}
    assert (inputs["period"], inputs["evaluationPeriods"], inputs["datapointsToAlarm"]) == (60, 3, 3)
    assert (inputs["comparisonOperator"], inputs["threshold"]) == ("LessThanThreshold", 1)
    assert inputs["treatMissingData"] == "breaching"
    # The stack is in us-east-1: the one topic, the one provider.
    assert alarm.region == "us-east-1"
    assert inputs["alarmActions"] == inputs["okActions"] == [dev.outputs["alertTopicArn"]]
    # The page topic and the ticket topic, none in another region.
    assert len(dev.of_type("aws:sns/topic:Topic")) == 2


def test_outside_us_east_1_the_alarm_and_a_second_topic_live_there_with_the_same_email(tuned: StackRun) -> None:
    alarm = tuned.named("uptime-site-down")
    assert alarm.region == "us-east-1" and tuned.outputs["region"] == "eu-west-1"
    topics = {t.name: t for t in tuned.of_type("aws:sns/topic:Topic")}
    assert {name: t.region for name, t in topics.items()} == {
        "alerts-topic": "eu-west-1",
        "alerts-ticket-topic": "eu-west-1",
        "alerts-us-east-1-topic": "us-east-1",
    }
    second = topics["alerts-us-east-1-topic"]
    assert alarm.inputs["alarmActions"] == [second.outputs["arn"]]
    assert second.outputs["arn"].startswith("arn:aws:sns:us-east-1:")
    emails = {
        s.name: (s.inputs["endpoint"], s.region) for s in tuned.of_type("aws:sns/topicSubscription:TopicSubscription")
    }
    assert emails == {
        "alerts-email": ("ops@example.com", "eu-west-1"),
        "alerts-ticket-email": ("ops@example.com", "eu-west-1"),
        "alerts-us-east-1-email": ("ops@example.com", "us-east-1"),
    }
    assert "lives in us-east-1" in alarm.inputs["alarmDescription"]
    # Every other alarm stays in the stack's region, on the stack's topic.
    others = [a for a in tuned.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if a.name != "uptime-site-down"]
    assert {a.region for a in others} == {"eu-west-1"}
    providers = {p.name: p.inputs["region"] for p in tuned.of_type("pulumi:providers:aws")}
    assert providers == {"aws": "eu-west-1", "alerts-us-east-1": "us-east-1", "backups-aws": "us-west-2"}


def test_site_down_minutes_come_from_config(tuned: StackRun) -> None:
    alarm = tuned.named("uptime-site-down").inputs
    assert (alarm["evaluationPeriods"], alarm["datapointsToAlarm"]) == (5, 5)
    assert "for 5 minutes" in alarm["alarmDescription"]


def test_uptime_children(dev: StackRun) -> None:
    assert sorted(r.name for r in children(dev, "UptimeCheck")) == ["uptime-check", "uptime-site-down"]
