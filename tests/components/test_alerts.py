"""Alerts and the origin certificate."""

from __future__ import annotations

from leanstack.mocks import StackRun
from tests.components.helpers import is_secret_input


def test_one_topic_with_the_email_subscription(dev: StackRun) -> None:
    topic = dev.one("aws:sns/topic:Topic")
    assert topic.inputs["name"] == "leanstack-dev-alerts"
    subscription = dev.one("aws:sns/topicSubscription:TopicSubscription").inputs
    assert (subscription["protocol"], subscription["endpoint"]) == ("email", "ops@example.com")
    assert subscription["topic"] == topic.outputs["arn"] == dev.outputs["alertTopicArn"]


def test_every_paging_alarm_goes_to_the_one_topic(dev: StackRun, prod: StackRun) -> None:
    for run in (dev, prod):
        topic = run.outputs["alertTopicArn"]
        for alarm in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
            actions = alarm.inputs["alarmActions"]
            if alarm.name == "host-recover":
                assert actions == [f"arn:aws:automate:{run.outputs['region']}:ec2:recover"]
            else:
                assert actions == [topic], alarm.name
            assert "CPU" not in alarm.inputs["metricName"], "no busy-server alarms"
            assert alarm.inputs["alarmDescription"]


def test_origin_certificate_covers_the_hostnames_with_a_secret_key(dev: StackRun) -> None:
    key = dev.one("tls:index/privateKey:PrivateKey").inputs
    assert (key["algorithm"], key["ecdsaCurve"]) == ("ECDSA", "P256")
    csr = dev.one("tls:index/certRequest:CertRequest")
    assert csr.inputs["dnsNames"] == ["dev.example.com", "www.dev.example.com"]
    assert is_secret_input(csr, "privateKeyPem")
    cert = dev.one("cloudflare:index/originCaCertificate:OriginCaCertificate").inputs
    assert cert["hostnames"] == ["dev.example.com", "www.dev.example.com"]
    assert (cert["requestType"], cert["requestedValidity"]) == ("origin-ecc", 5475)
